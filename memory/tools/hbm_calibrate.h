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

#include "memory/tools/dram_patterns.h"

namespace tiersim {

struct HbmCalibration {
  double duration_us = 0;  // what the bandwidth patterns ran (at least the minimum below)
  double efficiency_fraction = 0;
  uint64_t latency_ps = 0;
  double refresh_overhead_fraction = 0;  // refresh's share of streaming bandwidth at x1
  std::vector<std::pair<DramPattern, DramPatternResult>> patterns;
};

// The fast level's per-channel penalties that reproduce the calibration's random and mixed
// bandwidth at saturation, for a component whose channel servers each carry `peak_per_channel`
// bytes/s of pins and whose interleave is `interleave_bytes`:
//   random (64 B reads, one part each): 64/(peak_ch eff_r) = 64/(peak_ch eff_s) + miss
//   2:1 mix (4 KiB): part/(peak_ch eff_m) = part/(peak_ch eff_s) + 2w(1-w) turnaround
// with part = min(4 KiB, interleave) and w = 1/3, eff_s the stream efficiency.
struct FastPenalties {
  uint64_t miss_penalty_ps = 0;
  uint64_t turnaround_ps = 0;
};
FastPenalties derive_fast_penalties(const HbmCalibration& c, double peak_per_channel,
                                    uint64_t interleave_bytes);

// The calibration's default duration (`tiersim calibrate`, and the fast level of a sampled
// detailed run), in simulated microseconds at peak bandwidth.
constexpr double kDefaultCalibrationUs = 200.0;

// Shortest run whose steady window pays refresh in full: 5 x (max_postponed + 1) x tREFI, +10%.
double min_calibration_duration_us(const DramStackSpec& spec);
// `duration_us` sets how long the bandwidth patterns run (simulated, at peak bandwidth); it is
// raised to min_calibration_duration_us() when shorter.
HbmCalibration calibrate_hbm(const DramStackSpec& spec, double duration_us);
void print_calibration(const HbmCalibration& c, const DramStackSpec& spec, std::ostream& os);

// The fast level's fields of an hbm component (config c: its pins, channels and interleave) that
// reproduce calibration `cal` of its device (what `tiersim calibrate` prints).
struct CalibratedFastFields {
  double efficiency_fraction = 0;
  uint64_t latency_ps = 0;
  uint64_t miss_penalty_ps = 0;
  uint64_t turnaround_ps = 0;
  double refresh_overhead_fraction = 0;
};
CalibratedFastFields calibrated_fast_fields(const config::HbmFast& c, const HbmCalibration& cal);
// c's fast level with the fields calibrated from its device (shortest calibration run: about
// 3 s of wall time for HBM3). c valid, with a device.
BandwidthMemoryParams device_calibrated_params(const config::HbmFast& c);

}  // namespace tiersim
