// The system builder: components in config order, the address map, the link graph and the
// links' bindings; then every object placed at home.
#include <memory>
#include <string>

#include "fabric/topology.h"
#include "models/core/component.h"
#include "models/core/context.h"
#include "models/core/registry.h"
#include "models/run/run_parts.h"
#include "models/run/simulation.h"

namespace tiersim {

std::vector<std::unique_ptr<Component>> build_system(const config::Config& cfg, Context& ctx) {
  std::vector<std::unique_ptr<Component>> components;
  for (const auto& c : cfg.system().components()) {
    const ComponentKind* kind = find_component_kind(component_kind_name(c));
    components.push_back(kind->create(c, ctx));
    ctx.add_component(components.back().get());
  }
  for (const auto& r : cfg.system().address_map()) {
    ctx.address_map().add(r.name(), r.target(), r.base_bytes(), r.size_bytes());
  }
  ctx.set_topology(std::make_shared<Topology>());
  for (const auto& l : cfg.system().links())
    ctx.topology().add_link(l.name(), l.from(), l.to());
  for (const auto& l : cfg.system().links()) {
    Component* from = ctx.component(l.from());
    Component* to = ctx.component(l.to());
    if (!from->connect(
            *to, LinkInfo{l.name(), l.latency_ps(), l.has_serial() ? &l.serial() : nullptr})) {
      throw ConfigError({ConfigIssue{{},
                                     "system.links[" + l.name() + "].from",
                                     "\"" + l.from() + "\" (a " + from->component_kind() +
                                         ") cannot initiate transfers to \"" + l.to() + "\""}});
    }
  }
  return components;
}

void place_at_home(const LoadedConfig& loaded, Context& ctx) {
  // Placement: every object at home in the compute engine's weights memory (STREAM_ALL).
  std::string home;
  for (const auto& c : ctx.config().system().components()) {
    if (c.has_compute()) home = c.compute().weights_memory();
  }
  for (size_t i = 0; i < ctx.objects().size(); ++i) {
    ObjectInfo& o = ctx.objects().get_mutable(ObjectId(static_cast<uint32_t>(i)));
    auto addr = ctx.address_map().allocate(home, std::max<uint64_t>(o.size_bytes, 1), 4096);
    if (!addr) {
      throw located(loaded, {ConfigIssue{{},
                                         "workload",
                                         "object " + o.name + " does not fit in \"" + home +
                                             "\" (" + std::to_string(ctx.objects().total_bytes()) +
                                             " bytes of objects)"}});
    }
    o.home = home;
    o.address = *addr;
    o.placed = true;
  }
}

ConfigError located(const LoadedConfig& loaded, std::vector<ConfigIssue> issues) {
  for (auto& i : issues) {
    if (i.where.file.empty()) i.where = loaded.locate(i.path);
  }
  return ConfigError(std::move(issues));
}

}  // namespace tiersim
