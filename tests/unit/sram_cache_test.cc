// The SRAM cache mode and the wired residency primitive: faults, release and O(1) tenant
// invalidation, soft pins with a grace period, a randomized run with a co-running streaming
// tenant in which no wired line is ever evicted and quotas hold, and the persisting-hint
// baseline losing hit rate to interference while wired lines stay resident.
#include "memory/sram_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>

#include "models/core/rng.h"

namespace tiersim {
namespace {

SramCacheParams small(Replacement r = Replacement::kLru) {
  SramCacheParams p;
  p.capacity_bytes = 64 * 16 * 128;  // 64 sets x 16 ways x 128 B = 128 KiB
  p.line_bytes = 128;
  p.ways = 16;
  p.replacement = r;
  p.max_wired_fraction = 0.5;
  p.persisting_fraction = 0.5;
  p.grace_ps = 1000;
  return p;
}

TEST(SramCache, BindFaultsAndRelease) {
  SramCache c(small());
  EXPECT_EQ(c.bind(0, 4096, 1, 0).fault, BindFault::kQuotaExceeded);  // no quota set
  c.set_quota(1, 64 * 1024);
  EXPECT_EQ(c.bind(64, 4096, 1, 0).fault, BindFault::kMisaligned);
  EXPECT_EQ(c.bind(0, 100, 1, 0).fault, BindFault::kMisaligned);
  const auto a = c.bind(0, 32 * 1024, 1, kPrefetch);
  ASSERT_EQ(a.fault, BindFault::kNone);
  EXPECT_EQ(c.wired_bytes(1), 32u * 1024);
  EXPECT_EQ(c.bind(32 * 1024, 64 * 1024, 1, 0).fault, BindFault::kQuotaExceeded);
  // 8 more lines of one set: set 0 already has 4 wired (lines 0, 64, 128, 192 of the range),
  // the limit is 8 ways: 5 more lines in set 0 fault, atomically.
  c.set_quota(2, 1 << 20);
  const uint64_t stride = 64 * 128;  // same set
  uint64_t wired_before = c.wired_bytes(2);
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(c.bind(stride * (8 + i), 128, 2, 0).fault, BindFault::kNone);
  EXPECT_EQ(c.wired_ways(0), 8u);
  EXPECT_EQ(c.bind(stride * 20, 128, 2, 0).fault, BindFault::kSetFull);
  EXPECT_EQ(c.wired_bytes(2), wired_before + 4 * 128);
  // Release writes back dirty lines, not for IMMUTABLE bindings.
  c.access(0, 1, true);
  EXPECT_EQ(*c.release(a.handle), 128u);
  EXPECT_FALSE(c.release(a.handle).has_value());
  EXPECT_EQ(c.wired_bytes(1), 0u);
  const auto im = c.bind(0, 256, 1, kImmutable);
  c.access(0, 1, true);
  EXPECT_EQ(*c.release(im.handle), 0u);
  // A line pinned by a live binding cannot be bound again.
  const auto first = c.bind(1 << 20, 256, 1, 0);
  ASSERT_EQ(first.fault, BindFault::kNone);
  EXPECT_EQ(c.bind((1 << 20) + 128, 256, 2, 0).fault, BindFault::kAlreadyWired);
}

// PREFETCH fills the range at bind time; without it the ways are reserved and the first access
// to each line is a miss that fetches it.
TEST(SramCache, PrefetchFillsAtBindReservationFillsOnFirstUse) {
  SramCache c(small());
  c.set_quota(1, 1 << 20);
  ASSERT_EQ(c.bind(0, 1024, 1, kPrefetch).fault, BindFault::kNone);
  EXPECT_EQ(c.prefetched_bytes(), 1024u);
  EXPECT_TRUE(c.access(0, 1));
  ASSERT_EQ(c.bind(8192, 1024, 1, 0).fault, BindFault::kNone);
  EXPECT_EQ(c.prefetched_bytes(), 1024u);
  EXPECT_TRUE(c.is_wired_resident(8192));  // its way is held
  EXPECT_FALSE(c.access(8192, 1));         // but the data is fetched on first use
  EXPECT_TRUE(c.access(8192, 1));
}

TEST(SramCache, TenantInvalidationIsImmediate) {
  SramCache c(small());
  c.set_quota(3, 1 << 20);
  const auto h = c.bind(0, 8192, 3, 0);
  ASSERT_EQ(h.fault, BindFault::kNone);
  EXPECT_TRUE(c.is_wired_resident(0));
  c.invalidate_tenant(3);  // one increment: every line and handle of tenant 3 is stale
  EXPECT_FALSE(c.is_wired_resident(0));
  EXPECT_EQ(c.wired_bytes(3), 0u);
  EXPECT_FALSE(c.release(h.handle).has_value());
  EXPECT_FALSE(c.access(0, 3));  // a miss: the line is gone
}

TEST(SramCache, SoftPinsLeaveAfterTheirGracePeriod) {
  SramCache c(small());
  c.set_quota(4, 1 << 20);
  const auto soft = c.bind(0, 1024, 4, kSoftPin, 0);
  const auto hard = c.bind(4096, 1024, 4, 0, 0);
  const auto notices = c.reclaim(4, 500);
  ASSERT_EQ(notices.size(), 1u);  // only the soft pin is asked back
  EXPECT_EQ(notices[0].handle, soft.handle);
  EXPECT_EQ(notices[0].evictable_at_ps, 1500u);
  c.access(9999 * 128, 9, false, false, 1499);
  EXPECT_TRUE(c.is_wired_resident(0));  // still within its grace period
  c.access(9999 * 128, 9, false, false, 1500);
  EXPECT_FALSE(c.is_wired_resident(0));  // now an ordinary line
  EXPECT_TRUE(c.is_wired_resident(4096));
  EXPECT_EQ(c.wired_bytes(4), 1024u);
  (void)hard;
}

// Randomized: tenant 1 binds and releases ranges within its quota while tenant 2 streams
// through four times the capacity and tenants 3-5 bind, access, invalidate and reclaim. After
// every operation: every line of tenant 1's live bindings is resident and wired (never evicted),
// quotas hold and no set has more than its wired limit.
TEST(SramCache, RandomizedWiredLinesAreNeverEvicted) {
  for (Replacement r : {Replacement::kLru, Replacement::kRrip}) {
    SramCache c(small(r));
    Rng rng(r == Replacement::kLru ? 1 : 2);
    const uint64_t quota = 24 * 1024;
    for (uint16_t t = 1; t <= 5; ++t)
      c.set_quota(t, quota);
    std::map<uint32_t, std::pair<uint64_t, uint64_t>> live;  // handle -> range (tenant 1)
    uint64_t stream = 1 << 24;
    for (int op = 0; op < 20000; ++op) {
      const uint64_t roll = rng.below(100);
      if (roll < 60) {
        c.access(stream, 2, rng.below(4) == 0, rng.below(2) == 0);  // streaming tenant
        stream += 128;
      } else if (roll < 70) {
        const uint64_t lines = 1 + rng.below(16);
        const uint64_t at = rng.below(512) * 128;
        const auto b = c.bind(at, lines * 128, 1, rng.below(2) ? kPrefetch : 0);
        if (b.fault == BindFault::kNone) live[b.handle] = {at, lines * 128};
      } else if (roll < 75 && !live.empty()) {
        auto it = live.begin();
        std::advance(it, rng.below(live.size()));
        ASSERT_TRUE(c.release(it->first).has_value());
        live.erase(it);
      } else if (roll < 90) {
        const uint16_t t = static_cast<uint16_t>(3 + rng.below(3));
        c.bind(rng.below(2048) * 128, (1 + rng.below(8)) * 128, t, rng.below(2) ? kSoftPin : 0,
               uint64_t(op) * 10);
      } else if (roll < 93) {
        c.invalidate_tenant(static_cast<uint16_t>(3 + rng.below(3)));
      } else if (roll < 96) {
        c.reclaim(static_cast<uint16_t>(3 + rng.below(3)), uint64_t(op) * 10);
      } else {
        c.access(rng.below(2048) * 128, 1);  // tenant 1 reads its region
      }
      for (uint16_t t = 1; t <= 5; ++t)
        ASSERT_LE(c.wired_bytes(t), quota) << "tenant " << t << " op " << op;
      for (uint32_t s = 0; s < c.params().sets(); ++s)
        ASSERT_LE(c.wired_ways(s), 8u);
      for (const auto& [handle, range] : live) {
        for (uint64_t a = range.first; a < range.first + range.second; a += 128)
          ASSERT_TRUE(c.is_wired_resident(a)) << "handle " << handle << " op " << op;
      }
    }
    EXPECT_GT(live.size(), 0u);
    EXPECT_GT(c.misses(), 10000u);  // the streamer really churned the cache
  }
}

// The persisting-window baseline: tenant 1 re-reads a 32 KiB working set with the persisting
// hint while tenant 2 streams four lines per read, a growing fraction of them also hinted (as a
// co-running job asking for persistence too). Tenant 1's hit rate falls as that interference
// grows; with the working set wired instead it stays 1.
TEST(SramCache, HintBaselineLosesHitsToInterferenceWiredDoesNot) {
  auto hit_rate = [](double hinted, bool wire) {
    SramCache c(small());
    c.set_quota(1, 64 * 1024);
    Rng rng(5);
    const uint64_t ws = 32 * 1024;
    if (wire) {
      EXPECT_EQ(c.bind(0, ws, 1, kPrefetch).fault, BindFault::kNone);
    }
    uint64_t stream = 1 << 24, hits = 0, reads = 0;
    for (int round = 0; round < 50; ++round) {
      for (uint64_t a = 0; a < ws; a += 128) {
        const bool hit = c.access(a, 1, false, true);
        if (round > 0) {
          hits += hit;
          ++reads;
        }
        for (int k = 0; k < 4; ++k, stream += 128)
          c.access(stream, 2, false, rng.uniform() < hinted);
      }
    }
    return double(hits) / double(reads);
  };
  double last = 1.01;
  std::vector<double> rates;
  for (double hinted : {0.0, 0.05, 0.1, 0.2, 0.4, 0.8}) {
    const double h = hit_rate(hinted, false);
    std::cout << "streamer's hinted fraction " << hinted << ": hint baseline hit rate " << h
              << "\n";
    EXPECT_LE(h, last + 0.02) << "hinted " << hinted;
    last = h;
    rates.push_back(h);
    EXPECT_DOUBLE_EQ(hit_rate(hinted, true), 1.0) << "hinted " << hinted;
  }
  EXPECT_GT(rates.front(), 0.99);
  EXPECT_LT(rates.back(), 0.2);
  // Falling, not a cliff: some intermediate interference leaves a partial hit rate.
  EXPECT_TRUE(std::any_of(rates.begin(), rates.end(), [](double r) { return r > 0.2 && r < 0.9; }));
}

}  // namespace
}  // namespace tiersim
