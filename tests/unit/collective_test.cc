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

// `s` checked as a run checks it: its issues, one per line, and their count.
std::string software_issues(const config::Software& s, size_t* count) {
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  SoftwareModel::validate(s, v);
  std::string all;
  for (const auto& i : issues)
    all += i.format() + "\n";
  *count = issues.size();
  return all;
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
  size_t issues = 0;
  const std::string all = software_issues(s, &issues);
  EXPECT_EQ(issues, 6u) << all;
  EXPECT_NE(all.find("collective_protocols[1].algorithms: lists RING"), std::string::npos);
  EXPECT_NE(all.find("collective_protocols[1].name: required"), std::string::npos) << all;
  EXPECT_NE(all.find("collective_protocols[1].launch_latency_ps: required"), std::string::npos);
  EXPECT_NE(all.find("collective_protocols[1].step_latency_ps: required"), std::string::npos);
  EXPECT_NE(all.find("collective_protocols[1].wire_efficiency: must lie in [0.01, 1]"),
            std::string::npos);
  EXPECT_NE(all.find("collective_protocols[LL].name: \"LL\" is listed twice"), std::string::npos);
}

// TWO_SHOT: a one-step reduce-scatter, then a one-step all-gather of the reduced shards; only a
// protocol that lists it runs it, so AUTO under an unrestricted protocol stays as it was.
TEST(Collective, TwoShotIsTwoStepsOfPMinusOneShardsAndRunsOnlyWhereListed) {
  const uint64_t n = 1 << 20;
  // 1 MiB at TP8: one-shot 5 + 2 + 7 MiB / 380 GB/s = 26.3 us; ring 5 + 28 + 1.75 MiB / 380 GB/s
  // = 37.8 us; two-shot 5 + 2 x 2 + 2 x 7 x 128 KiB / 380 GB/s = 13.8 us.
  const double two_expect = 5e6 + 2 * 2e6 + 14.0 * (n / 8) / 380e9 * 1e12;
  const double one_expect = 5e6 + 2e6 + 7.0 * n / 380e9 * 1e12;
  CollectiveModel listed = h100_tp8(config::TWO_SHOT);
  listed.protocols = {protocol("CA", 5, 2, 1.0)};
  listed.protocols[0].algorithms = {config::RING, config::ONE_SHOT, config::TWO_SHOT};
  EXPECT_NEAR(double(listed.all_reduce_ps(n)), two_expect, 1.0);
  // An all-gather under TWO_SHOT is the one-shot all-gather.
  EXPECT_EQ(listed.all_gather_ps(n), h100_tp8(config::ONE_SHOT).all_gather_ps(n));
  listed.algorithm = config::AUTO;
  EXPECT_NEAR(double(listed.all_reduce_ps(n)), two_expect, 1.0);
  // An empty list runs every algorithm but TWO_SHOT: AUTO keeps the one-shot.
  CollectiveModel unlisted = h100_tp8(config::AUTO);
  unlisted.protocols = {protocol("ANY", 5, 2, 1.0)};
  EXPECT_NEAR(double(unlisted.all_reduce_ps(n)), one_expect, 1.0);
  EXPECT_EQ(h100_tp8(config::AUTO).all_reduce_ps(n), unlisted.all_reduce_ps(n));
  unlisted.algorithm = config::TWO_SHOT;
  EXPECT_THROW(unlisted.all_reduce_ps(n), std::invalid_argument);
  // The wire efficiency applies to each shard.
  listed.protocols[0].wire_efficiency = 0.5;
  EXPECT_NEAR(double(listed.all_reduce_ps(n)), 5e6 + 2 * 2e6 + 28.0 * (n / 8) / 380e9 * 1e12, 1.0);
}

// A library's static dispatch: each protocol serves messages of its sizes, on its rank counts,
// for its operations; the fastest of those that serve a call times it, even where another
// (not serving it) would be faster.
TEST(Collective, ProtocolsServeOnlyTheirSizesRanksAndOperations) {
  CollectiveModel m = h100_tp8(config::AUTO);
  CollectiveProtocol small = protocol("SMALL", 4, 0, 1.0), big = protocol("BIG", 11, 0, 1.0);
  small.algorithms = {config::ONE_SHOT};
  small.max_message_bytes = 262143;
  big.algorithms = {config::TWO_SHOT};
  big.min_message_bytes = 262144;
  small.operations = big.operations = {CollectiveOp::kAllReduce};
  small.min_ranks = small.max_ranks = big.min_ranks = big.max_ranks = 8;
  m.protocols = {small, big};
  const uint64_t below = 262143, at = 262144;
  EXPECT_NEAR(double(m.all_reduce_ps(below)), 4e6 + 7.0 * below / 380e9 * 1e12, 1.0);
  // At 256 KiB the one-shot would take 4 + 4.8 us; the dispatch sends it to the two-shot.
  EXPECT_NEAR(double(m.all_reduce_ps(at)), 11e6 + 14.0 * (at / 8) / 380e9 * 1e12, 1.0);
  // No protocol serves an all-gather, nor 4 ranks.
  EXPECT_THROW(m.all_gather_ps(4096), std::invalid_argument);
  CollectiveModel four = m;
  four.ranks = 4;
  EXPECT_THROW(four.all_reduce_ps(4096), std::invalid_argument);

  // What no protocol serves, before a run.
  using V = std::vector<CollectiveProtocol>;
  const auto ar = CollectiveOp::kAllReduce;
  EXPECT_EQ(coverage_gap(V{small, big}, 8, ar, config::AUTO, true, false), "");
  EXPECT_EQ(coverage_gap(V{small, big}, 4, ar, config::AUTO, true, false), "from 1 bytes up");
  EXPECT_EQ(coverage_gap(V{small, big}, 8, CollectiveOp::kAllGather, config::AUTO, true, false),
            "from 1 bytes up");
  CollectiveProtocol capped = big;
  capped.max_message_bytes = 8388607;
  EXPECT_EQ(coverage_gap(V{small, capped}, 8, ar, config::AUTO, true, false),
            "from 8388608 bytes up");
  CollectiveProtocol late = big;
  late.min_message_bytes = 300000;
  EXPECT_EQ(coverage_gap(V{small, late}, 8, ar, config::AUTO, true, false),
            "from 262144 to 299999 bytes");
  // Only the algorithms in force count: under ONE_SHOT the two-shot protocol serves nothing.
  EXPECT_EQ(coverage_gap(V{small, big}, 8, ar, config::ONE_SHOT, true, false),
            "from 262144 bytes up");
  // Nor does TWO_SHOT run an all-to-all.
  CollectiveProtocol any_op = big;
  any_op.operations.clear();
  any_op.min_message_bytes = 0;
  EXPECT_EQ(coverage_gap(V{any_op}, 8, CollectiveOp::kAllToAll, config::AUTO, true, false),
            "from 1 bytes up");
  EXPECT_EQ(coverage_gap(V{any_op}, 8, CollectiveOp::kAllGather, config::AUTO, false, false), "");
}

TEST(Collective, ProtocolRangesAndOperationsAreChecked) {
  config::Software s;
  auto* p = s.add_collective_protocols();
  p->set_name("CA");
  p->set_launch_latency_ps(4'330'000);
  p->set_step_latency_ps(0);
  p->add_algorithms(config::TWO_SHOT);
  p->set_min_message_bytes(1000);
  p->set_max_message_bytes(999);
  p->set_min_ranks(1);
  p->set_max_ranks(0);
  p->add_operations(config::COLLECTIVE_OPERATION_UNSPECIFIED);
  size_t issues = 0;
  const std::string all = software_issues(s, &issues);
  EXPECT_EQ(issues, 5u) << all;
  EXPECT_NE(all.find("[CA].max_message_bytes: lies below min_message_bytes"), std::string::npos);
  EXPECT_NE(all.find("[CA].min_ranks: must be at least 2"), std::string::npos) << all;
  EXPECT_NE(all.find("[CA].max_ranks: must be at least 2"), std::string::npos);
  EXPECT_NE(all.find("[CA].max_ranks: lies below min_ranks"), std::string::npos);
  EXPECT_NE(all.find("[CA].operations: lists ALL_REDUCE"), std::string::npos);
  // Read from the config: the ranges, ranks and operations (ALL_GATHER is CollectiveOp's).
  p->set_max_message_bytes(5000);
  p->set_max_ranks(8);
  p->set_min_ranks(2);
  p->clear_operations();
  p->add_operations(config::ALL_GATHER);
  const std::vector<CollectiveProtocol> got = CollectiveModel::protocols_from_config(s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].min_message_bytes, 1000u);
  EXPECT_EQ(got[0].max_message_bytes, 5000u);
  EXPECT_EQ(got[0].min_ranks, 2u);
  EXPECT_EQ(got[0].max_ranks, 8u);
  ASSERT_EQ(got[0].operations.size(), 1u);
  EXPECT_EQ(got[0].operations[0], CollectiveOp::kAllGather);
  EXPECT_TRUE(got[0].serves(CollectiveOp::kAllGather, 1000, 8));
  EXPECT_FALSE(got[0].serves(CollectiveOp::kAllGather, 999, 8));
  EXPECT_FALSE(got[0].serves(CollectiveOp::kAllGather, 5001, 8));
  EXPECT_FALSE(got[0].serves(CollectiveOp::kAllGather, 1000, 9));
  EXPECT_FALSE(got[0].serves(CollectiveOp::kAllReduce, 1000, 8));
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
