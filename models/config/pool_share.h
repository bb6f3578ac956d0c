// Pooled memory on a pod (system.pod.memory_nodes): what share of a pool and of the links into
// it the simulated accelerator sees. Its peers are symmetric ranks that move what it moves
// (peer_load 1) or that fraction of it, spread evenly over time; a shared server therefore
// serves the simulated accelerator's work at 1 / load_multiplier of its rate, and its
// per-access overheads load_multiplier times (processor sharing among identical streams).
// Each accelerator owns capacity / sharers of the pool and pays 1 / sharers of its standing
// power. Plain C++ over the config; validation here, the timing in the memory kinds and links.
#pragma once

#include <cstdint>
#include <string>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"

namespace tiersim {

struct PoolShare {
  uint32_t sharers = 1;
  double load_multiplier = 1;  // 1 + (sharers - 1) x peer_load
  bool shared() const { return sharers > 1 || load_multiplier != 1; }
};

// The share of memory component `memory` (a pod memory node), or none (1, 1).
PoolShare pool_share_of_memory(const config::Config& cfg, const std::string& memory);
// The share of switch component `name` (listed in a memory node's shared_switches), or none.
PoolShare pool_share_of_switch(const config::Config& cfg, const std::string& name);
// The share of system link `link` (listed in a memory node's shared_links), or none.
PoolShare pool_share_of_link(const config::Config& cfg, const std::string& link);

// One sharer's capacity of the pool, as the memory kind divides it (cxl: its total; ddr: each
// channel), 0 for other kinds.
uint64_t pool_capacity_bytes(const config::Component& c, uint32_t sharers);

// Checks system.pod.memory_nodes against the components, links and address map; `pod` is the
// validator at system.pod.
void validate_memory_nodes(const config::Config& cfg, Validator& pod);

}  // namespace tiersim
