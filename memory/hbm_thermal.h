// The SystemC shell of an hbm component's thermal model (the model: memory/hbm_thermal_core.h):
// a child module of the memory that wakes every step_ps, reads the stacks' counts from its host
// (the fast or detailed level), advances the RC network, and applies each stack's refresh
// multiplier and bandwidth fraction back to the host when they change. It registers the
// temperature stats under the component's name and the component's telemetry in the Context.
//
// Event-driven: one SC_METHOD with a timed trigger per step, nothing per request; it stops
// re-arming once no other activity is pending (the run is over), so it never keeps a finished
// run alive. A state applied at a step holds for requests served from then on (the loosely
// timed fast level reserves at issue: a request issued before the step but moving after it keeps
// the earlier state).
//
// Stats (group = the component): stack_temperature_c, base_die_temperature_c (per stack),
// accelerator_temperature_c, sink_temperature_c, refresh_multiplier, throttled (0/1),
// throttle_events and throttled_s (per stack), telemetry_temperature_c (what a controller reads
// at the last step, per stack; NaN before the first reading is visible).
#pragma once

#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "memory/hbm_thermal_core.h"
#include "models/core/sim_time.h"
#include "models/core/summary.h"

namespace tiersim {

class Context;

// What the thermal model needs from the memory it heats.
// Labels of a per-stack vector stat: stack0, stack1, ...
std::vector<std::string> stack_labels(uint32_t stacks);

class HbmThermalHost {
 public:
  virtual ~HbmThermalHost() = default;
  // Cumulative counts since the run's start, one value per stack: bytes served and busy
  // stack-seconds (the time the stack's data path was serving).
  virtual void thermal_counts(double* stack_bytes, double* stack_busy_s) const = 0;
  // Sets a stack's refresh-rate multiplier and the fraction of its bandwidth it may use.
  virtual void thermal_apply(uint32_t stack, double refresh_multiplier,
                             double bandwidth_fraction) = 0;
};

class HbmThermal : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(HbmThermal);
  // `group`: the component's name (stats group, telemetry key, summary prefix). Applies the
  // initial state to `host` (a stack that starts hot refreshes faster from the start).
  HbmThermal(sc_core::sc_module_name name, const HbmThermalParams& params, HbmThermalHost& host,
             Context& ctx, const std::string& group);

  const HbmThermalCore& core() const { return core_; }
  void start_of_simulation() override;
  // Summary items: <group>_max_temperature_c, _end_temperature_c, _throttle_events,
  // _throttled_s, _refresh_changes (sums over stacks), _telemetry_error_max_c (the largest gap
  // between a stack's telemetry reading and its true temperature at any step: the staleness a
  // controller reading it must tolerate).
  void summarize(std::vector<SummaryItem>& out, TimePs now_ps) const;

 private:
  void tick();
  void apply_all(bool only_changes);

  HbmThermalCore core_;
  HbmThermalHost& host_;
  std::string group_;
  std::vector<double> bytes_, busy_;
  std::vector<double> applied_mult_, applied_frac_;
  double telemetry_error_max_c_ = 0;
  sc_core::sc_event start_;
};

}  // namespace tiersim
