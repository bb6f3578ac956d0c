// Command-level HBM devices for tests, loaded from the generated presets in configs/memory/
// (one source of truth; see scripts/gen_hbm_presets for the derivation and sources).
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "memory/hbm_device.h"
#include "models/config/loader.h"
#include "tests/support/paths.h"

namespace tiersim::test {

inline config::Config load_memory_preset(const std::string& name) {
  const std::string path = preset("memory/" + name + ".textproto");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_text(ss.str(), path, nullptr);
}

inline DramStackSpec load_device(const std::string& name) {
  return dram_spec_from_config(load_memory_preset(name).system().components(0).hbm().device());
}

inline DramStackSpec hbm2_2000() {
  return load_device("hbm2_2000");
}
inline DramStackSpec hbm3_6400() {
  return load_device("hbm3_6400");
}

}  // namespace tiersim::test
