// A packet switch (CXL, PCIe or a scale-up fabric switch) as a TLM forwarding component.
//
// What is modelled: a request arriving on any port is routed by the system address map to the
// port on a shortest path toward its target memory (the topology's next links; a port whose
// link is down is skipped when another leads there). Crossing the switch costs the cut-through
// port-to-port latency each way (the payload streams behind the header) and, when set, the
// crossbar's aggregate bandwidth. The links the switch drives (system.links from it) serialise
// with their serial models per direction, at the virtual channel's priority: traffic is mapped
// to a channel by why it moves (decode-critical demand fetches ahead of bulk prefetches), and a
// channel waits only for its own and higher channels' work plus at most one packet of lower
// work. Writes stream through; reads send a request and stream the data back.
// Counted: bytes per virtual channel, requests, requests sent around a down link, requests that
// failed (no port ever up again), and the time requests spend crossing (per channel).
// Fidelity: fast (bandwidth servers with latency); no credit-based flow control, no head-of-line
// blocking inside the crossbar, no multicast. The link into the switch is timed by its
// initiator (the upstream port owns both directions of its link).
#pragma once

#include <tlm_utils/multi_passthrough_initiator_socket.h>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include <array>
#include <memory>
#include <unordered_map>
#include <vector>

#include "configs/tiersim.pb.h"
#include "fabric/link_ports.h"
#include "models/config/errors.h"
#include "models/core/address_map.h"
#include "models/core/bandwidth_server.h"
#include "models/core/component.h"
#include "models/core/movement_intent.h"
#include "models/core/stats.h"

namespace tiersim {

struct SwitchParams {
  uint32_t ports = 0;
  TimePs latency_ps = 0;
  double crossbar_bytes_per_s = 0;  // 0: unlimited
  // Virtual channel (index into names) and priority of each MoveOp.
  std::vector<std::string> vc_names;
  std::vector<uint32_t> vc_priority;
  std::array<uint32_t, 7> vc_of_op{};

  static void validate(const config::Switch& c, Validator& v);
  static SwitchParams from_config(const config::Switch& c);
};

class Switch : public Component {
 public:
  tlm_utils::multi_passthrough_target_socket<Switch> in;
  tlm_utils::multi_passthrough_initiator_socket<Switch> out;

  Switch(sc_core::sc_module_name name, const SwitchParams& params, Context& ctx);

  TargetSocket* target_socket() override { return &in; }
  bool connect(Component& target, const LinkInfo& link) override;

  uint64_t bytes_read() const override { return bytes_.value(); }  // bytes switched (energy)
  // Energy: bits switched (switch_core) and base power (switch_base), plus the links it drives.
  void add_energy(TimePs now_ps, EnergyLedger& out) const override;
  bool has_energy() const override;
  const SwitchParams& params() const { return params_; }

 private:
  void b_transport(int id, tlm::tlm_generic_payload& p, sc_core::sc_time& delay);

  struct Route {
    const Component* target;
    const std::vector<LinkPorts::Port*>* candidates;
  };
  const SwitchParams params_;
  LinkPorts links_;
  std::unordered_map<const AddressRangeInfo*, Route> routes_;  // by address range
  BandwidthServer crossbar_;
  Counter& requests_;
  Counter& bytes_;
  Counter& rerouted_;
  Counter& failed_;
  Vector& bytes_by_vc_;
  std::vector<Histogram*> crossing_ns_;  // per virtual channel
};

}  // namespace tiersim
