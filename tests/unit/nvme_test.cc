// The NVMe core from the Gen5 preset: QD1 latency, IOPS and bandwidth ceilings, Little's law at
// a shallow queue, and the direct vs bounce-buffer paths to a device.
#include "memory/nvme.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/support/paths.h"

namespace tiersim {
namespace {

NvmeParams preset() {
  std::ifstream in(test::preset("memory/nvme_gen5_micron9550.textproto"));
  std::stringstream ss;
  ss << in.rdbuf();
  config::Nvme c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(ss.str(), &c));
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  NvmeParams::validate(c, v);
  EXPECT_TRUE(issues.empty());
  return NvmeParams::from_config(c);
}

TEST(Nvme, Qd1LatencyIsMediaPlusTransfer) {
  NvmeModel d(preset());
  EXPECT_EQ(d.read(0, 4096), 60'000'000 + transfer_time_ps(4096, 14e9));
  NvmeModel w(preset());
  EXPECT_EQ(w.write(0, 4096), 15'000'000 + transfer_time_ps(4096, 10e9));
}

// Many 4 KiB reads offered at once: the rate is the smallest of the IOPS ceiling (3.3 M/s),
// bandwidth / 4 KiB (3.42 M/s) and queue depth / latency (1024 / 60.3 us = 17 M/s).
TEST(Nvme, RandomReadsReachTheIopsCeiling) {
  NvmeModel d(preset());
  const int n = 200000;
  TimePs end = 0;
  for (int i = 0; i < n; ++i)
    end = std::max(end, d.read(0, 4096));
  const double iops = n / ((end - 60'000'000) * 1e-12);
  EXPECT_NEAR(iops, 3.3e6, 0.01 * 3.3e6);
}

// At queue depth 8 the drive is latency bound: 8 commands per 60.3 us (Little's law).
TEST(Nvme, ShallowQueuesAreLatencyBound) {
  NvmeParams p = preset();
  p.queue_depth = 8;
  NvmeModel d(p);
  const int n = 8000;
  TimePs end = 0;
  for (int i = 0; i < n; ++i)
    end = std::max(end, d.read(0, 4096));
  const double per_command_s = (60'000'000 + transfer_time_ps(4096, 14e9)) * 1e-12;
  EXPECT_NEAR(n / (end * 1e-12), 8 / per_command_s, 0.01 * 8 / per_command_s);
}

TEST(Nvme, SequentialReadsReachTheBandwidth) {
  NvmeModel d(preset());
  const uint64_t total = 4ull << 30;
  const TimePs end = d.read(0, total);
  EXPECT_EQ(d.commands(), total / 131072);
  EXPECT_DOUBLE_EQ(d.energy_j(), double(total) * 8 * 160e-12);  // the preset's 160 pJ/bit
  EXPECT_NEAR(double(total) / ((end - 60'000'000) * 1e-12), 14e9, 0.01 * 14e9);
}

// Direct (SSD -> PCIe -> device) vs bounce (SSD -> host DRAM write and read -> PCIe -> device):
// the same 14 GB/s steady rate (the drive is the bottleneck), and one command's extra time is
// exactly the DRAM hop: 128 KiB at half the DRAM bandwidth plus its latency.
TEST(Nvme, BounceBufferAddsAHostDramHop) {
  const PathHop pcie{26.4e9, 1'000'000};     // GDS-measured Gen4 x16 (gds-report.pages.dev), 1 us
  const PathHop dram{245.76e9 / 2, 95'000};  // DDR5-4800 x8 at 0.8: written, then read
  auto run = [&](const std::vector<PathHop>& hops, uint64_t bytes) {
    NvmeModel d(preset());
    std::vector<BandwidthServer> servers;
    for (const auto& h : hops)
      servers.emplace_back(h.bytes_per_s);
    return path_read(d, servers, hops, 0, bytes);
  };
  const TimePs one_direct = run({pcie}, 131072), one_bounce = run({dram, pcie}, 131072);
  EXPECT_EQ(one_bounce - one_direct, transfer_time_ps(131072, 245.76e9 / 2) + 95'000);
  const uint64_t big = 1ull << 30;
  const double direct_bw = double(big) / (run({pcie}, big) * 1e-12);
  const double bounce_bw = double(big) / (run({dram, pcie}, big) * 1e-12);
  EXPECT_NEAR(direct_bw, 14e9, 0.02 * 14e9);
  EXPECT_NEAR(bounce_bw, 14e9, 0.02 * 14e9);
  EXPECT_LT(bounce_bw, direct_bw);
}

}  // namespace
}  // namespace tiersim
