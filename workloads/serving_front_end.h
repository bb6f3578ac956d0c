// Data-parallel serving's front end (workload.parallelism.data_parallel > 1): one request stream
// for every replica, each request routed to one replica at its arrival by a policy
// (config::ReplicaRouting), as a serving router in front of replicas does (round robin, random,
// least outstanding requests, power of two choices, least KV usage).
//
// The replicas (one ServingWorkload each) take the requests routed to them when they plan a step
// and report their KV pool's use; the front end keeps every request's record, so the summary of
// any replica gives the pod's request figures. Routing is at the arrival: the driver routes at
// each arrival time (route_due), a replica routes what is due when it plans, and a closed loop's
// next request is sent and routed at a completion. A routed request rings its replica's wake
// (set by the driver), so an idle replica plans at once. Deterministic: the same config and seed
// route alike.
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
  ServingFrontEnd(std::vector<ServingRequest> requests, uint32_t closed_loop_clients,
                  uint32_t replicas, config::ReplicaRouting policy, uint64_t seed);

  uint32_t replicas() const { return static_cast<uint32_t>(queues_.size()); }
  size_t requests() const { return requests_.size(); }
  const ServingRequest& request(uint32_t r) const { return requests_[r]; }
  // When request r was sent (kNotSent: a closed-loop request no client has sent yet).
  TimePs arrival_ps(uint32_t r) const { return arrival_ps_[r]; }
  const std::vector<TimePs>& arrivals() const { return arrival_ps_; }
  uint32_t replica_of(uint32_t r) const { return replica_of_[r]; }

  // Called when a request is routed to `replica` (an idle replica's wake).
  void set_wake(uint32_t replica, std::function<void()> wake) { wakes_.at(replica) = wake; }
  // Routes every request sent by `now` and not yet routed, in arrival order.
  void route_due(TimePs now);
  // The next request's arrival that is not routed yet (kNotSent: none known, as in a closed loop
  // whose next request waits for a completion, or none left).
  TimePs next_arrival_ps() const {
    return next_route_ < arrival_ps_.size() ? arrival_ps_[next_route_] : kNotSent;
  }
  bool all_routed() const { return next_route_ == requests_.size(); }
  // The oldest request routed to `replica` and not taken yet; false when none.
  bool take(uint32_t replica, uint32_t* request);
  bool pending(uint32_t replica) const { return !queues_[replica].empty(); }
  // Request r finished at `now` on its replica: a closed loop's client sends its next request.
  void completed(uint32_t r, TimePs now);
  // The replica's KV pool in use (blocks held over blocks), as of its last planned step.
  void note_kv_usage(uint32_t replica, double used_fraction) { kv_usage_[replica] = used_fraction; }
  uint32_t outstanding(uint32_t replica) const { return outstanding_[replica]; }
  uint32_t routed_to(uint32_t replica) const { return routed_[replica]; }

  // Every request's record, written by the replica serving it.
  std::vector<ServingWorkload::RequestRecord>& records() { return records_; }
  const std::vector<ServingWorkload::RequestRecord>& records() const { return records_; }

 private:
  uint32_t choose();

  std::vector<ServingRequest> requests_;
  std::vector<TimePs> arrival_ps_;
  std::vector<uint32_t> replica_of_;
  std::vector<ServingWorkload::RequestRecord> records_;
  std::vector<std::deque<uint32_t>> queues_;  // per replica: routed, not taken
  std::vector<uint32_t> outstanding_, routed_;
  std::vector<double> kv_usage_;
  std::vector<std::function<void()>> wakes_;
  uint32_t closed_loop_clients_;
  size_t next_route_ = 0;  // the next request to route (arrival order)
  size_t next_send_ = 0;   // closed loop: the next request a client sends
  config::ReplicaRouting policy_;
  uint32_t turn_ = 0;  // round robin
  Rng rng_;
};

// The front end of a data-parallel serving config: its requests (drawn from run.seed or read from
// the arrival trace, as each replica's workload has them) and its routing policy.
std::unique_ptr<ServingFrontEnd> make_serving_front_end(const config::Config& root);

}  // namespace tiersim
