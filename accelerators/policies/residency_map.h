// The movement controller's residency map (as in the MCOS-HFC essay): a finite table on the
// controller, one entry per object it tracks (current tier, transfer state, hotness). A lookup
// that hits costs the map's lookup latency; a miss (the object has no entry: the map overflowed
// or never saw it) takes the software path (the host's object table, `software_latency_ps`) and
// installs the entry, evicting the least recently used one when the map is full. Plain C++.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>

#include "models/core/objects.h"
#include "models/core/time.h"

namespace tiersim {

struct ResidencyMapParams {
  uint32_t entries = 0;
  uint32_t entry_bits = 141;  // the essay's stated width (its listed fields sum to 128)
  TimePs lookup_latency_ps = 1000;
  TimePs software_latency_ps = 0;
};

class ResidencyMap {
 public:
  enum class TransferState : uint8_t { kIdle, kInflight, kCompleting, kFailed };
  struct Entry {
    Tier tier = Tier::kNone;
    TransferState state = TransferState::kIdle;
    uint16_t hotness = 0;  // saturating count of lookups while resident in the map
  };

  explicit ResidencyMap(const ResidencyMapParams& p) : p_(p) {}

  // Looks `object` up for a decision that moves it toward `tier`; returns the lookup's latency
  // (a hit: lookup_latency_ps; a miss: software_latency_ps, after which the entry is installed).
  TimePs lookup(uint64_t object, Tier tier);
  // The transfer the last decision issued finished (or failed).
  void complete(uint64_t object, bool ok);

  const Entry* find(uint64_t object) const;
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t evictions() const { return evictions_; }
  size_t occupancy() const { return order_.size(); }
  // The map's SRAM on the controller.
  uint64_t sram_bytes() const { return (uint64_t{p_.entries} * p_.entry_bits + 7) / 8; }
  const ResidencyMapParams& params() const { return p_; }

 private:
  ResidencyMapParams p_;
  std::list<uint64_t> order_;  // most recently used first
  struct Slot {
    Entry entry;
    std::list<uint64_t>::iterator pos;
  };
  std::unordered_map<uint64_t, Slot> slots_;
  uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace tiersim
