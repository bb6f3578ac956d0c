// The scratchpad legality state machine: the legal cycle, every illegal operation from every
// state (refused, state unchanged, violation recorded), dating, and one fence per fill.
#include "accelerators/policies/staging_buffers.h"

#include <gtest/gtest.h>

namespace tiersim {
namespace {

TEST(StagingBuffers, LegalCycleRepeats) {
  StagingBuffers b(2);
  for (TimePs t = 0; t < 100; t += 10) {
    EXPECT_TRUE(b.fill(1, t));
    EXPECT_EQ(b.state(1), BufferState::kFilling);
    EXPECT_TRUE(b.fence(1, t + 3));
    EXPECT_EQ(b.state(1), BufferState::kReady);
    EXPECT_TRUE(b.consume(1, t + 5));
    EXPECT_TRUE(b.release(1, t + 9));
    EXPECT_EQ(b.state(1), BufferState::kReleased);
  }
  EXPECT_EQ(b.fences(), 10u);
  EXPECT_TRUE(b.violations().empty());
  EXPECT_EQ(b.state(0), BufferState::kEmpty);
}

// From each state, exactly one operation is legal; the others are refused without a change.
TEST(StagingBuffers, EveryIllegalOperationIsRefusedAndRecorded) {
  const BufferOp ops[] = {BufferOp::kFill, BufferOp::kFence, BufferOp::kConsume,
                          BufferOp::kRelease};
  auto drive = [](StagingBuffers& b, BufferOp op, TimePs t) {
    switch (op) {
      case BufferOp::kFill:
        return b.fill(0, t);
      case BufferOp::kFence:
        return b.fence(0, t);
      case BufferOp::kConsume:
        return b.consume(0, t);
      case BufferOp::kRelease:
        return b.release(0, t);
    }
    return false;
  };
  // Reaches state k of the cycle: 0 EMPTY, 1 FILLING, 2 READY, 3 CONSUMING, 4 RELEASED.
  auto at_state = [&](int k) {
    StagingBuffers b(1);
    for (int i = 0; i < k; ++i)
      EXPECT_TRUE(drive(b, ops[i], 0));
    return b;
  };
  const BufferOp legal_from[] = {BufferOp::kFill, BufferOp::kFence, BufferOp::kConsume,
                                 BufferOp::kRelease, BufferOp::kFill};
  int refused = 0;
  for (int k = 0; k < 5; ++k) {
    for (BufferOp op : ops) {
      StagingBuffers b = at_state(k);
      const BufferState before = b.state(0);
      const bool ok = drive(b, op, 1);
      EXPECT_EQ(ok, op == legal_from[k]) << "state " << k << " op " << buffer_op_name(op);
      if (!ok) {
        ++refused;
        EXPECT_EQ(b.state(0), before);
        ASSERT_EQ(b.violations().size(), 1u);
        EXPECT_EQ(b.violations()[0].state, before);
        EXPECT_EQ(b.violations()[0].op, op);
      }
    }
  }
  EXPECT_EQ(refused, 15);
}

TEST(StagingBuffers, OneFencePerFillAndNoConsumeBeforeTheFence) {
  StagingBuffers b(1);
  EXPECT_TRUE(b.fill(0, 0));
  EXPECT_FALSE(b.consume(0, 5));  // not READY: no fence yet
  EXPECT_TRUE(b.fence(0, 5));
  EXPECT_FALSE(b.fence(0, 6));  // a second fence for the same fill
  EXPECT_EQ(b.fences(), 1u);
  EXPECT_EQ(b.violations().size(), 2u);
  EXPECT_EQ(b.violations()[1].why, "fence of a READY buffer");
}

TEST(StagingBuffers, OperationsDatedBeforeTheirPredecessorAreRefused) {
  StagingBuffers b(1);
  EXPECT_TRUE(b.fill(0, 100));
  EXPECT_FALSE(b.fence(0, 99));  // landed before it was filled
  EXPECT_TRUE(b.fence(0, 200));
  EXPECT_TRUE(b.consume(0, 250));
  EXPECT_TRUE(b.release(0, 400));
  EXPECT_FALSE(b.fill(0, 300));  // refilled before the consumer released it
  EXPECT_EQ(b.state(0), BufferState::kReleased);
  EXPECT_TRUE(b.fill(0, 400));
  EXPECT_EQ(b.violations().size(), 2u);
  EXPECT_FALSE(b.fill(7, 0));  // no such buffer
}

}  // namespace
}  // namespace tiersim
