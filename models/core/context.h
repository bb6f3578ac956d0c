// Everything a component may reach during a run, passed explicitly (no globals): the resolved
// config, stats, the object table, the address map, the payload pool, run records, a seeded
// random stream per named user, and the other components by name.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "configs/tiersim.pb.h"
#include "models/core/address_map.h"
#include "models/core/objects.h"
#include "models/core/payload_pool.h"
#include "models/core/records.h"
#include "models/core/rng.h"
#include "models/core/stats.h"
#include "models/core/wall_limit.h"

namespace tiersim {

class Component;
struct RankSlot;
class ThermalTelemetry;
class Topology;
class Workload;

class Context {
 public:
  Context(const config::Config& config, uint64_t seed) : config_(config), seed_(seed) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const config::Config& config() const { return config_; }
  uint64_t seed() const { return seed_; }
  StatsRegistry& stats() { return stats_; }
  ObjectTable& objects() { return objects_; }
  AddressMap& address_map() { return address_map_; }
  const AddressMap& address_map() const { return address_map_; }
  PayloadPool& payloads() { return payloads_; }
  RunRecords& records() { return records_; }
  // run.max_wall_time_s: the driver starts it; models with long inner loops poll it and stop
  // the kernel (sc_stop) when it has expired.
  WallLimit& wall_limit() { return wall_limit_; }
  // The link graph (system.links): fabric/ owns the type; the system builder sets it before
  // components connect. Using it before then is a programming error (std::logic_error).
  void set_topology(std::shared_ptr<Topology> t) { topology_ = std::move(t); }
  Topology& topology() const {
    if (!topology_) throw std::logic_error("Context: the topology is used before it is set");
    return *topology_;
  }

  // An independent deterministic stream for `user` (seed mixed with a hash of the name), so
  // adding a component does not shift another's random numbers.
  Rng rng_for(const std::string& user) const;

  void add_component(Component* c);
  Component* component(const std::string& name) const;
  const std::map<std::string, Component*>& components() const { return components_; }

  // Temperature telemetry by component name (models/core/thermal_telemetry.h): providers
  // register during construction; the provider must outlive the run. nullptr when none.
  void add_thermal_telemetry(const std::string& component, ThermalTelemetry* t) {
    telemetry_[component] = t;
  }
  ThermalTelemetry* thermal_telemetry(const std::string& component) const {
    auto it = telemetry_.find(component);
    return it == telemetry_.end() ? nullptr : it->second;
  }
  const std::map<std::string, ThermalTelemetry*>& thermal_telemetries() const { return telemetry_; }

  Workload* workload() const { return workload_; }
  void set_workload(Workload* w) { workload_ = w; }

  // Every-rank simulation: this system's rank in the group simulated side by side (not owned;
  // outlives the run). Null when one rank is simulated (the symmetric shortcut).
  const RankSlot* rank() const { return rank_; }
  void set_rank(const RankSlot* r) { rank_ = r; }

  // Called by the compute scheduler after each step and when the workload is complete.
  std::function<void(const TokenRecord&)> on_step_end;
  // Called by the compute scheduler after each op (progress within a long step); unset: not
  // called. `layer` is invalid for ops outside the decoder layers.
  std::function<void(uint32_t step, LayerId layer, TimePs end_ps)> on_op_end;
  std::function<void()> on_done;

 private:
  const config::Config& config_;
  uint64_t seed_;
  StatsRegistry stats_;
  ObjectTable objects_;
  AddressMap address_map_;
  PayloadPool payloads_;
  RunRecords records_;
  WallLimit wall_limit_;
  std::shared_ptr<Topology> topology_;  // shared_ptr: the type is incomplete here
  std::map<std::string, Component*> components_;
  std::map<std::string, ThermalTelemetry*> telemetry_;
  Workload* workload_ = nullptr;
  const RankSlot* rank_ = nullptr;
};

}  // namespace tiersim
