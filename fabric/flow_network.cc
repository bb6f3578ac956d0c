#include "fabric/flow_network.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

namespace tiersim {

namespace {

// Picoseconds to move `bytes` at `bytes_per_s` (rounded up), refused with a run input error when
// that, plus `after_ps` more, would pass the simulated time limit from `at`.
TimePs checked_ps(double bytes, double bytes_per_s, TimePs at, TimePs after_ps, const char* what) {
  const double ps = std::ceil(bytes / bytes_per_s * kPsPerS);
  if (!(ps < double(kMaxSimTimePs - at) - double(after_ps))) {
    raise_run_input_error(std::string("a collective's ") + what +
                          " would end past the simulated time limit (2^62 ps): a link or "
                          "injection rate too low for its bytes");
  }
  return static_cast<TimePs>(ps);
}

}  // namespace

void FlowNetwork::advance(Flow& fl, TimePs now) {
  if (now == fl.updated_ps) return;
  const double dt_s = double(now - fl.updated_ps) / kPsPerS;
  fl.left_bytes = std::max(0.0, fl.left_bytes - fl.rate * dt_s);
  fl.updated_ps = now;
}

void FlowNetwork::set_end(Flow& fl, TimePs now) {
  fl.end_ps = now + checked_ps(fl.left_bytes, fl.rate, now, fl.path_latency_ps, "flow");
  next_end_ps_ = std::min(next_end_ps_, fl.end_ps);
}

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
      advance(fl, now);
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
    set_end(fl, now);
    if (rate_tolerance_ > 0) ends_.emplace_back(fl.end_ps, f);
  }
  if (rate_tolerance_ > 0) std::make_heap(ends_.begin(), ends_.end(), std::greater<>());
}

TimePs FlowNetwork::due_after(TimePs now) const {
  // In integers, so the due time stays below the "none pending" mark.
  const double wait = double(now) * rate_tolerance_;
  const TimePs wait_ps = wait >= double(kMaxSimTimePs) ? kMaxSimTimePs : TimePs(wait);
  return std::min<TimePs>(now + wait_ps, kMaxSimTimePs - 1);
}

void FlowNetwork::end(uint32_t f, TimePs now, TimePs& due_ps, bool& changed) {
  Flow& fl = flows_[f];
  fl.done = true;
  fl.left_bytes = 0;
  release(f, now, true);
  release(f, now + fl.path_latency_ps, false);
  if (rate_tolerance_ == 0) {
    changed = true;
    return;
  }
  // The capacity it held is free for flows that start lazily until the next computation.
  for (uint32_t h = 0; h < fl.hops; ++h)
    links_[paths_[fl.path_begin + h]].left += fl.rate;
  if (due_ps == kMaxSimTimePs) due_ps = due_after(now);
}

bool FlowNetwork::start_lazily(Flow& fl, TimePs now, TimePs& due_ps) {
  double rate = std::numeric_limits<double>::infinity();
  double fair = std::numeric_limits<double>::infinity();
  for (uint32_t h = 0; h < fl.hops; ++h) {
    const uint32_t l = paths_[fl.path_begin + h];
    const Link& k = links_[l];
    // A contended port's capacity depends on who shares it: computed now.
    if (k.contended_efficiency < 1) return false;
    rate = std::min(rate, std::max(0.0, k.left));
    // A fair-share estimate: the link's capacity over the flows the last computation saw on
    // it, plus this one.
    const uint32_t seen = l + 1 < cross_begin_.size() ? cross_begin_[l + 1] - cross_begin_[l] : 0;
    fair = std::min(fair, k.bytes_per_s / double(seen + 1));
  }
  // Well under that (starved, as a flow starting on a full path is), it is computed now: a
  // starved start would wait up to the tolerance, and along a chain of such starts the waits
  // compound.
  if (rate < (1 - rate_tolerance_) * fair) return false;
  for (uint32_t h = 0; h < fl.hops; ++h)
    links_[paths_[fl.path_begin + h]].left -= rate;
  fl.rate = rate;
  if (due_ps == kMaxSimTimePs) due_ps = due_after(now);
  // An end before the computation due is kept; a later one is the computation's to set.
  fl.end_ps = kMaxSimTimePs;
  if (rate > 0 && fl.left_bytes / rate * kPsPerS < double(due_ps - now)) {
    set_end(fl, now);
    ends_.emplace_back(fl.end_ps, uint32_t(&fl - flows_.data()));
    std::push_heap(ends_.begin(), ends_.end(), std::greater<>());
  }
  return true;
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
  if (packet_bytes_ > 0) {
    run_packets();
  } else {
    run_flows();
  }
  for (const Flow& f : flows_) {
    if (f.waiting != 0) throw std::logic_error("FlowNetwork: a flow never became ready");
  }
}

bool FlowNetwork::start_flow(uint32_t f, TimePs now) {
  Flow& fl = flows_[f];
  fl.start_ps = now;
  for (uint32_t h = 0; h < fl.hops; ++h)
    links_[paths_[fl.path_begin + h]].bytes += fl.bytes;
  if (fl.bytes == 0 || fl.hops == 0) {
    // Nothing to send (or a local copy): it arrives after the path's latency alone.
    fl.done = true;
    release(f, now, true);
    release(f, now + fl.path_latency_ps, false);
    return false;
  }
  return true;
}

void FlowNetwork::run_flows() {
  TimePs now = 0;
  bool changed = false;
  next_end_ps_ = kMaxSimTimePs;
  // With a rate tolerance: when the rates must be recomputed for the ends pending since the last
  // computation (kMaxSimTimePs: none pending).
  TimePs due_ps = kMaxSimTimePs;
  size_t live = 0;  // flows transmitting (active_ also keeps ended ones until a computation)
  while (!ready_.empty() || live > 0) {
    if (changed) {
      recompute_rates(now);
      changed = false;
      due_ps = kMaxSimTimePs;
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
        --live;
      }
    } else if (next_end_ps_ <= now) {
      for (const uint32_t f : active_) {
        if (!flows_[f].done && flows_[f].end_ps <= now) {
          end(f, now, due_ps, changed);
          --live;
        }
      }
      next_end_ps_ = kMaxSimTimePs;
    }
    if (due_ps <= now) changed = true;
    // With a tolerance, flows that start while others transmit (and no computation is due
    // now) start lazily: each takes what its path has left unallocated, and a computation is
    // due within the tolerance.
    const bool lazy = rate_tolerance_ > 0 && live > 0 && !changed;
    // Start every flow ready by now (arrivals above may have readied more at `now`).
    while (!ready_.empty() && ready_.front().first <= now) {
      std::pop_heap(ready_.begin(), ready_.end(), std::greater<>());
      const uint32_t f = ready_.back().second;
      ready_.pop_back();
      if (!start_flow(f, now)) continue;
      Flow& fl = flows_[f];
      fl.left_bytes = double(fl.bytes);
      fl.rate = 0;
      fl.updated_ps = now;
      active_.push_back(f);
      ++live;
      if (!lazy || !start_lazily(fl, now, due_ps)) changed = true;
    }
    if (rate_tolerance_ == 0 && !changed && live > 0) {
      // Exact, and only empty flows started: the rates stand, but the bytes left and the end
      // times are brought to `now` (the same rounding as at every other event).
      next_end_ps_ = kMaxSimTimePs;
      for (const uint32_t f : active_) {
        Flow& fl = flows_[f];
        if (fl.done) continue;
        advance(fl, now);
        set_end(fl, now);
      }
    }
  }
  active_.clear();
}

void FlowNetwork::set_link_model(uint32_t link, const LinkParams& params, uint64_t seed,
                                 TimePs extra_latency_ps) {
  if (link >= links_.size()) throw std::out_of_range("FlowNetwork: no such link");
  Link& k = links_[link];
  k.has_model = true;
  k.model = params;
  k.model_seed = seed;
  k.extra_latency_ps = extra_latency_ps;
}

void FlowNetwork::run_packets() {
  const uint32_t n_links = links();
  // Fresh serial models each run, seeded by the link and the run's ordinal: successive
  // collectives draw different retrains, replays and jitter; the same sequence of runs draws
  // the same.
  std::vector<std::unique_ptr<LinkModel>> models(n_links);
  const uint64_t run_salt = ++packet_runs_ * 0xd1b54a32d192ed03ULL;
  for (uint32_t l = 0; l < n_links; ++l) {
    if (links_[l].has_model) {
      models[l] = std::make_unique<LinkModel>(links_[l].model, links_[l].model_seed ^ run_salt);
    }
  }
  std::vector<TimePs> free_ps(n_links, 0), next_issue_ps(n_links, 0);
  std::vector<uint32_t> last_input(n_links, kNone);
  std::vector<char> issuing(n_links, 0), seen(n_links, 0);
  std::vector<std::vector<uint32_t>> round(n_links);  // per first link: flows, round-robin
  std::vector<size_t> round_at(n_links, 0);
  std::vector<uint64_t> unsent(flows_.size(), 0), packets_left(flows_.size(), 0);
  std::vector<TimePs> last_arrival(flows_.size(), 0);
  struct Event {
    TimePs t;
    uint64_t seq;
    uint32_t flow, hop;  // hop kNone: the first link `flow` issues its next packet
    uint64_t bytes;
    TimePs last_ps;  // when the packet's last byte is ready at this hop
    bool operator>(const Event& o) const { return t > o.t || (t == o.t && seq > o.seq); }
  };
  std::vector<Event> events;
  uint64_t seq = 0;
  auto push = [&](const Event& e) {
    events.push_back(e);
    std::push_heap(events.begin(), events.end(), std::greater<>());
  };
  TimePs sent_ps = 0;  // set by serve(): when the packet's last byte left the hop
  // Serves a packet of `bytes` from flow `f` at hop `h`, its first byte ready at `first` and its
  // last at `last`: when its first and last bytes reach the hop's far end.
  auto serve = [&](uint32_t f, uint32_t h, uint64_t bytes, TimePs first,
                   TimePs last) -> std::pair<TimePs, TimePs> {
    const Flow& fl = flows_[f];
    const uint32_t l = paths_[fl.path_begin + h];
    Link& k = links_[l];
    const uint32_t input = h > 0 ? paths_[fl.path_begin + h - 1] : kNone;
    uint64_t wire = bytes;
    // Contended: the port is still busy with a packet from another input.
    const TimePs busy_until = models[l] ? models[l]->busy_until_ps() : free_ps[l];
    if (k.contended_efficiency < 1 && seen[l] && last_input[l] != input && first < busy_until) {
      wire = static_cast<uint64_t>(std::ceil(double(bytes) / k.contended_efficiency));
    }
    seen[l] = 1;
    last_input[l] = input;
    if (models[l]) {
      // Request headers ride with the data (message_bytes per max_request_bytes).
      wire += (k.model.max_request_bytes ? k.model.messages_for(bytes) : 0) * k.model.message_bytes;
      const TimePs arrival = models[l]->transfer(first, wire, last);
      if (arrival == LinkModel::kNever || arrival >= kMaxSimTimePs) {
        raise_run_input_error(
            "a collective's packet would end past the simulated time limit (2^62 ps)");
      }
      sent_ps = models[l]->last_sent_ps();
      return {models[l]->last_first_arrival_ps() + k.extra_latency_ps,
              arrival + k.extra_latency_ps};
    }
    const TimePs begin = std::max(first, free_ps[l]);
    const TimePs end =
        std::max(begin + checked_ps(double(wire), k.bytes_per_s, begin, 0, "packet"), last);
    free_ps[l] = end;
    sent_ps = end;
    return {begin + k.latency_ps, end + k.latency_ps};
  };
  auto forward = [&](uint32_t f, uint32_t h, uint64_t bytes, std::pair<TimePs, TimePs> at) {
    if (h + 1 < flows_[f].hops) {
      push(Event{at.first, seq++, f, h + 1, bytes, at.second});
      return;
    }
    last_arrival[f] = std::max(last_arrival[f], at.second);
    if (--packets_left[f] == 0) release(f, last_arrival[f], false);
  };
  auto schedule_issue = [&](uint32_t l, TimePs at) {
    if (issuing[l]) return;
    issuing[l] = 1;
    push(Event{std::max(at, next_issue_ps[l]), seq++, l, kNone, 0, 0});
  };
  while (!ready_.empty() || !events.empty()) {
    const TimePs t_ready = ready_.empty() ? kMaxSimTimePs : ready_.front().first;
    if (!events.empty() && events.front().t <= t_ready) {
      std::pop_heap(events.begin(), events.end(), std::greater<>());
      const Event e = events.back();
      events.pop_back();
      ++rate_updates_;
      if (e.hop != kNone) {
        forward(e.flow, e.hop, e.bytes, serve(e.flow, e.hop, e.bytes, e.t, e.last_ps));
        continue;
      }
      // The first link `l` sends one packet of its next flow, round-robin.
      const uint32_t l = e.flow;
      std::vector<uint32_t>& r = round[l];
      size_t& at = round_at[l];
      if (at >= r.size()) at = 0;
      const uint32_t f = r[at];
      const uint64_t bytes = std::min<uint64_t>(packet_bytes_, unsent[f]);
      unsent[f] -= bytes;
      // The next packet goes when this one has left (the link's own pace, replays included).
      const auto reached = serve(f, 0, bytes, e.t, e.t);
      next_issue_ps[l] = std::max(e.t + 1, sent_ps);
      if (unsent[f] == 0) {
        r.erase(r.begin() + static_cast<std::ptrdiff_t>(at));
        release(f, sent_ps, true);
      } else {
        ++at;
      }
      forward(f, 0, bytes, reached);
      issuing[l] = 0;
      if (!r.empty()) schedule_issue(l, next_issue_ps[l]);
      continue;
    }
    // Start the flows ready now.
    const TimePs now = t_ready;
    while (!ready_.empty() && ready_.front().first <= now) {
      std::pop_heap(ready_.begin(), ready_.end(), std::greater<>());
      const uint32_t f = ready_.back().second;
      ready_.pop_back();
      if (!start_flow(f, now)) continue;
      const Flow& fl = flows_[f];
      unsent[f] = fl.bytes;
      packets_left[f] = (fl.bytes + packet_bytes_ - 1) / packet_bytes_;
      const uint32_t first = paths_[fl.path_begin];
      round[first].push_back(f);
      schedule_issue(first, now);
    }
  }
}

}  // namespace tiersim
