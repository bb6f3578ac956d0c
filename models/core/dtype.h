// Element widths of the schema's dtypes, shared by workloads (byte counts) and movement
// policies (precision states).
#pragma once

#include <cstdint>

#include "configs/tiersim.pb.h"

namespace tiersim {

// Bits per element of a dtype (0 for DTYPE_UNSPECIFIED).
uint32_t dtype_bits(config::Dtype d);
// Bytes of `elements` elements of dtype `d`, rounded up.
uint64_t dtype_bytes(config::Dtype d, uint64_t elements);

}  // namespace tiersim
