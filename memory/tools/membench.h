// Bandwidth-latency points of one HBM command-level device (the measurement behind `tiersim
// membench`): each point runs a pattern closed loop (a number of outstanding requests) or open
// loop (an injection rate as a fraction of peak) for long enough that refresh is paid in the
// steady window, and records bandwidth, efficiency, mean and p99 latency and row-hit rate.
#pragma once

#include <vector>

#include "memory/dram_spec.h"
#include "memory/tools/dram_patterns.h"
#include "models/core/summary.h"

namespace tiersim {

// One row per load. `base` gives the pattern (name, kind, read fraction, request and stride
// bytes, seed); each point sets its outstanding count or injection rate and total bytes.
// Closed-loop loads must be whole request counts, open-loop loads below 1 (else
// std::invalid_argument). Prints a progress line per point to stdout.
Table membench_points(const DramStackSpec& spec, const DramPattern& base, bool closed_loop,
                      const std::vector<double>& loads, double duration_us);

}  // namespace tiersim
