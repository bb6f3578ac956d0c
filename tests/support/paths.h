// Paths CTest passes to test binaries (TIERSIM_SOURCE_DIR, TIERSIM_BINARY).
#pragma once

#include <cstdlib>
#include <string>

namespace tiersim::test {

inline std::string source_dir() {
  const char* d = std::getenv("TIERSIM_SOURCE_DIR");
  return d ? d : ".";
}
inline std::string tiersim_binary() {
  const char* b = std::getenv("TIERSIM_BINARY");
  return b ? b : "./tiersim";
}
inline std::string preset(const std::string& rel) {
  return source_dir() + "/configs/" + rel;
}

}  // namespace tiersim::test
