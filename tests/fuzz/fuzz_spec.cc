// Fuzz target: sweep specs (first input byte even) and study specs (odd), parsed, checked and
// planned. The spec is written beside configs/sweeps in a mirror of the source tree, so the
// shipped specs' relative base paths resolve.
#include <filesystem>
#include <stdexcept>
#include <string>

#include "models/config/errors.h"
#include "models/run/study.h"
#include "models/run/sweep.h"
#include "tests/fuzz/fuzz_support.h"

TIERSIM_FUZZ_SC_MAIN

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const fs::path dir = [] {
    const fs::path root = tiersim::fuzz::scratch() / "tree" / "configs";
    fs::create_directories(root / "sweeps");
    fs::create_directories(root / "studies" / "whatif");
    for (const char* d : {"hardware", "models", "software", "validation", "links", "memory",
                          "controllers", "switches"}) {
      const fs::path link = root / d;
      std::error_code ec;
      if (!fs::exists(link)) {
        fs::create_directory_symlink(tiersim::fuzz::source_dir() + "/configs/" + d, link, ec);
      }
    }
    return root / "sweeps";
  }();
  const std::string path = (dir / "input.textproto").string();
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  try {
    if (data[0] % 2 == 0) {
      (void)tiersim::load_sweep(path);
    } else {
      (void)tiersim::load_study(path);
    }
  } catch (const tiersim::ConfigError&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
