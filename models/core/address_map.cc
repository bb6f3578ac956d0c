#include "models/core/address_map.h"

#include <algorithm>

namespace tiersim {

void AddressMap::add(std::string name, std::string target, uint64_t base, uint64_t size) {
  uint64_t local_base = 0;
  for (const auto& r : ranges_) {
    if (r.target == target) local_base += r.size;
  }
  AddressRangeInfo info{std::move(name), std::move(target), base, size, local_base, 0};
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), base,
                             [](uint64_t b, const AddressRangeInfo& r) { return b < r.base; });
  ranges_.insert(it, std::move(info));
}

std::optional<AddressMap::Decoded> AddressMap::decode(uint64_t address, uint64_t bytes) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uint64_t a, const AddressRangeInfo& r) { return a < r.base; });
  if (it == ranges_.begin()) return std::nullopt;
  --it;
  const uint64_t offset = address - it->base;
  if (offset >= it->size || bytes > it->size - offset) return std::nullopt;
  return Decoded{&*it, it->local_base + offset};
}

std::optional<uint64_t> AddressMap::allocate(const std::string& target, uint64_t bytes,
                                             uint64_t align) {
  for (auto& r : ranges_) {
    if (r.target != target) continue;
    const uint64_t start = (r.base + r.allocated + align - 1) & ~(align - 1);
    const uint64_t end_offset = start - r.base + bytes;
    if (end_offset <= r.size) {
      r.allocated = end_offset;
      return start;
    }
  }
  return std::nullopt;
}

uint64_t AddressMap::capacity(const std::string& target) const {
  uint64_t c = 0;
  for (const auto& r : ranges_) {
    if (r.target == target) c += r.size;
  }
  return c;
}

uint64_t AddressMap::allocated(const std::string& target) const {
  uint64_t c = 0;
  for (const auto& r : ranges_) {
    if (r.target == target) c += r.allocated;
  }
  return c;
}

}  // namespace tiersim
