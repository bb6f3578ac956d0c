// The thermal model of an hbm component, plain C++ (the SystemC shell is memory/hbm_thermal.h):
// an RC network over its stacks (memory/thermal_rc.h), each stack's power from its own traffic,
// and what temperature does to the stack: its refresh rate by temperature range and throttling
// with hysteresis; plus the telemetry a controller reads (models/core/thermal_telemetry.h).
//
// What is modelled. Per stack: `dram_layers` DRAM dies in a chain above a base (logic) die, each
// a node with a heat capacity, joined by the bond layer's resistance; the top die couples to the
// package's heat sink (mold, TIM, lid), the base die to the accelerator die (interposer). The
// accelerator die (one node, its constant power) couples to the sink; the sink (one node, shared
// by the package) to the coolant, with a cooling preset (air, cold plate, immersion).
// Heat per stack, from its own counts: the device's access energy (energy_pj_per_bit x its bytes;
// base_die_power_fraction of it in the base die, the rest evenly in the DRAM dies), standby and
// the active increment (its busy time), refresh at its current multiplier (in the DRAM dies), and
// static_power_w / stacks (in the base die). The host PHY, controller and wires
// (phy_energy_pj_per_bit, wire_energy_pj_per_bit) heat the accelerator die.
//
// Time: fixed steps of step_ps; each step integrates the step's mean power exactly
// (memory/thermal_rc.h), then the stacks' hottest-die temperatures set refresh and throttling for
// the next step. The multiplier's time integral (refresh energy) and the time throttled are exact
// for the piecewise-constant states the model applies.
//
// Left out: lateral heat flow between stacks other than through the accelerator die and the sink,
// temperature-dependent leakage, hot spots inside a die, the compute die's power varying with its
// load, the sink's inlet-to-outlet gradient.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/thermal_rc.h"
#include "models/config/errors.h"
#include "models/core/thermal_telemetry.h"
#include "models/core/time.h"

namespace tiersim {

struct HbmThermalParams {
  uint32_t stacks = 1;
  // Network (defaults: docs/models/thermal.md).
  double coolant_c = 40, sink_k_per_w = 0.02, sink_j_per_k = 300;
  uint32_t dram_layers = 8;
  double layer_j_per_k = 0.01, layer_k_per_w = 0.12, base_die_j_per_k = 0.02;
  double top_k_per_w = 0.3, interposer_k_per_w = 10;
  double accelerator_j_per_k = 1.0, accelerator_k_per_w = 0.03, accelerator_power_w = 0;
  double base_die_power_fraction = 0.25;
  bool has_initial_stack_power = false;
  double initial_stack_power_w = 0;
  TimePs step_ps = 100'000'000;  // 100 us
  // Behaviour.
  std::vector<std::pair<double, double>> refresh_steps;  // (above_c, multiplier), ascending
  bool throttle = false;
  double throttle_above_c = 95, throttle_release_c = 90, throttle_bandwidth_fraction = 0.75;
  TimePs telemetry_period_ps = 100'000'000, telemetry_delay_ps = 0;
  // The heat sources (the component's energy fields).
  double device_pj_per_bit = 0, host_pj_per_bit = 0;
  double idle_power_w = 0, active_power_w = 0, refresh_power_w = 0, static_power_w = 0;

  // Node indices: stack s's base die, its DRAM die k (0 lowest), the accelerator die, the sink.
  size_t base_node(uint32_t s) const { return size_t{s} * (dram_layers + 1); }
  size_t die_node(uint32_t s, uint32_t k) const { return base_node(s) + 1 + k; }
  size_t accelerator_node() const { return size_t{stacks} * (dram_layers + 1); }
  size_t sink_node() const { return accelerator_node() + 1; }
  size_t nodes() const { return sink_node() + 1; }

  // The refresh-rate multiplier at `celsius` (the step with the highest above_c below it).
  double refresh_multiplier(double celsius) const;

  // Reports under `thermal.` (v at the hbm section); `fast_level`: the component runs FAST.
  static void validate(const config::HbmFast& c, Validator& v, bool fast_level);
  static HbmThermalParams from_config(const config::HbmFast& c);  // c valid, has thermal
};

class HbmThermalCore : public ThermalTelemetry {
 public:
  explicit HbmThermalCore(const HbmThermalParams& p);

  const HbmThermalParams& params() const { return p_; }

  // Advances to `now_ps` (> the previous step's time) with the stacks' cumulative counts since
  // the run's start: bytes served and busy stack-seconds. Updates temperatures, then each stack's
  // refresh multiplier and throttle state (which the caller applies), and takes a telemetry
  // sample when `now_ps` is a multiple of the period. No allocation.
  void step(TimePs now_ps, const double* stack_bytes, const double* stack_busy_s);

  double node_c(size_t node) const { return t_[node]; }
  double stack_max_c(uint32_t s) const;    // the stack's hottest die (base or DRAM)
  double max_c() const { return max_c_; }  // hottest die of any stack so far
  double refresh_multiplier(uint32_t s) const { return mult_[s]; }
  bool throttled(uint32_t s) const { return throttled_[s] != 0; }
  // The stack's bandwidth factor: throttle_bandwidth_fraction while throttled, else 1.
  double bandwidth_fraction(uint32_t s) const {
    return throttled_[s] ? p_.throttle_bandwidth_fraction : 1.0;
  }
  uint64_t throttle_events(uint32_t s) const { return events_[s]; }
  uint64_t refresh_changes(uint32_t s) const { return refresh_changes_[s]; }
  // Seconds throttled up to `now_ps` (>= the last step's time).
  double throttled_s(uint32_t s, TimePs now_ps) const;
  // Sum over stacks of the refresh multiplier's integral over [0, now_ps] (stack-seconds at x1
  // equivalents): what refresh energy scales with.
  double refresh_multiplier_stack_s(TimePs now_ps) const;
  TimePs last_step_ps() const { return last_ps_; }

  // ThermalTelemetry: one sensor per stack, its hottest die.
  uint32_t sensor_count() const override { return p_.stacks; }
  TemperatureReading read(uint32_t sensor, TimePs now_ps) const override;
  TimePs period_ps() const override { return p_.telemetry_period_ps; }
  TimePs delay_ps() const override { return p_.telemetry_delay_ps; }
  void keep_history(TimePs late_ps) override;

 private:
  void update_states(double dt_s);
  void sample(TimePs now_ps);

  HbmThermalParams p_;
  ThermalRc rc_;
  std::vector<double> t_, power_;
  std::vector<double> last_bytes_, last_busy_;
  std::vector<double> mult_, mult_s_, throttled_acc_s_;
  std::vector<uint8_t> throttled_;
  std::vector<uint64_t> events_, refresh_changes_;
  double max_c_ = -1e300;
  TimePs last_ps_ = 0;
  // Telemetry ring: `ring_` samples of (time, one value per stack), newest at ring_head_.
  size_t ring_ = 0, ring_head_ = 0, ring_count_ = 0;
  std::vector<TimePs> sample_ps_;
  std::vector<double> sample_c_;
};

}  // namespace tiersim
