#include "models/run/extrapolation.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "models/core/component.h"
#include "models/core/stats.h"

namespace tiersim {

CumulativeState::CumulativeState(const std::vector<std::unique_ptr<Component>>& components,
                                 StatsRegistry& stats)
    : components_(components), stats_(stats) {
  // The stats that hold their own totals. Formulas (a VectorFormula reports kVector too) derive
  // their values from model state when sampled: they are not extrapolated.
  for (const auto& s : stats.all()) {
    if (std::strcmp(s->sampling(), "cumulative") != 0) continue;
    if (dynamic_cast<const Counter*>(s.get()) || dynamic_cast<const Scalar*>(s.get())) {
      values_.emplace_back(s.get(), 0);
    } else if (dynamic_cast<const Vector*>(s.get())) {
      for (size_t i = 0; i < s->width(); ++i)
        values_.emplace_back(s.get(), i);
    }
  }
  registered_ = stats.all().size();
}

void CumulativeState::take(Snapshot& s, TimePs now_ps) const {
  if (stats_.all().size() != registered_) {
    throw std::logic_error("CumulativeState: a stat was registered during the run");
  }
  s.stats.resize(values_.size());
  for (size_t v = 0; v < values_.size(); ++v) {
    const Stat* st = values_[v].first;
    switch (st->kind()) {
      case StatKind::kCounter:
        s.stats[v] = double(static_cast<const Counter*>(st)->value());
        break;
      case StatKind::kScalar:
        s.stats[v] = static_cast<const Scalar*>(st)->value();
        break;
      default:  // a Vector (checked at construction)
        s.stats[v] = static_cast<const Vector*>(st)->value(values_[v].second);
    }
  }
  s.energy.assign(components_.size(), EnergyLedger{});
  for (size_t c = 0; c < components_.size(); ++c)
    components_[c]->add_energy(now_ps, s.energy[c]);
}

void CumulativeState::add_to_stats(const std::vector<double>& extra, bool clamp_counters) const {
  for (size_t v = 0; v < values_.size(); ++v) {
    Stat* st = values_[v].first;
    const double e = extra[v];
    if (e == 0) continue;
    switch (st->kind()) {
      case StatKind::kCounter:
        if (e < 0) {
          if (clamp_counters) break;
          throw std::logic_error("CumulativeState: a negative counter increment");
        }
        static_cast<Counter*>(st)->inc(static_cast<uint64_t>(std::llround(e)));
        break;
      case StatKind::kScalar:
        static_cast<Scalar*>(st)->add(e);
        break;
      default:
        static_cast<Vector*>(st)->add(values_[v].second, e);
    }
  }
}

std::vector<EnergyLedger> CumulativeState::energy_with(const std::vector<EnergyLedger>& extra,
                                                       TimePs end_ps) const {
  std::vector<EnergyLedger> out(components_.size());
  for (size_t c = 0; c < components_.size(); ++c) {
    components_[c]->add_energy(end_ps, out[c]);
    for (size_t p = 0; p < kEnergyParts; ++p)
      out[c].j[p] += extra[c].j[p];
  }
  return out;
}

StepExtrapolation::StepExtrapolation(const std::vector<std::unique_ptr<Component>>& components,
                                     StatsRegistry& stats, const FastForwardWorkload& workload)
    : workload_(workload), state_(components, stats) {
  const size_t values = state_.values(), n = state_.components();
  last_.stats.assign(values, 0.0);
  last_.energy.assign(n, EnergyLedger{});
  last_step_stats_.assign(values, 0.0);
  last_step_energy_.assign(n, EnergyLedger{});
  extra_stats_.assign(values, 0.0);
  extra_energy_.assign(n, EnergyLedger{});
}

void StepExtrapolation::on_step_end(const std::vector<TokenRecord>& records, TimePs now_ps) {
  state_.take(scratch_, now_ps);
  // This step's own increments: its snapshot less the previous simulated step's.
  for (size_t v = 0; v < state_.values(); ++v)
    scratch_.stats[v] -= last_.stats[v];
  for (size_t c = 0; c < state_.components(); ++c) {
    for (size_t p = 0; p < kEnergyParts; ++p)
      scratch_.energy[c].j[p] -= last_.energy[c].j[p];
  }
  // The skipped steps between the previous simulated step and this one.
  const std::vector<SkippedStep>& skipped = workload_.skipped();
  const TokenRecord& b = records.back();
  for (; skipped_done_ < skipped.size() && skipped[skipped_done_].step < b.step; ++skipped_done_) {
    if (records.size() < 2) throw std::logic_error("StepExtrapolation: a skipped first step");
    const TokenRecord& a = records[records.size() - 2];
    const double w = double(skipped[skipped_done_].step - a.step) / double(b.step - a.step);
    const double da = double(a.end_ps - a.start_ps), db = double(b.end_ps - b.start_ps);
    skipped_ps_.push_back(static_cast<TimePs>(std::llround(da + w * (db - da))));
    for (size_t v = 0; v < state_.values(); ++v) {
      extra_stats_[v] += last_step_stats_[v] + w * (scratch_.stats[v] - last_step_stats_[v]);
    }
    for (size_t c = 0; c < state_.components(); ++c) {
      for (size_t p = 0; p < kEnergyParts; ++p) {
        const double ea = last_step_energy_[c].j[p], eb = scratch_.energy[c].j[p];
        extra_energy_[c].j[p] += ea + w * (eb - ea);
      }
    }
  }
  // Keep this step's increments and its cumulative snapshot.
  for (size_t v = 0; v < state_.values(); ++v) {
    last_step_stats_[v] = scratch_.stats[v];
    last_.stats[v] += scratch_.stats[v];
  }
  for (size_t c = 0; c < state_.components(); ++c) {
    last_step_energy_[c] = scratch_.energy[c];
    for (size_t p = 0; p < kEnergyParts; ++p)
      last_.energy[c].j[p] += scratch_.energy[c].j[p];
  }
}

Extrapolation StepExtrapolation::finish(const std::vector<TokenRecord>& records, TimePs end_ps) {
  if (finished_) throw std::logic_error("StepExtrapolation: finished twice");
  finished_ = true;
  const std::vector<SkippedStep>& skipped = workload_.skipped();
  Extrapolation x;
  x.simulated_steps = static_cast<uint32_t>(records.size());
  x.extrapolated_steps = static_cast<uint32_t>(skipped_ps_.size());
  x.records.reserve(records.size() + skipped_ps_.size());
  size_t s = 0;  // the next skipped step resolved
  TimePs offset = 0;
  for (const TokenRecord& b : records) {
    for (; s < skipped_ps_.size() && skipped[s].step < b.step; ++s) {
      const TimePs start = x.records.back().end_ps;
      x.records.push_back(TokenRecord{skipped[s].step, start, start + skipped_ps_[s],
                                      skipped[s].tokens, skipped[s].sequences, b.tenant, true});
      offset += skipped_ps_[s];
    }
    TokenRecord moved = b;
    moved.start_ps += offset;
    moved.end_ps += offset;
    x.records.push_back(moved);
  }
  x.extra_ps = offset;
  x.energy = state_.energy_with(extra_energy_, end_ps);
  // Then the stats (increments interpolate between two steps' own, w in (0, 1): never negative).
  state_.add_to_stats(extra_stats_);
  return x;
}

}  // namespace tiersim
