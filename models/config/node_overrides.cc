#include "models/config/node_overrides.h"

#include <algorithm>

#include "models/config/loader.h"

namespace tiersim {

bool simulates_every_rank(const config::Config& cfg) {
  return cfg.workload().parallelism().simulate_ranks() == config::SIMULATE_EVERY_RANK;
}

std::string ranks_never_identical(const config::Config& cfg) {
  if (cfg.workload().parallelism().expert_parallel() > 1) {
    return "expert-parallel ranks are never identical (each runs its own experts)";
  }
  if (cfg.workload().parallelism().pipeline_parallel() > 1) {
    return "pipeline stages are never identical (each holds its own layers)";
  }
  auto random = [](const config::Jitter& j) {
    return (j.has_uniform() && j.uniform().max_ps() > j.uniform().min_ps()) ||
           (j.has_normal() && j.normal().sd_ps() > 0);
  };
  bool jitter = random(cfg.software().kernel_jitter());
  for (const auto& o : cfg.system().pod().node_overrides())
    jitter = jitter || (o.has_kernel_jitter() && random(o.kernel_jitter()));
  if (jitter) {
    return "nodes drawing random kernel jitter are never identical (each draws its own stream)";
  }
  return "";
}

uint32_t simulated_ranks(const config::Config& cfg) {
  const auto& par = cfg.workload().parallelism();
  return std::max({1u, par.tensor_parallel(), par.expert_parallel()}) *
         std::max(1u, par.pipeline_parallel()) * std::max(1u, par.data_parallel());
}

config::Config node_config(const config::Config& tmpl, uint32_t node) {
  config::Config c = tmpl;
  c.mutable_system()->mutable_pod()->clear_node_overrides();
  for (const auto& o : tmpl.system().pod().node_overrides()) {
    if (std::find(o.nodes().begin(), o.nodes().end(), node) != o.nodes().end()) {
      merge_config(*c.mutable_system(), o.system());
      if (o.has_kernel_jitter()) *c.mutable_software()->mutable_kernel_jitter() = o.kernel_jitter();
    }
  }
  return c;
}

}  // namespace tiersim
