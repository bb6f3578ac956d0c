// Shared by the movement-controller integration tests (orchestration_*_test.cc): whole runs of
// `tiersim run` on the shipped presets, their summaries, and refusal checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace orchestration_test {

namespace fs = std::filesystem;

inline std::string base() {
  return test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
         test::preset("memory/ddr5_4800_8ch.textproto") + " " +
         test::preset("hardware/fragments/h100_weights_in_host_ddr.textproto") + " " +
         test::preset("models/llama3_70b.textproto") + " " +
         test::preset("studies/offload_prefetch_70b_tp8.textproto") +
         " --set workload.decode.decode_steps=8 --quiet";
}

// Runs `cmd` with a result file of its own and returns the summary (plus `ssd_bytes_read` when
// the system has the SSD), or {"exit": code} when the run failed; `err` gets its stderr.
inline std::map<std::string, double> summary_of(const std::string& cmd,
                                                std::string* err = nullptr) {
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

inline std::map<std::string, double> run(const std::string& extra, std::string* err = nullptr) {
  return summary_of(base() + " " + extra, err);
}

// `tiersim run` over the listed presets (configs/ paths without the extension) and overrides.
inline std::map<std::string, double> run_presets(const std::vector<std::string>& presets,
                                                 const std::string& extra,
                                                 std::string* err = nullptr) {
  std::string cmd = test::tiersim_binary() + " run";
  for (const auto& p : presets)
    cmd += " " + test::preset(p + ".textproto");
  return summary_of(cmd + " --quiet " + extra, err);
}

// Llama-3-8B on H100 with its weights at home in host DDR (the dynamic-cache experiments);
// `extra` sets the rest.
inline std::map<std::string, double> run_8b(const std::string& extra) {
  auto m = run_presets(
      {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
       "models/llama3_8b", "studies/offload_prefetch_70b_tp8"},
      extra);
  EXPECT_EQ(m.count("exit"), 0u) << extra;
  return m;
}

// The 4 GB dynamic page cache of those experiments on the on-accelerator controller.
inline std::string cache_8b(uint32_t steps) {
  return test::preset("controllers/on_accelerator.textproto") +
         " --set workload.parallelism.tensor_parallel=1 --set workload.decode.decode_steps=" +
         std::to_string(steps) +
         " --set policy.orchestration.prefetch_layers=0"
         " --set policy.orchestration.resident_fraction=0"
         " --set policy.orchestration.cache_bytes=4000000000 ";
}

// FlexGen's setting on the T4 (validation row V6, OPT-30B policy) with a smaller model: OPT-6.7B
// cut to 4 layers, 12 sequences in 3 micro-batches, a 512-token prompt prefilled, 4 decode steps.
inline std::string flexgen(const std::string& extra, bool ssd = false) {
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

// That setting with every weight resident, KV restored from its home with hidden-state
// checkpoints in `mode` (TRANSFER, RECOMPUTE or ARBITRATE; the arbiter's first estimate of the
// path the measured 12.9 GB/s) and no host attention.
inline std::string kv_restore(const std::string& mode) {
  std::string s =
      " --set policy.orchestration.resident_fraction=1"
      " --set policy.orchestration.host_attention=!clear"
      " --set workload.decode.hidden_state_checkpoints=true"
      " --set policy.orchestration.kv_restore=KV_RESTORE_" +
      mode;
  if (mode == "ARBITRATE") s += " --set policy.orchestration.arbiter_path_bytes_per_s=12.9e9";
  return s;
}

inline std::map<std::string, double> run_flexgen(const std::string& extra,
                                                 std::string* err = nullptr, bool ssd = false) {
  return summary_of(flexgen(extra, ssd), err);
}

inline std::map<std::string, double> run_flexgen_refused(const std::string& extra,
                                                         std::string* err) {
  return run_flexgen(extra, err);
}

// A setting that must be refused: exit code 2 and an error naming `field`.
struct Refusal {
  std::string set, field;
};

// Runs each case through `run` (overrides, stderr) and checks the refusal.
inline void expect_refused(
    const std::function<std::map<std::string, double>(const std::string&, std::string*)>& run,
    const std::vector<Refusal>& cases) {
  for (const auto& c : cases) {
    std::string err;
    const auto r = run(c.set, &err);
    EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2) << c.set;
    EXPECT_NE(err.find(c.field), std::string::npos) << c.set << ": " << err;
  }
}

// Context regions (configs/studies/context_regions_llama3_8b.textproto): Llama-3-8B, 8
// sequences of 32K tokens, sparse attention over 64 KiB regions whose home is host DDR, a pool in
// HBM. `extra` overrides; `err` gets stderr.
inline std::map<std::string, double> regions(const std::string& extra, std::string* err = nullptr) {
  return run_presets(
      {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
       "models/llama3_8b", "studies/context_regions_llama3_8b"},
      extra, err);
}

inline const std::string kRegions = " --set policy.orchestration.context_regions.";
// The recall baseline (ArkVale-like): LRU, demand copy-up from the backups, no promotion, no
// veto.
inline const std::string kRecallBaseline = kRegions + "ranking=REGION_LRU" + kRegions +
                                           "ema_alpha=!clear" + kRegions + "lookahead_layers=0" +
                                           kRegions + "veto_steps=0";

// The object cache (configs/studies/expert_cache_mixtral.textproto): Mixtral-8x7B's weights at
// home in host DDR, a 24 GiB extent-allocated cache of whole objects in HBM.
inline std::map<std::string, double> expert_cache(const std::string& extra,
                                                  std::string* err = nullptr) {
  return run_presets(
      {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
       "models/mixtral_8x7b", "studies/expert_cache_mixtral"},
      extra, err);
}

// The DPU's DDR buffer (configs/studies/dpu_buffer_70b_tp8.textproto): Llama-3-70B TP8, the
// weights' home a DPU-local SSD, 1% of each weight prefetched one layer ahead. With a 200 us
// home read latency a one-layer lookahead misses the window; staging in the DPU's DDR three
// layers ahead hides it like a three-layer lookahead does, with the one-layer staging area in
// HBM (half of it); every home byte goes SSD -> DDR by the DPU's DMA, then peer to peer, and the
// controller decides twice per object.
inline std::map<std::string, double> dpu(const std::string& extra, std::string* err = nullptr) {
  return run_presets({"hardware/h100_sxm", "hardware/fragments/h100_dpu_nvme", "models/llama3_70b",
                      "studies/dpu_buffer_70b_tp8"},
                     " --set system.components[dpu_nvme].nvme.read_latency_ps=200000000 " + extra,
                     err);
}

// A fixed decision latency on the host CPU (no jitter), to derive the stall by hand.
inline std::string host_fixed(uint64_t latency_ps) {
  return test::preset("controllers/host_cpu.textproto") +
         " --set policy.orchestration.decision_latency_ps=" + std::to_string(latency_ps) +
         " --set policy.orchestration.decision_jitter=!clear";
}

// Llama-3.2-1B on H100 with its weights at home in host DDR (behind PCIe Gen5) and a 4 GB page
// cache of 2 MiB pages in HBM, nothing resident, nothing prefetched, 2 decode steps: every
// weight page misses in step 0 and hits in step 1.
inline std::map<std::string, double> page_cache_1b(const std::string& controller,
                                                   uint64_t cache_bytes = 4000000000) {
  auto m = run_presets(
      {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
       "models/llama3_2_1b", "studies/offload_prefetch_70b_tp8"},
      controller +
          " --set workload.parallelism.tensor_parallel=1 --set workload.decode.decode_steps=2"
          " --set policy.orchestration.prefetch_layers=0"
          " --set policy.orchestration.resident_fraction=0"
          " --set policy.orchestration.replacement=REPLACEMENT_LRU"
          " --set policy.orchestration.cache_bytes=" +
          std::to_string(cache_bytes));
  EXPECT_EQ(m.count("exit"), 0u) << controller;
  return m;
}

}  // namespace orchestration_test
}  // namespace tiersim
