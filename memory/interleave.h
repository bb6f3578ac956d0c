// Address interleaving across stacks (or channels): how many bytes of a contiguous range land on
// each of `ways` units when consecutive `granule_bytes` chunks rotate across them. Closed form,
// O(ways) per range, whatever its size. Plain C++.
#pragma once

#include <cstdint>

namespace tiersim {

// Adds to out[0..ways) the bytes of [address, address + bytes) that map to each unit.
void interleave_split(uint64_t address, uint64_t bytes, uint64_t granule_bytes, uint32_t ways,
                      uint64_t* out);

}  // namespace tiersim
