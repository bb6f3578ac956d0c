// Time and unit helpers. Inside models time is integer picoseconds (TimePs) or sc_time; never
// floating seconds. Conversions to seconds happen only when results are reported. Plain C++:
// the conversions to and from SystemC time are in sim_time.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tiersim {

using TimePs = uint64_t;

// The latest simulated time a run may reach: 2^62 ps (about 53 days). Every delay a model
// computes is checked against it, so a time plus a delay never wraps a 64-bit picosecond count;
// a run that would pass it ends with RunInputError, never with a saturated or wrapped time.
constexpr TimePs kMaxSimTimePs = TimePs{1} << 62;

// An input that makes the run impossible to simulate faithfully, found only while it runs (a
// delay past kMaxSimTimePs, a trace that turns out corrupt): the run ends with exit code 2 and
// this message. SystemC turns an exception thrown inside a process into its own report, so
// raise_run_input_error() also records the message for the driver to recover (see
// take_run_input_error()).
class RunInputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
[[noreturn]] void raise_run_input_error(const std::string& message);
// The message of the last raise_run_input_error() not yet taken, or "" (and clears it).
std::string take_run_input_error();

// Checks a delay computed in floating point before it becomes a TimePs (a cast of a value past
// 2^64, infinity or NaN is undefined behaviour).
[[noreturn]] void raise_delay_overflow(double ps, const char* what, double amount, double rate);

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
// A result past kMaxSimTimePs (a rate of zero, or one degraded to almost nothing) raises
// RunInputError.
inline TimePs transfer_time_ps(uint64_t bytes, double bytes_per_s) {
  if (bytes == 0) return 0;
  const double ps = std::ceil(static_cast<double>(bytes) * kPsPerS / bytes_per_s);
  if (!(ps <= static_cast<double>(kMaxSimTimePs))) {
    raise_delay_overflow(ps, "bytes", static_cast<double>(bytes), bytes_per_s);
  }
  return static_cast<TimePs>(ps);
}

// Time to execute `flops` at `flops_per_s`, rounded up to whole picoseconds (same limit).
inline TimePs compute_time_ps(double flops, double flops_per_s) {
  if (flops <= 0) return 0;
  const double ps = std::ceil(flops * kPsPerS / flops_per_s);
  if (!(ps <= static_cast<double>(kMaxSimTimePs))) {
    raise_delay_overflow(ps, "FLOPs", flops, flops_per_s);
  }
  return static_cast<TimePs>(ps);
}

// a + b, raising RunInputError when the sum passes kMaxSimTimePs (`what` names the delay).
inline TimePs add_time_ps(TimePs a, TimePs b, const char* what) {
  if (a > kMaxSimTimePs || b > kMaxSimTimePs - a) {
    raise_run_input_error(std::string(what) + " would move simulated time past 2^62 ps");
  }
  return a + b;
}

}  // namespace tiersim
