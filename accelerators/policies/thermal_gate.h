// Thermal-safe admission: the backpressure state machine of a movement controller that reads HBM
// temperature telemetry and gates a serving scheduler (plain C++; the SystemC-side adapter that
// reads the telemetry is accelerators/orchestration/thermal_admission.h).
//
// States and what each permits:
//   NORMAL   admit new requests, run prefill chunks, no backpressure
//   DRAIN    decode only: no new admission, running prefills paused
//   COOL     DRAIN plus backpressure: after each step the scheduler idles for a share
//            `cool_idle_fraction` of the time (the stacks' duty cycle drops to 1 - f); held for
//            at least cool_min_ps
//   RECOVER  running prefills resume, no new admission yet; NORMAL after recover_min_ps
// Transitions compare a signal x with the thresholds: REACTIVE: x = the newest reading of the
// hottest stack; PREDICTIVE: x = max(reading, prediction), the prediction extrapolating the last
// two readings linearly from the sample time to `horizon_ps` past the decision (so it also makes
// up for the telemetry's staleness).
//   NORMAL  -> COOL if x >= cool_above_c, else -> DRAIN if x >= drain_above_c
//   DRAIN   -> COOL if x >= cool_above_c; -> RECOVER if x < recover_below_c
//   COOL    (after cool_min_ps) -> RECOVER if x < recover_below_c,
//           else -> DRAIN if x < cool_above_c
//   RECOVER -> COOL / DRAIN as from NORMAL; -> NORMAL after recover_min_ps
// Decisions happen when the scheduler asks (every step), so states change at step boundaries.
// Without a valid reading (before the first sample is visible) the gate stays where it is.
// With backpressure_only the states change as above but admission and prefills are never held
// back: COOL's idle share is the one action.
// Progress: in every state the scheduler still runs at least min_sequences sequences (the oldest
// running ones, prefill included, then the oldest waiting ones), so a package that cannot cool
// below recover_below_c even when idle slows the run down instead of stopping it.
#pragma once

#include <array>
#include <cstdint>

#include "models/core/time.h"

namespace tiersim {

struct ThermalGateParams {
  bool predictive = false;
  double drain_above_c = 85, cool_above_c = 90, recover_below_c = 82;
  TimePs cool_min_ps = 200'000'000'000, recover_min_ps = 200'000'000'000;  // 200 ms each
  double cool_idle_fraction = 0.25;                                        // [0, 0.95]
  TimePs horizon_ps = 100'000'000'000;                                     // 100 ms
  uint32_t min_sequences = 1;      // progress guarantee (models/core/admission_gate.h)
  bool backpressure_only = false;  // admission and prefills never held back
};

enum class ThermalGateState : uint8_t { kNormal = 0, kDrain, kCool, kRecover };
const char* thermal_gate_state_name(ThermalGateState s);

class ThermalGate {
 public:
  explicit ThermalGate(const ThermalGateParams& p) : p_(p) {}

  // The decision at `now`: the hottest stack's reading as the controller has it (invalid before
  // the first sample is visible). Updates the state; returns it.
  ThermalGateState observe(TimePs now, bool valid, double celsius, TimePs sampled_ps);

  ThermalGateState state() const { return state_; }
  bool admit_new() const { return p_.backpressure_only || state_ == ThermalGateState::kNormal; }
  bool run_prefill() const {
    return p_.backpressure_only || state_ == ThermalGateState::kNormal ||
           state_ == ThermalGateState::kRecover;
  }
  double idle_fraction() const {
    return state_ == ThermalGateState::kCool ? p_.cool_idle_fraction : 0.0;
  }
  // The signal of the last decision (reading or prediction) and the prediction alone (equal to
  // the reading until two readings are known).
  double signal_c() const { return signal_c_; }
  double predicted_c() const { return predicted_c_; }

  // Seconds spent in `s` up to `now` (>= the last decision).
  double seconds_in(ThermalGateState s, TimePs now) const;
  uint64_t entries(ThermalGateState s) const { return entries_[static_cast<size_t>(s)]; }
  uint64_t decisions() const { return decisions_; }

 private:
  void enter(ThermalGateState s, TimePs now);

  ThermalGateParams p_;
  ThermalGateState state_ = ThermalGateState::kNormal;
  TimePs entered_ps_ = 0;
  std::array<TimePs, 4> time_ps_{};
  std::array<uint64_t, 4> entries_{};
  uint64_t decisions_ = 0;
  // The last two distinct readings (sample times t0 < t1).
  bool have0_ = false, have1_ = false;
  TimePs t0_ = 0, t1_ = 0;
  double c0_ = 0, c1_ = 0;
  double signal_c_ = 0, predicted_c_ = 0;
};

}  // namespace tiersim
