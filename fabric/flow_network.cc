#include "fabric/flow_network.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>

namespace tiersim {

uint32_t FlowNetwork::add_link(double bytes_per_s, TimePs latency_ps, double energy_pj_per_bit) {
  if (!(bytes_per_s > 0)) throw std::invalid_argument("FlowNetwork: link capacity must be > 0");
  links_.push_back(Link{bytes_per_s, latency_ps, energy_pj_per_bit});
  return static_cast<uint32_t>(links_.size() - 1);
}

void FlowNetwork::clear_flows() {
  flows_.clear();
  paths_.clear();
  edges_.clear();
  for (Link& l : links_)
    l.bytes = 0;
  makespan_ps_ = 0;
  rate_updates_ = 0;
}

uint32_t FlowNetwork::add_flow(const uint32_t* path, uint32_t hops, uint64_t bytes, TimePs delay_ps,
                               TimePs release_ps) {
  Flow f{};
  f.path_begin = static_cast<uint32_t>(paths_.size());
  f.hops = hops;
  f.bytes = bytes;
  f.delay_ps = delay_ps;
  f.release_ps = release_ps;
  for (uint32_t i = 0; i < hops; ++i) {
    if (path[i] >= links_.size()) throw std::out_of_range("FlowNetwork: no such link");
    paths_.push_back(path[i]);
    f.path_latency_ps += links_[path[i]].latency_ps;
    if (f.path_latency_ps >= kMaxSimTimePs) {
      raise_run_input_error("a route's latency (" + std::to_string(i + 1) +
                            " links) passes the simulated time limit");
    }
  }
  flows_.push_back(f);
  return static_cast<uint32_t>(flows_.size() - 1);
}

void FlowNetwork::after(uint32_t flow, uint32_t before, bool when_sent) {
  if (before >= flow || flow >= flows_.size()) {
    throw std::invalid_argument("FlowNetwork: a flow can only follow an earlier flow");
  }
  edges_.push_back(Edge{before, flow, when_sent});
}

double FlowNetwork::energy_j() const {
  double j = 0;
  for (const Link& l : links_)
    j += double(l.bytes) * 8.0 * l.energy_pj_per_bit * 1e-12;
  return j;
}

void FlowNetwork::release(uint32_t f, TimePs at, bool sent) {
  if (!sent) {
    flows_[f].arrival_ps = at;
    makespan_ps_ = std::max(makespan_ps_, at);
  }
  for (uint32_t i = succ_begin_[f]; i < succ_begin_[f + 1]; ++i) {
    if (succ_[i].when_sent != sent) continue;
    const uint32_t next = succ_[i].flow;
    Flow& s = flows_[next];
    // The delay is the wait after an input arrives; a sender's order costs nothing more.
    s.ready_ps = std::max(s.ready_ps, sent ? at : at + s.delay_ps);
    if (--s.waiting == 0) {
      ready_.emplace_back(s.ready_ps, next);
      std::push_heap(ready_.begin(), ready_.end(), std::greater<>());
    }
  }
}

void FlowNetwork::recompute_rates() {
  ++rate_updates_;
  const uint32_t n_links = links();
  cross_begin_.assign(n_links + 1, 0);
  for (uint32_t f : active_) {
    const Flow& fl = flows_[f];
    for (uint32_t h = 0; h < fl.hops; ++h)
      ++cross_begin_[paths_[fl.path_begin + h] + 1];
  }
  for (uint32_t l = 0; l < n_links; ++l) {
    cross_begin_[l + 1] += cross_begin_[l];
    links_[l].left = links_[l].bytes_per_s;
    links_[l].unfrozen = cross_begin_[l + 1] - cross_begin_[l];
  }
  cross_.resize(cross_begin_[n_links]);
  std::vector<uint32_t>& fill = fill_;
  fill.assign(cross_begin_.begin(), cross_begin_.end() - 1);
  for (uint32_t f : active_) {
    Flow& fl = flows_[f];
    fl.frozen = false;
    for (uint32_t h = 0; h < fl.hops; ++h)
      cross_[fill[paths_[fl.path_begin + h]]++] = f;
  }
  // Progressive filling: the link with the smallest fair share (the lowest id among equals)
  // freezes its flows at it. Only links still carrying unfrozen flows are scanned, kept in id
  // order.
  busy_links_.clear();
  for (uint32_t l = 0; l < n_links; ++l) {
    if (links_[l].unfrozen > 0) busy_links_.push_back(l);
  }
  size_t unfrozen = active_.size();
  while (unfrozen > 0) {
    uint32_t best = kNone;
    double share = 0;
    size_t kept = 0;
    for (const uint32_t l : busy_links_) {
      const Link& k = links_[l];
      if (k.unfrozen == 0) continue;
      busy_links_[kept++] = l;
      const double s = std::max(k.left, 0.0) / k.unfrozen;
      if (best == kNone || s < share) {
        best = l;
        share = s;
      }
    }
    busy_links_.resize(kept);
    if (best == kNone) break;  // flows without links: handled below
    for (uint32_t i = cross_begin_[best]; i < cross_begin_[best + 1]; ++i) {
      Flow& fl = flows_[cross_[i]];
      if (fl.frozen) continue;
      fl.frozen = true;
      fl.rate = share;
      --unfrozen;
      for (uint32_t h = 0; h < fl.hops; ++h) {
        Link& k = links_[paths_[fl.path_begin + h]];
        k.left -= share;
        --k.unfrozen;
      }
    }
  }
}

void FlowNetwork::run() {
  const uint32_t n = flows();
  // Successors (CSR) and predecessor counts.
  succ_begin_.assign(n + 1, 0);
  for (const Edge& e : edges_)
    ++succ_begin_[e.before + 1];
  for (uint32_t i = 0; i < n; ++i)
    succ_begin_[i + 1] += succ_begin_[i];
  succ_.resize(edges_.size());
  {
    std::vector<uint32_t> fill(succ_begin_.begin(), succ_begin_.end() - 1);
    for (const Edge& e : edges_)
      succ_[fill[e.before]++] = e;
  }
  ready_.clear();
  active_.clear();
  makespan_ps_ = 0;
  rate_updates_ = 0;
  for (Link& l : links_)
    l.bytes = 0;
  for (Flow& f : flows_) {
    f.waiting = 0;
    f.ready_ps = f.release_ps;
  }
  for (const Edge& e : edges_)
    ++flows_[e.flow].waiting;
  for (uint32_t f = 0; f < n; ++f) {
    if (flows_[f].waiting == 0) ready_.emplace_back(flows_[f].ready_ps, f);
  }
  std::make_heap(ready_.begin(), ready_.end(), std::greater<>());

  TimePs now = 0;
  bool changed = false;
  while (!ready_.empty() || !active_.empty()) {
    if (changed) {
      recompute_rates();
      changed = false;
    }
    // The next event: a start, or the earliest end of a transmission.
    TimePs next = kMaxSimTimePs;
    if (!ready_.empty()) next = std::max(now, ready_.front().first);
    for (uint32_t f : active_) {
      const Flow& fl = flows_[f];
      const double ps = std::ceil(fl.left_bytes / fl.rate * kPsPerS);
      if (!(ps < double(kMaxSimTimePs - now) - double(fl.path_latency_ps))) {
        raise_run_input_error(
            "a collective's flow would end past the simulated time limit (2^62 ps): a link or "
            "injection rate too low for its bytes");
      }
      next = std::min(next, now + static_cast<TimePs>(ps));
    }
    if (next >= kMaxSimTimePs) throw std::runtime_error("FlowNetwork: no progress possible");
    // Advance the transmitting flows to `next`; those whose end falls there end.
    const double dt_s = double(next - now) / kPsPerS;
    size_t kept = 0;
    for (size_t i = 0; i < active_.size(); ++i) {
      const uint32_t f = active_[i];
      Flow& fl = flows_[f];
      const double ps = std::ceil(fl.left_bytes / fl.rate * kPsPerS);
      if (now + static_cast<TimePs>(ps) <= next) {
        fl.left_bytes = 0;
        changed = true;
        release(f, next, true);
        release(f, next + fl.path_latency_ps, false);
      } else {
        fl.left_bytes = std::max(0.0, fl.left_bytes - fl.rate * dt_s);
        active_[kept++] = f;
      }
    }
    active_.resize(kept);
    now = next;
    // Start every flow ready by now (arrivals above may have readied more at `now`).
    while (!ready_.empty() && ready_.front().first <= now) {
      std::pop_heap(ready_.begin(), ready_.end(), std::greater<>());
      const uint32_t f = ready_.back().second;
      ready_.pop_back();
      Flow& fl = flows_[f];
      fl.start_ps = now;
      for (uint32_t h = 0; h < fl.hops; ++h)
        links_[paths_[fl.path_begin + h]].bytes += fl.bytes;
      if (fl.bytes == 0 || fl.hops == 0) {
        // Nothing to send (or a local copy): it arrives after the path's latency alone.
        release(f, now, true);
        release(f, now + fl.path_latency_ps, false);
        continue;
      }
      fl.left_bytes = double(fl.bytes);
      fl.rate = 0;
      active_.push_back(f);
      changed = true;
    }
  }
  for (const Flow& f : flows_) {
    if (f.waiting != 0) throw std::logic_error("FlowNetwork: a flow never became ready");
  }
}

}  // namespace tiersim
