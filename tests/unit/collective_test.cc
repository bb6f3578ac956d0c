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

// NCCL-like protocols: each collective takes the fastest; a protocol's launch and step latency
// and its wire bytes (data / wire efficiency) time it.
CollectiveProtocol protocol(const char* name, double launch_us, double step_us, double eff) {
  CollectiveProtocol p;
  p.name = name;
  p.launch_latency_ps = TimePs(launch_us * 1e6);
  p.step_latency_ps = TimePs(step_us * 1e6);
  p.wire_efficiency = eff;
  return p;
}

TEST(Collective, ProtocolsTakeTheFastestWithTheirOwnLatenciesAndWireBytes) {
  CollectiveModel m = h100_tp8(config::RING);
  m.protocols = {protocol("LL", 6.6, 0.6, 0.5), protocol("SIMPLE", 8.4, 3.4, 1.0)};
  // 1 KiB: LL, 6.6 us + 14 steps of 0.6 us + 14 x 128 B sent as 256 wire bytes at 380 GB/s.
  const double ll_small = 6.6e6 + 14 * 0.6e6 + 14.0 * 256 / 380e9 * 1e12;
  EXPECT_NEAR(double(m.all_reduce_ps(1024)), ll_small, 1.0);
  // 256 MiB: SIMPLE; LL's doubled wire bytes outweigh its latencies.
  const uint64_t big = 256ull << 20;
  const double simple_big = 8.4e6 + 14 * 3.4e6 + 14.0 * (big / 8) / 380e9 * 1e12;
  EXPECT_NEAR(double(m.all_reduce_ps(big)), simple_big, 1.0);
  // All-gather: 7 steps of the whole n, the same choice.
  EXPECT_NEAR(double(m.all_gather_ps(1024)), 6.6e6 + 7 * 0.6e6 + 7.0 * 2048 / 380e9 * 1e12, 1.0);
  // Each parameter moves the result: the launch, the step latency, the wire efficiency.
  CollectiveModel launch = m, step = m, eff = m;
  launch.protocols[0].launch_latency_ps += 1'000'000;
  step.protocols[0].step_latency_ps += 100'000;
  eff.protocols = {protocol("LL", 6.6, 0.6, 0.25)};
  EXPECT_NEAR(double(launch.all_reduce_ps(1024)), ll_small + 1e6, 1.0);
  EXPECT_NEAR(double(step.all_reduce_ps(1024)), ll_small + 14 * 1e5, 1.0);
  EXPECT_NEAR(double(eff.all_reduce_ps(big)),
              6.6e6 + 14 * 0.6e6 + 14.0 * 4 * (big / 8) / 380e9 * 1e12, 1.0);
  // A protocol restricted to the ring: the ring's time even where one-shot would be faster.
  CollectiveModel ring_only = h100_tp8(config::AUTO);
  ring_only.protocols = {protocol("LL", 6.6, 0.6, 0.5)};
  ring_only.protocols[0].algorithms = {config::RING};
  EXPECT_NEAR(double(ring_only.all_reduce_ps(1024)), ll_small, 1.0);
  ring_only.algorithm = config::ONE_SHOT;
  EXPECT_THROW(ring_only.all_reduce_ps(1024), std::invalid_argument);
  // No protocols: the fabric's latencies at full efficiency, as before.
  EXPECT_EQ(h100_tp8(config::RING).effective_protocols().size(), 1u);
  EXPECT_EQ(h100_tp8(config::RING).effective_protocols()[0].step_latency_ps, 2'000'000u);
}

TEST(Collective, ProtocolsComeFromTheSoftwareStackAndAreChecked) {
  config::Software s;
  auto* ll = s.add_collective_protocols();
  ll->set_name("LL");
  ll->set_launch_latency_ps(6'600'000);
  ll->set_step_latency_ps(600'000);
  ll->set_wire_efficiency(0.5);
  ll->add_algorithms(config::RING);
  auto* simple = s.add_collective_protocols();  // wire efficiency unset: 1
  simple->set_name("SIMPLE");
  simple->set_launch_latency_ps(8'400'000);
  simple->set_step_latency_ps(3'400'000);
  std::vector<CollectiveProtocol> got = CollectiveModel::protocols_from_config(s);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].wire_efficiency, 1.0);
  EXPECT_TRUE(got[1].algorithms.empty());
  ASSERT_EQ(got[0].algorithms.size(), 1u);
  EXPECT_EQ(got[0].algorithms[0], config::RING);
  s.mutable_collective_protocols()->RemoveLast();
  got.pop_back();
  EXPECT_EQ(got[0].name, "LL");
  EXPECT_EQ(got[0].launch_latency_ps, 6'600'000u);
  EXPECT_EQ(got[0].wire_bytes(1000), 2000u);
  config::ScaleUpFabric f;
  f.set_rank_bandwidth_bytes_per_s(380e9);
  f.set_step_latency_ps(2'000'000);
  f.set_launch_latency_ps(5'000'000);
  f.set_algorithm(config::RING);
  EXPECT_NE(CollectiveModel::from_config(f, 8, config::RING, nullptr, got).all_reduce_ps(1024),
            CollectiveModel::from_config(f, 8, config::RING).all_reduce_ps(1024));
  {
    std::vector<ConfigIssue> issues;
    Validator v(issues);
    SoftwareModel::validate(s, v);
    EXPECT_TRUE(issues.empty());
  }
  auto* bad = s.add_collective_protocols();  // unnamed, no latencies, efficiency out of range
  bad->set_wire_efficiency(1.5);
  bad->add_algorithms(config::AUTO);
  auto* twice = s.add_collective_protocols();
  twice->CopyFrom(*ll);
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  SoftwareModel::validate(s, v);
  std::string all;
  for (const auto& i : issues)
    all += i.format() + "\n";
  EXPECT_EQ(issues.size(), 6u) << all;
  EXPECT_NE(all.find("collective_protocols[1].algorithms: lists RING"), std::string::npos);
  EXPECT_NE(all.find("collective_protocols[1].name: required"), std::string::npos) << all;
  EXPECT_NE(all.find("collective_protocols[1].launch_latency_ps: required"), std::string::npos);
  EXPECT_NE(all.find("collective_protocols[1].step_latency_ps: required"), std::string::npos);
  EXPECT_NE(all.find("collective_protocols[1].wire_efficiency: must lie in [0.01, 1]"),
            std::string::npos);
  EXPECT_NE(all.find("collective_protocols[LL].name: \"LL\" is listed twice"), std::string::npos);
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
