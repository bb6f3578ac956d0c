// The shape of one wired-residency directive (policy.orchestration.wired.program[i], or a
// trace's recorded program): an op, objects for all but SET_QUOTA (names, or prefixes ending in
// one '*'), quota_bytes for SET_QUOTA only, grace_ps for SOFT_PIN only. What it names and whether
// it fits are checked against the objects before the run (accelerators/orchestration/
// residency_program.h).
#pragma once

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"

namespace tiersim {

void validate_wired_directive(const config::WiredDirective& d, Validator& v);

}  // namespace tiersim
