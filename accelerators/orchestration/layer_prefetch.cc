#include "accelerators/orchestration/layer_prefetch.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "accelerators/dma_engine.h"
#include "accelerators/orchestration/orchestrator.h"
#include "models/core/context.h"
#include "models/core/movement_intent.h"

namespace tiersim {

namespace {

MovementIntent prefetch_intent(ObjectId id, const ObjectInfo& o) {
  MovementIntent intent;
  intent.object = id;
  intent.object_class = o.cls;
  intent.op = MoveOp::kPrefetch;
  intent.layer = o.layer;
  return intent;
}

}  // namespace

LayerPrefetch::LayerPrefetch(Orchestrator& core)
    : core_(core),
      rejected_(core.ctx().stats().counter(core.owner(), "descriptors_rejected",
                                           "copy descriptors rejected at the fabric (unsigned)",
                                           "count")),
      buffer_bytes_(core.ctx().stats().counter(core.owner(), "dpu_buffer_bytes",
                                               "bytes copied home -> the DPU's buffer", "bytes")),
      buffer_sourced_bytes_(core.ctx().stats().counter(
          core.owner(), "dpu_buffer_sourced_bytes",
          "prefetched bytes copied from the DPU's buffer (peer to peer)", "bytes")),
      buffer_bypassed_bytes_(core.ctx().stats().counter(
          core.owner(), "dpu_buffer_bypassed_bytes",
          "prefetched bytes copied from home (their buffer copy was not issued)", "bytes")) {}

void LayerPrefetch::prepare() {
  const OrchestrationParams& p = core_.params();
  const uint64_t slot_bytes = core_.plan().slot_bytes;
  if (p.prefetch_layers == 0 || slot_bytes == 0) return;
  // The staging area: k + 1 slots of the largest layer's home bytes.
  for (uint32_t i = 0; i <= p.prefetch_layers; ++i) {
    slots_.add(core_.place(slot_bytes, "the prefetch staging area"));
  }
  if (p.buffer_memory.empty()) return;
  buffer_dma_ = p.buffer_dma.empty()
                    ? &core_.dma()
                    : dynamic_cast<DmaEngine*>(core_.ctx().component(p.buffer_dma));
  if (buffer_dma_ == nullptr) throw std::logic_error(core_.owner() + ": DPU DMA engine missing");
  for (uint32_t i = 0; i <= p.buffer_lookahead; ++i) {
    buffer_slots_.add(core_.place_in(p.buffer_memory, slot_bytes, "dpu_buffer.memory",
                                     "the DPU buffer's slot " + std::to_string(i + 1) + " of " +
                                         std::to_string(p.buffer_lookahead + 1)));
  }
}

void LayerPrefetch::on_op_start(const Op& op, TimePs now) {
  const OrchestrationParams& p = core_.params();
  if (p.prefetch_layers == 0 || slots_.empty()) return;
  // Ops outside the decoder layers: the embedding starts a step (no trigger); the final norm and
  // LM head are the virtual last layer (`layers`); targets wrap into the next step.
  const uint32_t layers = core_.plan().layers;
  uint32_t layer = layers;
  if (op.layer.valid()) {
    layer = op.layer.value();
  } else if (op.kind == OpKind::kEmbedding || op.kind == OpKind::kEmbeddingNorm) {
    return;
  }
  if (layer == last_layer_) return;
  last_layer_ = layer;
  prefetch_layer((layer + p.prefetch_layers) % (layers + 1), now);
  if (!buffer_slots_.empty()) buffer_layer((layer + p.buffer_lookahead) % (layers + 1), now);
}

void LayerPrefetch::prefetch_layer(uint32_t layer, TimePs trigger) {
  const OrchestrationParams& p = core_.params();
  const auto& objects = core_.plan().layer_objects[layer];
  if (objects.empty()) return;
  const auto [slot, generation] = slots_.claim();
  uint64_t offset = 0;
  for (ObjectId id : objects) {
    const ObjectInfo& o = core_.ctx().objects().get(id);
    const uint64_t resident = core_.split(id)->resident_bytes;
    const uint64_t bytes = o.size_bytes - resident;
    // One decision per object's copy (a descriptor), serialised on the controller; with a
    // residency map it first looks the object up (a miss takes the software path).
    const TimePs decided = core_.decide(trigger, DecisionMechanism::kLayerPrefetch,
                                        DecisionKind::kPrefetch, false, core_.map_lookup(id));
    const uint64_t dst = slots_.base[slot] + offset;
    offset += (bytes + 4095) / 4096 * 4096;
    auto old = staged_.find(id.value());
    if (old != staged_.end() && old->second.issued && !old->second.used) {
      unused_bytes_ += old->second.bytes;
    }
    if (p.signed_descriptors && p.unsigned_fraction > 0 &&
        core_.rng().uniform() < p.unsigned_fraction) {
      rejected_.inc();  // not copied: its data will be read from home on demand
      staged_.erase(id.value());
      continue;
    }
    Staged st;
    st.address = dst;
    st.resident_bytes = resident;
    st.bytes = bytes;
    st.decided_ps = decided + (p.signed_descriptors ? p.verify_latency_ps : 0);
    st.issue_ps = st.decided_ps;
    st.generation = generation;
    st.trigger_ps = trigger;
    staged_[id.value()] = st;
    queue_.push_back(id);
  }
  core_.issue_due(trigger);
}

void LayerPrefetch::buffer_layer(uint32_t layer, TimePs trigger) {
  const auto& objects = core_.plan().layer_objects[layer];
  if (objects.empty()) return;
  const auto [slot, generation] = buffer_slots_.claim();
  uint64_t offset = 0;
  for (ObjectId id : objects) {
    const ObjectInfo& o = core_.ctx().objects().get(id);
    const uint64_t bytes = o.size_bytes - core_.split(id)->resident_bytes;
    // One decision per object's copy into the buffer, on the same controller.
    const TimePs decided = core_.decide(trigger, DecisionMechanism::kLayerPrefetch,
                                        DecisionKind::kPrefetch, false, core_.map_lookup(id));
    Buffered b;
    b.address = buffer_slots_.base[slot] + offset;
    b.decided_ps = decided;
    b.generation = generation;
    offset += (bytes + 4095) / 4096 * 4096;
    buffered_[id.value()] = b;
    buffer_queue_.push_back({id.value(), generation});
  }
  core_.issue_due(trigger);
}

TimePs LayerPrefetch::issue_due(TimePs now) {
  const TimePs buffer_next = buffer_slots_.empty() ? 0 : issue_buffer_copies(now);
  const TimePs staged_next = issue_staged_copies(now);
  if (buffer_next == 0) return staged_next;
  return staged_next == 0 ? buffer_next : std::min(buffer_next, staged_next);
}

TimePs LayerPrefetch::issue_buffer_copies(TimePs now) {
  while (buffer_queue_head_ < buffer_queue_.size()) {
    const auto [id, generation] = buffer_queue_[buffer_queue_head_];
    auto b = buffered_.find(id);
    if (b == buffered_.end() || b->second.issued || b->second.generation != generation) {
      // Consumed, or superseded by a later round's decision (queued after this one).
      ++buffer_queue_head_;
      continue;
    }
    if (b->second.decided_ps > now) return b->second.decided_ps;
    ++buffer_queue_head_;
    const ObjectInfo& o = core_.ctx().objects().get(ObjectId(id));
    const uint64_t resident = core_.split(ObjectId(id))->resident_bytes;
    const uint64_t bytes = o.size_bytes - resident;
    const TimePs landed = core_.copy(*buffer_dma_, o.address + resident, b->second.address, bytes,
                                     prefetch_intent(ObjectId(id), o), now);
    b->second.issued = true;
    b->second.landed_ps = landed;
    buffer_bytes_.inc(bytes);
  }
  buffer_queue_.clear();
  buffer_queue_head_ = 0;
  return 0;
}

const LayerPrefetch::Buffered* LayerPrefetch::buffered_source(ObjectId object, TimePs now,
                                                              TimePs& wait_until) {
  auto b = buffered_.find(object.value());
  if (b == buffered_.end()) return nullptr;
  const Buffered& copy = b->second;
  if (copy.issued && buffer_slots_.current(copy.generation)) {
    if (copy.landed_ps > now) wait_until = copy.landed_ps;
    return &copy;
  }
  buffered_.erase(b);  // a stage-1 copy not issued by now is cancelled: read home
  return nullptr;
}

TimePs LayerPrefetch::issue_staged_copies(TimePs now) {
  while (queue_head_ < queue_.size()) {
    const ObjectId id = queue_[queue_head_];
    Staged& st = staged_.at(id.value());
    if (st.issue_ps > now) return st.issue_ps;
    // From the DPU's buffer when this layer's stage-1 copy of the object was issued there; the
    // copy is issued once that one landed (in decision order: later copies wait behind it).
    const Buffered* from_buffer = nullptr;
    if (!buffer_slots_.empty()) {
      TimePs wait_until = 0;
      from_buffer = buffered_source(id, now, wait_until);
      if (wait_until != 0) {
        st.issue_ps = wait_until;  // waiting for data, not for the controller
        return wait_until;
      }
    }
    ++queue_head_;
    const ObjectInfo& o = core_.ctx().objects().get(id);
    const Orchestrator::Split& s = *core_.split(id);
    const uint64_t bytes = o.size_bytes - s.resident_bytes;
    const MovementIntent intent = prefetch_intent(id, o);
    if (!buffer_slots_.empty()) {
      (from_buffer ? buffer_sourced_bytes_ : buffer_bypassed_bytes_).inc(bytes);
    }
    TimePs landed = now;
    if (from_buffer) {
      landed = core_.copy(core_.dma(), from_buffer->address, st.address, bytes, intent, now);
      buffered_.erase(id.value());  // consumed
    } else {
      // The middle tier's part, then the home part; copies of more than a TLM length go in
      // pieces.
      for (uint64_t off = 0; off < bytes;) {
        const uint64_t at = s.resident_bytes + off;  // offset in the object
        const uint64_t end = at < s.tier_end ? s.tier_end : o.size_bytes;
        const uint64_t n = std::min<uint64_t>(end - at, 1ULL << 30);
        const uint64_t src =
            at < s.tier_end ? s.tier_address + (at - s.resident_bytes) : o.address + at;
        landed = std::max(landed, core_.dma().transfer(src, st.address + off, n, intent, now));
        off += n;
      }
    }
    core_.map_complete(id, true);
    st.issued = true;
    st.landed_ps = landed;
    st.ready_ps = landed + core_.notification_ps(DecisionMechanism::kLayerPrefetch);
    core_.count_prefetch(bytes, st.trigger_ps, st.ready_ps);
  }
  queue_.clear();
  queue_head_ = 0;
  return 0;
}

bool LayerPrefetch::locate(ObjectId object, const ObjectInfo& o, uint64_t offset,
                           uint64_t max_bytes, TimePs now, ReadSource& src) {
  auto st = staged_.find(object.value());
  if (st == staged_.end()) return false;
  if (!slots_.current(st->second.generation)) return false;  // its slot was reused
  src.address = st->second.address + (offset - st->second.resident_bytes);
  src.path = ReadPath::kStaged;
  st->second.used = true;
  src.decided_ps = st->second.decided_ps;  // with the descriptor's verification
  if (!st->second.issued) {
    src.pending = true;
    src.ready_ps = src.landed_ps = st->second.issue_ps;
    return true;
  }
  src.landed_ps = std::max(now, st->second.landed_ps);
  src.ready_ps = std::max(now, st->second.ready_ps);
  return true;
}

uint64_t LayerPrefetch::unused_prefetch_bytes() const {
  // Copies still unread at the end (such as the next step's first layers) count as unused.
  uint64_t unused = unused_bytes_;
  for (const auto& [id, st] : staged_) {
    if (st.issued && !st.used) unused += st.bytes;
  }
  return unused;
}

void LayerPrefetch::summarize(std::vector<SummaryItem>& out, double per) const {
  if (!buffer_slots_.empty()) {
    out.push_back(
        {"dpu_buffer_bytes_per_token", double(buffer_bytes_.value()) * per, "bytes/token"});
    const double prefetched =
        double(buffer_sourced_bytes_.value() + buffer_bypassed_bytes_.value());
    out.push_back({"dpu_buffer_sourced_fraction",
                   prefetched > 0 ? double(buffer_sourced_bytes_.value()) / prefetched : 0.0,
                   "fraction"});
  }
  out.push_back({"staging_bytes", double(core_.plan().slot_bytes * slots_.base.size()), "bytes"});
  if (core_.params().signed_descriptors) {
    out.push_back({"descriptors_rejected", double(rejected_.value()), "count"});
  }
}

}  // namespace tiersim
