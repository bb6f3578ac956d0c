// The fast HBM level, calibrated by `tiersim calibrate`'s procedure from the HBM3 6.4 device,
// against the detailed level on the patterns the fast level claims to cover: decode-like
// 2 MiB tiles, 4 KiB streams, 64-byte random reads and a 2:1 read/write mix (closed loop).
#include <gtest/gtest.h>

#include <cstdio>

#include "memory/tools/hbm_calibrate.h"
#include "tests/support/dram_presets.h"

namespace tiersim {
namespace {

TEST(HbmAgreement, CalibratedFastMatchesDetailedBandwidthAndLatencyOnCalibrationPatterns) {
  const DramStackSpec device = test::hbm3_6400();
  const HbmCalibration cal = calibrate_hbm(device, 0);  // the minimum duration
  // One stack of 32 channel servers, interleaved every 256 B, as the hardware presets.
  BandwidthMemoryParams fast{1, 1024, 6400, device.capacity_bytes(), cal.efficiency_fraction,
                             0, 256};
  fast.channels_per_stack = 32;
  const FastPenalties pen = derive_fast_penalties(cal, 819.2e9 / 32, 256);
  fast.miss_penalty_ps = pen.miss_penalty_ps;
  fast.turnaround_ps = pen.turnaround_ps;
  for (const char* name : {"decode_tiles", "stream_read", "random_read", "mix_2to1"}) {
    for (const auto& [pattern, detailed] : cal.patterns) {
      if (pattern.name != name) continue;
      const DramPatternResult f = run_fast_pattern(fast, pattern);
      std::printf(
          "[ measured ] %-13s fast %7.1f GB/s, detailed %7.1f GB/s (%+.2f%%); mean "
          "latency fast %.1f ns, detailed %.1f ns\n",
          name, f.bandwidth_bytes_per_s / 1e9, detailed.bandwidth_bytes_per_s / 1e9,
          100 * (f.bandwidth_bytes_per_s / detailed.bandwidth_bytes_per_s - 1),
          f.mean_latency_ps / 1e3, detailed.mean_latency_ps / 1e3);
      EXPECT_NEAR(f.bandwidth_bytes_per_s, detailed.bandwidth_bytes_per_s,
                  0.05 * detailed.bandwidth_bytes_per_s)
          << name;
      EXPECT_NEAR(f.mean_latency_ps, detailed.mean_latency_ps, 0.10 * detailed.mean_latency_ps)
          << name;
    }
  }
}

}  // namespace
}  // namespace tiersim
