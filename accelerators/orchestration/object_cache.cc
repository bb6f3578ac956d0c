#include "accelerators/orchestration/object_cache.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "accelerators/dma_engine.h"
#include "accelerators/orchestration/orchestrator.h"
#include "models/config/errors.h"
#include "models/core/context.h"
#include "models/core/movement_intent.h"

namespace tiersim {

ObjectCache::ObjectCache(Orchestrator& core)
    : core_(core),
      visits_(core.ctx().stats().counter(core.owner(), "object_cache_visits",
                                         "first reads of a weight object in an op", "count")),
      hits_(core.ctx().stats().counter(core.owner(), "object_cache_hits",
                                       "visits that found the object cached", "count")),
      admissions_(core.ctx().stats().counter(core.owner(), "object_cache_admissions",
                                             "objects given an extent (demand or prefetch)",
                                             "count")),
      evictions_(core.ctx().stats().counter(core.owner(), "object_cache_evictions",
                                            "objects evicted to make room", "count")),
      bypasses_(core.ctx().stats().counter(core.owner(), "object_cache_bypasses",
                                           "visits read from home without admission", "count")),
      fragmentation_samples_(core.ctx().stats().counter(
          core.owner(), "fragmentation_samples", "admissions that sampled fragmentation", "count")),
      fragmentation_failures_(core.ctx().stats().counter(
          core.owner(), "fragmentation_failures",
          "admissions that found enough free bytes but no extent", "count")),
      compactions_(core.ctx().stats().counter(core.owner(), "compactions",
                                              "compactions that moved extents", "count")),
      compaction_bytes_(core.ctx().stats().counter(core.owner(), "compaction_bytes",
                                                   "bytes relocated by compaction", "bytes")),
      prefetches_(core.ctx().stats().counter(core.owner(), "object_prefetches",
                                             "objects admitted by a prefetch", "count")),
      prefetch_bytes_(core.ctx().stats().counter(core.owner(), "object_prefetch_bytes",
                                                 "bytes copied by object prefetches", "bytes")),
      prefetch_used_(core.ctx().stats().counter(core.owner(), "object_prefetch_used",
                                                "prefetched objects read before eviction",
                                                "count")) {}

void ObjectCache::place_home_copies() {
  const PlacementPlan& plan = core_.plan();
  auto& map = core_.ctx().address_map();
  for (uint32_t id : plan.lowered) {
    const ObjectInfo& o = core_.ctx().objects().get(ObjectId(id));
    const uint64_t stored = static_cast<uint64_t>(std::ceil(double(o.size_bytes) * plan.low_scale));
    auto a = map.allocate(o.home, stored, 4096);
    if (!a) {
      throw ConfigError(
          {ConfigIssue{{},
                       "policy.orchestration.object_cache.precision",
                       "\"" + o.home + "\" has no room for the low-precision copy of " + o.name}});
    }
    low_copy_[id] = *a;
  }
}

void ObjectCache::prepare() {
  const auto& p = core_.params().objects;
  const uint64_t bytes = p.bytes() / 4096 * 4096;
  extent_base_ = core_.place(bytes, "the object cache");
  extents_ = std::make_unique<ExtentAllocator>(bytes, 4096);
  compaction_left_ = p.compaction_bytes_per_step();
}

double ObjectCache::scale_of(uint32_t object) const {
  return low_copy_.count(object) ? core_.plan().low_scale : 1.0;
}

void ObjectCache::on_step_start(uint32_t step) {
  compaction_left_ = core_.params().objects.compaction_bytes_per_step();
  // Prefetched objects nobody read within their step lose their protection.
  for (auto it = protected_.begin(); it != protected_.end();) {
    if (it->second > step) {
      ++it;
      continue;
    }
    CachedObject& c = cached_.at(it->first);
    if (c.resident) extents_->release(c.handle);
    c.prefetched = false;
    it = protected_.erase(it);
  }
}

void ObjectCache::on_op_start(const Op& op, TimePs now) {
  // The previous op's references end: its extents may move again.
  for (ExtentAllocator::Handle h : op_refs_)
    extents_->release(h);
  op_refs_.clear();
  ++op_serial_;
  // Prefetch with lookahead: the first op of each layer (the final norm and LM head are the
  // virtual last layer) triggers layer + k.
  const uint32_t k = core_.params().objects.prefetch_layers();
  const uint32_t layers = core_.plan().layers;
  const bool head =
      !op.layer.valid() && (op.kind == OpKind::kEmbedding || op.kind == OpKind::kEmbeddingNorm);
  const uint32_t layer = op.layer.valid() ? op.layer.value() : layers;
  if (k > 0 && !head && layer != last_layer_) {
    last_layer_ = layer;
    prefetch_objects((layer + k) % (layers + 1), layer + k > layers, now);
  }
}

std::pair<uint64_t, uint64_t> ObjectCache::order_key(const CachedObject& c) const {
  // Lowest first out: LRU by last use; LFU by uses, then last use.
  if (core_.params().objects.eviction() == config::OBJECT_LFU) return {c.uses, c.last_use};
  return {c.last_use, 0};
}

bool ObjectCache::compact(uint64_t bytes, TimePs now, bool critical) {
  const auto moves = extents_->make_room(bytes, compaction_left_);
  if (moves.empty()) return false;
  compactions_.inc();
  // Relocating extents is a decision of its own; the moves start when it is taken, and an
  // admission waiting for the room waits for it too.
  TimePs lookups = 0;  // each moved object's entry
  for (const auto& mv : moves)
    lookups += core_.map_lookup(ObjectId(holder_.at(mv.handle)));
  now = core_.decide(now, DecisionMechanism::kObjectCache, DecisionKind::kCompaction, critical,
                     lookups);
  admission_ready_ps_ = std::max(admission_ready_ps_, now);
  for (const auto& mv : moves) {
    compaction_left_ -= std::min(compaction_left_, mv.bytes);
    compaction_bytes_.inc(mv.bytes);
    MovementIntent intent;
    intent.object = ObjectId(holder_.at(mv.handle));
    intent.object_class = ObjectClass::kWeight;
    intent.op = MoveOp::kCompact;
    CachedObject& moved = cached_.at(holder_.at(mv.handle));
    const TimePs landed = core_.dma().transfer(extent_base_ + mv.from, extent_base_ + mv.to,
                                               mv.bytes, intent, std::max(now, moved.ready_ps));
    moved.landed_ps = moved.ready_ps = landed;
    moved.move_decided_ps = now;  // a read waiting for the move waits for this decision first
  }
  return true;
}

bool ObjectCache::admit(uint32_t object, uint64_t bytes, TimePs now, bool critical) {
  if (bytes > extents_->capacity()) return false;
  const Fit fit =
      core_.params().objects.fit() == config::EXTENT_BEST_FIT ? Fit::kBest : Fit::kFirst;
  CachedObject& c = cached_[object];
  // External fragmentation as the admission finds it.
  const FragmentationMetrics found = extents_->metrics();
  fragmentation_sum_ += found.external;
  fragmentation_max_ = std::max(fragmentation_max_, found.external);
  fragmentation_samples_.inc();
  while (true) {
    if (auto h = extents_->allocate(bytes, fit)) {
      c.handle = *h;
      holder_[*h] = object;
      return true;
    }
    if (extents_->metrics().free_bytes >= bytes) {
      // Enough free bytes, no extent large enough: targeted compaction within the step's
      // budget (the fewest bytes that open an extent large enough). Extents the running op
      // references stay (the allocator never moves a referenced extent).
      fragmentation_failures_.inc();
      // Each compaction is decided after the admission's decision and any compaction before.
      if (compaction_left_ > 0 && compact(bytes, std::max(now, admission_ready_ps_), critical)) {
        continue;
      }
    }
    // Evict the lowest-ranked object nothing references.
    auto victim = order_.begin();
    while (victim != order_.end() && extents_->references(cached_.at(victim->second).handle) > 0)
      ++victim;
    if (victim == order_.end()) return false;
    CachedObject& v = cached_.at(victim->second);
    order_.erase(victim);
    holder_.erase(v.handle);
    extents_->free(v.handle);
    v.resident = false;
    evictions_.inc();
  }
}

void ObjectCache::visit(uint32_t object, CachedObject& c, const ObjectInfo& o, double scale,
                        TimePs now) {
  c.visit_op = op_serial_;
  c.last_step = core_.step();
  visits_.inc();
  if (c.resident) {
    hits_.inc();
    order_.erase({c.order_key, object});
    if (c.prefetched) {
      // A prefetch used: its protection passes to this op's reference.
      prefetch_used_.inc();
      c.prefetched = false;
      c.staged_op = op_serial_;
      protected_.erase(object);
      extents_->release(c.handle);
    }
  } else {
    // A miss: the controller decides to admit (evicting, compacting) or bypass, and the
    // visit's reads wait for it.
    admission_ready_ps_ =
        core_.decide(now, DecisionMechanism::kObjectCache, DecisionKind::kAdmission, true,
                     core_.map_lookup(ObjectId(object)));
    if (admit(object, uint64_t(std::ceil(double(o.size_bytes) * scale)), admission_ready_ps_,
              true)) {
      c.resident = true;
      c.fill_op = op_serial_;
      c.landed_ps = c.ready_ps = 0;
      c.issued = true;
      c.prefetched = false;
      admissions_.inc();
    } else {
      bypasses_.inc();
    }
    c.visit_ready_ps = admission_ready_ps_;  // after a compaction decision too
  }
  if (c.resident) {
    ++c.uses;
    c.last_use = ++clock_;
    c.order_key = order_key(c);
    order_.insert({c.order_key, object});
    extents_->acquire(c.handle);
    op_refs_.push_back(c.handle);
  }
}

bool ObjectCache::locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes,
                         TimePs now, ReadSource& src) {
  src.bytes = max_bytes;
  src.ready_ps = src.landed_ps = now;
  // A lowered object: its low-precision copy at home and in the cache (bytes scaled).
  auto low = low_copy_.find(object.value());
  const bool lowered = low != low_copy_.end();
  const double scale = lowered ? core_.plan().low_scale : 1.0;
  const uint64_t stored_offset = lowered ? uint64_t(double(offset) * scale) : offset;
  const uint64_t home = lowered ? low->second + stored_offset : o.address + offset;
  if (lowered) {
    src.scale = scale;
    src.dequant_flops_per_byte = core_.plan().dequant_flops_per_byte;
  }
  // The object's first read in this op: one visit.
  // One lookup per tile: admissions only look up existing entries, so `c` stays valid.
  CachedObject& c = cached_[object.value()];
  if (c.visit_op != op_serial_) visit(object.value(), c, o, scale, now);
  const bool missed = !c.resident || c.fill_op == op_serial_;
  if (missed && c.visit_ready_ps > now) {  // this visit's decision is not taken yet
    src.wait_for_decision(c.visit_ready_ps);
  }
  if (!c.resident) {
    src.address = home;
    src.path = ReadPath::kDemand;
    return true;
  }
  const uint64_t at = extent_base_ + extents_->offset(c.handle) + stored_offset;
  if (c.fill_op == op_serial_) {
    // Being admitted: read from home, each landed tile copied into the extent.
    src.address = home;
    src.path = ReadPath::kDemand;
    src.admit_address = at;
    return true;
  }
  src.address = at;
  src.path = c.staged_op == op_serial_ ? ReadPath::kStaged : ReadPath::kResident;
  if (c.prefetched || c.staged_op == op_serial_) src.decided_ps = c.decided_ps;
  if (c.ready_ps > now) src.decided_ps = std::max(src.decided_ps, c.move_decided_ps);
  if (!c.issued) {  // a prefetch decided, not issued yet: ask again then
    src.pending = true;
    src.ready_ps = src.landed_ps = c.decided_ps;
    return true;
  }
  // Ready after its prefetch landed and was notified, or after a compaction move.
  src.landed_ps = std::max(now, c.landed_ps);
  src.ready_ps = std::max(now, c.ready_ps);
  return true;
}

void ObjectCache::prefetch_objects(uint32_t layer, bool next_step, TimePs trigger) {
  const auto& p = core_.params().objects;
  const uint32_t target_step = core_.step() + (next_step ? 1 : 0);
  const bool all = p.prefetch() == config::OBJECT_PREFETCH_ALL;
  const double sure = p.has_prefetch_confidence() ? p.prefetch_confidence() : 1.0;
  for (ObjectId id : core_.plan().layer_objects[layer]) {
    const ObjectInfo& o = core_.ctx().objects().get(id);
    CachedObject& c = cached_[id.value()];
    if (c.resident) continue;
    // Activation-aware: used every step by intent, or read at the layer's previous visit.
    const bool predicted = all || core_.intent_at(o, target_step).second >= sure ||
                           (c.last_step != UINT32_MAX && c.last_step + 1 == target_step);
    if (!predicted) continue;
    // One decision per object's copy, serialised on the controller.
    admission_ready_ps_ = core_.decide(trigger, DecisionMechanism::kObjectCache,
                                       DecisionKind::kPrefetch, false, core_.map_lookup(id));
    const uint64_t stored = uint64_t(std::ceil(double(o.size_bytes) * scale_of(id.value())));
    if (!admit(id.value(), stored, admission_ready_ps_, false)) continue;
    const TimePs decided = admission_ready_ps_;  // after a compaction it needed
    c.resident = true;
    c.fill_op = 0;
    c.issued = false;
    c.prefetched = true;
    c.decided_ps = decided;
    c.landed_ps = c.ready_ps = 0;
    c.last_use = ++clock_;
    c.order_key = order_key(c);
    order_.insert({c.order_key, id.value()});
    extents_->acquire(c.handle);  // protected until read, or the target step has passed
    protected_[id.value()] = target_step + 1;
    queue_.push_back({decided, id.value()});
    prefetches_.inc();
    admissions_.inc();
  }
  core_.issue_due(trigger);
}

TimePs ObjectCache::issue_due(TimePs now) {
  while (queue_head_ < queue_.size()) {
    const auto [decided, id] = queue_[queue_head_];
    if (decided > now) return decided;
    ++queue_head_;
    CachedObject& c = cached_.at(id);
    if (!c.resident || c.issued) continue;
    const ObjectInfo& o = core_.ctx().objects().get(ObjectId(id));
    const auto low = low_copy_.find(id);
    const bool lowered = low != low_copy_.end();
    const uint64_t bytes =
        lowered ? uint64_t(std::ceil(double(o.size_bytes) * core_.plan().low_scale)) : o.size_bytes;
    const uint64_t src = lowered ? low->second : o.address;
    const uint64_t dst = extent_base_ + extents_->offset(c.handle);
    MovementIntent intent;
    intent.object = ObjectId(id);
    intent.object_class = o.cls;
    intent.op = MoveOp::kPrefetch;
    intent.layer = o.layer;
    const TimePs landed = core_.copy(core_.dma(), src, dst, bytes, intent, now);
    c.issued = true;
    c.landed_ps = landed;
    c.ready_ps = landed + core_.notification_ps(DecisionMechanism::kObjectCache);
    prefetch_bytes_.inc(bytes);
    core_.count_prefetch(bytes, decided, c.ready_ps);
  }
  queue_.clear();
  queue_head_ = 0;
  return 0;
}

void ObjectCache::summarize(std::vector<SummaryItem>& out, double per) const {
  const double visits = double(visits_.value());
  const FragmentationMetrics m = extents_->metrics();
  const uint64_t samples = fragmentation_samples_.value();
  out.push_back({"object_cache_visits", visits, "count"});
  out.push_back(
      {"object_cache_hit_rate", visits > 0 ? double(hits_.value()) / visits : 0.0, "fraction"});
  out.push_back({"object_cache_admissions", double(admissions_.value()), "count"});
  out.push_back({"object_cache_evictions", double(evictions_.value()), "count"});
  out.push_back({"object_cache_bypasses", double(bypasses_.value()), "count"});
  out.push_back(
      {"admission_bytes_per_token", double(core_.admission_bytes()) * per, "bytes/token"});
  out.push_back(
      {"fragmentation_mean", samples ? fragmentation_sum_ / double(samples) : 0.0, "fraction"});
  out.push_back({"fragmentation_max", fragmentation_max_, "fraction"});
  out.push_back({"fragmentation_end", m.external, "fraction"});
  out.push_back({"largest_free_extent_end", double(m.largest_free_extent), "bytes"});
  out.push_back({"fragmentation_failures", double(fragmentation_failures_.value()), "count"});
  out.push_back({"compactions", double(compactions_.value()), "count"});
  out.push_back(
      {"compaction_bytes_per_token", double(compaction_bytes_.value()) * per, "bytes/token"});
  if (core_.params().objects.prefetch_layers() > 0) {
    const double prefetches = double(prefetches_.value());
    out.push_back({"object_prefetches", prefetches, "count"});
    out.push_back(
        {"object_prefetch_bytes_per_token", double(prefetch_bytes_.value()) * per, "bytes/token"});
    out.push_back({"object_prefetch_accuracy",
                   prefetches > 0 ? double(prefetch_used_.value()) / prefetches : 0.0, "fraction"});
  }
}

}  // namespace tiersim
