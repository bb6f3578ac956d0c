#include "models/config/node_overrides.h"

#include <algorithm>
#include <cctype>

#include <google/protobuf/util/message_differencer.h>

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

bool node_qualified(const std::string& target, uint32_t* node, std::string* name, bool* malformed) {
  if (malformed != nullptr) *malformed = false;
  if (target.rfind("node[", 0) != 0) return false;
  const size_t close = target.find("].", 5);
  bool digits = close != std::string::npos && close > 5 && close - 5 <= 9;
  for (size_t i = 5; digits && i < close; ++i)
    digits = std::isdigit(static_cast<unsigned char>(target[i])) != 0;
  if (!digits || close + 2 >= target.size()) {
    if (malformed != nullptr) *malformed = true;
    return false;
  }
  *node = static_cast<uint32_t>(std::stoul(target.substr(5, close - 5)));
  *name = target.substr(close + 2);
  return true;
}

const std::string* fault_target(const config::Fault& f) {
  switch (f.kind_case()) {
    case config::Fault::kLinkDown:
      return &f.link_down();
    case config::Fault::kLinkDegraded:
      return &f.link_degraded().link();
    case config::Fault::kDeviceOffline:
      return &f.device_offline();
    default:
      return nullptr;
  }
}

namespace {

// Keeps the faults that apply to `node`, a node-qualified target renamed to its plain name.
void node_faults(config::System& sys, uint32_t node) {
  auto* faults = sys.mutable_faults();
  int kept = 0;
  for (int i = 0; i < faults->size(); ++i) {
    config::Fault f = faults->Get(i);
    const std::string* target = fault_target(f);
    uint32_t k = 0;
    std::string name;
    if (target != nullptr && node_qualified(*target, &k, &name)) {
      if (k != node) continue;
      switch (f.kind_case()) {
        case config::Fault::kLinkDown:
          f.set_link_down(name);
          break;
        case config::Fault::kLinkDegraded:
          f.mutable_link_degraded()->set_link(name);
          break;
        default:
          f.set_device_offline(name);
      }
    }
    *faults->Mutable(kept++) = f;
  }
  while (faults->size() > kept)
    faults->RemoveLast();
}

}  // namespace

bool same_node_config(const config::Config& a, const config::Config& b) {
  auto unnamed = [](const config::Config& c) {
    config::Config out = c;
    for (auto& f : *out.mutable_system()->mutable_faults())
      f.clear_name();
    return out;
  };
  return google::protobuf::util::MessageDifferencer::Equals(unnamed(a), unnamed(b));
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
  node_faults(*c.mutable_system(), node);
  return c;
}

}  // namespace tiersim
