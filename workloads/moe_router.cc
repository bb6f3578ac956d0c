#include "workloads/moe_router.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <ostream>
#include <stdexcept>

#include "models/core/input_file.h"

namespace tiersim {

std::vector<double> capped_zipf_shares(uint32_t experts, uint32_t k, double zipf) {
  std::vector<double> w(experts);
  for (uint32_t r = 0; r < experts; ++r)
    w[r] = std::pow(static_cast<double>(r + 1), -zipf);
  // Water-filling: ranks are in decreasing weight order, so the capped ones are a prefix.
  const double cap = 1.0 / k;
  uint32_t capped = 0;
  while (true) {
    double rest = 0;
    for (uint32_t r = capped; r < experts; ++r)
      rest += w[r];
    const double budget = 1.0 - cap * capped;
    if (capped < experts && w[capped] / rest * budget > cap) {
      ++capped;
      continue;
    }
    std::vector<double> shares(experts);
    for (uint32_t r = 0; r < experts; ++r)
      shares[r] = r < capped ? cap : w[r] / rest * budget;
    return shares;
  }
}

SyntheticRouter::SyntheticRouter(const SyntheticRouterParams& p)
    : p_(p),
      shares_(capped_zipf_shares(p.experts, p.top_k, p.zipf)),
      layers_(p.moe_layers),
      rng_(p.seed ^ 0x6d6f652d726f7574ULL) {
  for (auto& l : layers_) {
    l.by_rank.resize(p.experts);
    l.layout.resize(size_t{kLayouts} * p.experts);
    l.ends.resize(size_t{kLayouts} * p.experts);
    l.previous.resize(size_t{p.batch} * p.top_k);
  }
}

std::vector<uint16_t> SyntheticRouter::ranking(Rng& rng) const {
  std::vector<uint16_t> v(p_.experts);
  for (uint32_t i = 0; i < p_.experts; ++i)
    v[i] = static_cast<uint16_t>(i);
  for (uint32_t i = p_.experts - 1; i > 0; --i)
    std::swap(v[i], v[rng.below(i + 1)]);
  return v;
}

namespace {
// Independent of call order: a stream per (seed, layer, phase).
Rng phase_rng(uint64_t seed, uint32_t moe_layer, uint32_t phase) {
  return Rng(seed * 0x9e3779b97f4a7c15ULL ^ (uint64_t{moe_layer} << 32 | phase));
}
}  // namespace

double SyntheticRouter::use_probability(uint32_t moe_layer, uint16_t expert,
                                        uint32_t tokens) const {
  if (first_rank_.size() <= moe_layer) first_rank_.resize(moe_layer + 1);
  std::vector<uint16_t>& rank_of = first_rank_[moe_layer];
  if (rank_of.empty()) {
    Rng rng = phase_rng(p_.seed, moe_layer, 0);
    const std::vector<uint16_t> by_rank = ranking(rng);
    rank_of.resize(p_.experts);
    for (uint32_t r = 0; r < p_.experts; ++r)
      rank_of[by_rank[r]] = static_cast<uint16_t>(r);
  }
  const double pick = std::min(1.0, p_.top_k * shares_[rank_of[expert]]);
  return 1.0 - std::pow(1.0 - pick, static_cast<double>(tokens));
}

void SyntheticRouter::enter_phase(uint32_t moe_layer, uint32_t phase) {
  Layer& l = layers_[moe_layer];
  l.phase = phase;
  Rng rng = phase_rng(p_.seed, moe_layer, phase);
  l.by_rank = ranking(rng);
  std::vector<double> share_of(p_.experts);
  for (uint32_t r = 0; r < p_.experts; ++r)
    share_of[l.by_rank[r]] = shares_[r];
  for (uint32_t o = 0; o < kLayouts; ++o) {
    uint16_t* layout = &l.layout[size_t{o} * p_.experts];
    double* ends = &l.ends[size_t{o} * p_.experts];
    const std::vector<uint16_t> order = ranking(rng);  // the same draws as the popularity order
    std::copy(order.begin(), order.end(), layout);
    double end = 0;
    for (uint32_t i = 0; i < p_.experts; ++i) {
      end += p_.top_k * share_of[layout[i]];
      ends[i] = end;
    }
    ends[p_.experts - 1] = p_.top_k;  // no rounding gap at the top
  }
}

void SyntheticRouter::route(uint32_t step, uint32_t moe_layer, uint32_t tokens, uint16_t* experts) {
  Layer& l = layers_[moe_layer];
  const uint32_t phase = p_.phase_steps ? step / p_.phase_steps : 0;
  if (phase != l.phase) enter_phase(moe_layer, phase);
  const uint32_t k = p_.top_k;
  for (uint32_t s = 0; s < tokens; ++s) {
    uint16_t* out = experts + size_t{s} * k;
    // Token slot s keeps what slot s picked last time (serving: slots follow the batch order).
    if (s < l.previous_tokens && p_.stickiness > 0 && rng_.uniform() < p_.stickiness) {
      std::copy_n(&l.previous[size_t{s} * k], k, out);
      continue;
    }
    const size_t o = rng_.below(kLayouts) * size_t{p_.experts};
    const double* ends = &l.ends[o];
    const uint16_t* layout = &l.layout[o];
    const double u = rng_.uniform();
    size_t at = 0;
    for (uint32_t j = 0; j < k; ++j) {
      const double x = u + j;
      // The first interval ending after x; never the same one twice (rounding guard).
      size_t i = static_cast<size_t>(std::upper_bound(ends + at, ends + p_.experts, x) - ends);
      i = std::min<size_t>(std::max(i, at), p_.experts - 1);
      out[j] = layout[i];
      at = i + 1;
    }
  }
  // A pass may route more tokens than the batch it was sized for (a prefill): grow.
  if (l.previous.size() < size_t{tokens} * k) l.previous.resize(size_t{tokens} * k);
  std::copy_n(experts, size_t{tokens} * k, l.previous.data());
  l.previous_tokens = tokens;
}

namespace {

// Splits a CSV line into unsigned integers; false on any non-integer field.
bool parse_fields(const std::string& line, std::vector<uint64_t>& out) {
  out.clear();
  size_t i = 0;
  while (true) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    if (i == line.size() || line[i] < '0' || line[i] > '9') return false;
    uint64_t v = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
      v = v * 10 + static_cast<uint64_t>(line[i] - '0');
      if (v > 0xffffffffULL) return false;
      ++i;
    }
    out.push_back(v);
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
      ++i;
    if (i == line.size()) return true;
    if (line[i] != ',') return false;
    ++i;
  }
}

}  // namespace

std::optional<TraceRouter> TraceRouter::load(const std::string& path, const Shape& shape,
                                             Validator& v) {
  if (const std::string problem = input_file_problem(path, kMaxTextInputBytes); !problem.empty()) {
    v.error("trace", "cannot read routing trace \"" + path + "\": " + problem);
    return std::nullopt;
  }
  std::ifstream in(path);
  const uint32_t moe_layers = shape.layers - shape.first_moe_layer;
  const size_t cells = size_t{shape.steps} * moe_layers * shape.batch;
  TraceRouter t;
  t.shape_ = shape;
  t.experts_.assign(cells * shape.top_k, 0);
  std::vector<bool> seen(cells, false);
  size_t errors = 0;
  auto fail = [&](int line, const std::string& message) {
    if (++errors <= 20) v.error_at(SourceLocation{path, line}, "trace", message);
  };
  std::string line;
  int n = 0;
  if (!std::getline(in, line)) {
    fail(1, "empty routing trace (expected the header step,layer,sequence,expert0,...)");
    return std::nullopt;
  }
  n = 1;
  std::string want = "step,layer,sequence";
  for (uint32_t j = 0; j < shape.top_k; ++j)
    want += ",expert" + std::to_string(j);
  std::string header = line;
  header.erase(std::remove_if(header.begin(), header.end(),
                              [](char c) { return c == ' ' || c == '\t' || c == '\r'; }),
               header.end());
  if (header != want)
    fail(1, "header must be \"" + want + "\" (top-k = " + std::to_string(shape.top_k) +
                " expert columns)");
  std::vector<uint64_t> f;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!parse_fields(line, f)) {
      fail(n, "expected comma-separated non-negative integers");
      continue;
    }
    if (f.size() != 3 + size_t{shape.top_k}) {
      fail(n, "expected " + std::to_string(3 + shape.top_k) + " fields, found " +
                  std::to_string(f.size()));
      continue;
    }
    const uint64_t step = f[0], layer = f[1], seq = f[2];
    if (step >= shape.steps) {
      fail(n, "step " + std::to_string(step) + " is beyond the run's " +
                  std::to_string(shape.steps) + " decode steps");
      continue;
    }
    if (layer < shape.first_moe_layer || layer >= shape.layers) {
      fail(n, "layer " + std::to_string(layer) + " is not a MoE layer (those are " +
                  std::to_string(shape.first_moe_layer) + ".." + std::to_string(shape.layers - 1) +
                  ")");
      continue;
    }
    if (seq >= shape.batch) {
      fail(n, "sequence " + std::to_string(seq) + " is beyond the batch of " +
                  std::to_string(shape.batch));
      continue;
    }
    const size_t cell = (step * moe_layers + (layer - shape.first_moe_layer)) * shape.batch + seq;
    if (seen[cell]) {
      fail(n, "step " + std::to_string(step) + ", layer " + std::to_string(layer) + ", sequence " +
                  std::to_string(seq) + " appears twice");
      continue;
    }
    bool ok = true;
    for (uint32_t j = 0; j < shape.top_k && ok; ++j) {
      const uint64_t e = f[3 + j];
      if (e >= shape.experts) {
        fail(n, "expert " + std::to_string(e) + " is beyond the model's " +
                    std::to_string(shape.experts) + " experts");
        ok = false;
      }
      for (uint32_t i = 0; i < j && ok; ++i) {
        if (f[3 + i] == e) {
          fail(n, "expert " + std::to_string(e) + " is listed twice for one token");
          ok = false;
        }
      }
    }
    if (!ok) continue;
    seen[cell] = true;
    for (uint32_t j = 0; j < shape.top_k; ++j)
      t.experts_[cell * shape.top_k + j] = static_cast<uint16_t>(f[3 + j]);
  }
  if (errors == 0) {
    for (size_t cell = 0; cell < cells; ++cell) {
      if (seen[cell]) continue;
      const size_t seq = cell % shape.batch;
      const size_t layer = cell / shape.batch % moe_layers + shape.first_moe_layer;
      const size_t step = cell / shape.batch / moe_layers;
      fail(n, "no routing for step " + std::to_string(step) + ", layer " + std::to_string(layer) +
                  ", sequence " + std::to_string(seq) +
                  " (the trace must cover every step, MoE layer and sequence of the run)");
      break;
    }
  }
  if (errors > 20) {
    v.error_at(SourceLocation{path, n}, "trace",
               std::to_string(errors - 20) + " more problems not shown");
  }
  if (errors > 0) return std::nullopt;
  // Steps in which each expert of each layer is active.
  t.active_steps_.assign(size_t{moe_layers} * shape.experts, 0);
  std::vector<uint32_t> last(size_t{moe_layers} * shape.experts, UINT32_MAX);
  for (size_t cell = 0; cell < cells; ++cell) {
    const size_t layer = cell / shape.batch % moe_layers;
    const uint32_t step = static_cast<uint32_t>(cell / shape.batch / moe_layers);
    for (uint32_t j = 0; j < shape.top_k; ++j) {
      const size_t at = layer * shape.experts + t.experts_[cell * shape.top_k + j];
      if (last[at] != step) {
        last[at] = step;
        ++t.active_steps_[at];
      }
    }
  }
  return t;
}

double TraceRouter::use_probability(uint32_t moe_layer, uint16_t expert, uint32_t) const {
  return double(active_steps_[size_t{moe_layer} * shape_.experts + expert]) / shape_.steps;
}

void TraceRouter::route(uint32_t step, uint32_t moe_layer, uint32_t tokens, uint16_t* experts) {
  if (tokens != shape_.batch) throw std::logic_error("TraceRouter: a trace routes whole batches");
  const uint32_t moe_layers = shape_.layers - shape_.first_moe_layer;
  const size_t cell = (size_t{step} * moe_layers + moe_layer) * shape_.batch;
  std::copy_n(&experts_[cell * shape_.top_k], size_t{shape_.batch} * shape_.top_k, experts);
}

void write_routing_trace(std::ostream& out, Router& router, const TraceRouter::Shape& shape) {
  out << "step,layer,sequence";
  for (uint32_t j = 0; j < shape.top_k; ++j)
    out << ",expert" << j;
  out << "\n";
  std::vector<uint16_t> experts(size_t{shape.batch} * shape.top_k);
  for (uint32_t step = 0; step < shape.steps; ++step) {
    for (uint32_t layer = shape.first_moe_layer; layer < shape.layers; ++layer) {
      router.route(step, layer - shape.first_moe_layer, shape.batch, experts.data());
      for (uint32_t seq = 0; seq < shape.batch; ++seq) {
        out << step << ',' << layer << ',' << seq;
        for (uint32_t j = 0; j < shape.top_k; ++j)
          out << ',' << experts[size_t{seq} * shape.top_k + j];
        out << '\n';
      }
    }
  }
}

ExpertPlacement ExpertPlacement::contiguous(uint32_t experts, uint32_t ranks) {
  if (ranks == 0 || experts % ranks != 0) {
    throw std::invalid_argument("ExpertPlacement: ranks must divide the experts");
  }
  ExpertPlacement p;
  p.ranks = ranks;
  p.slots = experts / ranks;
  for (uint32_t e = 0; e < experts; ++e) {
    p.slot_expert.push_back(static_cast<uint16_t>(e));
    p.copy_begin.push_back(e);
    p.copy_slot.push_back(e);
  }
  p.copy_begin.push_back(experts);
  return p;
}

ExpertPlacement ExpertPlacement::balanced(const std::vector<double>& load, uint32_t ranks,
                                          uint32_t redundant) {
  const uint32_t experts = static_cast<uint32_t>(load.size());
  const uint32_t total = experts + redundant;
  if (ranks == 0 || experts == 0 || total % ranks != 0) {
    throw std::invalid_argument("ExpertPlacement: ranks must divide experts + redundant copies");
  }
  if (uint64_t{redundant} > uint64_t{experts} * (ranks - 1)) {
    throw std::invalid_argument(
        "ExpertPlacement: more copies than every rank holding every expert");
  }
  // Replicate: each extra copy to the expert with the most load per copy (then the fewest
  // copies, then the lowest id), at most one copy per rank.
  std::vector<uint32_t> copies(experts, 1);
  for (uint32_t r = 0; r < redundant; ++r) {
    uint32_t best = UINT32_MAX;
    for (uint32_t e = 0; e < experts; ++e) {
      if (copies[e] >= ranks) continue;
      if (best == UINT32_MAX) {
        best = e;
        continue;
      }
      const double a = load[e] * copies[best], b = load[best] * copies[e];
      if (a > b || (a == b && copies[e] < copies[best])) best = e;
    }
    ++copies[best];
  }
  // Pack: heaviest copies first onto the least loaded rank with room.
  struct Copy {
    double load;
    uint32_t expert;
  };
  std::vector<Copy> order;
  order.reserve(total);
  for (uint32_t e = 0; e < experts; ++e) {
    for (uint32_t c = 0; c < copies[e]; ++c)
      order.push_back(Copy{load[e] / copies[e], e});
  }
  std::stable_sort(order.begin(), order.end(), [](const Copy& a, const Copy& b) {
    return a.load > b.load || (a.load == b.load && a.expert < b.expert);
  });
  ExpertPlacement p;
  p.ranks = ranks;
  p.slots = total / ranks;
  p.slot_expert.assign(total, 0);
  std::vector<double> rank_load(ranks, 0);
  std::vector<uint32_t> used(ranks, 0);
  std::vector<std::vector<uint32_t>> slots_of(experts);
  for (const Copy& c : order) {
    uint32_t pick = UINT32_MAX;
    for (const bool distinct : {true, false}) {
      for (uint32_t r = 0; r < ranks; ++r) {
        if (used[r] == p.slots) continue;
        if (distinct) {
          bool holds = false;
          for (const uint32_t g : slots_of[c.expert])
            holds = holds || g / p.slots == r;
          if (holds) continue;
        }
        if (pick == UINT32_MAX || rank_load[r] < rank_load[pick]) pick = r;
      }
      if (pick != UINT32_MAX) break;
    }
    const uint32_t g = pick * p.slots + used[pick]++;
    rank_load[pick] += c.load;
    p.slot_expert[g] = static_cast<uint16_t>(c.expert);
    slots_of[c.expert].push_back(g);
  }
  for (uint32_t e = 0; e < experts; ++e) {
    p.copy_begin.push_back(static_cast<uint32_t>(p.copy_slot.size()));
    std::sort(slots_of[e].begin(), slots_of[e].end());
    p.copy_slot.insert(p.copy_slot.end(), slots_of[e].begin(), slots_of[e].end());
  }
  p.copy_begin.push_back(total);
  return p;
}

}  // namespace tiersim
