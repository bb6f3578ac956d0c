// The command-level description of one HBM stack from the config (HbmFast.device): validation,
// including consistency with the stack's pin parameters, and conversion to DramStackSpec.
#pragma once

#include "configs/tiersim.pb.h"
#include "memory/dram_stack.h"
#include "models/config/errors.h"

namespace tiersim {

// Checks every field of `device` and that it matches `stack`: the device's peak bandwidth
// equals the stack's pin bandwidth (within 0.5%, tCK is rounded to ps) and it holds at least
// capacity_bytes_per_stack.
void validate_hbm_device(const config::HbmDevice& device, const config::HbmFast& stack,
                         Validator& v);
// `device` must be valid.
DramStackSpec dram_spec_from_config(const config::HbmDevice& device);

}  // namespace tiersim
