// The power time series of a run: at every stats sample (run.stats_interval_ps, and once at the
// end), the mean power over the interval since the previous sample (the first: since the run's
// start) of the whole system, of each component with energy, and of each energy part
// (models/core/energy.h). Written like every stat: /stats/power/total (W), /stats/power/component
// and /stats/power/part (W, labelled). A thermal model takes its input from the same ledgers.
//
// Fidelity: bits are counted when a request is served, which the loosely timed models do at
// issue (possibly ahead of the sample time): a burst of traffic can land in the interval it was
// issued in rather than the one it moved in. Static power is exact per interval. A sample at
// the time of the previous one (the end of a run on an interval boundary) repeats its values.
// Cost: one ledger per component per sample, no allocation after construction.
#pragma once

#include <memory>
#include <vector>

#include "models/core/energy.h"
#include "models/core/time.h"

namespace tiersim {

class Component;
class Context;

class PowerMonitor {
 public:
  // Registers the stats (before the first sample) when any component has energy; `components`
  // must outlive the monitor.
  PowerMonitor(Context& ctx, const std::vector<std::unique_ptr<Component>>& components);

 private:
  void update(TimePs now_ps);  // once per sample time; later calls at that time reuse it

  std::vector<const Component*> components_;
  std::vector<EnergyLedger> previous_;  // per component, at previous_ps_
  EnergyLedger scratch_;
  std::vector<double> component_w_;
  std::vector<double> part_w_;
  double total_w_ = 0;
  TimePs previous_ps_ = 0;
  TimePs updated_ps_ = UINT64_MAX;
};

}  // namespace tiersim
