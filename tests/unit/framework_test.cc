#include <gtest/gtest.h>

#include <type_traits>
#include <vector>

#include "models/core/ids.h"
#include "models/core/payload_pool.h"

namespace tiersim {
namespace {

TEST(StrongId, DistinctTypesAndInvalidDefault) {
  static_assert(!std::is_convertible_v<LayerId, StackId>);
  static_assert(!std::is_convertible_v<uint32_t, ObjectId>);
  EXPECT_FALSE(ObjectId().valid());
  EXPECT_TRUE(ObjectId(3).valid());
  EXPECT_EQ(ObjectId(3), ObjectId(3));
  EXPECT_LT(OpId(1), OpId(2));
}

TEST(PayloadPool, ReusesPayloadsAndResetsIntent) {
  PayloadPool pool(2);
  std::vector<tlm::tlm_generic_payload*> held;
  for (int i = 0; i < 2; ++i)
    held.push_back(pool.acquire());
  EXPECT_EQ(pool.in_flight(), 2u);
  EXPECT_EQ(pool.grown(), 0u);
  PayloadPool::intent(*held[0]).priority = 7;
  PayloadPool::intent(*held[0]).op = MoveOp::kPrefetch;
  for (auto* p : held)
    p->release();
  EXPECT_EQ(pool.in_flight(), 0u);
  // Steady state: acquire/release cycles never grow the pool, and the intent comes back reset.
  for (int i = 0; i < 1000; ++i) {
    auto* p = pool.acquire();
    EXPECT_EQ(PayloadPool::intent(*p).priority, 0);
    EXPECT_EQ(PayloadPool::intent(*p).op, MoveOp::kDemandFetch);
    p->release();
  }
  EXPECT_EQ(pool.grown(), 0u);
  // More in flight than ever before grows it; releasing returns them all.
  held.clear();
  for (int i = 0; i < 5; ++i)
    held.push_back(pool.acquire());
  EXPECT_GE(pool.grown(), 1u);
  EXPECT_EQ(pool.in_flight(), 5u);
  for (auto* p : held)
    p->release();
  EXPECT_EQ(pool.in_flight(), 0u);
}

}  // namespace
}  // namespace tiersim
