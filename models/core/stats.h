// Stats registry: typed, documented, cheap statistics.
//
// Every stat has a hierarchical name (component path + stat name), a description and a unit,
// given at construction. Hot paths only touch plain members (Counter::inc is one add); derived
// values (formulas, time averages, histogram summaries) are computed when sampled or dumped.
// The registry owns the stats; components keep references, which stay valid for the registry's
// lifetime. sample(t) appends the current value of every stat to its time series.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "models/core/time.h"

namespace tiersim {

enum class StatKind { kCounter, kScalar, kVector, kHistogram, kTimeAverage, kFormula };

const char* stat_kind_name(StatKind kind);

class Stat {
 public:
  Stat(std::string name, std::string description, std::string unit)
      : name_(std::move(name)), description_(std::move(description)), unit_(std::move(unit)) {}
  virtual ~Stat() = default;
  Stat(const Stat&) = delete;
  Stat& operator=(const Stat&) = delete;

  const std::string& name() const { return name_; }
  const std::string& description() const { return description_; }
  const std::string& unit() const { return unit_; }
  virtual StatKind kind() const = 0;

  // Number of values one sample holds, and their labels (empty for width 1).
  virtual size_t width() const { return 1; }
  virtual std::vector<std::string> labels() const { return {}; }
  // Appends `width()` current values, as seen at time `now_ps`.
  virtual void values(TimePs now_ps, std::vector<double>& out) const = 0;

  // A stat whose samples are each the mean over the interval since the previous sample (power):
  // when the series is thinned, two intervals merge into their time-weighted mean. Other stats
  // are cumulative or instantaneous and keep the retained sample's value.
  bool interval_mean() const { return interval_mean_; }
  void set_interval_mean() { interval_mean_ = true; }
  // What one sample of the series is (the result file's "sampling" attribute): "cumulative"
  // (total since the run's start), "instant" (the value at the sample time),
  // "interval_mean" (mean over the interval since the previous sample) or "average_since_start".
  virtual const char* sampling() const {
    return sampling_ ? sampling_ : interval_mean_ ? "interval_mean" : "instant";
  }
  // For a derived stat (a formula) whose value is a total or a running average.
  void set_sampling(const char* sampling) { sampling_ = sampling; }

 private:
  std::string name_, description_, unit_;
  bool interval_mean_ = false;
  const char* sampling_ = nullptr;
};

// Monotonic integer count (events, bytes).
class Counter final : public Stat {
 public:
  using Stat::Stat;
  StatKind kind() const override { return StatKind::kCounter; }
  const char* sampling() const override { return "cumulative"; }
  void inc(uint64_t n = 1) { value_ += n; }
  uint64_t value() const { return value_; }
  void values(TimePs, std::vector<double>& out) const override {
    out.push_back(static_cast<double>(value_));
  }

 private:
  uint64_t value_ = 0;
};

// A real-valued quantity that is set or accumulated (energy, a configured rate).
class Scalar final : public Stat {
 public:
  using Stat::Stat;
  StatKind kind() const override { return StatKind::kScalar; }
  // Accumulated (cumulative, the default) or set to the current value (instant).
  const char* sampling() const override { return instant_ ? "instant" : "cumulative"; }
  void set_instant() { instant_ = true; }
  void set(double v) { value_ = v; }
  void add(double v) { value_ += v; }
  double value() const { return value_; }
  void values(TimePs, std::vector<double>& out) const override { out.push_back(value_); }

 private:
  double value_ = 0;
  bool instant_ = false;
};

// A fixed-size array of counters with labels (bytes per stack).
class Vector final : public Stat {
 public:
  Vector(std::string name, std::string description, std::string unit,
         std::vector<std::string> labels)
      : Stat(std::move(name), std::move(description), std::move(unit)),
        labels_(std::move(labels)),
        values_(labels_.size(), 0.0) {}
  StatKind kind() const override { return StatKind::kVector; }
  const char* sampling() const override { return "cumulative"; }
  void add(size_t i, double v) { values_[i] += v; }
  double value(size_t i) const { return values_[i]; }
  double total() const;
  size_t width() const override { return values_.size(); }
  std::vector<std::string> labels() const override { return labels_; }
  void values(TimePs, std::vector<double>& out) const override {
    out.insert(out.end(), values_.begin(), values_.end());
  }

 private:
  std::vector<std::string> labels_;
  std::vector<double> values_;
};

// Histogram over fixed bucket edges. Values below the first edge go to bucket 0, values at or
// above the last edge to the last bucket (edges.size() - 1 buckets in all, first and last open).
// Samples hold count, mean, min, max; bucket counts are dumped at the end.
class Histogram final : public Stat {
 public:
  Histogram(std::string name, std::string description, std::string unit, std::vector<double> edges);
  // `buckets` equal buckets over [lo, hi).
  static std::vector<double> linear_edges(double lo, double hi, size_t buckets);
  // Edges lo, lo*2, lo*4, ... up to >= hi.
  static std::vector<double> log2_edges(double lo, double hi);

  StatKind kind() const override { return StatKind::kHistogram; }
  const char* sampling() const override { return "cumulative"; }
  void record(double v);
  uint64_t count() const { return count_; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  double min() const { return count_ ? min_ : 0.0; }
  double max() const { return count_ ? max_ : 0.0; }
  const std::vector<double>& edges() const { return edges_; }
  const std::vector<uint64_t>& buckets() const { return buckets_; }
  size_t width() const override { return 4; }
  std::vector<std::string> labels() const override { return {"count", "mean", "min", "max"}; }
  void values(TimePs, std::vector<double>& out) const override;

 private:
  std::vector<double> edges_;
  std::vector<uint64_t> buckets_;
  size_t last_ = 0;  // the bucket of the last value recorded
  uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

// Time-weighted average of a piecewise-constant signal (queue occupancy, utilisation).
// set(v, t) must be called with non-decreasing t.
class TimeAverage final : public Stat {
 public:
  using Stat::Stat;
  StatKind kind() const override { return StatKind::kTimeAverage; }
  const char* sampling() const override { return "average_since_start"; }
  void set(double v, TimePs now_ps);
  double current() const { return current_; }
  // Average over [0, now_ps].
  double average(TimePs now_ps) const;
  void values(TimePs now_ps, std::vector<double>& out) const override {
    out.push_back(average(now_ps));
  }

 private:
  double current_ = 0;
  double integral_ = 0;  // value x ps
  TimePs last_ps_ = 0;
};

// A value derived from other stats when sampled.
class Formula final : public Stat {
 public:
  Formula(std::string name, std::string description, std::string unit,
          std::function<double(TimePs)> fn)
      : Stat(std::move(name), std::move(description), std::move(unit)), fn_(std::move(fn)) {}
  StatKind kind() const override { return StatKind::kFormula; }
  double value(TimePs now_ps) const { return fn_(now_ps); }
  void values(TimePs now_ps, std::vector<double>& out) const override {
    out.push_back(fn_(now_ps));
  }

 private:
  std::function<double(TimePs)> fn_;
};

// A vector derived from model state when sampled (reported as a vector). `fn` overwrites the
// width() values it is given, as seen at the sample time.
class VectorFormula final : public Stat {
 public:
  VectorFormula(std::string name, std::string description, std::string unit,
                std::vector<std::string> labels, std::function<void(TimePs, double*)> fn)
      : Stat(std::move(name), std::move(description), std::move(unit)),
        labels_(std::move(labels)),
        fn_(std::move(fn)) {}
  StatKind kind() const override { return StatKind::kVector; }
  size_t width() const override { return labels_.size(); }
  std::vector<std::string> labels() const override { return labels_; }
  void values(TimePs now_ps, std::vector<double>& out) const override {
    const size_t at = out.size();
    out.resize(at + labels_.size(), 0.0);
    fn_(now_ps, out.data() + at);
  }

 private:
  std::vector<std::string> labels_;
  std::function<void(TimePs, double*)> fn_;
};

// Owns all stats of a run and their sampled time series.
class StatsRegistry {
 public:
  // Creates a stat named `<group>.<name>`. Names must be unique; a duplicate throws
  // std::logic_error (a programming error, not bad input).
  Counter& counter(const std::string& group, const std::string& name, const std::string& desc,
                   const std::string& unit);
  Scalar& scalar(const std::string& group, const std::string& name, const std::string& desc,
                 const std::string& unit);
  Vector& vector(const std::string& group, const std::string& name, const std::string& desc,
                 const std::string& unit, std::vector<std::string> labels);
  Histogram& histogram(const std::string& group, const std::string& name, const std::string& desc,
                       const std::string& unit, std::vector<double> edges);
  TimeAverage& time_average(const std::string& group, const std::string& name,
                            const std::string& desc, const std::string& unit);
  Formula& formula(const std::string& group, const std::string& name, const std::string& desc,
                   const std::string& unit, std::function<double(TimePs)> fn);
  VectorFormula& vector_formula(const std::string& group, const std::string& name,
                                const std::string& desc, const std::string& unit,
                                std::vector<std::string> labels, std::function<void(double*)> fn);
  // As vector_formula, for a vector that depends on the sample time (rates over the interval).
  VectorFormula& timed_vector_formula(const std::string& group, const std::string& name,
                                      const std::string& desc, const std::string& unit,
                                      std::vector<std::string> labels,
                                      std::function<void(TimePs, double*)> fn);

  const Stat* find(const std::string& full_name) const;
  const std::deque<std::unique_ptr<Stat>>& all() const { return stats_; }

  // Appends one sample of every stat at `now_ps`.
  void sample(TimePs now_ps);
  size_t sample_count() const { return sample_times_.size(); }
  // Keeps samples 0, 2, 4, ... of the series (the sampler's bound on its length).
  void drop_every_other_sample();
  const std::vector<TimePs>& sample_times_ps() const { return sample_times_; }
  // Samples of stat i (in registration order): sample_count() rows of width() values.
  const std::vector<double>& series(size_t i) const { return series_[i]; }

 private:
  template <typename T, typename... Args>
  T& add(const std::string& group, const std::string& name, Args&&... args);

  std::deque<std::unique_ptr<Stat>> stats_;
  std::vector<TimePs> sample_times_;
  std::vector<std::vector<double>> series_;
};

}  // namespace tiersim
