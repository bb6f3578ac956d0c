// The movement controller's parameters (config Orchestration): resolved once from the config,
// defaults applied here (the controller's and the notification's latencies by placement), and
// validated section by section before any simulation starts. Models never read the proto
// Orchestration message after construction; the mechanisms read their own sections from here.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "accelerators/orchestration/controller_parts.h"
#include "accelerators/policies/residency_map.h"
#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/time.h"

namespace tiersim {

// The component named `name` in the config (nullptr when none).
const config::Component* find_component(const config::Config& root, const std::string& name);
// A controller's decision latency when the config gives none: the middle of its placement's
// estimated range (C; docs/models/orchestration.md): 27.5 us on the host CPU (also when
// unspecified), 3 us on a DPU, 0.3 us on the accelerator.
TimePs default_decision_latency_ps(config::ControllerPlacement placement);

struct OrchestrationParams {
  std::string fast_memory, dma;
  double resident_fraction = 0;
  bool kv_resident = true;
  uint32_t prefetch_layers = 0;
  config::ControllerPlacement controller = config::HOST_CPU;
  TimePs decision_latency_ps = 0;
  config::Jitter decision_jitter;
  uint32_t decision_servers = 1;
  TimePs decision_interval_ps = 0;  // 0: a server is busy for the whole decision
  config::Notification notification = config::INTERRUPT;
  TimePs notification_latency_ps = 0;
  double controller_power_w = 0;  // every controller's power while deciding, summed
  // The controllers: [0] the orchestration's own (the figures above), then `controllers` in
  // order; owner[m]: the one owning config::ControlledMechanism m (0 when none lists it).
  std::vector<ControllerFigures> controllers;
  std::vector<std::string> controller_names;  // [0] "primary"
  std::array<uint32_t, config::ControlledMechanism_ARRAYSIZE> owner{};
  config::Replacement replacement = config::REPLACEMENT_UNSPECIFIED;
  uint64_t cache_bytes = 0, page_bytes = 0;  // page 0: the compute engine's tile
  config::ConfidenceGate confidence;         // REPLACEMENT_CONFIDENCE
  bool has_map = false;
  ResidencyMapParams map;
  config::ResidentPrecision precision;  // dtype unspecified: full precision
  std::string wired_memory;             // empty: no wired residency
  uint64_t wired_quota_bytes = 0;
  // Per-tenant wired quotas by tenant index (wired.tenant_quotas); empty: one shared quota.
  std::vector<uint64_t> wired_tenant_quota;
  std::vector<std::string> tenant_names;  // by tenant index (tenancy): the primary first
  std::vector<TimePs> tenant_arrival_ps;  // by tenant index (the primary's 0)
  std::vector<config::WiredDirective> wired_program;  // empty: the arbiter chooses
  // Non-empty: wired_program is this trace's recorded one (workload.replay.use_program).
  std::string wired_program_trace;
  bool wired_emit = false;  // the program emitted from the intents, phase by phase
  config::KvRestore kv_restore = config::KV_RESTORE_TRANSFER;
  double arbiter_path_bytes_per_s = 0;
  bool signed_descriptors = false;
  TimePs verify_latency_ps = 0;
  double unsigned_fraction = 0;
  // The weights' middle tier (empty: none).
  std::string tier_memory;
  double tier_fraction = 0;
  // Host attention (empty cpu: off).
  std::string host_cpu, host_memory;
  double host_flops_per_s = 0;
  // Context regions (unset budget: off).
  bool regions = false;
  config::ContextRegions context_regions;
  // The object cache (unset: off).
  bool object_cache = false;
  config::ObjectCache objects;
  bool intent_per_phase = true;
  // The DPU's DDR buffer (empty memory: none).
  std::string buffer_memory, buffer_dma;
  uint32_t buffer_lookahead = 0;

  static void validate(const config::Config& root, Validator v);
  // `root`: the whole config (its tenancy names the tenants).
  static OrchestrationParams from_config(const config::Config& root);
};

// Tenants by index (config tenancy): the primary's name first ("primary" by default), then
// tenancy.tenants in order; one name without tenancy.
std::vector<std::string> tenant_names(const config::Config& root);
// A tenant's wired quota in bytes: quota_bytes, or quota_fraction of the area (4 KiB units).
uint64_t wired_tenant_quota_bytes(const config::WiredTenantQuota& q, uint64_t area_bytes);
// The index of tenant `name`, or -1.
int tenant_index(const config::Config& root, const std::string& name);

}  // namespace tiersim
