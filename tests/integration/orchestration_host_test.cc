// The movement controller on FlexGen's T4 setting: host attention next to the KV at home, the
// weights' middle tier, and recompute-vs-transfer of the KV from hidden-state checkpoints.
#include "tests/integration/orchestration_support.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// Host attention (FlexGen's CPU cache compute): the CPU reads exactly the cached KV of every
// decode step (hand count), computes at its configured rate (halving the rate doubles the time
// when arithmetic bounds it; an unbounded rate leaves the DDR reads), and the prefill step and
// its KV writes stay on the GPU.
TEST(HostAttention, CpuReadsEveryCachedKvByteAtItsRate) {
  // All weights resident: no weight copies contend with the CPU's reads in host DDR.
  const std::string resident = "--set policy.orchestration.resident_fraction=1 ";
  const auto slow = run_flexgen(resident);
  const auto fast =
      run_flexgen(resident + "--set policy.orchestration.host_attention.flops_per_s=24.6e9");
  const auto unbounded =
      run_flexgen(resident + "--set policy.orchestration.host_attention.flops_per_s=1e18");
  const auto contended = run_flexgen("");
  ASSERT_EQ(slow.count("exit"), 0u);
  const double tokens = 12.0 * 5;  // prefill token + 4 decode tokens per sequence
  EXPECT_EQ(slow.at("tokens_generated"), tokens);
  // KV per token and layer: K and V of 4096 FP16 values; decode step d (1..4) reads 511 + d
  // cached tokens of each of 12 sequences in each of 4 layers.
  const double kv_token = 2.0 * 4096 * 2;
  double cached = 0;
  for (int d = 1; d <= 4; ++d)
    cached += 511 + d;
  const double kv_bytes = 12 * 4 * kv_token * cached;
  EXPECT_NEAR(slow.at("host_attention_kv_bytes_per_token") * tokens, kv_bytes, 1);
  // Decode attention FLOPs: 4 x head_dim x heads per cached-plus-new token and sequence (QK^T
  // and AV, multiply-add = 2), at 12.3 GFLOP/s; the time also carries the queries' and
  // outputs' PCIe crossings, so it is bounded below by the arithmetic.
  double flops = 0;
  for (int d = 1; d <= 4; ++d)
    flops += 12.0 * 4 * 4.0 * 4096 * (511 + d + 1);
  const double host_s = slow.at("host_attention_ms_per_token") * tokens / 1e3;
  std::cout << "host attention " << host_s << " s (arithmetic " << flops / 12.3e9 << " s); at "
            << "twice the rate " << fast.at("host_attention_ms_per_token") * tokens / 1e3
            << " s; unbounded " << unbounded.at("host_attention_ms_per_token") * tokens / 1e3
            << " s (DDR reads at 60 GB/s: " << kv_bytes / 60e9 << " s)\n";
  EXPECT_GT(host_s, flops / 12.3e9);
  EXPECT_LT(host_s, flops / 12.3e9 * 1.03);
  EXPECT_NEAR(fast.at("host_attention_ms_per_token") / slow.at("host_attention_ms_per_token"), 0.5,
              0.02);
  // Unbounded arithmetic: the CPU's reads at its 60 GB/s bound the time.
  const double unbounded_s = unbounded.at("host_attention_ms_per_token") * tokens / 1e3;
  EXPECT_GT(unbounded_s, kv_bytes / 60e9);
  EXPECT_LT(unbounded_s, kv_bytes / 60e9 * 1.05);
  // Weight copies from the same DDR (80% of each weight object prefetched) delay the reads.
  EXPECT_GE(contended.at("host_attention_ms_per_token"), slow.at("host_attention_ms_per_token"));
  // Queries and outputs staged in GDDR instead of host DDR: no PCIe crossing for them.
  const auto staged_on_gpu =
      run_flexgen(resident + "--set policy.orchestration.host_attention.memory=dram");
  EXPECT_LT(staged_on_gpu.at("host_attention_ms_per_token"),
            slow.at("host_attention_ms_per_token"));
  // The prefill step is not host attention: its time is reported on its own.
  EXPECT_GT(slow.at("prefill_s"), 0);
  EXPECT_GT(slow.at("tokens_per_s"), 0);
  EXPECT_NEAR(slow.at("tokens_per_s"), tokens / slow.at("sim_time_s"),
              0.01 * slow.at("tokens_per_s"));
}

// Without host attention the same KV crosses PCIe to the GPU every step: more bytes reach the
// device's link (the DMA's serial-link energy) and no host attention is reported.
TEST(HostAttention, WithoutItTheKvCrossesPcie) {
  const auto cpu = run_flexgen("");
  const auto gpu = run_flexgen("--set policy.orchestration.host_attention=!clear");
  ASSERT_EQ(cpu.count("exit") + gpu.count("exit"), 0u);
  EXPECT_EQ(gpu.count("host_attention_kv_bytes_per_token"), 0u);
  EXPECT_GT(gpu.at("demand_bytes_per_token"),
            cpu.at("demand_bytes_per_token") + cpu.at("host_attention_kv_bytes_per_token") * 0.99);
  EXPECT_GT(gpu.at("energy_j_dma"), cpu.at("energy_j_dma"));
}

// Activations that do not fit in SRAM spill to activation_memory: the T4's GDDR6 in the FlexGen
// fragment; moved to host DDR they cross PCIe and the run slows down.
TEST(HostAttention, ActivationMemoryTakesTheSpill) {
  const auto gddr = run_flexgen("");
  const auto host = run_flexgen(
      "--set 'system={components{name:\"compute\" compute{activation_memory:\"host_ddr\"}}}'");
  ASSERT_EQ(gddr.count("exit") + host.count("exit"), 0u);
  EXPECT_GT(host.at("ddr_bytes_per_token"), gddr.at("ddr_bytes_per_token"));
  EXPECT_GT(host.at("prefill_s"), gddr.at("prefill_s"));
}

TEST(HostAttention, BadSettingsAreRefused) {
  expect_refused(
      run_flexgen_refused,
      {
          {"--set policy.orchestration.kv_resident=true", "policy.orchestration.host_attention"},
          {"--set policy.orchestration.host_attention.cpu=dram",
           "policy.orchestration.host_attention.cpu"},
          {"--set policy.orchestration.host_attention.flops_per_s=0",
           "policy.orchestration.host_attention.flops_per_s"},
          {"--set policy.orchestration.host_attention.memory=nowhere",
           "policy.orchestration.host_attention.memory"},
          {"--set 'policy.orchestration.wired={memory:\"cpu\" quota_bytes:1000}'",
           "policy.orchestration.wired.memory"},
          {"--set 'policy.orchestration.wired={memory:\"sram\"}'",
           "policy.orchestration.wired.quota_bytes"},
          {"--set policy.orchestration.residency_map.entries=8",
           "policy.orchestration.residency_map.software_latency_ps"},
          {"--set 'policy.orchestration.residency_map={entries:8 software_latency_ps:1000}'"
           " --set policy.orchestration.prefetch_layers=0",
           "policy.orchestration.residency_map"},
          {"--set workload.decode.micro_batches=13", "workload.decode.micro_batches"},
          {"--set workload.decode.micro_batches=0", "workload.decode.micro_batches"},
          {"--set workload.decode.context_tokens=0", "workload.decode.prefill"},
          {"--set 'system={components{name:\"compute\" compute{activation_memory:\"cpu\"}}}'",
           "compute.activation_memory"},
      });
}

// The weights' middle tier (FlexGen's OPT-175B placement: home on the SSD, a share in host
// DDR): moving a share of every weight object to DDR takes exactly that share of the weight
// reads off the SSD (the KV reads stay), and the run gets faster as the share grows (the SSD
// is the bottleneck).
TEST(SecondTier, TakesItsShareOfTheWeightReadsOffTheHome) {
  const std::string policy = "--set policy.orchestration.resident_fraction=0 ";
  auto with = [&](const std::string& fraction) {
    return run_flexgen(policy +
                           "--set 'policy.orchestration.second_tier={memory:\"host_ddr\" "
                           "fraction:" +
                           fraction + "}'",
                       nullptr, true);
  };
  const auto none = with("0"), half = with("0.5"), all = with("1");
  ASSERT_EQ(none.count("exit") + half.count("exit") + all.count("exit"), 0u);
  // The KV lives on the SSD in all three; the CPU reads the same bytes of it.
  EXPECT_EQ(none.at("host_attention_kv_bytes_per_token"),
            all.at("host_attention_kv_bytes_per_token"));
  const double weights = none.at("ssd_bytes_read") - all.at("ssd_bytes_read");
  EXPECT_GT(weights, 0);
  EXPECT_NEAR(none.at("ssd_bytes_read") - half.at("ssd_bytes_read"), weights / 2, 0.01 * weights);
  // Every weight byte is still prefetched into GDDR, whichever tier it comes from.
  EXPECT_NEAR(half.at("prefetch_bytes_per_token"), none.at("prefetch_bytes_per_token"),
              1e-9 * none.at("prefetch_bytes_per_token"));
  EXPECT_GT(half.at("tokens_per_s"), none.at("tokens_per_s"));
  EXPECT_GT(all.at("tokens_per_s"), half.at("tokens_per_s"));
  std::cout << "SSD bytes read: all weights at home " << none.at("ssd_bytes_read") / 1e9
            << " GB, half in DDR " << half.at("ssd_bytes_read") / 1e9 << " GB, all in DDR "
            << all.at("ssd_bytes_read") / 1e9 << " GB; tokens/s " << none.at("tokens_per_s")
            << " / " << half.at("tokens_per_s") << " / " << all.at("tokens_per_s") << "\n";
}

TEST(SecondTier, BadSettingsAreRefused) {
  expect_refused(
      [](const std::string& set, std::string* err) { return run_flexgen(set, err, true); },
      {
          {"--set 'policy.orchestration.second_tier={memory:\"host_ddr\" fraction:0.9}'",
           "policy.orchestration.second_tier.fraction"},
          {"--set 'policy.orchestration.second_tier={memory:\"nowhere\" fraction:0.5}'",
           "policy.orchestration.second_tier.memory"},
          {"--set 'policy.orchestration.second_tier={memory:\"cpu\" fraction:0.5}'",
           "policy.orchestration.second_tier.memory"},
          {"--set 'policy.orchestration.second_tier={memory:\"host_ddr\"}'",
           "policy.orchestration.second_tier.fraction"},
      });
}

// Recompute-vs-transfer (HCache-style hidden-state checkpoints) on the FlexGen T4 setting with
// all weights resident and the KV at home in host DDR: on the healthy PCIe Gen3 link reading
// the KV beats recomputing it on the 70 W T4, and the arbiter transfers; on a link degraded
// to 5% recomputing from the hidden states (half the bytes for OPT's full attention) wins, and
// the arbiter, once it has observed the slow path, recomputes.
TEST(RecomputeVsTransfer, ArbiterFollowsTheCheaperPath) {
  auto with = [&](const std::string& mode, bool degraded) {
    std::string extra = kv_restore(mode);
    if (degraded) {
      extra +=
          " --set 'system={faults{name:\"slow\" start_ps:0 duration_ps:0 "
          "link_degraded{link:\"dma_host_ddr\" bandwidth_fraction:0.05}}}'";
    }
    return run_flexgen(extra);
  };
  const auto transfer = with("TRANSFER", false), recompute = with("RECOMPUTE", false),
             arbitrate = with("ARBITRATE", false);
  const auto transfer_slow = with("TRANSFER", true), recompute_slow = with("RECOMPUTE", true),
             arbitrate_slow = with("ARBITRATE", true);
  for (const auto* m :
       {&transfer, &recompute, &arbitrate, &transfer_slow, &recompute_slow, &arbitrate_slow})
    ASSERT_EQ(m->count("exit"), 0u);
  std::cout << "TPOT ms, healthy link: transfer " << transfer.at("tpot_ms_mean") << ", recompute "
            << recompute.at("tpot_ms_mean") << ", arbiter " << arbitrate.at("tpot_ms_mean")
            << " (recomputes " << arbitrate.at("kv_recompute_fraction")
            << "); link at 5%: transfer " << transfer_slow.at("tpot_ms_mean") << ", recompute "
            << recompute_slow.at("tpot_ms_mean") << ", arbiter "
            << arbitrate_slow.at("tpot_ms_mean") << " (recomputes "
            << arbitrate_slow.at("kv_recompute_fraction") << ")\n";
  // The weights are resident: every demand byte is KV. Recomputing reads the hidden states,
  // half of OPT's K and V, and does 2 x hidden / 2 bytes = 4096 FLOPs per KV byte.
  const double kv = transfer.at("demand_bytes_per_token");
  EXPECT_NEAR(recompute.at("hidden_state_bytes_per_token"), kv / 2, 0.01 * kv);
  EXPECT_NEAR(recompute.at("recompute_gflop_per_token"), kv * 4096 / 1e9, 0.01 * kv * 4096 / 1e9);
  EXPECT_EQ(recompute.at("kv_recompute_fraction"), 1);
  // Healthy: transfer wins and the arbiter transfers.
  EXPECT_LT(transfer.at("tpot_ms_mean"), recompute.at("tpot_ms_mean"));
  EXPECT_EQ(arbitrate.at("kv_recompute_fraction"), 0);
  EXPECT_NEAR(arbitrate.at("tpot_ms_mean"), transfer.at("tpot_ms_mean"),
              0.005 * transfer.at("tpot_ms_mean"));
  // Degraded: recompute wins and the arbiter recomputes (after its first observations).
  EXPECT_LT(recompute_slow.at("tpot_ms_mean"), transfer_slow.at("tpot_ms_mean"));
  EXPECT_GT(arbitrate_slow.at("kv_recompute_fraction"), 0.8);
  EXPECT_LT(arbitrate_slow.at("tpot_ms_mean"), transfer_slow.at("tpot_ms_mean"));
  EXPECT_LT(arbitrate_slow.at("tpot_ms_mean"), 1.1 * recompute_slow.at("tpot_ms_mean"));
  // A wrong first estimate of the path (1 MB/s) makes the first decisions recompute; the
  // arbiter then observes the path (its busy time per op, not the consumer's pace) and
  // transfers.
  const auto misled = run_flexgen(kv_restore("ARBITRATE") +
                                  " --set policy.orchestration.arbiter_path_bytes_per_s=1e6");
  EXPECT_GT(misled.at("kv_recompute_fraction"), 0);
  EXPECT_LT(misled.at("kv_recompute_fraction"), 0.1);
}

TEST(RecomputeVsTransfer, BadSettingsAreRefused) {
  const std::string checkpoints = " --set workload.decode.hidden_state_checkpoints=true";
  const std::string no_host = " --set policy.orchestration.host_attention=!clear";
  expect_refused(run_flexgen_refused,
                 {
                     {"--set policy.orchestration.kv_restore=KV_RESTORE_RECOMPUTE" + no_host,
                      "policy.orchestration.kv_restore"},
                     {"--set policy.orchestration.kv_restore=KV_RESTORE_ARBITRATE" + no_host +
                          checkpoints + " --set policy.orchestration.arbiter_path_bytes_per_s=0",
                      "policy.orchestration.arbiter_path_bytes_per_s"},
                     {"--set policy.orchestration.kv_restore=KV_RESTORE_RECOMPUTE" + checkpoints,
                      "policy.orchestration.kv_restore"},
                     {"--set workload.decode.hidden_state_checkpoints=true --set "
                      "workload.decode.sparse_attention.top_k_pages=4",
                      "workload.decode.hidden_state_checkpoints"},
                 });
}

// A narrow (INT8) KV read from its home pays the attention kernel's conversion; the hidden
// states a restore recomputes it from are in the compute dtype and pay none: with every KV byte
// recomputed, the conversion cost does not move the step.
TEST(RecomputeVsTransfer, OnlyKvBytesPayTheNarrowKvConversion) {
  auto with = [&](const std::string& mode, const std::string& flops) {
    return run_flexgen(
        "--set policy.orchestration.resident_fraction=1"
        " --set policy.orchestration.host_attention=!clear"
        " --set workload.decode.hidden_state_checkpoints=true --set workload.model.kv_dtype=INT8"
        " --set software.kv_dequant_flops_per_element=" +
        flops + " --set policy.orchestration.kv_restore=KV_RESTORE_" + mode);
  };
  const auto recompute = with("RECOMPUTE", "0"), recompute_f = with("RECOMPUTE", "100");
  const auto transfer = with("TRANSFER", "0"), transfer_f = with("TRANSFER", "100");
  for (const auto* m : {&recompute, &recompute_f, &transfer, &transfer_f})
    ASSERT_EQ(m->count("exit"), 0u);
  EXPECT_EQ(recompute.at("kv_recompute_fraction"), 1);
  EXPECT_EQ(recompute_f.at("tpot_ms_mean"), recompute.at("tpot_ms_mean"));
  EXPECT_GT(transfer_f.at("tpot_ms_mean"), transfer.at("tpot_ms_mean"));
}

}  // namespace
}  // namespace tiersim
