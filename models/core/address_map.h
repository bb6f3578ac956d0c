// The global physical address space: ranges served by memory components, decoding and a
// bump allocator per target used to place objects at their home. Plain C++.
//
// A target with several ranges sees them concatenated in its local address space in the order
// they are listed; decode() returns the target-local address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tiersim {

struct AddressRangeInfo {
  std::string name;
  std::string target;
  uint64_t base = 0;
  uint64_t size = 0;
  uint64_t local_base = 0;  // offset of this range in the target's local space
  uint64_t allocated = 0;   // bytes handed out by allocate()
};

class AddressMap {
 public:
  // Ranges must not overlap (the validator checks this before the map is built).
  void add(std::string name, std::string target, uint64_t base, uint64_t size);

  struct Decoded {
    const AddressRangeInfo* range;
    uint64_t local_address;
  };
  // The range holding [address, address + bytes), or nullopt when it is unmapped or crosses a
  // range boundary.
  std::optional<Decoded> decode(uint64_t address, uint64_t bytes) const;
  // Whether `r` holds [address, address + bytes): ranges do not overlap, so decode() then
  // returns `r` (callers that decode many requests to one range keep the last one as a guess).
  static bool holds(const AddressRangeInfo& r, uint64_t address, uint64_t bytes) {
    return address >= r.base && address - r.base < r.size && bytes <= r.size - (address - r.base);
  }

  // Allocates `bytes` (aligned to `align`, a power of two) in the first range of `target` with
  // room; nullopt when the target is full.
  std::optional<uint64_t> allocate(const std::string& target, uint64_t bytes, uint64_t align);

  uint64_t capacity(const std::string& target) const;
  uint64_t allocated(const std::string& target) const;
  const std::vector<AddressRangeInfo>& ranges() const { return ranges_; }

 private:
  std::vector<AddressRangeInfo> ranges_;  // sorted by base
};

}  // namespace tiersim
