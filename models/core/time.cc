#include "models/core/time.h"

#include <cstdio>

namespace tiersim {

namespace {
std::string& pending_run_input_error() {
  static std::string message;
  return message;
}
}  // namespace

void raise_run_input_error(const std::string& message) {
  pending_run_input_error() = message;
  throw RunInputError(message);
}

std::string take_run_input_error() {
  std::string m;
  m.swap(pending_run_input_error());
  return m;
}

void raise_delay_overflow(double ps, const char* what, double amount, double rate) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "%.6g %s at %.6g per second would take %.6g s of simulated time, past the limit "
                "of 2^62 ps (about 53 days); check the rates and degradations in the config",
                amount, what, rate, ps / kPsPerS);
  raise_run_input_error(buf);
}

}  // namespace tiersim
