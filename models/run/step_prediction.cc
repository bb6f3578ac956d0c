#include "models/run/step_prediction.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/core/component.h"
#include "models/core/stats.h"

namespace tiersim {

namespace {

constexpr size_t kFeatures = StepFeatures::kCount;

// Solves a (p x p, row-major, overwritten) v = e0 by Gaussian elimination with partial pivoting;
// false when a pivot is negligible against the matrix's largest entry.
bool solve_for_intercept(std::vector<double>& a, size_t p, std::vector<double>& v) {
  v.assign(p, 0.0);
  v[0] = 1.0;
  double largest = 0;
  for (double e : a)
    largest = std::max(largest, std::fabs(e));
  if (largest == 0) return false;
  for (size_t c = 0; c < p; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < p; ++r)
      if (std::fabs(a[r * p + c]) > std::fabs(a[pivot * p + c])) pivot = r;
    if (std::fabs(a[pivot * p + c]) <= 1e-12 * largest) return false;
    if (pivot != c) {
      for (size_t k = 0; k < p; ++k)
        std::swap(a[c * p + k], a[pivot * p + k]);
      std::swap(v[c], v[pivot]);
    }
    for (size_t r = c + 1; r < p; ++r) {
      const double f = a[r * p + c] / a[c * p + c];
      if (f == 0) continue;
      for (size_t k = c; k < p; ++k)
        a[r * p + k] -= f * a[c * p + k];
      v[r] -= f * v[c];
    }
  }
  for (size_t c = p; c-- > 0;) {
    double s = v[c];
    for (size_t k = c + 1; k < p; ++k)
      s -= a[c * p + k] * v[k];
    v[c] = s / a[c * p + c];
  }
  return true;
}

}  // namespace

double local_linear_weights(const std::vector<StepFeatures>& train, const StepFeatures& x, size_t k,
                            std::vector<std::pair<size_t, double>>& h, size_t near) {
  const size_t n = train.size();
  if (n == 0 || k == 0) throw std::logic_error("local_linear_weights: nothing to fit on");
  // Nearness: the features' differences in log(1 + x); one constant over the training points
  // takes no part.
  std::array<double, kFeatures> lo, hi;
  lo.fill(INFINITY);
  hi.fill(-INFINITY);
  for (const StepFeatures& t : train) {
    for (size_t j = 0; j < kFeatures; ++j) {
      lo[j] = std::min(lo[j], t.x[j]);
      hi[j] = std::max(hi[j], t.x[j]);
    }
  }
  std::array<size_t, kFeatures> active{};
  std::array<double, kFeatures> scale{}, log_x{};
  size_t na = 0;
  for (size_t j = 0; j < kFeatures; ++j) {
    if (hi[j] > lo[j]) {
      active[na++] = j;
      log_x[j] = std::log1p(std::max(0.0, x.x[j]));
    }
  }
  // The k nearest.
  thread_local std::vector<std::pair<double, size_t>> dist;
  dist.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double d2 = 0;
    for (size_t a = 0; a < na; ++a) {
      const size_t j = active[a];
      const double z = std::log1p(std::max(0.0, train[i].x[j])) - log_x[j];
      d2 += z * z;
    }
    dist[i] = {d2, i};
  }
  k = std::min(k, n);
  std::nth_element(dist.begin(), dist.begin() + static_cast<std::ptrdiff_t>(k - 1), dist.end());
  std::sort(dist.begin(), dist.begin() + static_cast<std::ptrdiff_t>(k));
  const double radius = std::sqrt(dist[near == 0 ? k - 1 : std::min(near, k) - 1].first);
  const double band = std::sqrt(dist[k - 1].first) * 1.0001;
  // Tricube weights on the distance over the farthest neighbour's.
  h.clear();
  double sum_w = 0;
  for (size_t i = 0; i < k; ++i) {
    double w = 1.0;
    if (band > 0) {
      const double u = std::sqrt(dist[i].first) / band, c = 1.0 - u * u * u;
      w = c * c * c;
    }
    if (w <= 0) continue;
    h.emplace_back(dist[i].second, w);
    sum_w += w;
  }
  // The fit's columns: each feature less x's, over its largest such value among the neighbours
  // (a feature all the neighbours share with x takes no part), so the ridge is small against
  // every column however close the neighbours are.
  std::array<double, kFeatures> spread{};
  for (const auto& [i, w] : h) {
    for (size_t a = 0; a < na; ++a) {
      const size_t j = active[a];
      spread[j] = std::max(spread[j], std::fabs(train[i].x[j] - x.x[j]));
    }
  }
  size_t nf = 0;
  for (size_t a = 0; a < na; ++a) {
    const size_t j = active[a];
    if (spread[j] > 0) {
      active[nf++] = j;
      scale[j] = spread[j];
    }
  }
  na = nf;
  // The weighted fit of [1, those columns] with a ridge on the slopes; its value at x is its
  // intercept, e0' (Z'WZ + R)^-1 Z'W y: the weights are W Z v for (Z'WZ + R) v = e0.
  const size_t p = 1 + na;
  thread_local std::vector<double> a, v;
  a.assign(p * p, 0.0);
  std::array<double, kFeatures + 1> z{};
  auto design = [&](size_t i) {
    z[0] = 1.0;
    for (size_t c = 0; c < na; ++c) {
      const size_t j = active[c];
      z[c + 1] = (train[i].x[j] - x.x[j]) / scale[j];
    }
  };
  for (const auto& [i, w] : h) {
    design(i);
    for (size_t r = 0; r < p; ++r)
      for (size_t c = 0; c < p; ++c)
        a[r * p + c] += w * z[r] * z[c];
  }
  for (size_t r = 1; r < p; ++r)
    a[r * p + r] += 1e-10 * sum_w;
  if (h.size() < p || !solve_for_intercept(a, p, v)) {
    for (auto& e : h)
      e.second /= sum_w;  // the local mean
    return radius;
  }
  for (auto& [i, w] : h) {
    design(i);
    double s = 0;
    for (size_t r = 0; r < p; ++r)
      s += z[r] * v[r];
    w *= s;
  }
  return radius;
}

std::vector<SummaryItem> prediction_items(uint32_t out_of_range, const std::vector<double>& errors,
                                          const std::vector<double>& far_errors) {
  std::vector<SummaryItem> items;
  // Signed mean, mean of the absolute values and their 95th percentile, in %.
  auto error_items = [&items](const std::string& prefix, const std::vector<double>& e,
                              bool signed_mean) {
    if (e.empty()) return;
    double mean = 0, abs_mean = 0;
    std::vector<double> abs;
    for (double x : e) {
      mean += x;
      abs_mean += std::fabs(x);
      abs.push_back(std::fabs(x));
    }
    mean /= double(e.size());
    abs_mean /= double(e.size());
    std::sort(abs.begin(), abs.end());
    const size_t i95 = std::min(abs.size() - 1, size_t(std::ceil(0.95 * double(abs.size()))) - 1);
    if (signed_mean) items.push_back({prefix + "error_mean_pct", 100 * mean, "%"});
    items.push_back({prefix + "error_abs_mean_pct", 100 * abs_mean, "%"});
    items.push_back({prefix + "error_abs_p95_pct", 100 * abs[i95], "%"});
  };
  items.push_back({"fast_forward_out_of_range_steps", double(out_of_range), "steps"});
  items.push_back({"fast_forward_checked_steps", double(errors.size()), "steps"});
  error_items("fast_forward_step_", errors, true);
  items.push_back({"fast_forward_far_checked_steps", double(far_errors.size()), "steps"});
  error_items("fast_forward_far_step_", far_errors, false);
  return items;
}

ServingStepPrediction::Params ServingStepPrediction::params(const config::FastForward& ff) {
  Params p;
  p.every_steps = ff.every_steps();
  p.warmup_steps = ff.has_warmup_steps() ? ff.warmup_steps() : 32;
  if (ff.has_neighbour_radius()) p.radius = ff.neighbour_radius();
  return p;
}

ServingStepPrediction::ServingStepPrediction(
    const std::vector<std::unique_ptr<Component>>& components, StatsRegistry& stats,
    const Params& params)
    : params_(params), state_(components, stats) {
  if (params_.every_steps == 0 || params_.warmup_steps == 0 || params_.neighbours == 0 ||
      params_.window < params_.neighbours) {
    throw std::logic_error("ServingStepPrediction: bad parameters");
  }
  width_ = 1 + state_.values() + state_.components() * kEnergyParts;
  // The window's rows stay within 64 MiB (a system with many stats keeps fewer passes, never
  // fewer than four times the neighbours).
  constexpr size_t kWindowBytes = size_t{64} << 20;
  window_ = static_cast<uint32_t>(std::clamp<size_t>(
      kWindowBytes / (width_ * sizeof(double)), size_t{4} * params_.neighbours, params_.window));
  extra_stats_.assign(state_.values(), 0.0);
  extra_energy_.assign(state_.components(), EnergyLedger{});
  row_.assign(width_, 0.0);
}

bool ServingStepPrediction::inside(const StepFeatures& f) const {
  for (size_t j = 0; j < kFeatures; ++j) {
    const double margin = params_.margin * (hi_.x[j] - lo_.x[j]);
    if (f.x[j] < lo_.x[j] - margin || f.x[j] > hi_.x[j] + margin) return false;
  }
  return true;
}

void ServingStepPrediction::add_row(const StepFeatures& f, const std::vector<double>& row) {
  if (features_.size() < window_) {
    features_.push_back(f);
    rows_.insert(rows_.end(), row.begin(), row.end());
  } else {
    features_[next_row_] = f;
    std::copy(row.begin(), row.end(),
              rows_.begin() + static_cast<std::ptrdiff_t>(next_row_ * width_));
    next_row_ = (next_row_ + 1) % window_;
  }
  lo_ = hi_ = features_[0];
  for (const StepFeatures& t : features_) {
    for (size_t j = 0; j < kFeatures; ++j) {
      lo_.x[j] = std::min(lo_.x[j], t.x[j]);
      hi_.x[j] = std::max(hi_.x[j], t.x[j]);
    }
  }
}

double ServingStepPrediction::predict(const StepFeatures& f, std::vector<double>& out) {
  const double near =
      local_linear_weights(features_, f, params_.neighbours, h_, params_.near_neighbours);
  out.assign(width_, 0.0);
  thread_local std::vector<double> least;
  least.assign(width_, INFINITY);
  for (const auto& [i, w] : h_) {
    const double* r = rows_.data() + i * width_;
    for (size_t c = 0; c < width_; ++c) {
      out[c] += w * r[c];
      least[c] = std::min(least[c], r[c]);
    }
  }
  for (size_t c = 0; c < width_; ++c)
    if (least[c] >= 0 && out[c] < 0) out[c] = 0;
  return near;
}

bool ServingStepPrediction::simulate(uint32_t step, const StepFeatures& f, TimePs now_ps,
                                     TimePs* duration_ps) {
  if (finished_) throw std::logic_error("ServingStepPrediction: used after finish");
  ++passes_;
  bool check = false, far = false;
  bool sim = passes_ <= params_.warmup_steps || features_.empty();
  if (!sim) {
    // Predicted first: the fit, and how near the simulated passes it rests on are.
    const double near = predict(f, fit_);
    if (!inside(f) || near > params_.radius) {
      sim = true;
      ++novel_;
      // Inside the box, the fit is an interpolation: what it would have erred by is measured.
      far = inside(f);
    } else if (since_simulated_ + 1 >= params_.every_steps) {
      sim = true;
      check = true;
    }
  }
  pending_ = true;
  pending_step_ = step;
  pending_predicted_ = !sim;
  state_.take(start_, now_ps);
  if (sim) {
    pending_features_ = f;
    pending_prediction_ps_ = check || far ? fit_[0] : -1;
    pending_far_ = far;
    since_simulated_ = 0;
    return true;
  }
  // The fit stands in for the pass: booked at its end, less what the wait itself booked.
  pending_fit_.swap(fit_);
  ++since_simulated_;
  *duration_ps = std::max<TimePs>(1, static_cast<TimePs>(std::llround(pending_fit_[0])));
  return false;
}

void ServingStepPrediction::on_step_end(const TokenRecord& rec) {
  if (!pending_ || rec.step != pending_step_) return;
  pending_ = false;
  state_.take(end_, rec.end_ps);
  const size_t e0 = 1 + state_.values();
  if (pending_predicted_) {
    predicted_steps_.push_back(rec.step);
    for (size_t v = 0; v < state_.values(); ++v)
      extra_stats_[v] += pending_fit_[1 + v] - (end_.stats[v] - start_.stats[v]);
    for (size_t c = 0; c < state_.components(); ++c)
      for (size_t p = 0; p < kEnergyParts; ++p)
        extra_energy_[c].j[p] +=
            pending_fit_[e0 + c * kEnergyParts + p] - (end_.energy[c].j[p] - start_.energy[c].j[p]);
    return;
  }
  const double simulated = double(rec.end_ps - rec.start_ps);
  row_[0] = simulated;
  for (size_t v = 0; v < state_.values(); ++v)
    row_[1 + v] = end_.stats[v] - start_.stats[v];
  for (size_t c = 0; c < state_.components(); ++c)
    for (size_t p = 0; p < kEnergyParts; ++p)
      row_[e0 + c * kEnergyParts + p] = end_.energy[c].j[p] - start_.energy[c].j[p];
  if (pending_prediction_ps_ >= 0 && simulated > 0) {
    (pending_far_ ? far_errors_ : errors_)
        .push_back((pending_prediction_ps_ - simulated) / simulated);
  }
  add_row(pending_features_, row_);
}

Extrapolation ServingStepPrediction::finish(const std::vector<TokenRecord>& records,
                                            TimePs end_ps) {
  if (finished_) throw std::logic_error("ServingStepPrediction: finished twice");
  finished_ = true;
  Extrapolation x;
  x.records = records;
  size_t s = 0;
  for (TokenRecord& r : x.records) {
    while (s < predicted_steps_.size() && predicted_steps_[s] < r.step)
      ++s;
    r.extrapolated = s < predicted_steps_.size() && predicted_steps_[s] == r.step;
  }
  x.extrapolated_steps = static_cast<uint32_t>(predicted_steps_.size());
  x.simulated_steps = static_cast<uint32_t>(records.size() - predicted_steps_.size());
  x.energy = state_.energy_with(extra_energy_, end_ps);
  // A counter the waits ticked more than the fits did (a time-driven count) is left as counted.
  state_.add_to_stats(extra_stats_, /*clamp_counters=*/true);

  x.items = prediction_items(novel_, errors_, far_errors_);
  return x;
}

}  // namespace tiersim
