// The legality state machine of scratchpad staging buffers (on-package SRAM in scratchpad
// mode), plain C++: every buffer goes EMPTY -> FILLING -> READY -> CONSUMING -> RELEASED, and
// from RELEASED (or EMPTY) it may be filled again.
//   fill     EMPTY or RELEASED -> FILLING   (not before the buffer was released)
//   fence    FILLING -> READY               (the fill has landed; one fence per fill)
//   consume  READY -> CONSUMING             (not before the fence)
//   release  CONSUMING -> RELEASED          (not before the consume began)
// An operation that is not legal in the buffer's state, or that is dated before the transition
// it depends on, is refused: the state does not change and a violation is recorded (never
// silently allowed). Transitions carry times because initiators are loosely timed: they date
// an operation when they schedule it, which may be ahead of the simulation time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/core/time.h"

namespace tiersim {

enum class BufferState : uint8_t { kEmpty, kFilling, kReady, kConsuming, kReleased };
enum class BufferOp : uint8_t { kFill, kFence, kConsume, kRelease };
const char* buffer_state_name(BufferState s);
const char* buffer_op_name(BufferOp op);

struct BufferViolation {
  uint32_t buffer;
  BufferOp op;
  BufferState state;  // the state the operation found
  TimePs at_ps;
  std::string why;
};

class StagingBuffers {
 public:
  explicit StagingBuffers(uint32_t count) : slots_(count) {}

  bool fill(uint32_t buffer, TimePs t) { return step(buffer, BufferOp::kFill, t); }
  bool fence(uint32_t buffer, TimePs t) { return step(buffer, BufferOp::kFence, t); }
  bool consume(uint32_t buffer, TimePs t) { return step(buffer, BufferOp::kConsume, t); }
  bool release(uint32_t buffer, TimePs t) { return step(buffer, BufferOp::kRelease, t); }

  BufferState state(uint32_t buffer) const { return slots_.at(buffer).state; }
  uint32_t size() const { return static_cast<uint32_t>(slots_.size()); }
  uint64_t fences() const { return fences_; }
  const std::vector<BufferViolation>& violations() const { return violations_; }

 private:
  struct Slot {
    BufferState state = BufferState::kEmpty;
    TimePs since_ps = 0;  // time of the transition into `state`
  };
  bool step(uint32_t buffer, BufferOp op, TimePs t);

  std::vector<Slot> slots_;
  std::vector<BufferViolation> violations_;
  uint64_t fences_ = 0;
};

}  // namespace tiersim
