// On-package SRAM in cache mode with the wired residency primitive, plain C++: the
// state and policy core that the SRAM component's cache mode will use.
//
// Cache: set-associative, `line_bytes` lines, LRU or RRIP (SRRIP, 2-bit) replacement.
// Baseline hint ("persisting window", as GPU L2 persistence): an access may carry a persisting
// hint; up to `persisting_fraction` of each set's ways hold persisting lines, which ordinary
// fills do not evict while a non-persisting victim exists; persisting fills beyond the carve-out
// evict the least recently used persisting line. Hints are best effort: competing persisting
// traffic evicts them.
//
// Wired residency: BIND(address, size, tenant, flags) pins every line of the range or faults
// without changing anything: MISALIGNED (range not line aligned), QUOTA_EXCEEDED (the tenant's
// wired bytes would pass its quota), SET_FULL (a set would have more than `max_wired_fraction`
// of its ways wired), ALREADY_WIRED (a line of the range is pinned by a live binding). With
// PREFETCH the missing lines are filled at once (prefetched_bytes); without it their ways are
// reserved and filled by the first access (a miss). A wired line is never a victim. RELEASE unpins
// (writing back dirty lines unless IMMUTABLE); invalidating a tenant is O(1): a generation
// counter per tenant makes its lines and handles stale at once. SOFT_PIN lines may be asked
// back: reclaim() gives them a RESIDENCY_LOSS notice and they stay wired for `grace_ps` more,
// then become ordinary lines.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "models/core/time.h"

namespace tiersim {

enum class Replacement : uint8_t { kLru, kRrip };

struct SramCacheParams {
  uint64_t capacity_bytes = 0;
  uint32_t line_bytes = 128;
  uint32_t ways = 16;
  Replacement replacement = Replacement::kLru;
  double persisting_fraction = 0;   // hint carve-out per set
  double max_wired_fraction = 0.5;  // wired ways per set at most
  TimePs grace_ps = 0;              // SOFT_PIN notice to eviction
  uint32_t sets() const { return static_cast<uint32_t>(capacity_bytes / line_bytes / ways); }
};

enum BindFlags : uint8_t { kPrefetch = 1, kImmutable = 2, kSoftPin = 4 };
enum class BindFault : uint8_t { kNone, kMisaligned, kQuotaExceeded, kSetFull, kAlreadyWired };

struct ResidencyLossNotice {
  uint32_t handle;
  uint16_t tenant;
  TimePs evictable_at_ps;
};

class SramCache {
 public:
  explicit SramCache(const SramCacheParams& p);

  // One line access; true on a hit. A miss fills the line (evicting a non-wired victim).
  bool access(uint64_t address, uint16_t tenant, bool write = false, bool persisting = false,
              TimePs now = 0);

  void set_quota(uint16_t tenant, uint64_t bytes) { quota_[tenant] = bytes; }
  struct BindResult {
    BindFault fault = BindFault::kNone;
    uint32_t handle = 0;
  };
  BindResult bind(uint64_t address, uint64_t bytes, uint16_t tenant, uint8_t flags, TimePs now = 0);
  // Unpins the handle's lines; returns the bytes written back (dirty lines unless IMMUTABLE).
  std::optional<uint64_t> release(uint32_t handle);
  void invalidate_tenant(uint16_t tenant);  // O(1)
  // Asks soft-pinned bindings of `tenant` back: each gets a notice and becomes evictable after
  // the grace period. Returns the notices issued.
  std::vector<ResidencyLossNotice> reclaim(uint16_t tenant, TimePs now);

  uint64_t wired_bytes(uint16_t tenant) const;
  uint32_t wired_ways(uint32_t set) const;         // currently wired, counting only live lines
  bool is_wired_resident(uint64_t address) const;  // present and wired by a live binding
  const SramCacheParams& params() const { return p_; }
  uint64_t hits() const { return hits_; }
  uint64_t prefetched_bytes() const { return prefetched_bytes_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Line {
    uint64_t tag = 0;
    uint32_t generation = 0;
    uint32_t binding = 0;  // 0: not wired
    uint16_t tenant = 0;
    uint8_t rrpv = 3;
    bool valid = false, dirty = false, persisting = false;
    bool filled = true;  // false: a way a BIND without PREFETCH reserved, not yet fetched
    uint64_t lru = 0;
  };
  struct Binding {
    uint64_t address = 0, bytes = 0;
    uint16_t tenant = 0;
    uint32_t generation = 0;
    uint8_t flags = 0;
    bool live = false;
    TimePs evictable_at_ps = UINT64_MAX;  // SOFT_PIN after a notice
  };

  bool live(const Line& l) const;
  bool wired(const Line& l) const;
  Line* find(uint64_t line_address);
  uint32_t set_of(uint64_t line_address) const {
    return static_cast<uint32_t>(line_address % p_.sets());
  }
  // A victim way in `set` for a fill, or -1 when every way is wired.
  int victim(uint32_t set, bool persisting);
  Line& fill(uint64_t line_address, uint16_t tenant, bool persisting);
  void expire_notices(TimePs now);

  SramCacheParams p_;
  std::vector<Line> lines_;           // sets x ways
  std::vector<uint32_t> generation_;  // per tenant
  std::unordered_map<uint16_t, uint64_t> quota_;
  std::vector<Binding> bindings_;  // handle - 1
  uint64_t clock_ = 0;
  uint32_t pending_notices_ = 0;  // soft pins with a notice not yet expired
  uint64_t hits_ = 0, misses_ = 0, prefetched_bytes_ = 0;
};

}  // namespace tiersim
