// Every-rank simulation: each simulated rank's config, the template (the config) with the
// system.pod.node_overrides that name the rank merged into its system.
#pragma once

#include <cstdint>
#include <string>

#include "configs/tiersim.pb.h"

namespace tiersim {

// Whether the config simulates every rank (workload.parallelism.simulate_ranks).
bool simulates_every_rank(const config::Config& cfg);
// Why no two ranks of `cfg` are identical whatever their node configs, or "" when ranks with
// identical configs run alike: expert-parallel ranks each run their own experts, pipeline
// stages their own layers; nodes drawing random kernel jitter (software.kernel_jitter or a node
// override's: a uniform range wider than a point, a normal with a spread) draw their own
// streams.
std::string ranks_never_identical(const config::Config& cfg);
// The ranks side by side: the tensor- or expert-parallel degree, times the pipeline stages, times
// the data-parallel replicas.
uint32_t simulated_ranks(const config::Config& cfg);
// node[node]'s config: `tmpl` without node overrides, with those naming `node` merged into its
// system (as a config file merges: repeated components and links by name) and their
// kernel_jitter replacing software.kernel_jitter. A fault whose target names a node
// ("node[3].hbm", system.faults) is kept, as a fault of its own "hbm", only in that node's
// config; faults with plain names apply to every node.
config::Config node_config(const config::Config& tmpl, uint32_t node);

// Whether two node configs run alike: equal but for their faults' names.
bool same_node_config(const config::Config& a, const config::Config& b);

// A fault target's node qualifier: "node[K].NAME" gives true with K and NAME; anything else
// false (NAME alone). `*malformed` (when given) is set for a "node[" prefix that does not parse.
bool node_qualified(const std::string& target, uint32_t* node, std::string* name,
                    bool* malformed = nullptr);
// The fault's target (link_down, link_degraded.link or device_offline), or null when it has none.
const std::string* fault_target(const config::Fault& f);

}  // namespace tiersim
