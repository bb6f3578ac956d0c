// A bandwidth server: the fast-level timing primitive for memories, ports and engines.
//
// Contract: reserve(start, bytes) serves `bytes` first-come-first-served at the configured rate,
// starting no earlier than `start` and no earlier than the end of the previous reservation
// ("busy until"). It returns the time the last byte leaves. Requests reserved with a start in the
// future (loosely-timed annotated delay) are served in reservation order, not start order; this
// is the usual temporal-decoupling approximation and is stated in each model's fidelity note.
// Plain C++: no SystemC, no allocation.
#pragma once

#include <algorithm>
#include <cstdint>

#include "models/time.h"

namespace tiersim {

class BandwidthServer {
 public:
  BandwidthServer() = default;
  explicit BandwidthServer(double bytes_per_s) : bytes_per_s_(bytes_per_s) {}

  void set_rate(double bytes_per_s) {
    bytes_per_s_ = bytes_per_s;
    memo_bytes_[0] = memo_bytes_[1] = UINT64_MAX;
  }
  double rate_bytes_per_s() const { return bytes_per_s_; }

  // Returns the completion time (ps) of a transfer of `bytes` arriving at `start_ps`.
  TimePs reserve(TimePs start_ps, uint64_t bytes) {
    const TimePs begin = std::max(start_ps, busy_until_ps_);
    const TimePs service = transfer_time_ps(bytes, bytes_per_s_);
    busy_until_ps_ = begin + service;
    busy_ps_ += service;
    bytes_ += bytes;
    return busy_until_ps_;
  }

  // As reserve(), plus `extra_ps` of service time that moves no bytes (a row miss, a bus
  // turnaround).
  TimePs reserve_with_overhead(TimePs start_ps, uint64_t bytes, TimePs extra_ps) {
    const TimePs begin = std::max(start_ps, busy_until_ps_);
    // Bulk streams repeat a few part sizes (an interleaved request gives its servers n or n + 1
    // granules): reuse the last two conversions (exactly the same values).
    TimePs base;
    if (bytes == memo_bytes_[0]) {
      base = memo_service_ps_[0];
    } else if (bytes == memo_bytes_[1]) {
      base = memo_service_ps_[1];
    } else {
      base = transfer_time_ps(bytes, bytes_per_s_);
      memo_bytes_[1] = memo_bytes_[0];
      memo_service_ps_[1] = memo_service_ps_[0];
      memo_bytes_[0] = bytes;
      memo_service_ps_[0] = base;
    }
    const TimePs service = base + extra_ps;
    busy_until_ps_ = begin + service;
    busy_ps_ += service;
    bytes_ += bytes;
    return busy_until_ps_;
  }

  TimePs busy_until_ps() const { return busy_until_ps_; }
  TimePs busy_ps() const { return busy_ps_; }  // total service time so far
  uint64_t bytes() const { return bytes_; }

 private:
  double bytes_per_s_ = 0;
  TimePs busy_until_ps_ = 0;
  TimePs busy_ps_ = 0;
  uint64_t bytes_ = 0;
  uint64_t memo_bytes_[2] = {UINT64_MAX, UINT64_MAX};
  TimePs memo_service_ps_[2] = {0, 0};
};

}  // namespace tiersim
