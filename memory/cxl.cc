#include "memory/cxl.h"

#include <algorithm>

#include "memory/ddr.h"
#include "models/config/energy_checks.h"
#include "models/config/pool_share.h"
#include "models/core/context.h"
#include "models/core/registry.h"

namespace tiersim {

TimePs CxlParams::tracker_hold_ps() const {
  const double line_service_ps =
      double(line_bytes) / media.effective_bytes_per_s_per_channel(0) * 1e12;
  return controller_latency_ps + media.latency_ps +
         static_cast<TimePs>(std::llround(line_service_ps));
}

TimePs CxlParams::idle_read_ps() const {
  return host_port_latency_ps + tracker_hold_ps();
}

void CxlParams::validate(const config::CxlExpander& c, Validator& v) {
  v.require("host_port_latency_ps", c.has_host_port_latency_ps());
  v.require("controller_latency_ps", c.has_controller_latency_ps());
  v.positive("read_trackers", c.has_read_trackers(), c.read_trackers());
  v.positive("write_trackers", c.has_write_trackers(), c.write_trackers());
  if (c.has_line_bytes()) v.positive("line_bytes", true, c.line_bytes());
  if (!c.has_media()) {
    v.error("media", "required: the device's DRAM (a DdrFast, e.g. two DDR5-4800 channels)");
  } else {
    Validator mv = v.at("media");
    validate_ddr(c.media(), mv);
  }
  energy_field(v, "controller_energy_pj_per_bit", c.has_controller_energy_pj_per_bit(),
               c.controller_energy_pj_per_bit());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
}

CxlParams CxlParams::from_config(const config::CxlExpander& c) {
  CxlParams p;
  p.host_port_latency_ps = c.host_port_latency_ps();
  p.controller_latency_ps = c.controller_latency_ps();
  p.read_trackers = c.read_trackers();
  p.write_trackers = c.write_trackers();
  p.line_bytes = c.has_line_bytes() ? c.line_bytes() : 64;
  p.media = ddr_params(c.media());
  p.controller_pj_per_bit = c.controller_energy_pj_per_bit();
  return p;
}

CxlExpander::CxlExpander(sc_core::sc_module_name name, const CxlParams& params, Context& ctx)
    : MemoryTarget(name, ctx, "cxl", Tier::kCxl, params.media.capacity_bytes() / params.sharers,
                   {"requests", "requests served"}),
      params_(params),
      media_(params.media.shared(params.load_multiplier, params.sharers)),
      read_trackers_(params.tracker_bytes_per_s(params.read_trackers) / params.load_multiplier),
      write_trackers_(params.tracker_bytes_per_s(params.write_trackers) / params.load_multiplier) {
  register_latency(
      "device_latency",
      "time from a request's arrival at the device to its response leaving the host port",
      Histogram::log2_edges(1, 1 << 24));
}

TimePs CxlExpander::serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) {
  // Trackers pipeline lines: the last line is released after the stream of holds.
  BandwidthServer& trackers = write ? write_trackers_ : read_trackers_;
  const TimePs tracked = trackers.reserve(start_ps, bytes) + params_.media.latency_ps;
  const TimePs media_done =
      media_.serve(addr, bytes, write, start_ps + params_.controller_latency_ps);
  return std::max(tracked, media_done) + params_.host_port_latency_ps;
}

void CxlExpander::add_energy(TimePs now_ps, EnergyLedger& out) const {
  Component::add_energy(now_ps, out);
  out.add(EnergyPart::kPhyController,
          bits_energy_j(double(bytes_read() + bytes_written()), params_.controller_pj_per_bit));
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "cxl",
    "CXL.mem Type-3 expander: host port, device controller, request trackers and DDR media "
    "behind a CXL link (FAST only)",
    [](const config::Config&, const config::Component& c, Validator& v) {
      if (c.has_fidelity() && c.fidelity() == config::DETAILED) {
        v.root("system.components[" + c.name() + "]")
            .error("fidelity", "the cxl kind has only the FAST level");
      }
      CxlParams::validate(c.cxl(), v);
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      // A pod memory node: this accelerator's share of the pool (models/config/pool_share.h).
      CxlParams p = CxlParams::from_config(c.cxl());
      const PoolShare share = pool_share_of_memory(ctx.config(), c.name());
      p.load_multiplier = share.load_multiplier;
      p.sharers = share.sharers;
      return with_energy(std::make_unique<CxlExpander>(c.name().c_str(), p, ctx),
                         c.cxl().media().energy_pj_per_bit(),
                         c.cxl().static_power_w() / share.sharers, EnergyPart::kDramCore,
                         EnergyPart::kDeviceStatic);
    },
    nullptr});
}  // namespace

}  // namespace tiersim
