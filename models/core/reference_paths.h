// The simulator's exact shortcuts, and the switch that turns them off.
//
// Some paths exist only for speed and give bit-identical results: a memory behind an ideal wire
// (or on the compute engine's SRAM socket) served without a TLM payload, and a staging buffer's
// wait skipped when the compute engine's process is the design's only one (docs/performance.md,
// "Fast paths and what they assume"). With TIERSIM_REFERENCE_PATHS=1 in the environment every
// request crosses its socket and every wait is a kernel wait, so a test can run the same config
// both ways and compare whole result files (tests/integration/reference_paths.py). Read once.
#pragma once

#include <cstdlib>
#include <cstring>

namespace tiersim {

inline bool reference_paths() {
  static const bool on = [] {
    const char* v = std::getenv("TIERSIM_REFERENCE_PATHS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

}  // namespace tiersim
