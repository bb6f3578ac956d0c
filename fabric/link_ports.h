// The links a forwarding component (a DMA engine, a switch) drives, and how a request crosses
// one: shared by initiators and switches so both route, stream and fail the same way.
//
// Each port is one system link from the owner to a neighbour (a memory or a switch) with the
// link's ideal latency and, when it has one, its serial model per direction (owned here: the
// initiator side of a link times both of its directions). Routing: by the request's target
// (from the system address map) over the topology's next links; the first candidate whose link
// is up is taken, else the one that comes back first. Crossing: a write's data streams over the
// link toward the neighbour, a read's request is a message and its data streams back; a
// write's completion is a message back. The neighbour sees the component-local address only
// when it is the target itself.
#pragma once

#include <memory>
#include <string>
#include <tlm>
#include <vector>

#include "fabric/serial_link.h"
#include "models/core/component.h"
#include "models/core/sim_time.h"

namespace tiersim {

class Context;

class LinkPorts {
 public:
  struct Port {
    int socket_index = 0;
    std::string link;
    TimePs latency_ps = 0;
    Component* neighbour = nullptr;
    std::unique_ptr<LinkModel> to, from;  // none: an ideal wire

    bool down_at(TimePs t) const { return to && to->down_at(t); }
    TimePs up_after(TimePs t) const { return to ? to->up_after(t) : t; }
  };
  struct Choice {
    Port* port = nullptr;   // null: the target is not reachable from here
    bool rerouted = false;  // not the first choice: its link was down
    TimePs up_ps = 0;       // when the chosen link is up (>= t; kNever: not again)
  };
  struct Result {
    TimePs done_ps = 0;  // the response is back at the owner (or the failure was seen)
    bool ok = false;
  };

  LinkPorts(Context& ctx, std::string owner) : ctx_(ctx), owner_(std::move(owner)) {}

  // Adds the port for `link` to `neighbour` at initiator socket index `socket_index`, with the
  // faults that name the link.
  void add(Component& neighbour, const LinkInfo& link, int socket_index);
  const std::vector<std::unique_ptr<Port>>& ports() const { return ports_; }

  // The ports toward memory `target`, best first (stable: callers may keep the reference).
  const std::vector<Port*>& candidates(const std::string& target);
  // The port among `candidates` for a request ready at `t`.
  static Choice choose(const std::vector<Port*>& candidates, TimePs t);

  // Sends `p` (global address) over `port` to `next`, its data's first byte ready at `first_ps`
  // and last at `last_ps` (reads: the request is ready at last_ps), at priority `level`.
  // `local` is the target-local address, used when the neighbour is `target` itself.
  Result forward(Port& port, tlm::tlm_fw_transport_if<>& next, tlm::tlm_generic_payload& p,
                 TimePs first_ps, TimePs last_ps, uint32_t level, const Component* target,
                 uint64_t local);

  // Energy of the serial links (both directions) up to `now_ps`: SerDes and retimers per data
  // bit moved, idle and laser power per direction.
  void add_energy(TimePs now_ps, EnergyLedger& out) const;
  bool has_energy() const;

 private:
  Context& ctx_;
  std::string owner_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::map<std::string, std::vector<Port*>> routes_;  // by target, best first (lazily)
  bool frozen_ = false;                               // routes handed out: no more ports
};

}  // namespace tiersim
