// The ddr kind's fast model from the DDR5-4800 8-channel preset: peak and effective bandwidth,
// idle latency, and efficiency by access pattern (streaming vs random 64-byte reads).
#include "memory/ddr.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "models/core/rng.h"
#include "tests/support/paths.h"

namespace tiersim {
namespace {

config::DdrFast preset() {
  std::ifstream in(test::preset("memory/ddr5_4800_8ch.textproto"));
  std::stringstream ss;
  ss << in.rdbuf();
  config::Config c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(ss.str(), &c));
  return c.system().components(0).ddr();
}

TEST(Ddr, PresetBandwidthAndLatency) {
  const config::DdrFast c = preset();
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  validate_ddr(c, v);
  EXPECT_TRUE(issues.empty());
  const BandwidthMemoryParams p = ddr_params(c);
  // 8 channels x 4800 MT/s x 8 bytes = 307.2 GB/s (an 8-channel socket), 80% of it streaming.
  EXPECT_DOUBLE_EQ(p.peak_bytes_per_s_per_stack() * p.stack_count, 307.2e9);
  EXPECT_DOUBLE_EQ(p.effective_bytes_per_s(), 307.2e9 * 0.8);
  EXPECT_EQ(p.servers(), 16u);  // two sub-channels per channel
  // An idle 64-byte read: the latency plus one sub-channel's transfer of 64 bytes and a miss.
  BandwidthMemoryCore core(p);
  const TimePs t = core.serve(0, 64, false, 0);
  EXPECT_EQ(t, 100000 + p.miss_penalty_ps + transfer_time_ps(64, 307.2e9 * 0.8 / 16));
}

// 64 MiB read as 4 KiB sequential requests streams at the effective rate; the same bytes as
// random 64-byte reads pay a row miss per part and reach well under half of it.
TEST(Ddr, EfficiencyDependsOnTheAccessPattern) {
  const BandwidthMemoryParams p = ddr_params(preset());
  const uint64_t total = 64ull << 20;
  BandwidthMemoryCore stream(p);
  TimePs end = 0;
  for (uint64_t a = 0; a < total; a += 4096)
    end = std::max(end, stream.serve(a, 4096, false, 0));
  const double stream_bw = double(total) / ((end - p.latency_ps) * 1e-12);
  EXPECT_NEAR(stream_bw, p.effective_bytes_per_s(), 0.01 * p.effective_bytes_per_s());
  BandwidthMemoryCore random(p);
  Rng rng(3);
  end = 0;
  const uint64_t lines = p.capacity_bytes() / 64;
  for (uint64_t i = 0; i < total / 64; ++i)
    end = std::max(end, random.serve(rng.below(lines) * 64, 64, false, 0));
  const double random_bw = double(total) / ((end - p.latency_ps) * 1e-12);
  EXPECT_LT(random_bw, 0.45 * stream_bw);
  EXPECT_GT(random.misses(), total / 64 * 9 / 10);
}

}  // namespace
}  // namespace tiersim
