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
// - Rate-update tolerance (set_rate_tolerance, default 0 = exact): with t > 0, a flow's end does
//   not recompute the rates at once; the others keep theirs (still feasible: capacity was only
//   freed) until the first pending end time x (1 + t), measured from the run's start, when the
//   rates are recomputed for every change since. A flow that starts while others transmit
//   takes the least capacity left unallocated along its path (what the last computation left,
//   plus what flows ended since held) until then, unless that is under (1 - t) of a fair-share
//   estimate (a link's capacity over the flows the last computation saw on it, plus one) or its
//   path has a contended port: then the rates are recomputed at once. Flows that start with
//   nothing transmitting are computed exactly. For flows that start together (an all-to-all)
//   the number of rate computations grows with log(span of end times) / t instead of with the
//   flow count. Capacity freed by an end waits for at most t of the time elapsed. That is not
//   a bound on completion times: along dependency chains the delays add up (measured: an uneven
//   all-to-all +1.6% at t = 0.01 and +4.7% at 0.05; random dependency graphs of up to 40 flows
//   up to +3.0% at 0.01). Lazy max-min updates in the spirit of SimGrid's precision-bounded
//   solver.
// - Contended links (set_contended_efficiency): a link that carries flows arriving from two or
//   more distinct previous links (a switch output port fed by several input ports) delivers
//   `efficiency` of its capacity while they share it: arbitration and credit bubbles at the
//   output port. 1 (default) = ideal.
// Fidelity: fluid (no packets, no head-of-line blocking, no congestion control dynamics); a
// flow holds every link of its path for its whole transmission (cut-through at flow scale).
// Deterministic: at the flow level, events at one picosecond are handled in flow order; at the
// serial-link level, in the order they were scheduled.
// - Serial-link level (set_packet_level(packet_bytes > 0)): the same flows and dependencies,
//   moved as packets of packet_bytes. A flow's first link sends its flows' packets round-robin,
//   the next when the last has left (a node's copy engine interleaving its messages); every hop
//   then serves the packet in arrival order: a link given a serial model (set_link_model) through
//   that model (LinkModel: serialisation, replays, retrains and jitter drawn per packet,
//   cut-through streaming, FEC and propagation) plus its switch crossing; other links as ideal
//   servers at their capacity with their latency. A contended output port (busy, and a packet from
//   another input than the previous one) takes its packet at its efficiency. Serial models are
//   seeded per link and per run (the run's ordinal). A flow is sent when its last packet has left
//   its first link and arrives with its last packet. Queues are unbounded (no credits, no
//   backpressure), so where max-min fairness would hand a bottlenecked flow's share of its first
//   link to its siblings, round-robin does not; the two levels agree on collectives whose flows are
//   even (tested within 5%).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fabric/serial_link.h"
#include "models/core/time.h"

namespace tiersim {

class FlowNetwork {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // A link of `bytes_per_s` (> 0) data capacity, `latency_ps` fixed latency, and the energy a
  // data bit costs crossing it.
  uint32_t add_link(double bytes_per_s, TimePs latency_ps, double energy_pj_per_bit = 0);
  uint32_t links() const { return static_cast<uint32_t>(links_.size()); }
  // See the contract above. efficiency in (0, 1].
  void set_contended_efficiency(uint32_t link, double efficiency);
  // See the contract above. tolerance in [0, 1]; 0 is exact max-min at every flow change.
  void set_rate_tolerance(double tolerance);
  // Serial-link level (see the contract): packets of `packet_bytes` (0: flow level).
  void set_packet_level(uint64_t packet_bytes) { packet_bytes_ = packet_bytes; }
  // At the serial-link level, `link` moves packets through a serial model of `params` (its
  // draws seeded by `seed`, fresh at each run()) and then `extra_latency_ps` (a switch's
  // crossing).
  void set_link_model(uint32_t link, const LinkParams& params, uint64_t seed,
                      TimePs extra_latency_ps);

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
    double contended_efficiency = 1.0;
    uint64_t bytes = 0;
    // Serial-link level: its serial model's parameters (has_model), seed and switch crossing.
    bool has_model = false;
    LinkParams model;
    uint64_t model_seed = 0;
    TimePs extra_latency_ps = 0;
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
    TimePs updated_ps = 0;  // when left_bytes was last brought up to date
    TimePs end_ps = 0;      // when its last byte leaves at the current rate
    bool frozen = false;
    bool done = false;  // its last byte has left (still in active_ until the next recompute)
  };
  // Brings every active flow's bytes up to `now`, drops the finished ones from active_, and sets
  // max-min fair rates and end times; rebuilds the end-time heap.
  void recompute_rates(TimePs now);
  // Brings `fl`'s bytes left up to `now` at its rate; sets its end time at that rate from `now`
  // (refused past the simulated time limit) and lowers next_end_ps_ to it.
  static void advance(Flow& fl, TimePs now);
  void set_end(Flow& fl, TimePs now);
  // Flow `f`'s last byte leaves at `now`: releases its successors; marks the rates for
  // recomputation (changed) or, with a tolerance, sets when they must be (due_ps).
  void end(uint32_t f, TimePs now, TimePs& due_ps, bool& changed);
  // With a tolerance: when a computation is due after a change at `now`.
  TimePs due_after(TimePs now) const;
  // With a tolerance, a flow starting while others transmit: it takes the least capacity its
  // path's links have left unallocated (since the last computation, plus what flows that ended
  // since held), and a computation becomes due (due_ps) if none is. Returns false, taking
  // nothing, when it must be computed now: a contended port on its path, or less than (1 - t)
  // of a fair-share estimate (a link's capacity over the flows the last computation saw on
  // it, plus one).
  bool start_lazily(Flow& fl, TimePs now, TimePs& due_ps);
  // The flow level's and the serial-link level's event loops (after run()'s set-up).
  void run_flows();
  void run_packets();
  // Starts flow `f` at `now`: counts its bytes on its links; returns false when it has nothing
  // to send (it is released at once).
  bool start_flow(uint32_t f, TimePs now);
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
  // Active flows by end time: a min-heap on (end time, id), rebuilt at each rate computation.
  std::vector<std::pair<TimePs, uint32_t>> ends_;
  TimePs next_end_ps_ = 0;  // the earliest end at the current rates
  uint64_t packet_bytes_ = 0;
  uint64_t packet_runs_ = 0;  // serial-link level runs so far (seeds each run's draws)
  double rate_tolerance_ = 0;
  bool any_contended_ = false;
  // Per link, the active flows crossing it (CSR, rebuilt with the rates).
  std::vector<uint32_t> cross_begin_, cross_, fill_, busy_links_;
  TimePs makespan_ps_ = 0;
  uint64_t rate_updates_ = 0;
};

}  // namespace tiersim
