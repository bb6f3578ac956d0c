// Fuzz target: result files as `tiersim report` and `sweep collect` read them (seal check, then
// the summary and every table the reader offers).
#include <H5Cpp.h>

#include <string>

#include "models/run/result_file.h"
#include "tests/fuzz/fuzz_support.h"

TIERSIM_FUZZ_SC_MAIN

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = tiersim::fuzz::write_input("input.h5", data, size);
  try {
    tiersim::ResultReader r(path);
    (void)r.summary();
    if (r.exists("/meta/config")) (void)r.read_string("/meta/config");
    if (r.exists("/tokens")) (void)r.read_table("/tokens");
  } catch (const tiersim::ResultFileError&) {
  } catch (const H5::Exception&) {
  }
  return 0;
}
