// The region pool of context-region orchestration (accelerators/policies/context_regions.h):
// demotion order by recency and by EMA score, backups (reversible demotion) against losses, the
// coherence veto's locks, competition for a frame, and a randomized check against a reference.
#include "accelerators/policies/context_regions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

namespace tiersim {
namespace {

RegionPolicyParams params(uint32_t frames, bool score = false) {
  RegionPolicyParams p;
  p.frames = frames;
  p.score = score;
  p.mass_per_region = 1.0 / 32;
  return p;
}

TEST(RegionPool, LruDemotesTheLeastRecentlyAttendedAndKeepsABackup) {
  RegionPool pool(params(2));
  for (RegionKey k : {1, 2}) {
    pool.attend(k, 0);
    ASSERT_TRUE(pool.admit(k, 0, false));
  }
  pool.attend(1, 1);  // 2 is now the least recent
  pool.attend(3, 1);
  const auto frame = pool.admit(3, 1, false);
  ASSERT_TRUE(frame);
  EXPECT_EQ(pool.get(2).state, RegionPool::State::kHome);
  EXPECT_TRUE(pool.get(2).demoted);
  EXPECT_EQ(pool.get(3).frame, *frame);
  EXPECT_EQ(pool.counters().demotions, 1u);
  // Re-promotion of a demoted region (its backup at home): counted.
  pool.attend(2, 2);
  ASSERT_TRUE(pool.admit(2, 2, false));
  EXPECT_EQ(pool.counters().repromotions, 1u);
  EXPECT_EQ(pool.get(1).state, RegionPool::State::kHome);  // least recent then
}

TEST(RegionPool, ScoreKeepsHeavyHittersThatLruWouldDemote) {
  // Region 1 attended in 5 steps, region 2 once, later: LRU demotes 1, the score demotes 2.
  for (bool score : {false, true}) {
    RegionPool pool(params(2, score));
    for (uint32_t s = 0; s < 5; ++s)
      pool.attend(1, s);
    ASSERT_TRUE(pool.admit(1, 4, false));
    pool.attend(2, 6);
    ASSERT_TRUE(pool.admit(2, 6, false));
    pool.attend(3, 7);
    ASSERT_TRUE(pool.admit(3, 7, false));
    EXPECT_EQ(pool.get(score ? 2 : 1).state, RegionPool::State::kHome) << score;
    EXPECT_EQ(pool.get(score ? 1 : 2).state, RegionPool::State::kPool) << score;
  }
}

TEST(RegionPool, EmaScoreByHand) {
  // alpha 0.5: attended at steps 0 and 1, then idle: ema 0.5, 0.75; at step 3 it ranks as
  // 0.75 * 0.25 = 0.1875 against a region attended once at step 3 (0.5): the latter is higher.
  RegionPolicyParams p = params(4, true);
  p.alpha = 0.5;
  RegionPool pool(p);
  pool.attend(1, 0);
  pool.attend(1, 1);
  EXPECT_DOUBLE_EQ(pool.get(1).ema, 0.75);
  pool.attend(2, 3);
  ASSERT_TRUE(pool.admit(1, 3, false));
  ASSERT_TRUE(pool.admit(2, 3, false));
  const auto order = pool.order();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order.front(), 1u);  // 0.1875 at step 3 < 0.5
  // The rank is ln(ema) - ema_step ln(1 - alpha): 1 decays from step 1, 2 from step 3.
  EXPECT_NEAR(pool.get(1).rank, std::log(0.75) - 1 * std::log(0.5), 1e-12);
  EXPECT_NEAR(pool.get(2).rank, std::log(0.5) - 3 * std::log(0.5), 1e-12);
}

TEST(RegionPool, WithoutBackupsADemotedRegionIsLost) {
  RegionPolicyParams p = params(1);
  p.backup = false;
  RegionPool pool(p);
  pool.attend(1, 0);
  ASSERT_TRUE(pool.admit(1, 0, false));
  pool.attend(2, 1);
  ASSERT_TRUE(pool.admit(2, 1, false));
  EXPECT_EQ(pool.get(1).state, RegionPool::State::kLost);
  EXPECT_EQ(pool.counters().lost, 1u);
  EXPECT_EQ(pool.counters().demotions, 0u);
}

TEST(RegionPool, CoherenceVetoLocksAttendedRegionsForWSteps) {
  RegionPolicyParams p = params(2);
  p.veto_steps = 2;  // tau 0: every attended region (mass 1/32) is locked
  RegionPool pool(p);
  pool.attend(1, 0);
  pool.attend(2, 0);
  ASSERT_TRUE(pool.admit(1, 0, false));
  ASSERT_TRUE(pool.admit(2, 0, false));
  // Locked through steps 1 and 2: admissions in them are vetoed.
  EXPECT_FALSE(pool.admit(3, 1, false));
  EXPECT_FALSE(pool.admit(3, 2, false));
  EXPECT_EQ(pool.counters().vetoes, 2u);
  EXPECT_EQ(pool.locked_in_pool(), 2u);
  // Step 3: the locks ended, the least recent goes.
  ASSERT_TRUE(pool.admit(3, 3, false));
  EXPECT_EQ(pool.get(1).state, RegionPool::State::kHome);
  // A mass threshold above one region's share disables the lock.
  RegionPolicyParams q = p;
  q.veto_mass = 0.5;
  RegionPool loose(q);
  loose.attend(1, 0);
  ASSERT_TRUE(loose.admit(1, 0, false));
  loose.attend(2, 0);
  ASSERT_TRUE(loose.admit(2, 0, false));
  EXPECT_TRUE(loose.admit(3, 1, false));
}

TEST(RegionPool, ProtectedPromotionsAreNotDemotedUntilTheirLockEnds) {
  RegionPool pool(params(2));
  pool.attend(1, 0);
  ASSERT_TRUE(pool.admit(1, 0, false));
  ASSERT_TRUE(pool.admit(2, 0, false));  // promoted: never attended, lowest rank
  pool.protect(2, 2, 0);
  pool.attend(3, 1);
  ASSERT_TRUE(pool.admit(3, 1, false));  // demotes 1, not the protected 2
  EXPECT_EQ(pool.get(1).state, RegionPool::State::kHome);
  EXPECT_EQ(pool.get(2).state, RegionPool::State::kPool);
  pool.attend(4, 2);
  ASSERT_TRUE(pool.admit(4, 2, false));  // lock over: 2 (never attended) goes
  EXPECT_EQ(pool.get(2).state, RegionPool::State::kHome);
}

TEST(RegionPool, CompetingAdmissionMustOutrankTheLowestRegion) {
  RegionPool pool(params(1, true));
  for (uint32_t s = 0; s < 4; ++s)
    pool.attend(1, s);
  ASSERT_TRUE(pool.admit(1, 3, false));
  pool.attend(2, 3);  // attended once: below region 1
  EXPECT_FALSE(pool.admit(2, 3, true));
  EXPECT_EQ(pool.counters().declined, 1u);
  EXPECT_EQ(pool.get(1).state, RegionPool::State::kPool);
  for (uint32_t s = 4; s < 12; ++s)
    pool.attend(2, s);
  EXPECT_TRUE(pool.admit(2, 11, true));
}

// Randomized: LRU without locks against a reference (a map from last attendance to key); the
// frames in use never exceed the budget and are distinct.
TEST(RegionPool, RandomizedLruMatchesAReference) {
  const uint32_t frames = 16;
  RegionPool pool(params(frames));
  std::mt19937_64 rng(7);
  std::map<RegionKey, uint64_t> ref_last;  // in the reference pool: key -> last attendance
  std::map<RegionKey, uint32_t> seen_step;
  uint64_t clock = 0;
  for (uint32_t step = 0; step < 2000; ++step) {
    for (int i = 0; i < 4; ++i) {
      const RegionKey k = rng() % 48;
      pool.attend(k, step);
      // Only a region's first attendance in a step counts.
      if (seen_step.count(k) && seen_step[k] == step) continue;
      seen_step[k] = step;
      ++clock;
      if (ref_last.count(k)) {
        ref_last[k] = clock;
        ASSERT_EQ(pool.get(k).state, RegionPool::State::kPool);
        continue;
      }
      ASSERT_NE(pool.get(k).state, RegionPool::State::kPool);
      if (ref_last.size() == frames) {
        auto victim = std::min_element(ref_last.begin(), ref_last.end(),
                                       [](auto& a, auto& b) { return a.second < b.second; });
        const RegionKey v = victim->first;
        ref_last.erase(victim);
        ASSERT_TRUE(pool.admit(k, step, false));
        ASSERT_EQ(pool.get(v).state, RegionPool::State::kHome) << "step " << step;
      } else {
        ASSERT_TRUE(pool.admit(k, step, false));
      }
      ref_last[k] = clock;
    }
  }
  std::set<uint32_t> used;
  for (const auto& [k, t] : ref_last)
    used.insert(pool.get(k).frame);
  EXPECT_EQ(used.size(), ref_last.size());
  EXPECT_EQ(pool.in_pool(), ref_last.size());
}

// The compressed (warm) tier: a region demoted from the pool is compressed (reported with the
// frame its data was in) instead of going home; when the tier is full its least recently
// attended region goes home (or is lost without backups); a compressed region admitted again
// leaves the tier.
TEST(RegionPool, DemotionsGoToTheCompressedTierFirst) {
  RegionPolicyParams p = params(1);
  p.compressed_frames = 2;
  RegionPool pool(p);
  for (RegionKey k = 1; k <= 4; ++k) {
    pool.attend(k, k);
    ASSERT_TRUE(pool.admit(k, k, false));
  }
  // 1, 2, 3 demoted in turn: 1 and 2 compressed, then 3 compressed and 1 (least recent) home.
  EXPECT_EQ(pool.get(4).state, RegionPool::State::kPool);
  EXPECT_EQ(pool.get(3).state, RegionPool::State::kCompressed);
  EXPECT_EQ(pool.get(2).state, RegionPool::State::kCompressed);
  EXPECT_EQ(pool.get(1).state, RegionPool::State::kHome);
  EXPECT_EQ(pool.counters().compressions, 3u);
  EXPECT_EQ(pool.counters().demotions, 1u);
  const auto events = pool.take_compressed();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].first, 1u);
  EXPECT_EQ(events[0].second, 0u);  // the pool's only frame
  EXPECT_TRUE(pool.take_compressed().empty());
  EXPECT_NE(pool.get(2).cframe, pool.get(3).cframe);
  // Attending 2 makes 3 the least recent compressed region.
  pool.attend(2, 5);
  pool.attend(5, 5);
  ASSERT_TRUE(pool.admit(5, 5, false));  // demotes 4 into the tier: 3 goes home
  EXPECT_EQ(pool.get(3).state, RegionPool::State::kHome);
  EXPECT_EQ(pool.get(4).state, RegionPool::State::kCompressed);
  // Admitting a compressed region frees its compressed frame, which the pool's victim (5) takes.
  pool.attend(2, 6);
  ASSERT_TRUE(pool.admit(2, 6, false));
  EXPECT_EQ(pool.get(2).state, RegionPool::State::kPool);
  EXPECT_EQ(pool.get(5).state, RegionPool::State::kCompressed);
  // Without backups the tier's evictions are losses.
  RegionPolicyParams q = p;
  q.backup = false;
  q.compressed_frames = 1;
  RegionPool lossy(q);
  for (RegionKey k = 1; k <= 3; ++k) {
    lossy.attend(k, k);
    ASSERT_TRUE(lossy.admit(k, k, false));
  }
  EXPECT_EQ(lossy.get(1).state, RegionPool::State::kLost);
  EXPECT_EQ(lossy.get(2).state, RegionPool::State::kCompressed);
}

}  // namespace
}  // namespace tiersim
