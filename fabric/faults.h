// Fault injection (system.faults): scheduled link outages and degradations, applied to the
// serial models of the links they name; device-offline windows are in models/core/fault_windows.h
// (memories refuse requests inside them). Plain C++ helpers; the components apply them.
#pragma once

#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "fabric/serial_link.h"
#include "models/config/errors.h"
#include "models/core/fault_windows.h"
#include "models/core/time.h"

namespace tiersim {

// Checks every fault's target and times (device_offline names a memory, link faults a link with
// a serial model).
void validate_faults(const config::System& sys, Validator v);

// Adds the outages and degradations that name `link` to both directions' models (either may be
// null).
void apply_link_faults(const config::System& sys, const std::string& link, LinkModel* to,
                       LinkModel* from);

}  // namespace tiersim
