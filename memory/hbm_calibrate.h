// Calibration of the fast HBM level from the command-level device: runs a pattern set on one
// stack and derives efficiency_fraction (from a decode-like stream of 2 MiB tiles, four in
// flight, as the compute engine's staging buffers issue them) and latency_ps (unloaded random
// 64-byte reads, mean) and refresh_overhead_fraction (stream with and without refresh). The
// other patterns (random, 2:1 read/write mix) are reported. Calibration is at refresh x1 (the
// temperature input scales refresh at run time).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "memory/dram_patterns.h"

namespace tiersim {

struct HbmCalibration {
  double duration_us = 0;  // what the bandwidth patterns ran (at least the minimum below)
  double efficiency_fraction = 0;
  uint64_t latency_ps = 0;
  double refresh_overhead_fraction = 0;  // refresh's share of streaming bandwidth at x1
  std::vector<std::pair<DramPattern, DramPatternResult>> patterns;
};

// Shortest run whose steady window pays refresh in full: 5 x (max_postponed + 1) x tREFI, +10%.
double min_calibration_duration_us(const DramStackSpec& spec);
// `duration_us` sets how long the bandwidth patterns run (simulated, at peak bandwidth); it is
// raised to min_calibration_duration_us() when shorter.
HbmCalibration calibrate_hbm(const DramStackSpec& spec, double duration_us);
void print_calibration(const HbmCalibration& c, const DramStackSpec& spec, std::ostream& os);

}  // namespace tiersim
