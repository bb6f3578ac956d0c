// Serving requests: length distributions (fixed, uniform, percentiles, lognormal), CSV arrival
// traces and Poisson or closed-loop arrivals drawn from a seed. The scheduler is in serving.cc,
// the summary and the requests table in serving_results.cc.
#include "workloads/serving.h"

#include <cmath>
#include <fstream>

#include "models/core/input_file.h"
#include "models/core/rng.h"

namespace tiersim {

namespace {

// Splits a CSV line into numbers; false on anything else.
bool parse_numbers(const std::string& line, std::vector<double>& out) {
  out.clear();
  size_t i = 0;
  while (i <= line.size()) {
    const size_t comma = line.find(',', i);
    std::string field = line.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    field.erase(0, field.find_first_not_of(" \t\r"));
    field.erase(field.find_last_not_of(" \t\r") + 1);
    if (field.empty()) return false;
    char* end = nullptr;
    const double v = std::strtod(field.c_str(), &end);
    if (end == nullptr || *end != '\0' || !std::isfinite(v)) return false;
    out.push_back(v);
    if (comma == std::string::npos) return true;
    i = comma + 1;
  }
  return false;
}

uint32_t draw_length(const config::LengthDistribution& d, Rng& rng) {
  switch (d.kind_case()) {
    case config::LengthDistribution::kFixed:
      return d.fixed();
    case config::LengthDistribution::kUniform:
      return static_cast<uint32_t>(d.uniform().min() +
                                   rng.below(uint64_t{d.uniform().max()} - d.uniform().min() + 1));
    case config::LengthDistribution::kQuantiles: {
      // Inverse CDF, linear between the points (validated: q from 0 to 1, tokens not falling).
      const auto& pts = d.quantiles().points();
      const double u = rng.uniform();
      int i = 1;
      while (i + 1 < pts.size() && pts[i].q() <= u)
        ++i;
      const auto &lo = pts[i - 1], &hi = pts[i];
      const double f = hi.q() > lo.q() ? (u - lo.q()) / (hi.q() - lo.q()) : 0.0;
      return static_cast<uint32_t>(
          std::lround(lo.tokens() + std::clamp(f, 0.0, 1.0) * (double(hi.tokens()) - lo.tokens())));
    }
    case config::LengthDistribution::kLognormal: {
      // Box-Muller from two uniforms (the library's normal distribution is not portable).
      const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
      const auto& l = d.lognormal();
      const double x = std::round(l.median() * std::exp(l.sigma() * z));
      return static_cast<uint32_t>(
          std::clamp(x, static_cast<double>(l.min()), static_cast<double>(l.max())));
    }
    default:
      return 0;
  }
}

}  // namespace

uint32_t max_length(const config::LengthDistribution& d) {
  switch (d.kind_case()) {
    case config::LengthDistribution::kFixed:
      return d.fixed();
    case config::LengthDistribution::kUniform:
      return d.uniform().max();
    case config::LengthDistribution::kLognormal:
      return d.lognormal().max();
    case config::LengthDistribution::kQuantiles: {
      const auto& pts = d.quantiles().points();
      return pts.empty() ? 0 : pts[pts.size() - 1].tokens();
    }
    default:
      return 0;
  }
}

void validate_length(const config::LengthDistribution& d, Validator v, bool present) {
  if (!present || d.kind_case() == config::LengthDistribution::KIND_NOT_SET) {
    v.error("",
            "required: fixed, uniform { min max }, lognormal { median sigma min max } or "
            "quantiles { points { q tokens } ... }");
    return;
  }
  if (d.has_quantiles()) {
    const auto& pts = d.quantiles().points();
    Validator qv = v.at("quantiles");
    if (pts.size() < 2) {
      qv.error("points", "needs at least two points (q 0 and q 1)");
      return;
    }
    for (int i = 0; i < pts.size(); ++i) {
      Validator pv = qv.at("points[" + std::to_string(i) + "]");
      if (!pts[i].has_q() || !(pts[i].q() >= 0 && pts[i].q() <= 1)) {
        pv.error("q", pts[i].has_q() ? "must lie in [0, 1]" : "required field is not set");
      } else if (i == 0 && pts[i].q() != 0) {
        pv.error("q", "the first point must be q 0");
      } else if (i + 1 == pts.size() && pts[i].q() != 1) {
        pv.error("q", "the last point must be q 1");
      } else if (i > 0 && pts[i].q() <= pts[i - 1].q()) {
        pv.error("q", "must rise from point to point");
      }
      if (pv.positive("tokens", pts[i].has_tokens(), pts[i].tokens()) && i > 0 &&
          pts[i].tokens() < pts[i - 1].tokens()) {
        pv.error("tokens", "below the previous point's");
      }
    }
  }
  if (d.has_fixed()) v.positive("fixed", true, d.fixed());
  if (d.has_uniform()) {
    const auto& u = d.uniform();
    Validator uv = v.at("uniform");
    if (uv.positive("min", u.has_min(), u.min()) && uv.positive("max", u.has_max(), u.max()) &&
        u.min() > u.max()) {
      uv.error("max", "below min");
    }
  }
  if (d.has_lognormal()) {
    const auto& l = d.lognormal();
    Validator lv = v.at("lognormal");
    lv.positive("median", l.has_median(), l.median());
    if (!l.has_sigma() || !(l.sigma() >= 0 && l.sigma() <= 5)) {
      lv.error("sigma", l.has_sigma() ? "must be in [0, 5]" : "required field is not set");
    }
    if (lv.positive("min", l.has_min(), l.min()) && lv.positive("max", l.has_max(), l.max()) &&
        l.min() > l.max()) {
      lv.error("max", "below min");
    }
  }
}

std::optional<std::vector<ServingRequest>> load_arrival_trace(const std::string& path,
                                                              Validator& v) {
  if (const std::string problem = input_file_problem(path, kMaxTextInputBytes); !problem.empty()) {
    v.error("arrival_trace", "cannot read arrival trace \"" + path + "\": " + problem);
    return std::nullopt;
  }
  std::ifstream in(path);
  std::vector<ServingRequest> out;
  std::string line;
  int n = 0;
  size_t errors = 0;
  auto fail = [&](int at, const std::string& message) {
    if (++errors <= 20) v.error_at(SourceLocation{path, at}, "arrival_trace", message);
  };
  if (!std::getline(in, line)) {
    fail(1, "empty arrival trace (expected the header arrival_ms,input_tokens,output_tokens)");
    return std::nullopt;
  }
  n = 1;
  std::string header = line;
  header.erase(std::remove_if(header.begin(), header.end(),
                              [](char c) { return c == ' ' || c == '\t' || c == '\r'; }),
               header.end());
  if (header != "arrival_ms,input_tokens,output_tokens") {
    fail(1, "header must be \"arrival_ms,input_tokens,output_tokens\"");
  }
  std::vector<double> f;
  double last = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!parse_numbers(line, f) || f.size() != 3) {
      fail(n, "expected three numbers: arrival_ms,input_tokens,output_tokens");
      continue;
    }
    if (f[0] < 0 || f[0] < last) {
      fail(n, "arrival_ms must be non-negative and non-decreasing");
      continue;
    }
    if (f[1] < 1 || f[2] < 1 || f[1] != std::floor(f[1]) || f[2] != std::floor(f[2]) ||
        f[1] > 1e9 || f[2] > 1e9) {
      fail(n, "input_tokens and output_tokens must be positive integers");
      continue;
    }
    last = f[0];
    out.push_back(ServingRequest{static_cast<TimePs>(std::llround(f[0] * 1e9)),
                                 static_cast<uint32_t>(f[1]), static_cast<uint32_t>(f[2])});
  }
  if (errors == 0 && out.empty()) fail(n, "no requests");
  if (errors > 0) return std::nullopt;
  return out;
}

std::vector<ServingRequest> drawn_requests(const config::ServingScenario& s, uint64_t seed) {
  Rng rng(seed ^ 0x617272697661ULL);
  std::vector<ServingRequest> out;
  double t_s = 0;
  const bool closed = s.has_closed_loop();
  const uint32_t n = closed ? s.closed_loop().requests() : s.poisson().requests();
  for (uint32_t i = 0; i < n; ++i) {
    if (!closed) t_s += -std::log(1.0 - rng.uniform()) / s.poisson().rate_per_s();
    ServingRequest r;
    r.arrival_ps = static_cast<TimePs>(std::llround(t_s * 1e12));
    r.input_tokens = draw_length(s.input_tokens(), rng);
    r.output_tokens = draw_length(s.output_tokens(), rng);
    out.push_back(r);
  }
  return out;
}

}  // namespace tiersim
