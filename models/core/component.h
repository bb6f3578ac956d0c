// The base of every simulated component: a SystemC module with a Context, a kind (the config's
// oneof case) and the hooks the system builder uses to wire components by links.
#pragma once

#include <memory>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/core/energy.h"
#include "models/core/objects.h"
#include "models/core/sim_time.h"

namespace tiersim {

class Context;
struct GatherPart;
struct SummaryItem;

// What initiators bind to: the base of every TLM target socket of the base protocol.
using TargetSocket = tlm::tlm_base_target_socket_b<>;

struct LinkInfo {
  std::string name;
  TimePs latency_ps = 0;
  const config::SerialLink* serial = nullptr;  // the link's serial model, when it has one
};

class Component : public sc_core::sc_module {
 public:
  // `name` is the sc_module_name the most-derived constructor received.
  Component(const sc_core::sc_module_name& name, Context& ctx, std::string kind)
      : sc_core::sc_module(name), ctx_(ctx), kind_(std::move(kind)) {}

  Context& ctx() { return ctx_; }
  const Context& ctx_const() const { return ctx_; }
  const std::string& component_kind() const { return kind_; }

  // The memory tier this component provides, or kNone.
  virtual Tier tier() const { return Tier::kNone; }
  // Memories expose one target socket that initiators bind to.
  virtual TargetSocket* target_socket() { return nullptr; }
  // Initiators bind to `target` over `link`; false if this component cannot initiate.
  virtual bool connect(Component& target, const LinkInfo& link) { return false; }
  // Called once after all components are created and connected, before simulation.
  virtual void prepare() {}
  // A memory's b_transport without a payload, for initiators that reach it over an ideal wire
  // or a socket bound to it directly: serves [local, local + bytes) (component-local; a
  // scatter-gather read when `gather_parts` > 0, as StreamTiming describes) from `start_ps`
  // (>= now) and counts it exactly as b_transport does, then returns the response status and,
  // when TLM_OK_RESPONSE, the time its last byte is done in `*done_ps` (>= start_ps; b_transport
  // annotates done - now). Only when serves_direct(); others answer
  // TLM_COMMAND_ERROR_RESPONSE. Saves the payload and the socket's indirections per request
  // (the tile chain's cost is its calls; docs/performance.md).
  virtual bool serves_direct() const { return false; }
  virtual tlm::tlm_response_status serve_direct(uint64_t local, uint64_t bytes, bool write,
                                                TimePs start_ps, const GatherPart* gather,
                                                uint32_t gather_parts, TimePs* done_ps) {
    return tlm::TLM_COMMAND_ERROR_RESPONSE;
  }
  // Bytes served, for memories (summary metrics are derived from these).
  virtual uint64_t bytes_read() const { return 0; }
  virtual uint64_t bytes_written() const { return 0; }
  // Adds the component's headline metrics to the run summary (`tokens`: generated tokens).
  virtual void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {}

  // Energy (models/core/energy.h). The kind factory sets the default account: every bit read or
  // written at `pj_per_unit` into `dynamic_part` (compute engines count FLOPs instead), and
  // `static_power_w` for the whole run into `static_part`. Components with more hops or states
  // (HBM background and refresh, SRAM local buffers, links, switches) override add_energy.
  void set_energy(double pj_per_unit, double static_power_w, EnergyPart dynamic_part,
                  EnergyPart static_part) {
    energy_pj_per_unit_ = pj_per_unit;
    static_power_w_ = static_power_w;
    dynamic_part_ = dynamic_part;
    static_part_ = static_part;
  }
  // Adds the energy spent from the start of the run to `now_ps` (>= the last event counted) to
  // `out`, by part; monotonic in `now_ps`. Bits are counted when a request is served (loosely
  // timed: possibly ahead of `now_ps`), static power up to `now_ps`.
  virtual void add_energy(TimePs now_ps, EnergyLedger& out) const {
    out.add(dynamic_part_, energy_units() * energy_pj_per_unit_ * 1e-12);
    out.add(static_part_, static_power_w_ * ps_to_s(now_ps));
  }
  // Whether the component reports energy (a part of the summary's energy breakdown).
  virtual bool has_energy() const { return energy_pj_per_unit_ > 0 || static_power_w_ > 0; }

  // Marks [local_address, local_address + bytes) of this memory as a buffer next to its consumer
  // (staging buffers, activations): memories that charge local buffers their own energy (SRAM)
  // record it; others ignore it. Called from prepare(), before the simulation starts.
  virtual void mark_local_buffer(uint64_t local_address, uint64_t bytes) {}

 protected:
  double energy_pj_per_unit() const { return energy_pj_per_unit_; }
  double static_power() const { return static_power_w_; }
  // The units the default account charges at pj_per_unit: bits read and written.
  virtual double energy_units() const { return double(bytes_read() + bytes_written()) * 8.0; }

 private:
  Context& ctx_;
  std::string kind_;
  double energy_pj_per_unit_ = 0, static_power_w_ = 0;
  EnergyPart dynamic_part_ = EnergyPart::kDramCore;
  EnergyPart static_part_ = EnergyPart::kDeviceStatic;
};

// Sets a freshly built component's energy parameters (for kind factories).
inline std::unique_ptr<Component> with_energy(std::unique_ptr<Component> c, double pj_per_unit,
                                              double static_power_w, EnergyPart dynamic_part,
                                              EnergyPart static_part) {
  c->set_energy(pj_per_unit, static_power_w, dynamic_part, static_part);
  return c;
}

}  // namespace tiersim
