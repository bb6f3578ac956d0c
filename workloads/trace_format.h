// The op and object trace format (`tiersim trace` writes it, the replay workload reads it): a
// length-delimited Protobuf stream of one config::TraceHeader, then one config::TraceOp per op
// in program order (see the schema), and the conversions between ops and their records.
#pragma once

#include <cstdint>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/core/op.h"

namespace tiersim {

// Version 2 adds the ops' quantize_input and kv_elements_per_byte; version 3 the residency
// program in the header. Older traces (without them) replay as recorded.
constexpr uint32_t kTraceVersion = 3;
constexpr uint32_t kOldestTraceVersion = 1;

void op_to_trace(const Op& op, config::TraceOp& out);
// Fills `op` from `t`; operands beyond the op's inline capacity go to `storage`, which must
// outlive the op's use.
void op_from_trace(const config::TraceOp& t, Op& op, std::vector<Operand>& storage);

}  // namespace tiersim
