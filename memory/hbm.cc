// The hbm component kind: HBM stacks at the fast level (BandwidthMemory over BandwidthMemoryParams)
// or the detailed level (HbmDetailed over the command-level `device`), chosen per component by
// `fidelity` (default: run.fidelity); the parameters' validation and the calibration that
// derives the fast level's fields from the detailed level.
#include <algorithm>
#include <sstream>

#include "memory/bandwidth_memory.h"
#include "memory/dram_power.h"
#include "memory/dram_spec.h"
#include "memory/hbm_detailed.h"
#include "memory/hbm_device.h"
#include "memory/hbm_thermal_core.h"
#include "memory/tools/hbm_calibrate.h"
#include "models/core/context.h"
#include "models/core/registry.h"

namespace tiersim {

namespace {
std::string format_multiplier(double m) {
  std::ostringstream os;
  os << m;
  return os.str();
}
}  // namespace

void BandwidthMemoryParams::validate(const config::HbmFast& c, Validator& v, bool fast_level) {
  if (v.positive("stack_count", c.has_stack_count(), c.stack_count()) && c.stack_count() > 64) {
    v.error("stack_count", "at most 64 stacks per component");
  }
  v.positive("bus_width_bits", c.has_bus_width_bits(), c.bus_width_bits());
  v.positive("pin_data_rate_mbps", c.has_pin_data_rate_mbps(), c.pin_data_rate_mbps());
  v.positive("capacity_bytes_per_stack", c.has_capacity_bytes_per_stack(),
             static_cast<double>(c.capacity_bytes_per_stack()));
  v.fraction("efficiency_fraction", c.has_efficiency_fraction(), c.efficiency_fraction());
  v.require("latency_ps", c.has_latency_ps());
  DramPower::validate(c, v);
  if (c.has_temperature_c() && !(c.temperature_c() > -60 && c.temperature_c() < 200)) {
    v.error("temperature_c", "must be in (-60, 200) C");
  }
  if (c.stack_temperature_c_size() > 0 && c.has_stack_count() &&
      static_cast<uint32_t>(c.stack_temperature_c_size()) != c.stack_count()) {
    v.error("stack_temperature_c",
            "give one temperature per stack (" + std::to_string(c.stack_count()) + ") or none");
  }
  for (int i = 0; i < c.stack_temperature_c_size(); ++i) {
    if (!(c.stack_temperature_c(i) > -60 && c.stack_temperature_c(i) < 200)) {
      v.error("stack_temperature_c[" + std::to_string(i) + "]", "must be in (-60, 200) C");
    }
  }
  // The hottest stack decides whether the fast level needs refresh's share.
  double hottest = refresh_multiplier_for(c);
  for (int i = 0; i < c.stack_temperature_c_size(); ++i) {
    hottest = std::max(hottest, refresh_multiplier_for(c, i));
  }
  double last = -1e300;
  for (int i = 0; i < c.refresh_rate_size(); ++i) {
    const auto& s = c.refresh_rate(i);
    Validator sv = v.at("refresh_rate[" + std::to_string(i) + "]");
    if (sv.require("above_c", s.has_above_c()) && s.above_c() <= last) {
      sv.error("above_c", "steps must be in increasing above_c order");
    }
    last = s.above_c();
    sv.at_least("multiplier", s.has_multiplier(), s.multiplier(), 1.0);
  }
  if (c.has_refresh_overhead_fraction() &&
      !(c.refresh_overhead_fraction() >= 0 && c.refresh_overhead_fraction() < 0.5)) {
    v.error("refresh_overhead_fraction", "must be in [0, 0.5)");
  }
  if (hottest > 1.0 && fast_level) {
    if (!c.has_refresh_overhead_fraction()) {
      v.error("refresh_overhead_fraction",
              "needed at this temperature (refresh rate x" + format_multiplier(hottest) +
                  "): the fast level must know refresh's share of the bandwidth; "
                  "`tiersim calibrate` measures it");
    } else if (hottest * c.refresh_overhead_fraction() >= 1.0) {
      v.error("temperature_c", "refresh would take all the bandwidth at this temperature");
    }
  }
  v.positive("channels_per_stack", c.has_channels_per_stack(), c.channels_per_stack());
  v.require("miss_penalty_ps", c.has_miss_penalty_ps());
  v.require("turnaround_ps", c.has_turnaround_ps());
  if (c.has_device() && c.has_channels_per_stack()) {
    const auto& o = c.device().organization();
    if (o.channels() * o.pseudo_channels() != c.channels_per_stack()) {
      v.error("channels_per_stack", "must equal the device's channels x pseudo_channels (" +
                                        std::to_string(o.channels() * o.pseudo_channels()) + ")");
    }
  }
  if (v.positive("interleave_bytes", c.has_interleave_bytes(),
                 static_cast<double>(c.interleave_bytes())) &&
      (c.interleave_bytes() & (c.interleave_bytes() - 1)) != 0) {
    v.error("interleave_bytes", "must be a power of two");
  }
}

double BandwidthMemoryParams::refresh_multiplier_for(const config::HbmFast& c, int stack) {
  double t = c.has_temperature_c() ? c.temperature_c() : 85.0;
  if (stack >= 0 && stack < c.stack_temperature_c_size()) t = c.stack_temperature_c(stack);
  if (c.refresh_rate_size() == 0) return refresh_rate_multiplier(t);
  double m = 1.0, best = -1e300;
  for (const auto& s : c.refresh_rate()) {
    if (t > s.above_c() && s.above_c() > best) {
      best = s.above_c();
      m = s.multiplier();
    }
  }
  return m;
}

BandwidthMemoryParams BandwidthMemoryParams::from_config(const config::HbmFast& c) {
  BandwidthMemoryParams p{c.stack_count(),         c.bus_width_bits(),
                          c.pin_data_rate_mbps(),  c.capacity_bytes_per_stack(),
                          c.efficiency_fraction(), c.latency_ps(),
                          c.interleave_bytes()};
  p.channels_per_stack = c.channels_per_stack();
  p.miss_penalty_ps = c.miss_penalty_ps();
  p.turnaround_ps = c.turnaround_ps();
  p.refresh_multiplier = refresh_multiplier_for(c);
  for (int s = 0; s < c.stack_temperature_c_size(); ++s) {
    p.stack_refresh_multiplier.push_back(refresh_multiplier_for(c, s));
  }
  p.refresh_overhead_fraction = c.refresh_overhead_fraction();
  return p;
}

namespace {
// A sampled run's fast level, calibrated from the device, pays refresh's share r of its bandwidth
// at x1 and m r at multiplier m: every multiplier the run can reach (the stacks' temperatures,
// and with a thermal model every step of the table) must leave it some (a ConfigError naming
// the field otherwise).
void check_sampled_refresh(const config::Component& c, double r) {
  const config::HbmFast& h = c.hbm();
  // Stack temperatures, when given, replace the component's.
  double worst =
      h.stack_temperature_c_size() == 0 ? BandwidthMemoryParams::refresh_multiplier_for(h) : 1.0;
  std::string field = "temperature_c";
  for (int s = 0; s < h.stack_temperature_c_size(); ++s) {
    if (BandwidthMemoryParams::refresh_multiplier_for(h, s) > worst) {
      worst = BandwidthMemoryParams::refresh_multiplier_for(h, s);
      field = "stack_temperature_c[" + std::to_string(s) + "]";
    }
  }
  if (h.has_thermal()) {
    // The temperature can reach any step.
    const double top = h.refresh_rate_size() == 0 ? refresh_rate_multiplier(1e9) : 0.0;
    double table = top;
    for (const auto& step : h.refresh_rate())
      table = std::max(table, step.multiplier());
    if (table > worst) {
      worst = table;
      field = h.refresh_rate_size() == 0 ? "thermal" : "refresh_rate";
    }
  }
  if (worst * r >= 1.0) {
    throw ConfigError(
        {ConfigIssue{{},
                     "system.components[" + c.name() + "].hbm." + field,
                     "at refresh x" + format_multiplier(worst) +
                         " the fast level of a sampled detailed run (calibrated refresh share " +
                         format_multiplier(r) +
                         ") would have no bandwidth left; run every request at the "
                         "command level (no run.detailed_sampling) or lower the multiplier"}});
  }
}

const ComponentRegistrar kRegistrar(ComponentKind{
    "hbm",
    "HBM stacks interleaved by address: bandwidth servers with latency (FAST) or command-level "
    "controllers per pseudo-channel from `device` (DETAILED)",
    [](const config::Config& root, const config::Component& c, Validator& v) {
      const config::Fidelity f = c.has_fidelity() ? c.fidelity() : root.run().fidelity();
      BandwidthMemoryParams::validate(c.hbm(), v, f != config::DETAILED);
      HbmThermalParams::validate(c.hbm(), v, f != config::DETAILED);
      if (f == config::DETAILED && !c.hbm().has_device()) {
        // Reported at the component's level so the path names where to add it.
        v.error("device",
                "detailed fidelity needs the command-level device; merge a preset from "
                "configs/memory/");
      }
      if (c.hbm().has_device()) {
        Validator dv = v.at("device");
        validate_hbm_device(c.hbm().device(), c.hbm(), dv);
      }
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      const config::Fidelity f = c.has_fidelity() ? c.fidelity() : ctx.config().run().fidelity();
      std::vector<double> multipliers;
      for (uint32_t st = 0; st < c.hbm().stack_count(); ++st) {
        multipliers.push_back(BandwidthMemoryParams::refresh_multiplier_for(
            c.hbm(), c.hbm().stack_temperature_c_size() > 0 ? int(st) : -1));
      }
      DramPower power = DramPower::from_config(c.hbm(), std::move(multipliers));
      std::unique_ptr<DramTarget> m;
      if (f == config::DETAILED) {
        const auto& run = ctx.config().run();
        HbmDetailedParams p = HbmDetailedParams::from_config(
            c.hbm(), run.has_detailed_sampling() ? &run.detailed_sampling() : nullptr);
        if (p.sampling) check_sampled_refresh(c, p.sampling->fast.refresh_overhead_fraction);
        m = std::make_unique<HbmDetailed>(c.name().c_str(), p, ctx);
      } else {
        m = std::make_unique<BandwidthMemory>(c.name().c_str(),
                                              BandwidthMemoryParams::from_config(c.hbm()), ctx);
      }
      m->set_power(std::move(power));
      if (c.hbm().has_thermal()) m->enable_thermal(HbmThermalParams::from_config(c.hbm()));
      return with_energy(std::move(m), c.hbm().energy_pj_per_bit(), c.hbm().static_power_w(),
                         EnergyPart::kDramCore, EnergyPart::kDeviceStatic);
    },
    [](const config::Component& c, double duration_us, std::ostream& report) -> std::string {
      if (!c.hbm().has_device()) {
        throw ConfigError({ConfigIssue{
            {},
            "system.components[" + c.name() + "].hbm.device",
            "calibration needs a device (the command-level description); merge a preset from "
            "configs/memory/"}});
      }
      const DramStackSpec spec = dram_spec_from_config(c.hbm().device());
      const HbmCalibration cal = calibrate_hbm(spec, duration_us);
      report << "device: " << c.hbm().device().name() << "\n";
      print_calibration(cal, spec, report);
      const CalibratedFastFields f = calibrated_fast_fields(c.hbm(), cal);
      std::ostringstream fields;
      fields.precision(6);
      fields << "efficiency_fraction: " << f.efficiency_fraction
             << "  # decode_tiles steady-state bandwidth / peak\n"
             << "latency_ps: " << f.latency_ps
             << "  # unloaded_read mean latency less a lone read's service\n"
             << "miss_penalty_ps: " << f.miss_penalty_ps << "  # from random_read\n"
             << "turnaround_ps: " << f.turnaround_ps << "  # from mix_2to1\n"
             << "refresh_overhead_fraction: " << f.refresh_overhead_fraction
             << "  # 1 - stream_read / stream_read with refresh off, at x1\n";
      return fields.str();
    },
    /*detailed_level=*/true});
}  // namespace

}  // namespace tiersim
