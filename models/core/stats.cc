#include "models/core/stats.h"

#include <algorithm>
#include <stdexcept>

namespace tiersim {

const char* stat_kind_name(StatKind kind) {
  switch (kind) {
    case StatKind::kCounter:
      return "counter";
    case StatKind::kScalar:
      return "scalar";
    case StatKind::kVector:
      return "vector";
    case StatKind::kHistogram:
      return "histogram";
    case StatKind::kTimeAverage:
      return "time_average";
    case StatKind::kFormula:
      return "formula";
  }
  return "unknown";
}

double Vector::total() const {
  double t = 0;
  for (double v : values_)
    t += v;
  return t;
}

Histogram::Histogram(std::string name, std::string description, std::string unit,
                     std::vector<double> edges)
    : Stat(std::move(name), std::move(description), std::move(unit)), edges_(std::move(edges)) {
  if (edges_.size() < 2 || !std::is_sorted(edges_.begin(), edges_.end())) {
    throw std::logic_error("histogram " + this->name() + ": needs >= 2 sorted edges");
  }
  buckets_.assign(edges_.size() - 1, 0);
}

std::vector<double> Histogram::linear_edges(double lo, double hi, size_t buckets) {
  std::vector<double> e(buckets + 1);
  for (size_t i = 0; i <= buckets; ++i) {
    e[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(buckets);
  }
  return e;
}

std::vector<double> Histogram::log2_edges(double lo, double hi) {
  std::vector<double> e{lo};
  while (e.back() < hi)
    e.push_back(e.back() * 2);
  if (e.size() < 2) e.push_back(lo * 2);
  return e;
}

void Histogram::record(double v) {
  // A stream of similar values lands in the bucket of the last one: [edges[i], edges[i + 1]) is
  // exactly what the search below gives bucket i.
  size_t idx = last_;
  if (!(v >= edges_[idx] && v < edges_[idx + 1])) {
    // upper_bound finds the first edge > v; the bucket is the one that edge closes.
    auto it = std::upper_bound(edges_.begin(), edges_.end(), v);
    idx = it == edges_.begin() ? 0 : static_cast<size_t>(it - edges_.begin()) - 1;
    if (idx >= buckets_.size()) idx = buckets_.size() - 1;
    last_ = idx;
  }
  ++buckets_[idx];
  ++count_;
  sum_ += v;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void Histogram::values(TimePs, std::vector<double>& out) const {
  out.push_back(static_cast<double>(count_));
  out.push_back(mean());
  out.push_back(min());
  out.push_back(max());
}

void TimeAverage::set(double v, TimePs now_ps) {
  if (now_ps > last_ps_) {
    integral_ += current_ * static_cast<double>(now_ps - last_ps_);
    last_ps_ = now_ps;
  }
  current_ = v;
}

double TimeAverage::average(TimePs now_ps) const {
  if (now_ps == 0) return current_;
  double integral = integral_;
  if (now_ps > last_ps_) integral += current_ * static_cast<double>(now_ps - last_ps_);
  return integral / static_cast<double>(now_ps);
}

template <typename T, typename... Args>
T& StatsRegistry::add(const std::string& group, const std::string& name, Args&&... args) {
  std::string full = group.empty() ? name : group + "." + name;
  if (find(full) != nullptr) throw std::logic_error("duplicate stat " + full);
  auto stat = std::make_unique<T>(full, std::forward<Args>(args)...);
  T& ref = *stat;
  stats_.push_back(std::move(stat));
  series_.emplace_back();
  // A stat added after sampling started gets zero rows for the samples it missed.
  series_.back().assign(sample_times_.size() * ref.width(), 0.0);
  return ref;
}

Counter& StatsRegistry::counter(const std::string& group, const std::string& name,
                                const std::string& desc, const std::string& unit) {
  return add<Counter>(group, name, desc, unit);
}
Scalar& StatsRegistry::scalar(const std::string& group, const std::string& name,
                              const std::string& desc, const std::string& unit) {
  return add<Scalar>(group, name, desc, unit);
}
Vector& StatsRegistry::vector(const std::string& group, const std::string& name,
                              const std::string& desc, const std::string& unit,
                              std::vector<std::string> labels) {
  return add<Vector>(group, name, desc, unit, std::move(labels));
}
Histogram& StatsRegistry::histogram(const std::string& group, const std::string& name,
                                    const std::string& desc, const std::string& unit,
                                    std::vector<double> edges) {
  return add<Histogram>(group, name, desc, unit, std::move(edges));
}
TimeAverage& StatsRegistry::time_average(const std::string& group, const std::string& name,
                                         const std::string& desc, const std::string& unit) {
  return add<TimeAverage>(group, name, desc, unit);
}
Formula& StatsRegistry::formula(const std::string& group, const std::string& name,
                                const std::string& desc, const std::string& unit,
                                std::function<double(TimePs)> fn) {
  return add<Formula>(group, name, desc, unit, std::move(fn));
}

VectorFormula& StatsRegistry::vector_formula(const std::string& group, const std::string& name,
                                             const std::string& desc, const std::string& unit,
                                             std::vector<std::string> labels,
                                             std::function<void(double*)> fn) {
  return add<VectorFormula>(group, name, desc, unit, std::move(labels),
                            [fn = std::move(fn)](TimePs, double* out) { fn(out); });
}

VectorFormula& StatsRegistry::timed_vector_formula(const std::string& group,
                                                   const std::string& name, const std::string& desc,
                                                   const std::string& unit,
                                                   std::vector<std::string> labels,
                                                   std::function<void(TimePs, double*)> fn) {
  return add<VectorFormula>(group, name, desc, unit, std::move(labels), std::move(fn));
}

const Stat* StatsRegistry::find(const std::string& full_name) const {
  for (const auto& s : stats_) {
    if (s->name() == full_name) return s.get();
  }
  return nullptr;
}

void StatsRegistry::sample(TimePs now_ps) {
  sample_times_.push_back(now_ps);
  for (size_t i = 0; i < stats_.size(); ++i)
    stats_[i]->values(now_ps, series_[i]);
}

void StatsRegistry::drop_every_other_sample() {
  const size_t n = sample_times_.size();
  const std::vector<TimePs> times = sample_times_;
  size_t kept = 0;
  for (size_t r = 0; r < n; r += 2)
    sample_times_[kept++] = sample_times_[r];
  sample_times_.resize(kept);
  for (size_t i = 0; i < stats_.size(); ++i) {
    const size_t w = stats_[i]->width();
    std::vector<double>& s = series_[i];
    const bool mean = stats_[i]->interval_mean();
    size_t out = 0;
    for (size_t r = 0; r < n; r += 2) {
      // Row r covers (times[r-1], times[r]]; the kept row covers (times[r-2], times[r]].
      const double a = mean && r >= 2 ? double(times[r - 1] - times[r - 2]) : 0.0;
      const double b = mean && r >= 2 ? double(times[r] - times[r - 1]) : 0.0;
      for (size_t k = 0; k < w; ++k) {
        double v = s[r * w + k];
        if (a + b > 0) v = (s[(r - 1) * w + k] * a + v * b) / (a + b);
        s[out++] = v;
      }
    }
    s.resize(out);
  }
}

}  // namespace tiersim
