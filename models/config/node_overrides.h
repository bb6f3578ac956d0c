// Every-rank simulation: each simulated rank's config, the template (the config) with the
// system.pod.node_overrides that name the rank merged into its system.
#pragma once

#include <cstdint>

#include "configs/tiersim.pb.h"

namespace tiersim {

// Whether the config simulates every rank (workload.parallelism.simulate_ranks).
bool simulates_every_rank(const config::Config& cfg);
// Whether software.kernel_jitter draws random times (a uniform range wider than a point, a
// normal with a spread): nodes then draw their own streams and are never identical.
bool draws_random_kernel_jitter(const config::Config& cfg);
// The ranks simulated side by side: the tensor- or expert-parallel degree.
uint32_t simulated_ranks(const config::Config& cfg);
// node[node]'s config: `tmpl` without node overrides, with those naming `node` merged into its
// system (as a config file merges: repeated components and links by name).
config::Config node_config(const config::Config& tmpl, uint32_t node);

}  // namespace tiersim
