// The extent allocator: fragmentation metrics by hand, and a randomized run of allocations,
// frees, references and budgeted compactions that checks after every operation that extents
// never overlap, bytes add up, and no extent with in-flight references is ever moved.
#include "accelerators/policies/extent_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "models/core/rng.h"

namespace tiersim {
namespace {

constexpr uint64_t kPage = 4096;

TEST(ExtentAllocator, MetricsByHand) {
  ExtentAllocator a(16 * kPage);
  auto x = *a.allocate(4 * kPage);
  auto y = *a.allocate(4 * kPage);
  auto z = *a.allocate(4 * kPage);
  (void)z;
  a.free(x);  // holes: [0, 4) and [12, 16) pages
  const auto m = a.metrics();
  EXPECT_EQ(m.free_bytes, 8 * kPage);
  EXPECT_EQ(m.largest_free_extent, 4 * kPage);
  EXPECT_EQ(m.holes, 2u);
  EXPECT_DOUBLE_EQ(m.external, 0.5);
  EXPECT_DOUBLE_EQ(m.entropy_bits, 1.0);
  // 5 pages fit nowhere although 8 are free; compaction slides y and z down, then they fit.
  EXPECT_FALSE(a.allocate(5 * kPage));
  a.acquire(y);
  EXPECT_TRUE(a.compact().empty());  // y is referenced and z already follows it: nothing moves
  EXPECT_EQ(a.offset(y), 4 * kPage);
  a.release(y);
  const auto moves = a.compact();
  ASSERT_EQ(moves.size(), 2u);
  EXPECT_EQ(a.offset(y), 0u);
  EXPECT_EQ(a.metrics().holes, 1u);
  EXPECT_DOUBLE_EQ(a.metrics().external, 0.0);
  EXPECT_TRUE(a.allocate(5 * kPage));
}

TEST(ExtentAllocator, BestFitTakesTheSmallestHole) {
  ExtentAllocator a(20 * kPage);
  auto p = *a.allocate(6 * kPage);
  auto q = *a.allocate(2 * kPage);
  auto r = *a.allocate(2 * kPage);
  auto s = *a.allocate(2 * kPage);
  (void)q;
  (void)s;
  a.free(p);  // hole of 6 at 0
  a.free(r);  // hole of 2 at 8
  const auto h = *a.allocate(2 * kPage, Fit::kBest);
  EXPECT_EQ(a.offset(h), 8 * kPage);
  const auto f = *a.allocate(2 * kPage, Fit::kFirst);
  EXPECT_EQ(a.offset(f), 0u);
}

// Targeted compaction: A [0,4) C [6,10) D [10,12) pages, holes [4,6) and [12,16): 6 free pages,
// none contiguous. Windows: from 0 (move A, 4 pages, to [12,16)), from 4 (move C, 4 pages), from
// 10 (move D, 2 pages, into [4,6)): the last moves the fewest bytes.
TEST(ExtentAllocator, MakeRoomMovesTheFewestBytes) {
  ExtentAllocator a(16 * kPage);
  auto A = *a.allocate(4 * kPage);
  auto B = *a.allocate(2 * kPage);
  auto C = *a.allocate(4 * kPage);
  auto D = *a.allocate(2 * kPage);
  a.free(B);
  ASSERT_FALSE(a.allocate(6 * kPage));
  EXPECT_TRUE(a.make_room(6 * kPage, kPage).empty());  // budget below the cheapest window
  const auto moves = a.make_room(6 * kPage);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].handle, D);
  EXPECT_EQ(moves[0].from, 10 * kPage);
  EXPECT_EQ(moves[0].to, 4 * kPage);
  EXPECT_EQ(moves[0].bytes, 2 * kPage);
  auto E = a.allocate(6 * kPage);
  ASSERT_TRUE(E);
  EXPECT_EQ(a.offset(*E), 10 * kPage);
  // A referenced extent is never in the window: with D referenced the next best moves C.
  a.free(*E);
  ExtentAllocator b(16 * kPage);
  auto A2 = *b.allocate(4 * kPage);
  auto B2 = *b.allocate(2 * kPage);
  auto C2 = *b.allocate(4 * kPage);
  auto D2 = *b.allocate(2 * kPage);
  b.free(B2);
  b.acquire(D2);
  const auto m2 = b.make_room(6 * kPage);
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_NE(m2[0].handle, D2);
  EXPECT_EQ(m2[0].bytes, 4 * kPage);
  EXPECT_TRUE(b.allocate(6 * kPage));
  (void)A;
  (void)C;
  (void)A2;
  (void)C2;
}

TEST(ExtentAllocator, RandomizedInvariantsAndSafeCompaction) {
  Rng rng(17);
  ExtentAllocator a(1024 * kPage);
  std::vector<ExtentAllocator::Handle> live;
  uint64_t compactions = 0, moved_total = 0, refused = 0, rooms = 0;
  for (int op = 0; op < 20000; ++op) {
    const uint64_t r = rng.below(100);
    if (r < 40) {
      const auto h =
          a.allocate((1 + rng.below(48)) * kPage, rng.below(2) ? Fit::kFirst : Fit::kBest);
      if (h) {
        live.push_back(*h);
      } else {
        ++refused;
      }
    } else if (r < 70 && !live.empty()) {
      const size_t i = rng.below(live.size());
      if (a.references(live[i]) == 0) {
        a.free(live[i]);
        live[i] = live.back();
        live.pop_back();
      }
    } else if (r < 82 && !live.empty()) {
      a.acquire(live[rng.below(live.size())]);
    } else if (r < 94 && !live.empty()) {
      const auto h = live[rng.below(live.size())];
      if (a.references(h) > 0) a.release(h);
    } else {
      // Compaction within a budget: referenced extents must not move.
      std::map<ExtentAllocator::Handle, uint64_t> pinned;
      for (auto h : live)
        if (a.references(h) > 0) pinned[h] = a.offset(h);
      const uint64_t budget = rng.below(2) ? UINT64_MAX : rng.below(256) * kPage;
      uint64_t moved = 0;
      if (rng.below(2)) {
        for (const auto& m : a.compact(budget)) {
          ASSERT_EQ(a.references(m.handle), 0u) << "op " << op;
          ASSERT_LT(m.to, m.from);
          moved += m.bytes;
        }
      } else {
        // Targeted: room for one allocation that does not fit; afterwards it does.
        const uint64_t want = (1 + rng.below(96)) * kPage;
        const auto moves = a.make_room(want, budget);
        for (const auto& m : moves) {
          ASSERT_EQ(a.references(m.handle), 0u) << "op " << op;
          moved += m.bytes;
        }
        if (!moves.empty()) {
          ++rooms;
          const auto h = a.allocate(want, rng.below(2) ? Fit::kFirst : Fit::kBest);
          ASSERT_TRUE(h) << "make_room without room at op " << op;
          live.push_back(*h);
        }
      }
      ASSERT_LE(moved, budget);
      moved_total += moved;
      for (const auto& [h, off] : pinned)
        ASSERT_EQ(a.offset(h), off) << "a referenced extent moved at op " << op;
      ++compactions;
    }
    // Extents in bounds, disjoint; used + free = capacity; metrics consistent.
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    uint64_t used = 0;
    for (auto h : live) {
      spans.push_back({a.offset(h), a.size(h)});
      used += a.size(h);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 0; i < spans.size(); ++i) {
      ASSERT_LE(spans[i].first + spans[i].second, a.capacity());
      if (i > 0) {
        ASSERT_GE(spans[i].first, spans[i - 1].first + spans[i - 1].second);
      }
    }
    const auto m = a.metrics();
    ASSERT_EQ(used + m.free_bytes, a.capacity());
    ASSERT_LE(m.largest_free_extent, m.free_bytes);
    ASSERT_GE(m.external, 0.0);
    ASSERT_LE(m.external, 1.0);
  }
  EXPECT_GT(compactions, 500u);
  EXPECT_GT(moved_total, 0u);
  EXPECT_GT(refused, 0u);  // the pool was under pressure
  EXPECT_GT(rooms, 10u);
  // With every reference released, an unbounded compaction leaves one hole at most.
  for (auto h : live)
    while (a.references(h) > 0)
      a.release(h);
  a.compact();
  EXPECT_LE(a.metrics().holes, 1u);
  EXPECT_DOUBLE_EQ(a.metrics().external, 0.0);
}

}  // namespace
}  // namespace tiersim
