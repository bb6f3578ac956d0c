// The movement controller in whole runs (policy ORCHESTRATED): Llama-3-70B TP8 on H100 with the
// weights' home in host DDR5 behind PCIe Gen5, 99% of each weight object resident in HBM and
// the rest prefetched one layer ahead. Where the controller sits decides whether prefetches land
// within the per-layer window; bytes are accounted by path; bad settings are refused. Also the
// page cache against its oracle, the residency map, wired residency and precision states.
#include "tests/integration/orchestration_support.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// The controller presets: a host CPU (5-50 us per decision, interrupt) misses the window on
// some layers; a DPU (1-5 us, polling) and an on-accelerator controller (0.3 us, doorbell) never
// do.
TEST(Orchestration, HostControlMissesTheLayerWindowDpuAndOnAcceleratorDoNot) {
  const auto host = run(test::preset("controllers/host_cpu.textproto"));
  const auto dpu = run(test::preset("controllers/dpu.textproto"));
  const auto accel = run(test::preset("controllers/on_accelerator.textproto"));
  std::cout << "stall us/token: host " << host.at("stall_us_per_token") << " (late "
            << host.at("prefetch_late_fraction") << "), DPU " << dpu.at("stall_us_per_token")
            << ", on-accelerator " << accel.at("stall_us_per_token") << "; TPOT "
            << host.at("tpot_ms_mean") << " / " << dpu.at("tpot_ms_mean") << " / "
            << accel.at("tpot_ms_mean") << " ms\n";
  EXPECT_GT(host.at("stall_us_per_token"), 100);
  EXPECT_GT(host.at("prefetch_late_fraction"), 0.01);
  EXPECT_EQ(dpu.at("stall_us_per_token"), 0);
  EXPECT_EQ(accel.at("stall_us_per_token"), 0);
  EXPECT_GT(host.at("tpot_ms_mean"), dpu.at("tpot_ms_mean"));
  // Every layer's home bytes were prefetched: all but the first layer of the first step came
  // from the staging area.
  EXPECT_GT(dpu.at("prefetch_coverage"), 0.99);
  EXPECT_EQ(dpu.at("controller_decisions"), accel.at("controller_decisions"));
}

// Without explicit latencies, the controller's place and the notification kind set them: a DPU
// with polling is the same run as 3 us decisions and 1.5 us notifications; a host CPU with an
// interrupt (27.5 us, 10 us) misses the window, an on-accelerator controller does not.
TEST(Orchestration, ControllerAndNotificationKindsGiveDefaultLatencies) {
  const std::string clear =
      " --set policy.orchestration.decision_jitter=!clear"
      " --set policy.orchestration.decision_latency_ps=!clear"
      " --set policy.orchestration.notification_latency_ps=!clear";
  const std::string dpu = test::preset("controllers/dpu.textproto");
  const auto by_kind = run(dpu + clear);
  const auto explicit_values = run(dpu + " --set policy.orchestration.decision_jitter=!clear" +
                                   " --set policy.orchestration.decision_latency_ps=3000000" +
                                   " --set policy.orchestration.notification_latency_ps=1500000");
  EXPECT_EQ(by_kind.at("tpot_ms_mean"), explicit_values.at("tpot_ms_mean"));
  const auto host = run(test::preset("controllers/host_cpu.textproto") + clear);
  const auto accel = run(test::preset("controllers/on_accelerator.textproto") + clear);
  EXPECT_GT(host.at("stall_us_per_token"), 100);
  EXPECT_EQ(accel.at("stall_us_per_token"), 0);
}

// The sweep behind the plot (configs/sweeps/decision_latency_70b_tp8.textproto): with a fixed
// decision latency per copy, nothing stalls while 9 decisions fit in a layer (~17 us each), and
// the stall grows with the latency beyond.
TEST(Orchestration, StallHasAKneeAtTheLayerWindow) {
  std::vector<double> stall;
  for (const char* ps : {"300000", "3000000", "10000000", "30000000", "50000000"}) {
    const auto s = run(test::preset("controllers/dpu.textproto") +
                       " --set policy.orchestration.decision_jitter=!clear"
                       " --set policy.orchestration.decision_latency_ps=" +
                       ps);
    stall.push_back(s.at("stall_us_per_token"));
  }
  EXPECT_EQ(stall[0], 0);
  EXPECT_EQ(stall[1], 0);
  EXPECT_EQ(stall[2], 0);
  EXPECT_GT(stall[3], 1000);
  EXPECT_GT(stall[4], stall[3]);
}

// Bytes by path: every weight byte a step reads comes from the resident part, a staged prefetch
// or (not prefetched) home; prefetches copy each home byte once per step. Without prefetch
// (prefetch_layers 0) the home part streams on demand and the decode is slower.
TEST(Orchestration, BytesByPathAndDemandOnly) {
  const auto pf = run(test::preset("controllers/on_accelerator.textproto"));
  // The home part is 1% of the weights (the resident reads also carry the KV cache).
  const double home = pf.at("prefetch_bytes_per_token");
  EXPECT_NEAR(home / (pf.at("resident_bytes_per_token") + home), 0.01, 0.002);
  const auto demand = run(test::preset("controllers/on_accelerator.textproto") +
                          " --set policy.orchestration.prefetch_layers=0");
  EXPECT_EQ(demand.at("prefetch_bytes_per_token"), 0);
  EXPECT_EQ(demand.at("prefetch_coverage"), 0);
  EXPECT_NEAR(demand.at("demand_bytes_per_token"), home, home * 0.01);
  EXPECT_GT(demand.at("tpot_ms_mean"), pf.at("tpot_ms_mean"));
  // With kv_resident false the KV caches stay at home: their reads stream from host DDR.
  const auto kv_home = run(test::preset("controllers/on_accelerator.textproto") +
                           " --set policy.orchestration.kv_resident=false");
  EXPECT_GT(kv_home.at("demand_bytes_per_token"), pf.at("demand_bytes_per_token"));
  EXPECT_LT(kv_home.at("resident_bytes_per_token"), pf.at("resident_bytes_per_token"));
  EXPECT_GT(kv_home.at("tpot_ms_mean"), pf.at("tpot_ms_mean"));
}

// Dynamic residency in the system: Llama-3-8B's weights at home in host DDR5, a 4 GB page
// cache in HBM. Decode reads the same 15 GB of weight pages in the same order every step, so
// LRU, LFU, ARC and regret admit and evict every page (no hits, every byte fetched from home
// and copied into a frame), while the oracle, knowing the order from the second step, keeps a
// fixed set and fetches the fewest bytes; a static placement of the same size does as well.
TEST(Orchestration, DynamicCacheOracleMovesTheFewestBytes) {
  const std::string common =
      test::preset("controllers/on_accelerator.textproto") +
      " --set workload.parallelism.tensor_parallel=1 --set workload.decode.decode_steps=4"
      " --set policy.orchestration.prefetch_layers=0";
  const std::string dynamic = common +
                              " --set policy.orchestration.resident_fraction=0"
                              " --set policy.orchestration.cache_bytes=4000000000";
  auto bytes8b = [&](const std::string& extra) { return run_8b(extra); };
  const auto oracle =
      bytes8b(dynamic + " --set policy.orchestration.replacement=REPLACEMENT_BELADY");
  std::cout << "oracle: hit " << oracle.at("cache_hit_rate") << ", home bytes/token "
            << oracle.at("demand_bytes_per_token") << ", TPOT " << oracle.at("tpot_ms_mean")
            << " ms\n";
  // Step 0 teaches the oracle the order, step 1 fills its 4 GB, steps 2 and 3 hit 4 of every
  // 15 GB: 2 x 26.6% / 4 = 13.3% over the run.
  EXPECT_NEAR(oracle.at("cache_hit_rate"), 2 * 4e9 / 15.0e9 / 4, 0.01);
  for (const char* r : {"LRU", "LFU", "ARC", "REGRET"}) {
    const auto m = bytes8b(dynamic + " --set policy.orchestration.replacement=REPLACEMENT_" + r);
    std::cout << r << ": hit " << m.at("cache_hit_rate") << ", home bytes/token "
              << m.at("demand_bytes_per_token") << ", TPOT " << m.at("tpot_ms_mean") << " ms\n";
    EXPECT_LE(oracle.at("demand_bytes_per_token"), m.at("demand_bytes_per_token")) << r;
    EXPECT_LT(oracle.at("tpot_ms_mean"), m.at("tpot_ms_mean")) << r;
    // Against the offline bound on the same page stream (which also knows the first step).
    EXPECT_GT(m.at("extra_bytes_vs_oracle_per_token"), oracle.at("extra_bytes_vs_oracle_per_token"))
        << r;
  }
  // The learning oracle misses one step's worth of the cache against the full-knowledge bound:
  // 4 GB over 4 tokens.
  EXPECT_NEAR(oracle.at("extra_bytes_vs_oracle_per_token"), 1e9, 0.05e9);
  // A static placement of the same 4 GB (resident_fraction 0.266), loaded before the run, is
  // what the oracle converges to: it fetches 11/15 of the weights every step, the oracle the
  // same in its last two steps and everything in its first two.
  const auto fixed = bytes8b(common + " --set policy.orchestration.resident_fraction=0.266");
  std::cout << "static: home bytes/token " << fixed.at("demand_bytes_per_token") << "\n";
  EXPECT_LT(fixed.at("demand_bytes_per_token"), oracle.at("demand_bytes_per_token"));
  EXPECT_NEAR(fixed.at("demand_bytes_per_token") / 15.0e9, 1 - 0.266, 0.01);
}

// Signed descriptors: a quarter arrive unsigned and are rejected (counted; their data is read
// from home on demand, so coverage falls to about three quarters); verification that takes
// longer than the layer window stalls even a fast controller.
TEST(Orchestration, SignedDescriptorsRejectUnsignedAndVerificationCosts) {
  const std::string dpu = test::preset("controllers/dpu.textproto") +
                          " --set policy.orchestration.signed_descriptors=true";
  const auto unsigned_quarter = run(dpu + " --set policy.orchestration.unsigned_fraction=0.25");
  const double rejected =
      unsigned_quarter.at("descriptors_rejected") / unsigned_quarter.at("controller_decisions");
  EXPECT_NEAR(rejected, 0.25, 0.04);
  EXPECT_NEAR(unsigned_quarter.at("prefetch_coverage"), 0.75, 0.06);
  EXPECT_GT(unsigned_quarter.at("demand_bytes_per_token"), 0);
  const auto fast_verify = run(dpu + " --set policy.orchestration.verify_latency_ps=1000000");
  const auto slow_verify = run(dpu + " --set policy.orchestration.verify_latency_ps=300000000");
  EXPECT_EQ(fast_verify.at("stall_us_per_token"), 0);
  EXPECT_EQ(fast_verify.at("descriptors_rejected"), 0);
  EXPECT_GT(slow_verify.at("stall_us_per_token"), 100);
}

TEST(Orchestration, BadSettingsAreRefused) {
  std::string err;
  auto s = run("--set policy.orchestration.resident_fraction=1.5", &err);
  EXPECT_EQ(s["exit"], 2);
  EXPECT_NE(err.find("policy.orchestration.resident_fraction: required, in [0, 1]"),
            std::string::npos)
      << err;
  s = run("--set policy.orchestration.fast_memory=nowhere", &err);
  EXPECT_NE(err.find("no component named \"nowhere\""), std::string::npos) << err;
  s = run("--set policy.orchestration.decision_latency_ps=1", &err);  // no controller
  EXPECT_NE(err.find("policy.orchestration.controller: required"), std::string::npos) << err;
  s = run(test::preset("controllers/dpu.textproto") +
              " --set policy.orchestration.replacement=REPLACEMENT_LRU",
          &err);
  EXPECT_NE(err.find("policy.orchestration.cache_bytes: required field"), std::string::npos) << err;
  EXPECT_NE(err.find("a dynamic cache runs without prefetch_layers"), std::string::npos) << err;
  s = run(test::preset("controllers/dpu.textproto") +
              " --set policy.orchestration.unsigned_fraction=0.1",
          &err);
  EXPECT_NE(err.find("unsigned_fraction: needs signed_descriptors: true"), std::string::npos)
      << err;
  s = run(test::preset("controllers/dpu.textproto") + " --set policy.placement=STREAM_ALL", &err);
  EXPECT_NE(err.find("policy.orchestration: set only with policy.placement: ORCHESTRATED"),
            std::string::npos)
      << err;
}

// Movement metrics in every result: the DMA engine's bytes by reason and by path (the
// controller's copies are its prefetch bytes, host DDR to HBM), demand misses, prefetch
// accuracy (the copies read before their slot is reused), and the steps' write fence.
TEST(Orchestration, MovementMetricsByReasonAndPath) {
  const auto dpu = run(test::preset("controllers/dpu.textproto"));
  ASSERT_EQ(dpu.count("exit"), 0u);
  EXPECT_NEAR(dpu.at("dma_prefetch_bytes_per_token"), dpu.at("prefetch_bytes_per_token"),
              1e-6 * dpu.at("prefetch_bytes_per_token"));
  EXPECT_NEAR(dpu.at("dma_ddr_to_hbm_bytes_per_token"), dpu.at("prefetch_bytes_per_token"),
              1e-6 * dpu.at("prefetch_bytes_per_token"));
  // The engine's demand fetches are its reads of HBM into SRAM (resident parts and staged
  // copies), all of it.
  EXPECT_EQ(dpu.at("dma_demand_fetch_bytes_per_token"), dpu.at("dma_hbm_to_sram_bytes_per_token"));
  // 8 steps: every copy is read but those of the step that never comes (the first layer of a
  // ninth step, one of 81 layers' copies).
  EXPECT_GT(dpu.at("prefetch_accuracy"), 0.97);
  EXPECT_LT(dpu.at("prefetch_accuracy"), 1.0);
  EXPECT_GE(dpu.at("stall_fence_us_per_token"), 0);
  // Every tile comes from the resident part or a staged copy: no demand miss, nothing from DDR
  // straight into SRAM.
  EXPECT_EQ(dpu.at("demand_tiles_per_token"), 0);
  EXPECT_EQ(dpu.at("demand_misses"), 0);
  EXPECT_EQ(dpu.count("dma_ddr_to_sram_bytes_per_token"), 0u);
  // Demand only: nothing prefetched, every home byte a demand miss.
  const auto demand = run(test::preset("controllers/dpu.textproto") +
                          " --set policy.orchestration.prefetch_layers=0");
  EXPECT_EQ(demand.count("dma_prefetch_bytes_per_token"), 0u);
  // The home bytes the prefetching run read from its staged copies (the copies it used) are the
  // bytes the demand-only run reads from home; each demand tile is one miss.
  EXPECT_NEAR(demand.at("demand_bytes_per_token"),
              dpu.at("prefetch_bytes_per_token") * dpu.at("prefetch_accuracy"),
              1e-9 * demand.at("demand_bytes_per_token"));
  EXPECT_EQ(demand.at("demand_misses"),
            demand.at("demand_tiles_per_token") * demand.at("tokens_generated"));
  EXPECT_NEAR(demand.at("dma_ddr_to_sram_bytes_per_token"), demand.at("demand_bytes_per_token"),
              1e-6 * demand.at("demand_bytes_per_token"));
}

// The controller's residency map (DPU controller, 8 steps): one that holds every object with a
// home part misses only on the first pass (compulsory misses stall step 0) and keeps the DPU's
// result after it; one smaller than the layer cycle misses on every decision, each paying the
// software path, and the DPU then misses the layer window as a host CPU does.
TEST(Orchestration, ResidencyMapOverflowFallsBackToTheSoftwarePath) {
  const std::string dpu = test::preset("controllers/dpu.textproto");
  const auto base = run(dpu);
  const auto fits = run(dpu +
                        " --set policy.orchestration.residency_map.entries=4096"
                        " --set policy.orchestration.residency_map.software_latency_ps="
                        "27500000");
  const auto small = run(dpu +
                         " --set policy.orchestration.residency_map.entries=64"
                         " --set policy.orchestration.residency_map.software_latency_ps="
                         "27500000");
  ASSERT_EQ(base.count("exit") + fits.count("exit") + small.count("exit"), 0u);
  const double decisions = base.at("controller_decisions");
  // Objects with a home part: one step's decisions (8 steps of them, plus the next step's
  // first layer prefetched at the end).
  const double objects = fits.at("residency_map_misses");
  EXPECT_EQ(fits.at("residency_map_hits") + objects, decisions);
  EXPECT_LT(objects, decisions / 7);
  EXPECT_EQ(fits.at("residency_map_occupancy"), objects);
  // Only the first pass's compulsory misses stall (in step 0).
  EXPECT_LT(fits.at("stall_us_per_token"), small.at("stall_us_per_token") / 5);
  // A slow map (200 us per lookup, hit or miss) costs every decision.
  const auto slow_map =
      run(dpu +
          " --set policy.orchestration.residency_map.entries=4096"
          " --set policy.orchestration.residency_map.software_latency_ps=27500000"
          " --set policy.orchestration.residency_map.lookup_latency_ps=200000000");
  EXPECT_GT(slow_map.at("stall_us_per_token"), fits.at("stall_us_per_token"));
  EXPECT_EQ(small.at("residency_map_hits"), 0);
  EXPECT_EQ(small.at("residency_map_misses"), decisions);
  EXPECT_EQ(small.at("residency_map_occupancy"), 64);
  EXPECT_GT(small.at("stall_us_per_token"), 100);
  EXPECT_GT(small.at("tpot_ms_mean"), fits.at("tpot_ms_mean"));
  std::cout << "residency map: " << objects << " objects, " << decisions
            << " decisions; 4096 entries stall " << fits.at("stall_us_per_token")
            << " us/token, 64 entries " << small.at("stall_us_per_token") << " us/token (TPOT "
            << fits.at("tpot_ms_mean") << " vs " << small.at("tpot_ms_mean") << " ms)\n";
}

// Wired residency in the system (configs/studies/wired_hrm_llama3_2_1b.textproto): the arbiter
// binds whole weight objects in the 2 GiB HRM up to the quota; every byte the bound objects
// serve is a byte less from HBM, exactly the arbiter's planned saving, and TPOT and energy per
// token fall with the quota (the HRM streams faster than HBM, and its path costs less per bit).
TEST(Wired, BoundObjectsServeFromSramAndSaveWhatTheArbiterPlanned) {
  auto with = [&](uint64_t quota) {
    const std::string cmd =
        test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
        test::preset("memory/hrm_sram_4x4.textproto") + " " +
        test::preset("hardware/fragments/h100_with_hrm.textproto") + " " +
        test::preset("models/llama3_2_1b.textproto") + " " +
        test::preset("software/cuda_events_per_kernel.textproto") + " " +
        test::preset("studies/wired_hrm_llama3_2_1b.textproto") +
        " --set policy.orchestration.wired.quota_bytes=" + std::to_string(quota) + " --quiet";
    auto m = summary_of(cmd);
    EXPECT_EQ(m.count("exit"), 0u);
    return m;
  };
  const auto none = with(0), one = with(1ULL << 30), two = with(2000000000);
  ASSERT_FALSE(none.empty() || one.empty() || two.empty());
  EXPECT_EQ(none.at("wired_objects"), 0);
  for (const auto* m : {&one, &two}) {
    EXPECT_LE(m->at("wired_bytes"), m == &one ? double(1ULL << 30) : 2e9);
    // Each bound object is read whole once per step: served from the HRM, not HBM (plus the
    // embedding rows the step gathers from a bound tied table: 4 KiB).
    EXPECT_NEAR(m->at("wired_bytes_per_token"), m->at("wired_saved_bytes_per_step_planned"), 8192);
    EXPECT_NEAR(none.at("hbm_bytes_per_token") - m->at("hbm_bytes_per_token"),
                m->at("wired_bytes_per_token"), 1e-3 * m->at("wired_bytes_per_token"));
  }
  EXPECT_GT(two.at("wired_bytes"), one.at("wired_bytes"));
  EXPECT_LT(one.at("tpot_ms_mean"), none.at("tpot_ms_mean"));
  EXPECT_LT(two.at("tpot_ms_mean"), one.at("tpot_ms_mean"));
  // Energy by path: a bound byte pays the HRM's array and wires (0.6 + 5.4 pJ/bit) instead of
  // the HBM path (3.9 + 2.0 + 5.4 pJ/bit), and both then cross the same staging buffers, so
  // energy per token falls where HBM bytes fall, by at least the per-bit difference.
  EXPECT_LT(one.at("energy_j_per_token"), none.at("energy_j_per_token"));
  EXPECT_LT(two.at("energy_j_per_token"), one.at("energy_j_per_token"));
  for (const auto* m : {&one, &two}) {
    const double saved_bits = (none.at("hbm_bytes_per_token") - m->at("hbm_bytes_per_token")) * 8;
    EXPECT_GT(none.at("energy_j_per_token") - m->at("energy_j_per_token"),
              saved_bits * (11.3 - 6.0) * 1e-12);
    EXPECT_GT(m->at("energy_j_path_sram_wires"), 0);
  }
  EXPECT_EQ(none.count("energy_j_path_sram_wires"), 0u);
  std::cout << "wired: quota 0 / 1 GiB / 2 GB: J/token " << none.at("energy_j_per_token") << " / "
            << one.at("energy_j_per_token") << " / " << two.at("energy_j_per_token") << "\n";
  std::cout << "wired: quota 0 / 1 GiB / 2 GB: HBM GB/token "
            << none.at("hbm_bytes_per_token") / 1e9 << " / " << one.at("hbm_bytes_per_token") / 1e9
            << " / " << two.at("hbm_bytes_per_token") / 1e9 << ", TPOT " << none.at("tpot_ms_mean")
            << " / " << one.at("tpot_ms_mean") << " / " << two.at("tpot_ms_mean") << " ms\n";
}

// Predictive regret with the workload's intent (every weight page used once per step until
// the end) on the cyclic weight stream of DynamicCacheOracleMovesTheFewestBytes: the page just
// used has the least lifetime left, so it is the one to give up, and a page whose value does
// not beat the residents' is not admitted. The cache fills in step 0 and then keeps a fixed
// 4 GB: no more fetches from home than the offline bound on the run's own page stream.
TEST(Orchestration, PredictedRegretWithIntentMeetsTheOfflineBound) {
  auto run8b = [&](const std::string& replacement) {
    return run_8b(cache_8b(4) + "--set policy.orchestration.replacement=REPLACEMENT_" +
                  replacement);
  };
  const auto lru = run8b("LRU"), oracle = run8b("BELADY"), regret = run8b("PREDICTED_REGRET");
  ASSERT_FALSE(lru.empty() || oracle.empty() || regret.empty());
  std::cout << "hit rate: LRU " << lru.at("cache_hit_rate") << ", learning oracle "
            << oracle.at("cache_hit_rate") << ", predicted regret " << regret.at("cache_hit_rate")
            << "; extra GB/token vs the offline bound "
            << lru.at("extra_bytes_vs_oracle_per_token") / 1e9 << " / "
            << oracle.at("extra_bytes_vs_oracle_per_token") / 1e9 << " / "
            << regret.at("extra_bytes_vs_oracle_per_token") / 1e9 << "\n";
  // Steps 1-3 hit 4 of every 15 GB: 3 x 26.7% / 4.
  EXPECT_NEAR(regret.at("cache_hit_rate"), 3 * 4e9 / 15.0e9 / 4, 0.01);
  EXPECT_LE(regret.at("extra_bytes_vs_oracle_per_token"), 0);
  EXPECT_LT(regret.at("demand_bytes_per_token"), oracle.at("demand_bytes_per_token"));
  EXPECT_LT(regret.at("tpot_ms_mean"), lru.at("tpot_ms_mean"));
}

// Precision states of resident weights (the FlexGen T4 setting, 4-layer OPT-6.7B wholly
// resident in GDDR6, batch 2, decode only): INT8 copies store and read half the bytes, INT4 a
// quarter (the quality proxy: 2^-8 and 2^-4 for all of them), and decode gets faster; under a
// quality budget with a sensitive first layer, the guardrail vetoes the objects it cannot
// afford and the proxy stays within the budget.
TEST(Precision, LowerResidentCopiesReadFewerBytesWithinTheQualityBudget) {
  const std::string common =
      "--set workload.decode.batch_size=2 --set workload.decode.micro_batches=1"
      " --set workload.decode.prefill=false --set workload.decode.decode_steps=8"
      " --set policy.orchestration.host_attention=!clear"
      " --set policy.orchestration.kv_resident=true"
      " --set policy.orchestration.resident_fraction=1 ";
  const auto fp16 = run_flexgen(common);
  const auto int8 =
      run_flexgen(common + "--set policy.orchestration.resident_precision.dtype=INT8");
  const auto int4 =
      run_flexgen(common + "--set policy.orchestration.resident_precision.dtype=INT4");
  const auto guarded =
      run_flexgen(common +
                  "--set 'policy.orchestration.resident_precision={dtype:INT4 quality_budget:0.03 "
                  "sensitivity{prefix:\"layer0.\" value:8}}'");
  for (const auto* m : {&fp16, &int8, &int4, &guarded})
    ASSERT_EQ(m->count("exit"), 0u);
  // The 4 layers' weights: 4 x (4 h^2 + 2 h ffn) x 2 bytes plus biases and norms (hand: 1.611
  // GB at h = 4096, ffn = 16384); INT8 stores half, INT4 a quarter.
  const double weights = 2 * int8.at("resident_stored_bytes");
  EXPECT_NEAR(int4.at("resident_stored_bytes"), weights / 4, 4096 * 25);
  EXPECT_NEAR(weights, 4 * (4.0 * 4096 * 4096 + 2.0 * 4096 * 16384) * 2, 0.001 * weights);
  // Reads from GDDR fall by what the copies no longer hold: per step (2 tokens) half the
  // weights with INT8, three quarters with INT4.
  EXPECT_NEAR(fp16.at("hbm_bytes_per_token") - int8.at("hbm_bytes_per_token"), weights / 2 / 2,
              0.01 * weights);
  EXPECT_NEAR(fp16.at("hbm_bytes_per_token") - int4.at("hbm_bytes_per_token"), 0.75 * weights / 2,
              0.01 * weights);
  EXPECT_LT(int8.at("tpot_ms_mean"), fp16.at("tpot_ms_mean"));
  // Dequantisation is paid per element read: 100x its default cost shows in the step time.
  const auto costly = run_flexgen(common +
                                  "--set policy.orchestration.resident_precision.dtype=INT4"
                                  " --set policy.orchestration.resident_precision."
                                  "dequant_flops_per_element=200");
  EXPECT_GT(costly.at("tpot_ms_mean"), int4.at("tpot_ms_mean") * 1.5);
  EXPECT_NEAR(int8.at("quality_proxy"), 1.0 / 256, 1e-9);
  EXPECT_NEAR(int4.at("quality_proxy"), 1.0 / 16, 1e-9);
  EXPECT_EQ(int4.at("precision_vetoes"), 0);
  // The guardrail: within the budget, something vetoed, and more stored than all-INT4.
  EXPECT_LE(guarded.at("quality_proxy"), 0.03);
  EXPECT_GT(guarded.at("quality_proxy"), 0.015);
  EXPECT_GT(guarded.at("precision_vetoes"), 0);
  EXPECT_GT(guarded.at("resident_stored_bytes"), int4.at("resident_stored_bytes"));
  std::cout << "resident precision: TPOT FP16 " << fp16.at("tpot_ms_mean") << ", INT8 "
            << int8.at("tpot_ms_mean") << ", INT4 " << int4.at("tpot_ms_mean")
            << " ms; guarded INT4: " << guarded.at("lowered_objects") << " lowered, "
            << guarded.at("precision_vetoes") << " vetoed, proxy " << guarded.at("quality_proxy")
            << "\n";
}

TEST(Precision, BadSettingsAreRefused) {
  std::string err;
  auto r = run_flexgen("--set policy.orchestration.resident_precision.dtype=BF16", &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find("policy.orchestration.resident_precision.dtype"), std::string::npos) << err;
  r = run_flexgen(
      "--set policy.orchestration.resident_fraction=0"
      " --set policy.orchestration.resident_precision.dtype=INT8",
      &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find("policy.orchestration.resident_precision"), std::string::npos) << err;
}

}  // namespace
}  // namespace tiersim
