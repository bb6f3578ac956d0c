// The base of every simulated component: a SystemC module with a Context, a kind (the config's
// oneof case) and the hooks the system builder uses to wire components by links.
#pragma once

#include <memory>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/core/objects.h"
#include "models/core/sim_time.h"

namespace tiersim {

class Context;
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
  // Bytes served, for memories (summary metrics are derived from these).
  virtual uint64_t bytes_read() const { return 0; }
  virtual uint64_t bytes_written() const { return 0; }
  // Adds the component's headline metrics to the run summary (`tokens`: generated tokens).
  virtual void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {}

  // Energy (set from the component's config by the builder): dynamic energy so far, by default
  // every bit read or written at `pj_per_unit` (compute engines count FLOPs instead), and
  // static power.
  void set_energy(double pj_per_unit, double static_power_w) {
    energy_pj_per_unit_ = pj_per_unit;
    static_power_w_ = static_power_w;
  }
  virtual double dynamic_energy_j() const {
    return double(bytes_read() + bytes_written()) * 8.0 * energy_pj_per_unit_ * 1e-12;
  }
  virtual double static_power_w() const { return static_power_w_; }
  virtual bool has_energy() const { return energy_pj_per_unit_ > 0 || static_power_w_ > 0; }

 protected:
  double energy_pj_per_unit() const { return energy_pj_per_unit_; }

 public:
 private:
  Context& ctx_;
  std::string kind_;
  double energy_pj_per_unit_ = 0, static_power_w_ = 0;
};

// Sets a freshly built component's energy parameters (for kind factories).
inline std::unique_ptr<Component> with_energy(std::unique_ptr<Component> c, double pj_per_unit,
                                              double static_power_w) {
  c->set_energy(pj_per_unit, static_power_w);
  return c;
}

}  // namespace tiersim
