// Shared by the fuzz targets (libFuzzer): inputs written to a per-process scratch directory as
// regular files (tiersim reads every input from a path), and the sc_main libsystemc wants.
//
// Contract of every target: any input ends in a value or in one of the documented input errors
// (ConfigError, ResultFileError, H5::Exception from a sealed file's reader, std::invalid_argument
// from a CLI-level check). Anything else escaping, a crash, a hang or a sanitizer report is a
// finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace tiersim::fuzz {

// A scratch directory of this process, created on first use: <tmp>/tiersim-fuzz-<pid>.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("tiersim-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes `size` bytes to scratch()/`name` and returns its path.
inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  const auto p = scratch() / name;
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p.string();
}

// The source tree (configs/ for base files), from TIERSIM_SOURCE_DIR or the build's default.
inline std::string source_dir() {
  const char* env = std::getenv("TIERSIM_SOURCE_DIR");
  return env && *env ? env : TIERSIM_FUZZ_SOURCE_DIR;
}

}  // namespace tiersim::fuzz

// libsystemc's main() is unused (libFuzzer brings its own), but the library refers to sc_main.
inline int tiersim_fuzz_unused_sc_main(int, char**) {
  return 0;
}
#define TIERSIM_FUZZ_SC_MAIN                        \
  extern "C" int sc_main(int argc, char** argv) {   \
    return tiersim_fuzz_unused_sc_main(argc, argv); \
  }
