// The energy of a DRAM component beyond its device's per-bit access energy: the host side of
// the interface and the wires per bit, and IDD-style background power per device (an HBM
// stack), by state.
//
// What is modelled, per device: standby (`idle_power_w`, IDD2N x VDD) for the whole run; the
// active-standby increment (`active_power_w`, (IDD3N - IDD2N) x VDD) for the time the device
// serves (the model's busy time: the fast level's channel servers, the detailed level's data
// bus at peak); refresh (`refresh_power_w`, (IDD5 - IDD3N) x VDD x tRFC / tREFI at x1) times the
// device's refresh-rate multiplier (from its temperature). Left out: power-down and
// self-refresh states (the models never enter them), row activation energy as a function of
// locality (folded into the per-bit device energy), VDDQ termination. With a thermal model the
// refresh multiplier varies over the run and the refresh term takes its integral (piecewise
// constant between the model's steps: exact for what the model applies).
#pragma once

#include <vector>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/energy.h"
#include "models/core/time.h"

namespace tiersim {

struct DramPower {
  double phy_pj_per_bit = 0;               // host PHY and memory controller
  double wire_pj_per_bit = 0;              // interposer / package and on-die wires to the consumer
  double idle_power_w = 0;                 // per device
  double active_power_w = 0;               // per device, while busy
  double refresh_power_w = 0;              // per device at refresh x1
  std::vector<double> refresh_multiplier;  // per device
  // A device's peak data rate: a model without busy servers (the detailed level) takes its busy
  // device-seconds as bytes / this (the data bus at peak).
  double peak_bytes_per_s = 0;

  bool any() const {
    return phy_pj_per_bit > 0 || wire_pj_per_bit > 0 || idle_power_w > 0 || active_power_w > 0 ||
           refresh_power_w > 0;
  }
  // Adds the hops' energy for `bytes` served, and the background for [0, now_ps] with
  // `busy_device_s` device-seconds of service (clamped to the devices' elapsed time). Refresh:
  // `refresh_multiplier_device_s`, the devices' refresh multipliers integrated over [0, now_ps]
  // (a thermal model's, memory/hbm_thermal_core.h), or when negative the fixed multipliers
  // times the elapsed time.
  void add(double bytes, double busy_device_s, TimePs now_ps, EnergyLedger& out,
           double refresh_multiplier_device_s = -1) const;

  static void validate(const config::HbmFast& c, Validator& v);
  // The hbm kind's fields with one refresh multiplier per stack (`multipliers`).
  static DramPower from_config(const config::HbmFast& c, std::vector<double> multipliers);
};

}  // namespace tiersim
