#include "models/core/movement_intent.h"

namespace tiersim {

const char* move_op_name(MoveOp op) {
  switch (op) {
    case MoveOp::kDemandFetch:
      return "demand_fetch";
    case MoveOp::kPrefetch:
      return "prefetch";
    case MoveOp::kWriteBack:
      return "write_back";
    case MoveOp::kEvict:
      return "evict";
    case MoveOp::kPromote:
      return "promote";
    case MoveOp::kDemote:
      return "demote";
    case MoveOp::kCompact:
      return "compact";
    case MoveOp::kRecompute:
      return "recompute";
  }
  return "unknown";
}

}  // namespace tiersim
