#include "accelerators/orchestration/orchestrator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "accelerators/dma_engine.h"
#include "accelerators/orchestration/context_regions.h"
#include "accelerators/orchestration/layer_prefetch.h"
#include "accelerators/orchestration/object_cache.h"
#include "accelerators/orchestration/page_cache.h"
#include "fabric/serial_link.h"
#include "models/core/context.h"
#include "models/core/dtype.h"
#include "models/core/movement_intent.h"
#include "models/core/sim_time.h"

namespace tiersim {

Orchestrator::Orchestrator(sc_core::sc_module_name name, const OrchestrationParams& p, Context& ctx)
    : sc_core::sc_module(name),
      p_(p),
      ctx_(ctx),
      owner_(basename()),
      rng_(ctx.rng_for(std::string(basename()) + ".decisions")),
      arbiter_(p.kv_restore, p.arbiter_path_bytes_per_s),
      decisions_(ctx.stats().counter(owner_, "decisions", "copy decisions taken", "count")),
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
  SC_METHOD(run);
  sensitive << wake_;
  dont_initialize();
  // The mechanisms in hook order (context regions, object cache, layer prefetch, page cache);
  // the layer prefetch is always there (it is inert without prefetch_layers).
  if (p_.regions) regions_ = std::make_unique<ContextRegions>(*this);
  if (p_.object_cache) objects_ = std::make_unique<ObjectCache>(*this);
  prefetch_ = std::make_unique<LayerPrefetch>(*this);
  if (p_.replacement != config::REPLACEMENT_UNSPECIFIED) {
    pages_ = std::make_unique<PageCache>(*this);
  }
  for (MovementMechanism* m : std::initializer_list<MovementMechanism*>{
           regions_.get(), objects_.get(), prefetch_.get(), pages_.get()}) {
    if (m != nullptr) mechanisms_.push_back(m);
  }
}

Orchestrator::~Orchestrator() = default;

TimePs Orchestrator::decide(TimePs trigger, TimePs extra) {
  const TimePs decided = std::max(trigger, controller_free_) + extra + p_.decision_latency_ps +
                         draw_jitter(p_.decision_jitter, rng_);
  controller_free_ = decided;
  decisions_.inc();
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
  const auto& map = ctx_.address_map();
  const uint64_t wired_room =
      p_.wired_memory.empty() ? 0 : map.capacity(p_.wired_memory) - map.allocated(p_.wired_memory);
  const double weight_bits = dtype_bits(ctx_.config().workload().model().weight_dtype());
  plan_ = plan_placement(ctx_.objects(), p_, weight_bits, wired_room);
  apply_plan();
  for (MovementMechanism* m : mechanisms_)
    m->prepare();
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

void Orchestrator::on_op_start(const Op& op, TimePs now) {
  for (MovementMechanism* m : mechanisms_)
    m->on_op_start(op, now);
}

Orchestrator::Source Orchestrator::locate(ObjectId object, uint64_t offset, uint64_t max_bytes,
                                          TimePs now) {
  const ObjectInfo& o = ctx_.objects().get(object);
  Source src;
  if (regions_ && o.cls == ObjectClass::kKvCache &&
      regions_->locate(object, o, offset, max_bytes, now, src)) {
    return src;
  }
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

void Orchestrator::record(const Source& s, uint64_t logical, TimePs now, TimePs start) {
  // `now` is when the consumer first wanted the tile. Bytes count as stored (a lower-precision
  // copy moves fewer than the tile's logical bytes).
  const uint64_t bytes = s.scale < 1.0
                             ? std::max<uint64_t>(1, uint64_t(std::ceil(double(logical) * s.scale)))
                             : logical;
  switch (s.path) {
    case Path::kResident:
      resident_bytes_read_.inc(bytes);
      break;
    case Path::kStaged:
      staged_bytes_read_.inc(bytes);
      staged_tiles_.inc();
      if (start > now) {
        late_tiles_.inc();
        // Exposed stall: the union of the intervals in which some tile waits for a prefetch
        // (tiles issued together wait together: counted once). Requests arrive in time order.
        const TimePs from = std::max(now, stall_counted_until_);
        if (start > from) {
          const TimePs data = s.landed_ps > from ? std::min(s.landed_ps, start) - from : 0;
          data_stall_ps_.inc(data);
          notify_stall_ps_.inc(start - from - data);
          stall_counted_until_ = start;
        }
      }
      break;
    case Path::kDemand:
      demand_bytes_.inc(bytes);
      demand_misses_.inc();
      break;
    case Path::kWired:
      wired_bytes_read_.inc(bytes);
      break;
  }
}

void Orchestrator::summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {
  const double per = tokens ? 1.0 / double(tokens) : 0.0;
  const double staged = double(staged_tiles_.value());
  out.push_back({"stall_us_per_token",
                 double(data_stall_ps_.value() + notify_stall_ps_.value()) * per / 1e6,
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
  if (p_.precision.dtype() != config::DTYPE_UNSPECIFIED) {
    out.push_back({"lowered_objects", double(plan_.lowered.size()), "count"});
    out.push_back({"precision_vetoes", double(plan_.precision_vetoes), "count"});
    out.push_back({"quality_proxy", plan_.quality_proxy, "proxy"});
    out.push_back({"resident_stored_bytes", double(plan_.resident_stored_bytes), "bytes"});
  }
  if (!p_.wired_memory.empty()) {
    out.push_back({"wired_objects", double(wired_.size()), "count"});
    out.push_back({"wired_bytes", double(wired_bytes_), "bytes"});
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
}

}  // namespace tiersim
