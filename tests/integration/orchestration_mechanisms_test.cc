// Each mechanism of the movement controller on a two-layer model (hidden 1024, FFN 4096) whose
// weights live in host DDR behind PCIe, 4 decode steps of one token: small enough that every
// expected figure is counted by hand from the run's own object table (/objects), which the
// mechanisms do not write.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

constexpr int kSteps = 4;

struct Weight {
  uint64_t bytes;
  int64_t layer;  // -1: outside the decoder layers (the virtual last layer)
};

struct Result {
  std::map<std::string, double> summary;
  std::vector<Weight> weights;  // class "weight", in id order
  int code = 0;
  std::string err;
};

Result run_small(const std::string& extra) {
  const fs::path dir = fs::temp_directory_path() / ("tiersim_mech_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string model = (dir / "small.textproto").string();
  std::ofstream(model)
      << "workload { model { name: \"small\" layers: 2 hidden_size: 1024 heads: 8"
         " kv_heads: 8 ffn_size: 4096 vocab_size: 8192 tied_embeddings: false"
         " mlp: SWIGLU norm: RMSNORM positional: ROPE weight_dtype: BF16 kv_dtype: BF16"
         " activation_dtype: BF16 } }\n";
  const std::string out = (dir / "run.h5").string();
  const std::string cmd =
      test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("memory/ddr5_4800_8ch.textproto") + " " +
      test::preset("hardware/fragments/h100_weights_in_host_ddr.textproto") + " " + model + " " +
      test::preset("studies/offload_prefetch_70b_tp8.textproto") + " " +
      test::preset("controllers/on_accelerator.textproto") +
      " --set workload.parallelism.tensor_parallel=1 --set workload.decode.decode_steps=" +
      std::to_string(kSteps) + " --quiet --out " + out + " " + extra;
  Result r;
  auto c = test::run_cmd(cmd);
  r.code = c.code;
  r.err = c.err;
  if (c.code == 0) {
    ResultReader h(out);
    for (const auto& s : h.summary())
      r.summary[s.name] = s.value;
    const Table t = h.read_table("/objects");
    for (size_t i = 0; i < t.rows(); ++i) {
      if (t.find("class")->str[i] != "weight") continue;
      r.weights.push_back({t.find("size_bytes")->u64[i], t.find("layer")->i64[i]});
    }
  }
  fs::remove_all(dir);
  return r;
}

// A weight's home part with resident_fraction f: the rest after whole 4 KiB pages of f.
uint64_t home_part(uint64_t bytes, double f) {
  return bytes - static_cast<uint64_t>(std::floor(double(bytes) * f)) / 4096 * 4096;
}

// Layer-ahead prefetch, one layer ahead: the first op of layers 0, 1 and the virtual last layer
// (final norm, LM head) each trigger the next, so every step decides one copy per weight with a
// home part and copies all home parts; layer 0's copies decided in the last step are never read,
// and layer 0 of the first step, never prefetched, is read on demand.
TEST(LayerPrefetch, CopiesEveryHomePartOncePerStepByHand) {
  const Result r = run_small("--set policy.orchestration.resident_fraction=0.5");
  ASSERT_EQ(r.code, 0) << r.err;
  uint64_t home = 0, layer0 = 0, copies = 0;
  for (const auto& w : r.weights) {
    const uint64_t h = home_part(w.bytes, 0.5);
    if (h == 0) continue;
    ++copies;
    home += h;
    if (w.layer == 0) layer0 += h;
  }
  const auto& s = r.summary;
  EXPECT_EQ(s.at("tokens_generated"), kSteps);
  EXPECT_EQ(s.at("controller_decisions"), double(kSteps * copies));
  EXPECT_DOUBLE_EQ(s.at("prefetch_bytes_per_token") * kSteps, double(kSteps * home));
  EXPECT_DOUBLE_EQ(s.at("demand_bytes_per_token") * kSteps, double(layer0));
  EXPECT_DOUBLE_EQ(s.at("prefetch_accuracy"), 1.0 - double(layer0) / double(kSteps * home));
  // The staging area: two slots (k + 1) of the largest layer's home bytes in whole pages.
  uint64_t largest = 0;
  std::map<int64_t, uint64_t> by_layer;
  for (const auto& w : r.weights)
    by_layer[w.layer] += home_part(w.bytes, 0.5);
  for (const auto& [layer, bytes] : by_layer)
    largest = std::max(largest, (bytes + 4095) / 4096 * 4096);
  EXPECT_EQ(s.at("staging_bytes"), double(2 * largest));
}

// The page cache over frames large enough for every weight: LRU misses each page once (step 0)
// and hits it in every later step, exactly the offline bound. BELADY bypasses the first step
// (it learns the page sequence there), then admits every page in step 1 and hits in steps 2
// and 3.
TEST(PageCache, LruHitsEveryPageAfterTheFirstStep) {
  const std::string cache =
      " --set policy.orchestration.prefetch_layers=0 --set policy.orchestration.resident_fraction=0"
      " --set policy.orchestration.cache_bytes=2000000000 --set policy.orchestration.replacement=";
  const Result lru = run_small(cache + "REPLACEMENT_LRU");
  ASSERT_EQ(lru.code, 0) << lru.err;
  uint64_t weights = 0;
  for (const auto& w : lru.weights)
    weights += w.bytes;
  EXPECT_DOUBLE_EQ(lru.summary.at("cache_hit_rate"), double(kSteps - 1) / kSteps);
  EXPECT_EQ(lru.summary.at("extra_bytes_vs_oracle_per_token"), 0);
  // Every weight byte is copied into its frame once (the engine's admissions).
  EXPECT_DOUBLE_EQ(lru.summary.at("admission_bytes_per_token") * kSteps, double(weights));
  const Result belady = run_small(cache + "REPLACEMENT_BELADY");
  ASSERT_EQ(belady.code, 0) << belady.err;
  EXPECT_DOUBLE_EQ(belady.summary.at("cache_hit_rate"), double(kSteps - 2) / kSteps);
  EXPECT_DOUBLE_EQ(belady.summary.at("admission_bytes_per_token") * kSteps, double(weights));
}

// The object cache large enough for every weight: each object is admitted on its first visit
// and hit on every later one; nothing is evicted or bypassed, nothing fragments.
TEST(ObjectCache, AdmitsEachObjectOnceAndHitsAfterwards) {
  const Result r = run_small(
      "--set policy.orchestration.prefetch_layers=0 --set policy.orchestration.resident_fraction=0"
      " --set policy.orchestration.object_cache.bytes=2000000000");
  ASSERT_EQ(r.code, 0) << r.err;
  const double objects = double(r.weights.size());
  uint64_t weights = 0;
  for (const auto& w : r.weights)
    weights += w.bytes;
  const auto& s = r.summary;
  EXPECT_EQ(s.at("object_cache_visits"), kSteps * objects);
  EXPECT_EQ(s.at("object_cache_admissions"), objects);
  EXPECT_DOUBLE_EQ(s.at("object_cache_hit_rate"), double(kSteps - 1) / kSteps);
  EXPECT_EQ(s.at("object_cache_evictions"), 0);
  EXPECT_EQ(s.at("object_cache_bypasses"), 0);
  EXPECT_EQ(s.at("fragmentation_failures"), 0);
  EXPECT_DOUBLE_EQ(s.at("admission_bytes_per_token") * kSteps, double(weights));
}

}  // namespace
}  // namespace tiersim
