#include "accelerators/policies/thermal_gate.h"

#include <algorithm>

namespace tiersim {

const char* thermal_gate_state_name(ThermalGateState s) {
  switch (s) {
    case ThermalGateState::kNormal:
      return "normal";
    case ThermalGateState::kDrain:
      return "drain";
    case ThermalGateState::kCool:
      return "cool";
    case ThermalGateState::kRecover:
      return "recover";
  }
  return "?";
}

void ThermalGate::enter(ThermalGateState s, TimePs now) {
  if (s == state_) return;
  time_ps_[static_cast<size_t>(state_)] += now - entered_ps_;
  state_ = s;
  entered_ps_ = now;
  ++entries_[static_cast<size_t>(s)];
}

double ThermalGate::seconds_in(ThermalGateState s, TimePs now) const {
  TimePs t = time_ps_[static_cast<size_t>(s)];
  if (s == state_ && now > entered_ps_) t += now - entered_ps_;
  return ps_to_s(t);
}

ThermalGateState ThermalGate::observe(TimePs now, bool valid, double celsius, TimePs sampled_ps) {
  ++decisions_;
  if (!valid) return state_;
  if (!have1_ || sampled_ps > t1_) {
    if (have1_) {
      t0_ = t1_;
      c0_ = c1_;
      have0_ = true;
    }
    t1_ = sampled_ps;
    c1_ = celsius;
    have1_ = true;
  }
  predicted_c_ = c1_;
  if (have0_ && t1_ > t0_) {
    const double slope_c_per_ps = (c1_ - c0_) / double(t1_ - t0_);
    const TimePs ahead = (now > t1_ ? now - t1_ : 0) + p_.horizon_ps;
    predicted_c_ = c1_ + slope_c_per_ps * double(ahead);
  }
  const double x = p_.predictive ? std::max(c1_, predicted_c_) : c1_;
  signal_c_ = x;

  const TimePs in_state = now - entered_ps_;
  switch (state_) {
    case ThermalGateState::kNormal:
    case ThermalGateState::kRecover:
      if (x >= p_.cool_above_c) {
        enter(ThermalGateState::kCool, now);
      } else if (x >= p_.drain_above_c) {
        enter(ThermalGateState::kDrain, now);
      } else if (state_ == ThermalGateState::kRecover && in_state >= p_.recover_min_ps) {
        enter(ThermalGateState::kNormal, now);
      }
      break;
    case ThermalGateState::kDrain:
      if (x >= p_.cool_above_c) {
        enter(ThermalGateState::kCool, now);
      } else if (x < p_.recover_below_c) {
        enter(ThermalGateState::kRecover, now);
      }
      break;
    case ThermalGateState::kCool:
      if (in_state < p_.cool_min_ps) break;
      if (x < p_.recover_below_c) {
        enter(ThermalGateState::kRecover, now);
      } else if (x < p_.cool_above_c) {
        enter(ThermalGateState::kDrain, now);
      }
      break;
  }
  return state_;
}

}  // namespace tiersim
