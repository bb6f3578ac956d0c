// The scale-up collective model against hand formulas, and the software stack's kernel counts.
#include <gtest/gtest.h>

#include "accelerators/compute_engine.h"

namespace tiersim {
namespace {

CollectiveModel h100_tp8(config::CollectiveAlgorithm a) {
  CollectiveModel m;
  m.ranks = 8;
  m.rank_bandwidth_bytes_per_s = 380e9;
  m.step_latency_ps = 2'000'000;
  m.launch_latency_ps = 5'000'000;
  m.algorithm = a;
  return m;
}

TEST(Collective, RingAllReduceIsTwoPMinusOneStepsOfNOverP) {
  const CollectiveModel m = h100_tp8(config::RING);
  // 64 MiB: launch + 14 steps x 2 us + 14 x (8 MiB / 380 GB/s).
  const uint64_t n = 64ull << 20;
  const double expect_ps = 5e6 + 14 * 2e6 + 14.0 * (n / 8) / 380e9 * 1e12;
  EXPECT_NEAR(static_cast<double>(m.all_reduce_ps(n)), expect_ps, 1.0);
}

TEST(Collective, OneShotWinsForSmallMessagesAndAutoPicksTheFaster) {
  const uint64_t small = 64 * 8192 * 2;  // TP8 decode at batch 64, hidden 8192: 1 MiB
  const CollectiveModel ring = h100_tp8(config::RING);
  const CollectiveModel one = h100_tp8(config::ONE_SHOT);
  const CollectiveModel autom = h100_tp8(config::AUTO);
  const double one_expect = 5e6 + 2e6 + 7.0 * small / 380e9 * 1e12;
  EXPECT_NEAR(static_cast<double>(one.all_reduce_ps(small)), one_expect, 1.0);
  EXPECT_EQ(autom.all_reduce_ps(small),
            std::min(ring.all_reduce_ps(small), one.all_reduce_ps(small)));
  // Large messages: the ring's bandwidth term is 2(p-1)/p n against (p-1) n.
  const uint64_t big = 256ull << 20;
  EXPECT_LT(ring.all_reduce_ps(big), one.all_reduce_ps(big));
  EXPECT_EQ(autom.all_reduce_ps(big), ring.all_reduce_ps(big));
}

TEST(Collective, AllGatherAndSingleRank) {
  const CollectiveModel m = h100_tp8(config::RING);
  EXPECT_NEAR(static_cast<double>(m.all_gather_ps(1 << 20)),
              5e6 + 7 * 2e6 + 7.0 * (1 << 20) / 380e9 * 1e12, 1.0);
  CollectiveModel one = m;
  one.ranks = 1;
  EXPECT_EQ(one.all_reduce_ps(1 << 20), 0u);
}

// The software stack's collective_algorithm replaces the fabric's (a build option such as
// TensorRT-LLM's NCCL all-reduce); unset, the fabric's stands.
TEST(Collective, SoftwareStackChoiceReplacesTheFabricsAlgorithm) {
  config::ScaleUpFabric f;
  f.set_rank_bandwidth_bytes_per_s(380e9);
  f.set_step_latency_ps(2'000'000);
  f.set_launch_latency_ps(5'000'000);
  f.set_algorithm(config::AUTO);
  EXPECT_EQ(CollectiveModel::from_config(f, 8).algorithm, config::AUTO);
  const CollectiveModel ring = CollectiveModel::from_config(f, 8, config::RING);
  EXPECT_EQ(ring.algorithm, config::RING);
  const uint64_t small = 64 * 8192 * 2;
  EXPECT_EQ(ring.all_reduce_ps(small), h100_tp8(config::RING).all_reduce_ps(small));
  EXPECT_GT(ring.all_reduce_ps(small), CollectiveModel::from_config(f, 8).all_reduce_ps(small));
}

TEST(Collective, SoftwareStackChoiceMustBeAnAlgorithm) {
  for (const int bad : {int(config::COLLECTIVE_ALGORITHM_UNSPECIFIED), 7}) {
    config::Software s;
    s.set_collective_algorithm(static_cast<config::CollectiveAlgorithm>(bad));
    std::vector<ConfigIssue> issues;
    Validator v(issues);
    SoftwareModel::validate(s, v);
    ASSERT_EQ(issues.size(), 1u) << bad;
    EXPECT_NE(issues[0].format().find("collective_algorithm"), std::string::npos);
  }
  config::Software ok;
  ok.set_collective_algorithm(config::ONE_SHOT);
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  SoftwareModel::validate(ok, v);
  EXPECT_TRUE(issues.empty());
}

TEST(Software, KernelCountsFollowFusionAndSplitting) {
  SoftwareModel s;
  EXPECT_EQ(s.kernels(OpKind::kAttnNorm), 1u);
  EXPECT_EQ(s.kernels(OpKind::kQkvProj), 1u);
  s.fuse_elementwise = true;
  s.qkv_kernels = 3;
  s.attention_kernels = 3;
  EXPECT_EQ(s.kernels(OpKind::kAttnNorm), 0u);
  EXPECT_EQ(s.kernels(OpKind::kMlpResidual), 0u);
  EXPECT_EQ(s.kernels(OpKind::kQkvProj), 3u);
  EXPECT_EQ(s.kernels(OpKind::kAttention), 3u);
  EXPECT_EQ(s.kernels(OpKind::kAllReduce), 1u);
  // A W8A8 GEMM's input quantisation: fused with elementwise work, or a kernel of its own.
  Op gemm;
  gemm.kind = OpKind::kOutProj;
  gemm.quantize_input = true;
  EXPECT_EQ(s.kernels(gemm), 1u);
  s.fuse_elementwise = false;
  EXPECT_EQ(s.kernels(gemm), 2u);
  gemm.quantize_input = false;
  EXPECT_EQ(s.kernels(gemm), 1u);
}

TEST(ComputeParams, MatrixEfficiencyFallsWithRows) {
  ComputeParams p;
  p.peak_flops_per_s[config::FP16] = 312e12;
  p.flops_efficiency_fraction = 0.92;
  p.gemm_half_efficiency_rows = 45;
  EXPECT_DOUBLE_EQ(p.matrix_flops_per_s(config::FP16, 45), 312e12 * 0.92 * 0.5);
  EXPECT_DOUBLE_EQ(p.matrix_flops_per_s(config::FP16, 8192), 312e12 * 0.92 * 8192 / 8237);
  p.gemm_half_efficiency_rows = 0;
  EXPECT_DOUBLE_EQ(p.matrix_flops_per_s(config::FP16, 1), 312e12 * 0.92);
}

}  // namespace
}  // namespace tiersim
