// DMA engine: moves a range of bytes from one memory to another.
//
// What is modelled: a per-descriptor setup latency, the engine's own throughput (a bandwidth
// server), the source read and destination write as TLM transactions through the links the
// engine is connected by (each link adds its latency on the request and on the response), and
// address decoding through the system address map. Source and destination stream concurrently
// (cut-through): a transfer completes when the slower of source, destination and engine is done.
//
// Fidelity: fast, loosely timed: transfer() is called from a SystemC process, returns the
// completion time at once, and reserves bandwidth from a start time that may lie ahead of the
// current time (annotated delay). Descriptor queues, channels, priorities and fences arrive with
// the orchestration issue.
#pragma once

#include <tlm_utils/multi_passthrough_initiator_socket.h>

#include <map>
#include <memory>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/bandwidth_server.h"
#include "models/component.h"
#include "models/config_error.h"
#include "models/movement_intent.h"
#include "models/serial_link.h"
#include "models/stats.h"

namespace tiersim {

struct DmaParams {
  double bandwidth_bytes_per_s;
  TimePs setup_latency_ps;

  static void validate(const config::DmaEngine& c, Validator& v);
  static DmaParams from_config(const config::DmaEngine& c);
};

class DmaEngine : public Component {
 public:
  tlm_utils::multi_passthrough_initiator_socket<DmaEngine> socket;

  DmaEngine(sc_core::sc_module_name name, const DmaParams& params, Context& ctx);

  bool connect(Component& target, const LinkInfo& link) override;

  // Moves `bytes` from global address `src` to `dst`, starting no earlier than `start_ps`
  // (>= now). Returns the completion time. `intent` says why; its tiers are filled in here.
  // Both ranges must be mapped to memories this engine is linked to (the builder checks);
  // a target's error response is an internal error (std::logic_error).
  TimePs transfer(uint64_t src, uint64_t dst, uint64_t bytes, MovementIntent intent,
                  TimePs start_ps);

  // Energy of the serial links this engine drives (both directions): bits moved at their
  // pJ/bit, and their static power.
  double dynamic_energy_j() const override;
  double static_power_w() const override;
  bool has_energy() const override;

 private:
  struct Port {
    int socket_index;
    TimePs link_latency_ps;
    Component* target;
    // The link's serial model, one per direction (none: an ideal wire).
    std::unique_ptr<LinkModel> to_target, from_target;
  };
  // The port serving [address, address + bytes) and the target-local address.
  const Port& resolve(uint64_t address, uint64_t bytes, uint64_t* local) const;
  // Issues one transaction; returns its completion time.
  TimePs access(tlm::tlm_command cmd, const Port& port, uint64_t local, uint64_t bytes,
                const MovementIntent& intent, TimePs start_ps);

  const DmaParams params_;
  BandwidthServer engine_;
  std::map<std::string, Port> ports_;  // by target component name
  Counter& transfers_;
  Counter& bytes_;
  Vector& bytes_by_class_;
  Histogram& latency_ns_;
};

}  // namespace tiersim
