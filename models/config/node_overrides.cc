#include "models/config/node_overrides.h"

#include <algorithm>

#include "models/config/loader.h"

namespace tiersim {

bool simulates_every_rank(const config::Config& cfg) {
  return cfg.workload().parallelism().simulate_ranks() == config::SIMULATE_EVERY_RANK;
}

bool draws_random_kernel_jitter(const config::Config& cfg) {
  if (!cfg.software().has_kernel_jitter()) return false;
  const config::Jitter& j = cfg.software().kernel_jitter();
  return (j.has_uniform() && j.uniform().max_ps() > j.uniform().min_ps()) ||
         (j.has_normal() && j.normal().sd_ps() > 0);
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
