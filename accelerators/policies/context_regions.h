// The region pool of context-region orchestration (config ContextRegions; the context-region essay,
// docs/models/orchestration.md): plain C++, no SystemC. It tracks every KV region's state (in the
// pool's frames, at home with a backup, or lost), ranks the pool's regions for demotion (LRU, or an
// exponential moving average of "attended this step": H2O's heavy hitters), applies the coherence
// veto (a region that took at least veto_mass of a step's attention is locked for veto_steps steps)
// and counts what it did. The orchestrator owns addresses, copies and timing.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/core/time.h"

namespace tiersim {

using RegionKey = uint64_t;  // object id << 32 | page

struct RegionPolicyParams {
  uint32_t frames = 0;
  bool score = false;  // rank by EMA score (else by last attendance: LRU)
  double alpha = 0.2;  // EMA weight of the current step, in (0, 1)
  bool backup = true;  // demotion keeps the home copy (else the region is lost)
  uint32_t veto_steps = 0;
  double veto_mass = 0;            // tau
  double mass_per_region = 0;      // the attention-mass proxy of one attended region in a step
  uint32_t compressed_frames = 0;  // the compressed (warm) tier's frames; 0: none
};

class RegionPool {
 public:
  enum class State : uint8_t { kHome, kPool, kLost, kCompressed };
  struct Region {
    State state = State::kHome;
    uint32_t frame = 0;
    uint32_t cframe = 0;              // in the compressed tier
    uint32_t last_step = UINT32_MAX;  // last step it was attended
    uint32_t ema_step = 0;            // the step `ema` includes
    double ema = 0;
    uint64_t touch = 0;        // LRU: attendance order
    uint32_t lock_until = 0;   // locked while step < lock_until
    double rank = 0;           // its key in the demotion order
    bool in_order = false;     // in the demotion order (in the pool and not locked)
    bool demoted = false;      // was in the pool and left it with a backup
    bool speculative = false;  // came into the pool by a promotion, not read yet
    // Promotion copies (the orchestrator's): decided, issued, landed and usable.
    bool issued = true;
    TimePs decided_ps = 0, landed_ps = 0, ready_ps = 0;
  };
  struct Counters {
    uint64_t admissions = 0;    // into the pool (any cause)
    uint64_t demotions = 0;     // out of the pool with a backup
    uint64_t lost = 0;          // out of the pool (or never admitted) without one
    uint64_t vetoes = 0;        // admissions refused: every candidate locked, the veto on
    uint64_t refused = 0;       // the same with the veto off (promotions in flight hold all)
    uint64_t repromotions = 0;  // admissions of regions demoted before
    uint64_t declined = 0;      // admissions that did not outrank the lowest region
    uint64_t compressions = 0;  // demotions into the compressed tier
  };

  explicit RegionPool(const RegionPolicyParams& p);

  // The region, created in `initial` state on first sight.
  Region& get(RegionKey key, State initial = State::kHome);
  const Region* find(RegionKey key) const;
  // Attended in `step` (first visit of the step only; later ones are ignored): updates its
  // score and rank and, when its mass reaches veto_mass, locks it for veto_steps steps.
  void attend(RegionKey key, uint32_t step);
  // A frame for `key` (must not be in the pool): a free one, or the lowest-ranked unlocked
  // region's (demoted, or lost without backup). With `compete`, the region must outrank that
  // victim (else nullopt, `declined`). Nullopt with a veto when every candidate is locked.
  std::optional<uint32_t> admit(RegionKey key, uint32_t step, bool compete);
  // Puts `key` in the pool in a free frame without a copy (the initial fill); false if none.
  bool place(RegionKey key);
  // Locks `key` against demotion while step < until (a promotion in flight); `step` is now.
  void protect(RegionKey key, uint32_t until, uint32_t step);
  // Marks `key` lost (not in the pool, no backup).
  void lose(RegionKey key);
  // `n` regions lost before the run (no backup, not in the initial pool).
  void count_lost(uint64_t n) { c_.lost += n; }
  bool veto_active() const { return p_.veto_steps > 0 && p_.mass_per_region >= p_.veto_mass; }

  bool locked(const Region& r, uint32_t step) const { return step < r.lock_until; }
  uint32_t free_frames() const { return static_cast<uint32_t>(free_.size()); }
  // Regions in the pool that are locked (out of the demotion order) at the last admission.
  size_t locked_in_pool() const { return locked_count_; }
  uint32_t frames() const { return p_.frames; }
  size_t in_pool() const { return order_.size(); }
  const Counters& counters() const { return c_; }
  const RegionPolicyParams& params() const { return p_; }
  // The demotion order, lowest first (for tests).
  std::vector<RegionKey> order() const;
  // Regions compressed since the last call, with the pool frame their data was in.
  std::vector<std::pair<RegionKey, uint32_t>> take_compressed() {
    return std::exchange(compressed_now_, {});
  }

 private:
  double rank_of(const Region& r) const;
  // Puts `key` (in the pool) in the demotion order, or, while locked, aside until its lock ends.
  void enter(RegionKey key, Region& r, uint32_t step);
  void leave_order(RegionKey key, Region& r);
  // Locked regions whose lock ended by `step` rejoin the demotion order.
  void release(uint32_t step);
  // A region leaving the pool: into the compressed tier if there is one, else home or lost.
  void demote(RegionKey key, Region& r);
  void out_of_tier(Region& r);

  RegionPolicyParams p_;
  double log_keep_;  // ln(1 - alpha)
  uint64_t touches_ = 0;
  std::unordered_map<RegionKey, Region> regions_;
  std::set<std::pair<double, RegionKey>> order_;  // unlocked pool regions by rank
  // Locked pool regions by lock end (a min-heap; stale entries skipped on release).
  std::vector<std::pair<uint32_t, RegionKey>> locked_;
  size_t locked_count_ = 0;
  std::vector<uint32_t> free_;
  Counters c_;
  std::vector<uint32_t> cfree_;
  std::set<std::pair<uint64_t, RegionKey>> corder_;  // compressed regions by last attendance
  std::vector<std::pair<RegionKey, uint32_t>> compressed_now_;
};

}  // namespace tiersim
