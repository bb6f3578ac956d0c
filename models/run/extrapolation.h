// Steady-state fast-forward's second half (run.fast_forward; the first is
// workloads/fast_forward.h). At each simulated step's end it notes every component's energy
// ledger and every cumulative stat (counters, vectors, accumulated scalars), and gives each
// skipped step before it the duration, energy and stat increments interpolated linearly by step
// index between the two simulated steps on either side (each step's own: its snapshot less the
// previous one). After the run: the step records on the extrapolated timeline (each skipped step
// inserted where it falls, the later steps moved by the skipped time), and the skipped steps'
// stat increments added to the registry. Formulas (derived from model state when sampled) are
// not extrapolated.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/core/energy.h"
#include "models/core/records.h"
#include "models/core/summary.h"
#include "workloads/fast_forward.h"

namespace tiersim {

class Component;
class Stat;
class StatsRegistry;

// Every component's energy ledger and every cumulative stat (counters, vectors, accumulated
// scalars) of a run, read as one flat vector of values: what a step not simulated adds to the
// run. Formulas (derived from model state when sampled) are left out. No stat may be registered
// after construction.
class CumulativeState {
 public:
  struct Snapshot {
    std::vector<double> stats;         // per value (a vector stat has several)
    std::vector<EnergyLedger> energy;  // per component, up to the snapshot's time
  };
  CumulativeState(const std::vector<std::unique_ptr<Component>>& components, StatsRegistry& stats);
  size_t values() const { return values_.size(); }
  size_t components() const { return components_.size(); }
  void take(Snapshot& s, TimePs now_ps) const;
  // Adds `extra` (per value) to the stats: counters rounded to integers, scalars and vectors as
  // they are. A negative counter increment is an internal error, or with `clamp_counters`
  // leaves the counter as it is.
  void add_to_stats(const std::vector<double>& extra, bool clamp_counters = false) const;
  // Each component's energy at `end_ps` plus `extra` (per component).
  std::vector<EnergyLedger> energy_with(const std::vector<EnergyLedger>& extra,
                                        TimePs end_ps) const;

 private:
  const std::vector<std::unique_ptr<Component>>& components_;
  const StatsRegistry& stats_;
  size_t registered_ = 0;                         // stats at construction
  std::vector<std::pair<Stat*, size_t>> values_;  // per value: its stat and index
};

// What the skipped steps add to a run. A skipped step after the last simulated one (a run cut
// short by a limit) has no right neighbour: it is left out.
struct Extrapolation {
  std::vector<TokenRecord> records;  // every step up to the last simulated one
  TimePs extra_ps = 0;               // the skipped steps' time
  // Per component: its energy at the run's end plus the skipped steps' (static energy of their
  // span included).
  std::vector<EnergyLedger> energy;
  uint32_t simulated_steps = 0, extrapolated_steps = 0;
  // Items the summary adds after the step counts (a serving run's prediction error).
  std::vector<SummaryItem> items;
};

class StepExtrapolation {
 public:
  StepExtrapolation(const std::vector<std::unique_ptr<Component>>& components, StatsRegistry& stats,
                    const FastForwardWorkload& workload);
  // At a simulated step's end, once its record is appended to `records` (the simulated steps,
  // in order).
  void on_step_end(const std::vector<TokenRecord>& records, TimePs now_ps);
  // After the run, which ended at simulated time `end_ps`: the records and energy with the
  // skipped steps'; then the skipped steps' increments are added to the cumulative stats
  // (counters rounded to integers), after the energy was read (a component's energy may derive
  // from its counters). Call once.
  Extrapolation finish(const std::vector<TokenRecord>& records, TimePs end_ps);

 private:
  using Snapshot = CumulativeState::Snapshot;

  const FastForwardWorkload& workload_;
  CumulativeState state_;
  Snapshot last_, scratch_;              // at the last simulated step's end; a work area
  std::vector<double> last_step_stats_;  // the last simulated step's own increments
  std::vector<EnergyLedger> last_step_energy_;
  size_t skipped_done_ = 0;  // skipped steps given their share so far
  std::vector<double> extra_stats_;
  std::vector<EnergyLedger> extra_energy_;
  std::vector<TimePs> skipped_ps_;  // per skipped step resolved, its duration
  bool finished_ = false;
};

}  // namespace tiersim
