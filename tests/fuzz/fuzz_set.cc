// Fuzz target: --set overrides over the default study (H100, Llama-3-8B, default decode). Each
// input line is one override, applied in order, then the config is validated.
#include <string>
#include <vector>

#include "models/config/loader.h"
#include "tests/fuzz/fuzz_support.h"

TIERSIM_FUZZ_SC_MAIN

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> base = {
      tiersim::fuzz::source_dir() + "/configs/hardware/h100_sxm.textproto",
      tiersim::fuzz::source_dir() + "/configs/models/llama3_8b.textproto",
      tiersim::fuzz::source_dir() + "/configs/studies/default.textproto"};
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> sets;
  size_t at = 0;
  while (at <= text.size() && sets.size() < 16) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    sets.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  try {
    tiersim::LoadedConfig c = tiersim::load_config(base, sets);
    (void)c.resolved_text();
  } catch (const tiersim::ConfigError&) {
  }
  return 0;
}
