// Fuzz target: the text traces a config names: MoE routing traces (first input byte even) and
// serving arrival traces (odd), each parsed and checked as config validation does.
#include <string>
#include <vector>

#include "models/config/errors.h"
#include "tests/fuzz/fuzz_support.h"
#include "workloads/moe_router.h"
#include "workloads/serving.h"

TIERSIM_FUZZ_SC_MAIN

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path = tiersim::fuzz::write_input("input.trace.txt", data + 1, size - 1);
  std::vector<tiersim::ConfigIssue> issues;
  tiersim::Validator v(issues);
  if (data[0] % 2 == 0) {
    tiersim::TraceRouter::Shape shape;
    shape.steps = 4;
    shape.batch = 2;
    shape.experts = 8;
    shape.top_k = 2;
    shape.layers = 4;
    shape.first_moe_layer = 1;
    (void)tiersim::TraceRouter::load(path, shape, v);
  } else {
    (void)tiersim::load_arrival_trace(path, v);
  }
  return 0;
}
