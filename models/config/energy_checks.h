// Validation of energy and power fields (pJ per bit or FLOP, watts): when set, a value must be
// finite and zero or positive. Reports `field` under the validator's path (exit code 2 at the CLI).
#pragma once

#include <string>

#include "models/config/errors.h"

namespace tiersim {

// True when absent or finite and >= 0; otherwise reports and returns false.
bool energy_field(Validator& v, const std::string& field, bool present, double value);

}  // namespace tiersim
