#include "memory/dram_power.h"

#include <algorithm>

#include "models/config/energy_checks.h"

namespace tiersim {

void DramPower::add(double bytes, double busy_device_s, TimePs now_ps, EnergyLedger& out,
                    double refresh_multiplier_device_s) const {
  out.add(EnergyPart::kPhyController, bits_energy_j(bytes, phy_pj_per_bit));
  out.add(EnergyPart::kPackageWires, bits_energy_j(bytes, wire_pj_per_bit));
  const double t = ps_to_s(now_ps);
  const double devices = static_cast<double>(refresh_multiplier.size());
  const double busy = std::min(std::max(busy_device_s, 0.0), devices * t);
  out.add(EnergyPart::kDramBackground, idle_power_w * devices * t + active_power_w * busy);
  if (refresh_multiplier_device_s >= 0) {
    out.add(EnergyPart::kDramRefresh, refresh_power_w * refresh_multiplier_device_s);
    return;
  }
  double refresh = 0;
  for (double m : refresh_multiplier)
    refresh += m;
  out.add(EnergyPart::kDramRefresh, refresh_power_w * refresh * t);
}

void DramPower::validate(const config::HbmFast& c, Validator& v) {
  energy_field(v, "energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  energy_field(v, "phy_energy_pj_per_bit", c.has_phy_energy_pj_per_bit(),
               c.phy_energy_pj_per_bit());
  energy_field(v, "wire_energy_pj_per_bit", c.has_wire_energy_pj_per_bit(),
               c.wire_energy_pj_per_bit());
  energy_field(v, "idle_power_w", c.has_idle_power_w(), c.idle_power_w());
  energy_field(v, "active_power_w", c.has_active_power_w(), c.active_power_w());
  energy_field(v, "refresh_power_w", c.has_refresh_power_w(), c.refresh_power_w());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
}

DramPower DramPower::from_config(const config::HbmFast& c, std::vector<double> multipliers) {
  DramPower p;
  p.phy_pj_per_bit = c.phy_energy_pj_per_bit();
  p.wire_pj_per_bit = c.wire_energy_pj_per_bit();
  p.idle_power_w = c.idle_power_w();
  p.active_power_w = c.active_power_w();
  p.refresh_power_w = c.refresh_power_w();
  p.refresh_multiplier = std::move(multipliers);
  p.peak_bytes_per_s = c.pin_data_rate_mbps() * 1e6 * c.bus_width_bits() / 8.0;
  return p;
}

}  // namespace tiersim
