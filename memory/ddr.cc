#include "memory/ddr.h"

#include "memory/bandwidth_memory.h"
#include "models/config/energy_checks.h"
#include "models/config/pool_share.h"
#include "models/core/context.h"
#include "models/core/registry.h"

namespace tiersim {

void validate_ddr(const config::DdrFast& c, Validator& v) {
  if (v.positive("channels", c.has_channels(), c.channels()) && c.channels() > 64) {
    v.error("channels", "at most 64 channels per component");
  }
  v.positive("data_rate_mts", c.has_data_rate_mts(), c.data_rate_mts());
  if (c.has_bus_width_bits()) v.positive("bus_width_bits", true, c.bus_width_bits());
  if (c.has_subchannels()) v.positive("subchannels", true, c.subchannels());
  v.positive("capacity_bytes_per_channel", c.has_capacity_bytes_per_channel(),
             static_cast<double>(c.capacity_bytes_per_channel()));
  v.fraction("efficiency_fraction", c.has_efficiency_fraction(), c.efficiency_fraction());
  v.require("latency_ps", c.has_latency_ps());
  if (v.positive("interleave_bytes", c.has_interleave_bytes(),
                 static_cast<double>(c.interleave_bytes())) &&
      (c.interleave_bytes() & (c.interleave_bytes() - 1)) != 0) {
    v.error("interleave_bytes", "must be a power of two");
  }
  energy_field(v, "energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
}

BandwidthMemoryParams ddr_params(const config::DdrFast& c) {
  BandwidthMemoryParams p{c.channels(),
                          c.has_bus_width_bits() ? c.bus_width_bits() : 64u,
                          c.data_rate_mts(),
                          c.capacity_bytes_per_channel(),
                          c.efficiency_fraction(),
                          c.latency_ps(),
                          c.interleave_bytes()};
  p.channels_per_stack = c.has_subchannels() ? c.subchannels() : 2;
  p.miss_penalty_ps = c.miss_penalty_ps();
  p.turnaround_ps = c.turnaround_ps();
  return p;
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "ddr",
    "host DDR channels interleaved by address: bandwidth servers per sub-channel with latency "
    "and access-pattern penalties (FAST only)",
    [](const config::Config&, const config::Component& comp, Validator& v) {
      if (comp.has_fidelity() && comp.fidelity() == config::DETAILED) {
        v.root("system.components[" + comp.name() + "]")
            .error("fidelity", "the ddr kind has only the FAST level");
      }
      validate_ddr(comp.ddr(), v);
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      // A pod memory node: this accelerator's share of the pool (models/config/pool_share.h).
      const PoolShare share = pool_share_of_memory(ctx.config(), c.name());
      return with_energy(
          std::make_unique<BandwidthMemory>(
              c.name().c_str(), ddr_params(c.ddr()).shared(share.load_multiplier, share.sharers),
              ctx, "ddr", Tier::kDdr),
          c.ddr().energy_pj_per_bit(), c.ddr().static_power_w() / share.sharers,
          EnergyPart::kDramCore, EnergyPart::kDeviceStatic);
    },
    nullptr});
}  // namespace

}  // namespace tiersim
