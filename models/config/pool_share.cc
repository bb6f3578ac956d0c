#include "models/config/pool_share.h"

#include <map>
#include <set>
#include <vector>

namespace tiersim {

namespace {

PoolShare share_of(const config::Config& cfg, const config::PodMemoryNode& n) {
  PoolShare s;
  s.sharers = n.has_sharers() ? n.sharers() : cfg.system().pod().nodes();
  if (s.sharers < 1) s.sharers = 1;
  const double peer = n.has_peer_load() ? n.peer_load() : 1.0;
  s.load_multiplier = 1.0 + double(s.sharers - 1) * peer;
  return s;
}

}  // namespace

PoolShare pool_share_of_memory(const config::Config& cfg, const std::string& memory) {
  if (!cfg.system().has_pod()) return {};
  for (const auto& n : cfg.system().pod().memory_nodes()) {
    if (n.memory() == memory) return share_of(cfg, n);
  }
  return {};
}

PoolShare pool_share_of_switch(const config::Config& cfg, const std::string& name) {
  if (!cfg.system().has_pod()) return {};
  for (const auto& n : cfg.system().pod().memory_nodes()) {
    for (const auto& s : n.shared_switches()) {
      if (s == name) return share_of(cfg, n);
    }
  }
  return {};
}

PoolShare pool_share_of_link(const config::Config& cfg, const std::string& link) {
  if (!cfg.system().has_pod()) return {};
  for (const auto& n : cfg.system().pod().memory_nodes()) {
    for (const auto& l : n.shared_links()) {
      if (l == link) return share_of(cfg, n);
    }
  }
  return {};
}

uint64_t pool_capacity_bytes(const config::Component& c, uint32_t sharers) {
  // As the kinds divide it: the cxl expander its total, the ddr kind each channel.
  if (c.has_cxl()) {
    return c.cxl().media().capacity_bytes_per_channel() * c.cxl().media().channels() / sharers;
  }
  if (c.has_ddr()) return c.ddr().capacity_bytes_per_channel() / sharers * c.ddr().channels();
  return 0;
}

void validate_memory_nodes(const config::Config& cfg, Validator& pod) {
  const auto& sys = cfg.system();
  std::map<std::string, const config::Component*> components;
  for (const auto& c : sys.components())
    components[c.name()] = &c;
  std::map<std::string, const config::Link*> links;
  for (const auto& l : sys.links())
    links[l.name()] = &l;
  // Whether `memory` is reachable from component `from` over the links' directions.
  auto reaches = [&](const std::string& from, const std::string& memory) {
    std::set<std::string> seen{from};
    std::vector<std::string> todo{from};
    while (!todo.empty()) {
      const std::string at = todo.back();
      todo.pop_back();
      if (at == memory) return true;
      for (const auto& l : sys.links()) {
        if (l.from() == at && seen.insert(l.to()).second) todo.push_back(l.to());
      }
    }
    return false;
  };
  auto is_switch = [&](const std::string& name) {
    const auto it = components.find(name);
    return it != components.end() && it->second->has_switch_();
  };
  std::set<std::string> memories, shared;
  const auto& nodes = sys.pod().memory_nodes();
  for (int i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    Validator v = pod.at("memory_nodes[" + std::to_string(i) + "]");
    const config::Component* mem = nullptr;
    if (v.non_empty("memory", n.has_memory(), n.memory())) {
      const auto it = components.find(n.memory());
      if (it == components.end()) {
        v.error("memory", "\"" + n.memory() + "\" is not a component of system.components");
      } else if (!it->second->has_cxl() && !it->second->has_ddr()) {
        v.error("memory",
                "\"" + n.memory() + "\" must be a cxl or ddr component (a pooled memory's media)");
      } else if (!memories.insert(n.memory()).second) {
        v.error("memory", "\"" + n.memory() + "\" is already a memory node");
      } else {
        mem = it->second;
      }
    }
    if (n.has_sharers() && (n.sharers() < 1 || n.sharers() > sys.pod().nodes())) {
      v.error("sharers",
              "must be in [1, nodes] (nodes: " + std::to_string(sys.pod().nodes()) + ")");
    }
    if (n.has_peer_load() && !(n.peer_load() >= 0 && n.peer_load() <= 1)) {
      v.error("peer_load", "must be in [0, 1]");
    }
    for (int j = 0; j < n.shared_links_size(); ++j) {
      const std::string& name = n.shared_links(j);
      const std::string field = "shared_links[" + std::to_string(j) + "]";
      const auto it = links.find(name);
      if (it == links.end()) {
        v.error(field, "\"" + name + "\" is not a link of system.links");
      } else if (!it->second->has_serial()) {
        v.error(field, "\"" + name +
                           "\" has no serial model: an ideal wire has no rate for the sharers "
                           "to divide");
      } else if (!is_switch(it->second->from())) {
        v.error(field, "\"" + name + "\" starts at \"" + it->second->from() +
                           "\", not a switch: a link from an accelerator's own engine is its "
                           "own, not the sharers'");
      } else if (n.has_memory() && !reaches(it->second->to(), n.memory())) {
        v.error(field, "\"" + name + "\" does not lead to \"" + n.memory() + "\"");
      } else if (!shared.insert(name).second) {
        v.error(field, "\"" + name + "\" is already shared by a memory node");
      }
    }
    for (int j = 0; j < n.shared_switches_size(); ++j) {
      const std::string& name = n.shared_switches(j);
      const std::string field = "shared_switches[" + std::to_string(j) + "]";
      const auto it = components.find(name);
      if (it == components.end() || !it->second->has_switch_()) {
        v.error(field, "\"" + name + "\" is not a switch component of system.components");
      } else if (n.has_memory() && !reaches(name, n.memory())) {
        v.error(field, "\"" + name + "\" does not lead to \"" + n.memory() + "\"");
      } else if (!shared.insert("switch:" + name).second) {
        v.error(field, "\"" + name + "\" is already shared by a memory node");
      }
    }
    if (mem == nullptr) continue;
    // Each accelerator's share of the pool must hold what the address map puts there.
    const PoolShare s = share_of(cfg, n);
    const uint64_t share = pool_capacity_bytes(*mem, s.sharers);
    uint64_t mapped = 0;
    for (const auto& r : sys.address_map()) {
      if (r.target() == n.memory()) mapped += r.size_bytes();
    }
    if (mapped > share) {
      v.error("sharers", "each of the " + std::to_string(s.sharers) + " sharers holds " +
                             std::to_string(share) + " bytes of \"" + n.memory() +
                             "\", less than the " + std::to_string(mapped) +
                             " bytes system.address_map gives it");
    }
  }
}

}  // namespace tiersim
