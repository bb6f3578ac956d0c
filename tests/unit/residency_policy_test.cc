// Residency policies against hand examples, an exhaustive optimum, and each other: the oracle
// moves no more bytes than any policy on every workload of a test set; regret-aware eviction
// beats LRU on adversarial bursts and not on a periodic sweep; the thrash budget bounds
// migration bytes per epoch under deliberately wrong intent; ARC resists scans.
#include "accelerators/policies/residency_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>

#include "models/core/rng.h"

namespace tiersim {
namespace {

constexpr uint64_t kPage = 2 << 20;

PolicyStats run(PolicyKind kind, uint32_t frames, const std::vector<PageKey>& stream,
                const std::function<void(ResidencyPolicy&)>& setup = nullptr, PolicyParams p = {}) {
  p.frames = frames;
  p.page_bytes = kPage;
  auto policy = make_policy(kind, p);
  if (setup) setup(*policy);
  return run_policy(*policy, stream);
}

// Fewest misses over every admit/bypass/victim choice (bitmask DP over resident sets).
uint64_t optimum_misses(const std::vector<PageKey>& stream, uint32_t frames, uint32_t pages) {
  std::map<uint32_t, uint64_t> best{{0u, 0}};
  for (PageKey page : stream) {
    std::map<uint32_t, uint64_t> next;
    auto relax = [&](uint32_t s, uint64_t c) {
      auto it = next.find(s);
      if (it == next.end() || c < it->second) next[s] = c;
    };
    const uint32_t bit = 1u << page;
    for (const auto& [set, cost] : best) {
      if (set & bit) {
        relax(set, cost);
        continue;
      }
      relax(set, cost + 1);  // bypass
      if (uint32_t(__builtin_popcount(set)) < frames) {
        relax(set | bit, cost + 1);
      } else {
        for (uint32_t v = 0; v < pages; ++v) {
          if (set & (1u << v)) relax((set & ~(1u << v)) | bit, cost + 1);
        }
      }
    }
    best = std::move(next);
  }
  uint64_t m = UINT64_MAX;
  for (const auto& [s, c] : best)
    m = std::min(m, c);
  return m;
}

TEST(ResidencyPolicy, BeladyEqualsTheExhaustiveOptimum) {
  Rng rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    const uint32_t pages = 3 + uint32_t(rng.below(4));
    const uint32_t frames = 1 + uint32_t(rng.below(3));
    std::vector<PageKey> s(6 + rng.below(10));
    for (auto& x : s)
      x = rng.below(pages);
    EXPECT_EQ(run(PolicyKind::kBelady, frames, s).misses, optimum_misses(s, frames, pages))
        << "trial " << trial;
  }
}

TEST(ResidencyPolicy, HandExamples) {
  // LRU, 2 frames: 1 2 1 3 2 -> miss miss hit miss(evicts 2) miss(evicts 1).
  const std::vector<PageKey> s = {1, 2, 1, 3, 2};
  EXPECT_EQ(run(PolicyKind::kLru, 2, s).hits, 1u);
  // LFU, 2 frames: 1 1 2 3 1 -> 3 evicts 2 (freq 1, older than... 2 is the only freq-1 page).
  const auto lfu = run(PolicyKind::kLfu, 2, {1, 1, 2, 3, 1});
  EXPECT_EQ(lfu.hits, 2u);
  // Belady, 2 frames: 1 2 3 1 2 -> 3 is used never again: bypassed; 1 and 2 hit.
  const auto b = run(PolicyKind::kBelady, 2, {1, 2, 3, 1, 2});
  EXPECT_EQ(b.hits, 2u);
  EXPECT_EQ(b.admissions, 2u);
  // STREAM never keeps anything; STATIC keeps exactly its pages.
  EXPECT_EQ(run(PolicyKind::kStream, 4, s).hits, 0u);
  PolicyParams sp;
  sp.static_pages = {1};
  const auto st = run(PolicyKind::kStatic, 4, s, nullptr, sp);
  EXPECT_EQ(st.hits, 1u);  // 1 is loaded by its first access, then hits
  EXPECT_EQ(st.admissions, 1u);
  EXPECT_EQ(st.bytes_moved, 4 * kPage);
}

// Workloads of the test set: a decode-like cyclic layer stream larger than the cache, uniform
// random, skewed (Zipf-like), hot set with bursts, a MoE-like mix (dense pages every step plus
// a few of many experts), and scans between double passes over a hot set.
std::vector<std::pair<std::string, std::vector<PageKey>>> workloads() {
  std::vector<std::pair<std::string, std::vector<PageKey>>> w;
  Rng rng(11);
  std::vector<PageKey> cyclic;
  for (int step = 0; step < 20; ++step)
    for (PageKey p = 0; p < 100; ++p)
      cyclic.push_back(p);
  w.push_back({"cyclic", cyclic});
  std::vector<PageKey> uniform(3000);
  for (auto& x : uniform)
    x = rng.below(200);
  w.push_back({"uniform", uniform});
  std::vector<PageKey> skew(3000);
  for (auto& x : skew) {
    const double u = rng.uniform();
    x = PageKey(200 * u * u * u);  // mass near 0
  }
  w.push_back({"skewed", skew});
  std::vector<PageKey> burst;
  PageKey cold = 1000;
  for (int round = 0; round < 100; ++round) {
    for (PageKey h = 0; h < 8; ++h)
      burst.push_back(h);
    for (int b = 0; b < 8; ++b)
      burst.push_back(cold++);
  }
  w.push_back({"burst", burst});
  std::vector<PageKey> moe;
  for (int step = 0; step < 40; ++step) {
    for (PageKey p = 0; p < 30; ++p)
      moe.push_back(p);
    for (int e = 0; e < 6; ++e)
      moe.push_back(100 + rng.below(64));
  }
  w.push_back({"moe", moe});
  std::vector<PageKey> scan;
  for (int r = 0; r < 30; ++r) {
    for (int twice = 0; twice < 2; ++twice)
      for (PageKey h = 0; h < 10; ++h)
        scan.push_back(h);
    for (int k = 0; k < 20; ++k)
      scan.push_back(500 + PageKey(r * 20 + k));
  }
  w.push_back({"scan_hot", scan});
  return w;
}

// The oracle moves no more bytes than any policy, on every workload and capacity.
TEST(ResidencyPolicy, OracleMovesNoMoreBytesThanAnyPolicy) {
  const PolicyKind others[] = {PolicyKind::kStream, PolicyKind::kLru,
                               PolicyKind::kLfu,    PolicyKind::kArc,
                               PolicyKind::kRegret, PolicyKind::kConfidence,
                               PolicyKind::kStatic, PolicyKind::kPredictedRegret};
  for (const auto& [name, stream] : workloads()) {
    for (uint32_t frames : {1u, 4u, 16u, 64u}) {
      const uint64_t oracle = run(PolicyKind::kBelady, frames, stream).bytes_moved;
      for (PolicyKind k : others) {
        PolicyParams p;
        for (PageKey x = 0; x < frames; ++x)
          p.static_pages.push_back(x);
        p.budget_migration_bytes = 8 * kPage;
        const uint64_t bytes = run(k, frames, stream, nullptr, p).bytes_moved;
        EXPECT_LE(oracle, bytes) << name << " frames " << frames << " " << policy_kind_name(k);
        if (k == PolicyKind::kLru && frames == 16) {
          std::cout << name << ": oracle " << oracle / kPage << " pages, LRU " << bytes / kPage
                    << "\n";
        }
      }
    }
  }
}

// Regret-aware eviction (w_r 6, horizon 24) against LRU, 12 frames. Adversarial bursts (8 hot
// pages, then 8 one-shot pages, repeated): LRU evicts hot pages during each burst and refetches
// them; regret protects the pages it regretted evicting. A periodic sweep over 20 pages: neither
// keeps anything useful (every page's reuse distance exceeds the cache), so regret cannot beat
// LRU there.
TEST(ResidencyPolicy, RegretBeatsLruOnBurstsNotOnAPeriodicSweep) {
  const auto w = workloads();
  const auto& burst = w[3].second;
  const auto lru = run(PolicyKind::kLru, 12, burst);
  const auto regret = run(PolicyKind::kRegret, 12, burst);
  std::cout << "bursts: LRU hit " << lru.hit_rate() << ", regret hit " << regret.hit_rate() << "\n";
  EXPECT_LT(regret.bytes_moved, lru.bytes_moved);
  std::vector<PageKey> sweep;
  for (int r = 0; r < 100; ++r)
    for (PageKey p = 0; p < 20; ++p)
      sweep.push_back(p);
  const auto lru_s = run(PolicyKind::kLru, 12, sweep);
  const auto regret_s = run(PolicyKind::kRegret, 12, sweep);
  std::cout << "sweep: LRU hit " << lru_s.hit_rate() << ", regret hit " << regret_s.hit_rate()
            << "\n";
  EXPECT_EQ(lru_s.hits, 0u);
  EXPECT_GE(regret_s.bytes_moved, lru_s.bytes_moved);
}

// Rounds of 4 hot pages then 6 one-shot pages (from 1000 up); `intent` forecasts the hot pages
// at `hot_mu` and the one-shot pages at `cold_mu` (groups 1 and 2).
struct HotAndOneShot {
  std::vector<PageKey> stream;
  PageKey cold_end = 1000;
  explicit HotAndOneShot(int rounds) {
    for (int r = 0; r < rounds; ++r) {
      for (PageKey h = 0; h < 4; ++h)
        stream.push_back(h);
      for (int k = 0; k < 6; ++k)
        stream.push_back(cold_end++);
    }
  }
  std::function<void(ResidencyPolicy&)> intent(double hot_mu, double cold_mu) const {
    const PageKey end = cold_end;
    return [=](ResidencyPolicy& p) {
      for (PageKey h = 0; h < 4; ++h)
        p.set_intent(h, {hot_mu, 0.05, 1});
      for (PageKey c = 1000; c < end; ++c)
        p.set_intent(c, {cold_mu, 0.05, 2});
    };
  }
};

// Deliberately wrong intent: pages used once are forecast as sure to be reused (mu 0.95) and the
// hot pages as never (mu 0.05). Without a budget the policy admits every one-shot page
// (migration bytes per epoch = every miss); with a budget of 4 pages per 20-access epoch it
// never moves more than that in an epoch and falls back to demand only.
TEST(ResidencyPolicy, ThrashBudgetBoundsMigrationUnderWrongIntent) {
  const HotAndOneShot w(200);
  const auto& stream = w.stream;
  const auto wrong = w.intent(0.05, 0.95);
  PolicyParams unlimited;
  const auto free = run(PolicyKind::kConfidence, 8, stream, wrong, unlimited);
  PolicyParams budget;
  budget.budget_migration_bytes = 4 * kPage;
  auto policy = [&] {
    PolicyParams p = budget;
    p.frames = 8;
    p.page_bytes = kPage;
    return make_policy(PolicyKind::kConfidence, p);
  }();
  wrong(*policy);
  const auto bounded = run_policy(*policy, stream);
  std::cout << "wrong intent: admissions " << free.admissions << " unbounded, "
            << bounded.admissions << " with the budget; max epoch migration "
            << policy->max_epoch_migration_bytes() / kPage << " pages, fallback epochs "
            << policy->fallback_epochs() << "\n";
  EXPECT_GE(free.admissions, 1000u);  // every one-shot page admitted
  EXPECT_LE(policy->max_epoch_migration_bytes(), 4 * kPage);
  EXPECT_GT(policy->fallback_epochs(), 0u);
  EXPECT_LT(bounded.admissions, free.admissions / 2);
  // With right intent the same policy keeps the hot pages and admits nothing else.
  const auto good = run(PolicyKind::kConfidence, 8, stream, w.intent(0.95, 0.05), budget);
  EXPECT_EQ(good.admissions, 4u);
  EXPECT_EQ(good.hits, 4u * 199);
}

// Blending intent with observation: with the same wrong intent (one-shot pages forecast 0.95,
// hot pages 0.05, each class one group), the blended policy learns that admitted one-shot pages
// leave unused, loses confidence in the intent, stops admitting them and starts keeping the hot
// pages; taken as given, the wrong intent never lets a hot page in.
TEST(ResidencyPolicy, BlendingIntentWithObservationRecoversFromWrongIntent) {
  const HotAndOneShot w(300);
  const auto& stream = w.stream;
  const auto wrong = w.intent(0.05, 0.95);
  PolicyParams given;
  const auto as_given = run(PolicyKind::kConfidence, 8, stream, wrong, given);
  PolicyParams blend;
  blend.blend_eta = 0.2;
  const auto blended = run(PolicyKind::kConfidence, 8, stream, wrong, blend);
  std::cout << "wrong intent: hits " << as_given.hits << " as given, " << blended.hits
            << " blended; admissions " << as_given.admissions << " / " << blended.admissions
            << "\n";
  EXPECT_EQ(as_given.hits, 0u);
  EXPECT_GT(blended.hits, 4u * 200);  // the hot pages hit in most rounds
  EXPECT_LT(blended.admissions, as_given.admissions / 10);
}

// ARC keeps a hot set (each page used twice in a row, so it is in ARC's frequency list) through
// scans of one-time pages longer than the cache, which flush LRU.
TEST(ResidencyPolicy, ArcResistsScans) {
  const auto w = workloads();
  const auto& scan = w[5].second;
  const auto lru = run(PolicyKind::kLru, 16, scan);
  const auto arc = run(PolicyKind::kArc, 16, scan);
  std::cout << "scan with hot set: LRU hit " << lru.hit_rate() << ", ARC hit " << arc.hit_rate()
            << "\n";
  EXPECT_GT(arc.hits, lru.hits);
  for (const auto& [name, stream] : w) {
    PolicyParams pp;
    pp.frames = 16;
    pp.page_bytes = kPage;
    auto p = make_policy(PolicyKind::kArc, pp);
    for (uint64_t i = 0; i < stream.size(); ++i) {
      p->access(stream[i], i);
      ASSERT_LE(p->resident_count(), 16u) << name;
    }
  }
}

// Predictive regret (R = P(reuse) x stall penalty x remaining lifetime): on a cycle of 10 near
// pages (home HBM, penalty 1) and 10 far pages (home NVMe, penalty 100) through 10 frames, LRU
// keeps nothing (the cycle is twice the cache) while predictive regret keeps the far pages and
// denies the near ones a frame, so every refetch after the first pass is a cheap one; the
// stall-weighted refetch cost falls by more than 10x. Pages whose expected accesses are used
// up leave first.
TEST(ResidencyPolicy, PredictedRegretKeepsWhatIsCostlyToRefetch) {
  std::vector<PageKey> stream;
  for (int r = 0; r < 50; ++r)
    for (PageKey p = 0; p < 20; ++p)
      stream.push_back(p < 10 ? p : 100 + p);
  auto cost = [&](PolicyKind kind) {
    PolicyParams pp;
    pp.frames = 10;
    pp.page_bytes = kPage;
    auto policy = make_policy(kind, pp);
    for (PageKey p = 0; p < 20; ++p) {
      PageIntent in;
      in.mu = 1.0;
      in.stall_penalty = p < 10 ? 1.0 : 100.0;
      in.remaining_accesses = 50;
      policy->set_intent(p < 10 ? p : 100 + p, in);
    }
    double weighted = 0;
    uint64_t far_hits = 0;
    for (size_t i = 0; i < stream.size(); ++i) {
      const AccessOutcome o = policy->access(stream[i], i);
      if (!o.hit) weighted += stream[i] < 10 ? 1.0 : 100.0;
      if (o.hit && stream[i] >= 100) ++far_hits;
    }
    return std::make_pair(weighted, far_hits);
  };
  const auto lru = cost(PolicyKind::kLru), pr = cost(PolicyKind::kPredictedRegret);
  std::cout << "stall-weighted refetch cost: LRU " << lru.first << ", predicted regret " << pr.first
            << " (far-page hits " << pr.second << ")\n";
  EXPECT_EQ(lru.second, 0u);
  EXPECT_EQ(pr.second, 49u * 10);  // every far access after the first pass
  EXPECT_LT(pr.first * 10, lru.first);

  // Lifetime: page 1 expects one access, page 2 many; after both are used once, a third page
  // evicts page 1 (its remaining lifetime is 0) although page 2 is older.
  PolicyParams pp;
  pp.frames = 2;
  pp.page_bytes = kPage;
  auto policy = make_policy(PolicyKind::kPredictedRegret, pp);
  PageIntent once, many;
  once.mu = many.mu = 1.0;
  once.remaining_accesses = 1;
  many.remaining_accesses = 100;
  policy->set_intent(1, once);
  policy->set_intent(2, many);
  policy->access(2, 0);
  policy->access(1, 1);
  const AccessOutcome o = policy->access(3, 2);
  ASSERT_TRUE(o.victim.has_value());
  EXPECT_EQ(*o.victim, 1u);
}

}  // namespace
}  // namespace tiersim
