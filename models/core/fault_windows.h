// Device-offline windows of system.faults (the fault kinds themselves are checked and applied to
// links in fabric/faults): when a memory answers no request. Plain C++; memories refuse requests
// inside a window and initiators wait for its end or fail at their timeout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/core/time.h"

namespace tiersim {

struct FaultWindow {
  static constexpr TimePs kNever = UINT64_MAX;
  TimePs start_ps, end_ps;  // end kNever: until the end of the run
};

// The end of fault `f`'s window (kNever for a duration of 0: until the end of the run).
TimePs fault_window_end(const config::Fault& f);

// The windows during which `component` is offline, by start time.
std::vector<FaultWindow> offline_windows(const config::System& sys, const std::string& component);

// The end of the offline window covering `t`, or `t` when none does (kNever: never back).
TimePs online_after(const std::vector<FaultWindow>& windows, TimePs t);

}  // namespace tiersim
