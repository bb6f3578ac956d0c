// A pod's scale-up fabric (system.pod), plain C++: the links and switches a topology generator
// lays out for `nodes` accelerators, the length of every hop from the racks' layout (refused
// beyond its medium's reach), deterministic routes, and the flow network that carries
// collectives over them (fabric/collectives.h).
// Contract:
// - Vertices: node[0 .. nodes-1], then switch[0 ..] (single switch: one, or one per domain
//   with a scale-out network; leaf/spine: the leaves, then the spines), then the scale-out
//   switches (rail[0 ..] or one scale_out_switch).
// - Scale-out (system.pod.scale_out): nodes form domains of domain_nodes consecutive nodes,
//   each on its own scale-up switch; every node's NIC link goes to its scale-out switch (its
//   rail's, or the one switch). Traffic within a domain stays on its scale-up switch.
// - A link is one direction of a bundle: its data rate is its SerialLink's (lanes, lane rate,
//   encoding, flits, link layer), less the expected cost of replays, retrains and request
//   headers; its latency is the SerialLink's fixed latency (PHY, FEC, retimers, propagation over
//   the hop's length) plus its mean jitter and the cut-through latency of the switch it leaves,
//   if any. Every route starts with the sending node's injection link (the node's
//   collective engine: scale_up.rank_bandwidth_bytes_per_s, no latency), except one leaving
//   its domain by the NIC.
// - Routes: via the switch (single switch); up to the leaf, to spine (a + b) mod spines, down
//   (leaf/spine; the same leaf: not via a spine); the shorter way round (ring; ties forward);
//   dimension-ordered, the shorter way in each dimension (torus; ties forward); the direct
//   link (fully connected). Between domains: NIC to the scale-out switch, down to the
//   destination's NIC (one switch, or the same rail); on rails, a destination of another
//   local rank is reached through the node of the sender's local rank in its domain, which
//   forwards over its scale-up switch.
// - A switch's output ports deliver switch.contended_port_efficiency of their rate while flows
//   from several input ports share them; rates are recomputed within rate_tolerance
//   (FlowNetwork's contract).
// - level POD_SERIAL_LINK: the same flows as packets through each link's serial model (its
//   SerialLink, seeded per link) plus the switch's crossing (FlowNetwork's serial-link level).
// Fidelity: flow level (max-min fair rates); no packet arbitration inside switches beyond the
// contended-port efficiency, no adaptive routing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "configs/tiersim.pb.h"
#include "fabric/flow_network.h"
#include "fabric/serial_link.h"
#include "models/config/errors.h"
#include "models/core/time.h"

namespace tiersim {

struct PodLink {
  uint32_t from = 0, to = 0;  // vertices
  double length_m = 0;
  LinkParams params;                // its length_m is the hop's
  TimePs latency_ps = 0;            // fixed latency, mean jitter, switch crossing
  double capacity_bytes_per_s = 0;  // data rate less replays, retrains and headers
  bool spine = false;               // a leaf-spine link (spine_link)
  bool nic = false;                 // a scale-out NIC link (scale_out.nic_link)
  // The switch it leaves, if any: its cut-through latency (in latency_ps) and its output
  // port's share of its rate while flows from several input ports share it.
  TimePs switch_latency_ps = 0;
  double contended_efficiency = 1.0;
};

class Pod {
 public:
  // Checks `p` (paths under `v`, which points at system.pod), including every hop's reach and
  // every switch's radix. Returns whether it is valid.
  static bool validate(const config::Pod& p, Validator& v);
  // `injection_bytes_per_s`: each node's collective engine (> 0). `p` must be valid.
  static Pod from_config(const config::Pod& p, double injection_bytes_per_s);

  uint32_t nodes() const { return nodes_; }
  uint32_t switches() const { return switches_; }  // scale-up and scale-out
  // Nodes per scale-up domain: scale_out.domain_nodes, else every node (one domain).
  uint32_t domain_nodes() const { return domain_nodes_; }
  uint32_t domain_of(uint32_t node) const { return node / domain_nodes_; }
  bool scale_out() const {
    return scale_out_topology_ != config::POD_SCALE_OUT_TOPOLOGY_UNSPECIFIED;
  }
  // Chunks a step's `bytes` are pipelined in: ceil(bytes / chunk_bytes) in [1, max_chunks].
  uint32_t chunks(uint64_t bytes) const {
    const uint64_t c = (bytes + chunk_bytes_ - 1) / chunk_bytes_;
    return static_cast<uint32_t>(std::max<uint64_t>(1, std::min<uint64_t>(c, max_chunks_)));
  }
  config::PodTopology topology() const { return topology_; }
  const std::vector<PodLink>& links() const { return links_; }
  std::string vertex_name(uint32_t v) const;
  // Whether IN_SWITCH collectives are possible on node[0 .. ranks-1]: a scale-up switch that
  // reduces, and every rank in one domain.
  bool in_switch_reduction(uint32_t ranks) const {
    return reduce_bytes_per_s_ > 0 && ranks <= domain_nodes_;
  }
  // The serial-link level's packet size (0: flow level).
  uint64_t packet_bytes() const { return packet_bytes_; }

  // A flow network with the pod's links (ids = indices of links()), then one injection link
  // per node (injection_link()), then, with in-switch reduction, one reduction port per node
  // (reduction_link()).
  FlowNetwork network() const;
  uint32_t injection_link(uint32_t node) const { return uint32_t(links_.size()) + node; }
  uint32_t reduction_link(uint32_t node) const { return uint32_t(links_.size()) + nodes_ + node; }
  uint32_t up_link(uint32_t node) const { return up_[node]; }      // to its domain's switch
  uint32_t down_link(uint32_t node) const { return down_[node]; }  // single switch
  // Appends the route's links from node `a` to node `b` (a != b), injection link first (not
  // on a route that leaves the domain by the NIC: the NIC reads the node's memory itself).
  void route(uint32_t a, uint32_t b, std::vector<uint32_t>& out) const;

  // Power drawn whatever the traffic: every link direction's static (idle SerDes) power, its
  // laser power, and every switch's static power.
  double link_idle_power_w() const;
  double laser_power_w() const;
  double switch_power_w() const {
    return switch_static_power_w_ * (switches_ - scale_out_switches_) +
           scale_out_switch_power_w_ * scale_out_switches_;
  }
  double static_power_w() const { return link_idle_power_w() + laser_power_w() + switch_power_w(); }
  // Ports: link ends (one per link direction: a bidirectional bundle has two ends). Reported
  // figures: the media's cost (port_cost_usd per end) plus the switches' (cost_usd each), and
  // the links' standing power (idle SerDes and lasers) per port.
  uint32_t ports() const { return static_cast<uint32_t>(links_.size()); }
  double cost_usd() const;
  double link_power_w_per_port() const {
    return links_.empty() ? 0.0 : (link_idle_power_w() + laser_power_w()) / double(ports());
  }

 private:
  // Lays out the topology; reports problems to `v` when given (validation), else throws.
  static Pod build(const config::Pod& p, double injection_bytes_per_s, Validator* v);
  enum class LinkKind : uint8_t { kNode, kSpine, kNic };
  // The link's latency includes the cut-through latency of the switch it leaves (a scale-up or
  // a scale-out one), and its contended efficiency is that switch's.
  uint32_t add_link(uint32_t from, uint32_t to, const LinkParams& medium, LinkKind kind,
                    double rack_pitch_m, Validator* v, const char* field, double reach_m);
  bool is_scale_out_switch(uint32_t vertex) const {
    return vertex >= nodes_ + switches_ - scale_out_switches_;
  }
  uint32_t find(uint32_t from, uint32_t to) const;
  uint32_t rack_of(uint32_t vertex) const;

  uint32_t nodes_ = 0, switches_ = 0, max_chunks_ = 32;
  uint64_t chunk_bytes_ = 1 << 20;
  config::PodTopology topology_ = config::POD_TOPOLOGY_UNSPECIFIED;
  uint32_t nodes_per_rack_ = 1, nodes_per_leaf_ = 0, spines_ = 0;
  std::vector<uint32_t> dims_;  // torus
  std::vector<uint32_t> vertex_rack_;
  double injection_bytes_per_s_ = 0, reduce_bytes_per_s_ = 0;
  double switch_static_power_w_ = 0, switch_cost_usd_ = 0;
  double rate_tolerance_ = 0, contended_port_efficiency_ = 1.0;
  uint64_t packet_bytes_ = 0;  // the serial-link level's packets (0: flow level)
  TimePs switch_latency_ps_ = 0;
  // Scale-out (system.pod.scale_out): domains of domain_nodes_ (nodes_ without one).
  uint32_t domain_nodes_ = 0, scale_out_switches_ = 0;
  config::PodScaleOutTopology scale_out_topology_ = config::POD_SCALE_OUT_TOPOLOGY_UNSPECIFIED;
  TimePs scale_out_latency_ps_ = 0;
  double scale_out_contended_efficiency_ = 1.0;
  double scale_out_switch_power_w_ = 0, scale_out_switch_cost_usd_ = 0;
  std::vector<uint32_t> nic_up_, nic_down_;
  std::vector<PodLink> links_;
  std::vector<uint32_t> up_, down_;
  std::unordered_map<uint64_t, uint32_t> by_ends_;
  bool node_reach_reported_ = false, spine_reach_reported_ = false, nic_reach_reported_ = false;
};

}  // namespace tiersim
