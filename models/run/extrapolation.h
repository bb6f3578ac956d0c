// Steady-state fast-forward's second half (run.fast_forward; the first is
// workloads/fast_forward.h): at each simulated step's end, every component's bytes and energy so
// far; after the run, the skipped steps' durations, bytes and energy interpolated linearly by
// step index between the simulated steps on either side, and the run's step records on the
// extrapolated timeline (each skipped step inserted where it falls, the later steps moved by
// the skipped steps' time).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/core/energy.h"
#include "models/core/records.h"
#include "workloads/fast_forward.h"

namespace tiersim {

class Component;

// What the skipped steps add to a run. A skipped step after the last simulated one (a run cut
// short by a limit) has no right neighbour: it is left out.
struct Extrapolation {
  std::vector<TokenRecord> records;        // every step up to the last simulated one
  TimePs extra_ps = 0;                     // the skipped steps' time
  std::vector<double> extra_bytes;         // per component (read + written), in build order
  std::vector<EnergyLedger> extra_energy;  // per component, static energy of the span included
  uint32_t simulated_steps = 0, extrapolated_steps = 0;
  uint64_t simulated_tokens = 0;
};

class StepExtrapolation {
 public:
  explicit StepExtrapolation(const std::vector<std::unique_ptr<Component>>& components);
  // At a simulated step's end (its record just appended), at simulated time `now_ps`.
  void on_step_end(TimePs now_ps);
  // `simulated`: the run's records (simulated steps only, in order); `skipped`: the steps the
  // workload skipped, in order.
  Extrapolation extrapolate(const std::vector<TokenRecord>& simulated,
                            const std::vector<SkippedStep>& skipped) const;

 private:
  const std::vector<std::unique_ptr<Component>>& components_;
  // Per simulated step, per component: cumulative bytes and energy at the step's end.
  std::vector<std::vector<double>> bytes_;
  std::vector<std::vector<EnergyLedger>> energy_;
};

}  // namespace tiersim
