#include "accelerators/orchestration/orchestrator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "accelerators/dma_engine.h"
#include "accelerators/orchestration/context_regions.h"
#include "accelerators/orchestration/layer_prefetch.h"
#include "accelerators/orchestration/object_cache.h"
#include "accelerators/orchestration/page_cache.h"
#include "accelerators/orchestration/residency_program.h"
#include "fabric/serial_link.h"
#include "models/core/context.h"
#include "models/core/dtype.h"
#include "models/core/movement_intent.h"
#include "models/core/sim_time.h"

namespace tiersim {

namespace {

// The stat and summary item counting one mechanism's decisions of one kind.
std::string decisions_name(DecisionMechanism m, DecisionKind k) {
  return std::string("decisions_") + decision_mechanism_name(m) + "_" + decision_kind_name(k);
}

}  // namespace

Orchestrator::Orchestrator(sc_core::sc_module_name name, const OrchestrationParams& p, Context& ctx)
    : sc_core::sc_module(name),
      p_(p),
      ctx_(ctx),
      owner_(basename()),
      rng_(ctx.rng_for(std::string(basename()) + ".decisions")),
      arbiter_(p.kv_restore, p.arbiter_path_bytes_per_s),
      decisions_(ctx.stats().counter(owner_, "decisions", "decisions taken", "count")),
      critical_decisions_(ctx.stats().counter(owner_, "critical_decisions",
                                              "decisions a consumer waited for (demand misses)",
                                              "count")),
      queue_delay_ps_(ctx.stats().counter(owner_, "decision_queue_delay_ps",
                                          "decisions waiting for the controller, summed", "ps")),
      busy_ps_(ctx.stats().counter(owner_, "controller_busy_ps",
                                   "the controller deciding (lookups, latency, jitter)", "ps")),
      control_stall_ps_(ctx.stats().counter(owner_, "control_stall_ps",
                                            "exposed stall: tiles waiting for a decision", "ps")),
      control_idle_ps_(ctx.stats().counter(
          owner_, "control_idle_ps",
          "the compute engine idle for a tile whose decision was not taken yet", "ps")),
      prefetch_bytes_(ctx.stats().counter(
          owner_, "prefetch_bytes", "bytes copied toward the fast memory ahead of use", "bytes")),
      demand_bytes_(ctx.stats().counter(
          owner_, "demand_bytes", "bytes streamed from home on demand (not prefetched)", "bytes")),
      demand_misses_(ctx.stats().counter(owner_, "demand_misses",
                                         "tiles of home bytes read on demand", "count")),
      resident_bytes_read_(ctx.stats().counter(owner_, "resident_bytes",
                                               "bytes read from the resident part", "bytes")),
      staged_bytes_read_(ctx.stats().counter(owner_, "staged_bytes",
                                             "bytes read from staged prefetches", "bytes")),
      wired_bytes_read_(ctx.stats().counter(owner_, "wired_bytes_read",
                                            "bytes read from wired objects", "bytes")),
      data_stall_ps_(ctx.stats().counter(owner_, "data_stall_ps",
                                         "exposed stall: tiles waiting for a prefetch copy to land",
                                         "ps")),
      notify_stall_ps_(ctx.stats().counter(
          owner_, "notification_stall_ps",
          "exposed stall: tiles waiting for the completion notification", "ps")),
      late_tiles_(ctx.stats().counter(owner_, "late_tiles",
                                      "staged tiles the consumer reached before they were ready",
                                      "count")),
      staged_tiles_(ctx.stats().counter(owner_, "staged_tiles", "tiles read from staged prefetches",
                                        "count")),
      admission_bytes_(ctx.stats().counter(owner_, "admission_bytes",
                                           "bytes copied into cache frames after a miss", "bytes")),
      decision_to_ready_ns_(ctx.stats().histogram(owner_, "trigger_to_ready",
                                                  "from a copy's trigger to its data being usable",
                                                  "ns", Histogram::log2_edges(1, 1 << 30))) {
  controllers_.resize(p_.controllers.size());
  for (size_t i = 0; i < controllers_.size(); ++i)
    controllers_[i].server_free.assign(p_.controllers[i].decision_servers, 0);
  SC_METHOD(run);
  sensitive << wake_;
  dont_initialize();
  // The mechanisms in hook order (context regions, object cache, layer prefetch, page cache);
  // the layer prefetch is always there (it is inert without prefetch_layers).
  if (p_.regions) regions_ = std::make_unique<ContextRegions>(*this);
  if (p_.object_cache) objects_ = std::make_unique<ObjectCache>(*this);
  if (p_.has_map) map_ = std::make_unique<ResidencyMap>(p_.map);
  prefetch_ = std::make_unique<LayerPrefetch>(*this);
  if (p_.replacement != config::REPLACEMENT_UNSPECIFIED) {
    pages_ = std::make_unique<PageCache>(*this);
  }
  // A replayed trace's program runs even when empty (its run bound nothing).
  if (!p_.wired_program.empty() || p_.wired_emit || !p_.wired_program_trace.empty()) {
    program_ = std::make_unique<ResidencyProgram>(*this);
  }
  for (MovementMechanism* m : std::initializer_list<MovementMechanism*>{
           program_.get(), regions_.get(), objects_.get(), prefetch_.get(), pages_.get()}) {
    if (m != nullptr) mechanisms_.push_back(m);
  }
  // The decisions each mechanism of this run can ask for.
  using M = DecisionMechanism;
  using K = DecisionKind;
  std::vector<std::pair<M, K>> pairs = {{M::kLayerPrefetch, K::kPrefetch}};
  if (pages_) pairs.push_back({M::kPageCache, K::kAdmission});
  if (objects_) {
    for (K k : {K::kPrefetch, K::kAdmission, K::kCompaction})
      pairs.push_back({M::kObjectCache, k});
  }
  if (regions_) {
    for (K k : {K::kPrefetch, K::kAdmission})
      pairs.push_back({M::kContextRegions, k});
  }
  if (p_.kv_restore == config::KV_RESTORE_ARBITRATE) pairs.push_back({M::kKvRestore, K::kRestore});
  if (program_) {
    for (K k : {K::kBind, K::kRelease, K::kQuota})
      pairs.push_back({M::kResidencyProgram, k});
  }
  for (const auto& [m, k] : pairs) {
    decisions_by_[size_t(m)][size_t(k)] = &ctx.stats().counter(
        owner_, decisions_name(m, k), "decisions taken for this mechanism and kind", "count");
  }
}

Orchestrator::~Orchestrator() = default;

const char* decision_mechanism_name(DecisionMechanism m) {
  switch (m) {
    case DecisionMechanism::kLayerPrefetch:
      return "layer_prefetch";
    case DecisionMechanism::kPageCache:
      return "page_cache";
    case DecisionMechanism::kObjectCache:
      return "object_cache";
    case DecisionMechanism::kContextRegions:
      return "context_regions";
    case DecisionMechanism::kKvRestore:
      return "kv_restore";
    case DecisionMechanism::kResidencyProgram:
      return "residency_program";
    default:
      return "unknown";
  }
}

const char* decision_kind_name(DecisionKind k) {
  switch (k) {
    case DecisionKind::kPrefetch:
      return "prefetch";
    case DecisionKind::kAdmission:
      return "admission";
    case DecisionKind::kCompaction:
      return "compaction";
    case DecisionKind::kRestore:
      return "restore";
    case DecisionKind::kBind:
      return "bind";
    case DecisionKind::kRelease:
      return "release";
    case DecisionKind::kQuota:
      return "quota";
    default:
      return "unknown";
  }
}

size_t Orchestrator::owner_of(DecisionMechanism m) const {
  static constexpr config::ControlledMechanism kOf[] = {
      config::LAYER_PREFETCH,  config::PAGE_CACHE, config::OBJECT_CACHE,
      config::CONTEXT_REGIONS, config::KV_RESTORE, config::RESIDENCY_PROGRAM};
  static_assert(sizeof(kOf) / sizeof(kOf[0]) == size_t(DecisionMechanism::kCount),
                "every mechanism maps to a ControlledMechanism");
  return p_.owner[size_t(kOf[size_t(m)])];
}

TimePs Orchestrator::decide(TimePs trigger, DecisionMechanism mechanism, DecisionKind kind,
                            bool critical, TimePs extra) {
  // The owning controller's queue: its first free server, its latency and jitter.
  const size_t who = owner_of(mechanism);
  const ControllerFigures& f = p_.controllers[who];
  ControllerState& ctl = controllers_[who];
  auto server = std::min_element(ctl.server_free.begin(), ctl.server_free.end());
  const TimePs start = std::max(trigger, *server);
  TimePs work = extra + f.decision_latency_ps + draw_jitter(f.decision_jitter, rng_);
  if (ctl.pcie.toward_accelerator != nullptr) {
    // The reads follow the map lookup; the link adds its waits (HostLoopParts.pcie_link).
    const PcieControlWaits w = pcie_control_waits(f, ctl.pcie, start + extra);
    work += w.reads_ps + w.doorbells_ps;
    ctl.telemetry_reads += f.telemetry_reads;
    ctl.doorbell_writes += f.doorbell_writes;
    ctl.read_wait_ps += w.reads_ps;
    ctl.doorbell_wait_ps += w.doorbells_ps;
  }
  // A pipelined server takes the next decision after the interval (the lookup and the jitter
  // still delay this one); otherwise after this one.
  TimePs occupancy = f.decision_interval_ps > 0 ? extra + f.decision_interval_ps : work;
  // A shared controller: the symmetric peers' decisions hold the server alongside this one's.
  if (f.server_share != 1.0) occupancy = TimePs(std::llround(double(occupancy) * f.server_share));
  *server = start + occupancy;
  const TimePs decided = std::max(start + work, ctl.last_decided);
  ctl.last_decided = decided;
  ++ctl.decisions;
  ctl.queue_delay_ps += start - trigger;
  ctl.busy.add(start, occupancy, now_ps());
  decisions_.inc();
  if (critical) critical_decisions_.inc();
  queue_delay_ps_.inc(start - trigger);
  busy_ps_.inc(occupancy);
  Counter* by = decisions_by_[size_t(mechanism)][size_t(kind)];
  if (by == nullptr) throw std::logic_error(owner_ + ": a decision no mechanism can ask for");
  by->inc();
  return decided;
}

TimePs Orchestrator::copy(DmaEngine& dma, uint64_t src, uint64_t dst, uint64_t bytes,
                          const MovementIntent& intent, TimePs start) {
  // Copies of more than a TLM length go in pieces; landed when the last piece has.
  TimePs landed = start;
  for (uint64_t off = 0; off < bytes;) {
    const uint64_t n = std::min<uint64_t>(bytes - off, 1ULL << 30);
    landed = std::max(landed, dma.transfer(src + off, dst + off, n, intent, start));
    off += n;
  }
  return landed;
}

void Orchestrator::count_prefetch(uint64_t bytes, TimePs trigger_ps, TimePs ready_ps) {
  prefetch_bytes_.inc(bytes);
  decision_to_ready_ns_.record(double(ready_ps - trigger_ps) / kPsPerNs);
}

std::pair<double, double> Orchestrator::intent_at(const ObjectInfo& o, uint32_t step) const {
  if (!p_.intent_per_phase) return {o.intent.uses_per_step, o.intent.confidence};
  return o.intent.at(step);
}

void Orchestrator::run() {
  issue_due(now_ps());
}

void Orchestrator::issue_due(TimePs now) {
  for (MovementMechanism* m : mechanisms_) {
    const TimePs next = m->issue_due(now);
    if (next != 0) wake_.notify(to_sc_time(next - now));
  }
}

uint64_t Orchestrator::place_in(const std::string& memory, uint64_t bytes, const std::string& field,
                                const std::string& what) {
  auto& map = ctx_.address_map();
  auto a = map.allocate(memory, std::max<uint64_t>(bytes, 1), 4096);
  if (!a) {
    throw ConfigError({ConfigIssue{
        {},
        "policy.orchestration." + field,
        "\"" + memory + "\" has no room for " + what + " (" + std::to_string(bytes) + " bytes; " +
            std::to_string(map.capacity(memory) - map.allocated(memory)) + " left)"}});
  }
  return *a;
}

uint64_t Orchestrator::place(uint64_t bytes, const std::string& what) {
  return place_in(p_.fast_memory, bytes, "fast_memory", what);
}

void Orchestrator::prepare(const std::string& default_dma, uint64_t tile_bytes) {
  dma_ = dynamic_cast<DmaEngine*>(ctx_.component(p_.dma.empty() ? default_dma : p_.dma));
  if (dma_ == nullptr) throw std::logic_error(owner_ + ": orchestrator DMA engine missing");
  tile_bytes_ = tile_bytes;
  attach_pcie_links(default_dma);
  const auto& map = ctx_.address_map();
  const uint64_t wired_room =
      p_.wired_memory.empty() ? 0 : map.capacity(p_.wired_memory) - map.allocated(p_.wired_memory);
  if (!p_.wired_tenant_quota.empty() && p_.wired_program.empty() &&
      p_.wired_quota_bytes > wired_room) {
    // Per-tenant quotas divide the area: an area the memory cannot hold is refused, not cut
    // (the tenants served first would take the shortfall's room).
    throw ConfigError(
        {ConfigIssue{{},
                     "policy.orchestration.wired.quota_bytes",
                     "a wired area of " + std::to_string(p_.wired_quota_bytes) +
                         " bytes divided by tenant_quotas is more than \"" + p_.wired_memory +
                         "\" has room for (" + std::to_string(wired_room) + " bytes)"}});
  }
  const double weight_bits = dtype_bits(ctx_.config().workload().model().weight_dtype());
  plan_ = plan_placement(ctx_.objects(), p_, weight_bits, wired_room);
  apply_plan();
  for (MovementMechanism* m : mechanisms_)
    m->prepare();
}

void Orchestrator::attach_pcie_links(const std::string& dma_name) {
  for (size_t i = 0; i < p_.controllers.size(); ++i) {
    const ControllerFigures& f = p_.controllers[i];
    if (f.pcie_link.empty()) continue;
    // The accelerator's DMA engine (the compute engine's) drives the link, whichever engine
    // moves the orchestration's copies.
    const auto* accelerator_dma = dynamic_cast<const DmaEngine*>(ctx_.component(dma_name));
    PcieControlLink& link = controllers_[i].pcie;
    if (accelerator_dma != nullptr) {
      link.toward_accelerator = accelerator_dma->link_model(f.pcie_link, false);
      link.leaving_accelerator = accelerator_dma->link_model(f.pcie_link, true);
    }
    if (link.toward_accelerator == nullptr || link.leaving_accelerator == nullptr) {
      const std::string parts =
          i == 0 ? "policy.orchestration.controller_parts"
                 : "policy.orchestration.controllers[" + std::to_string(i - 1) + "].parts";
      throw ConfigError({ConfigIssue{
          {},
          parts + (f.controller == config::DPU ? ".dpu" : ".host_loop") + ".pcie_link",
          "\"" + f.pcie_link + "\" is not a serial link of the accelerator's DMA engine \"" +
              dma_name + "\""}});
    }
  }
}

void Orchestrator::apply_plan() {
  auto& map = ctx_.address_map();
  // Wired residency first: the arbiter's choice of whole objects, bound in the wired memory
  // (within its room by construction).
  for (ObjectId id : plan_.wired) {
    ObjectInfo& o = ctx_.objects().get_mutable(id);
    auto a = map.allocate(p_.wired_memory, o.size_bytes, 4096);
    if (!a) {  // the room is the free bytes, which need not be one range
      throw ConfigError({ConfigIssue{{},
                                     "policy.orchestration.wired.quota_bytes",
                                     "\"" + p_.wired_memory + "\" has no contiguous room for " +
                                         o.name + " (" + std::to_string(o.size_bytes) +
                                         " bytes) that the quota chose: lower the quota"}});
    }
    o.address = *a;
    o.home = p_.wired_memory;
    wired_.insert(id.value());
    wired_bytes_ += o.size_bytes;
  }
  if (objects_) objects_->place_home_copies();
  for (size_t i = 0; i < ctx_.objects().size(); ++i) {
    const PlannedObject& po = plan_.objects[i];
    ObjectInfo& o = ctx_.objects().get_mutable(ObjectId(static_cast<uint32_t>(i)));
    if (po.where == PlannedObject::Where::kFast) {
      o.address = place(o.size_bytes, o.name);
      o.home = p_.fast_memory;
    }
    if (po.where != PlannedObject::Where::kSplit) continue;
    Split s;
    s.resident_bytes = po.resident_bytes;
    s.tier_end = po.resident_bytes;
    s.scale = po.scale;
    if (po.resident_bytes > 0) s.resident_address = place(po.resident_stored_bytes, o.name);
    if (po.tier_bytes > 0) {
      s.tier_address = place_in(p_.tier_memory, po.tier_bytes, "second_tier.memory", o.name);
      s.tier_end = po.resident_bytes + po.tier_bytes;
    }
    split_[static_cast<uint32_t>(i)] = s;
  }
}

void Orchestrator::on_step_start(uint32_t step) {
  step_ = step;
  for (MovementMechanism* m : mechanisms_)
    m->on_step_start(step);
}

void Orchestrator::on_tenant_step(TenantId tenant, uint32_t step) {
  if (program_) program_->on_tenant_step(tenant, step);
}

void Orchestrator::on_op_start(const Op& op, TimePs now) {
  for (MovementMechanism* m : mechanisms_)
    m->on_op_start(op, now);
}

bool Orchestrator::restore_by_recompute(ObjectId kv_id, const ObjectInfo& kv, uint64_t kv_bytes,
                                        uint64_t hidden_bytes, double recompute_flops_per_s,
                                        TimePs now) {
  const bool recompute =
      arbiter_.restore_by_recompute(kv, kv_bytes, hidden_bytes, recompute_flops_per_s);
  if (p_.kv_restore != config::KV_RESTORE_ARBITRATE) return recompute;  // fixed: no decision
  if (now != restore_op_ps_) {  // a new op: the previous one's decisions are past
    restore_ready_.clear();
    restore_op_ps_ = now;
  }
  const TimePs decided = decide(now, DecisionMechanism::kKvRestore, DecisionKind::kRestore,
                                /*critical=*/true, map_lookup(kv_id));
  restore_ready_[(recompute ? kv.hidden_states : kv_id).value()] = decided;
  return recompute;
}

TimePs Orchestrator::map_lookup(ObjectId object) {
  if (!map_) return 0;
  if (map_tier_ == Tier::kNone) {
    const Component* fast = ctx_.component(p_.fast_memory);
    map_tier_ = fast != nullptr ? fast->tier() : Tier::kHbm;
  }
  return map_->lookup(object.value(), map_tier_);
}

Orchestrator::Source Orchestrator::locate(ObjectId object, uint64_t offset, uint64_t max_bytes,
                                          TimePs now) {
  Source src = locate_bytes(object, offset, max_bytes, now);
  if (!restore_ready_.empty()) {
    // A restored operand's reads wait for the restore decision of its sequence.
    auto r = restore_ready_.find(object.value());
    if (r != restore_ready_.end() && r->second > now) src.wait_for_decision(r->second);
  }
  return src;
}

bool Orchestrator::reads_in_place(ObjectId object, TimePs now) const {
  if (program_ || split_.count(object.value()) != 0) return false;
  if (regions_ && ctx_.objects().get(object).cls == ObjectClass::kKvCache) return false;
  const auto r = restore_ready_.find(object.value());
  return r == restore_ready_.end() || r->second <= now;
}

Orchestrator::Source Orchestrator::locate_bytes(ObjectId object, uint64_t offset,
                                                uint64_t max_bytes, TimePs now) {
  const ObjectInfo& o = ctx_.objects().get(object);
  Source src;
  if (regions_ && o.cls == ObjectClass::kKvCache &&
      regions_->locate(object, o, offset, max_bytes, now, src)) {
    return src;
  }
  if (program_ && program_->locate(object, o, offset, max_bytes, now, src)) return src;
  auto it = split_.find(object.value());
  if (it == split_.end()) {  // wholly in one place (home, relocated or wired)
    src.address = o.address + offset;
    src.bytes = max_bytes;
    src.ready_ps = src.landed_ps = now;
    src.path = o.home == p_.fast_memory ? Path::kResident : Path::kDemand;
    if (!wired_.empty() && wired_.count(object.value())) src.path = Path::kWired;
    return src;
  }
  const Split& s = it->second;
  if (offset < s.resident_bytes) {
    src.address = s.resident_address + static_cast<uint64_t>(double(offset) * s.scale);
    src.bytes = std::min(max_bytes, s.resident_bytes - offset);
    src.ready_ps = src.landed_ps = now;
    src.path = Path::kResident;
    if (s.scale < 1.0) {
      src.scale = s.scale;
      src.dequant_flops_per_byte = plan_.dequant_flops_per_byte;
    }
    return src;
  }
  // The home part: the page cache or the object cache serve every read of it; otherwise a
  // staged prefetch, or the middle tier, or home.
  if (pages_) {
    pages_->locate(object, o, offset, max_bytes, now, src);
    return src;
  }
  if (objects_ && o.cls == ObjectClass::kWeight) {
    objects_->locate(object, o, offset, max_bytes, now, src);
    return src;
  }
  src.bytes = max_bytes;
  issue_due(now);
  if (prefetch_->locate(object, o, offset, max_bytes, now, src)) return src;
  if (offset < s.tier_end) {  // in the middle tier, up to its end
    src.address = s.tier_address + (offset - s.resident_bytes);
    src.bytes = std::min(max_bytes, s.tier_end - offset);
  } else {
    src.address = o.address + offset;
  }
  src.ready_ps = src.landed_ps = now;
  src.path = Path::kDemand;
  return src;
}

uint64_t Orchestrator::kv_shadow(ObjectId object, uint64_t offset) const {
  return regions_ ? regions_->kv_shadow(object, offset) : 0;
}

void Orchestrator::count_stall(const Source& s, TimePs now, TimePs start) {
  // Exposed stall: the union of the intervals in which some tile waits (tiles issued together
  // wait together: counted once); requests arrive in time order. Split at the decision and at
  // the landing: waiting for the controller, for the data, for the notification.
  const TimePs from = std::max(now, stall_counted_until_);
  if (start <= from) return;
  const TimePs decided = std::clamp(s.decided_ps, from, start);
  const TimePs landed = std::clamp(s.landed_ps, decided, start);
  control_stall_ps_.inc(decided - from);
  data_stall_ps_.inc(landed - decided);
  notify_stall_ps_.inc(start - landed);
  stall_counted_until_ = start;
}

void Orchestrator::record(const Source& s, uint64_t logical, TimePs now, TimePs start) {
  // `now` is when the consumer first wanted the tile. Bytes count as stored (a lower-precision
  // copy moves fewer than the tile's logical bytes).
  const uint64_t bytes = s.scale < 1.0
                             ? std::max<uint64_t>(1, uint64_t(std::ceil(double(logical) * s.scale)))
                             : logical;
  switch (s.path) {
    case Path::kResident:
      resident_bytes_read_.inc(bytes);
      count_stall(s, now, start);  // a frame's later tiles waiting for the page's decision
      break;
    case Path::kStaged:
      staged_bytes_read_.inc(bytes);
      staged_tiles_.inc();
      if (start > now) late_tiles_.inc();
      count_stall(s, now, start);
      break;
    case Path::kDemand:
      demand_bytes_.inc(bytes);
      demand_misses_.inc();
      count_stall(s, now, start);  // a demand miss waiting for its decision
      break;
    case Path::kWired:
      wired_bytes_read_.inc(bytes);
      break;
  }
}

void Orchestrator::summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {
  const double per = tokens ? 1.0 / double(tokens) : 0.0;
  const double staged = double(staged_tiles_.value());
  out.push_back(
      {"stall_us_per_token",
       double(control_stall_ps_.value() + data_stall_ps_.value() + notify_stall_ps_.value()) * per /
           1e6,
       "us/token"});
  out.push_back(
      {"stall_control_us_per_token", double(control_stall_ps_.value()) * per / 1e6, "us/token"});
  out.push_back({"engine_idle_control_us_per_token", double(control_idle_ps_.value()) * per / 1e6,
                 "us/token"});
  out.push_back(
      {"stall_data_us_per_token", double(data_stall_ps_.value()) * per / 1e6, "us/token"});
  out.push_back({"stall_notification_us_per_token", double(notify_stall_ps_.value()) * per / 1e6,
                 "us/token"});
  out.push_back(
      {"prefetch_late_fraction", staged ? double(late_tiles_.value()) / staged : 0.0, "fraction"});
  const double home_reads = double(staged_bytes_read_.value() + demand_bytes_.value());
  out.push_back({"prefetch_coverage",
                 home_reads > 0 ? double(staged_bytes_read_.value()) / home_reads : 0.0,
                 "fraction"});
  out.push_back({"prefetch_bytes_per_token", double(prefetch_bytes_.value()) * per, "bytes/token"});
  // Accuracy: the share of copied bytes read before they were dropped (copies still unread at
  // the end, such as the next step's first layers, count as unused).
  uint64_t unused = 0;
  for (const MovementMechanism* m : mechanisms_)
    unused += m->unused_prefetch_bytes();
  const double copied = double(prefetch_bytes_.value());
  out.push_back(
      {"prefetch_accuracy", copied > 0 ? 1.0 - double(unused) / copied : 0.0, "fraction"});
  out.push_back({"demand_misses", double(demand_misses_.value()), "count"});
  out.push_back({"demand_bytes_per_token", double(demand_bytes_.value()) * per, "bytes/token"});
  out.push_back(
      {"resident_bytes_per_token", double(resident_bytes_read_.value()) * per, "bytes/token"});
  out.push_back({"controller_decisions", double(decisions_.value()), "count"});
  const double decisions = double(decisions_.value());
  out.push_back({"controller_decisions_critical", double(critical_decisions_.value()), "count"});
  out.push_back({"controller_decisions_off_path",
                 double(decisions_.value() - critical_decisions_.value()), "count"});
  out.push_back({"controller_queue_delay_us_mean",
                 decisions > 0 ? double(queue_delay_ps_.value()) / decisions / 1e6 : 0.0, "us"});
  const TimePs elapsed = now_ps();
  // The share of a controller's servers' time spent deciding (a pipelined server: its issue
  // slots), up to the end of the run: a server still busy then (decisions queued back to back)
  // is busy from the end to its free time, which is not counted.
  auto utilization = [&](size_t i) {
    const double capacity = double(elapsed) * double(p_.controllers[i].decision_servers);
    return capacity > 0 ? double(busy_until(i, elapsed)) / capacity : 0.0;
  };
  // Engines with tables: their die area, summed (no item when no controller gives one).
  double area_mm2 = 0;
  for (const ControllerFigures& f : p_.controllers)
    area_mm2 += f.area_mm2;
  if (area_mm2 > 0) out.push_back({"controller_area_mm2", area_mm2, "mm2"});
  // controller_utilization: the orchestration's own controller's; the others by name.
  out.push_back({"controller_utilization", utilization(0), "fraction"});
  for (size_t i = 1; i < controllers_.size(); ++i) {
    const std::string name = "controller_" + p_.controller_names[i];
    const double n = double(controllers_[i].decisions);
    out.push_back({name + "_decisions", n, "count"});
    out.push_back({name + "_queue_delay_us_mean",
                   n > 0 ? double(controllers_[i].queue_delay_ps) / n / 1e6 : 0.0, "us"});
    out.push_back({name + "_utilization", utilization(i), "fraction"});
  }
  // Telemetry reads and doorbells over a modelled PCIe link: what the link added to them, over
  // every controller that has one (no items when none has).
  uint64_t reads = 0, doorbells = 0;
  TimePs read_wait = 0, doorbell_wait = 0;
  bool any_link = false;
  for (const ControllerState& c : controllers_) {
    if (c.pcie.toward_accelerator == nullptr) continue;
    any_link = true;
    reads += c.telemetry_reads;
    doorbells += c.doorbell_writes;
    read_wait += c.read_wait_ps;
    doorbell_wait += c.doorbell_wait_ps;
  }
  if (any_link) {
    out.push_back({"controller_telemetry_reads", double(reads), "count"});
    out.push_back({"controller_telemetry_read_wait_us_mean",
                   reads > 0 ? double(read_wait) / double(reads) / 1e6 : 0.0, "us"});
    if (doorbells > 0) {
      out.push_back({"controller_doorbell_wait_us_mean",
                     double(doorbell_wait) / double(doorbells) / 1e6, "us"});
    }
    out.push_back({"controller_pcie_wait_us_per_token",
                   double(read_wait + doorbell_wait) * per / 1e6, "us/token"});
  }
  for (size_t m = 0; m < size_t(DecisionMechanism::kCount); ++m) {
    for (size_t k = 0; k < size_t(DecisionKind::kCount); ++k) {
      const Counter* c = decisions_by_[m][k];
      if (c == nullptr) continue;
      out.push_back(
          {decisions_name(DecisionMechanism(m), DecisionKind(k)), double(c->value()), "count"});
    }
  }
  if (p_.precision.dtype() != config::DTYPE_UNSPECIFIED) {
    out.push_back({"lowered_objects", double(plan_.lowered.size()), "count"});
    out.push_back({"precision_vetoes", double(plan_.precision_vetoes), "count"});
    out.push_back({"quality_proxy", plan_.quality_proxy, "proxy"});
    out.push_back({"resident_stored_bytes", double(plan_.resident_stored_bytes), "bytes"});
  }
  if (!p_.wired_memory.empty()) {
    out.push_back({"wired_objects", double(wired_.size()), "count"});
    out.push_back({"wired_bytes", double(wired_bytes_), "bytes"});
    if (p_.tenant_names.size() > 1 && p_.wired_program.empty() && !p_.wired_emit) {
      // Tenancy: each tenant's share of the arbiter's binds (one quota, or one per tenant).
      std::vector<double> by_tenant(p_.tenant_names.size(), 0);
      for (uint32_t id : wired_)
        by_tenant[ctx_.objects().get(ObjectId(id)).tenant.value()] +=
            double(ctx_.objects().get(ObjectId(id)).size_bytes);
      for (size_t t = 0; t < by_tenant.size(); ++t)
        out.push_back({"wired_bytes_tenant_" + p_.tenant_names[t], by_tenant[t], "bytes"});
    }
    out.push_back(
        {"wired_bytes_per_token", double(wired_bytes_read_.value()) * per, "bytes/token"});
    out.push_back(
        {"wired_saved_bytes_per_step_planned", plan_.wired_saved_bytes_per_step, "bytes/step"});
  }
  if (p_.kv_restore != config::KV_RESTORE_TRANSFER) {
    const double restored = double(arbiter_.recomputed_bytes() + arbiter_.transferred_bytes());
    out.push_back({"kv_recompute_fraction",
                   restored > 0 ? double(arbiter_.recomputed_bytes()) / restored : 0.0,
                   "fraction"});
    out.push_back({"hidden_state_bytes_per_token", double(arbiter_.hidden_bytes_read()) * per,
                   "bytes/token"});
    out.push_back(
        {"recompute_gflop_per_token", arbiter_.recompute_flops() * per / 1e9, "GFLOP/token"});
  }
  for (const MovementMechanism* m : mechanisms_)
    m->summarize(out, per);
  if (map_) {
    out.push_back({"residency_map_hits", double(map_->hits()), "count"});
    out.push_back({"residency_map_misses", double(map_->misses()), "count"});
    out.push_back({"residency_map_occupancy", double(map_->occupancy()), "entries"});
    out.push_back({"residency_map_sram_bytes", double(map_->sram_bytes()), "bytes"});
  }
}

double Orchestrator::controller_energy_j(TimePs now) const {
  // The idle powers summed first: with no idle power set, (sum of the powers) x time.
  double idle_w = 0;
  for (const ControllerFigures& f : p_.controllers)
    idle_w += f.idle_power_w;
  double j = idle_w * ps_to_s(now);
  for (size_t i = 0; i < controllers_.size(); ++i) {
    const ControllerFigures& f = p_.controllers[i];
    if (f.power_w != f.idle_power_w) {
      j += (f.power_w - f.idle_power_w) * ps_to_s(busy_until(i, now)) / f.decision_servers;
    }
  }
  return j;
}

}  // namespace tiersim
