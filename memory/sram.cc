#include "memory/sram.h"

#include "models/context.h"
#include "models/registry.h"

namespace tiersim {

void SramParams::validate(const config::Sram& c, Validator& v) {
  v.positive("capacity_bytes", c.has_capacity_bytes(), static_cast<double>(c.capacity_bytes()));
  v.non_negative("energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  v.non_negative("static_power_w", c.has_static_power_w(), c.static_power_w());
  v.positive("read_bandwidth_bytes_per_s", c.has_read_bandwidth_bytes_per_s(),
             c.read_bandwidth_bytes_per_s());
  v.positive("write_bandwidth_bytes_per_s", c.has_write_bandwidth_bytes_per_s(),
             c.write_bandwidth_bytes_per_s());
  v.require("latency_ps", c.has_latency_ps());
}

SramParams SramParams::from_config(const config::Sram& c) {
  return SramParams{c.capacity_bytes(), c.read_bandwidth_bytes_per_s(),
                    c.write_bandwidth_bytes_per_s(), c.latency_ps()};
}

Sram::Sram(sc_core::sc_module_name name, const SramParams& params, Context& ctx)
    : Component(name, ctx, "sram"),
      socket("socket"),
      params_(params),
      read_port_(params.read_bandwidth_bytes_per_s),
      write_port_(params.write_bandwidth_bytes_per_s),
      bytes_read_(ctx.stats().counter(basename(), "bytes_read", "bytes read", "bytes")),
      bytes_written_(ctx.stats().counter(basename(), "bytes_written", "bytes written", "bytes")) {
  socket.register_b_transport(this, &Sram::b_transport);
  ctx.stats().formula(
      basename(), "read_utilization", "read port busy fraction", "fraction",
      [this](TimePs now) { return now ? static_cast<double>(read_port_.busy_ps()) / now : 0.0; });
  ctx.stats().formula(
      basename(), "write_utilization", "write port busy fraction", "fraction",
      [this](TimePs now) { return now ? static_cast<double>(write_port_.busy_ps()) / now : 0.0; });
}

void Sram::b_transport(int, tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
  const uint64_t addr = p.get_address();
  const uint64_t bytes = p.get_data_length();
  if (bytes == 0 || addr >= params_.capacity_bytes || bytes > params_.capacity_bytes - addr) {
    p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  const TimePs now = now_ps();
  const TimePs start = now + to_ps(delay);
  BandwidthServer& port = p.is_read() ? read_port_ : write_port_;
  const TimePs done = port.reserve(start, bytes) + params_.latency_ps;
  (p.is_read() ? bytes_read_ : bytes_written_).inc(bytes);
  delay = to_sc_time(done - now);
  p.set_response_status(tlm::TLM_OK_RESPONSE);
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "sram", "on-package SRAM scratchpad: read and write ports with bandwidth and latency",
    [](const config::Config&, const config::Component& c, Validator& v) {
      SramParams::validate(c.sram(), v);
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      return with_energy(
          std::make_unique<Sram>(c.name().c_str(), SramParams::from_config(c.sram()), ctx),
          c.sram().energy_pj_per_bit(), c.sram().static_power_w());
    },
    nullptr});
}  // namespace

}  // namespace tiersim
