// End-to-end decode against hand-derived values: a batch-1 Llama-2-7B step on the A100 preset
// takes the bytes it reads divided by the configured effective HBM bandwidth, plus overheads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

// Llama-2-7B (config.json): 32 layers, hidden 4096, 32 heads (MHA), ffn 11008, vocab 32000, bf16.
constexpr double kLayers = 32, kHidden = 4096, kFfn = 11008, kVocab = 32000, kBytes = 2;
constexpr double kLayerWeights =
    (4 * kHidden * kHidden + 3 * kHidden * kFfn + 2 * kHidden) * kBytes;  // qkvo, mlp, 2 norms
constexpr double kKvPerTokenPerLayer = 2 * kHidden * kBytes;              // K and V
// Read per step besides the KV cache: all layers, final norm, LM head, one embedding row.
constexpr double kWeightsPerStep =
    kLayers * kLayerWeights + kHidden * kBytes + kVocab * kHidden * kBytes + kHidden * kBytes;

// A100 preset: 5 stacks x 1024 pins x 3186 Mb/s / 8 x 0.82 efficiency; 5 us per kernel. The
// runs pin gemm_half_efficiency_rows to 0 so that every tile's arithmetic hides behind its
// transfer (at batch 1 the preset's M-dependent efficiency leaves ~0.3 us of math on the last
// tile of each op, which this hand formula does not carry).
constexpr double kHbmBw = 5 * 1024 * 3186e6 / 8 * 0.82;
constexpr double kOpOverheadS = 5e-6, kHbmLatencyS = 500e-9, kSramLatencyS = 30e-9;
constexpr double kSramBw = 19.5e12, kTile = 2097152;

struct DecodeRun {
  std::vector<double> tpot_ms;
  double hbm_bytes_per_token = 0;
  double tokens_per_s = 0;
};

DecodeRun run_decode(const std::string& extra) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_decode_" + std::to_string(getpid()) + ".h5")).string();
  const std::string cmd =
      test::tiersim_binary() + " run " + test::preset("hardware/a100_80gb.textproto") + " " +
      test::preset("models/llama2_7b.textproto") + " " + test::preset("studies/default.textproto") +
      " --set workload.decode.context_tokens=512"
      " --set workload.decode.decode_steps=8"
      " --set system.components[compute].compute.gemm_half_efficiency_rows=0 --quiet --out " +
      out + " " + extra;
  auto r = test::run_cmd(cmd);
  EXPECT_EQ(r.code, 0) << r.err;
  DecodeRun res;
  if (r.code != 0) return res;
  ResultReader h(out);
  res.tpot_ms = h.read_table("/tokens").find("latency_ms")->f64;
  for (const auto& s : h.summary()) {
    if (s.name == "hbm_bytes_per_token") res.hbm_bytes_per_token = s.value;
    if (s.name == "tokens_per_s") res.tokens_per_s = s.value;
  }
  fs::remove(out);
  return res;
}

// Hand-derived step time: every op pays the overhead and the SRAM latency of its activation
// read and write; every op that streams from HBM pays the HBM latency once (tiles pipeline
// behind it) and the SRAM read of its last tile; the bytes pay the effective bandwidth.
double hand_tpot_ms(int step, double hbm_bw) {
  const double kv_read = kLayers * (512 + step) * kKvPerTokenPerLayer;
  const double ops = 1 + 11 * kLayers + 2;
  const double streamed_ops = 1 + 7 * kLayers + 2;
  const double norm = kHidden * kBytes;
  // Last-tile SRAM reads: qkv, out, gate_up, down, the KV (512 tokens: exactly 4 tiles) and
  // the LM head are whole multiples of the 2 MiB tile; norms and the embedding row are 8 KiB.
  // (From step 1 on, the KV's extra partial tile lands behind the previous tile's compute.)
  const double last_tiles = kLayers * (5 * kTile + 2 * norm) + 2 * norm + kTile;
  const double s = (kWeightsPerStep + kv_read) / hbm_bw + ops * (kOpOverheadS + 2 * kSramLatencyS) +
                   streamed_ops * kHbmLatencyS + last_tiles / kSramBw;
  return s * 1e3;
}

TEST(Decode, Batch1TpotIsBytesOverEffectiveBandwidthPlusOverheads) {
  DecodeRun r = run_decode("");
  ASSERT_EQ(r.tpot_ms.size(), 8u);
  for (int s = 0; s < 8; ++s) {
    // Within 0.05%: what the hand value leaves out is activation bytes at SRAM bandwidth and the
    // per-tile imbalance of 256-byte interleaving over 5 stacks.
    EXPECT_NEAR(r.tpot_ms[s], hand_tpot_ms(s, kHbmBw), hand_tpot_ms(s, kHbmBw) * 5e-4)
        << "step " << s;
  }
  // HBM bytes per token: weights + KV read + the KV appended.
  const double kv_mean = kLayers * (512 + 3.5) * kKvPerTokenPerLayer;
  EXPECT_NEAR(r.hbm_bytes_per_token, kWeightsPerStep + kv_mean + kLayers * kKvPerTokenPerLayer,
              1.0);
}

TEST(Decode, EfficiencyAndOverheadChangeTheResultAsPredicted) {
  DecodeRun half = run_decode("--set system.components[hbm].hbm.efficiency_fraction=0.41");
  ASSERT_EQ(half.tpot_ms.size(), 8u);
  EXPECT_NEAR(half.tpot_ms[0], hand_tpot_ms(0, kHbmBw / 2), hand_tpot_ms(0, kHbmBw / 2) * 5e-4);
  DecodeRun no_overhead = run_decode("--set system.components[compute].compute.op_overhead_ps=0");
  ASSERT_EQ(no_overhead.tpot_ms.size(), 8u);
  EXPECT_NEAR(no_overhead.tpot_ms[0],
              hand_tpot_ms(0, kHbmBw) - (1 + 11 * kLayers + 2) * kOpOverheadS * 1e3, 0.01);
}

TEST(Decode, TpotGrowsWithContextAsTheKvReadPredicts) {
  DecodeRun short_ctx = run_decode("");
  DecodeRun long_ctx = run_decode("--set workload.decode.context_tokens=1536");
  ASSERT_EQ(short_ctx.tpot_ms.size(), 8u);
  ASSERT_EQ(long_ctx.tpot_ms.size(), 8u);
  // 1024 more cached tokens per layer; the last partial KV tile of each layer may hide behind
  // the previous tile's compute (at most one 2 MiB SRAM read, 0.1 us, per layer).
  const double extra_ms = kLayers * 1024 * kKvPerTokenPerLayer / kHbmBw * 1e3;
  EXPECT_NEAR(long_ctx.tpot_ms[0] - short_ctx.tpot_ms[0], extra_ms, kLayers * 0.11e-3);
}

// The software stack's decode attention latency delays every attention op by itself and
// nothing else: 32 layers, one attention op each, per step.
TEST(Decode, AttentionLatencyIsPaidOncePerAttentionOp) {
  DecodeRun base = run_decode("");
  DecodeRun slow = run_decode("--set software.attention_latency_ps=7000000");
  ASSERT_EQ(base.tpot_ms.size(), 8u);
  ASSERT_EQ(slow.tpot_ms.size(), 8u);
  for (int s = 0; s < 8; ++s) {
    EXPECT_NEAR(slow.tpot_ms[s] - base.tpot_ms[s], kLayers * 7e-3, 1e-6) << "step " << s;
  }
}

// The host's work between steps: 1 ms plus 0.25 ms per sequence (batch 4). A synchronous stack
// exposes all of it after every step; an overlapping one (async scheduling) exposes none while
// it is shorter than the device's step (~11 ms) and, when longer (30 ms), paces the steps: step
// k then spans 30 ms + its device time less the previous step's (the host started its work
// when it had launched that step).
TEST(Decode, HostStepWorkIsExposedUnlessItOverlapsTheDevice) {
  const std::string b4 = "--set workload.decode.batch_size=4 ";
  const std::string work =
      "--set software.host_step_ps=1000000000 "
      "--set software.host_step_per_sequence_ps=250000000 ";
  DecodeRun base = run_decode(b4);
  DecodeRun sync = run_decode(b4 + work);
  DecodeRun hidden = run_decode(b4 + work + "--set software.overlap_host_step=true");
  DecodeRun paced = run_decode(b4 +
                               "--set software.host_step_ps=30000000000 "
                               "--set software.overlap_host_step=true");
  for (const auto* r : {&base, &sync, &hidden, &paced})
    ASSERT_EQ(r->tpot_ms.size(), 8u);
  EXPECT_NEAR(sync.tpot_ms[0], base.tpot_ms[0], 1e-9);
  for (int s = 1; s < 8; ++s)
    EXPECT_NEAR(sync.tpot_ms[s] - base.tpot_ms[s], 2.0, 1e-6) << "step " << s;
  EXPECT_EQ(hidden.tpot_ms, base.tpot_ms);
  ASSERT_LT(base.tpot_ms[1], 30.0);
  for (int s = 2; s < 8; ++s) {
    EXPECT_NEAR(paced.tpot_ms[s], 30.0 + base.tpot_ms[s] - base.tpot_ms[s - 1], 1e-6)
        << "step " << s;
  }
}

// A narrow KV (INT8 under BF16 attention) pays kv_dequant_flops_per_element vector FLOPs per
// element beside the attention's arithmetic. At 200 and 400 FLOPs per element the attention is
// bound by the conversion (11 and 22 ps per byte against 0.6 ps per byte of HBM), so the tiles'
// compute runs back to back behind the first landing and the step grows by exactly the extra
// conversion time: 32 layers x 512 tokens x 2 x 4096 elements x 200 FLOPs at the A100's vector
// rate (19.5 TFLOP/s FP32 x 0.92). A KV in the compute dtype pays nothing.
TEST(Decode, NarrowKvPaysItsDequantisationAtTheVectorRate) {
  const std::string int8 = "--set workload.model.kv_dtype=INT8 ";
  DecodeRun f200 = run_decode(int8 + "--set software.kv_dequant_flops_per_element=200");
  DecodeRun f400 = run_decode(int8 + "--set software.kv_dequant_flops_per_element=400");
  ASSERT_EQ(f200.tpot_ms.size(), 8u);
  ASSERT_EQ(f400.tpot_ms.size(), 8u);
  const double extra_ms = kLayers * 512 * 2 * kHidden * 200 / (19.5e12 * 0.92) * 1e3;
  EXPECT_NEAR(f400.tpot_ms[0] - f200.tpot_ms[0], extra_ms, extra_ms * 1e-6);
  // Bound by the conversion, not the stream: the 200-FLOP step is well above its bandwidth time.
  EXPECT_GT(f200.tpot_ms[0], hand_tpot_ms(0, kHbmBw) + extra_ms * 0.9);
  DecodeRun bf16 = run_decode("");
  DecodeRun bf16_f = run_decode("--set software.kv_dequant_flops_per_element=400");
  EXPECT_EQ(bf16.tpot_ms, bf16_f.tpot_ms);
}

// W8A8 GEMMs (gemm_dtype FP8 beside BF16 activations) on an H100, batch 1024 (compute-bound
// projections): the four projections of every layer run at the FP8 peak, half the time of the
// same FP8-weight model computing in BF16; attention and the all-reduces (TP2) stay in BF16 and
// take the same time; with a stack that fuses no elementwise work, each FP8 GEMM launches its
// input quantisation as one more kernel.
TEST(Decode, W8a8GemmsRunAtTheNarrowPeakAndCollectivesStayWide) {
  struct Kind {
    double ps = 0, flops = 0;
  };
  auto run = [](const std::string& gemm, std::map<std::string, Kind>& by_kind, double& kernels) {
    const std::string out =
        (fs::temp_directory_path() / ("tiersim_w8a8_" + gemm + std::to_string(getpid()) + ".h5"))
            .string();
    const std::string cmd =
        test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
        test::preset("models/llama2_7b.textproto") + " " +
        test::preset("software/cuda_events_per_kernel.textproto") + " " +
        test::preset("studies/default.textproto") +
        " --set workload.model.weight_dtype=FP8 --set workload.model.gemm_dtype=" + gemm +
        " --set workload.parallelism.tensor_parallel=2 --set workload.decode.batch_size=1024"
        " --set workload.decode.context_tokens=16 --set workload.decode.decode_steps=1"
        " --set run.op_records=OP_RECORDS_FIRST_STEP --quiet --out " +
        out;
    auto r = test::run_cmd(cmd);
    ASSERT_EQ(r.code, 0) << r.err;
    ResultReader h(out);
    const Table ops = h.read_table("/ops");
    const auto& kind = ops.find("kind")->str;
    const auto& start = ops.find("start_ps")->u64;
    const auto& end = ops.find("end_ps")->u64;
    const auto& flops = ops.find("flops")->f64;
    for (size_t i = 0; i < kind.size(); ++i) {
      by_kind[kind[i]].ps += double(end[i] - start[i]);
      by_kind[kind[i]].flops += flops[i];
    }
    kernels = h.read_doubles("/stats/compute/kernels").back();
    fs::remove(out);
  };
  std::map<std::string, Kind> fp8, bf16;
  double fp8_kernels = 0, bf16_kernels = 0;
  run("FP8", fp8, fp8_kernels);
  run("BF16", bf16, bf16_kernels);
  ASSERT_FALSE(HasFailure());
  // Per kind: 32 ops; with FP8 each pays one more 5 us kernel overhead (the quantisation) and
  // its arithmetic at the FP8 rate instead of BF16 (peak x 0.75 x M / (M + 45), M = 1024); the
  // first tile's landing and the activations' SRAM traffic are the same in both runs.
  const double shape = 0.75 * 1024 / (1024 + 45.0);
  for (const char* k : {"qkv_proj", "out_proj", "gate_up_proj", "down_proj"}) {
    ASSERT_EQ(fp8[k].flops, bf16[k].flops) << k;
    const double saved_ps =
        fp8[k].flops / (989.4e12 * shape) * 1e12 - fp8[k].flops / (1978.9e12 * shape) * 1e12;
    EXPECT_NEAR(bf16[k].ps - (fp8[k].ps - kLayers * 5e6), saved_ps, saved_ps * 1e-3) << k;
  }
  // Attention, the LM head (BF16 weights) and the collectives stay in BF16.
  EXPECT_DOUBLE_EQ(fp8["attention"].ps, bf16["attention"].ps);
  EXPECT_DOUBLE_EQ(fp8["lm_head"].ps, bf16["lm_head"].ps);
  EXPECT_GT(fp8["lm_head"].ps, 0);
  EXPECT_DOUBLE_EQ(fp8["all_reduce"].ps, bf16["all_reduce"].ps);
  EXPECT_GT(fp8["all_reduce"].ps, 0);
  EXPECT_EQ(fp8_kernels - bf16_kernels, 4 * kLayers);
}

// The TP8 speed target (Llama-3-70B on 8 H100, batch 64): every collective of a step takes
// the collective model's time. Hand values (AUTO picks one-shot for these sizes):
// - all-reduce of 64 x 8192 x 2 = 1,048,576 bytes: ring 14 x 2 us + 2 x 7 x 131,072 B / 380 GB/s
//   = 32.83 us, one-shot 2 us + 7 x 1,048,576 B / 380 GB/s = 21.316 us; + 5 us launch;
// - all-gather of 64 x 16,032 x 2 = 2,052,096 logit bytes per rank: one-shot 2 us +
//   7 x 2,052,096 B / 380 GB/s = 39.801 us; + 5 us launch.
// One embedding all-reduce, 2 x 80 layer all-reduces and one all-gather per step.
TEST(Decode, Tp8CollectivesTakeTheCollectiveModelsTime) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_tp8_" + std::to_string(getpid()) + ".h5")).string();
  const std::string cmd =
      test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("models/llama3_70b.textproto") + " " +
      test::preset("software/cuda_events_per_kernel.textproto") + " " +
      test::preset("studies/speed_70b_tp8.textproto") +
      " --set workload.decode.decode_steps=2 --set run.op_records=OP_RECORDS_ALL --quiet --out " +
      out;
  auto r = test::run_cmd(cmd);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  const double all_reduce_us = 5 + 2 + 7 * 1048576 / 380e9 * 1e6;
  const double all_gather_us = 5 + 2 + 7 * 2052096 / 380e9 * 1e6;
  const auto collective = h.read_doubles("/stats/compute/collective_time");
  ASSERT_FALSE(collective.empty());
  EXPECT_NEAR(collective.back() * 1e-6, 2 * (161 * all_reduce_us + all_gather_us), 1e-3);
  // Each all-reduce op: the collective plus its kernel overhead (5 us) and the SRAM reads and
  // writes of 1 MiB of activations (under 0.2 us).
  const Table ops = h.read_table("/ops");
  const auto& kind = ops.find("kind")->str;
  const auto& start = ops.find("start_ps")->u64;
  const auto& end = ops.find("end_ps")->u64;
  int n = 0;
  for (size_t i = 0; i < kind.size(); ++i) {
    if (kind[i] != "all_reduce") continue;
    ++n;
    const double us = (end[i] - start[i]) * 1e-6;
    EXPECT_GE(us, all_reduce_us + 5 - 1e-3);
    EXPECT_LE(us, all_reduce_us + 5 + 0.2);
  }
  EXPECT_EQ(n, 2 * 161);
  fs::remove(out);
}

// Speculative decoding end to end (configs/studies/speculative_70b_tp8.textproto: gamma 4,
// alpha 0.8, batch 16): accepted tokens per verify within 2% of (1 - 0.8^5) / 0.2 = 3.3616; each
// step's TPOT is its latency over the tokens each sequence gained; speculation beats plain decode
// of the same batch.
TEST(Decode, SpeculativeTokensPerVerifyAndTpot) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_spec_" + std::to_string(getpid()) + ".h5")).string();
  const std::string base = test::tiersim_binary() + " run " +
                           test::preset("hardware/h100_sxm.textproto") + " " +
                           test::preset("models/llama3_70b.textproto") + " " +
                           test::preset("software/cuda_events_per_kernel.textproto") + " " +
                           test::preset("studies/speculative_70b_tp8.textproto") + " --quiet";
  auto r = test::run_cmd(base + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  double per_verify = -1, tokens_per_s = 0;
  {
    ResultReader h(out);
    for (const auto& s : h.summary()) {
      if (s.name == "spec_tokens_per_verify") per_verify = s.value;
      if (s.name == "tokens_per_s") tokens_per_s = s.value;
    }
    const Table t = h.read_table("/tokens");
    const auto& latency = t.find("latency_ms")->f64;
    const auto& tpot = t.find("tpot_ms")->f64;
    const auto& tokens = t.find("tokens")->u64;
    ASSERT_EQ(tokens.size(), 64u);
    for (size_t i = 0; i < tokens.size(); ++i) {
      EXPECT_GE(tokens[i], 16u);
      EXPECT_LE(tokens[i], 16u * 5);
      EXPECT_NEAR(tpot[i], latency[i] * 16 / double(tokens[i]), 1e-9);
    }
  }
  EXPECT_NEAR(per_verify / ((1 - std::pow(0.8, 5)) / 0.2), 1.0, 0.02);
  // The same batch without speculation: one token per sequence per step.
  auto plain = test::run_cmd(
      test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("models/llama3_70b.textproto") + " " +
      test::preset("software/cuda_events_per_kernel.textproto") + " " +
      test::preset("studies/speed_70b_tp8.textproto") +
      " --set workload.decode.batch_size=16 --set workload.decode.decode_steps=64 --quiet --out " +
      out);
  ASSERT_EQ(plain.code, 0) << plain.err;
  ResultReader h(out);
  double plain_tokens_per_s = 0;
  for (const auto& s : h.summary()) {
    if (s.name == "tokens_per_s") plain_tokens_per_s = s.value;
  }
  EXPECT_GT(tokens_per_s, 1.5 * plain_tokens_per_s);
  fs::remove(out);
}

// The T4 preset's GDDR6 (gddr kind): 8 devices x 32 pins x 10 Gb/s = 320 GB/s at 0.82
// efficiency. A batch-1 gate/up projection of Llama-2-7B (2 x 4096 x 11008 FP16 weights) streams
// in bytes / 262.4 GB/s plus the 5 us kernel overhead and the 0.6 us latency (within 1%).
TEST(Decode, T4GddrStreamsAtItsEffectiveBandwidth) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_t4_" + std::to_string(getpid()) + ".h5")).string();
  auto r = test::run_cmd(
      test::tiersim_binary() + " run " + test::preset("hardware/t4.textproto") + " " +
      test::preset("models/llama2_7b.textproto") + " " + test::preset("studies/default.textproto") +
      " --set workload.model.weight_dtype=FP16 --set workload.model.kv_dtype=FP16"
      " --set workload.model.activation_dtype=FP16 --set workload.decode.decode_steps=1"
      " --set system.components[compute].compute.gemm_half_efficiency_rows=0 --quiet --out " +
      out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  const Table ops = h.read_table("/ops");
  const auto& kind = ops.find("kind")->str;
  const auto& start = ops.find("start_ps")->u64;
  const auto& end = ops.find("end_ps")->u64;
  const auto& bytes = ops.find("offchip_bytes")->u64;
  int n = 0;
  for (size_t i = 0; i < kind.size(); ++i) {
    if (kind[i] != "gate_up_proj") continue;
    ++n;
    EXPECT_EQ(bytes[i], 2ull * 4096 * 11008 * 2);
    const double expected_us = double(bytes[i]) / (320e9 * 0.82) * 1e6 + 5 + 0.6;
    EXPECT_NEAR((end[i] - start[i]) * 1e-6, expected_us, expected_us * 0.01);
  }
  EXPECT_EQ(n, 32);
  fs::remove(out);
}

std::map<std::string, double> summary_map(const ResultReader& h) {
  std::map<std::string, double> s;
  for (const auto& item : h.summary())
    s[item.name] = item.value;
  return s;
}

// Energy by path, derived by hand from the run's byte counts and the H100 preset's constants:
// every HBM byte pays the device (3.9 pJ/bit), the PHY and controller (2.0) and the wires (5.4);
// every SRAM byte of this run is a staging buffer or the activation area, local SRAM (0.6); every
// FLOP 0.71 pJ; each of the 5 stacks draws 0.384 W standby and 0.499 W refresh (x1 at the
// default 85 C) for the whole run, plus 0.144 W while serving (its channel servers' busy time:
// the utilization stat x time x stacks). The default decode puts the HBM path above the staging
// SRAM by far (before path energy, the 6 pJ/bit global-SRAM charge on every staged byte made
// the SRAM three times the HBM).
TEST(Decode, EnergyIsEachHopAtItsCost) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_energy_" + std::to_string(getpid()) + ".h5")).string();
  auto r = test::run_cmd(
      test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("models/llama3_8b.textproto") + " " + test::preset("studies/default.textproto") +
      " --set workload.decode.decode_steps=4 --quiet --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  auto s = summary_map(h);
  const double tokens = s["tokens_generated"], t = s["sim_time_s"];
  const double hbm_bits = s["hbm_bytes_per_token"] * tokens * 8;
  const double sram_bits = s["sram_bytes_per_token"] * tokens * 8;
  const double busy_stack_s = h.read_doubles("/stats/hbm/utilization").back() * t * 5;
  EXPECT_NEAR(s["energy_j_path_dram_core"], hbm_bits * 3.9e-12, 1e-9);
  EXPECT_NEAR(s["energy_j_path_phy_controller"], hbm_bits * 2.0e-12, 1e-9);
  EXPECT_NEAR(s["energy_j_path_package_wires"], hbm_bits * 5.4e-12, 1e-9);
  EXPECT_NEAR(s["energy_j_static_dram_background"], 5 * 0.384 * t + 0.144 * busy_stack_s, 1e-9);
  EXPECT_NEAR(s["energy_j_static_dram_refresh"], 5 * 0.499 * t, 1e-9);
  EXPECT_NEAR(s["energy_j_hbm"],
              hbm_bits * 11.3e-12 + 5 * (0.384 + 0.499) * t + 0.144 * busy_stack_s, 1e-9);
  EXPECT_NEAR(s["energy_j_sram"], sram_bits * 0.6e-12, 1e-9);
  EXPECT_NEAR(s["energy_j_path_local_sram"], s["energy_j_sram"], 1e-12);
  EXPECT_EQ(s.count("energy_j_path_sram_array"), 0u);  // no global SRAM access in this run
  const double flops = h.read_doubles("/stats/compute/flops").back();
  // The board: static power the whole run, active power while the device works (the run's
  // time less its waits for the host's launches and its idle waits).
  const double active_s = t - 1e-12 * (h.read_doubles("/stats/compute/host_wait_time").back() +
                                       h.read_doubles("/stats/compute/idle_time").back());
  EXPECT_GT(active_s, 0.5 * t);
  EXPECT_NEAR(s["energy_j_static_compute_static"], 121.7 * t, 1e-9);
  EXPECT_NEAR(s["energy_j_static_compute_active"], 158 * active_s, 1e-9);
  EXPECT_NEAR(s["energy_j_compute"], flops * 0.71e-12 + 121.7 * t + 158 * active_s, 1e-9);
  EXPECT_NEAR(s["energy_j"], s["energy_j_hbm"] + s["energy_j_sram"] + s["energy_j_compute"], 1e-9);
  EXPECT_NEAR(s["energy_j"], s["energy_j_dynamic"] + s["energy_j_static"], 1e-9);
  EXPECT_NEAR(s["energy_j_per_token"], s["energy_j"] / tokens, 1e-12);
  EXPECT_NEAR(s["power_w_mean"], s["energy_j"] / t, 1e-6);
  EXPECT_NEAR(s["power_w_hbm"], s["energy_j_hbm"] / t, 1e-6);
  // The HBM path (device, PHY, wires) costs more than the staging SRAM it fills.
  const double hbm_path = s["energy_j_path_dram_core"] + s["energy_j_path_phy_controller"] +
                          s["energy_j_path_package_wires"];
  EXPECT_GT(hbm_path, 5 * s["energy_j_path_local_sram"]);
  std::cout << "default decode (4 steps): HBM path " << hbm_path << " J, staging SRAM "
            << s["energy_j_path_local_sram"] << " J, HBM background+refresh "
            << s["energy_j_static_dram_background"] + s["energy_j_static_dram_refresh"] << " J, "
            << s["energy_j_per_token"] << " J/token\n";
  fs::remove(out);
  // Static power adds power x simulated time.
  r = test::run_cmd(test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") +
                    " " + test::preset("models/llama3_8b.textproto") + " " +
                    test::preset("studies/default.textproto") +
                    " --set workload.decode.decode_steps=4"
                    " --set system.components[hbm].hbm.static_power_w=10 --quiet --out " +
                    out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h2(out);
  auto s2 = summary_map(h2);
  EXPECT_NEAR(s2["energy_j_hbm"] - s["energy_j_hbm"], 10 * s2["sim_time_s"], 1e-9);
  EXPECT_NEAR(s2["energy_j_static_device_static"], 10 * s2["sim_time_s"], 1e-9);
  fs::remove(out);
}

// The power time series (/stats/power/*, sampled every run.stats_interval_ps and at the end):
// each sample is the mean power over its interval, so power x interval summed over the samples
// is the run's energy; the components' and the parts' columns each add up to the total.
TEST(Decode, PowerTimeSeriesIntegratesToTheEnergy) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_power_" + std::to_string(getpid()) + ".h5")).string();
  auto r = test::run_cmd(
      test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("models/llama3_8b.textproto") + " " + test::preset("studies/default.textproto") +
      " --set workload.decode.decode_steps=4 --quiet --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  auto s = summary_map(h);
  const auto times = h.read_doubles("/stats/time_ps");
  const auto total = h.read_doubles("/stats/power/total");
  const auto component = h.read_doubles("/stats/power/component");
  const auto part = h.read_doubles("/stats/power/part");
  ASSERT_GT(times.size(), 3u);  // ~28 ms at 1 ms intervals, and the end
  ASSERT_EQ(total.size(), times.size());
  const size_t nc = component.size() / times.size(), np = part.size() / times.size();
  EXPECT_EQ(nc, 3u);  // hbm, sram, compute
  EXPECT_EQ(h.attribute("/stats/power/component", "labels"), "hbm,sram,compute");
  double energy = 0, previous = 0;
  for (size_t i = 0; i < times.size(); ++i) {
    energy += total[i] * (times[i] - previous) * 1e-12;
    previous = times[i];
    double sum_c = 0, sum_p = 0;
    for (size_t c = 0; c < nc; ++c)
      sum_c += component[i * nc + c];
    for (size_t p = 0; p < np; ++p)
      sum_p += part[i * np + p];
    EXPECT_NEAR(sum_c, total[i], 1e-9 * total[i]);
    EXPECT_NEAR(sum_p, total[i], 1e-9 * total[i]);
  }
  EXPECT_NEAR(energy, s["energy_j"], 1e-9 * s["energy_j"]);
  fs::remove(out);
}

// Every energy parameter moves its own part of the breakdown by what it says (H100 decode,
// 2 steps; links: the T4 offload to host DDR over PCIe; the controller: wired residency).
TEST(Decode, EveryEnergyParameterChangesItsPart) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_eparam_" + std::to_string(getpid()) + ".h5")).string();
  auto run = [&](const std::string& files, const std::string& sets) {
    auto r = test::run_cmd(test::tiersim_binary() + " run " + files +
                           " --set workload.decode.decode_steps=2 --quiet --out " + out + sets);
    EXPECT_EQ(r.code, 0) << r.err;
    std::map<std::string, double> s;
    if (r.code != 0) return s;
    ResultReader h(out);
    s = summary_map(h);
    if (h.exists("/stats/hbm/utilization")) {
      s["hbm_utilization"] = h.read_doubles("/stats/hbm/utilization").back();
    }
    fs::remove(out);
    return s;
  };
  const std::string h100 = test::preset("hardware/h100_sxm.textproto") + " " +
                           test::preset("models/llama3_8b.textproto") + " " +
                           test::preset("studies/default.textproto");
  const std::string hbm = " --set system.components[hbm].hbm.";
  const auto base = run(h100, "");
  ASSERT_FALSE(base.empty());
  const double hbm_bits = base.at("hbm_bytes_per_token") * base.at("tokens_generated") * 8;
  const double sram_bits = base.at("sram_bytes_per_token") * base.at("tokens_generated") * 8;
  auto at = [](const std::map<std::string, double>& m, const std::string& k) {
    return m.count(k) ? m.at(k) : 0.0;
  };
  {
    auto m = run(h100, hbm + "phy_energy_pj_per_bit=3");
    EXPECT_NEAR(at(m, "energy_j_path_phy_controller"), hbm_bits * 3e-12, 1e-9);
  }
  {
    auto m = run(h100, hbm + "wire_energy_pj_per_bit=7");
    EXPECT_NEAR(at(m, "energy_j_path_package_wires"), hbm_bits * 7e-12, 1e-9);
  }
  {
    auto m = run(h100, hbm + "idle_power_w=1" + hbm + "active_power_w=2");
    const double t = m.at("sim_time_s"), busy = m.at("hbm_utilization") * t * 5;
    EXPECT_NEAR(at(m, "energy_j_static_dram_background"), 5 * 1 * t + 2 * busy, 1e-9);
    EXPECT_GT(busy, 0.5 * 5 * t);  // decode keeps the stacks busy most of the time
  }
  {
    // Refresh follows the stacks' refresh multiplier: x1 at 85 C, x2 just above.
    auto m85 = run(h100, hbm + "refresh_power_w=2" + hbm + "temperature_c=85");
    auto m86 = run(h100, hbm + "refresh_power_w=2" + hbm + "temperature_c=85.5");
    EXPECT_NEAR(at(m85, "energy_j_static_dram_refresh"), 5 * 2 * m85.at("sim_time_s"), 1e-9);
    EXPECT_NEAR(at(m86, "energy_j_static_dram_refresh"), 5 * 2 * 2 * m86.at("sim_time_s"), 1e-9);
  }
  {
    auto m = run(h100, " --set system.components[sram].sram.local_energy_pj_per_bit=1.5");
    EXPECT_NEAR(at(m, "energy_j_path_local_sram"), sram_bits * 1.5e-12, 1e-9);
  }
  {
    // Without a local rate, staging traffic pays as global accesses: array and wires.
    auto m = run(h100,
                 " --set system.components[sram].sram.local_energy_pj_per_bit=0.6"
                 " --set system.components[sram].sram.wire_energy_pj_per_bit=9");
    EXPECT_NEAR(at(m, "energy_j_path_local_sram"), sram_bits * 0.6e-12, 1e-9);
    EXPECT_EQ(at(m, "energy_j_path_sram_wires"), 0);  // local buffers pay no global wires
  }
  {
    auto m = run(h100, " --set system.components[compute].compute.static_power_w=50");
    EXPECT_NEAR(at(m, "energy_j_static_compute_static"), 50 * m.at("sim_time_s"), 1e-9);
  }
  {
    // Active power scales with its field; 0 removes the part.
    auto m = run(h100, " --set system.components[compute].compute.active_power_w=79");
    EXPECT_NEAR(at(m, "energy_j_static_compute_active"),
                at(base, "energy_j_static_compute_active") / 2, 1e-9);
    m = run(h100, " --set system.components[compute].compute.active_power_w=0");
    EXPECT_EQ(at(m, "energy_j_static_compute_active"), 0);
    EXPECT_NEAR(at(m, "energy_j"),
                at(base, "energy_j") - at(base, "energy_j_static_compute_active"), 1e-9);
  }
  // Links: retimers per bit and lasers per direction (the T4 offload's PCIe link, one DMA).
  const std::string t4 = test::preset("hardware/t4.textproto") + " " +
                         test::preset("hardware/fragments/t4_weights_in_host_ddr.textproto") + " " +
                         test::preset("models/llama2_7b.textproto") + " " +
                         test::preset("studies/default.textproto") +
                         " --set workload.model.weight_dtype=FP16"
                         " --set workload.model.kv_dtype=FP16"
                         " --set workload.model.activation_dtype=FP16";
  {
    auto m = run(t4,
                 " --set system.links[dma_host_ddr].serial.retimers=2"
                 " --set system.links[dma_host_ddr].serial.retimer_latency_ps=10000"
                 " --set system.links[dma_host_ddr].serial.retimer_energy_pj_per_bit=1.5"
                 " --set system.links[dma_host_ddr].serial.laser_power_w=3");
    const double ddr_bits = at(m, "ddr_bytes_per_token") * at(m, "tokens_generated") * 8;
    EXPECT_NEAR(at(m, "energy_j_path_link_retimers"), ddr_bits * 2 * 1.5e-12, 1e-9);
    EXPECT_NEAR(at(m, "energy_j_path_link_serdes"), ddr_bits * 5e-12, 1e-9);
    EXPECT_NEAR(at(m, "energy_j_static_laser"), 2 * 3 * at(m, "sim_time_s"), 1e-9);
  }
  // The movement controller's power (wired residency runs ORCHESTRATED).
  {
    auto m = run(test::preset("hardware/h100_sxm.textproto") + " " +
                     test::preset("memory/hrm_sram_4x4.textproto") + " " +
                     test::preset("hardware/fragments/h100_with_hrm.textproto") + " " +
                     test::preset("models/llama3_2_1b.textproto") + " " +
                     test::preset("software/cuda_events_per_kernel.textproto") + " " +
                     test::preset("studies/wired_hrm_llama3_2_1b.textproto"),
                 " --set policy.orchestration.controller_power_w=25");
    EXPECT_NEAR(at(m, "energy_j_static_controller"), 25 * at(m, "sim_time_s"), 1e-9);
  }
}

// Energy and power fields must be finite and zero or positive: exit 2 naming the field.
TEST(Decode, BadEnergyParametersAreConfigErrors) {
  const std::string base = test::tiersim_binary() + " run " +
                           test::preset("hardware/h100_sxm.textproto") + " " +
                           test::preset("models/llama3_8b.textproto") + " " +
                           test::preset("studies/default.textproto") + " --quiet";
  for (const std::string field :
       {"system.components[hbm].hbm.idle_power_w", "system.components[hbm].hbm.refresh_power_w",
        "system.components[hbm].hbm.phy_energy_pj_per_bit",
        "system.components[sram].sram.local_energy_pj_per_bit",
        "system.components[sram].sram.wire_energy_pj_per_bit"}) {
    auto r = test::run_cmd(base + " --set " + field + "=-1");
    EXPECT_EQ(r.code, 2) << field;
    EXPECT_NE(r.err.find(field + ": must be finite and zero or positive"), std::string::npos)
        << r.err;
  }
  // Not finite, in a file (text format reads inf and nan).
  const std::string frag =
      (fs::temp_directory_path() / ("tiersim_inf_" + std::to_string(getpid()) + ".textproto"))
          .string();
  {
    std::ofstream f(frag);
    f << "system { components { name: \"hbm\" hbm { active_power_w: inf } } }\n";
  }
  auto r = test::run_cmd(base + " " + frag);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("system.components[hbm].hbm.active_power_w: expected a finite number"),
            std::string::npos)
      << r.err;
  {
    std::ofstream f(frag);
    f << "system { links { name: \"x\" serial { laser_power_w: nan } } }\n";
  }
  r = test::run_cmd(base + " " + frag);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("laser_power_w: expected a finite number"), std::string::npos) << r.err;
  fs::remove(frag);
}

// Weights and KV in host DDR behind the T4's PCIe Gen3 x16 link (a serial link on the DMA's
// link): every byte of a step crosses PCIe at 16 x 8 Gb/s x 128/130 x 0.8 = 12.6 GB/s, so the
// time per token is the bytes over that rate (within 0.5%: kernel overheads and the link's
// latency add the rest). A serial model on a link that no DMA engine drives is an error.
TEST(Decode, WeightsInHostDdrStreamOverThePcieLink) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_offload_" + std::to_string(getpid()) + ".h5"))
          .string();
  const std::string base =
      test::tiersim_binary() + " run " + test::preset("hardware/t4.textproto") + " " +
      test::preset("hardware/fragments/t4_weights_in_host_ddr.textproto") + " " +
      test::preset("models/llama2_7b.textproto") + " " + test::preset("studies/default.textproto") +
      " --set workload.model.weight_dtype=FP16 --set workload.model.kv_dtype=FP16"
      " --set workload.model.activation_dtype=FP16 --set workload.decode.decode_steps=2 --quiet";
  auto r = test::run_cmd(base + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  std::map<std::string, double> s;
  for (const auto& item : h.summary())
    s[item.name] = item.value;
  EXPECT_EQ(s["hbm_bytes_per_token"], 0.0);
  const double pcie = 16 * 8e9 / 8 * 128.0 / 130 * 0.8;
  const double expected_ms = s["ddr_bytes_per_token"] / pcie * 1e3;
  EXPECT_NEAR(s["tpot_ms_mean"], expected_ms, expected_ms * 0.005);
  EXPECT_GT(s["tpot_ms_mean"], expected_ms);
  // Every DDR byte crosses the link: 5 pJ/bit on the DMA engine's account, 20 on the DDR's.
  const double ddr_bits = s["ddr_bytes_per_token"] * s["tokens_generated"] * 8;
  EXPECT_NEAR(s["energy_j_dma"], ddr_bits * 5e-12, 1e-9);
  EXPECT_NEAR(s["energy_j_host_ddr"], ddr_bits * 20e-12, 1e-9);
  fs::remove(out);
  r = test::run_cmd(base +
                    " --set 'system.links[compute_sram].serial={lanes: 1 lane_rate_gbps: 1}'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("only DMA engines and switches drive a serial link model"),
            std::string::npos)
      << r.err;
}

// Weights and KV in a CXL.mem expander behind a CXL switch: a decode step streams its bytes at
// the expander's read-tracker bound (25 x 64 B / 89.167 ns = 17.94 GB/s, below the x8 link's
// 27.5 GB/s), within 2%. Faults in a whole run: a switch link down for 2 ms delays the step it
// hits by about that much and loses nothing; the expander going offline for good fails the
// transfers after it, and the run still completes and reports every count.
TEST(Decode, WeightsInCxlBehindASwitchAndFaults) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_cxl_" + std::to_string(getpid()) + ".h5")).string();
  const std::string base =
      test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("memory/cxl_type3_gen5_x8.textproto") + " " +
      test::preset("switches/cxl_switch_gen5.textproto") + " " +
      test::preset("hardware/fragments/h100_weights_in_cxl.textproto") + " " +
      test::preset("models/llama3_8b.textproto") + " " + test::preset("studies/default.textproto") +
      " --set workload.decode.decode_steps=3 --quiet --out " + out;
  auto summary = [&](const std::string& extra) {
    auto r = test::run_cmd(base + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    std::map<std::string, double> s;
    ResultReader h(out);
    for (const auto& item : h.summary())
      s[item.name] = item.value;
    fs::remove(out);
    return s;
  };
  auto s = summary("");
  const double trackers = 25 * 64 / 89.167e-9;
  const double expected_ms = s["cxl_bytes_per_token"] / trackers * 1e3;
  EXPECT_NEAR(s["tpot_ms_mean"], expected_ms, expected_ms * 0.02);
  EXPECT_EQ(s.count("transfers_failed"), 0u);  // no faults configured: no fault counts

  // 2 ms down in the middle of step 1 (steps take ~0.85 s), 40 times the DMA's 50 us completion
  // timeout: the transfers that meet the outage fail at their deadline instead of waiting, and
  // the run goes on.
  const std::string cut =
      " --set 'system={faults {name: \"cut\" start_ps: 1200000000000 duration_ps: 2000000000 "
      "link_down: \"switch_cxl\"}}'";
  auto down = summary(cut);
  EXPECT_GT(down["transfers_failed"], 0);
  EXPECT_GT(down["transfers_completed"], 0);
  EXPECT_EQ(down["decode_steps"], 3);
  // With a completion timeout longer than the outage they wait: that step is ~2 ms longer.
  auto patient =
      summary(cut + " --set system.components[dma].dma.completion_timeout_ps=5000000000");
  EXPECT_EQ(patient["transfers_failed"], 0);
  EXPECT_GT(patient["transfers_completed"], 0);
  EXPECT_NEAR(patient["sim_time_s"] - s["sim_time_s"], 2e-3, 0.5e-3);

  // Offline for good from 1.2 s: every later transfer to it fails after the 50 us timeout.
  auto gone = summary(
      " --set 'system={faults {name: \"gone\" start_ps: 1200000000000 "
      "device_offline: \"cxl_mem\"}}'");
  EXPECT_GT(gone["transfers_failed"], 0);
  EXPECT_GT(gone["transfers_completed"], 0);
  EXPECT_EQ(gone["decode_steps"], 3);
  // The expander served only the completed transfers (weights reads and KV writes).
  EXPECT_LT(gone["cxl_bytes_per_token"], s["cxl_bytes_per_token"]);
}

// The compute engine's staging buffers follow the scratchpad state machine in whole runs (dense
// decode, MoE decode with 1 buffer, serving with preemption): no operation is ever refused.
TEST(Decode, StagingBuffersStayLegalInWholeRuns) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_stage_" + std::to_string(getpid()) + ".h5")).string();
  const std::vector<std::string> runs = {
      test::preset("hardware/h100_sxm.textproto") + " " +
          test::preset("models/llama3_8b.textproto") + " " +
          test::preset("studies/default.textproto") + " --set workload.decode.decode_steps=4",
      test::preset("hardware/h200.textproto") + " " +
          test::preset("models/mixtral_8x7b.textproto") + " " +
          test::preset("studies/mixtral_8x7b.textproto") +
          " --set workload.decode.decode_steps=2"
          " --set system.components[compute].compute.staging_buffers=1",
      test::preset("hardware/h100_sxm.textproto") + " " +
          test::preset("models/llama3_8b.textproto") + " " +
          test::preset("studies/serving_llama3_8b.textproto") +
          " --set workload.serving.poisson.requests=12"};
  for (const auto& args : runs) {
    auto r = test::run_cmd(test::tiersim_binary() + " run " + args + " --quiet --out " + out);
    ASSERT_EQ(r.code, 0) << args << "\n" << r.err;
    ResultReader h(out);
    const auto violations = h.read_doubles("/stats/compute/staging_violations");
    const auto tiles = h.read_doubles("/stats/compute/tiles");
    ASSERT_FALSE(violations.empty());
    EXPECT_EQ(violations.back(), 0) << args;
    EXPECT_GT(tiles.back(), 0) << args;
    fs::remove(out);
  }
}

// Speculative, sparse and paging settings are checked before anything runs (exit 2, path named).
TEST(Decode, BadSpeculativeAndSparseSettingsAreRejected) {
  const std::string base = test::tiersim_binary() + " run " +
                           test::preset("hardware/h100_sxm.textproto") + " " +
                           test::preset("models/llama3_8b.textproto") + " " +
                           test::preset("studies/default.textproto") + " --quiet";
  struct Case {
    const char* set;
    const char* message;
  };
  const Case cases[] = {
      {"'workload.decode.speculative={draft_tokens: 4 acceptance_rate: 0.5}'",
       "workload.decode.speculative.draft: required field is not set"},
      {"'workload.decode.speculative={draft_tokens: 4 acceptance_rate: 1.5 draft {name: \"d\" "
       "layers: 2 hidden_size: 1024 heads: 8 kv_heads: 8 ffn_size: 2816 vocab_size: 128256 "
       "tied_embeddings: true mlp: SWIGLU norm: RMSNORM positional: ROPE weight_dtype: BF16 "
       "kv_dtype: BF16 activation_dtype: BF16}}'",
       "workload.decode.speculative.acceptance_rate: must be in [0, 1]"},
      {"'workload.decode.sparse_attention={page_locality: 2}'",
       "workload.decode.sparse_attention.top_k_pages: required field is not set"},
      {"workload.decode.kv_block_tokens=32",
       "workload.decode.kv_block_tokens: only sparse_attention uses pages in decode"},
  };
  for (const auto& c : cases) {
    auto r = test::run_cmd(base + " --set " + c.set);
    EXPECT_EQ(r.code, 2) << c.set;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace tiersim
