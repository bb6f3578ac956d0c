// Collectives as traffic on a pod's links (fabric/pod.h), plain C++: each algorithm is a set of
// flows with the dependencies of its steps, run on the pod's flow network.
// Sizes (per rank): all-reduce of an n-byte buffer; all-gather of n bytes from every rank (each
// ends with ranks x n); reduce-scatter of an n-byte buffer (each ends with n / ranks); all-to-
// all of n bytes per rank, n / ranks to each rank (its own share stays). The ranks are
// node[0 .. ranks-1]; the ring is their index order.
// Algorithms (C chunks: Pod::chunks() of what a rank sends in a step; every step after the first
// waits for its input to arrive plus step_latency_ps, the ranks' synchronisation; a sender's
// chunks leave in order, on one channel; in-switch reductions and multicasts use two):
// - RING: all-reduce = reduce-scatter then all-gather, 2(p-1) steps of n/p bytes in C chunks;
//   all-gather and reduce-scatter p-1 steps; all-to-all: p-1 pairwise steps (step k: rank r
//   sends to r+k once its step k-1 message has arrived).
// - ONE_SHOT: every rank sends what each other rank needs directly, at once (all-reduce: its
//   whole buffer to every other rank, which reduces locally).
// - TREE (all-reduce only): a binary tree in rank order (parent of r is (r-1)/2); each chunk of
//   n/C is reduced up the tree, then broadcast down it; up and down are separate channels.
// - TWO_SHOT (all-reduce): every rank sends each peer that peer's n/p shard at once; once a
//   rank has its peers' parts of its shard (and step_latency_ps), it sends the reduced shard to
//   every peer at once. All-gather: as ONE_SHOT; reduce-scatter: the first phase.
// - IN_SWITCH (a single switch that reduces): all-reduce = every rank sends its buffer up
//   through its reduction port, receives its reduced n/p shard, sends it up once, and the
//   switch multicasts it to the others; all-gather = each rank's n sent up once and multicast;
//   reduce-scatter = the first half of the all-reduce.
// Protocols (CollectiveProtocol, e.g. NCCL's LL, LL128 and Simple): PodCollectiveCache runs
// each collective under each protocol of its list and each algorithm the protocol runs (its
// step latency; its wire bytes, the data over the protocol's wire efficiency) and keeps the
// fastest pair, launch latency included.
// Fidelity: flow level (fabric/flow_network.h); protocol overheads beyond the launch and step
// latencies, the wire efficiency and the links' own efficiency are not modelled.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "configs/tiersim.pb.h"
#include "fabric/flow_network.h"
#include "fabric/pod.h"
#include "models/core/time.h"

namespace tiersim {

enum class CollectiveOp : uint8_t { kAllReduce, kAllGather, kReduceScatter, kAllToAll };

const char* collective_op_name(CollectiveOp op);
// nccl-tests' bus bandwidth factor: algorithm bandwidth x this = bus bandwidth.
double bus_bandwidth_factor(CollectiveOp op, uint32_t ranks);

// One protocol of a collective library: the fixed cost of a collective with it (kernel launch,
// set-up), what each step adds (the ranks' synchronisation), and the share of the bytes on the
// wire that are data (NCCL's LL: 8-byte words of 4 data bytes and a 4-byte flag, 0.5; LL128:
// 120 of 128 bytes; Simple: 1).
struct CollectiveProtocol {
  std::string name;
  TimePs launch_latency_ps = 0;
  TimePs step_latency_ps = 0;
  double wire_efficiency = 1.0;  // [0.01, 1]
  // Those it runs; empty: every one but TWO_SHOT, which a protocol runs only when it lists it.
  std::vector<config::CollectiveAlgorithm> algorithms;
  // The calls it serves: `operations` with messages of [min_message_bytes, max_message_bytes]
  // data bytes (one rank's buffer) on [min_ranks, max_ranks] ranks.
  uint64_t min_message_bytes = 0;
  uint64_t max_message_bytes = UINT64_MAX;
  uint32_t min_ranks = 0;
  uint32_t max_ranks = UINT32_MAX;
  std::vector<CollectiveOp> operations;  // those it serves; empty: every one

  bool runs(config::CollectiveAlgorithm a) const {
    if (algorithms.empty()) return a != config::TWO_SHOT;
    return std::find(algorithms.begin(), algorithms.end(), a) != algorithms.end();
  }
  bool serves(CollectiveOp op, uint64_t message_bytes, uint32_t ranks) const {
    return message_bytes >= min_message_bytes && message_bytes <= max_message_bytes &&
           ranks >= min_ranks && ranks <= max_ranks &&
           (operations.empty() ||
            std::find(operations.begin(), operations.end(), op) != operations.end());
  }

  // Bytes on the wire for `data` bytes of payload (rounded up).
  uint64_t wire_bytes(uint64_t data) const {
    if (wire_efficiency >= 1.0) return data;
    return static_cast<uint64_t>(std::ceil(double(data) / wire_efficiency));
  }
};

struct CollectiveResult {
  TimePs launch_ps = 0;     // the protocol's launch latency (PodCollectiveCache's results)
  TimePs time_ps = 0;       // from the first flow's start to the last arrival
  double energy_j = 0;      // dynamic energy of the links it crossed
  uint64_t link_bytes = 0;  // wire bytes summed over the pod's links (injection apart)
  uint32_t flows = 0;
  uint32_t protocol = 0;  // index in PodCollectiveCache's protocols
  // The algorithm that ran (PodCollectiveCache's results: AUTO's choice).
  config::CollectiveAlgorithm algorithm = config::COLLECTIVE_ALGORITHM_UNSPECIFIED;

  TimePs total_ps() const { return launch_ps + time_ps; }
};

class PodCollectives {
 public:
  // `ranks`: node[0 .. ranks-1] (2 <= ranks <= the pod's nodes).
  PodCollectives(const Pod& pod, uint32_t ranks, TimePs step_latency_ps);

  uint32_t ranks() const { return ranks_; }
  void set_step_latency(TimePs step_latency_ps) { step_ps_ = step_latency_ps; }
  // Whether `algorithm` (not AUTO) can run `op` here.
  bool available(CollectiveOp op, config::CollectiveAlgorithm algorithm) const;
  // Simulates `op` of `bytes` with `algorithm`; AUTO: the fastest available of RING, ONE_SHOT,
  // TREE and IN_SWITCH (its choice in `chosen`; TWO_SHOT only when asked for, as protocols
  // must list it).
  CollectiveResult run(CollectiveOp op, uint64_t bytes, config::CollectiveAlgorithm algorithm,
                       config::CollectiveAlgorithm* chosen = nullptr);
  // An all-to-all of uneven messages: rank i sends rank j traffic[i * ranks + j] bytes (the
  // diagonal stays local). ONE_SHOT: every message at once (direct); RING: p-1 pairwise steps
  // as the all-to-all above; AUTO: the faster. Not TREE or IN_SWITCH.
  CollectiveResult all_to_all(const uint64_t* traffic, config::CollectiveAlgorithm algorithm,
                              config::CollectiveAlgorithm* chosen = nullptr);
  // An all-to-all in two tiers on a pod with a scale-out network (Pod::scale_out), as DeepEP's
  // internode kernels move MoE tokens (a token goes once to each domain that needs it). The
  // ranks must fill whole domains. A rank's proxy in domain D is the node of its own local rank
  // there. Traffic within a domain goes directly.
  // - Scatter (a dispatch): rank a sends domain_bytes[a * domains + D] to its proxy in each
  //   other domain D over the NICs, in Pod::chunks() chunks; as each chunk arrives the proxy
  //   forwards its share of traffic[a * ranks + b] to each rank b of D over D's scale-up switch.
  // - Gather (a combine): each rank b of D sends its share of traffic[b * ranks + a] to a's
  //   proxy in D chunk by chunk; once every such chunk has arrived (and been reduced), the
  //   proxy sends its chunk of domain_bytes[a * domains + D] to a over the NICs.
  // A proxy's own share needs no forward. Each message's chunks leave in order. A flow that
  // waits for others' arrival (a forward, a reduced chunk) waits the step latency more, the
  // proxy's synchronisation.
  CollectiveResult two_tier_all_to_all(const uint64_t* traffic, const uint64_t* domain_bytes,
                                       bool gather);

 private:
  CollectiveResult simulate(CollectiveOp op, uint64_t bytes, config::CollectiveAlgorithm a);
  CollectiveResult finish();
  // A flow from rank a to rank b over the pod's route.
  uint32_t send(uint32_t a, uint32_t b, uint64_t bytes, TimePs delay_ps);
  void ring_steps(uint32_t steps, uint64_t segment_bytes, std::vector<uint32_t>& prev);
  void all_reduce_tree(uint64_t bytes);
  void in_switch(CollectiveOp op, uint64_t bytes);

  const Pod& pod_;
  uint32_t ranks_;
  TimePs step_ps_;
  FlowNetwork net_;
  std::vector<uint32_t> path_;
};

// A pod it owns and its collectives under a library's protocols, memoised: each distinct
// (operation, size, algorithm) is simulated once per protocol (the flow simulation is
// deterministic, so a repeat would give the same result). Results carry the chosen protocol's
// launch latency and index and the algorithm; ties go to the protocol listed first, then to
// RING, ONE_SHOT, TREE, IN_SWITCH, TWO_SHOT in that order. Only the protocols that serve the
// call (CollectiveProtocol::serves) compete. No such protocol running an allowed algorithm:
// std::invalid_argument (configs are checked for it before a run: coverage_gap).
// The algorithms a request allows, in AUTO's order of preference on ties: `a` itself, or under
// AUTO RING, ONE_SHOT, TREE, IN_SWITCH, TWO_SHOT (those an operation cannot run are skipped by
// availability; an uneven all-to-all, PodCollectiveCache::all_to_all, tries ONE_SHOT first).
std::vector<config::CollectiveAlgorithm> allowed_algorithms(config::CollectiveAlgorithm a);

// The message a protocol's size range judges (CollectiveProtocol::serves): one rank's buffer
// (an all-gather's share per rank), and for an even all-to-all of `bytes` per rank what a rank
// sends to the others, (ranks - 1) x ceil(bytes / ranks); at least 1 byte.
uint64_t protocol_message_bytes(CollectiveOp op, uint64_t bytes, uint32_t ranks);

// Whether algorithm `a` (not AUTO) can run `op`: on a pod (`pod`; `reducing`: one switch that
// reduces) or in the analytical model (RING, ONE_SHOT, TWO_SHOT).
bool algorithm_available(CollectiveOp op, config::CollectiveAlgorithm a, bool pod, bool reducing);

// The first message sizes (in data bytes, one rank's buffer) that no protocol of `protocols`
// serves on `ranks` ranks with an algorithm `algorithm` allows for `op` and
// algorithm_available(op, a, pod, reducing) says can run, as "from X to Y bytes"; "" when every
// size from 1 byte up is served.
std::string coverage_gap(const std::vector<CollectiveProtocol>& protocols, uint32_t ranks,
                         CollectiveOp op, config::CollectiveAlgorithm algorithm, bool pod,
                         bool reducing);

class PodCollectiveCache {
 public:
  // `protocols`: at least one.
  PodCollectiveCache(const Pod& pod, uint32_t ranks, std::vector<CollectiveProtocol> protocols);
  // `algorithm` may be AUTO. `bytes` are data bytes (each protocol puts its wire bytes on the
  // links).
  const CollectiveResult& get(CollectiveOp op, uint64_t bytes,
                              config::CollectiveAlgorithm algorithm);
  const Pod& pod() const { return *pod_; }
  uint32_t ranks() const { return collectives_.ranks(); }
  bool available(CollectiveOp op, config::CollectiveAlgorithm a) const {
    return collectives_.available(op, a);
  }
  uint64_t simulated() const { return cache_.size(); }
  const std::vector<CollectiveProtocol>& protocols() const { return protocols_; }
  // Whether some protocol runs an algorithm `algorithm` allows that is available for `op`.
  bool runnable(CollectiveOp op, config::CollectiveAlgorithm algorithm) const;
  // coverage_gap for this pod's fabric and protocols.
  std::string coverage_gap(CollectiveOp op, config::CollectiveAlgorithm algorithm) const {
    return tiersim::coverage_gap(protocols_, ranks(), op, algorithm, true,
                                 pod_->in_switch_reduction(ranks()));
  }
  // Not memoised: the traffic differs from call to call.
  CollectiveResult all_to_all(const uint64_t* traffic, config::CollectiveAlgorithm algorithm);
  // PodCollectives::two_tier_all_to_all under the fastest protocol that runs ONE_SHOT and
  // serves an all-to-all of the bytes the busiest rank sends (its wire bytes; launch and step
  // latencies its own), not memoised.
  CollectiveResult two_tier_all_to_all(const uint64_t* traffic, const uint64_t* domain_bytes,
                                       bool gather);

 private:
  std::unique_ptr<Pod> pod_;
  PodCollectives collectives_;
  std::vector<CollectiveProtocol> protocols_;
  std::unordered_map<uint64_t, CollectiveResult> cache_;
  std::vector<uint64_t> wire_traffic_, wire_domain_;  // all_to_all's scratch
};

}  // namespace tiersim
