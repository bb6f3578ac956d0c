// The ddr component kind: host DDR channels on the bandwidth-server memory (BandwidthMemory, see
// DdrFast in the schema and docs/models/ddr.md).
#pragma once

#include "configs/tiersim.pb.h"
#include "memory/hbm_fast_core.h"
#include "models/config/errors.h"

namespace tiersim {

void validate_ddr(const config::DdrFast& c, Validator& v);
// Channels as the fast model's stacks, sub-channels as its channel servers.
HbmFastParams ddr_params(const config::DdrFast& c);

}  // namespace tiersim
