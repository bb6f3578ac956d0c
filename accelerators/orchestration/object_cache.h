// The object cache, a mechanism of the movement controller (mechanism.h): whole weight objects
// cached as extents of an area of the fast memory (MoE-Infinity-style expert caching).
//
// An object's first read in an op is a visit: a resident object is a hit; otherwise it is
// admitted (an extent allocated, first or best fit, evicting the lowest-ranked unreferenced
// object: LRU by last use, LFU by uses then last use) and read from home while each landed tile
// is copied into its extent, or bypassed when nothing can be evicted. External fragmentation is
// sampled at every admission; when enough bytes are free but no extent is large enough, a
// targeted compaction relocates the unreferenced extents of the cheapest window (within a
// per-step byte budget; extents the running op references never move).
//
// Precision states: objects the guardrail lowered have a low-precision copy at home, read on a
// miss and cached at that size, dequantised at use (HOBBIT substitution). Prefetch with
// lookahead: the first op of layer L decides copies of layer L + k's objects predicted to be
// read (dense by intent, experts routed at the layer's previous visit, or all), protected from
// eviction until read or until their target step has passed.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "accelerators/orchestration/mechanism.h"
#include "accelerators/policies/extent_allocator.h"
#include "models/core/stats.h"

namespace tiersim {

class Orchestrator;

class ObjectCache final : public MovementMechanism {
 public:
  explicit ObjectCache(Orchestrator& core);

  // The lowered objects' low-precision copies at home (before the controller places anything
  // in the fast memory, so addresses follow the order the plan allocates in).
  void place_home_copies();
  void prepare() override;
  void on_step_start(uint32_t step) override;
  void on_op_start(const Op& op, TimePs now) override;
  TimePs issue_due(TimePs now) override;
  // Every read of a weight (resident_fraction is 0: whole objects move).
  bool locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes, TimePs now,
              ReadSource& out) override;
  void summarize(std::vector<SummaryItem>& out, double per_token) const override;

 private:
  struct CachedObject {
    bool resident = false;
    ExtentAllocator::Handle handle = 0;
    uint64_t uses = 0, last_use = 0;
    uint64_t visit_op = 0, fill_op = 0;  // the op that last read it, and that admitted it
    TimePs ready_ps = 0;                 // readable from its extent (after a compaction move)
    std::pair<uint64_t, uint64_t> order_key{0, 0};
    uint32_t last_step = UINT32_MAX;  // the step of its last visit
    // Prefetched: the copy's decision time, whether it is issued, not read yet, and the step
    // whose end releases its protection.
    TimePs decided_ps = 0, landed_ps = 0;
    bool issued = true, prefetched = false;
    uint64_t staged_op = 0;      // the op that read it first after its prefetch
    TimePs visit_ready_ps = 0;   // a missed visit's reads start after its decisions
    TimePs move_decided_ps = 0;  // the compaction decision that last moved it
  };
  void prefetch_objects(uint32_t layer, bool next_step, TimePs trigger);
  // An extent for `object` (evicting, compacting); false: bypassed.
  // `now`: when the admission was decided; `critical`: a read waits for it (a demand miss).
  bool admit(uint32_t object, uint64_t bytes, TimePs now, bool critical);
  // Relocates extents to open one of `bytes` within the step's budget (one more decision, taken
  // from `now`); whether any moved.
  bool compact(uint64_t bytes, TimePs now, bool critical);
  // The first read of `object` in the running op: hit, admission or bypass.
  void visit(uint32_t object, CachedObject& c, const ObjectInfo& o, double scale, TimePs now);
  std::pair<uint64_t, uint64_t> order_key(const CachedObject& c) const;
  // Stored bytes per logical byte of `object` (a lowered object's copy: fewer).
  double scale_of(uint32_t object) const;

  Orchestrator& core_;
  std::unique_ptr<ExtentAllocator> extents_;
  uint64_t extent_base_ = 0;
  std::unordered_map<uint32_t, uint64_t> low_copy_;    // lowered objects' home copies (address)
  std::unordered_map<uint32_t, CachedObject> cached_;  // by object id
  std::unordered_map<ExtentAllocator::Handle, uint32_t> holder_;        // extent -> object id
  std::set<std::pair<std::pair<uint64_t, uint64_t>, uint32_t>> order_;  // eviction order
  std::vector<ExtentAllocator::Handle> op_refs_;    // extents the running op references
  std::vector<std::pair<TimePs, uint32_t>> queue_;  // decided copies (object ids)
  size_t queue_head_ = 0;
  std::unordered_map<uint32_t, uint32_t> protected_;  // prefetched, unread: object -> until step
  uint32_t last_layer_ = UINT32_MAX;
  uint64_t op_serial_ = 0, clock_ = 0, compaction_left_ = 0;
  TimePs admission_ready_ps_ = 0;  // the running admission's last decision
  double fragmentation_sum_ = 0, fragmentation_max_ = 0;
  Counter& visits_;
  Counter& hits_;
  Counter& admissions_;
  Counter& evictions_;
  Counter& bypasses_;
  Counter& fragmentation_samples_;
  Counter& fragmentation_failures_;
  Counter& compactions_;
  Counter& compaction_bytes_;
  Counter& prefetches_;
  Counter& prefetch_bytes_;
  Counter& prefetch_used_;
};

}  // namespace tiersim
