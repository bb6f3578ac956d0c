// Why bytes move: the TLM extension every movement carries, so that memories, links and
// monitors can account bytes by object, class, reason, layer and token without guessing.
#pragma once

#include <tlm>

#include "models/core/ids.h"
#include "models/core/objects.h"

namespace tiersim {

enum class MoveOp : uint8_t {
  kDemandFetch,  // the consumer is waiting for it
  kPrefetch,     // issued ahead of need
  kWriteBack,    // produced data returned to its home (KV append)
  kEvict,
  kPromote,
  kDemote,
  kRecompute,
  kCompact,  // an extent slid within a memory by compaction
};
const char* move_op_name(MoveOp op);
constexpr int kMoveOps = 8;

struct MovementIntent : tlm::tlm_extension<MovementIntent> {
  ObjectId object;
  ObjectClass object_class = ObjectClass::kWeight;
  MoveOp op = MoveOp::kDemandFetch;
  OpId op_id;
  LayerId layer;
  StepIndex token;  // decode step that caused the movement
  Tier source = Tier::kNone;
  Tier destination = Tier::kNone;
  uint8_t priority = 0;  // higher is more urgent

  tlm::tlm_extension_base* clone() const override { return new MovementIntent(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const MovementIntent&>(other);
  }
};

}  // namespace tiersim
