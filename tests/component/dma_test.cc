// Component tests of the DMA engine in the system graph: priorities, scatter-gather reads,
// channels, descriptor queues and fences, and NVMe's direct and bounce paths, on the host-side
// test system (tests/support/fabric_system.h). Each test elaborates in a forked child, which
// prints its measurements; the parent checks them against hand-derived values.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "accelerators/dma_engine.h"
#include "models/core/context.h"
#include "tests/support/fabric_system.h"

namespace tiersim {
namespace {

using namespace test;  // NOLINT: the host-side test system

// DMA priorities: a 64 MiB prefetch over PCIe Gen5 (~1.25 ms) is on the wire when a 64 KiB
// demand fetch arrives 10 us later. With priorities the demand fetch waits for at most one
// packet on the link and one 4 KiB chunk on the engine; as one FIFO it waits for the whole
// prefetch.
TEST(Dma, DemandFetchesOvertakeBulkCopies) {
  auto run = [](bool priorities) {
    const std::string far =
        "system { components { name: \"far\" sram { capacity_bytes: 1073741824 "
        "read_bandwidth_bytes_per_s: 1e15 write_bandwidth_bytes_per_s: 1e15 latency_ps: 0 } } "
        "address_map { name: \"far\" target: \"far\" base_bytes: 4398046511104 "
        "size_bytes: 1073741824 } }";
    std::string cfg_prio = std::string("system { components { name: \"dma\" dma { priorities: ") +
                           (priorities ? "true" : "false") + " } } }";
    return parse(simulate(
        host_system(link("dma_far", "dma", "far", "pcie_gen5_x16"), {far, cfg_prio}),
        [](Context& ctx, std::ostream& os) {
          const uint64_t kFar = 4ULL << 40;
          const TimePs bulk = dma(ctx).transfer(kFar, 0, 64 << 20, intent(MoveOp::kPrefetch), 0);
          const TimePs at = 10'000'000;
          const TimePs demand = dma(ctx).transfer(kFar + (128 << 20), 128 << 20, 64 << 10,
                                                  intent(MoveOp::kDemandFetch), at) -
                                at;
          const TimePs idle_at = 2 * bulk;
          const TimePs idle = dma(ctx).transfer(kFar + (256 << 20), 256 << 20, 64 << 10,
                                                intent(MoveOp::kDemandFetch), idle_at) -
                              idle_at;
          os << "bulk " << bulk << " demand " << demand << " idle " << idle << "\n";
        }));
  };
  const auto with = run(true), without = run(false);
  std::cout << "64 KiB demand behind a 64 MiB prefetch: " << with.at("demand") / 1e3
            << " ns with priorities, " << without.at("demand") / 1e3 << " ns as one FIFO (idle "
            << with.at("idle") / 1e3 << " ns)\n";
  const double packet = 256 / (63.015e9 * 0.85) * 1e12;
  EXPECT_LE(with.at("demand"), with.at("idle") + packet + 4096 / 1e13 * 1e12 + 2);
  EXPECT_GT(without.at("demand"), 1e9);  // > 1 ms: the rest of the prefetch
}

// A scatter-gather read over a CXL link (64-byte requests): ranges given in any order are read in
// address order in one descriptor, the first near the end of a 1 MiB memory (the payload starts
// at the lowest range, so the whole payload decodes inside the memory); the memory counts every
// range. Its two 96-byte ranges send four request messages (one contiguous 192-byte read, three),
// hidden here behind the data's return: it lands no earlier than the contiguous read.
TEST(Dma, ScatterGatherReadsEveryRangeInOneDescriptor) {
  const std::string far =
      "system { components { name: \"far\" sram { capacity_bytes: 1048576 "
      "read_bandwidth_bytes_per_s: 1e15 write_bandwidth_bytes_per_s: 1e15 latency_ps: 0 } } "
      "address_map { name: \"far\" target: \"far\" base_bytes: 4398046511104 "
      "size_bytes: 1048576 } }";
  const auto out = parse(simulate(
      host_system(link("dma_far", "dma", "far", "cxl2_x8"), {far}),
      [](Context& ctx, std::ostream& os) {
        const uint64_t kFar = 4ULL << 40;
        bool ok = false;
        const DmaEngine::GatherRange parts[2] = {{kFar + (1 << 20) - 96, 96}, {kFar, 96}};
        const TimePs gathered = dma(ctx).transfer_gather(parts, 2, 0, intent(), 0, &ok);
        const auto* read = static_cast<const Counter*>(ctx.stats().find("far.bytes_read"));
        os << "ok " << ok << " gathered " << gathered << " bytes " << read->value() << "\n";
        const TimePs at = 1'000'000'000;
        const TimePs one = dma(ctx).transfer(kFar + 4096, 4096, 192, intent(), at, &ok) - at;
        os << "ok_one " << ok << " contiguous " << one << "\n";
      }));
  EXPECT_EQ(out.at("ok"), 1);
  EXPECT_EQ(out.at("bytes"), 192);
  EXPECT_EQ(out.at("ok_one"), 1);
  EXPECT_GE(out.at("gathered"), out.at("contiguous"));
}

// DMA channels and descriptor queues: two bulk copies run in parallel on two bulk channels
// (each at the channel's rate) but one after the other on one; a demand fetch on the critical
// channel waits for nothing; a queue of depth 1 makes each descriptor wait for the previous
// one's completion (the memory's 10 us access each) where an unbounded queue overlaps them;
// the fence of a channel is the completion of everything submitted to it.
TEST(Dma, ChannelsQueuesAndFences) {
  auto run = [](uint32_t channels, uint32_t depth) {
    const std::string far =
        "system { components { name: \"far\" sram { capacity_bytes: 1073741824 "
        "read_bandwidth_bytes_per_s: 1e15 write_bandwidth_bytes_per_s: 1e15 latency_ps: 10000000 "
        "} } address_map { name: \"far\" target: \"far\" base_bytes: 4398046511104 "
        "size_bytes: 1073741824 } }";
    const std::string cfg =
        "system { components { name: \"dma\" dma { bandwidth_bytes_per_s: "
        "1e10 channels: " +
        std::to_string(channels) + " queue_depth: " + std::to_string(depth) + " } } }";
    return parse(simulate(
        host_system(link("dma_far", "dma", "far"), {far, cfg}), [](Context& ctx, std::ostream& os) {
          const uint64_t kFar = 4ULL << 40;
          auto& d = dma(ctx);
          const TimePs a = d.transfer(kFar, 0, 64 << 20, intent(MoveOp::kPrefetch), 0);
          const TimePs b =
              d.transfer(kFar + (64 << 20), 64 << 20, 64 << 20, intent(MoveOp::kPrefetch), 0);
          const TimePs demand = d.transfer(kFar + (128 << 20), 128 << 20, 4096,
                                           intent(MoveOp::kDemandFetch), 1'000'000);
          // Four small demand fetches at once, later, when everything is idle.
          const TimePs t0 = 1'000'000'000;
          TimePs last = 0;
          for (int i = 0; i < 4; ++i) {
            last = std::max(last, d.transfer(kFar + (256 << 20) + i * 4096, (256 << 20) + i * 4096,
                                             4096, intent(MoveOp::kDemandFetch), t0));
          }
          os << "a " << a << " b " << b << " demand " << demand - 1'000'000 << " small "
             << last - t0 << " fence0 " << d.fence(0) << " done0 " << d.channel_completed(0)
             << " channels " << d.channels() << "\n";
        }));
  };
  const auto one = run(1, 0), three = run(3, 0), queued = run(3, 1);
  const double copy = double(64 << 20) / 1e10 * 1e12;  // 6.71 ms at 10 GB/s
  // One channel: the second copy after the first. Three (one critical, two bulk): together.
  EXPECT_NEAR(one.at("b"), 2 * copy, 0.01 * copy);
  EXPECT_NEAR(three.at("a"), copy, 0.01 * copy);
  EXPECT_NEAR(three.at("b"), copy, 0.01 * copy);
  EXPECT_EQ(three.at("channels"), 3);
  // The demand fetch on the critical channel: its latency and serialisation only.
  EXPECT_LT(three.at("demand"), 2 * 10'000'000 + 1'000'000);
  // Depth 1: each small fetch waits for the previous one's 10 us access; unbounded, the four
  // overlap.
  EXPECT_LT(three.at("small"), 15'000'000);
  EXPECT_GE(queued.at("small"), 4 * 10'000'000);
  std::cout << "two 64 MiB copies: " << one.at("b") / 1e9 << " ms on one channel, "
            << three.at("b") / 1e9 << " ms on two bulk channels; demand fetch "
            << three.at("demand") / 1e6 << " us; four 4 KiB fetches " << three.at("small") / 1e6
            << " us unbounded, " << queued.at("small") / 1e6 << " us at queue depth 1\n";
  // The fence of the critical channel is its last completion; it completed 5 descriptors.
  EXPECT_EQ(three.at("done0"), 5);
  EXPECT_GE(three.at("fence0"), 1'000'000'000);
}

// NVMe in the system graph, behind a PCIe Gen5 x16 link: the direct path and the bounce path
// through host DDR.
std::string ssd(bool bounce) {
  std::string nvme = file_text("memory/nvme_gen5_micron9550.textproto");
  return "system { components { name: \"ssd\" nvme { " + nvme +
         "\n capacity_bytes: 7680000000000 " +
         (bounce ? "bounce_memory: \"host_ddr\" bounce_buffer_bytes: 67108864 " : "") +
         "} } address_map { name: \"ssd\" target: \"ssd\" base_bytes: 8796093022208 "
         "size_bytes: 7680000000000 } }";
}
constexpr uint64_t kSsd = 8ULL << 40;

TEST(Nvme, DirectAndBouncePathsInTheSystem) {
  auto run = [](bool bounce) {
    return parse(simulate(host_system(link("dma_ssd", "dma", "ssd", "pcie_gen5_x16") +
                                          (bounce ? "" : link("dma_local", "dma", "host_ddr")),
                                      {ssd(bounce)}),
                          [](Context& ctx, std::ostream& os) {
                            const TimePs qd1 = dma(ctx).transfer(kSsd, 0, 4096, intent(), 0);
                            const TimePs t0 = 1'000'000'000;  // 1 ms: the drive is idle again
                            const TimePs big =
                                dma(ctx).transfer(kSsd + (1 << 30), 0, 64 << 20, intent(), t0) - t0;
                            os << "qd1 " << qd1 << " big " << big << " ddr_read "
                               << ctx.component("host_ddr")->bytes_read() << " ddr_written "
                               << ctx.component("host_ddr")->bytes_written() << "\n";
                          }));
  };
  const auto direct = run(false), bounced = run(true);
  // QD1 4 KiB: the request's PCIe crossing (150 ns PHY + a 16-byte message), 60 us of media,
  // 4096 B at 14 GB/s, the data's crossing (150 ns + one 256-byte packet behind the drive).
  const double pcie = 63.015e9 * 0.85;
  const double qd1 =
      150000 + 16 / pcie * 1e12 + 60e6 + 4096 / 14e9 * 1e12 + 256 / pcie * 1e12 + 150000;
  EXPECT_NEAR(direct.at("qd1"), qd1, 3);
  // 64 MiB: 512 commands of 128 KiB in parallel, streaming at the drive's 14 GB/s.
  const double stream = (64 << 20) / 14e9 * 1e12 + 60e6;
  EXPECT_NEAR(direct.at("big"), stream, stream * 0.02);
  EXPECT_EQ(direct.at("ddr_read"), 0);
  // Bounce: every byte written to host DDR and read back; a lone 4 KiB pays that copy, two DDR
  // accesses of 100 ns + 256 B per sub-channel at 15.36 GB/s + a 15 ns row miss (263 ns); the
  // stream still runs at the drive's rate.
  EXPECT_EQ(bounced.at("ddr_written"), 4096 + (64 << 20));
  EXPECT_EQ(bounced.at("ddr_read"), 4096 + (64 << 20));
  EXPECT_GT(bounced.at("qd1") - direct.at("qd1"), 2 * (100000 + 256 / 15.36e9 * 1e12 + 15000));
  EXPECT_LT(bounced.at("qd1") - direct.at("qd1"), 280000);
  EXPECT_NEAR(bounced.at("big"), stream, stream * 0.02);
  std::cout << "NVMe QD1 4 KiB: direct " << direct.at("qd1") / 1e6 << " us, bounce "
            << bounced.at("qd1") / 1e6 << " us; 64 MiB: " << direct.at("big") / 1e6 << " / "
            << bounced.at("big") / 1e6 << " us\n";
}

}  // namespace
}  // namespace tiersim
