// Flow-level network simulation, plain C++: links of fixed capacity, flows over paths of links,
// and dependencies between flows (a collective's steps).
// Contract:
// - A flow becomes ready at the latest of: `release_ps`; `delay_ps` after the last of its
//   arrival predecessors (after(flow, before)) has arrived; the moment the last of its
//   sender-side predecessors (after(.., when_sent)) has sent its last byte. `delay_ps` is the
//   wait after an input arrives: a flow without arrival predecessors does not pay it. While it
//   transmits, every link of its path carries it at one rate; the rates of all transmitting flows
//   are max-min fair (progressive filling: the most contended link's capacity is split equally
//   among its unfrozen flows, those flows are frozen at that rate, and so on), recomputed whenever
//   a flow starts or ends (event per flow change, no time steps).
// - A flow's last byte leaves when its bytes are sent; it arrives the sum of its links'
//   latencies later (propagation, PHY, FEC, switch crossings: the path's fixed latency). A flow
//   of 0 bytes arrives after that latency alone.
// Fidelity: fluid (no packets, no head-of-line blocking, no congestion control dynamics); a
// flow holds every link of its path for its whole transmission (cut-through at flow scale).
// Deterministic: events at one picosecond are handled in flow order.
#pragma once

#include <cstdint>
#include <vector>

#include "models/core/time.h"

namespace tiersim {

class FlowNetwork {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // A link of `bytes_per_s` (> 0) data capacity, `latency_ps` fixed latency, and the energy a
  // data bit costs crossing it.
  uint32_t add_link(double bytes_per_s, TimePs latency_ps, double energy_pj_per_bit = 0);
  uint32_t links() const { return static_cast<uint32_t>(links_.size()); }

  // Flows: removed by clear_flows(); links stay.
  void clear_flows();
  // A flow of `bytes` over `path` (link ids, in order). Its predecessors are given by after().
  uint32_t add_flow(const uint32_t* path, uint32_t hops, uint64_t bytes, TimePs delay_ps = 0,
                    TimePs release_ps = 0);
  uint32_t add_flow(const std::vector<uint32_t>& path, uint64_t bytes, TimePs delay_ps = 0,
                    TimePs release_ps = 0) {
    return add_flow(path.data(), static_cast<uint32_t>(path.size()), bytes, delay_ps, release_ps);
  }
  // `flow` starts only after `before` has arrived, or with `when_sent`, once `before`'s last
  // byte has left (a sender's next chunk on the same channel). before < flow: dependencies
  // point backwards, so the flows form a DAG by construction.
  void after(uint32_t flow, uint32_t before, bool when_sent = false);
  uint32_t flows() const { return static_cast<uint32_t>(flows_.size()); }

  // Simulates every flow from time 0.
  void run();

  TimePs arrival_ps(uint32_t flow) const { return flows_[flow].arrival_ps; }
  TimePs start_ps(uint32_t flow) const { return flows_[flow].start_ps; }
  // The last arrival of the last run.
  TimePs makespan_ps() const { return makespan_ps_; }
  // Data bytes carried by each link in the last run, and their energy.
  uint64_t link_bytes(uint32_t link) const { return links_[link].bytes; }
  double energy_j() const;
  // Rate changes (rate recomputations) of the last run: the event count.
  uint64_t rate_updates() const { return rate_updates_; }

 private:
  struct Link {
    double bytes_per_s;
    TimePs latency_ps;
    double energy_pj_per_bit;
    uint64_t bytes = 0;
    // Scratch of the rate computation.
    double left = 0;
    uint32_t unfrozen = 0;
  };
  struct Flow {
    uint32_t path_begin, hops;
    uint64_t bytes;
    TimePs delay_ps, release_ps;
    uint32_t waiting = 0;  // predecessors not yet arrived
    TimePs ready_ps = 0;   // latest predecessor arrival + delay
    TimePs start_ps = 0, arrival_ps = 0;
    double left_bytes = 0, rate = 0;
    TimePs path_latency_ps = 0;
    bool frozen = false;
  };
  void recompute_rates();
  // Successors of `f` waiting for its last byte to leave (`sent`) or to arrive.
  void release(uint32_t f, TimePs at, bool sent);

  std::vector<Link> links_;
  std::vector<Flow> flows_;
  std::vector<uint32_t> paths_;
  struct Edge {
    uint32_t before, flow;
    bool when_sent;
  };
  // Successor lists (CSR, built by run()) from the edges.
  std::vector<Edge> edges_;
  std::vector<uint32_t> succ_begin_;
  std::vector<Edge> succ_;
  // Ready flows not started: a min-heap on (ready time, id).
  std::vector<std::pair<TimePs, uint32_t>> ready_;
  std::vector<uint32_t> active_;
  // Per link, the active flows crossing it (CSR, rebuilt with the rates).
  std::vector<uint32_t> cross_begin_, cross_, fill_, busy_links_;
  TimePs makespan_ps_ = 0;
  uint64_t rate_updates_ = 0;
};

}  // namespace tiersim
