#include "memory/tools/dram_patterns.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <queue>
#include <stdexcept>
#include <vector>

#include "models/core/rng.h"

namespace tiersim {

namespace {

void check_pattern(const DramPattern& p, uint64_t access) {
  if (p.request_bytes == 0 || p.request_bytes % access != 0) {
    throw std::invalid_argument(p.name + ": request_bytes must be a multiple of " +
                                std::to_string(access));
  }
  if ((p.outstanding > 0) == (p.injection_bytes_per_s > 0)) {
    throw std::invalid_argument(p.name + ": set exactly one of outstanding, injection rate");
  }
  if (p.total_bytes < p.request_bytes) throw std::invalid_argument(p.name + ": total too small");
}

// The address and direction sequence of a pattern (identical for both levels, same seed).
class PatternSource {
 public:
  PatternSource(const DramPattern& p, uint64_t capacity)
      : p_(p), capacity_(capacity), rng_(p.seed) {}
  // The next request's start address and direction.
  void next(uint64_t* addr, bool* write) {
    switch (p_.kind) {
      case DramPattern::Kind::kStream:
        *addr = cursor_;
        cursor_ += p_.request_bytes;
        break;
      case DramPattern::Kind::kRandom:
        *addr = rng_.below(capacity_ / p_.request_bytes) * p_.request_bytes;
        break;
      case DramPattern::Kind::kStrided:
        *addr = cursor_;
        cursor_ += p_.stride_bytes;
        break;
    }
    *addr %= capacity_;
    *write = rng_.uniform() >= p_.read_fraction;
  }

 private:
  const DramPattern& p_;
  uint64_t capacity_;
  Rng rng_;
  uint64_t cursor_ = 0;
};

// Completed bytes binned by time and per-request latencies; summarises the steady window
// [20%, 70%] of the run (warm-up, drain and refreshes still postponed at the end stay outside).
// Time is in units of `unit_ps` picoseconds (cycles for the detailed level, ps for the fast).
class Measurements {
 public:
  Measurements(uint32_t bin_shift, double unit_ps, uint64_t requests)
      : shift_(bin_shift), unit_ps_(unit_ps) {
    latencies_.reserve(std::min<uint64_t>(requests, 1 << 20));
  }
  void completed(uint64_t at, uint64_t bytes) {
    const uint64_t bin = at >> shift_;
    if (bin >= bins_.size()) bins_.resize(bin + 1, 0);
    bins_[bin] += bytes;
    end_ = std::max(end_, at);
  }
  void latency(double ps) { latencies_.push_back(ps); }
  // Fills bandwidth, efficiency and latency statistics of `r`.
  void summarise(double peak_bytes_per_s, DramPatternResult* r) {
    const uint64_t b0 = (end_ / 5) >> shift_, b1 = (end_ * 7 / 10) >> shift_;
    uint64_t in_window = 0;
    for (uint64_t b = b0; b < b1 && b < bins_.size(); ++b)
      in_window += bins_[b];
    r->bandwidth_bytes_per_s =
        b1 > b0 ? double(in_window) * 1e12 / (double((b1 - b0) << shift_) * unit_ps_) : 0;
    r->efficiency = r->bandwidth_bytes_per_s / peak_bytes_per_s;
    double sum = 0;
    for (double l : latencies_)
      sum += l;
    r->mean_latency_ps = latencies_.empty() ? 0 : sum / double(latencies_.size());
    std::sort(latencies_.begin(), latencies_.end());
    r->p99_latency_ps =
        latencies_.empty()
            ? 0
            : latencies_[std::min(latencies_.size() - 1, latencies_.size() * 99 / 100)];
  }

 private:
  uint32_t shift_;
  double unit_ps_;
  std::vector<uint64_t> bins_;
  std::vector<double> latencies_;
  uint64_t end_ = 0;
};

}  // namespace

RandomAccessCeiling random_access_ceiling(const DramStackSpec& spec,
                                          double accesses_per_activation) {
  const DramTiming& t = spec.timing;
  const double peak = 1.0 / t.burst_cycles;
  RandomAccessCeiling c;
  const double sharing = std::max<uint32_t>(1, spec.pseudo_channels);
  // Row-bus cycles per activation: the ACT's two, plus a PRE's one with open pages.
  const double row_commands =
      double(SharedCommandBuses::kActRowCycles) + (spec.policy.page == PagePolicy::kOpen ? 1 : 0);
  const std::pair<double, const char*> terms[] = {
      {peak, "data bus"},
      {accesses_per_activation / t.rrd_s, "tRRD_S"},
      {accesses_per_activation * 4.0 / t.faw, "tFAW"},
      {accesses_per_activation * spec.org.banks() / t.rc, "tRC"},
      {accesses_per_activation / (row_commands * sharing), "row command bus"},
      {1.0 / sharing, "column command bus"},
  };
  double rate = peak;
  c.binding = terms[0].second;
  for (const auto& [v, name] : terms) {
    if (v < rate) {
      rate = v;
      c.binding = name;
    }
  }
  const double refresh = spec.policy.refresh == RefreshMode::kAllBank && t.refi > 0
                             ? std::max(0.0, 1.0 - double(t.rfc) / t.refi)
                             : 1.0;
  c.fraction_of_peak = rate / peak * refresh;
  return c;
}

DramPatternResult run_dram_pattern(const DramStackSpec& spec, const DramPattern& p) {
  const uint64_t access = spec.org.access_bytes;
  check_pattern(p, access);
  DramStack stack(spec);
  const uint64_t per_request = p.request_bytes / access;
  const uint64_t requests = p.total_bytes / p.request_bytes;
  const uint64_t capacity = spec.capacity_bytes();
  PatternSource source(p, capacity);

  // Per request in flight: accesses still to complete, issue cycle. Slots recycled by id.
  struct Slot {
    uint64_t remaining = 0, issue_cycle = 0;
  };
  const uint32_t slots = p.outstanding > 0 ? p.outstanding : 1u << 16;
  std::vector<Slot> slot(slots);
  std::vector<uint32_t> free_slots;
  // Release times of slots, oldest first: in a closed loop the k-th request is issued at the
  // k-th release, even if the in-order front end reaches it later (its wait there is part of
  // the latency the requester sees).
  std::deque<uint64_t> released(p.outstanding, 0);
  for (uint32_t i = slots; i-- > 0;)
    free_slots.push_back(i);
  // A request holds its slot until the requester has its data: its last beat lands (the
  // controller reports the request when its column command issues, with the landing cycle)
  // and the front end's latency has passed. So N outstanding means N requests in flight
  // end to end, and Little's law holds: bandwidth = N x request bytes / mean latency.
  const uint64_t frontend_cycles =
      (spec.frontend_latency_ps + spec.timing.tck_ps - 1) / spec.timing.tck_ps;
  // Slots waiting for their release, by release cycle: a ring of one bucket per cycle over the
  // longest a request can still take once the controller reports it (CL or CWL, the burst and
  // the front end), drained in cycle order and, within a cycle, by slot (as a heap of (release,
  // slot) pairs would pop them).
  uint64_t horizon = 1;
  while (horizon <= std::max(spec.timing.cl, spec.timing.cwl) + spec.timing.burst_cycles +
                        frontend_cycles + 1) {
    horizon *= 2;
  }
  std::vector<std::vector<uint32_t>> ring(horizon);
  uint64_t pending = 0;            // slots in the ring
  uint64_t drained = 0;            // the next release cycle to drain
  uint64_t earliest = UINT64_MAX;  // the earliest pending release (UINT64_MAX: none)
  const auto find_earliest = [&] {
    earliest = UINT64_MAX;
    for (uint64_t c = drained; pending > 0; ++c) {
      if (!ring[c & (horizon - 1)].empty()) {
        earliest = c;
        return;
      }
    }
  };
  std::vector<DramCompletion> done;
  done.reserve(1 << 14);

  const double tck = double(spec.timing.tck_ps);
  Measurements m(10, tck, requests);  // bins of 1024 cycles
  const double inject_interval_cycles =
      p.injection_bytes_per_s > 0 ? double(p.request_bytes) * 1e12 / p.injection_bytes_per_s / tck
                                  : 0;

  uint64_t next_request = 0, completed = 0, cycle = 0;
  uint64_t cur_addr = 0, cur_left = 0, cur_index = 0;  // the request being split into accesses
  uint32_t cur_slot = 0;
  bool cur_write = false;
  while (completed < requests) {
    drained = cycle + 1;  // the releases up to this cycle are drained here
    if (pending > 0 && earliest <= cycle) {
      for (uint64_t c = earliest; c <= cycle && pending > 0; ++c) {
        std::vector<uint32_t>& bucket = ring[c & (horizon - 1)];
        if (bucket.empty()) continue;
        std::sort(bucket.begin(), bucket.end());
        for (const uint32_t s : bucket) {
          free_slots.push_back(s);
          if (p.outstanding > 0) released.push_back(c);
        }
        pending -= bucket.size();
        bucket.clear();
      }
      find_earliest();
    }
    // Start new requests while the loop allows, then submit their accesses in order.
    while (true) {
      if (cur_left == 0) {
        if (next_request >= requests || free_slots.empty()) break;
        if (inject_interval_cycles > 0 &&
            double(cycle) < std::floor(double(next_request) * inject_interval_cycles)) {
          break;
        }
        source.next(&cur_addr, &cur_write);
        cur_slot = free_slots.back();
        free_slots.pop_back();
        // Issue time: the slot's release (closed loop) or the injection time (open loop).
        const uint64_t issue =
            inject_interval_cycles > 0
                ? uint64_t(std::floor(double(next_request) * inject_interval_cycles))
                : released.front();
        if (inject_interval_cycles == 0) released.pop_front();
        slot[cur_slot] = Slot{per_request, std::min(issue, cycle)};
        cur_left = per_request;
        cur_index = 0;
        ++next_request;
      }
      const uint64_t addr = (cur_addr + cur_index * access) % capacity;
      if (!stack.submit(addr, cur_write, cur_slot, cycle)) break;
      ++cur_index;
      --cur_left;
    }
    done.clear();
    uint64_t next = stack.advance(cycle, done);
    for (const auto& d : done) {
      m.completed(d.done_cycle, access);
      Slot& s = slot[d.id];
      if (--s.remaining == 0) {
        m.latency(double(spec.frontend_latency_ps) + double(d.done_cycle - s.issue_cycle) * tck);
        const uint64_t release = d.done_cycle + frontend_cycles;
        if (release < drained || release - drained >= horizon) {
          throw std::logic_error("membench: a release outside the landing ring");
        }
        ring[release & (horizon - 1)].push_back(static_cast<uint32_t>(d.id));
        ++pending;
        earliest = std::min(earliest, release);
        ++completed;
      }
    }
    if (next_request < requests && pending > 0) {
      next = std::min(next, std::max(earliest, cycle + 1));
    }
    if (cur_left > 0 || (next_request < requests && !free_slots.empty())) {
      uint64_t want = cycle + 1;
      if (inject_interval_cycles > 0 && cur_left == 0) {
        want = std::max<uint64_t>(
            want, uint64_t(std::floor(double(next_request) * inject_interval_cycles)));
      }
      next = std::min(next, want);
    }
    cycle = next;
  }

  DramPatternResult r;
  r.requests = requests;
  m.summarise(spec.peak_bytes_per_s(), &r);
  const auto st = stack.total_stats();
  const uint64_t cas = st.row_hits + st.row_misses + st.row_conflicts;
  r.row_hit_rate = cas ? double(st.row_hits) / double(cas) : 0;
  return r;
}

}  // namespace tiersim

namespace tiersim {

DramPatternResult run_fast_pattern(const BandwidthMemoryParams& params, const DramPattern& p) {
  check_pattern(p, 1);
  BandwidthMemoryCore core(params);
  const uint64_t capacity = params.capacity_bytes();
  PatternSource source(p, capacity);
  const uint64_t requests = p.total_bytes / p.request_bytes;
  Measurements m(20, 1.0, requests);  // ~1 us bins
  auto record = [&](TimePs issue, TimePs done) {
    m.latency(static_cast<double>(done - issue));
    m.completed(done, p.request_bytes);
  };
  uint64_t addr = 0;
  bool write = false;
  if (p.outstanding > 0) {
    // Closed loop: a completion frees a slot; the next request issues at that time.
    using Event = std::pair<TimePs, TimePs>;  // completion, issue
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> in_flight;
    uint64_t issued = 0;
    for (; issued < std::min<uint64_t>(requests, p.outstanding); ++issued) {
      source.next(&addr, &write);
      in_flight.push({core.serve(addr, p.request_bytes, write, 0), 0});
    }
    while (!in_flight.empty()) {
      const Event e = in_flight.top();
      in_flight.pop();
      record(e.second, e.first);
      if (issued < requests) {
        source.next(&addr, &write);
        in_flight.push({core.serve(addr, p.request_bytes, write, e.first), e.first});
        ++issued;
      }
    }
  } else {
    const double interval_ps = double(p.request_bytes) * 1e12 / p.injection_bytes_per_s;
    for (uint64_t i = 0; i < requests; ++i) {
      const TimePs at = static_cast<TimePs>(std::floor(double(i) * interval_ps));
      source.next(&addr, &write);
      record(at, core.serve(addr, p.request_bytes, write, at));
    }
  }
  DramPatternResult r;
  r.requests = requests;
  m.summarise(params.peak_bytes_per_s_per_stack() * params.stack_count, &r);
  // Locality hits: parts that continued their channel's previous part.
  r.row_hit_rate = core.parts() ? 1.0 - double(core.misses()) / double(core.parts()) : 0.0;
  return r;
}

}  // namespace tiersim
