#include "workloads/serving_front_end.h"

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace tiersim {

ServingFrontEnd::ServingFrontEnd(std::vector<ServingRequest> requests, uint32_t closed_loop_clients,
                                 uint32_t replicas, config::ReplicaRouting policy, uint64_t seed,
                                 TimePs latency_ps, TimePs load_interval_ps)
    : requests_(std::move(requests)),
      arrival_ps_(requests_.size()),
      replica_of_(requests_.size(), kUnrouted),
      records_(requests_.size()),
      queues_(replicas),
      outstanding_(replicas, 0),
      routed_(replicas, 0),
      kv_usage_(replicas, {{TimePs{0}, 0.0}}),
      wakes_(replicas),
      latency_ps_(latency_ps),
      load_interval_ps_(load_interval_ps),
      closed_loop_clients_(closed_loop_clients),
      policy_(policy == config::REPLICA_ROUTING_UNSPECIFIED ? config::ROUTE_ROUND_ROBIN : policy),
      rng_(seed ^ 0x726f75746572ULL),
      decode_rng_(seed ^ 0x6465636f6465ULL),
      prefill_of_(requests_.size(), kUnrouted),
      pull_bytes_(requests_.size(), 0),
      handed_ps_(requests_.size(), kNotSent),
      transfer_ps_(requests_.size(), 0),
      handoff_ps_(requests_.size(), 0),
      releases_(replicas),
      pulls_(replicas),
      egress_(replicas),
      ingress_(replicas) {
  if (replicas == 0) throw std::logic_error("ServingFrontEnd: no replicas");
  for (size_t i = 0; i < requests_.size(); ++i) {
    arrival_ps_[i] = closed_loop_clients == 0  ? requests_[i].arrival_ps
                     : i < closed_loop_clients ? TimePs{0}
                                               : kNotSent;
  }
  next_send_ = std::min<size_t>(closed_loop_clients, requests_.size());
}

void ServingFrontEnd::note_kv_usage(uint32_t replica, TimePs now, double used_fraction) {
  auto& h = kv_usage_[replica];
  if (h.back().first == now) {
    h.back().second = used_fraction;
  } else {
    h.emplace_back(now, used_fraction);
  }
  // Notes and queries come in time order: what no later refresh can see goes.
  prune_kv(replica, now);
}

TimePs ServingFrontEnd::refresh_ps(TimePs now) const {
  return load_interval_ps_ == 0 ? now : now / load_interval_ps_ * load_interval_ps_;
}

void ServingFrontEnd::prune_kv(uint32_t replica, TimePs now) {
  auto& h = kv_usage_[replica];
  const TimePs refresh = refresh_ps(now);
  // Exact (no interval): the latest value. With an interval, the value a refresh at R takes is
  // the one noted strictly before R (a note at R itself, in the same moment as a route at R,
  // would otherwise depend on which runs first).
  if (load_interval_ps_ == 0) {
    while (h.size() > 1)
      h.pop_front();
    return;
  }
  while (h.size() > 1 && h[1].first < refresh)
    h.pop_front();
}

double ServingFrontEnd::seen_kv_usage(uint32_t replica, TimePs now) {
  prune_kv(replica, now);
  const auto& h = kv_usage_[replica];
  if (load_interval_ps_ == 0) return h.back().second;
  return h.front().first < refresh_ps(now) ? h.front().second : 0.0;
}

uint32_t ServingFrontEnd::choose(TimePs now, uint32_t first, uint32_t n,
                                 config::ReplicaRouting policy, uint32_t& turn, Rng& rng) {
  switch (policy) {
    case config::ROUTE_RANDOM:
      return first + static_cast<uint32_t>(rng.below(n));
    case config::ROUTE_LEAST_REQUESTS: {
      uint32_t best = first;
      for (uint32_t d = first + 1; d < first + n; ++d)
        if (outstanding_[d] < outstanding_[best]) best = d;
      return best;
    }
    case config::ROUTE_POWER_OF_TWO: {
      if (n == 1) return first;
      const uint32_t a = first + static_cast<uint32_t>(rng.below(n));
      uint32_t b = first + static_cast<uint32_t>(rng.below(n - 1));
      if (b >= a) ++b;  // distinct from a
      return outstanding_[b] < outstanding_[a] ? b : a;
    }
    case config::ROUTE_LEAST_KV_USAGE: {
      uint32_t best = first;
      double best_kv = seen_kv_usage(first, now);
      for (uint32_t d = first + 1; d < first + n; ++d) {
        const double kv = seen_kv_usage(d, now);
        if (kv < best_kv || (kv == best_kv && outstanding_[d] < outstanding_[best])) {
          best = d;
          best_kv = kv;
        }
      }
      return best;
    }
    default: {  // round robin
      const uint32_t d = first + turn;
      turn = (turn + 1) % n;
      return d;
    }
  }
}

void ServingFrontEnd::set_disaggregation(uint32_t prefill_replicas,
                                         config::ReplicaRouting decode_policy,
                                         TimePs kv_latency_ps) {
  if (prefill_replicas == 0 || prefill_replicas >= replicas() || next_route_ > 0) {
    throw std::logic_error(
        "ServingFrontEnd: disaggregation needs prefill and decode replicas, "
        "set before routing");
  }
  prefill_replicas_ = prefill_replicas;
  decode_policy_ = decode_policy == config::REPLICA_ROUTING_UNSPECIFIED ? config::ROUTE_ROUND_ROBIN
                                                                        : decode_policy;
  kv_latency_ps_ = kv_latency_ps;
}

void ServingFrontEnd::hand_off(uint32_t r, TimePs now, uint64_t bytes_per_rank) {
  const uint32_t from = replica_of_.at(r);
  if (!disaggregated() || !prefill_only(from) || prefilled(r) || outstanding_[from] == 0 ||
      !transfer_) {
    throw std::logic_error("ServingFrontEnd: a hand-off without a prefill replica's request");
  }
  const uint32_t to = choose(now, prefill_replicas_, replicas() - prefill_replicas_, decode_policy_,
                             decode_turn_, decode_rng_);
  const TimePs ready = add_time_ps(now, kv_latency_ps_, "a hand-off's delivery");
  pull_bytes_[r] = bytes_per_rank;
  handed_ps_[r] = now;
  --outstanding_[from];
  --in_prefill_;
  replica_of_[r] = to;
  ++outstanding_[to];
  ++routed_[to];
  // Deliveries in the order they are due.
  auto& q = queues_[to];
  auto at = q.end();
  while (at != q.begin() && std::prev(at)->ready_ps > ready)
    --at;
  q.insert(at, Routed{r, ready});
  if (ready == now) {
    if (wakes_[to]) wakes_[to]();
  } else if (schedule_) {
    schedule_(ready);
  }
  wake_if_done();
}

TimePs ServingFrontEnd::earliest_common_gap(const std::vector<Busy>& a, const std::vector<Busy>& b,
                                            TimePs from, TimePs length) {
  // Move past every interval the candidate overlaps until none does (each pass moves it to an
  // interval's end, so this ends within |a| + |b| passes).
  const TimePs len = std::max<TimePs>(length, 1);
  TimePs t = from;
  for (bool moved = true; moved;) {
    moved = false;
    for (const auto* side : {&a, &b}) {
      for (const Busy& x : *side) {
        if (x.start < t + len && x.end > t) {
          t = x.end;
          moved = true;
        }
      }
    }
  }
  return t;
}

TimePs ServingFrontEnd::pull(uint32_t r, TimePs now) {
  const uint32_t from = prefill_of_.at(r), to = replica_of_.at(r);
  if (!prefilled(r) || handoff_ps_[r] != 0) {
    throw std::logic_error("ServingFrontEnd: a pull of KV not handed off, or pulled twice");
  }
  const Transfer t = transfer_(from, to, pull_bytes_[r]);
  // (Pulls come in time order: what ended by now is forgotten.)
  for (auto* side : {&egress_[from], &ingress_[to]}) {
    side->erase(
        std::remove_if(side->begin(), side->end(), [now](const Busy& b) { return b.end <= now; }),
        side->end());
  }
  const TimePs start = earliest_common_gap(egress_[from], ingress_[to], now, t.time_ps);
  const TimePs end = add_time_ps(start, t.time_ps, "a KV transfer's arrival");
  for (auto* side : {&egress_[from], &ingress_[to]}) {
    side->insert(std::upper_bound(side->begin(), side->end(), start,
                                  [](TimePs v, const Busy& b) { return v < b.start; }),
                 Busy{start, end});
  }
  transfer_ps_[r] = end - start;
  handoff_ps_[r] = end - handed_ps_[r];  // > 0: its bytes take at least 1 ps
  ++transfers_;
  transfer_bytes_ += t.bytes;
  transfer_energy_j_ += t.energy_j;
  for (auto* due : {&releases_[from], &pulls_[to]})
    due->insert(std::upper_bound(due->begin(), due->end(), end), end);
  if (end == now) {
    for (const uint32_t d : {from, to})
      if (wakes_[d]) wakes_[d]();
  } else if (schedule_) {
    schedule_(end);
  }
  return end;
}

void ServingFrontEnd::wake_if_done() {
  if (!disaggregated() || !all_routed() || in_prefill_ > 0) return;
  for (uint32_t d = prefill_replicas_; d < replicas(); ++d)
    if (wakes_[d]) wakes_[d]();
}

void ServingFrontEnd::route_due(TimePs now) {
  const bool was_all_routed = all_routed();
  while (next_route_ < requests_.size() && arrival_ps_[next_route_] != kNotSent &&
         arrival_ps_[next_route_] <= now) {
    const uint32_t r = static_cast<uint32_t>(next_route_++);
    const uint32_t d = disaggregated() ? choose(now, 0, prefill_replicas_, policy_, turn_, rng_)
                                       : choose(now, 0, replicas(), policy_, turn_, rng_);
    replica_of_[r] = d;
    prefill_of_[r] = d;
    in_prefill_ += disaggregated();
    queues_[d].push_back(Routed{r, now + latency_ps_});
    ++outstanding_[d];
    ++routed_[d];
    if (latency_ps_ == 0) {
      if (wakes_[d]) wakes_[d]();
    } else if (schedule_) {
      schedule_(now + latency_ps_);
    }
  }
  if (all_routed() && !was_all_routed) {
    // Nothing more will come: idle replicas plan once more and find they are done.
    for (auto& w : wakes_)
      if (w) w();
  }
}

void ServingFrontEnd::deliver_due(TimePs now) {
  for (uint32_t d = 0; d < replicas(); ++d)
    if ((delivered(d, now) || release_due(d, now) || pull_due(d, now)) && wakes_[d]) wakes_[d]();
}

TimePs ServingFrontEnd::next_delivery_ps(TimePs now) const {
  TimePs next = kNotSent;
  for (const auto* due : {&releases_, &pulls_}) {
    for (const auto& d : *due) {
      const auto it = std::upper_bound(d.begin(), d.end(), now);
      if (it != d.end()) next = std::min(next, *it);
    }
  }
  for (const auto& q : queues_) {
    for (const Routed& r : q) {  // (ready times rise along a queue)
      if (r.ready_ps > now) {
        next = std::min(next, r.ready_ps);
        break;
      }
    }
  }
  return next;
}

bool ServingFrontEnd::take(uint32_t replica, TimePs now, uint32_t* request) {
  if (!delivered(replica, now)) return false;
  *request = queues_[replica].front().request;
  queues_[replica].pop_front();
  return true;
}

void ServingFrontEnd::completed(uint32_t r, TimePs now) {
  const uint32_t d = replica_of_.at(r);
  if (d == kUnrouted || outstanding_[d] == 0) {
    throw std::logic_error("ServingFrontEnd: a request finished that was not routed");
  }
  --outstanding_[d];
  if (disaggregated() && prefill_only(d)) --in_prefill_;  // (one output token: done at prefill)
  if (closed_loop_clients_ > 0 && next_send_ < requests_.size()) {
    arrival_ps_[next_send_++] = now;
    route_due(now);
  }
  wake_if_done();
}

}  // namespace tiersim
