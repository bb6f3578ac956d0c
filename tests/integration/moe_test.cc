// End-to-end MoE decode: the bytes a run streams follow its routing exactly, expert load follows
// the configured skew, trace routing runs, and bad routing configs are rejected up front.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

// Mixtral 8x7B (config.json): 32 layers, hidden 4096, 32 heads, 8 KV heads of 128, 8 experts of
// ffn 14336 (top 2), vocab 32000, bf16.
constexpr double kLayers = 32, kHidden = 4096, kBytes = 2, kVocab = 32000;
constexpr double kExpert = 3 * kHidden * 14336 * kBytes;
// Per layer without experts: attn and mlp norms, qkv (4096 x 6144), out, router (4096 x 8).
constexpr double kLayerFixed =
    (2 * kHidden + kHidden * 6144 + kHidden * kHidden + kHidden * 8) * kBytes;
constexpr double kKvPerTokenPerLayer = 2 * 1024 * kBytes;
constexpr double kContext = 512, kSteps = 4;

struct MoeRun {
  int code = -1;
  std::string err;
  double hbm_bytes_per_token = 0, active_mean = 0, imbalance = 0;
  std::vector<double> expert_load, active;  // /workload/moe datasets
};

MoeRun run_moe(const std::string& sets) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_moe_" + std::to_string(getpid()) + ".h5")).string();
  const std::string cmd = test::tiersim_binary() + " run " +
                          test::preset("hardware/h200.textproto") + " " +
                          test::preset("models/mixtral_8x7b.textproto") + " " +
                          test::preset("studies/default.textproto") +
                          " --set workload.decode.context_tokens=512"
                          " --set workload.decode.decode_steps=4 --quiet --out " +
                          out + " " + sets;
  auto r = test::run_cmd(cmd);
  MoeRun res;
  res.code = r.code;
  res.err = r.err;
  if (r.code != 0) return res;
  ResultReader h(out);
  for (const auto& s : h.summary()) {
    if (s.name == "hbm_bytes_per_token") res.hbm_bytes_per_token = s.value;
    if (s.name == "moe_active_experts_mean") res.active_mean = s.value;
    if (s.name == "moe_expert_load_max_over_mean") res.imbalance = s.value;
  }
  res.expert_load = h.read_doubles("/workload/moe/expert_load");
  res.active = h.read_doubles("/workload/moe/active_experts");
  fs::remove(out);
  return res;
}

// Everything but the experts, per step, for `batch` sequences (KV read averaged over steps).
double fixed_bytes_per_step(double batch) {
  const double kv = kLayers * batch * (kContext + (kSteps - 1) / 2 + 1) * kKvPerTokenPerLayer;
  return kLayers * kLayerFixed + batch * kHidden * kBytes + kHidden * kBytes +
         kVocab * kHidden * kBytes + kv;
}

// Batch 1: exactly top-2 experts per layer are read.
TEST(Moe, Batch1ReadsTwoExpertsPerLayer) {
  const MoeRun r = run_moe("--set workload.routing.synthetic.zipf_exponent=1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_DOUBLE_EQ(r.active_mean, 2.0);
  EXPECT_NEAR(r.hbm_bytes_per_token, fixed_bytes_per_step(1) + kLayers * 2 * kExpert, 1.0);
}

// Batch 16: the bytes streamed per step are the fixed bytes plus each active expert once; the
// expert load adds up to steps x layers x batch x k, and its skew follows the exponent.
TEST(Moe, BytesFollowTheRoutingAndLoadFollowsTheSkew) {
  const MoeRun r = run_moe(
      "--set workload.decode.batch_size=16 --set workload.routing.synthetic.zipf_exponent=1.2");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.active.size(), size_t(kSteps * kLayers));
  const double active_total = std::accumulate(r.active.begin(), r.active.end(), 0.0);
  EXPECT_NEAR(r.hbm_bytes_per_token * 16,
              fixed_bytes_per_step(16) + active_total / kSteps * kExpert, 16.0);
  EXPECT_DOUBLE_EQ(std::accumulate(r.expert_load.begin(), r.expert_load.end(), 0.0),
                   kSteps * kLayers * 16 * 2);
  const MoeRun flat = run_moe(
      "--set workload.decode.batch_size=16 --set workload.routing.synthetic.zipf_exponent=0");
  ASSERT_EQ(flat.code, 0) << flat.err;
  EXPECT_GT(r.imbalance, flat.imbalance);
  // Skewed routing concentrates tokens on fewer experts: fewer distinct experts are read.
  EXPECT_LT(r.active_mean, flat.active_mean);
}

TEST(Moe, TraceRoutingRuns) {
  // Every token of every layer and step uses experts 3 and 5: two experts read per layer.
  const std::string path =
      (fs::temp_directory_path() / ("tiersim_route_" + std::to_string(getpid()) + ".csv")).string();
  {
    std::ofstream out(path);
    out << "step,layer,sequence,expert0,expert1\n";
    for (int s = 0; s < kSteps; ++s)
      for (int l = 0; l < kLayers; ++l)
        for (int q = 0; q < 4; ++q)
          out << s << "," << l << "," << q << ",3,5\n";
  }
  const MoeRun r =
      run_moe("--set workload.decode.batch_size=4 --set 'workload.routing.trace=\"" + path + "\"'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_DOUBLE_EQ(r.active_mean, 2.0);
  EXPECT_DOUBLE_EQ(r.expert_load[3], kSteps * 4);
  EXPECT_DOUBLE_EQ(r.expert_load[4], 0.0);
  // A trace for a shorter run is rejected at its file, naming the first missing routing.
  const MoeRun longer = run_moe(
      "--set workload.decode.batch_size=4 --set "
      "workload.decode.decode_steps=5 --set 'workload.routing.trace=\"" +
      path + "\"'");
  EXPECT_EQ(longer.code, 2);
  EXPECT_NE(longer.err.find(path + ":"), std::string::npos) << longer.err;
  EXPECT_NE(longer.err.find("no routing for step 4, layer 0, sequence 0"), std::string::npos)
      << longer.err;
  fs::remove(path);
}

TEST(Moe, RoutingIsRequiredAndOnlyForMoeModels) {
  // The default study has no routing section: a MoE model refuses to run without one.
  const std::string cmd = test::tiersim_binary() + " run " +
                          test::preset("hardware/h200.textproto") + " " +
                          test::preset("models/mixtral_8x7b.textproto") + " " +
                          test::preset("studies/default.textproto") + " --quiet";
  auto r = test::run_cmd(cmd);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.routing"), std::string::npos) << r.err;
  auto dense = test::run_cmd(
      test::tiersim_binary() + " run " + test::preset("hardware/h200.textproto") + " " +
      test::preset("models/llama3_8b.textproto") + " " + test::preset("studies/default.textproto") +
      " --set workload.routing.synthetic.zipf_exponent=1 --quiet");
  EXPECT_EQ(dense.code, 2);
  EXPECT_NE(dense.err.find("the model has no moe section"), std::string::npos) << dense.err;
}

}  // namespace
}  // namespace tiersim
