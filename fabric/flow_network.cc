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

void FlowNetwork::set_contended_efficiency(uint32_t link, double efficiency) {
  if (link >= links_.size()) throw std::out_of_range("FlowNetwork: no such link");
  if (!(efficiency > 0 && efficiency <= 1)) {
    throw std::invalid_argument("FlowNetwork: a contended efficiency must be in (0, 1]");
  }
  links_[link].contended_efficiency = efficiency;
  if (efficiency < 1) any_contended_ = true;
}

void FlowNetwork::set_rate_tolerance(double tolerance) {
  if (!(tolerance >= 0 && tolerance <= 1)) {
    throw std::invalid_argument("FlowNetwork: a rate tolerance must be in [0, 1]");
  }
  rate_tolerance_ = tolerance;
}

void FlowNetwork::recompute_rates(TimePs now) {
  ++rate_updates_;
  // Bring the bytes left up to `now` and drop the flows that have finished, keeping the order.
  {
    size_t kept = 0;
    for (const uint32_t f : active_) {
      Flow& fl = flows_[f];
      if (fl.done) continue;
      if (now != fl.updated_ps) {
        const double dt_s = double(now - fl.updated_ps) / kPsPerS;
        fl.left_bytes = std::max(0.0, fl.left_bytes - fl.rate * dt_s);
        fl.updated_ps = now;
      }
      active_[kept++] = f;
    }
    active_.resize(kept);
  }
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
  busy_links_.clear();
  for (uint32_t l = 0; l < n_links; ++l) {
    if (links_[l].unfrozen > 0) busy_links_.push_back(l);
  }
  if (any_contended_) {
    // A contended output port: flows on it come from two or more distinct previous links.
    for (const uint32_t l : busy_links_) {
      Link& k = links_[l];
      if (k.contended_efficiency >= 1 || k.unfrozen < 2) continue;
      uint32_t first = kNone;
      bool contended = false;
      for (uint32_t i = cross_begin_[l]; i < cross_begin_[l + 1] && !contended; ++i) {
        const Flow& fl = flows_[cross_[i]];
        uint32_t prev = kNone;
        for (uint32_t h = 1; h < fl.hops; ++h) {
          if (paths_[fl.path_begin + h] == l) {
            prev = paths_[fl.path_begin + h - 1];
            break;
          }
        }
        if (i == cross_begin_[l]) {
          first = prev;
        } else if (prev != first) {
          contended = true;
        }
      }
      if (contended) k.left = k.bytes_per_s * k.contended_efficiency;
    }
  }
  // Progressive filling: the link with the smallest fair share (the lowest id among equals)
  // freezes its flows at it. Only links still carrying unfrozen flows are scanned, kept in id
  // order.
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
    if (best == kNone) break;  // flows without links: none are active
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
  // End times at these rates. Exact: every flow change recomputes, so a scan finds the next
  // end (next_end_ps_); with a tolerance, the ends between computations come from a heap.
  ends_.clear();
  next_end_ps_ = kMaxSimTimePs;
  for (const uint32_t f : active_) {
    Flow& fl = flows_[f];
    const double ps = std::ceil(fl.left_bytes / fl.rate * kPsPerS);
    if (!(ps < double(kMaxSimTimePs - now) - double(fl.path_latency_ps))) {
      raise_run_input_error(
          "a collective's flow would end past the simulated time limit (2^62 ps): a link or "
          "injection rate too low for its bytes");
    }
    fl.end_ps = now + static_cast<TimePs>(ps);
    next_end_ps_ = std::min(next_end_ps_, fl.end_ps);
    if (rate_tolerance_ > 0) ends_.emplace_back(fl.end_ps, f);
  }
  if (rate_tolerance_ > 0) std::make_heap(ends_.begin(), ends_.end(), std::greater<>());
}

void FlowNetwork::end(uint32_t f, TimePs now, TimePs& due_ps, bool& changed) {
  Flow& fl = flows_[f];
  fl.done = true;
  fl.left_bytes = 0;
  release(f, now, true);
  release(f, now + fl.path_latency_ps, false);
  if (rate_tolerance_ == 0) {
    changed = true;
  } else if (due_ps == kMaxSimTimePs) {
    const double wait_ps = double(now) * rate_tolerance_;
    due_ps = now + static_cast<TimePs>(std::min(wait_ps, double(kMaxSimTimePs - 1 - now)));
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
  ends_.clear();
  makespan_ps_ = 0;
  rate_updates_ = 0;
  for (Link& l : links_)
    l.bytes = 0;
  for (Flow& f : flows_) {
    f.waiting = 0;
    f.ready_ps = f.release_ps;
    f.done = false;
  }
  for (const Edge& e : edges_)
    ++flows_[e.flow].waiting;
  for (uint32_t f = 0; f < n; ++f) {
    if (flows_[f].waiting == 0) ready_.emplace_back(flows_[f].ready_ps, f);
  }
  std::make_heap(ready_.begin(), ready_.end(), std::greater<>());

  TimePs now = 0;
  bool changed = false;
  // With a rate tolerance: when the rates must be recomputed for the ends pending since the last
  // computation (kMaxSimTimePs: none pending).
  TimePs due_ps = kMaxSimTimePs;
  while (!ready_.empty() || !active_.empty()) {
    if (changed) {
      recompute_rates(now);
      changed = false;
      due_ps = kMaxSimTimePs;
      if (ready_.empty() && active_.empty()) break;
    }
    // The next event: a start, the earliest end of a transmission, or a pending recomputation.
    TimePs next = kMaxSimTimePs;
    if (!ready_.empty()) next = std::max(now, ready_.front().first);
    if (rate_tolerance_ > 0) {
      if (!ends_.empty()) next = std::min(next, ends_.front().first);
    } else {
      next = std::min(next, next_end_ps_);
    }
    next = std::min(next, std::max(now, due_ps));
    if (next >= kMaxSimTimePs) throw std::runtime_error("FlowNetwork: no progress possible");
    now = next;
    // The transmissions whose last byte leaves now end.
    if (rate_tolerance_ > 0) {
      while (!ends_.empty() && ends_.front().first <= now) {
        std::pop_heap(ends_.begin(), ends_.end(), std::greater<>());
        const uint32_t f = ends_.back().second;
        ends_.pop_back();
        end(f, now, due_ps, changed);
      }
    } else if (next_end_ps_ <= now) {
      for (const uint32_t f : active_) {
        if (!flows_[f].done && flows_[f].end_ps <= now) end(f, now, due_ps, changed);
      }
      next_end_ps_ = kMaxSimTimePs;
    }
    if (due_ps <= now) changed = true;
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
        fl.done = true;
        release(f, now, true);
        release(f, now + fl.path_latency_ps, false);
        continue;
      }
      fl.left_bytes = double(fl.bytes);
      fl.rate = 0;
      fl.updated_ps = now;
      active_.push_back(f);
      changed = true;
    }
  }
  for (const Flow& f : flows_) {
    if (f.waiting != 0) throw std::logic_error("FlowNetwork: a flow never became ready");
  }
}

}  // namespace tiersim
