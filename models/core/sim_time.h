// Conversions between TimePs and SystemC time, and the kernel's current time. Only SystemC
// modules include this; plain C++ (policies, maths) uses time.h.
#pragma once

#include <systemc>

#include "models/core/time.h"

namespace tiersim {

// SystemC's time resolution is set to 1 ps by the simulation driver, so sc_time and TimePs
// convert exactly.
inline sc_core::sc_time to_sc_time(TimePs ps) {
  return sc_core::sc_time::from_value(static_cast<sc_dt::uint64>(ps));
}
inline TimePs to_ps(const sc_core::sc_time& t) {
  return static_cast<TimePs>(t.value());
}
inline TimePs now_ps() {
  return to_ps(sc_core::sc_time_stamp());
}

}  // namespace tiersim
