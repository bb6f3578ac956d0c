// Data-parallel serving's front end (workload.parallelism.data_parallel > 1): one request stream
// for every replica, each request routed to one replica at its arrival by a policy
// (config::ReplicaRouting), as a serving router in front of replicas does (round robin, random,
// least outstanding requests, power of two choices, least KV usage).
//
// The replicas (one ServingWorkload each) take the requests delivered to them when they plan a
// step and report their KV pool's use; the front end keeps every request's record, so the
// summary of any replica gives the pod's request figures. Routing is at the arrival: the driver
// routes at each arrival time (route_due), a replica routes what is due when it plans, and a
// closed loop's next request is sent and routed at a completion. A routed request reaches its
// replica `latency_ps` later (delivered: deliver_due at that time, which the front end asks
// the driver for through its schedule callback); a delivery rings the replica's wake (set by
// the driver), so an idle replica plans at once. With a load interval, KV use is seen as of
// the last multiple of the interval. Deterministic: the same config and seed route alike.
//
// Disaggregated prefill and decode (set_disaggregation; config::Disaggregation): arrivals are
// routed among the prefill replicas [0, P); a prefill replica hands each prefilled request off
// (hand_off), which picks a decode replica among [P, D) by the decode policy and delivers the
// request there after the connector's latency. The decode replica pulls the KV when it admits
// the request (pull): the transfer (the transfer callback, set by the driver: the pod's flows)
// takes the earliest time from then at which neither the prefill replica nor the decode replica
// has another transfer in flight (one at a time on each side, each as if alone on the pod);
// when it lands the decode replica is rung (its request can decode) and the prefill replica is
// rung (the KV it held is freed).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "models/core/rng.h"
#include "models/core/time.h"
#include "workloads/serving.h"

namespace tiersim {

class ServingFrontEnd {
 public:
  static constexpr TimePs kNotSent = UINT64_MAX;
  static constexpr uint32_t kUnrouted = UINT32_MAX;

  // `requests`: sorted by arrival (closed loop: their arrival_ps is ignored; the first
  // `closed_loop_clients` are sent at 0, each later one at a completion).
  // `latency_ps`: arrival to delivery at the replica; `load_interval_ps`: the KV-use refresh
  // (0: exact).
  ServingFrontEnd(std::vector<ServingRequest> requests, uint32_t closed_loop_clients,
                  uint32_t replicas, config::ReplicaRouting policy, uint64_t seed,
                  TimePs latency_ps = 0, TimePs load_interval_ps = 0);

  // What a KV transfer takes: from its start to its last byte's arrival, and the links' energy.
  struct Transfer {
    TimePs time_ps = 0;
    double energy_j = 0;
    uint64_t bytes = 0;  // every rank's
  };
  // Times a transfer of `bytes_per_rank` from each tensor-parallel rank of replica `from` to the
  // same rank of replica `to`.
  using TransferFn = std::function<Transfer(uint32_t from, uint32_t to, uint64_t bytes_per_rank)>;

  uint32_t replicas() const { return static_cast<uint32_t>(queues_.size()); }
  // Disaggregated serving: replicas [0, prefill_replicas) prefill, the rest decode (1 <=
  // prefill_replicas < replicas); decode replicas are picked by `decode_policy`; a hand-off is
  // delivered `kv_latency_ps` after it (the transfer, timed by `transfer` set before the run,
  // starts at the pull).
  void set_disaggregation(uint32_t prefill_replicas, config::ReplicaRouting decode_policy,
                          TimePs kv_latency_ps);
  void set_transfer(TransferFn transfer) { transfer_ = std::move(transfer); }
  bool disaggregated() const { return prefill_replicas_ > 0; }
  uint32_t prefill_replicas() const { return prefill_replicas_; }
  // A replica that only prefills (its requests leave after their first token).
  bool prefill_only(uint32_t replica) const { return replica < prefill_replicas_; }
  // Request r reached its replica prefilled (handed off: its prompt's KV came with it).
  bool prefilled(uint32_t r) const { return prefill_of_[r] != replica_of_[r]; }
  // The replica that prefilled request r (its only replica without disaggregation).
  uint32_t prefill_replica_of(uint32_t r) const { return prefill_of_[r]; }
  // Hands request r off at `now` from its prefill replica, with KV worth `bytes_per_rank` on
  // each rank: picks its decode replica and queues its delivery there, `kv_latency_ps` later.
  // The prefill replica holds the KV until kv_release_ps(r).
  void hand_off(uint32_t r, TimePs now, uint64_t bytes_per_rank);
  // The decode replica admitted handed-off request r at `now` (its blocks reserved): its KV
  // transfer starts once neither side has an earlier one in flight; returns when it lands.
  TimePs pull(uint32_t r, TimePs now);
  // When request r's KV is freed at its prefill replica: when its pull lands (kNotSent: not
  // pulled yet).
  TimePs kv_release_ps(uint32_t r) const {
    return handoff_ps_[r] == 0 ? kNotSent : handed_ps_[r] + handoff_ps_[r];
  }
  // Something a replica waits for is due by `now`: KV it held freed, or KV it pulls landed.
  bool release_due(uint32_t replica, TimePs now) const {
    return !releases_[replica].empty() && releases_[replica].front() <= now;
  }
  bool pull_due(uint32_t replica, TimePs now) const {
    return !pulls_[replica].empty() && pulls_[replica].front() <= now;
  }
  // Forgets what is due by `now` (the replica has planned with it).
  void released(uint32_t replica, TimePs now) {
    while (release_due(replica, now))
      releases_[replica].pop_front();
    while (pull_due(replica, now))
      pulls_[replica].pop_front();
  }
  // Request r's KV transfer: from its start to its landing (0: none); its hand-off: from its
  // first token to the landing (the connector's latency, the wait for admission and for
  // earlier transfers, the transfer).
  TimePs transfer_ps(uint32_t r) const { return transfer_ps_[r]; }
  TimePs handoff_ps(uint32_t r) const { return handoff_ps_[r]; }
  uint64_t transfers() const { return transfers_; }
  uint64_t transfer_bytes() const { return transfer_bytes_; }  // every rank's
  double transfer_energy_j() const { return transfer_energy_j_; }
  // More requests may still reach `replica`: arrivals not routed yet, or for a decode replica
  // requests still at a prefill replica.
  bool more_may_come(uint32_t replica) const {
    return !all_routed() || (disaggregated() && !prefill_only(replica) && in_prefill_ > 0);
  }
  size_t requests() const { return requests_.size(); }
  const ServingRequest& request(uint32_t r) const { return requests_[r]; }
  // When request r was sent (kNotSent: a closed-loop request no client has sent yet).
  TimePs arrival_ps(uint32_t r) const { return arrival_ps_[r]; }
  const std::vector<TimePs>& arrivals() const { return arrival_ps_; }
  // The replica request r is (or was last) served by: with disaggregation, its decode replica
  // once handed off.
  uint32_t replica_of(uint32_t r) const { return replica_of_[r]; }

  // Called when a request is delivered to `replica` (an idle replica's wake).
  void set_wake(uint32_t replica, std::function<void()> wake) { wakes_.at(replica) = wake; }
  // Called with a time at which deliver_due must run (a delivery after the router's latency).
  void set_schedule(std::function<void(TimePs)> schedule) { schedule_ = std::move(schedule); }
  // Routes every request sent by `now` and not yet routed, in arrival order.
  void route_due(TimePs now);
  // Rings the replicas with a delivery due by `now`.
  void deliver_due(TimePs now);
  // The earliest delivery after `now` (kNotSent: none).
  TimePs next_delivery_ps(TimePs now) const;
  // The next request's arrival that is not routed yet (kNotSent: none known, as in a closed loop
  // whose next request waits for a completion, or none left).
  TimePs next_arrival_ps() const {
    return next_route_ < arrival_ps_.size() ? arrival_ps_[next_route_] : kNotSent;
  }
  bool all_routed() const { return next_route_ == requests_.size(); }
  // The oldest request delivered to `replica` by `now` and not taken yet; false when none.
  bool take(uint32_t replica, TimePs now, uint32_t* request);
  // Something is delivered to `replica` by `now` and not taken.
  bool delivered(uint32_t replica, TimePs now) const {
    return !queues_[replica].empty() && queues_[replica].front().ready_ps <= now;
  }
  // Routed to `replica` and not taken, delivered or not.
  bool pending(uint32_t replica) const { return !queues_[replica].empty(); }
  // Request r finished at `now` on its replica: a closed loop's client sends its next request.
  void completed(uint32_t r, TimePs now);
  // The replica's KV pool in use (blocks held over blocks) from `now` on.
  void note_kv_usage(uint32_t replica, TimePs now, double used_fraction);
  // The KV use the front end sees for `replica` at `now`: its latest, or with an interval the
  // one noted strictly before the last refresh (0 before any).
  double seen_kv_usage(uint32_t replica, TimePs now);
  uint32_t outstanding(uint32_t replica) const { return outstanding_[replica]; }
  uint32_t routed_to(uint32_t replica) const { return routed_[replica]; }

  // Every request's record, written by the replica serving it.
  std::vector<ServingWorkload::RequestRecord>& records() { return records_; }
  const std::vector<ServingWorkload::RequestRecord>& records() const { return records_; }

 private:
  // A transfer in flight on one side, [start, end).
  struct Busy {
    TimePs start, end;
  };
  // The earliest start from `from` at which both sides are free for `length`.
  static TimePs earliest_common_gap(const std::vector<Busy>& a, const std::vector<Busy>& b,
                                    TimePs from, TimePs length);
  // A replica of [first, first + count) by `policy` (`turn`: its round robin's).
  uint32_t choose(TimePs now, uint32_t first, uint32_t count, config::ReplicaRouting policy,
                  uint32_t& turn, Rng& rng);
  // Wakes the decode replicas once nothing more can come to them.
  void wake_if_done();
  // The last refresh at or before `now` (now itself without an interval).
  TimePs refresh_ps(TimePs now) const;
  // Drops the KV-use entries no refresh from `now` on can see.
  void prune_kv(uint32_t replica, TimePs now);
  struct Routed {
    uint32_t request;
    TimePs ready_ps;  // delivered at the replica
  };

  std::vector<ServingRequest> requests_;
  std::vector<TimePs> arrival_ps_;
  std::vector<uint32_t> replica_of_;
  std::vector<ServingWorkload::RequestRecord> records_;
  std::vector<std::deque<Routed>> queues_;  // per replica: routed, not taken
  std::vector<uint32_t> outstanding_, routed_;
  // Per replica: its KV use from each time on (the oldest entry the one in force at the last
  // refresh the front end has looked at).
  std::vector<std::deque<std::pair<TimePs, double>>> kv_usage_;
  std::vector<std::function<void()>> wakes_;
  std::function<void(TimePs)> schedule_;
  TimePs latency_ps_, load_interval_ps_;
  uint32_t closed_loop_clients_;
  size_t next_route_ = 0;  // the next request to route (arrival order)
  size_t next_send_ = 0;   // closed loop: the next request a client sends
  config::ReplicaRouting policy_;
  uint32_t turn_ = 0;  // round robin
  Rng rng_;
  // Disaggregation (prefill_replicas_ 0: none).
  uint32_t prefill_replicas_ = 0;
  config::ReplicaRouting decode_policy_ = config::ROUTE_ROUND_ROBIN;
  uint32_t decode_turn_ = 0;
  TimePs kv_latency_ps_ = 0;
  TransferFn transfer_;
  Rng decode_rng_;                    // the decode policy's draws (apart from the arrivals')
  std::vector<uint32_t> prefill_of_;  // per request: its prefill replica
  std::vector<uint64_t> pull_bytes_;  // per request: its KV per rank
  std::vector<TimePs> handed_ps_;     // per request: its hand-off
  std::vector<TimePs> transfer_ps_, handoff_ps_;  // 0: not pulled
  // Per replica: when KV it holds is freed, and when KV it pulls lands (ascending).
  std::vector<std::deque<TimePs>> releases_, pulls_;
  // Per replica: the transfers out of it and into it not yet ended, [start, end) in start
  // order; a new one takes the earliest time both its sides are free for its length.
  std::vector<std::vector<Busy>> egress_, ingress_;
  uint32_t in_prefill_ = 0;  // routed to a prefill replica, not handed off nor done
  uint64_t transfers_ = 0, transfer_bytes_ = 0;
  double transfer_energy_j_ = 0;
};

// The front end of a data-parallel serving config: its requests (drawn from run.seed or read from
// the arrival trace, as each replica's workload has them) and its routing policy.
std::unique_ptr<ServingFrontEnd> make_serving_front_end(const config::Config& root);

}  // namespace tiersim
