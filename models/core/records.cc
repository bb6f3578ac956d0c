#include "models/core/records.h"

namespace tiersim {

const char* bound_by_name(BoundBy b) {
  switch (b) {
    case BoundBy::kMemory:
      return "memory";
    case BoundBy::kCompute:
      return "compute";
    case BoundBy::kOverhead:
      return "overhead";
  }
  return "unknown";
}

}  // namespace tiersim
