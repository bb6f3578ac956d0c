// The movement controller in whole runs (policy ORCHESTRATED): Llama-3-70B TP8 on H100 with the
// weights' home in host DDR5 behind PCIe Gen5, 99% of each weight object resident in HBM and
// the rest prefetched one layer ahead. Where the controller sits decides whether prefetches land
// within the per-layer window; bytes are accounted by path; bad settings are refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <vector>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

std::string base() {
  return test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
         test::preset("memory/ddr5_4800_8ch.textproto") + " " +
         test::preset("hardware/fragments/h100_weights_in_host_ddr.textproto") + " " +
         test::preset("models/llama3_70b.textproto") + " " +
         test::preset("studies/offload_prefetch_70b_tp8.textproto") +
         " --set workload.decode.decode_steps=8 --quiet";
}

// Runs `cmd` with a result file of its own and returns the summary (plus `ssd_bytes_read` when
// the system has the SSD), or {"exit": code} when the run failed; `err` gets its stderr.
std::map<std::string, double> summary_of(const std::string& cmd, std::string* err = nullptr) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_orch_" + std::to_string(getpid()) + ".h5")).string();
  auto r = test::run_cmd(cmd + " --out " + out);
  if (err) *err = r.err;
  std::map<std::string, double> s;
  if (r.code != 0) {
    s["exit"] = r.code;
    return s;
  }
  ResultReader h(out);
  for (const auto& item : h.summary())
    s[item.name] = item.value;
  if (h.exists("/stats/ssd/bytes_read")) {
    s["ssd_bytes_read"] = h.read_doubles("/stats/ssd/bytes_read").back();
  }
  fs::remove(out);
  return s;
}

std::map<std::string, double> run(const std::string& extra, std::string* err = nullptr) {
  return summary_of(base() + " " + extra, err);
}

// `tiersim run` over the listed presets (configs/ paths without the extension) and overrides.
std::map<std::string, double> run_presets(const std::vector<std::string>& presets,
                                          const std::string& extra, std::string* err = nullptr) {
  std::string cmd = test::tiersim_binary() + " run";
  for (const auto& p : presets)
    cmd += " " + test::preset(p + ".textproto");
  return summary_of(cmd + " --quiet " + extra, err);
}

// Llama-3-8B on H100 with its weights at home in host DDR (the dynamic-cache experiments);
// `extra` sets the rest.
std::map<std::string, double> run_8b(const std::string& extra) {
  auto m = run_presets(
      {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
       "models/llama3_8b", "studies/offload_prefetch_70b_tp8"},
      extra);
  EXPECT_EQ(m.count("exit"), 0u) << extra;
  return m;
}

// The 4 GB dynamic page cache of those experiments on the on-accelerator controller.
std::string cache_8b(uint32_t steps) {
  return test::preset("controllers/on_accelerator.textproto") +
         " --set workload.parallelism.tensor_parallel=1 --set workload.decode.decode_steps=" +
         std::to_string(steps) +
         " --set policy.orchestration.prefetch_layers=0"
         " --set policy.orchestration.resident_fraction=0"
         " --set policy.orchestration.cache_bytes=4000000000 ";
}

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

// FlexGen's setting on the T4 (validation row V6, OPT-30B policy) with a smaller model: OPT-6.7B
// cut to 4 layers, 12 sequences in 3 micro-batches, a 512-token prompt prefilled, 4 decode steps.
std::string flexgen(const std::string& extra, bool ssd = false) {
  return test::tiersim_binary() + " run " + test::preset("hardware/t4.textproto") + " " +
         test::preset("hardware/fragments/t4_flexgen_host.textproto") + " " +
         (ssd ? test::preset("hardware/fragments/t4_flexgen_ssd.textproto") + " " : "") +
         test::preset("models/opt_6_7b.textproto") + " " +
         test::preset("software/pytorch_eager_per_op.textproto") + " " +
         test::preset("validation/v6_opt_30b_t4.textproto") +
         " --set workload.model.layers=4 --set workload.decode.batch_size=12"
         " --set workload.decode.decode_steps=4 --quiet " +
         extra;
}

std::map<std::string, double> run_flexgen(const std::string& extra, std::string* err = nullptr,
                                          bool ssd = false) {
  return summary_of(flexgen(extra, ssd), err);
}

std::map<std::string, double> run_flexgen_refused(const std::string& extra, std::string* err) {
  return run_flexgen(extra, err);
}

// A setting that must be refused: exit code 2 and an error naming `field`.
struct Refusal {
  std::string set, field;
};

// Runs each case through `run` (overrides, stderr) and checks the refusal.
void expect_refused(
    const std::function<std::map<std::string, double>(const std::string&, std::string*)>& run,
    const std::vector<Refusal>& cases) {
  for (const auto& c : cases) {
    std::string err;
    const auto r = run(c.set, &err);
    EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2) << c.set;
    EXPECT_NE(err.find(c.field), std::string::npos) << c.set << ": " << err;
  }
}

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
          {"--set 'policy.orchestration.wired={memory:\"sram\" quota_bytes:0}'",
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

// Confidence-gated residency in the system (Llama-3-8B, weights at home in host DDR, a 4 GB
// page cache in HBM, 6 steps): with every weight page declared reused each step and no budget
// it admits every miss and thrashes like LRU on the cyclic weight stream; a thrash budget of
// admissions per epoch keeps admitted pages long enough to be reused (hits), never lets an epoch
// migrate more than the budget, and counts its fallback epochs; a deliberately wrong intent
// (reuse probability 0) admits nothing.
TEST(Confidence, ThrashBudgetTurnsACyclicThrashIntoHits) {
  auto run8b = [&](const std::string& extra) { return run_8b(cache_8b(6) + extra); };
  const std::string conf = "--set policy.orchestration.replacement=REPLACEMENT_CONFIDENCE ";
  const auto lru = run8b("--set policy.orchestration.replacement=REPLACEMENT_LRU");
  const auto unbounded = run8b(conf);
  // 100 page visits per epoch, at most 10 pages admitted in each.
  const std::string budget = conf +
                             "--set policy.orchestration.confidence.epoch_pages=100 "
                             "--set policy.orchestration.confidence.budget_bytes_per_epoch=";
  ASSERT_FALSE(lru.empty() || unbounded.empty());
  const auto bounded = run8b(budget + std::to_string(10 * 2097152ULL));
  const auto wrong = run8b(conf + "--set policy.orchestration.confidence.intent_override=0");
  ASSERT_FALSE(bounded.empty() || wrong.empty());
  std::cout << "hit rate: LRU " << lru.at("cache_hit_rate") << ", confidence unbounded "
            << unbounded.at("cache_hit_rate") << ", with a thrash budget "
            << bounded.at("cache_hit_rate") << " (" << bounded.at("budget_fallback_epochs")
            << " fallback epochs, largest epoch " << bounded.at("max_epoch_migration_bytes")
            << " bytes), wrong intent " << wrong.at("cache_hit_rate") << "; TPOT "
            << lru.at("tpot_ms_mean") << " / " << unbounded.at("tpot_ms_mean") << " / "
            << bounded.at("tpot_ms_mean") << " / " << wrong.at("tpot_ms_mean") << " ms\n";
  EXPECT_LT(lru.at("cache_hit_rate"), 0.01);
  EXPECT_LT(unbounded.at("cache_hit_rate"), 0.01);
  EXPECT_EQ(unbounded.at("budget_fallback_epochs"), 0);
  EXPECT_GT(bounded.at("cache_hit_rate"), 0.05);
  EXPECT_GT(bounded.at("budget_fallback_epochs"), 0);
  EXPECT_LE(bounded.at("max_epoch_migration_bytes"), 10 * 2097152.0);
  EXPECT_LT(bounded.at("demand_bytes_per_token"), lru.at("demand_bytes_per_token"));
  EXPECT_LT(bounded.at("tpot_ms_mean"), lru.at("tpot_ms_mean"));
  EXPECT_EQ(wrong.at("cache_hit_rate"), 0);
  EXPECT_EQ(wrong.at("admission_bytes_per_token"), 0);
  // The gate's other parameters. A fault budget (5 misses per 100 visits) bounds admissions
  // too. An uncertain intent (mu 0.8: sigma 0.4) is denied at z = 1 (lower bound 0.4 < 0.6)
  // but admitted at z = 0 or with admit_lb 0.3. An over-optimistic intent (mu 0.7, z 0) thrashes
  // like LRU; blended with the observed reuse (pages evicted unused) its mu falls below
  // admit_lb, admissions stop, and the cache keeps what it holds: hits.
  const std::string o = "--set policy.orchestration.confidence.";
  const auto faults = run8b(conf + o + "epoch_pages=100 " + o + "budget_faults_per_epoch=5");
  const auto z1 = run8b(conf + o + "intent_override=0.8");
  const auto z0 = run8b(conf + o + "intent_override=0.8 " + o + "z=0");
  const auto low_lb = run8b(conf + o + "intent_override=0.8 " + o + "admit_lb=0.3");
  const auto optimistic = run8b(conf + o + "intent_override=0.7 " + o + "z=0");
  const auto blended = run8b(conf + o + "intent_override=0.7 " + o + "z=0 " + o + "blend_eta=0.5");
  EXPECT_GT(faults.at("cache_hit_rate"), 0.05);
  EXPECT_GT(faults.at("budget_fallback_epochs"), 0);
  EXPECT_EQ(z1.at("admission_bytes_per_token"), 0);
  EXPECT_GT(z0.at("admission_bytes_per_token"), 0);
  EXPECT_GT(low_lb.at("admission_bytes_per_token"), 0);
  EXPECT_EQ(optimistic.at("cache_hit_rate"), 0);
  EXPECT_GT(blended.at("cache_hit_rate"), 0.1);
  EXPECT_LT(blended.at("admission_bytes_per_token"), optimistic.at("admission_bytes_per_token"));
  std::cout << "fault budget " << faults.at("cache_hit_rate") << " hits; blending an "
            << "over-optimistic intent: " << blended.at("cache_hit_rate") << " hits, "
            << blended.at("admission_bytes_per_token") / 1e9
            << " GB/token admitted (without: " << optimistic.at("admission_bytes_per_token") / 1e9
            << ")\n";
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
  EXPECT_GT(dpu.at("dma_hbm_to_sram_bytes_per_token"), 0);
  EXPECT_GT(dpu.at("dma_demand_fetch_bytes_per_token"), 0);
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
  EXPECT_GT(demand.at("demand_misses"), 0);
  EXPECT_GT(demand.at("demand_tiles_per_token"), 0);
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

// Recompute-vs-transfer (HCache-style hidden-state checkpoints) on the FlexGen T4 setting with
// all weights resident and the KV at home in host DDR: on the healthy PCIe Gen3 link reading
// the KV beats recomputing it on the 70 W T4, and the arbiter transfers; on a link degraded
// to 5% recomputing from the hidden states (half the bytes for OPT's full attention) wins, and
// the arbiter, once it has observed the slow path, recomputes.
TEST(RecomputeVsTransfer, ArbiterFollowsTheCheaperPath) {
  auto with = [&](const std::string& mode, bool degraded) {
    std::string extra =
        "--set policy.orchestration.resident_fraction=1"
        " --set policy.orchestration.host_attention=!clear"
        " --set workload.decode.hidden_state_checkpoints=true"
        " --set policy.orchestration.kv_restore=KV_RESTORE_" +
        mode;
    if (mode == "ARBITRATE") extra += " --set policy.orchestration.arbiter_path_bytes_per_s=12.9e9";
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
  const auto misled = run_flexgen(
      "--set policy.orchestration.resident_fraction=1"
      " --set policy.orchestration.host_attention=!clear"
      " --set workload.decode.hidden_state_checkpoints=true"
      " --set policy.orchestration.kv_restore=KV_RESTORE_ARBITRATE"
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

// Wired residency in the system (configs/studies/wired_hrm_llama3_2_1b.textproto): the arbiter
// binds whole weight objects in the 2 GiB HRM up to the quota; every byte the bound objects
// serve is a byte less from HBM, exactly the arbiter's planned saving, and TPOT falls with the
// quota (the HRM streams faster than HBM).
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
  const auto none = with(1), one = with(1ULL << 30), two = with(2000000000);
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

// Context regions (configs/studies/context_regions_llama3_8b.textproto): Llama-3-8B, 8
// sequences of 32K tokens, sparse attention over 64 KiB regions whose home is host DDR, a pool in
// HBM. `extra` overrides; `err` gets stderr.
std::map<std::string, double> regions(const std::string& extra, std::string* err = nullptr) {
  return run_presets(
      {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
       "models/llama3_8b", "studies/context_regions_llama3_8b"},
      extra, err);
}

const std::string kRegions = " --set policy.orchestration.context_regions.";
// The recall baseline (ArkVale-like): LRU, demand copy-up from the backups, no promotion, no
// veto.
const std::string kRecallBaseline = kRegions + "ranking=REGION_LRU" + kRegions +
                                    "ema_alpha=!clear" + kRegions + "lookahead_layers=0" +
                                    kRegions + "veto_steps=0";

// Bytes by hand: every selected middle region is one visit (the workload's pages read); without
// vetoes or promotions every miss is one demand copy-up of one 64 KiB region (16 tokens x
// 4 KiB of K and V per layer), and those are all the bytes read from home.
TEST(ContextRegions, VisitsAndCopyUpsByHand) {
  const auto r = regions(kRecallBaseline);
  ASSERT_EQ(r.count("exit"), 0u);
  EXPECT_EQ(r.at("region_visits"), r.at("sparse_pages_read"));
  EXPECT_EQ(r.at("region_visits"), 16.0 * 8 * 32 * 32);  // steps x sequences x layers x top-k
  EXPECT_EQ(r.at("region_vetoes"), 0);
  const double tokens = 16.0 * 8;
  EXPECT_DOUBLE_EQ(r.at("demand_bytes_per_token") * tokens, r.at("region_copyups") * 65536.0);
  EXPECT_NEAR(r.at("region_hit_rate"), 1.0 - r.at("region_copyups") / r.at("region_visits"), 1e-12);
  EXPECT_EQ(r.at("region_recall"), 1);
  // The pool: 768 MiB of 64 KiB frames.
  EXPECT_EQ(r.at("region_pool_frames"), 12288);
}

// Speculative promotion pays when adjacent layers attend alike (InfiniGen's premise) and costs
// when they do not: with similarity 0.9 it raises the hit rate and lowers TPOT and the bytes
// read on demand against the recall baseline; with 0 its copies go unused (accuracy under 5%),
// evict useful regions and TPOT rises.
TEST(ContextRegions, SpeculativePromotionHelpsOnlyWhenLayersAgree) {
  for (double similarity : {0.9, 0.0}) {
    const std::string sim =
        " --set workload.decode.sparse_attention.layer_similarity=" + std::to_string(similarity);
    const auto base = regions(kRecallBaseline + sim);
    const auto mech = regions(sim);
    ASSERT_FALSE(base.count("exit") || mech.count("exit"));
    std::cout << "similarity " << similarity << ": hit rate " << base.at("region_hit_rate")
              << " -> " << mech.at("region_hit_rate") << ", TPOT " << base.at("tpot_ms_mean")
              << " -> " << mech.at("tpot_ms_mean") << " ms, demand "
              << base.at("demand_bytes_per_token") / 1e6 << " -> "
              << mech.at("demand_bytes_per_token") / 1e6 << " MB/token, promoted "
              << mech.at("region_promotion_bytes_per_token") / 1e6 << " MB/token, accuracy "
              << mech.at("region_ahead_accuracy") << "\n";
    EXPECT_GT(mech.at("region_promotions"), 0);
    if (similarity > 0) {
      EXPECT_GT(mech.at("region_hit_rate"), base.at("region_hit_rate") + 0.15);
      EXPECT_LT(mech.at("tpot_ms_mean"), base.at("tpot_ms_mean"));
      EXPECT_LT(mech.at("demand_bytes_per_token"), 0.5 * base.at("demand_bytes_per_token"));
      EXPECT_GT(mech.at("region_ahead_accuracy"), 0.5);
    } else {
      EXPECT_LT(mech.at("region_hit_rate"), base.at("region_hit_rate"));
      EXPECT_GT(mech.at("tpot_ms_mean"), base.at("tpot_ms_mean"));
      EXPECT_LT(mech.at("region_ahead_accuracy"), 0.05);
    }
  }
}

// Reversible against irreversible demotion. Without backups (StreamingLLM: no pool; H2O: a
// pool ranked by score) a region once out is never attended again: recall falls below 1 and
// nothing is read from home; with backups every selected region is attended (recall 1) at the
// price of the copy-ups. SKIP attends without late regions (copying them up for the next step):
// recall equals the hit rate, nothing waits on home reads.
TEST(ContextRegions, IrreversibleEvictionAndSkippingLoseRecall) {
  const std::string plain = kRegions + "lookahead_layers=0" + kRegions + "veto_steps=0";
  const auto reversible = regions(plain);
  const auto h2o = regions(plain + kRegions + "backup=false");
  const auto streaming = regions(plain + kRegions + "backup=false" + kRegions + "budget_bytes=0");
  const auto skip = regions(plain + kRegions + "late=LATE_REGION_SKIP");
  ASSERT_FALSE(reversible.count("exit") || h2o.count("exit") || streaming.count("exit") ||
               skip.count("exit"));
  std::cout << "recall: reversible " << reversible.at("region_recall") << ", H2O "
            << h2o.at("region_recall") << " (" << h2o.at("region_lost") << " lost), StreamingLLM "
            << streaming.at("region_recall") << ", skip " << skip.at("region_recall") << "; TPOT "
            << reversible.at("tpot_ms_mean") << " / " << h2o.at("tpot_ms_mean") << " / "
            << streaming.at("tpot_ms_mean") << " / " << skip.at("tpot_ms_mean") << " ms\n";
  EXPECT_EQ(reversible.at("region_recall"), 1);
  EXPECT_GT(reversible.at("demand_bytes_per_token"), 0);
  EXPECT_EQ(streaming.at("region_recall"), 0);
  EXPECT_EQ(streaming.at("region_pool_frames"), 0);
  EXPECT_EQ(streaming.at("region_skipped"), streaming.at("region_visits"));
  EXPECT_GT(h2o.at("region_recall"), 0);
  EXPECT_LT(h2o.at("region_recall"), 0.5);
  EXPECT_GT(h2o.at("region_lost"), 0);
  for (const auto* r : {&h2o, &streaming, &skip}) {
    EXPECT_EQ(r->at("demand_bytes_per_token"), 0);
    EXPECT_LT(r->at("tpot_ms_mean"), reversible.at("tpot_ms_mean"));
  }
  EXPECT_LT(skip.at("region_recall"), 1);
  EXPECT_DOUBLE_EQ(skip.at("region_recall"), skip.at("region_hit_rate"));
  EXPECT_EQ(skip.at("region_copyups"), skip.at("region_skipped"));
}

// The coherence veto: locking the regions attended in the last step keeps them through the
// next, at a budget of exactly the attended pages (32 per sequence and layer) some admissions
// find every region locked and are vetoed; a mass threshold above one region's share (1/32)
// locks nothing and reproduces the run without a veto.
TEST(ContextRegions, CoherenceVetoLocksRecentlyAttendedRegions) {
  const std::string tight = kRegions + "budget_bytes=536870912";
  const auto veto = regions(tight);
  const auto none = regions(tight + kRegions + "veto_steps=0");
  const auto high = regions(tight + kRegions + "veto_mass=0.5");
  ASSERT_FALSE(veto.count("exit") || none.count("exit") || high.count("exit"));
  EXPECT_GT(veto.at("region_vetoes"), 0);
  EXPECT_EQ(none.at("region_vetoes"), 0);
  // (With the veto off, admissions that find every frame holding a promotion in flight are
  // refused, not vetoed.)
  EXPECT_EQ(none.at("region_refused"), high.at("region_refused"));
  EXPECT_EQ(high.at("region_vetoes"), 0);
  EXPECT_EQ(high.at("tpot_ms_mean"), none.at("tpot_ms_mean"));
  EXPECT_EQ(high.at("region_hit_rate"), none.at("region_hit_rate"));
  EXPECT_NE(veto.at("region_hit_rate"), none.at("region_hit_rate"));
  // Promoting fewer pages per decision (the top 8 by their source's score) moves fewer bytes.
  const auto few = regions(kRegions + "promote_pages=8");
  const auto all = regions("");
  ASSERT_FALSE(few.count("exit") || all.count("exit"));
  EXPECT_LT(few.at("region_promotion_bytes_per_token"), all.at("region_promotion_bytes_per_token"));
  EXPECT_LE(few.at("region_promotions"), 8.0 * 8 * 32 * 16);
}

// The compressed (warm) tier: regions demoted from the pool stay in HBM as INT4 (a quarter of
// their 64 KiB) and are attended from there instead of being copied up: recall stays 1, fewer
// bytes come from home, TPOT falls; the quality proxy is 2^-4 x the compressed share of the
// visits; each compression is one 16 KiB copy within HBM (DMA reason demote).
TEST(ContextRegions, CompressedTierAttendsDemotedRegionsInPlace) {
  const auto base = regions("");
  const auto warm = regions(kRegions + "compressed_budget_bytes=536870912");
  ASSERT_FALSE(base.count("exit") || warm.count("exit"));
  std::cout << "compressed tier: TPOT " << base.at("tpot_ms_mean") << " -> "
            << warm.at("tpot_ms_mean") << " ms, demand " << base.at("demand_bytes_per_token") / 1e6
            << " -> " << warm.at("demand_bytes_per_token") / 1e6 << " MB/token, "
            << warm.at("region_compressed_reads") << " compressed reads, proxy "
            << warm.at("region_quality_proxy") << "\n";
  EXPECT_EQ(warm.at("region_compressed_frames"), 536870912.0 / 16384);
  EXPECT_EQ(warm.at("region_recall"), 1);
  EXPECT_GT(warm.at("region_compressed_reads"), 0);
  EXPECT_LT(warm.at("demand_bytes_per_token"), base.at("demand_bytes_per_token"));
  EXPECT_LT(warm.at("tpot_ms_mean"), base.at("tpot_ms_mean"));
  EXPECT_NEAR(warm.at("region_quality_proxy"),
              warm.at("region_compressed_reads") / warm.at("region_visits") / 16, 1e-12);
  const double tokens = 16.0 * 8;
  EXPECT_DOUBLE_EQ(warm.at("dma_demote_bytes_per_token") * tokens,
                   warm.at("region_compressions") * 16384);
}

TEST(ContextRegions, BadSettingsAreRefused) {
  expect_refused(
      regions,
      {
          {"--set workload.decode.sparse_attention=!clear --set "
           "workload.decode.kv_block_tokens=!clear",
           "policy.orchestration.context_regions"},
          {"--set policy.orchestration.kv_resident=true", "policy.orchestration.context_regions"},
          {kRegions + "ranking=REGION_LRU", "policy.orchestration.context_regions.ema_alpha"},
          {kRegions + "lookahead_layers=32",
           "policy.orchestration.context_regions.lookahead_layers"},
          {kRegions + "lookahead_layers=0" + kRegions + "promote_pages=4",
           "policy.orchestration.context_regions.promote_pages"},
          {kRegions + "veto_steps=0" + kRegions + "veto_mass=0.2",
           "policy.orchestration.context_regions.veto_mass"},
          {kRegions + "budget_bytes=!clear", "policy.orchestration.context_regions.budget_bytes"},
          {"--set workload.decode.prefill=true", "policy.orchestration.context_regions"},
          {kRegions + "compressed_dtype=BF16" + kRegions + "compressed_budget_bytes=4096",
           "policy.orchestration.context_regions.compressed_dtype"},
          {kRegions + "compressed_dtype=INT8",
           "policy.orchestration.context_regions.compressed_dtype"},
          {"--set workload.decode.sparse_attention.layer_similarity=1.5",
           "workload.decode.sparse_attention.layer_similarity"},
      });
}

// The object cache (configs/studies/expert_cache_mixtral.textproto): Mixtral-8x7B's weights at
// home in host DDR, a 24 GiB extent-allocated cache of whole objects in HBM.
std::map<std::string, double> expert_cache(const std::string& extra, std::string* err = nullptr) {
  return run_presets(
      {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
       "models/mixtral_8x7b", "studies/expert_cache_mixtral"},
      extra, err);
}

// Bytes and visits add up; objects of different sizes fragment the area (admissions find enough
// free bytes but no extent); targeted compaction within its per-step budget halves those
// failures, its copies are the DMA's compact bytes; the cache beats streaming every weight, and
// LFU beats LRU on skewed routing.
TEST(ObjectCache, FragmentationCompactionAndAccounting) {
  const std::string oc = " --set policy.orchestration.object_cache.";
  const auto lru = expert_cache("");
  const auto plain = expert_cache(oc + "compaction_bytes_per_step=0");
  const auto lfu = expert_cache(oc + "eviction=OBJECT_LFU");
  const auto none = expert_cache(" --set policy.orchestration.object_cache=!clear");
  ASSERT_FALSE(lru.count("exit") || plain.count("exit") || lfu.count("exit") || none.count("exit"));
  std::cout << "hit rate LRU " << lru.at("object_cache_hit_rate") << ", LFU "
            << lfu.at("object_cache_hit_rate") << "; fragmentation mean "
            << lru.at("fragmentation_mean") << " max " << lru.at("fragmentation_max")
            << "; failures " << plain.at("fragmentation_failures") << " -> "
            << lru.at("fragmentation_failures") << " with " << lru.at("compactions")
            << " compactions (" << lru.at("compaction_bytes_per_token") / 1e6 << " MB/token); TPOT "
            << none.at("tpot_ms_mean") << " (no cache) / " << lru.at("tpot_ms_mean") << " / "
            << lfu.at("tpot_ms_mean") << " ms\n";
  for (const auto* r : {&lru, &plain, &lfu}) {
    EXPECT_DOUBLE_EQ(r->at("object_cache_visits"),
                     r->at("object_cache_hit_rate") * r->at("object_cache_visits") +
                         r->at("object_cache_admissions") + r->at("object_cache_bypasses"));
    // Without bypasses every byte read from home is copied into an extent.
    if (r->at("object_cache_bypasses") == 0) {
      EXPECT_DOUBLE_EQ(r->at("demand_bytes_per_token"), r->at("admission_bytes_per_token"));
    }
    EXPECT_GT(r->at("fragmentation_failures"), 0);
    EXPECT_GT(r->at("fragmentation_max"), 0.5);
  }
  EXPECT_EQ(plain.at("compactions"), 0);
  EXPECT_GT(lru.at("compactions"), 0);
  EXPECT_LT(lru.at("fragmentation_failures"), 0.75 * plain.at("fragmentation_failures"));
  EXPECT_DOUBLE_EQ(lru.at("compaction_bytes_per_token"), lru.at("dma_compact_bytes_per_token"));
  const double tokens = 16.0 * 4;
  EXPECT_LE(lru.at("compaction_bytes_per_token") * tokens, 16.0 * 2147483648.0);
  EXPECT_LT(lru.at("tpot_ms_mean"), none.at("tpot_ms_mean"));
  EXPECT_GT(lfu.at("object_cache_hit_rate"), lru.at("object_cache_hit_rate"));
  // A budget too small for any window compacts nothing.
  const auto tiny = expert_cache(oc + "compaction_bytes_per_step=4096");
  ASSERT_FALSE(tiny.count("exit"));
  EXPECT_EQ(tiny.at("compactions"), 0);
}

// Precision states in the object cache (HOBBIT's low-precision substitution on a miss): INT8
// copies at home halve the bytes each miss moves and each extent holds (every byte read from
// home still lands in an extent), the quality proxy is err(INT8) = 1/256 with every weight
// lowered; INT4 (1/4 of the bytes) brings the 93 GB model within the 24 GiB cache. A quality
// budget with the experts 4x less sensitive than the rest lowers experts first and vetoes the
// rest beyond it.
TEST(ObjectCache, LowPrecisionCopiesOnMiss) {
  const std::string p = " --set policy.orchestration.object_cache.precision=";
  const auto full = expert_cache("");
  const auto int8 = expert_cache(p + "'{dtype: INT8}'");
  const auto int4 = expert_cache(p + "'{dtype: INT4}'");
  const auto guarded =
      expert_cache(p +
                   "'{dtype: INT4 quality_budget: 0.05 sensitivity {prefix: \"layer\" value: 4} "
                   "sensitivity {contains: \".expert\" value: 1}}'");
  ASSERT_FALSE(full.count("exit") || int8.count("exit") || int4.count("exit") ||
               guarded.count("exit"));
  std::cout << "TPOT FP16 " << full.at("tpot_ms_mean") << ", INT8 " << int8.at("tpot_ms_mean")
            << ", INT4 " << int4.at("tpot_ms_mean") << ", INT4 within budget "
            << guarded.at("tpot_ms_mean") << " ms; hit rate " << full.at("object_cache_hit_rate")
            << " / " << int8.at("object_cache_hit_rate") << " / "
            << int4.at("object_cache_hit_rate") << " / " << guarded.at("object_cache_hit_rate")
            << "; bytes per admission "
            << full.at("admission_bytes_per_token") / full.at("object_cache_admissions") << " / "
            << int8.at("admission_bytes_per_token") / int8.at("object_cache_admissions") << "\n";
  EXPECT_NEAR(int8.at("quality_proxy"), 1.0 / 256, 1e-12);
  EXPECT_NEAR(int4.at("quality_proxy"), 1.0 / 16, 1e-12);
  EXPECT_EQ(int8.at("precision_vetoes"), 0);
  for (const auto* r : {&int8, &int4, &guarded}) {
    EXPECT_DOUBLE_EQ(r->at("demand_bytes_per_token"), r->at("admission_bytes_per_token"));
    EXPECT_LT(r->at("tpot_ms_mean"), full.at("tpot_ms_mean"));
  }
  // Every object lowered: an admission copies half (INT8) the bytes of FP16's on average
  // (the same objects, within the mix's drift).
  const double per_full = full.at("admission_bytes_per_token") / full.at("object_cache_admissions");
  const double per_int8 = int8.at("admission_bytes_per_token") / int8.at("object_cache_admissions");
  EXPECT_NEAR(per_int8 / per_full, 0.5, 0.02);
  EXPECT_GT(int4.at("object_cache_hit_rate"), 0.9);
  EXPECT_LE(guarded.at("quality_proxy"), 0.05 + 1e-12);
  EXPECT_GT(guarded.at("precision_vetoes"), 0);
  EXPECT_LT(guarded.at("lowered_objects"), int4.at("lowered_objects"));
}

// Prefetch with lookahead into the object cache, activation-aware (the objects read at the
// layer's previous visit: dense weights and the experts routed then). Where the cache holds the
// model (INT4) it turns first-touch misses into hits (accuracy 1) and shortens TPOT; where the
// working set thrashes (FP16) the copies, queued as bulk traffic behind each other on PCIe,
// evict what LRU would have hit and make consumers wait: more bytes from home and a slower
// TPOT. Prefetching every object of the layer moves more and is less accurate.
TEST(ObjectCache, ActivationAwarePrefetchHelpsOnlyWithSlack) {
  const std::string oc = " --set policy.orchestration.object_cache.";
  const std::string int4 = oc + "precision='{dtype: INT4}'";
  const auto fit = expert_cache(int4);
  const auto fit_pf = expert_cache(int4 + oc + "prefetch_layers=1");
  const auto thrash = expert_cache("");
  const auto thrash_pf = expert_cache(oc + "prefetch_layers=1");
  const auto thrash_all =
      expert_cache(oc + "prefetch_layers=1" + oc + "prefetch=OBJECT_PREFETCH_ALL");
  ASSERT_FALSE(fit.count("exit") || fit_pf.count("exit") || thrash.count("exit") ||
               thrash_pf.count("exit") || thrash_all.count("exit"));
  auto home = [](const std::map<std::string, double>& r) {
    return r.at("demand_bytes_per_token") + r.at("prefetch_bytes_per_token");
  };
  std::cout << "INT4: TPOT " << fit.at("tpot_ms_mean") << " -> " << fit_pf.at("tpot_ms_mean")
            << " ms, demand misses " << fit.at("demand_misses") << " -> "
            << fit_pf.at("demand_misses") << ", accuracy " << fit_pf.at("object_prefetch_accuracy")
            << "; FP16: TPOT " << thrash.at("tpot_ms_mean") << " -> "
            << thrash_pf.at("tpot_ms_mean") << " (all: " << thrash_all.at("tpot_ms_mean")
            << ") ms, home GB/token " << home(thrash) / 1e9 << " -> " << home(thrash_pf) / 1e9
            << " (all: " << home(thrash_all) / 1e9 << "), stall "
            << thrash_pf.at("stall_us_per_token") / 1e3 << " ms/token\n";
  EXPECT_GT(fit_pf.at("object_prefetches"), 0);
  EXPECT_DOUBLE_EQ(fit_pf.at("object_prefetch_accuracy"), 1.0);
  EXPECT_LT(fit_pf.at("demand_misses"), fit.at("demand_misses"));
  EXPECT_LT(fit_pf.at("tpot_ms_mean"), fit.at("tpot_ms_mean"));
  EXPECT_GT(home(thrash_pf), home(thrash));
  EXPECT_GT(thrash_pf.at("tpot_ms_mean"), thrash.at("tpot_ms_mean"));
  EXPECT_GT(thrash_pf.at("stall_us_per_token"), 0);
  EXPECT_GT(thrash_all.at("object_prefetch_bytes_per_token"),
            thrash_pf.at("object_prefetch_bytes_per_token"));
  EXPECT_LT(thrash_all.at("object_prefetch_accuracy"), thrash_pf.at("object_prefetch_accuracy"));
  // Every prefetched byte is a DMA prefetch byte from host DDR.
  EXPECT_DOUBLE_EQ(thrash_pf.at("object_prefetch_bytes_per_token"),
                   thrash_pf.at("prefetch_bytes_per_token"));
}

// Intents restated per phase: with a prefill step the prompt uses every expert for certain, so
// the activation-aware prefetch copies each next layer's experts during the prefill (then the
// decode phase's intent applies again); with the intent declared at model load only (the
// decode phase's) it prefetches the dense weights alone, the prefill reads the experts on
// demand and takes longer.
TEST(ObjectCache, IntentsRestatedPerPhase) {
  const std::string set =
      " --set workload.decode.prefill=true --set policy.orchestration.object_cache."
      "prefetch_layers=1 --set policy.orchestration.object_cache.precision='{dtype: INT4}'";
  const auto phases = expert_cache(set);
  const auto load_only = expert_cache(set + " --set policy.orchestration.intent_per_phase=false");
  ASSERT_FALSE(phases.count("exit") || load_only.count("exit"));
  std::cout << "prefetches " << load_only.at("object_prefetches") << " -> "
            << phases.at("object_prefetches") << ", prefill " << load_only.at("prefill_s") << " -> "
            << phases.at("prefill_s") << " s, demand "
            << load_only.at("demand_bytes_per_token") / 1e6 << " -> "
            << phases.at("demand_bytes_per_token") / 1e6 << " MB/token\n";
  EXPECT_GT(phases.at("object_prefetches"), load_only.at("object_prefetches") + 200);
  EXPECT_LT(phases.at("prefill_s"), load_only.at("prefill_s"));
  EXPECT_LT(phases.at("demand_bytes_per_token"), load_only.at("demand_bytes_per_token"));
  EXPECT_DOUBLE_EQ(phases.at("object_prefetch_accuracy"), 1.0);
}

TEST(ObjectCache, BadSettingsAreRefused) {
  expect_refused(
      expert_cache,
      {
          {"--set policy.orchestration.resident_fraction=0.5", "policy.orchestration.object_cache"},
          {"--set policy.orchestration.prefetch_layers=1", "policy.orchestration.object_cache"},
          {"--set policy.orchestration.object_cache.bytes=0",
           "policy.orchestration.object_cache.bytes"},
          {"--set policy.orchestration.object_cache.prefetch=OBJECT_PREFETCH_ALL",
           "policy.orchestration.object_cache.prefetch"},
          {"--set policy.orchestration.object_cache.prefetch_layers=1 --set "
           "policy.orchestration.object_cache.prefetch_confidence=2",
           "policy.orchestration.object_cache.prefetch_confidence"},
          {"--set 'policy.orchestration.object_cache.precision={dtype: BF16}'",
           "policy.orchestration.object_cache.precision.dtype"},
          {"--set 'policy.orchestration.object_cache.precision={dtype: INT8 sensitivity {value: "
           "2}}'",
           "policy.orchestration.object_cache.precision.sensitivity[0].prefix"},
      });
}

// The DPU's DDR buffer (configs/studies/dpu_buffer_70b_tp8.textproto): Llama-3-70B TP8, the
// weights' home a DPU-local SSD, 1% of each weight prefetched one layer ahead. With a 200 us
// home read latency a one-layer lookahead misses the window; staging in the DPU's DDR three
// layers ahead hides it like a three-layer lookahead does, with the one-layer staging area in
// HBM (half of it); every home byte goes SSD -> DDR by the DPU's DMA, then peer to peer, and the
// controller decides twice per object.
std::map<std::string, double> dpu(const std::string& extra, std::string* err = nullptr) {
  return run_presets({"hardware/h100_sxm", "hardware/fragments/h100_dpu_nvme", "models/llama3_70b",
                      "studies/dpu_buffer_70b_tp8"},
                     " --set system.components[dpu_nvme].nvme.read_latency_ps=200000000 " + extra,
                     err);
}

TEST(DpuBuffer, StagingInTheDpuDdrHidesTheHomeLatency) {
  const std::string no_buffer = " --set policy.orchestration.dpu_buffer=!clear";
  const auto buffered = dpu("");
  const auto direct1 = dpu(no_buffer);
  const auto direct3 = dpu(no_buffer + " --set policy.orchestration.prefetch_layers=3");
  ASSERT_FALSE(buffered.count("exit") || direct1.count("exit") || direct3.count("exit"));
  std::cout << "stall us/token: DPU buffer " << buffered.at("stall_us_per_token") << ", direct k=1 "
            << direct1.at("stall_us_per_token") << ", direct k=3 "
            << direct3.at("stall_us_per_token") << "; TPOT " << buffered.at("tpot_ms_mean") << " / "
            << direct1.at("tpot_ms_mean") << " / " << direct3.at("tpot_ms_mean")
            << " ms; HBM staging " << buffered.at("staging_bytes") / 1e6 << " / "
            << direct1.at("staging_bytes") / 1e6 << " / " << direct3.at("staging_bytes") / 1e6
            << " MB\n";
  EXPECT_GT(direct1.at("stall_us_per_token"), 1000);
  EXPECT_LT(buffered.at("stall_us_per_token"), 0.05 * direct1.at("stall_us_per_token"));
  EXPECT_LT(buffered.at("tpot_ms_mean"), direct1.at("tpot_ms_mean"));
  EXPECT_EQ(buffered.at("staging_bytes"), direct1.at("staging_bytes"));
  EXPECT_EQ(2 * buffered.at("staging_bytes"), direct3.at("staging_bytes"));
  EXPECT_GT(buffered.at("dpu_buffer_sourced_fraction"), 0.99);
  EXPECT_DOUBLE_EQ(buffered.at("dpu_buffer_bytes_per_token"),
                   buffered.at("dpu_dma_nvme_to_ddr_bytes_per_token"));
  EXPECT_DOUBLE_EQ(buffered.at("dpu_buffer_bytes_per_token"),
                   buffered.at("prefetch_bytes_per_token"));
  EXPECT_EQ(buffered.at("controller_decisions"), 2 * direct1.at("controller_decisions"));
}

TEST(DpuBuffer, BadSettingsAreRefused) {
  const std::string b = " --set policy.orchestration.dpu_buffer.";
  expect_refused(
      dpu, {
               {b + "lookahead_layers=1", "policy.orchestration.dpu_buffer.lookahead_layers"},
               {b + "lookahead_layers=99", "policy.orchestration.dpu_buffer.lookahead_layers"},
               {b + "memory=dpu_nvme", "policy.orchestration.dpu_buffer.memory"},
               {b + "dma=hbm", "policy.orchestration.dpu_buffer.dma"},
               {" --set policy.orchestration.prefetch_layers=0", "policy.orchestration.dpu_buffer"},
           });
}

// Every context-region, object-cache and DPU-buffer parameter changes the result.
TEST(ContextRegions, EveryParameterChangesTheResult) {
  const auto base = regions("");
  const auto lru = regions(kRegions + "ranking=REGION_LRU" + kRegions + "ema_alpha=!clear");
  const auto alpha = regions(kRegions + "ema_alpha=0.5");
  const std::string warm = kRegions + "compressed_budget_bytes=536870912";
  const auto int4 = regions(warm);
  const auto int8 = regions(warm + kRegions + "compressed_dtype=INT8");
  const auto slow = regions(warm + kRegions + "dequant_flops_per_element=2000");
  for (const auto* r : {&base, &lru, &alpha, &int4, &int8, &slow})
    ASSERT_EQ(r->count("exit"), 0u);
  EXPECT_NE(lru.at("region_hit_rate"), base.at("region_hit_rate"));
  EXPECT_NE(alpha.at("region_hit_rate"), base.at("region_hit_rate"));
  // INT8 regions are half the size of BF16 ones: 32 KiB frames, half as many; the proxy 2^-8.
  EXPECT_EQ(int8.at("region_compressed_frames"), 536870912.0 / 32768);
  EXPECT_NEAR(int8.at("region_quality_proxy"),
              int8.at("region_compressed_reads") / int8.at("region_visits") / 256, 1e-12);
  EXPECT_GT(slow.at("tpot_ms_mean"), int4.at("tpot_ms_mean"));
}

TEST(ObjectCache, EveryParameterChangesTheResult) {
  const std::string oc = " --set policy.orchestration.object_cache.";
  const auto first = expert_cache("");
  const auto best = expert_cache(oc + "fit=EXTENT_BEST_FIT");
  const std::string pf = oc + "precision='{dtype: INT4}'" + oc + "prefetch_layers=1";
  const auto sure = expert_cache(pf);
  const auto likely = expert_cache(pf + oc + "prefetch_confidence=0.9");
  for (const auto* r : {&first, &best, &sure, &likely})
    ASSERT_EQ(r->count("exit"), 0u);
  EXPECT_NE(best.at("fragmentation_failures"), first.at("fragmentation_failures"));
  EXPECT_NE(best.at("fragmentation_mean"), first.at("fragmentation_mean"));
  // Experts the intent gives at least 0.9 are prefetched too.
  EXPECT_GT(likely.at("object_prefetches"), sure.at("object_prefetches"));
}

TEST(DpuBuffer, LookaheadSetsHowMuchLatencyIsHidden) {
  const auto two = dpu(" --set policy.orchestration.dpu_buffer.lookahead_layers=2");
  const auto three = dpu("");
  ASSERT_FALSE(two.count("exit") || three.count("exit"));
  EXPECT_GT(two.at("stall_us_per_token"), three.at("stall_us_per_token"));
}

}  // namespace
}  // namespace tiersim
