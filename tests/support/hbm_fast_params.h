// The fast-level HBM geometry that the memory core's tests and benchmarks share: HBM3-like
// stacks (1024-bit, 5.23 Gb/s per pin, 90% efficiency, 12% of it refresh at x1) of 256-byte
// granules, 500 ns unloaded latency; 5 stacks x 32 channels is an H100's 160 channels.
#pragma once

#include <cstdint>

#include "configs/tiersim.pb.h"
#include "memory/bandwidth_memory_core.h"

namespace tiersim::test {

inline BandwidthMemoryParams hbm3_fast_params(uint32_t stacks = 5, uint32_t channels = 32,
                                              TimePs miss_ps = 7003, TimePs turn_ps = 4630) {
  config::HbmFast c;
  c.set_stack_count(stacks);
  c.set_bus_width_bits(1024);
  c.set_pin_data_rate_mbps(5230);
  c.set_capacity_bytes_per_stack(uint64_t{16} << 30);
  c.set_efficiency_fraction(0.9);
  c.set_latency_ps(500000);
  c.set_interleave_bytes(256);
  c.set_channels_per_stack(channels);
  c.set_miss_penalty_ps(miss_ps);
  c.set_turnaround_ps(turn_ps);
  c.set_refresh_overhead_fraction(0.12);
  return BandwidthMemoryParams::from_config(c);
}

}  // namespace tiersim::test
