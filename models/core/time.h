// Time and unit helpers. Inside models time is integer picoseconds (TimePs) or sc_time; never
// floating seconds. Conversions to seconds happen only when results are reported. Plain C++:
// the conversions to and from SystemC time are in sim_time.h.
#pragma once

#include <cmath>
#include <cstdint>

namespace tiersim {

using TimePs = uint64_t;

constexpr TimePs kPsPerNs = 1000;
constexpr TimePs kPsPerUs = 1000 * kPsPerNs;
constexpr TimePs kPsPerMs = 1000 * kPsPerUs;
constexpr double kPsPerS = 1e12;

inline double ps_to_s(TimePs ps) {
  return static_cast<double>(ps) / kPsPerS;
}
inline double ps_to_ms(TimePs ps) {
  return static_cast<double>(ps) / kPsPerMs;
}

// Time to move `bytes` at `bytes_per_s`, rounded up to whole picoseconds. Contract: the result
// depends only on its arguments (IEEE double arithmetic), so it is identical on every machine.
inline TimePs transfer_time_ps(uint64_t bytes, double bytes_per_s) {
  if (bytes == 0) return 0;
  return static_cast<TimePs>(std::ceil(static_cast<double>(bytes) * kPsPerS / bytes_per_s));
}

// Time to execute `flops` at `flops_per_s`, rounded up to whole picoseconds.
inline TimePs compute_time_ps(double flops, double flops_per_s) {
  if (flops <= 0) return 0;
  return static_cast<TimePs>(std::ceil(flops * kPsPerS / flops_per_s));
}

}  // namespace tiersim
