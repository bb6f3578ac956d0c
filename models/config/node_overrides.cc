#include "models/config/node_overrides.h"

#include <algorithm>

#include "models/config/loader.h"

namespace tiersim {

bool simulates_every_rank(const config::Config& cfg) {
  return cfg.workload().parallelism().simulate_ranks() == config::SIMULATE_EVERY_RANK;
}

uint32_t simulated_ranks(const config::Config& cfg) {
  const auto& par = cfg.workload().parallelism();
  return std::max({1u, par.tensor_parallel(), par.expert_parallel()});
}

config::Config node_config(const config::Config& tmpl, uint32_t node) {
  config::Config c = tmpl;
  c.mutable_system()->mutable_pod()->clear_node_overrides();
  for (const auto& o : tmpl.system().pod().node_overrides()) {
    if (std::find(o.nodes().begin(), o.nodes().end(), node) != o.nodes().end()) {
      merge_config(*c.mutable_system(), o.system());
    }
  }
  return c;
}

}  // namespace tiersim
