// Streaming bandwidth of every HBM generation preset at stack level (slow: each stream lasts
// 400 us of simulated time, measured over its steady middle so that refresh, with up to 8
// postponed, is fully paid).
#include <gtest/gtest.h>

#include <cstdio>

#include "memory/dram_stack.h"
#include "tests/support/dram_presets.h"
#include "tests/support/dram_stream.h"

namespace tiersim {
namespace {

class HbmStreaming : public testing::TestWithParam<const char*> {};

TEST_P(HbmStreaming, EfficiencyWithRefreshAndRefreshTax) {
  const DramStackSpec on = test::load_device(GetParam());
  DramStackSpec off = on;
  off.policy.refresh = RefreshMode::kNone;
  const uint64_t bytes = static_cast<uint64_t>(on.peak_bytes_per_s() * 400e-6);
  const double bw_on = test::stream_bandwidth(on, bytes),
               bw_off = test::stream_bandwidth(off, bytes);
  const double eff = bw_on / on.peak_bytes_per_s();
  const double tax = 1 - bw_on / bw_off;
  const double predicted = double(on.timing.rfc) / on.timing.refi;
  std::printf(
      "[ measured ] %s: %.1f GB/s = %.1f%% of %.1f; refresh off %.1f%%; tax %.2f%% vs "
      "tRFC/tREFI %.2f%%\n",
      GetParam(), bw_on / 1e9, 100 * eff, on.peak_bytes_per_s() / 1e9,
      100 * bw_off / on.peak_bytes_per_s(), 100 * tax, 100 * predicted);
  EXPECT_GE(eff, 0.85);
  EXPECT_LE(eff, 0.95);
  EXPECT_GE(bw_off / on.peak_bytes_per_s(), 0.97);
  EXPECT_NEAR(tax, predicted, 0.01);
}

INSTANTIATE_TEST_SUITE_P(Presets, HbmStreaming,
                         testing::Values("hbm2_2000", "hbm2e_3200", "hbm2e_3600", "hbm3_6400",
                                         "hbm3e_9200_8h", "hbm3e_9600_12h", "hbm4_8000"));

}  // namespace
}  // namespace tiersim
