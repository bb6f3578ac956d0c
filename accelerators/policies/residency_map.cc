#include "accelerators/policies/residency_map.h"

#include <algorithm>

namespace tiersim {

TimePs ResidencyMap::lookup(uint64_t object, Tier tier) {
  auto it = slots_.find(object);
  if (it != slots_.end()) {
    ++hits_;
    order_.splice(order_.begin(), order_, it->second.pos);
    Entry& e = it->second.entry;
    e.tier = tier;
    e.state = TransferState::kInflight;
    e.hotness = static_cast<uint16_t>(std::min<uint32_t>(e.hotness + 1u, 0xffff));
    return p_.lookup_latency_ps;
  }
  ++misses_;
  if (p_.entries == 0) return p_.software_latency_ps;  // no map: always the software path
  if (order_.size() == p_.entries) {
    slots_.erase(order_.back());
    order_.pop_back();
    ++evictions_;
  }
  order_.push_front(object);
  Slot s;
  s.entry.tier = tier;
  s.entry.state = TransferState::kInflight;
  s.pos = order_.begin();
  slots_.emplace(object, s);
  return p_.software_latency_ps;
}

void ResidencyMap::complete(uint64_t object, bool ok) {
  auto it = slots_.find(object);
  if (it == slots_.end()) return;  // evicted while the transfer ran
  it->second.entry.state = ok ? TransferState::kIdle : TransferState::kFailed;
}

const ResidencyMap::Entry* ResidencyMap::find(uint64_t object) const {
  auto it = slots_.find(object);
  return it == slots_.end() ? nullptr : &it->second.entry;
}

}  // namespace tiersim
