#include "accelerators/orchestration/context_regions.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "accelerators/dma_engine.h"
#include "accelerators/orchestration/orchestrator.h"
#include "models/core/context.h"
#include "models/core/dtype.h"
#include "models/core/movement_intent.h"

namespace tiersim {

ContextRegions::ContextRegions(Orchestrator& core)
    : core_(core),
      visits_(core.ctx().stats().counter(core.owner(), "region_visits",
                                         "first reads of a selected middle region in a step",
                                         "count")),
      hits_(core.ctx().stats().counter(core.owner(), "region_hits",
                                       "visits that found the region in the pool", "count")),
      skipped_(core.ctx().stats().counter(core.owner(), "region_skipped",
                                          "visits attended without the region (lost or late)",
                                          "count")),
      copyups_(core.ctx().stats().counter(core.owner(), "region_stall_copyups",
                                          "late regions read on demand and copied up", "count")),
      skip_copyups_(core.ctx().stats().counter(core.owner(), "region_skip_copyups",
                                               "skipped regions copied up for the next step",
                                               "count")),
      promotions_(core.ctx().stats().counter(core.owner(), "region_promotions",
                                             "regions promoted ahead of their layer", "count")),
      promotion_bytes_(core.ctx().stats().counter(core.owner(), "region_promotion_bytes",
                                                  "bytes copied by promotions", "bytes")),
      promoted_used_(core.ctx().stats().counter(core.owner(), "region_promoted_used",
                                                "promoted or copied-up regions attended", "count")),
      exit_bytes_(core.ctx().stats().counter(core.owner(), "region_window_exit_bytes",
                                             "bytes copied from the window ring into the pool",
                                             "bytes")),
      compressed_reads_(core.ctx().stats().counter(core.owner(), "region_compressed_reads",
                                                   "regions attended in the compressed tier",
                                                   "count")) {}

void ContextRegions::on_op_start(const Op& op, TimePs now) {
  if (op.kind == OpKind::kAttention) on_attention(op, now);
}

RegionPolicyParams ContextRegions::pool_params() {
  const auto& cr = core_.params().context_regions;
  const auto& sa = core_.ctx().config().workload().decode().sparse_attention();
  RegionPolicyParams rp;
  rp.frames = static_cast<uint32_t>(
      std::min<uint64_t>(cr.budget_bytes() / region_bytes_, std::numeric_limits<uint32_t>::max()));
  rp.score = cr.ranking() == config::REGION_SCORE;
  if (cr.has_ema_alpha()) rp.alpha = cr.ema_alpha();
  rp.backup = cr.has_backup() ? cr.backup() : true;
  rp.veto_steps = cr.veto_steps();
  rp.veto_mass = cr.veto_mass();
  rp.mass_per_region = 1.0 / double(std::max<uint32_t>(1, sa.top_k_pages()));
  if (cr.compressed_budget_bytes() > 0) {
    const config::Dtype dt =
        cr.compressed_dtype() == config::DTYPE_UNSPECIFIED ? config::INT4 : cr.compressed_dtype();
    const double bits = dtype_bits(dt);
    const config::Dtype kv = core_.ctx().config().workload().model().kv_dtype();
    const double full = dtype_bits(kv == config::DTYPE_UNSPECIFIED ? config::BF16 : kv);
    compressed_scale_ = std::min(1.0, bits / full);
    compressed_error_ = std::pow(2.0, -bits);
    compressed_region_bytes_ =
        (uint64_t(std::ceil(double(region_bytes_) * compressed_scale_)) + 63) / 64 * 64;
    compressed_dequant_per_byte_ =
        (cr.has_dequant_flops_per_element() ? cr.dequant_flops_per_element() : 2.0) / (full / 8.0);
    rp.compressed_frames = static_cast<uint32_t>(
        std::min<uint64_t>(cr.compressed_budget_bytes() / compressed_region_bytes_,
                           std::numeric_limits<uint32_t>::max()));
  }
  return rp;
}

void ContextRegions::fill_initial_pool(const std::vector<ObjectId>& kv) {
  // The initial pool: each sequence's most recent middle regions, its fair share of the frames
  // (round robin over the objects so that a remainder spreads).
  bool placed = true;
  for (uint64_t back = 1; placed && pool_->free_frames() > 0; ++back) {
    placed = false;
    for (ObjectId id : kv) {
      if (pool_->free_frames() == 0) break;
      const RegionObject& ro = region_obj_.at(id.value());
      if (ro.initial_end < back + sink_pages_) continue;
      const uint64_t page = ro.initial_end - back;
      placed |= pool_->place((RegionKey(id.value()) << 32) | page);
    }
  }
  if (!pool_->params().backup) {
    // Without backups the middle regions that did not fit are gone from the start.
    uint64_t middle = 0;
    for (ObjectId id : kv) {
      const RegionObject& ro = region_obj_.at(id.value());
      middle += ro.initial_end > sink_pages_ ? ro.initial_end - sink_pages_ : 0;
    }
    pool_->count_lost(middle - std::min(middle, uint64_t{pool_->frames() - pool_->free_frames()}));
  }
}

void ContextRegions::prepare() {
  const auto& d = core_.ctx().config().workload().decode();
  const auto& sa = d.sparse_attention();
  std::vector<ObjectId> kv;
  for (size_t i = 0; i < core_.ctx().objects().size(); ++i) {
    const ObjectInfo& o = core_.ctx().objects().get(ObjectId(static_cast<uint32_t>(i)));
    if (o.cls == ObjectClass::kKvCache && o.kv_block_tokens > 0 && o.layer.valid() &&
        o.sequence != UINT32_MAX) {
      kv.push_back(ObjectId(static_cast<uint32_t>(i)));
    }
  }
  if (kv.empty())
    throw std::logic_error(core_.owner() + ": context regions without paged KV objects");
  const ObjectInfo& first = core_.ctx().objects().get(kv.front());
  block_tokens_ = first.kv_block_tokens;
  region_bytes_ = uint64_t{block_tokens_} * first.token_bytes;
  sink_pages_ = static_cast<uint32_t>((sa.sink_tokens() + block_tokens_ - 1) / block_tokens_);
  window_tokens_ = sa.window_tokens();
  // The window's pages: from (cached - window) / B up to the page the new token lands in.
  ring_pages_ = (window_tokens_ + block_tokens_ - 1) / block_tokens_ + 2;
  const RegionPolicyParams rp = pool_params();
  pool_ = std::make_unique<RegionPool>(rp);
  if (rp.frames > 0) {
    pool_base_ = core_.place(uint64_t{rp.frames} * region_bytes_, "the context-region pool");
  }
  if (rp.compressed_frames > 0) {
    compressed_pool_base_ = core_.place(uint64_t{rp.compressed_frames} * compressed_region_bytes_,
                                        "the compressed context-region tier");
  }
  const uint64_t context = d.context_tokens();
  const uint64_t initial_end =
      context >= window_tokens_ ? (context - window_tokens_) / block_tokens_ : 0;
  uint32_t layers = 0;
  for (ObjectId id : kv)
    layers = std::max(layers, core_.ctx().objects().get(id).layer.value() + 1);
  kv_of_.assign(layers, {});
  for (ObjectId id : kv) {
    const ObjectInfo& o = core_.ctx().objects().get(id);
    RegionObject ro;
    ro.layer = o.layer.value();
    ro.seq = o.sequence;
    ro.window_end = ro.initial_end = initial_end;
    ro.pinned = core_.place(uint64_t{sink_pages_ + ring_pages_} * region_bytes_,
                            o.name + "'s sink and window pages");
    ro.digests =
        core_.place(o.size_bytes - o.kv_tokens * o.token_bytes, o.name + "'s page digests");
    auto& row = kv_of_[ro.layer];
    if (row.size() <= ro.seq) row.resize(ro.seq + 1);
    row[ro.seq] = id;
    region_obj_[id.value()] = ro;
  }
  fill_initial_pool(kv);
}

RegionPool::Region& ContextRegions::region(RegionKey key) {
  // First sight of a region: pages that existed at the start and did not fit the initial pool
  // are at home with a backup, or lost without one.
  const RegionObject& ro = region_obj_.at(static_cast<uint32_t>(key >> 32));
  const uint64_t page = key & 0xffffffffULL;
  const bool backup = pool_->params().backup;
  return pool_->get(
      key, !backup && page < ro.initial_end ? RegionPool::State::kLost : RegionPool::State::kHome);
}

uint64_t ContextRegions::pinned_address(const RegionObject& ro, uint64_t page) const {
  const uint64_t slot = page < sink_pages_ ? page : sink_pages_ + page % ring_pages_;
  return ro.pinned + slot * region_bytes_;
}

uint64_t ContextRegions::kv_shadow(ObjectId object, uint64_t offset) const {
  auto it = region_obj_.find(object.value());
  if (it == region_obj_.end()) return 0;
  const ObjectInfo& o = core_.ctx().objects().get(object);
  const uint64_t tokens = o.kv_tokens * o.token_bytes;
  if (offset >= tokens) return it->second.digests + (offset - tokens);
  const uint64_t page = offset / region_bytes_;
  return pinned_address(it->second, page) + (offset - page * region_bytes_);
}

void ContextRegions::on_attention(const Op& op, TimePs now) {
  move_windows(op, now);
  drain_compressed(now);
  promote_ahead(op, now);
}

void ContextRegions::move_windows(const Op& op, TimePs now) {
  // 1. Each sequence's window moves to its new token (the op's KV write): pages that leave it
  // enter the pool if they outrank its lowest region (copied from the window ring), else stay
  // at home (their backup was written with each token) or, without backups, are lost.
  for (uint16_t i = 0; i < op.operand_count; ++i) {
    const Operand& w = op.operand(i);
    if (w.access != Access::kWrite) continue;
    auto it = region_obj_.find(w.object.value());
    if (it == region_obj_.end()) continue;
    RegionObject& ro = it->second;
    const ObjectInfo& o = core_.ctx().objects().get(w.object);
    if (w.offset_bytes >= o.kv_tokens * o.token_bytes) continue;  // a digest
    const uint64_t cached = w.offset_bytes / o.token_bytes;
    const uint64_t end = cached >= window_tokens_ ? (cached - window_tokens_) / block_tokens_ : 0;
    for (uint64_t page = ro.window_end; page < end; ++page) {
      if (page < sink_pages_) continue;
      const RegionKey key = (RegionKey(w.object.value()) << 32) | page;
      region(key);
      if (auto frame = pool_->admit(key, core_.step(), true)) {
        MovementIntent intent;
        intent.object = w.object;
        intent.object_class = o.cls;
        intent.op = MoveOp::kPromote;
        intent.layer = o.layer;
        const TimePs landed = core_.dma().transfer(pinned_address(ro, page),
                                                   pool_base_ + uint64_t{*frame} * region_bytes_,
                                                   region_bytes_, intent, now);
        RegionPool::Region& r = region(key);
        r.landed_ps = r.ready_ps = landed;
        exit_bytes_.inc(region_bytes_);
      } else if (!pool_->params().backup) {
        pool_->lose(key);
      }
    }
    ro.window_end = std::max(ro.window_end, end);
  }
}

void ContextRegions::promote_ahead(const Op& op, TimePs now) {
  const auto& cr = core_.params().context_regions;
  // 2. Speculative promotion: the regions this layer attends, for the same sequence
  // lookahead_layers layers on (the next step's layers past the last).
  if (cr.lookahead_layers() == 0 || !op.layer.valid()) return;
  const uint32_t layers = static_cast<uint32_t>(kv_of_.size());
  const uint32_t target_layer = (op.layer.value() + cr.lookahead_layers()) % layers;
  const size_t limit = cr.has_promote_pages() ? cr.promote_pages() : SIZE_MAX;
  // Per sequence: the candidates, ranked by their source region's rank in this layer (its
  // score, or its recency), the top promote_pages promoted in one decision.
  auto flush = [&] {
    if (ranked_.empty()) return;
    if (ranked_.size() > limit) {
      std::stable_sort(ranked_.begin(), ranked_.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      ranked_.resize(limit);
    }
    scratch_.clear();
    for (const auto& [rank, key] : ranked_)
      scratch_.push_back(key);
    ranked_.clear();
    queue_copies(scratch_, true, now);
  };
  ranked_.clear();
  uint32_t current = UINT32_MAX;
  for (uint16_t i = 0; i < op.operand_count; ++i) {
    const Operand& rd = op.operand(i);
    if (rd.access != Access::kRead || rd.bytes == 0) continue;
    auto it = region_obj_.find(rd.object.value());
    if (it == region_obj_.end()) continue;
    const RegionObject& ro = it->second;
    if (ro.seq != current) {
      flush();
      current = ro.seq;
    }
    if (ro.seq >= kv_of_[target_layer].size()) continue;
    const ObjectId target = kv_of_[target_layer][ro.seq];
    const RegionObject& to = region_obj_.at(target.value());
    const uint64_t last = (rd.offset_bytes + rd.bytes - 1) / region_bytes_;
    for (uint64_t page = rd.offset_bytes / region_bytes_; page <= last; ++page) {
      if (page < sink_pages_ || page >= to.window_end) continue;  // pinned there
      const RegionKey key = (RegionKey(target.value()) << 32) | page;
      if (region(key).state != RegionPool::State::kHome) continue;  // there, or lost
      const auto* src = pool_->find((RegionKey(rd.object.value()) << 32) | page);
      ranked_.emplace_back(src ? src->rank : 0.0, key);
    }
  }
  flush();
}

void ContextRegions::queue_copies(const std::vector<RegionKey>& keys, bool speculative,
                                  TimePs now) {
  // One decision (a descriptor chain) for the regions of one sequence that are at home.
  bool any = false;
  for (RegionKey key : keys)
    any |= region(key).state == RegionPool::State::kHome;
  if (!any) return;
  // The sequence's KV object, looked up once for the chain.
  const TimePs decided =
      core_.decide(now, DecisionMechanism::kContextRegions, DecisionKind::kPrefetch, false,
                   core_.map_lookup(ObjectId(static_cast<uint32_t>(keys.front() >> 32))));
  for (RegionKey key : keys) {
    if (region(key).state != RegionPool::State::kHome) continue;
    if (!pool_->admit(key, core_.step(), false)) continue;  // vetoed: every candidate locked
    RegionPool::Region& r = region(key);
    r.speculative = true;  // copied ahead of its use, not read yet
    r.issued = false;
    r.decided_ps = decided;
    // Not demoted before its use (the next step at the latest).
    pool_->protect(key, core_.step() + 2, core_.step());
    queue_.push_back({decided, key, speculative});
    (speculative ? promotions_ : skip_copyups_).inc();
  }
  drain_compressed(now);
  core_.issue_due(now);
}

TimePs ContextRegions::issue_due(TimePs now) {
  while (queue_head_ < queue_.size()) {
    const RegionCopy c = queue_[queue_head_];
    if (c.decided_ps > now) return c.decided_ps;
    ++queue_head_;
    RegionPool::Region& r = region(c.key);
    if (r.state != RegionPool::State::kPool || r.issued) continue;
    const ObjectId id(static_cast<uint32_t>(c.key >> 32));
    const uint64_t page = c.key & 0xffffffffULL;
    const ObjectInfo& o = core_.ctx().objects().get(id);
    const uint64_t at = page * region_bytes_;
    const uint64_t bytes = std::min(region_bytes_, o.kv_tokens * o.token_bytes - at);
    MovementIntent intent;
    intent.object = id;
    intent.object_class = o.cls;
    intent.op = MoveOp::kPrefetch;
    intent.layer = o.layer;
    const TimePs landed = core_.dma().transfer(
        o.address + at, pool_base_ + uint64_t{r.frame} * region_bytes_, bytes, intent, now);
    r.issued = true;
    r.landed_ps = landed;
    r.ready_ps = landed + core_.notification_ps(DecisionMechanism::kContextRegions);
    if (c.speculative) promotion_bytes_.inc(bytes);
    core_.count_prefetch(bytes, c.decided_ps, r.ready_ps);
  }
  queue_.clear();
  queue_head_ = 0;
  return 0;
}

void ContextRegions::drain_compressed(TimePs now) {
  for (const auto& [key, frame] : pool_->take_compressed()) {
    const RegionPool::Region& r = region(key);
    const ObjectId id(static_cast<uint32_t>(key >> 32));
    MovementIntent intent;
    intent.object = id;
    intent.object_class = ObjectClass::kKvCache;
    intent.op = MoveOp::kDemote;
    // The quantising copy, timed as the compressed bytes moved (the full region's read in the
    // same memory is not charged separately).
    core_.dma().transfer(pool_base_ + uint64_t{frame} * region_bytes_,
                         compressed_pool_base_ + uint64_t{r.cframe} * compressed_region_bytes_,
                         compressed_region_bytes_, intent, now);
  }
}

bool ContextRegions::locate(ObjectId object, const ObjectInfo& o, uint64_t offset,
                            uint64_t max_bytes, TimePs now, ReadSource& src) {
  auto found = region_obj_.find(object.value());
  if (found == region_obj_.end()) return false;
  const RegionObject& ro = found->second;
  src.ready_ps = src.landed_ps = now;
  src.path = ReadPath::kResident;
  const uint64_t tokens = o.kv_tokens * o.token_bytes;
  if (offset >= tokens) {  // page digests: always in the fast memory
    src.address = ro.digests + (offset - tokens);
    src.bytes = std::min(max_bytes, o.size_bytes - offset);
    return true;
  }
  const uint64_t page = offset / region_bytes_;
  const uint64_t in_page = offset - page * region_bytes_;
  src.bytes = std::min({max_bytes, region_bytes_ - in_page, tokens - offset});
  const RegionKey key = (RegionKey(object.value()) << 32) | page;
  const bool head = in_page == 0;
  if (page < sink_pages_ || page >= ro.window_end) {  // sink or window: pinned
    src.address = pinned_address(ro, page) + in_page;
    if (head) pool_->attend(key, core_.step());
    return true;
  }
  if (!head && key == skipping_) {
    src.skip = true;
    return true;
  }
  if (!head && key == admitting_) {
    RegionPool::Region& r = region(key);
    src.address = o.address + offset;
    src.path = ReadPath::kDemand;
    if (key == decided_key_ && decided_ps_ > now) {
      src.wait_for_decision(decided_ps_);
    }
    if (r.state == RegionPool::State::kPool) {
      src.admit_address = pool_base_ + uint64_t{r.frame} * region_bytes_ + in_page;
    }
    return true;
  }
  RegionPool::Region& r = region(key);
  const bool first = head && r.last_step != core_.step();
  const bool promoted = r.speculative;
  if (first) visits_.inc();
  switch (r.state) {
    case RegionPool::State::kPool:
      if (first) {
        hits_.inc();
        if (promoted) promoted_used_.inc();
        pool_->attend(key, core_.step());
      }
      src.address = pool_base_ + uint64_t{r.frame} * region_bytes_ + in_page;
      src.decided_ps = r.decided_ps;
      if (!r.issued) {
        src.pending = true;
        src.path = ReadPath::kStaged;
        src.ready_ps = src.landed_ps = r.decided_ps;
        return true;
      }
      src.landed_ps = std::max(now, r.landed_ps);
      src.ready_ps = std::max(now, r.ready_ps);
      if (promoted || src.ready_ps > now) src.path = ReadPath::kStaged;
      return true;
    case RegionPool::State::kCompressed:
      // Attention mode COMPRESSED: read the quantised copy, dequantise it.
      if (first) {
        compressed_reads_.inc();
        pool_->attend(key, core_.step());
      }
      src.address = compressed_pool_base_ + uint64_t{r.cframe} * compressed_region_bytes_ +
                    uint64_t(double(in_page) * compressed_scale_);
      src.scale = compressed_scale_;
      src.dequant_flops_per_byte = compressed_dequant_per_byte_;
      return true;
    case RegionPool::State::kLost:
      if (first) skipped_.inc();
      skipping_ = key;
      src.skip = true;
      return true;
    case RegionPool::State::kHome:
      break;
  }
  if (core_.params().context_regions.late() == config::LATE_REGION_SKIP) {
    // Attention goes on without it; it is copied up for the next step.
    if (first) {
      skipped_.inc();
      pool_->attend(key, core_.step());
      queue_copies({key}, false, now);  // counted there when admitted
    }
    skipping_ = key;
    src.skip = true;
    return true;
  }
  // STALL: read from home once the controller decided (a demand miss: the read waits for it);
  // admitted, each landed tile is copied into its frame.
  src.address = o.address + offset;
  src.path = ReadPath::kDemand;
  if (first) {
    decided_key_ = key;
    decided_ps_ = core_.decide(now, DecisionMechanism::kContextRegions, DecisionKind::kAdmission,
                               true, core_.map_lookup(object));
  }
  if (key == decided_key_ && decided_ps_ > now) {
    src.wait_for_decision(decided_ps_);
  }
  if (first) {
    pool_->attend(key, core_.step());
    if (auto frame = pool_->admit(key, core_.step(), false)) {
      drain_compressed(now);
      copyups_.inc();
      admitting_ = key;
      src.admit_address = pool_base_ + uint64_t{*frame} * region_bytes_;
    }
  }
  return true;
}

uint64_t ContextRegions::unused_prefetch_bytes() const {
  // Regions copied ahead (promoted, or copied up after a skip) that nobody attended.
  const uint64_t ahead = promotions_.value() + skip_copyups_.value();
  const uint64_t used = promoted_used_.value();
  return ahead > used ? (ahead - used) * region_bytes_ : 0;
}

void ContextRegions::summarize(std::vector<SummaryItem>& out, double per) const {
  const auto& c = pool_->counters();
  const double visits = double(visits_.value());
  const uint64_t ahead = promotions_.value() + skip_copyups_.value();
  out.push_back({"region_pool_frames", double(pool_->frames()), "frames"});
  out.push_back({"region_visits", visits, "count"});
  out.push_back({"region_hit_rate", visits > 0 ? double(hits_.value()) / visits : 0.0, "fraction"});
  // Recall: the share of selected middle regions attended (not skipped); the attention-mass
  // recall under the proxy that the selected pages share the middle's mass equally.
  out.push_back(
      {"region_recall", visits > 0 ? 1.0 - double(skipped_.value()) / visits : 1.0, "fraction"});
  out.push_back({"region_skipped", double(skipped_.value()), "count"});
  out.push_back({"region_copyups", double(copyups_.value() + skip_copyups_.value()), "count"});
  out.push_back({"region_promotions", double(promotions_.value()), "count"});
  out.push_back(
      {"region_promotion_bytes_per_token", double(promotion_bytes_.value()) * per, "bytes/token"});
  out.push_back({"region_ahead_accuracy",
                 ahead > 0 ? double(promoted_used_.value()) / double(ahead) : 0.0, "fraction"});
  out.push_back({"region_demotions", double(c.demotions), "count"});
  out.push_back({"region_repromotions", double(c.repromotions), "count"});
  out.push_back({"region_lost", double(c.lost), "count"});
  out.push_back({"region_vetoes", double(c.vetoes), "count"});
  out.push_back({"region_refused", double(c.refused), "count"});
  out.push_back({"region_exits_declined", double(c.declined), "count"});
  out.push_back(
      {"region_window_exit_bytes_per_token", double(exit_bytes_.value()) * per, "bytes/token"});
  if (pool_->params().compressed_frames > 0) {
    out.push_back(
        {"region_compressed_frames", double(pool_->params().compressed_frames), "frames"});
    out.push_back({"region_compressions", double(c.compressions), "count"});
    out.push_back({"region_compressed_reads", double(compressed_reads_.value()), "count"});
    // Quality proxy: the relative quantisation step of the compressed regions attended,
    // weighted by their share of the attended regions (each 1 / k of the middle's mass).
    out.push_back(
        {"region_quality_proxy",
         visits > 0 ? compressed_error_ * double(compressed_reads_.value()) / visits : 0.0,
         "proxy"});
  }
}

}  // namespace tiersim
