// A bandwidth server: the fast-level timing primitive for memories, ports and engines.
//
// Contract: reserve(start, bytes) serves `bytes` at the configured rate, starting no earlier
// than `start`, in the earliest idle interval that fits it: the server is busy until the end of
// its latest reservation ("busy until"), and remembers the last kGaps idle intervals it left
// behind (when a reservation started after the server had gone idle). A request reserved later
// but starting earlier (loosely-timed annotated delay: reservations arrive in call order, not
// start order) fills such a gap when it fits, instead of queueing behind work that starts after
// it; otherwise it queues at the end. It returns the time the last byte leaves.
// Plain C++: no SystemC, no allocation. The gap ring is stored inline, after the fields the
// in-order path uses: a memory's channels leave a gap on every server at each request that
// finds them idle, and a ring out of line cost a pointer chase per server.
#pragma once

#include <algorithm>
#include <cstdint>

#include "models/core/time.h"

namespace tiersim {

class BandwidthServer {
 public:
  BandwidthServer() = default;
  explicit BandwidthServer(double bytes_per_s) : bytes_per_s_(bytes_per_s) {}
  void set_rate(double bytes_per_s) {
    bytes_per_s_ = bytes_per_s;
    memo_bytes_[0] = memo_bytes_[1] = 0;  // zero bytes take 0 ps at any rate
    memo_service_ps_[0] = memo_service_ps_[1] = 0;
  }
  double rate_bytes_per_s() const { return bytes_per_s_; }

  // Returns the completion time (ps) of a transfer of `bytes` arriving at `start_ps`.
  TimePs reserve(TimePs start_ps, uint64_t bytes) {
    return reserve_with_overhead(start_ps, bytes, 0);
  }

  // As reserve(), plus `extra_ps` of service time that moves no bytes (a row miss, a bus
  // turnaround).
  TimePs reserve_with_overhead(TimePs start_ps, uint64_t bytes, TimePs extra_ps) {
    return reserve_service(start_ps, bytes, service_ps(bytes) + extra_ps);
  }
  // As reserve_with_overhead(), with the service time given: the caller computed it as
  // transfer_time_ps(bytes, rate_bytes_per_s()) plus its overhead (a memory whose servers share
  // one rate converts a part size once per request, at its first use).
  TimePs reserve_service(TimePs start_ps, uint64_t bytes, TimePs service) {
    busy_ps_ += service;
    bytes_ += bytes;
    return place(start_ps, service);
  }

  TimePs busy_until_ps() const { return busy_until_ps_; }
  // An upper bound on the end of every remembered idle gap (0: none): a reservation starting at
  // s with service t fills no gap when s + t exceeds it.
  TimePs gap_end_bound() const { return max_gap_end_; }
  // Writes back work reserved outside reserve(): the caller (a memory's streaming fast path)
  // computed exactly what in-order reservations, each queued behind the last and filling no
  // gap, would have done. Their service and bytes add to the totals.
  void apply_queued(TimePs busy_until_ps, TimePs service_ps, uint64_t bytes) {
    busy_until_ps_ = busy_until_ps;
    busy_ps_ += service_ps;
    bytes_ += bytes;
  }
  // What place() does for a reservation that starts at `end` on a server that went idle at
  // `begin` < `end` after earlier work: remembers the idle gap. For a memory's streaming fast
  // path, which serves a request on idle servers lazily (busy-until and totals written back
  // later) but keeps their gap rings exact.
  void leave_idle_gap(TimePs begin, TimePs end) { remember(begin, end); }
  static constexpr int kGaps = 8;
  TimePs busy_ps() const { return busy_ps_; }  // total service time so far
  uint64_t bytes() const { return bytes_; }

  // transfer_time_ps(bytes, rate). Streams repeat a few sizes (an interleaved request gives its
  // servers n or n + 1 granules; staging writes are whole tiles): the last two conversions are
  // reused (exactly the same values; set_rate forgets them).
  TimePs service_ps(uint64_t bytes) {
    if (bytes == memo_bytes_[0]) return memo_service_ps_[0];
    if (bytes == memo_bytes_[1]) return memo_service_ps_[1];
    const TimePs base = transfer_time_ps(bytes, bytes_per_s_);
    memo_bytes_[1] = memo_bytes_[0];
    memo_service_ps_[1] = memo_service_ps_[0];
    memo_bytes_[0] = bytes;
    memo_service_ps_[0] = base;
    return base;
  }

 private:
  struct Gap {
    TimePs begin, end;
  };
  // Occupies `service` ps from `start` or later; returns the end. The in-order cases are
  // inline; filling a gap is out of line.
  TimePs place(TimePs start, TimePs service) {
    if (start >= busy_until_ps_) {
      if (start > busy_until_ps_ && busy_ps_ > service) remember(busy_until_ps_, start);
      busy_until_ps_ = add_time_ps(start, service, "a transfer's completion");
      return busy_until_ps_;
    }
    if (service <= max_gap_len_ && start + service <= max_gap_end_) {
      const TimePs e = fill_gap(start, service);
      if (e != 0) return e;
    }
    busy_until_ps_ = add_time_ps(busy_until_ps_, service, "a transfer's completion");
    return busy_until_ps_;
  }
  // The end of the first remembered gap that fits, now occupied; 0 when none does.
  [[gnu::noinline]] TimePs fill_gap(TimePs start, TimePs service) {
    Gap* gaps = gaps_.gaps;
    int& gap_count_ = gaps_.count;
    int& next_gap_ = gaps_.next;
    for (int i = 0; i < gap_count_; ++i) {
      Gap& g = gaps[i];
      const TimePs b = std::max(start, g.begin);
      if (b + service > g.end) continue;
      const TimePs e = b + service, old_end = g.end;
      if (b > g.begin) {
        g.end = b;
        if (e < old_end) remember(e, old_end);
      } else if (e < old_end) {
        g.begin = e;
      } else {
        gaps[i] = gaps[--gap_count_];
        if (next_gap_ >= gap_count_) next_gap_ = 0;
      }
      refresh_bounds();
      return e;
    }
    refresh_bounds();  // the bounds may have been stale (a remembered gap was overwritten)
    return 0;
  }
  void refresh_bounds() {
    max_gap_end_ = max_gap_len_ = 0;
    for (int k = 0; k < gaps_.count; ++k) {
      max_gap_end_ = std::max(max_gap_end_, gaps_.gaps[k].end);
      max_gap_len_ = std::max(max_gap_len_, gaps_.gaps[k].end - gaps_.gaps[k].begin);
    }
  }
  void remember(TimePs begin, TimePs end) {
    // A ring of the latest gaps: a new one replaces the oldest remembered (O(1)).
    GapList& l = gaps_;
    if (l.count < kGaps) {
      l.gaps[l.count++] = {begin, end};
    } else {
      l.gaps[l.next] = {begin, end};
      l.next = (l.next + 1) % kGaps;
    }
    max_gap_end_ = std::max(max_gap_end_, end);
    max_gap_len_ = std::max(max_gap_len_, end - begin);
  }

  double bytes_per_s_ = 0;
  TimePs busy_until_ps_ = 0;
  TimePs busy_ps_ = 0;
  uint64_t bytes_ = 0;
  TimePs max_gap_end_ = 0;           // the latest end of a remembered gap (an upper bound)
  TimePs max_gap_len_ = 0;           // the longest remembered gap (an upper bound)
  uint64_t memo_bytes_[2] = {0, 0};  // empty: size 0, which takes 0 ps
  TimePs memo_service_ps_[2] = {0, 0};
  // After the fields the in-order path uses.
  struct GapList {
    int count = 0, next = 0;
    Gap gaps[kGaps] = {};
  };
  GapList gaps_;
};

// A bandwidth server with strict priorities (levels 0..kLevels-1, higher first), non-preemptive
// per `packet_bytes`: a reservation waits for earlier work of its own and higher levels, plus at
// most one packet of lower-level work already in service; its service pushes lower levels back.
// With one level in use it is a busy-until server. Plain C++, no allocation.
class PriorityServer {
 public:
  static constexpr uint32_t kLevels = 4;
  PriorityServer() = default;
  PriorityServer(double bytes_per_s, uint64_t packet_bytes)
      : bytes_per_s_(bytes_per_s), packet_ps_(transfer_time_ps(packet_bytes, bytes_per_s)) {}

  TimePs reserve(TimePs start_ps, uint64_t bytes, uint32_t level) {
    if (level >= kLevels) level = kLevels - 1;
    TimePs begin = std::max(start_ps, busy_[level]);
    if (level > 0 && busy_[0] > begin) begin += std::min(busy_[0] - begin, packet_ps_);
    // A stream repeats one size (tiles): its conversion is reused (the same value).
    if (bytes != memo_bytes_) {
      memo_service_ps_ = transfer_time_ps(bytes, bytes_per_s_);
      memo_bytes_ = bytes;
    }
    const TimePs service = memo_service_ps_;
    const TimePs end = begin + service;
    busy_[level] = end;
    for (uint32_t k = 0; k < level; ++k)
      busy_[k] = std::max(busy_[k], begin) + service;
    busy_ps_ += service;
    bytes_ += bytes;
    return end;
  }
  TimePs busy_ps() const { return busy_ps_; }
  uint64_t bytes() const { return bytes_; }

 private:
  double bytes_per_s_ = 0;
  TimePs packet_ps_ = 0;
  TimePs busy_[kLevels] = {};
  TimePs busy_ps_ = 0;
  uint64_t bytes_ = 0;
  uint64_t memo_bytes_ = UINT64_MAX;  // the last size converted, and its transfer time
  TimePs memo_service_ps_ = 0;
};

}  // namespace tiersim
