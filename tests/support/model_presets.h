// Model presets for tests: the TransformerModel of configs/models/<name>.textproto.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "models/config/loader.h"
#include "tests/support/paths.h"
#include "workloads/transformer.h"

namespace tiersim::test {

inline config::Config load_model_config(const std::string& name) {
  std::ifstream in(preset("models/" + name + ".textproto"));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_text(ss.str(), name, nullptr);
}

inline TransformerShape load_model(const std::string& name, const config::Parallelism& p = {}) {
  return TransformerShape::from_config(load_model_config(name).workload().model(), p);
}

}  // namespace tiersim::test
