// A closed-loop sequential read stream through a DramStack's in-order front end (blocking when
// the target pseudo-channel's queue is full). Bandwidth is measured in a steady-state window,
// [20%, 70%] of the stream's duration at peak, so that refreshes still postponed at the end of
// the stream do not flatter the result.
#pragma once

#include <algorithm>
#include <vector>

#include "memory/dram_stack.h"

namespace tiersim::test {

inline double stream_bandwidth(const DramStackSpec& spec, uint64_t bytes, double mult = 1.0) {
  DramStack stack(spec);
  stack.set_refresh_multiplier(mult);
  std::vector<DramCompletion> done;
  done.reserve(1 << 16);
  const uint64_t accesses = bytes / spec.org.access_bytes;
  const double at_peak_cycles = double(bytes) * 1e12 / spec.peak_bytes_per_s() / spec.timing.tck_ps;
  const uint64_t w0 = uint64_t(0.2 * at_peak_cycles), w1 = uint64_t(0.7 * at_peak_cycles);
  uint64_t issued = 0, completed = 0, cycle = 0, in_window = 0;
  while (completed < accesses) {
    while (issued < accesses &&
           stack.submit(issued * spec.org.access_bytes, false, issued, cycle)) {
      ++issued;
    }
    done.clear();
    uint64_t next = stack.advance(cycle, done);
    for (const auto& d : done)
      in_window += d.done_cycle >= w0 && d.done_cycle < w1;
    completed += done.size();
    if (issued < accesses) next = std::min(next, cycle + 1);
    cycle = next;
  }
  return double(in_window) * spec.org.access_bytes * 1e12 / (double(w1 - w0) * spec.timing.tck_ps);
}

}  // namespace tiersim::test
