// The dynamic page cache, a mechanism of the movement controller (mechanism.h): the weights'
// home parts cached in frames of the fast memory (cache_bytes, pages of page_bytes or the
// compute engine's tile) under a replacement policy (policies/residency_policy.h: stream, LRU,
// LFU, ARC, Belady, regret, the confidence gate with thrash budgets, predicted regret).
//
// One access per page visit (the first tile of each page); a hit reads the frame, a miss is a
// decision of the controller the read waits for (critical), then reads home and, if admitted,
// the engine copies each landed tile into the page's frame. The
// confidence and predicted-regret policies get each object's declared intent the first time
// its pages are visited (again at each phase start with intent_per_phase). BELADY bypasses
// everything in the first step and learns its page sequence; later steps repeat it. The summary
// compares the policy with the offline bound (MIN with bypass) on the run's own page stream.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "accelerators/orchestration/mechanism.h"
#include "accelerators/policies/residency_policy.h"
#include "models/core/stats.h"

namespace tiersim {

class Orchestrator;

class PageCache final : public MovementMechanism {
 public:
  explicit PageCache(Orchestrator& core);

  void prepare() override;
  void on_step_start(uint32_t step) override;
  // Every read of a weight's home part: from its frame, or from home (admitted or bypassed).
  bool locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes, TimePs now,
              ReadSource& out) override;
  void summarize(std::vector<SummaryItem>& out, double per_token) const override;

 private:
  // The object's declared intent for each of its pages (see ConfidenceGate and
  // REPLACEMENT_PREDICTED_REGRET).
  void give_intent(ObjectId object, const ObjectInfo& o);

  Orchestrator& core_;
  std::unique_ptr<ResidencyPolicy> policy_;  // over pages (object id << 32 | page index)
  std::unordered_map<PageKey, uint64_t> frame_of_;
  std::vector<uint64_t> free_frames_;
  uint64_t page_bytes_ = 0, accesses_ = 0;
  std::vector<PageKey> first_step_pages_;  // BELADY: the sequence it learns
  std::vector<PageKey> page_stream_;       // every page visit, for the offline bound
  std::unordered_map<PageKey, uint64_t> evicted_at_;
  std::unordered_set<uint32_t> intent_given_;  // objects whose pages' intent the policy has
  std::unordered_set<uint32_t> phase_starts_;  // steps at which some object's intent changes
  PageKey visit_key_ = ~PageKey{0};            // the page being visited, and when its miss
  TimePs decided_ps_ = 0;                      // was decided (0: a hit)
  Counter& hits_;
  Counter& misses_;
  Counter& oscillations_;  // pages readmitted within 64 visits of their eviction
};

}  // namespace tiersim
