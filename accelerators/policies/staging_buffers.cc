#include "accelerators/policies/staging_buffers.h"

namespace tiersim {

const char* buffer_state_name(BufferState s) {
  switch (s) {
    case BufferState::kEmpty:
      return "EMPTY";
    case BufferState::kFilling:
      return "FILLING";
    case BufferState::kReady:
      return "READY";
    case BufferState::kConsuming:
      return "CONSUMING";
    case BufferState::kReleased:
      return "RELEASED";
  }
  return "?";
}

const char* buffer_op_name(BufferOp op) {
  switch (op) {
    case BufferOp::kFill:
      return "fill";
    case BufferOp::kFence:
      return "fence";
    case BufferOp::kConsume:
      return "consume";
    case BufferOp::kRelease:
      return "release";
  }
  return "?";
}

bool StagingBuffers::step(uint32_t buffer, BufferOp op, TimePs t) {
  if (buffer >= slots_.size()) {
    violations_.push_back({buffer, op, BufferState::kEmpty, t, "no such buffer"});
    return false;
  }
  Slot& s = slots_[buffer];
  BufferState next;
  bool legal = false;
  switch (op) {
    case BufferOp::kFill:
      legal = s.state == BufferState::kEmpty || s.state == BufferState::kReleased;
      next = BufferState::kFilling;
      break;
    case BufferOp::kFence:
      legal = s.state == BufferState::kFilling;
      next = BufferState::kReady;
      break;
    case BufferOp::kConsume:
      legal = s.state == BufferState::kReady;
      next = BufferState::kConsuming;
      break;
    case BufferOp::kRelease:
      legal = s.state == BufferState::kConsuming;
      next = BufferState::kReleased;
      break;
  }
  if (!legal) {
    violations_.push_back(
        {buffer, op, s.state, t,
         std::string(buffer_op_name(op)) + " of a " + buffer_state_name(s.state) + " buffer"});
    return false;
  }
  if (t < s.since_ps) {
    violations_.push_back({buffer, op, s.state, t,
                           std::string(buffer_op_name(op)) + " dated before the buffer became " +
                               buffer_state_name(s.state)});
    return false;
  }
  s.state = next;
  s.since_ps = t;
  if (op == BufferOp::kFence) ++fences_;
  return true;
}

}  // namespace tiersim
