// Residency policies for a fast tier of fixed-size frames (HBM pages, SRAM lines) in front of a
// home tier, plain C++: each sees the page accesses in order and decides, on a miss, whether to
// admit the page (fetching it from home either way: the consumer needs it) and which resident
// page to evict. One interface, selectable by enum (docs/models/orchestration.md):
//
//   STREAM      never admits: every access streams from home (the STREAM_ALL baseline)
//   LRU         admits every miss, evicts the least recently used
//   LFU         admits every miss, evicts the least frequently used resident (ties: LRU)
//   ARC         adaptive replacement (Megiddo & Modha, FAST 2003): recency and frequency lists
//               with ghost lists steering their split
//   BELADY      the offline bound (MIN with bypass): knows the future accesses; evicts the page
//               used furthest in the future, and does not admit a page used later than every
//               resident. With equal-size pages no demand policy moves fewer bytes
//   REGRET      reactive regret-aware eviction (kv-hierarchy-lab): a page refetched within
//               `horizon` accesses of its eviction gains regret; victim = argmin(1.5 freq +
//               recency + w_r regret)
//   PREDICTED_REGRET  predictive regret (the MCOS-HFC essay's form): R = P(reuse) x
//               stall penalty of refetching the page from its home tier x its remaining
//               lifetime (expected further accesses, counted down at each access); a miss
//               evicts the resident of lowest R (ties: least recently used) when its own R is
//               higher, and is denied admission otherwise
//   CONFIDENCE  confidence-gated residency with hysteresis and a thrash budget: admit when the
//               intent's lower bound mu - z sigma reaches admit_lb, evict residents whose upper
//               bound falls to evict_ub or below; discretionary actions (admissions, proactive
//               evictions) are charged to a per-epoch budget of migration bytes and faults, and
//               past it the policy falls back to demand only (no admission) until the epoch
//               ends; optionally the intent is blended with observed reuse by confidence
//   STATIC      a fixed set of pages chosen up front (FlexGen-style placement) is loaded by its
//               first access and stays; nothing else is ever admitted
//
// Bytes moved = misses x page bytes (every miss fetches its page from home, admitted or not);
// admissions into the fast tier are counted separately (their write into the fast tier).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tiersim {

using PageKey = uint64_t;

enum class PolicyKind : uint8_t {
  kStream,
  kLru,
  kLfu,
  kArc,
  kBelady,
  kRegret,
  kConfidence,
  kStatic,
  kPredictedRegret
};
const char* policy_kind_name(PolicyKind k);

// What the workload says of a page, for policies that use intent: the probability it is reused
// within the policy's horizon (mu) and its uncertainty (sigma).
struct PageIntent {
  double mu = 0.5, sigma = 0.0;
  uint32_t group = 0;  // pages whose intent comes from one declaration (a tensor class, a phase)
  // PREDICTED_REGRET: the relative stall of refetching the page from its home tier (1: HBM),
  // and the accesses it is expected to get before it dies.
  double stall_penalty = 1.0;
  double remaining_accesses = 1.0;
};

struct PolicyParams {
  uint32_t frames = 0;
  uint64_t page_bytes = 0;
  // REGRET
  uint32_t regret_horizon = 24;
  double regret_weight = 6.0;
  // CONFIDENCE (defaults from the hbm_fragmentation_guard_sim code)
  double admit_lb = 0.60, evict_ub = 0.35, z = 1.0;
  uint64_t epoch_accesses = 20;
  uint64_t budget_migration_bytes = 0;  // 0: unlimited
  uint32_t budget_faults = 0;           // 0: unlimited
  // Blending intent with observed behaviour, per intent group: mu_eff = c mu_intent +
  // (1 - c) mu_observed, where mu_observed is an EWMA of reuse outcomes (a resident page hit: 1;
  // a page evicted unused since admission: 0) and the confidence c (from 1) shrinks by
  // blend_eta x |mu_intent - outcome| at each outcome. 0: the intent is taken as given. A
  // page missed again within reuse_horizon accesses of its previous access is an outcome of 1
  // too (reuse the cache did not catch).
  double blend_eta = 0;
  uint64_t reuse_horizon = 64;
  // STATIC
  std::vector<PageKey> static_pages;
};

struct AccessOutcome {
  bool hit = false;
  bool admitted = false;
  std::optional<PageKey> victim;
};

class ResidencyPolicy {
 public:
  explicit ResidencyPolicy(const PolicyParams& p) : p_(p) {}
  virtual ~ResidencyPolicy() = default;
  virtual PolicyKind kind() const = 0;

  // The access at position `index` of the stream (0, 1, 2, ...).
  virtual AccessOutcome access(PageKey page, uint64_t index) = 0;
  virtual bool resident(PageKey page) const = 0;
  virtual size_t resident_count() const = 0;

  // Offline policies receive the whole access stream before the first access.
  virtual void set_future(const std::vector<PageKey>& stream) {}
  // Intent-driven policies receive (or are corrected with) each page's forecast.
  virtual void set_intent(PageKey page, const PageIntent& intent) {}
  // Bytes moved by discretionary actions in the epoch that is running, and the epochs that fell
  // back to demand only (CONFIDENCE); 0 for the others.
  virtual uint64_t max_epoch_migration_bytes() const { return 0; }
  virtual uint64_t fallback_epochs() const { return 0; }

  const PolicyParams& params() const { return p_; }

 protected:
  PolicyParams p_;
};

std::unique_ptr<ResidencyPolicy> make_policy(PolicyKind kind, const PolicyParams& p);

// Runs `stream` through `policy` and counts.
struct PolicyStats {
  uint64_t accesses = 0, hits = 0, misses = 0, admissions = 0, evictions = 0;
  uint64_t bytes_moved = 0;     // misses x page bytes (fetched from home)
  uint64_t bytes_admitted = 0;  // admissions x page bytes (written into the fast tier)
  uint64_t oscillations = 0;    // a page evicted and admitted again within `oscillation_window`
  double hit_rate() const { return accesses ? double(hits) / double(accesses) : 0.0; }
};
PolicyStats run_policy(ResidencyPolicy& policy, const std::vector<PageKey>& stream,
                       uint64_t oscillation_window = 64);

}  // namespace tiersim
