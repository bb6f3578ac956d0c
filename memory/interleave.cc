#include "memory/interleave.h"

namespace tiersim {

void interleave_split(uint64_t address, uint64_t bytes, uint64_t granule_bytes, uint32_t ways,
                      uint64_t* out) {
  if (bytes == 0) return;
  uint64_t chunk = address / granule_bytes;
  const uint64_t head_offset = address % granule_bytes;
  // Leading partial chunk.
  const uint64_t head = head_offset ? granule_bytes - head_offset : 0;
  if (head) {
    const uint64_t take = bytes < head ? bytes : head;
    out[chunk % ways] += take;
    bytes -= take;
    ++chunk;
  }
  // Whole chunks: each unit gets full/ways, the first full%ways units from `chunk` one more.
  const uint64_t full = bytes / granule_bytes;
  const uint64_t each = full / ways, extra = full % ways;
  uint64_t unit = chunk % ways;  // (chunk + i) % ways without a division per unit
  for (uint32_t i = 0; i < ways; ++i) {
    out[unit] += (each + (i < extra ? 1 : 0)) * granule_bytes;
    if (++unit == ways) unit = 0;
  }
  chunk += full;
  // Trailing partial chunk.
  const uint64_t tail = bytes % granule_bytes;
  if (tail) out[chunk % ways] += tail;
}

}  // namespace tiersim
