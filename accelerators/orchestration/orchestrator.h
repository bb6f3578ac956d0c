// The movement controller of policy ORCHESTRATED (config Orchestration; docs/models/
// orchestration.md): static placement of a fraction of every weight object in a fast memory,
// KV caches there, and layer-ahead prefetch of the rest of each layer's weights into a staging
// area of the fast memory, issued by a controller with a decision latency (host CPU, DPU or
// on-accelerator) and consumed after a completion notification (interrupt, polling, doorbell).
//
// The compute engine asks, per tile, where an operand's bytes are (`locate`): in the resident
// part (fast memory, ready now), in a staged prefetch (fast memory, ready when its copy landed
// plus the notification), or only at home (streamed on demand). The engine starts the tile's
// transfer no earlier than the ready time: the difference is the exposed stall, counted as data
// (the copy had not landed) and notification (it had, the consumer had not been told).
//
// Timing: the first op of layer L triggers layer L + k. Each object's copy is one decision (a
// descriptor); decisions are serialised on the controller, so a layer of n weight objects costs
// n decision latencies. A decided copy is issued to the DMA engine at its decision time by the
// orchestrator's own SC_METHOD (event-driven: the copy reserves bandwidth from then, not ahead
// of the engine's tiles). A consumer that reaches a copy not yet issued waits for it (the engine
// re-triggers at the decision time); one not yet landed waits for the landing and the
// notification. A layer's staged copy lives in one of k + 1 slots of the staging area, reused
// round robin.
//
// A middle tier (second_tier) holds the next share of every weight object after its resident
// part (FlexGen's CPU share when the home is a disk): a prefetch copies that part from there and
// the rest from home, demand reads go where the bytes are. Host attention (the compute engine's,
// configured here) computes decode attention on the host CPU next to KV kept at home.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <systemc>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "accelerators/policies/context_regions.h"
#include "accelerators/policies/extent_allocator.h"
#include "accelerators/policies/residency_map.h"
#include "accelerators/policies/residency_policy.h"
#include "accelerators/policies/wired_arbiter.h"
#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/ids.h"
#include "models/core/objects.h"
#include "models/core/op.h"
#include "models/core/rng.h"
#include "models/core/stats.h"
#include "models/core/time.h"

namespace tiersim {

class Context;
class DmaEngine;
struct SummaryItem;
struct MovementIntent;

struct OrchestrationParams {
  std::string fast_memory, dma;
  double resident_fraction = 0;
  bool kv_resident = true;
  uint32_t prefetch_layers = 0;
  config::ControllerPlacement controller = config::HOST_CPU;
  TimePs decision_latency_ps = 0;
  config::Jitter decision_jitter;
  config::Notification notification = config::INTERRUPT;
  TimePs notification_latency_ps = 0;
  config::Replacement replacement = config::REPLACEMENT_UNSPECIFIED;
  uint64_t cache_bytes = 0, page_bytes = 0;  // page 0: the compute engine's tile
  config::ConfidenceGate confidence;         // REPLACEMENT_CONFIDENCE
  bool has_map = false;
  ResidencyMapParams map;
  config::ResidentPrecision precision;  // dtype unspecified: full precision
  std::string wired_memory;             // empty: no wired residency
  uint64_t wired_quota_bytes = 0;
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
  static OrchestrationParams from_config(const config::Orchestration& c);
};

class Orchestrator : public sc_core::sc_module {
 public:
  enum class Path : uint8_t { kResident, kStaged, kDemand, kWired };
  struct Source {
    uint64_t address = 0;  // global
    uint64_t bytes = 0;    // contiguous bytes available there, from the asked offset
    TimePs ready_ps = 0;   // when the consumer may start reading them
    TimePs landed_ps = 0;  // when the data landed (<= ready_ps; the rest is notification)
    Path path = Path::kDemand;
    bool pending = false;               // a decided copy not issued yet: ask again at ready_ps
    double scale = 1.0;                 // bytes stored per logical byte (a lower-precision copy)
    double dequant_flops_per_byte = 0;  // per logical byte read
    uint64_t admit_address = 0;         // a cache miss admitted: copy the tile here once it landed
    bool skip = false;                  // context regions: the consumer attends without these bytes
  };

  SC_HAS_PROCESS(Orchestrator);
  Orchestrator(sc_core::sc_module_name name, const OrchestrationParams& p, Context& ctx);

  // Places the objects (called from the compute engine's prepare, after the builder put every
  // object at home): allocates the resident parts, the staging area and the cache frames (pages
  // of `tile_bytes` unless page_bytes is set) in the fast memory. `default_dma` moves
  // prefetches when the params name none. Throws ConfigError when the fast memory cannot hold
  // them.
  void prepare(const std::string& default_dma, uint64_t tile_bytes);
  // A step begins (the dynamic cache's oracle learns the step's page sequence in step 0).
  void on_step_start(uint32_t step);
  // The engine issued the copy of an admitted tile (`bytes`) into its cache frame.
  void record_admission(uint64_t bytes) { admission_bytes_.inc(bytes); }

  // The op the engine starts: the first op of a layer triggers that layer + k's prefetch.
  void on_op_start(const Op& op, TimePs now);
  // Where bytes [offset, offset + max_bytes) of `object` are for a read starting at `now`.
  Source locate(ObjectId object, uint64_t offset, uint64_t max_bytes, TimePs now);
  // The engine's tile from `s` starts at `start`; it first wanted it at `wanted` (<= start):
  // counts the exposed stall and the bytes by path.
  void record(const Source& s, uint64_t bytes, TimePs wanted, TimePs start);

  void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const;
  const OrchestrationParams& params() const { return p_; }

  // Recompute-vs-transfer: whether to restore `kv_bytes` of the KV object `kv` (at home, with
  // hidden-state checkpoints) by recomputing them from `hidden_bytes` of hidden states at
  // `recompute_flops_per_s` (the engine's rate at that many rows), rather than reading them.
  bool restore_by_recompute(const ObjectInfo& kv, uint64_t kv_bytes, uint64_t hidden_bytes,
                            double recompute_flops_per_s);
  // The engine read `bytes` from home on demand in one op, the path busy `busy_ps` serving
  // them: the path rate the arbiter estimates from.
  void observe_home_rate(uint64_t bytes, TimePs busy_ps);
  // Context regions: the fast-memory address that also receives a KV write at `offset` of
  // `object` (its window page or page digest), or 0.
  uint64_t kv_shadow(ObjectId object, uint64_t offset) const;

 private:
  struct Split {
    uint64_t resident_bytes = 0;  // [0, resident_bytes) lives at resident_address
    uint64_t resident_address = 0;
    double scale = 1.0;         // the resident part's stored bytes per logical byte
    uint64_t tier_end = 0;      // [resident_bytes, tier_end) lives in the middle tier ...
    uint64_t tier_address = 0;  // ... from here; [tier_end, size) at home
  };
  struct Staged {
    uint64_t address = 0;  // global address of byte `resident_bytes` of the object
    TimePs decided_ps = 0, landed_ps = 0, ready_ps = 0;
    bool issued = false;
    bool used = false;        // read at least once before its slot was reused
    uint64_t bytes = 0;       // copied
    uint64_t generation = 0;  // the trigger that staged it (stale after the slot is reused)
    TimePs trigger_ps = 0;
  };
  // One decision on the controller (serialised): its time, from `trigger` plus `extra`.
  TimePs decide(TimePs trigger, TimePs extra = 0);
  // A DMA copy of `bytes` in TLM-sized pieces from `start`; when it landed.
  TimePs copy(DmaEngine& dma, uint64_t src, uint64_t dst, uint64_t bytes,
              const MovementIntent& intent, TimePs start);
  void prefetch_layer(uint32_t layer, TimePs trigger);
  // Stage 1 into the DPU's DDR buffer: decisions and copies of `layer`'s home parts.
  void buffer_layer(uint32_t layer, TimePs trigger);
  TimePs issue_buffer_copies(TimePs now);
  struct Buffered {
    uint64_t address = 0;  // global, in the buffer memory
    TimePs decided_ps = 0, landed_ps = 0;
    bool issued = false;
    uint64_t generation = 0;
  };
  // Context regions.
  struct RegionObject {
    uint32_t layer = 0, seq = 0;
    uint64_t window_end = 0;   // pages >= it (and the sink pages) are pinned
    uint64_t initial_end = 0;  // pages below it existed at the start
    uint64_t pinned = 0;       // sink pages, then a ring of window pages (global address)
    uint64_t digests = 0;      // the page digests' copy (global address)
  };
  struct RegionCopy {
    TimePs decided_ps;
    RegionKey key;
    bool speculative;
  };
  void prepare_regions(const std::function<uint64_t(uint64_t, const std::string&)>& place);
  RegionPool::Region& region(RegionKey key);
  uint64_t pinned_address(const RegionObject& ro, uint64_t page) const;
  Source region_lookup(ObjectId object, const ObjectInfo& o, const RegionObject& ro,
                       uint64_t offset, uint64_t max_bytes, TimePs now);
  void regions_on_attention(const Op& op, TimePs now);
  void queue_region_copies(const std::vector<RegionKey>& keys, bool speculative, TimePs now);
  // Issues the region copies decided by `now`; the next one's decision time (0: none).
  TimePs issue_region_copies(TimePs now);
  // Copies the regions the pool just compressed (from their old frames) into the warm tier.
  void drain_compressed(TimePs now);
  // Object cache.
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
    uint64_t staged_op = 0;  // the op that read it first after its prefetch
  };
  void prefetch_objects(uint32_t layer, bool next_step, TimePs trigger);
  // An object's intent (uses per step, confidence) in `step`: its phase's, or (intent_per_phase
  // off) the one declared at model load.
  std::pair<double, double> intent_at(const ObjectInfo& o, uint32_t step) const;
  TimePs issue_object_copies(TimePs now);
  Source object_lookup(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes,
                       TimePs now);
  // An extent for `object` (evicting, compacting); false: bypassed.
  bool admit_object(uint32_t object, uint64_t bytes, TimePs now);
  std::pair<uint64_t, uint64_t> object_key(const CachedObject& c) const;
  Source cache_lookup(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes,
                      TimePs now);
  // Issues the decided copies due by `now` (the SC_METHOD, and consumers that got there first).
  void issue_due(TimePs now);
  void run();

  OrchestrationParams p_;
  Context& ctx_;
  std::string owner_;
  sc_core::sc_event wake_;
  std::vector<ObjectId> queue_;  // decided copies in decision order, not issued yet
  size_t queue_head_ = 0;
  DmaEngine* dma_ = nullptr;
  Rng rng_;
  std::unordered_map<uint32_t, Split> split_;         // by object id (weights with a home part)
  std::vector<std::vector<ObjectId>> layer_objects_;  // weights with a home part, per layer
  std::unordered_map<uint32_t, Staged> staged_;       // by object id
  std::vector<uint64_t> slot_base_;                   // staging slots (global addresses)
  std::vector<uint64_t> slot_generation_;
  uint64_t slot_bytes_ = 0, generation_ = 0;
  uint32_t layers_ = 0, last_layer_ = UINT32_MAX;
  TimePs controller_free_ = 0;
  // Dynamic cache: the policy over pages (object id << 32 | page index), frames by page.
  std::unique_ptr<ResidencyPolicy> policy_;
  std::unordered_map<PageKey, uint64_t> frame_of_;
  std::vector<uint64_t> free_frames_;
  uint64_t page_bytes_ = 0, accesses_ = 0;
  uint32_t step_ = 0;
  std::vector<PageKey> first_step_pages_;  // BELADY: the sequence it learns
  std::vector<PageKey> page_stream_;       // every page visit, for the offline bound
  std::unordered_map<PageKey, uint64_t> evicted_at_;
  std::unordered_set<uint32_t> intent_given_;  // objects whose pages' intent the policy has
  std::unordered_set<uint32_t> phase_starts_;  // steps at which some object's intent changes
  uint64_t oscillations_ = 0;                  // pages readmitted within 64 visits of eviction
  Counter& rejected_;
  Counter& cache_hits_;
  Counter& cache_misses_;
  Counter& admission_bytes_;

  std::unique_ptr<RegionPool> regions_;
  std::unordered_map<uint32_t, RegionObject> region_obj_;  // by KV object id
  std::vector<std::vector<ObjectId>> kv_of_;               // [layer][sequence]
  uint64_t region_bytes_ = 0, pool_base_ = 0;
  uint64_t cregion_bytes_ = 0, cpool_base_ = 0;  // the compressed tier
  double cscale_ = 1.0, cdequant_per_byte_ = 0, cerr_ = 0;
  uint64_t region_compressed_reads_ = 0;
  uint32_t sink_pages_ = 0, ring_pages_ = 0, block_tokens_ = 0, window_tokens_ = 0;
  std::vector<RegionCopy> region_queue_;
  size_t region_head_ = 0;
  std::vector<RegionKey> region_scratch_;
  std::vector<std::pair<double, RegionKey>> region_ranked_;
  RegionKey admitting_ = ~0ULL, skipping_ = ~0ULL;  // the region whose tiles follow its head
  uint64_t region_visits_ = 0, region_hits_ = 0, region_skipped_ = 0, region_copyups_ = 0,
           region_promotions_ = 0, region_promotion_bytes_ = 0, region_promoted_used_ = 0,
           region_exit_bytes_ = 0, region_skip_copyups_ = 0;

  std::unique_ptr<ExtentAllocator> extents_;
  std::unordered_map<uint32_t, uint64_t> low_copy_;  // lowered objects' home copies (address)
  double low_scale_ = 1.0;
  uint64_t extent_base_ = 0;
  std::unordered_map<uint32_t, CachedObject> cached_;             // by object id
  std::unordered_map<ExtentAllocator::Handle, uint32_t> holder_;  // extent -> object id
  std::set<std::pair<std::pair<uint64_t, uint64_t>, uint32_t>> object_order_;  // eviction order
  std::vector<ExtentAllocator::Handle> op_refs_;           // extents the running op references
  std::vector<std::pair<TimePs, uint32_t>> object_queue_;  // decided copies (object ids)
  size_t object_head_ = 0;
  std::unordered_map<uint32_t, uint32_t> protected_;  // prefetched, unread: object -> until step
  uint32_t last_object_layer_ = UINT32_MAX;
  uint64_t object_prefetches_ = 0, object_prefetch_bytes_ = 0, object_prefetch_used_ = 0;
  uint64_t op_serial_ = 0, object_clock_ = 0, compaction_left_ = 0;
  uint64_t object_visits_ = 0, object_hits_ = 0, object_admissions_ = 0, object_evictions_ = 0,
           object_bypasses_ = 0, fragmentation_failures_ = 0, compactions_ = 0,
           compaction_bytes_ = 0, fragmentation_samples_ = 0;
  double fragmentation_sum_ = 0, fragmentation_max_ = 0;

  // The DPU's DDR buffer.
  DmaEngine* buffer_dma_ = nullptr;
  std::unordered_map<uint32_t, Buffered> buffered_;  // by object id: its latest stage-1 copy
  std::vector<uint64_t> bslot_base_, bslot_generation_;
  uint64_t bgeneration_ = 0;
  std::vector<std::pair<uint32_t, uint64_t>> bqueue_;  // (object id, generation)
  size_t bhead_ = 0;
  uint64_t buffer_bytes_ = 0, buffer_sourced_bytes_ = 0, buffer_bypassed_bytes_ = 0;

  std::unique_ptr<ResidencyMap> map_;
  double path_rate_ = 0;                // the arbiter's estimate of the home path, bytes/s
  std::unordered_set<uint32_t> wired_;  // bound objects (by id)
  uint64_t wired_bytes_ = 0, wired_bytes_read_ = 0;
  // Precision states.
  uint64_t lowered_objects_ = 0, precision_vetoes_ = 0, resident_stored_bytes_ = 0;
  double quality_proxy_ = 0, dequant_flops_per_byte_ = 0;
  double wired_saved_per_step_ = 0;
  uint64_t kv_transferred_bytes_ = 0, kv_recomputed_bytes_ = 0, hidden_bytes_read_ = 0;
  double recompute_flops_ = 0;
  uint64_t unused_prefetch_bytes_ = 0;
  TimePs stall_counted_until_ =
      0;  // the exposed stall is counted up to here  // copies replaced before anyone read them
  uint64_t demand_misses_ = 0;  // tiles of home bytes read on demand
  Counter& decisions_;
  Counter& prefetch_bytes_;
  Counter& demand_bytes_;
  Counter& resident_bytes_read_;
  Counter& staged_bytes_read_;
  Counter& data_stall_ps_;
  Counter& notify_stall_ps_;
  Counter& late_tiles_;
  Counter& staged_tiles_;
  Histogram& decision_to_ready_ns_;
};

}  // namespace tiersim
