// Fault injection (system.faults): scheduled link outages and degradations, applied to the
// serial models of the links they name, and device-offline windows that initiators consult
// before they send a request. Plain C++ helpers; the components apply them.
#pragma once

#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "fabric/serial_link.h"
#include "models/config/errors.h"
#include "models/core/time.h"

namespace tiersim {

struct FaultWindow {
  TimePs start_ps, end_ps;  // end kNever: until the end of the run
};

// Checks every fault's target and times (component names, links with serial models).
void validate_faults(const config::System& sys, Validator v);

// Adds the outages and degradations that name `link` to both directions' models (either may be
// null).
void apply_link_faults(const config::System& sys, const std::string& link, LinkModel* to,
                       LinkModel* from);

// The windows during which `component` is offline, by start time.
std::vector<FaultWindow> offline_windows(const config::System& sys, const std::string& component);

// The end of the offline window covering `t`, or `t` when none does (kNever: never back).
TimePs online_after(const std::vector<FaultWindow>& windows, TimePs t);

}  // namespace tiersim
