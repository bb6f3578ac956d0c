#include "models/core/dtype.h"

namespace tiersim {

uint32_t dtype_bits(config::Dtype d) {
  switch (d) {
    case config::FP32:
      return 32;
    case config::BF16:
    case config::FP16:
      return 16;
    case config::FP8:
    case config::INT8:
      return 8;
    case config::INT4:
      return 4;
    default:
      return 0;
  }
}

uint64_t dtype_bytes(config::Dtype d, uint64_t elements) {
  return (elements * dtype_bits(d) + 7) / 8;
}

}  // namespace tiersim
