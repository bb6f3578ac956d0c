// Fuzz target: op and object traces as a replay reads them (header, then every op record
// checked before a run starts).
#include <string>
#include <vector>

#include "models/config/errors.h"
#include "tests/fuzz/fuzz_support.h"
#include "workloads/replay.h"

TIERSIM_FUZZ_SC_MAIN

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = tiersim::fuzz::write_input("input.trace", data, size);
  std::vector<tiersim::ConfigIssue> issues;
  tiersim::Validator v(issues);
  auto header = tiersim::read_trace_header(path, v);
  if (header) tiersim::validate_trace_ops(path, *header, v);
  return 0;
}
