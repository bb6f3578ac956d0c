#include "workloads/moe_router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <set>

namespace tiersim {
namespace {

TEST(MoeRouter, CappedZipfShares) {
  // Uniform at exponent 0.
  for (double p : capped_zipf_shares(8, 2, 0.0))
    EXPECT_DOUBLE_EQ(p, 1.0 / 8);
  // E = 8, exponent 1: 1/r over H_8 = 761/280; the top share 280/761 is below the 1/2 cap.
  const auto z = capped_zipf_shares(8, 2, 1.0);
  EXPECT_NEAR(z[0], 280.0 / 761, 1e-12);
  EXPECT_NEAR(z[7], 35.0 / 761, 1e-12);
  // Exponent 3, k = 2: rank 0 would take 1/1.1902 = 84% of assignments; it is capped at 1/2
  // and the rest keep their ratios: rank 1 : rank 2 = 27 : 8.
  const auto c = capped_zipf_shares(8, 2, 3.0);
  EXPECT_DOUBLE_EQ(c[0], 0.5);
  EXPECT_NEAR(c[1] / c[2], 27.0 / 8, 1e-9);
  EXPECT_NEAR(std::accumulate(c.begin(), c.end(), 0.0), 1.0, 1e-12);
}

struct Tally {
  std::vector<uint64_t> by_rank;
  uint64_t tokens = 0, kept = 0;
};

// Routes `steps` steps of one layer and tallies assignments by popularity rank.
Tally run(SyntheticRouter& r, const SyntheticRouterParams& p, uint32_t steps) {
  Tally t;
  t.by_rank.assign(p.experts, 0);
  std::vector<uint32_t> rank_of(p.experts);
  std::vector<uint16_t> out(size_t{p.batch} * p.top_k), prev;
  for (uint32_t step = 0; step < steps; ++step) {
    r.route(step, 0, p.batch, out.data());
    for (uint32_t i = 0; i < p.experts; ++i)
      rank_of[r.expert_at_rank(0, i)] = i;
    for (uint32_t s = 0; s < p.batch; ++s) {
      const uint16_t* e = &out[size_t{s} * p.top_k];
      std::set<uint16_t> distinct(e, e + p.top_k);
      EXPECT_EQ(distinct.size(), p.top_k) << "a token picked one expert twice";
      for (uint32_t j = 0; j < p.top_k; ++j)
        ++t.by_rank[rank_of[e[j]]];
      ++t.tokens;
      if (!prev.empty() && std::equal(e, e + p.top_k, &prev[size_t{s} * p.top_k])) ++t.kept;
    }
    prev = out;
  }
  return t;
}

// Pearson's chi-square of observed assignments against the configured shares.
double chi_square(const Tally& t, const std::vector<double>& shares, uint32_t k) {
  double chi = 0;
  const double n = double(t.tokens) * k;
  for (size_t r = 0; r < shares.size(); ++r) {
    const double expected = n * shares[r];
    chi += (t.by_rank[r] - expected) * (t.by_rank[r] - expected) / expected;
  }
  return chi;
}

// The expert-load statistics follow the configured skew: 64 experts, top-4, Zipf 1.0, 204,800
// assignments. Chi-square with 63 degrees of freedom stays below 103.4 (p = 0.001), and the
// five most popular experts' shares are within 3% of the configured ones.
TEST(MoeRouter, ExpertLoadMatchesTheConfiguredSkew) {
  SyntheticRouterParams p{64, 4, 1, 256, 1.0, 0.0, 0, 42};
  SyntheticRouter r(p);
  const Tally t = run(r, p, 200);
  EXPECT_LT(chi_square(t, r.shares(), 4), 103.4);
  const double n = double(t.tokens) * 4;
  for (int rank = 0; rank < 5; ++rank)
    EXPECT_NEAR(t.by_rank[rank] / n / r.shares()[rank], 1.0, 0.03) << "rank " << rank;
  // Capped skew: 8 experts, top-2, exponent 3 (the top expert is capped at half the
  // assignments, that is every token).
  SyntheticRouterParams q{8, 2, 1, 64, 3.0, 0.0, 0, 7};
  SyntheticRouter rq(q);
  const Tally tq = run(rq, q, 500);
  EXPECT_EQ(tq.by_rank[0], tq.tokens);
  EXPECT_LT(chi_square(tq, rq.shares(), 2), 24.3);  // 7 dof, p = 0.001
}

// Stickiness keeps a token's experts with the configured probability and leaves the load
// shares unchanged.
TEST(MoeRouter, StickinessKeepsExpertsAndTheSkew) {
  SyntheticRouterParams p{64, 4, 1, 256, 0.8, 0.75, 0, 3};
  SyntheticRouter r(p);
  const Tally t = run(r, p, 200);
  const double kept = double(t.kept) / double(t.tokens - p.batch);
  EXPECT_NEAR(kept, 0.75, 0.01);
  // A token's draws form an AR(1) chain with coefficient s: the variance of each count grows
  // by (1 + s) / (1 - s) = 7, so the scaled statistic meets the same bound.
  EXPECT_LT(chi_square(t, r.shares(), 4) / 7.0, 103.4);
}

// Phase shifts redraw each layer's popularity order; layers differ from each other.
TEST(MoeRouter, PhasesAndLayersHaveTheirOwnHotExperts) {
  SyntheticRouterParams p{64, 2, 2, 4, 1.0, 0.0, 10, 9};
  SyntheticRouter r(p);
  std::vector<uint16_t> out(8);
  r.route(0, 0, 4, out.data());
  r.route(0, 1, 4, out.data());
  const uint16_t hot0 = r.expert_at_rank(0, 0), hot1 = r.expert_at_rank(1, 0);
  std::vector<uint16_t> order0(64);
  for (uint32_t i = 0; i < 64; ++i)
    order0[i] = r.expert_at_rank(0, i);
  r.route(9, 0, 4, out.data());
  EXPECT_EQ(r.expert_at_rank(0, 0), hot0);  // same phase
  r.route(10, 0, 4, out.data());
  std::vector<uint16_t> order1(64);
  for (uint32_t i = 0; i < 64; ++i)
    order1[i] = r.expert_at_rank(0, i);
  EXPECT_NE(order0, order1);
  EXPECT_FALSE(hot0 == hot1 && order0[1] == r.expert_at_rank(1, 1));
  // Same seed, same choices.
  SyntheticRouter a(p), b(p);
  std::vector<uint16_t> x(8), y(8);
  for (uint32_t step = 0; step < 30; ++step) {
    a.route(step, step % 2, 4, x.data());
    b.route(step, step % 2, 4, y.data());
    ASSERT_EQ(x, y);
  }
}

std::vector<ConfigIssue> load_errors(const std::string& text) {
  const std::string path = ::testing::TempDir() + "/bad_routing.csv";
  std::ofstream(path) << text;
  std::vector<ConfigIssue> issues;
  Validator v(issues, "workload.routing");
  EXPECT_FALSE(TraceRouter::load(path, TraceRouter::Shape{1, 2, 4, 2, 2, 1}, v).has_value());
  return issues;
}

// Bad traces are reported at their line, with the field path.
TEST(MoeRouter, TraceErrorsNameTheLine) {
  auto e = load_errors("step,layer,seq,expert0,expert1\n");
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].where.line, 1);
  EXPECT_EQ(e[0].path, "workload.routing.trace");
  e = load_errors("step,layer,sequence,expert0,expert1\n0,1,0,0,1\n0,1,0,2,3\n");
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].where.line, 3);
  EXPECT_NE(e[0].message.find("appears twice"), std::string::npos);
  e = load_errors("step,layer,sequence,expert0,expert1\n0,1,0,1,1\n0,1,1,0,9\n0,0,1,0,1\n");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_NE(e[0].message.find("listed twice"), std::string::npos);
  EXPECT_EQ(e[1].where.line, 3);
  EXPECT_NE(e[1].message.find("beyond the model's 4 experts"), std::string::npos);
  EXPECT_NE(e[2].message.find("not a MoE layer"), std::string::npos);
  e = load_errors("step,layer,sequence,expert0,expert1\n0,1,0,0,1\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].message.find("no routing for step 0, layer 1, sequence 1"), std::string::npos);
  e = load_errors("step,layer,sequence,expert0,expert1\n0,1,0,0,x\n");
  EXPECT_NE(e[0].message.find("integers"), std::string::npos);
}

TEST(ExpertPlacement, ContiguousPutsExpertEOnRankEOverSlots) {
  const ExpertPlacement p = ExpertPlacement::contiguous(8, 4);
  EXPECT_EQ(p.slots, 2u);
  for (uint32_t e = 0; e < 8; ++e) {
    EXPECT_EQ(p.copies(e), 1u);
    EXPECT_EQ(p.slot_for(e, 12345), e);
    EXPECT_EQ(p.slot_expert[e], e);
  }
  EXPECT_THROW(ExpertPlacement::contiguous(8, 3), std::invalid_argument);
}

TEST(ExpertPlacement, BalancedReplicatesTheHeaviestAndPacksTheLeastLoadedRank) {
  // Even loads, 4 experts, 2 ranks, 2 copies: copies go to experts 0 then 1 (the lowest id
  // among equals; 0's load per copy halves). Packing, heaviest first: 2 -> rank 0, 3 -> rank 1,
  // 0 -> rank 0 (equal loads), 0's second copy -> rank 1 (rank 0 holds 0), 1 -> rank 0, 1 ->
  // rank 1. Each rank: 0.5 + 0.5 + 1 of load.
  const ExpertPlacement p = ExpertPlacement::balanced({1, 1, 1, 1}, 2, 2);
  EXPECT_EQ(p.slots, 3u);
  EXPECT_EQ(p.slot_expert, (std::vector<uint16_t>{2, 0, 1, 3, 0, 1}));
  EXPECT_EQ(p.copies(0), 2u);
  EXPECT_EQ(p.copies(2), 1u);
  // Tokens alternate between expert 0's copies (slots 1 and 4).
  EXPECT_EQ(p.slot_for(0, 0), 1u);
  EXPECT_EQ(p.slot_for(0, 1), 4u);
  EXPECT_EQ(p.slot_for(3, 7), 3u);
  // Skewed loads 8, 4, 2, 2, 1, 1 on 2 ranks with 2 copies: expert 0 gets one (8 -> 4 per
  // copy); it then has a copy per rank, so the second goes to expert 1 (4 -> 2). Packing
  // 4, 4, 2, 2, 2, 2, 1, 1 alternates the ranks: 9 and 9 of load, against 14 and 4 for
  // contiguous.
  const ExpertPlacement q = ExpertPlacement::balanced({8, 4, 2, 2, 1, 1}, 2, 2);
  EXPECT_EQ(q.copies(0), 2u);
  EXPECT_EQ(q.copies(1), 2u);
  std::vector<double> rank_load(2, 0);
  const std::vector<double> load = {8, 4, 2, 2, 1, 1};
  for (uint32_t g = 0; g < 8; ++g)
    rank_load[g / q.slots] += load[q.slot_expert[g]] / q.copies(q.slot_expert[g]);
  EXPECT_DOUBLE_EQ(rank_load[0], 9.0);
  EXPECT_DOUBLE_EQ(rank_load[1], 9.0);
  EXPECT_THROW(ExpertPlacement::balanced({1, 1, 1}, 2, 0), std::invalid_argument);
  // At most one copy per rank: a single hot expert on 2 ranks gets 2 copies, the other extra
  // copies go to the next; with no load at all, copies spread over experts (fewest first).
  const ExpertPlacement hot = ExpertPlacement::balanced({100, 1, 1, 1, 1, 1}, 2, 4);
  EXPECT_EQ(hot.copies(0), 2u);
  EXPECT_EQ(hot.copies(1) + hot.copies(2) + hot.copies(3), 6u);
  const ExpertPlacement cold = ExpertPlacement::balanced(std::vector<double>(8, 0.0), 4, 8);
  for (uint32_t e = 0; e < 8; ++e)
    EXPECT_EQ(cold.copies(e), 2u);
  for (uint32_t r = 0; r < 4; ++r) {
    std::set<uint16_t> held;
    for (uint32_t s = 0; s < cold.slots; ++s)
      held.insert(cold.slot_expert[r * cold.slots + s]);
    EXPECT_EQ(held.size(), cold.slots) << "rank " << r;
  }
  EXPECT_THROW(ExpertPlacement::balanced({1, 1}, 2, 3), std::invalid_argument);
}

}  // namespace
}  // namespace tiersim
