// Fuzz target: config text, one file or several merged. The input is split at lines "#---" into
// up to four files, loaded in order (parse, merge, validate) as `tiersim config` does.
#include <string>
#include <vector>

#include "models/config/loader.h"
#include "tests/fuzz/fuzz_support.h"

TIERSIM_FUZZ_SC_MAIN

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> files;
  size_t at = 0;
  while (files.size() < 4) {
    const size_t cut = text.find("\n#---\n", at);
    const std::string part =
        text.substr(at, cut == std::string::npos ? std::string::npos : cut - at);
    const std::string name = "config" + std::to_string(files.size()) + ".textproto";
    files.push_back(tiersim::fuzz::write_input(name, reinterpret_cast<const uint8_t*>(part.data()),
                                               part.size()));
    if (cut == std::string::npos) break;
    at = cut + 6;
  }
  try {
    tiersim::LoadedConfig c = tiersim::load_config(files, {});
    (void)c.resolved_text();
  } catch (const tiersim::ConfigError&) {
  }
  return 0;
}
