// The gddr component kind: graphics DRAM devices on the bandwidth-server memory
// (BandwidthMemory), with GDDR names for its fields. Fidelity: fast only (see GddrFast in the
// schema and docs/models/gddr.md).
#include "memory/bandwidth_memory.h"
#include "models/config/energy_checks.h"
#include "models/core/registry.h"

namespace tiersim {

namespace {

BandwidthMemoryParams gddr_params(const config::GddrFast& c) {
  BandwidthMemoryParams p{c.device_count(),        c.bus_width_bits(),
                          c.pin_data_rate_mbps(),  c.capacity_bytes_per_device(),
                          c.efficiency_fraction(), c.latency_ps(),
                          c.interleave_bytes()};
  p.channels_per_stack = c.has_channels_per_device() ? c.channels_per_device() : 2;
  p.miss_penalty_ps = c.miss_penalty_ps();
  p.turnaround_ps = c.turnaround_ps();
  return p;
}

void validate_gddr(const config::Config& root, const config::Component& comp, Validator& v) {
  const auto& c = comp.gddr();
  if (comp.has_fidelity() && comp.fidelity() == config::DETAILED) {
    v.root("system.components[" + comp.name() + "]")
        .error("fidelity", "the gddr kind has only the FAST level");
  }
  (void)root;
  if (v.positive("device_count", c.has_device_count(), c.device_count()) && c.device_count() > 64) {
    v.error("device_count", "at most 64 devices per component");
  }
  v.positive("bus_width_bits", c.has_bus_width_bits(), c.bus_width_bits());
  v.positive("pin_data_rate_mbps", c.has_pin_data_rate_mbps(), c.pin_data_rate_mbps());
  v.positive("capacity_bytes_per_device", c.has_capacity_bytes_per_device(),
             static_cast<double>(c.capacity_bytes_per_device()));
  v.fraction("efficiency_fraction", c.has_efficiency_fraction(), c.efficiency_fraction());
  v.require("latency_ps", c.has_latency_ps());
  energy_field(v, "energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
  if (v.positive("interleave_bytes", c.has_interleave_bytes(),
                 static_cast<double>(c.interleave_bytes())) &&
      (c.interleave_bytes() & (c.interleave_bytes() - 1)) != 0) {
    v.error("interleave_bytes", "must be a power of two");
  }
  if (c.has_channels_per_device()) v.positive("channels_per_device", true, c.channels_per_device());
}

const ComponentRegistrar kRegistrar(ComponentKind{
    "gddr",
    "graphics DRAM devices (GDDR6/6X/7) interleaved by address: bandwidth servers per channel "
    "with latency (FAST only)",
    validate_gddr,
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      return with_energy(
          std::make_unique<BandwidthMemory>(c.name().c_str(), gddr_params(c.gddr()), ctx, "gddr"),
          c.gddr().energy_pj_per_bit(), c.gddr().static_power_w(), EnergyPart::kDramCore,
          EnergyPart::kDeviceStatic);
    },
    nullptr});

}  // namespace

}  // namespace tiersim
