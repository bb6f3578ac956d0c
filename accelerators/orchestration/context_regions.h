// Context regions of a sparse-attention KV, a mechanism of the movement controller
// (mechanism.h). A long context's KV is cut into regions of kv_block_tokens (the sparse
// selection's pages) whose home is the KV's home memory; each sequence's sink and recent-window
// pages and its page digests are pinned in the fast memory; middle regions live in a pool of
// frames there (policies/context_regions.h: LRU or EMA-score ranking, reversible demotion with
// backups at home or irreversible loss, coherence veto locks, a compressed warm tier).
//
// - The window moves with each new token: pages leaving it enter the pool if they outrank its
//   lowest region (copied from the window ring), else stay at home (or are lost).
// - A selected region not in the pool is late: the consumer stalls on a demand read whose landed
//   tiles are copied into its frame (STALL), or attends without it while it is copied up for the
//   next step (SKIP: recall below 1). Lost regions are skipped.
// - Speculative promotion: the regions a layer attends are promoted, for the same sequence,
//   into layer L + lookahead_layers (InfiniGen), ranked, at most promote_pages per decision.
// - Compressed regions are attended in place (dequantised); the quality proxy is the relative
//   quantisation step weighted by their share of the attended regions.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "accelerators/orchestration/mechanism.h"
#include "accelerators/policies/context_regions.h"
#include "models/core/stats.h"

namespace tiersim {

class Orchestrator;

class ContextRegions final : public MovementMechanism {
 public:
  explicit ContextRegions(Orchestrator& core);

  void prepare() override;
  void on_op_start(const Op& op, TimePs now) override;
  TimePs issue_due(TimePs now) override;
  // The KV objects cut into regions.
  bool locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes, TimePs now,
              ReadSource& out) override;
  uint64_t unused_prefetch_bytes() const override;
  void summarize(std::vector<SummaryItem>& out, double per_token) const override;
  // The fast-memory address that also receives a KV write at `offset` of `object` (its window
  // page or page digest), or 0 when `object` is not cut into regions.
  uint64_t kv_shadow(ObjectId object, uint64_t offset) const;

 private:
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
  // The pool's parameters from the config (frames, ranking, veto, compressed tier).
  RegionPolicyParams pool_params();
  // Fills the initial pool: each sequence's most recent middle regions, its fair share.
  void fill_initial_pool(const std::vector<ObjectId>& kv);
  RegionPool::Region& region(RegionKey key);
  uint64_t pinned_address(const RegionObject& ro, uint64_t page) const;
  // An attention op: the windows move (its KV writes), then its reads promote ahead.
  void on_attention(const Op& op, TimePs now);
  void move_windows(const Op& op, TimePs now);
  void promote_ahead(const Op& op, TimePs now);
  void queue_copies(const std::vector<RegionKey>& keys, bool speculative, TimePs now);
  // Copies the regions the pool just compressed (from their old frames) into the warm tier.
  void drain_compressed(TimePs now);

  Orchestrator& core_;
  std::unique_ptr<RegionPool> pool_;
  std::unordered_map<uint32_t, RegionObject> region_obj_;  // by KV object id
  std::vector<std::vector<ObjectId>> kv_of_;               // [layer][sequence]
  uint64_t region_bytes_ = 0, pool_base_ = 0;
  // The compressed tier.
  uint64_t compressed_region_bytes_ = 0, compressed_pool_base_ = 0;
  double compressed_scale_ = 1.0, compressed_dequant_per_byte_ = 0, compressed_error_ = 0;
  uint32_t sink_pages_ = 0, ring_pages_ = 0, block_tokens_ = 0, window_tokens_ = 0;
  std::vector<RegionCopy> queue_;  // decided copies, not issued yet
  size_t queue_head_ = 0;
  std::vector<RegionKey> scratch_;
  std::vector<std::pair<double, RegionKey>> ranked_;
  RegionKey admitting_ = ~0ULL, skipping_ = ~0ULL;  // the region whose tiles follow its head
  RegionKey decided_key_ = ~0ULL;  // the last demand miss, and when its decision was taken
  TimePs decided_ps_ = 0;
  Counter& visits_;
  Counter& hits_;
  Counter& skipped_;
  Counter& copyups_;
  Counter& skip_copyups_;
  Counter& promotions_;
  Counter& promotion_bytes_;
  Counter& promoted_used_;
  Counter& exit_bytes_;
  Counter& compressed_reads_;
};

}  // namespace tiersim
