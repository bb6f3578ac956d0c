// The ddr component kind: host DDR channels on the bandwidth-server memory (BandwidthMemory, see
// DdrFast in the schema and docs/models/ddr.md).
#pragma once

#include "configs/tiersim.pb.h"
#include "memory/bandwidth_memory_core.h"
#include "models/config/errors.h"

namespace tiersim {

void validate_ddr(const config::DdrFast& c, Validator& v);
// Channels as the fast model's stacks, sub-channels as its channel servers.
BandwidthMemoryParams ddr_params(const config::DdrFast& c);

}  // namespace tiersim
