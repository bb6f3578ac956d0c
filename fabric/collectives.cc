#include "fabric/collectives.h"

#include <algorithm>
#include <stdexcept>

namespace tiersim {

const char* collective_op_name(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllReduce:
      return "all_reduce";
    case CollectiveOp::kAllGather:
      return "all_gather";
    case CollectiveOp::kReduceScatter:
      return "reduce_scatter";
    case CollectiveOp::kAllToAll:
      return "all_to_all";
  }
  return "?";
}

double bus_bandwidth_factor(CollectiveOp op, uint32_t ranks) {
  const double p = ranks;
  return op == CollectiveOp::kAllReduce ? 2.0 * (p - 1) / p : (p - 1) / p;
}

PodCollectives::PodCollectives(const Pod& pod, uint32_t ranks, TimePs step_latency_ps)
    : pod_(pod), ranks_(ranks), step_ps_(step_latency_ps), net_(pod.network()) {
  if (ranks < 2 || ranks > pod.nodes()) {
    throw std::invalid_argument("PodCollectives: ranks must be in [2, the pod's nodes]");
  }
}

bool algorithm_available(CollectiveOp op, config::CollectiveAlgorithm a, bool pod, bool reducing) {
  switch (a) {
    case config::RING:
    case config::ONE_SHOT:
      return true;
    case config::TREE:
      return pod && op == CollectiveOp::kAllReduce;
    case config::IN_SWITCH:
      return pod && reducing && op != CollectiveOp::kAllToAll;
    case config::TWO_SHOT:
      return op != CollectiveOp::kAllToAll;
    default:
      return false;
  }
}

bool PodCollectives::available(CollectiveOp op, config::CollectiveAlgorithm a) const {
  return algorithm_available(op, a, true, pod_.in_switch_reduction(ranks_));
}

CollectiveResult PodCollectives::run(CollectiveOp op, uint64_t bytes,
                                     config::CollectiveAlgorithm algorithm,
                                     config::CollectiveAlgorithm* chosen) {
  if (algorithm != config::AUTO) {
    if (!available(op, algorithm)) {
      throw std::invalid_argument(std::string("PodCollectives: algorithm not available for ") +
                                  collective_op_name(op));
    }
    if (chosen) *chosen = algorithm;
    return simulate(op, bytes, algorithm);
  }
  CollectiveResult best;
  config::CollectiveAlgorithm best_a = config::COLLECTIVE_ALGORITHM_UNSPECIFIED;
  for (const auto a : {config::RING, config::ONE_SHOT, config::TREE, config::IN_SWITCH}) {
    if (!available(op, a)) continue;
    const CollectiveResult r = simulate(op, bytes, a);
    if (best_a == config::COLLECTIVE_ALGORITHM_UNSPECIFIED || r.time_ps < best.time_ps) {
      best = r;
      best_a = a;
    }
  }
  if (chosen) *chosen = best_a;
  return best;
}

uint32_t PodCollectives::send(uint32_t a, uint32_t b, uint64_t bytes, TimePs delay_ps) {
  path_.clear();
  pod_.route(a, b, path_);
  return net_.add_flow(path_, bytes, delay_ps);
}

namespace {

// Each rank sends on `per_rank` channels; a channel's flows leave in order (each starts once
// the previous one's last byte has left).
class SendOrder {
 public:
  SendOrder(FlowNetwork& net, uint32_t ranks, uint32_t per_rank)
      : net_(net), per_rank_(per_rank), last_(size_t{ranks} * per_rank, FlowNetwork::kNone) {}
  void add(uint32_t flow, uint32_t rank, uint32_t channel = 0) {
    uint32_t& last = last_[size_t{rank} * per_rank_ + channel];
    if (last != FlowNetwork::kNone) net_.after(flow, last, true);
    last = flow;
  }

 private:
  FlowNetwork& net_;
  uint32_t per_rank_;
  std::vector<uint32_t> last_;
};

// Chunk c of `total` bytes split into `chunks` (the first ones one byte larger).
uint64_t chunk_bytes(uint64_t total, uint32_t chunks, uint32_t c) {
  return total / chunks + (c < total % chunks ? 1 : 0);
}

}  // namespace

// `steps` ring steps of `segment_bytes` per rank, in chunks, after the flows in `prev`
// (indexed [chunk * ranks + rank]: what rank r last received of that chunk; empty: none).
// Leaves the last step's flows in `prev`.
void PodCollectives::ring_steps(uint32_t steps, uint64_t segment_bytes,
                                std::vector<uint32_t>& prev) {
  const uint32_t p = ranks_, chunks = pod_.chunks(segment_bytes);
  std::vector<uint32_t> cur(size_t{chunks} * p);
  SendOrder order(net_, p, 1);
  for (uint32_t s = 0; s < steps; ++s) {
    for (uint32_t c = 0; c < chunks; ++c) {
      const uint64_t b = chunk_bytes(segment_bytes, chunks, c);
      for (uint32_t r = 0; r < p; ++r) {
        const uint32_t to = (r + 1) % p;
        const bool first = prev.empty();
        const uint32_t f = send(r, to, b, first ? 0 : step_ps_);
        if (!first) net_.after(f, prev[size_t{c} * p + r]);  // what r received of chunk c
        order.add(f, r);
        cur[size_t{c} * p + to] = f;
      }
    }
    prev = cur;
  }
}

void PodCollectives::all_reduce_tree(uint64_t bytes) {
  const uint32_t p = ranks_, chunks = pod_.chunks(bytes);
  // Two channels per rank: up the tree (reduce, 0) and down it (broadcast, 1), so chunk c+1
  // goes up while chunk c comes down.
  SendOrder order(net_, p, 2);
  // Children are larger ranks: processing ranks from the largest down orders each reduce flow
  // after its children's.
  std::vector<uint32_t> up(size_t{chunks} * p, FlowNetwork::kNone);
  std::vector<uint32_t> down(size_t{chunks} * p, FlowNetwork::kNone);
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint64_t b = chunk_bytes(bytes, chunks, c);
    for (uint32_t r = p - 1; r >= 1; --r) {
      const uint32_t l = 2 * r + 1, rr = 2 * r + 2;
      const bool leaf = l >= p;
      const uint32_t f = send(r, (r - 1) / 2, b, leaf ? 0 : step_ps_);
      if (l < p) net_.after(f, up[size_t{c} * p + l]);
      if (rr < p) net_.after(f, up[size_t{c} * p + rr]);
      order.add(f, r, 0);
      up[size_t{c} * p + r] = f;
    }
    // Broadcast from the root once its children's shares have arrived, then down the tree.
    for (uint32_t r = 1; r < p; ++r) {
      const uint32_t parent = (r - 1) / 2;
      const uint32_t f = send(parent, r, b, step_ps_);
      if (parent == 0) {
        net_.after(f, up[size_t{c} * p + 1]);
        if (p > 2) net_.after(f, up[size_t{c} * p + 2]);
      } else {
        net_.after(f, down[size_t{c} * p + parent]);
      }
      order.add(f, parent, 1);
      down[size_t{c} * p + r] = f;
    }
  }
}

void PodCollectives::in_switch(CollectiveOp op, uint64_t bytes) {
  const uint32_t p = ranks_, chunks = pod_.chunks(bytes);
  // Two channels per rank: the reductions (up through the reduction port, 0) and the
  // multicasts of reduced shards (1), so chunk c+1 is reduced while chunk c is multicast.
  SendOrder order(net_, p, 2);
  // Flows into the switch (through rank r's reduction port or not) and out of it to rank r.
  auto up = [&](uint32_t r, bool reduce, uint64_t b, TimePs delay_ps) {
    const uint32_t path[3] = {pod_.injection_link(r), pod_.up_link(r), pod_.reduction_link(r)};
    return net_.add_flow(path, reduce ? 3 : 2, b, delay_ps);
  };
  auto down = [&](uint32_t r, uint64_t b, TimePs delay_ps) {
    const uint32_t path = pod_.down_link(r);
    return net_.add_flow(&path, 1, b, delay_ps);
  };
  if (op == CollectiveOp::kAllGather) {
    // Each rank's n goes up once; the switch multicasts it to every other rank.
    for (uint32_t c = 0; c < chunks; ++c) {
      const uint64_t b = chunk_bytes(bytes, chunks, c);
      for (uint32_t r = 0; r < p; ++r) {
        const uint32_t u = up(r, false, b, 0);
        order.add(u, r);
        for (uint32_t q = 0; q < p; ++q) {
          if (q == r) continue;
          net_.after(down(q, b, 0), u);
        }
      }
    }
    return;
  }
  // Reduce: every rank's buffer up through its reduction port; each rank pulls its reduced
  // n/p shard once every rank's chunk has arrived.
  const uint64_t shard = (bytes + p - 1) / p;
  std::vector<uint32_t> ups(p);
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint64_t b = chunk_bytes(bytes, chunks, c), sb = chunk_bytes(shard, chunks, c);
    for (uint32_t r = 0; r < p; ++r) {
      ups[r] = up(r, true, b, 0);
      order.add(ups[r], r, 0);
    }
    for (uint32_t r = 0; r < p; ++r) {
      const uint32_t d = down(r, sb, step_ps_);
      for (uint32_t q = 0; q < p; ++q)
        net_.after(d, ups[q]);
      if (op == CollectiveOp::kReduceScatter) continue;
      // All-reduce: the reduced shard goes up once and is multicast to the other ranks.
      const uint32_t g = up(r, false, sb, step_ps_);
      net_.after(g, d);
      order.add(g, r, 1);
      for (uint32_t q = 0; q < p; ++q) {
        if (q == r) continue;
        net_.after(down(q, sb, 0), g);
      }
    }
  }
}

CollectiveResult PodCollectives::all_to_all(const uint64_t* traffic,
                                            config::CollectiveAlgorithm algorithm,
                                            config::CollectiveAlgorithm* chosen) {
  if (algorithm == config::AUTO) {
    const CollectiveResult direct = all_to_all(traffic, config::ONE_SHOT);
    const CollectiveResult pairwise = all_to_all(traffic, config::RING);
    const bool ring = pairwise.time_ps < direct.time_ps;
    if (chosen) *chosen = ring ? config::RING : config::ONE_SHOT;
    return ring ? pairwise : direct;
  }
  if (algorithm != config::ONE_SHOT && algorithm != config::RING) {
    throw std::invalid_argument("PodCollectives: an all-to-all runs ONE_SHOT, RING or AUTO");
  }
  if (chosen) *chosen = algorithm;
  net_.clear_flows();
  const uint32_t p = ranks_;
  if (algorithm == config::ONE_SHOT) {
    for (uint32_t r = 0; r < p; ++r) {
      for (uint32_t q = 0; q < p; ++q) {
        if (q != r && traffic[size_t{r} * p + q] > 0) send(r, q, traffic[size_t{r} * p + q], 0);
      }
    }
  } else {
    // Pairwise steps, as the even all-to-all's RING (an empty message still synchronises).
    std::vector<uint32_t> last(p, FlowNetwork::kNone);
    for (uint32_t k = 1; k < p; ++k) {
      for (uint32_t r = 0; r < p; ++r) {
        const uint32_t q = (r + k) % p;
        const uint32_t f = send(r, q, traffic[size_t{r} * p + q], k == 1 ? 0 : step_ps_);
        if (last[r] != FlowNetwork::kNone) net_.after(f, last[r]);
        last[r] = f;
      }
    }
  }
  net_.run();
  return finish();
}

CollectiveResult PodCollectives::two_tier_all_to_all(const uint64_t* traffic,
                                                     const uint64_t* domain_bytes, bool gather) {
  const uint32_t p = ranks_, dn = pod_.domain_nodes();
  if (!pod_.scale_out() || p % dn != 0) {
    throw std::invalid_argument(
        "PodCollectives: a two-tier all-to-all needs a scale-out pod whose domains the ranks "
        "fill");
  }
  const uint32_t domains = p / dn;
  net_.clear_flows();
  auto at = [&](uint32_t from, uint32_t to) { return traffic[size_t{from} * p + to]; };
  // Within a domain: direct.
  for (uint32_t r = 0; r < p; ++r) {
    for (uint32_t q = 0; q < p; ++q) {
      if (q != r && pod_.domain_of(q) == pod_.domain_of(r) && at(r, q) > 0) {
        send(r, q, at(r, q), 0);
      }
    }
  }
  std::vector<uint32_t> parts;  // a chunk's forwards (gather)
  for (uint32_t a = 0; a < p; ++a) {
    for (uint32_t d = 0; d < domains; ++d) {
      if (d == pod_.domain_of(a)) continue;
      const uint64_t total = domain_bytes[size_t{a} * domains + d];
      const uint32_t proxy = d * dn + a % dn;
      const uint32_t chunks = pod_.chunks(total);
      uint32_t prev = FlowNetwork::kNone;  // the previous chunk over the NICs
      std::vector<uint32_t> prev_part(dn, FlowNetwork::kNone);
      for (uint32_t c = 0; c < chunks; ++c) {
        const uint64_t cb = chunk_bytes(total, chunks, c);
        if (!gather) {
          const uint32_t f = cb > 0 ? send(a, proxy, cb, 0) : FlowNetwork::kNone;
          if (f != FlowNetwork::kNone && prev != FlowNetwork::kNone) net_.after(f, prev, true);
          prev = f;
          for (uint32_t b = d * dn; b < (d + 1) * dn; ++b) {
            const uint64_t part = chunk_bytes(at(a, b), chunks, c);
            if (b == proxy || part == 0) continue;
            // The forward waits for its chunk, then the proxy's synchronisation (a step).
            const uint32_t g = send(proxy, b, part, f != FlowNetwork::kNone ? step_ps_ : 0);
            if (f != FlowNetwork::kNone) net_.after(g, f);
            uint32_t& pp = prev_part[b - d * dn];
            if (pp != FlowNetwork::kNone) net_.after(g, pp, true);
            pp = g;
          }
        } else {
          parts.clear();
          for (uint32_t b = d * dn; b < (d + 1) * dn; ++b) {
            const uint64_t part = chunk_bytes(at(b, a), chunks, c);
            if (b == proxy || part == 0) continue;
            const uint32_t g = send(b, proxy, part, 0);
            uint32_t& pp = prev_part[b - d * dn];
            if (pp != FlowNetwork::kNone) net_.after(g, pp, true);
            pp = g;
            parts.push_back(g);
          }
          if (cb == 0) continue;
          // The reduced chunk leaves once its shares have arrived, a step later.
          const uint32_t f = send(proxy, a, cb, parts.empty() ? 0 : step_ps_);
          for (const uint32_t g : parts)
            net_.after(f, g);
          if (prev != FlowNetwork::kNone) net_.after(f, prev, true);
          prev = f;
        }
      }
    }
  }
  net_.run();
  return finish();
}

CollectiveResult PodCollectives::finish() {
  CollectiveResult res;
  res.time_ps = net_.makespan_ps();
  res.energy_j = net_.energy_j();
  res.flows = net_.flows();
  for (uint32_t l = 0; l < pod_.links().size(); ++l)
    res.link_bytes += net_.link_bytes(l);
  return res;
}

CollectiveResult PodCollectives::simulate(CollectiveOp op, uint64_t bytes,
                                          config::CollectiveAlgorithm a) {
  net_.clear_flows();
  const uint32_t p = ranks_;
  if (a == config::IN_SWITCH) {
    in_switch(op, bytes);
  } else if (a == config::TREE) {
    all_reduce_tree(bytes);
  } else if (a == config::TWO_SHOT && op != CollectiveOp::kAllGather) {
    // Phase one: each peer's shard to it; phase two (all-reduce): once a rank has every peer's
    // part of its shard, its reduced shard to every peer.
    const uint64_t shard = (bytes + p - 1) / p;
    std::vector<uint32_t> into(size_t{p} * p, FlowNetwork::kNone);  // [to * p + from]
    for (uint32_t r = 0; r < p; ++r) {
      for (uint32_t q = 0; q < p; ++q) {
        if (q != r) into[size_t{q} * p + r] = send(r, q, shard, 0);
      }
    }
    if (op == CollectiveOp::kAllReduce) {
      for (uint32_t r = 0; r < p; ++r) {
        for (uint32_t q = 0; q < p; ++q) {
          if (q == r) continue;
          const uint32_t g = send(r, q, shard, step_ps_);
          for (uint32_t from = 0; from < p; ++from) {
            if (from != r) net_.after(g, into[size_t{r} * p + from]);
          }
        }
      }
    }
  } else if (a == config::ONE_SHOT || a == config::TWO_SHOT) {
    const uint64_t each = op == CollectiveOp::kAllReduce || op == CollectiveOp::kAllGather
                              ? bytes
                              : (bytes + p - 1) / p;
    for (uint32_t r = 0; r < p; ++r) {
      for (uint32_t q = 0; q < p; ++q) {
        if (q != r) send(r, q, each, 0);
      }
    }
  } else if (op == CollectiveOp::kAllToAll) {
    // Pairwise: step k, rank r sends its share for r+k once its step k-1 message has arrived
    // (the peers synchronise), plus the step latency.
    const uint64_t each = (bytes + p - 1) / p;
    std::vector<uint32_t> last(p, FlowNetwork::kNone);
    for (uint32_t k = 1; k < p; ++k) {
      for (uint32_t r = 0; r < p; ++r) {
        const uint32_t f = send(r, (r + k) % p, each, k == 1 ? 0 : step_ps_);
        if (last[r] != FlowNetwork::kNone) net_.after(f, last[r]);
        last[r] = f;
      }
    }
  } else {
    std::vector<uint32_t> prev;
    const uint64_t seg = op == CollectiveOp::kAllGather ? bytes : (bytes + p - 1) / p;
    const uint32_t steps = op == CollectiveOp::kAllReduce ? 2 * (p - 1) : p - 1;
    ring_steps(steps, seg, prev);
  }
  net_.run();
  return finish();
}

PodCollectiveCache::PodCollectiveCache(const Pod& pod, uint32_t ranks,
                                       std::vector<CollectiveProtocol> protocols)
    : pod_(std::make_unique<Pod>(pod)),
      collectives_(*pod_, ranks, protocols.empty() ? 0 : protocols[0].step_latency_ps),
      protocols_(std::move(protocols)) {
  if (protocols_.empty()) {
    throw std::invalid_argument("PodCollectiveCache: at least one protocol");
  }
}

std::vector<config::CollectiveAlgorithm> allowed_algorithms(config::CollectiveAlgorithm a) {
  if (a != config::AUTO) return {a};
  return {config::RING, config::ONE_SHOT, config::TREE, config::IN_SWITCH, config::TWO_SHOT};
}

uint64_t protocol_message_bytes(CollectiveOp op, uint64_t bytes, uint32_t ranks) {
  if (op == CollectiveOp::kAllToAll && ranks > 0) {
    bytes = (ranks - 1) * ((bytes + ranks - 1) / ranks);
  }
  return std::max<uint64_t>(1, bytes);
}

std::string coverage_gap(const std::vector<CollectiveProtocol>& protocols, uint32_t ranks,
                         CollectiveOp op, config::CollectiveAlgorithm algorithm, bool pod,
                         bool reducing) {
  auto can_run = [&](config::CollectiveAlgorithm a) {
    return algorithm_available(op, a, pod, reducing);
  };
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const CollectiveProtocol& pr : protocols) {
    if (!pr.serves(op, pr.min_message_bytes, ranks)) continue;
    for (const config::CollectiveAlgorithm a : allowed_algorithms(algorithm)) {
      if (pr.runs(a) && can_run(a)) {
        ranges.emplace_back(pr.min_message_bytes, pr.max_message_bytes);
        break;
      }
    }
  }
  std::sort(ranges.begin(), ranges.end());
  // Sizes from 1 byte up are served while `next` (the first size not yet known to be) is
  // reached by a range's start.
  uint64_t next = 1;
  for (const auto& [lo, hi] : ranges) {
    if (lo > next) break;
    if (hi == UINT64_MAX) return "";
    next = std::max(next, hi + 1);
  }
  uint64_t end = UINT64_MAX;
  for (const auto& [lo, hi] : ranges) {
    if (lo > next) {
      end = lo - 1;
      break;
    }
  }
  if (end == UINT64_MAX) return "from " + std::to_string(next) + " bytes up";
  return "from " + std::to_string(next) + " to " + std::to_string(end) + " bytes";
}

bool PodCollectiveCache::runnable(CollectiveOp op, config::CollectiveAlgorithm algorithm) const {
  for (const CollectiveProtocol& pr : protocols_) {
    for (const config::CollectiveAlgorithm a : allowed_algorithms(algorithm)) {
      if (pr.runs(a) && collectives_.available(op, a)) {
        return true;
      }
    }
  }
  return false;
}

const CollectiveResult& PodCollectiveCache::get(CollectiveOp op, uint64_t bytes,
                                                config::CollectiveAlgorithm algorithm) {
  if (bytes >> 56) throw std::invalid_argument("PodCollectiveCache: message too large");
  const uint64_t k = bytes << 8 | uint64_t(op) << 4 | uint64_t(algorithm);
  auto it = cache_.find(k);
  if (it != cache_.end()) return it->second;
  CollectiveResult best;
  bool found = false;
  const uint64_t message = protocol_message_bytes(op, bytes, ranks());
  for (uint32_t i = 0; i < protocols_.size(); ++i) {
    const CollectiveProtocol& pr = protocols_[i];
    if (!pr.serves(op, message, ranks())) continue;
    collectives_.set_step_latency(pr.step_latency_ps);
    for (const config::CollectiveAlgorithm a : allowed_algorithms(algorithm)) {
      if (!pr.runs(a) || !collectives_.available(op, a)) continue;
      CollectiveResult r = collectives_.run(op, pr.wire_bytes(bytes), a);
      r.launch_ps = pr.launch_latency_ps;
      r.protocol = i;
      r.algorithm = a;
      if (!found || r.total_ps() < best.total_ps()) best = r;
      found = true;
    }
  }
  if (!found) {
    throw std::invalid_argument(std::string("PodCollectiveCache: no protocol serving ") +
                                std::to_string(bytes) + " bytes on " + std::to_string(ranks()) +
                                " ranks runs an algorithm available "
                                "for " +
                                collective_op_name(op) + " under " +
                                config::CollectiveAlgorithm_Name(algorithm));
  }
  return cache_.emplace(k, best).first->second;
}

CollectiveResult PodCollectiveCache::all_to_all(const uint64_t* traffic,
                                                config::CollectiveAlgorithm algorithm) {
  const size_t n = size_t{ranks()} * ranks();
  // The message a protocol's size range is judged by: what the busiest rank sends.
  uint64_t message = 1;
  for (uint32_t r = 0; r < ranks(); ++r) {
    uint64_t sent = 0;
    for (uint32_t q = 0; q < ranks(); ++q)
      if (q != r) sent += traffic[size_t{r} * ranks() + q];
    message = std::max(message, sent);
  }
  CollectiveResult best;
  bool found = false;
  for (uint32_t i = 0; i < protocols_.size(); ++i) {
    const CollectiveProtocol& pr = protocols_[i];
    if (!pr.serves(CollectiveOp::kAllToAll, message, ranks())) continue;
    const uint64_t* t = traffic;
    if (pr.wire_efficiency < 1.0) {
      wire_traffic_.resize(n);
      for (size_t j = 0; j < n; ++j)
        wire_traffic_[j] = pr.wire_bytes(traffic[j]);
      t = wire_traffic_.data();
    }
    collectives_.set_step_latency(pr.step_latency_ps);
    const std::vector<config::CollectiveAlgorithm> uneven =
        algorithm == config::AUTO
            ? std::vector<config::CollectiveAlgorithm>{config::ONE_SHOT, config::RING}
            : std::vector<config::CollectiveAlgorithm>{algorithm};
    for (const config::CollectiveAlgorithm a : uneven) {
      if (!pr.runs(a)) continue;
      CollectiveResult r = collectives_.all_to_all(t, a);
      r.launch_ps = pr.launch_latency_ps;
      r.protocol = i;
      r.algorithm = a;
      if (!found || r.total_ps() < best.total_ps()) best = r;
      found = true;
    }
  }
  if (!found) {
    throw std::invalid_argument(std::string("PodCollectiveCache: no protocol runs ") +
                                config::CollectiveAlgorithm_Name(algorithm) + " for all_to_all");
  }
  return best;
}

CollectiveResult PodCollectiveCache::two_tier_all_to_all(const uint64_t* traffic,
                                                         const uint64_t* domain_bytes,
                                                         bool gather) {
  const uint32_t p = ranks();
  const size_t n = size_t{p} * p;
  const size_t nd = size_t{p} * (p / pod_->domain_nodes());
  // The message a protocol's size range is judged by: what the busiest rank sends (scatter:
  // its NIC messages and its own domain's; gather: its forwards and its own domain's).
  uint64_t message = 1;
  for (uint32_t r = 0; r < p; ++r) {
    uint64_t sent = 0;
    for (uint32_t q = 0; q < p; ++q) {
      const bool same = pod_->domain_of(q) == pod_->domain_of(r);
      if (q != r && (same || gather)) sent += traffic[size_t{r} * p + q];
    }
    if (!gather) {
      for (size_t d = 0; d < nd / p; ++d)
        sent += domain_bytes[size_t{r} * (nd / p) + d];
    }
    message = std::max(message, sent);
  }
  CollectiveResult best;
  bool found = false;
  for (uint32_t i = 0; i < protocols_.size(); ++i) {
    const CollectiveProtocol& pr = protocols_[i];
    if (!pr.serves(CollectiveOp::kAllToAll, message, p) || !pr.runs(config::ONE_SHOT)) continue;
    const uint64_t* t = traffic;
    const uint64_t* dt = domain_bytes;
    if (pr.wire_efficiency < 1.0) {
      wire_traffic_.resize(n);
      for (size_t j = 0; j < n; ++j)
        wire_traffic_[j] = pr.wire_bytes(traffic[j]);
      wire_domain_.resize(nd);
      for (size_t j = 0; j < nd; ++j)
        wire_domain_[j] = pr.wire_bytes(domain_bytes[j]);
      t = wire_traffic_.data();
      dt = wire_domain_.data();
    }
    collectives_.set_step_latency(pr.step_latency_ps);
    CollectiveResult r = collectives_.two_tier_all_to_all(t, dt, gather);
    r.launch_ps = pr.launch_latency_ps;
    r.protocol = i;
    r.algorithm = config::ONE_SHOT;
    if (!found || r.total_ps() < best.total_ps()) best = r;
    found = true;
  }
  if (!found) {
    throw std::invalid_argument(
        "PodCollectiveCache: no protocol runs ONE_SHOT for a two-tier all_to_all");
  }
  return best;
}

}  // namespace tiersim
