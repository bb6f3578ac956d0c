// An extent allocator for a tier where fragmentation matters (HBM regions for weight shards,
// experts, activation arenas), plain C++ (after the HBM Fragmentation Guard): first-fit or best-fit
// allocation of aligned extents, fragmentation metrics, and compaction that is safe by
// construction: an extent with in-flight references (a kernel or a DMA reading it) is never
// moved; compaction slides the others toward address 0 within a byte budget. Callers hold
// handles (stable across compaction), not addresses.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

namespace tiersim {

enum class Fit : uint8_t { kFirst, kBest };

struct FragmentationMetrics {
  uint64_t free_bytes = 0;
  uint64_t largest_free_extent = 0;
  uint64_t holes = 0;       // free extents
  double external = 0;      // 1 - largest free extent / free bytes (0 when nothing free)
  double entropy_bits = 0;  // Shannon entropy of free bytes over free extents
};

class ExtentAllocator {
 public:
  using Handle = uint32_t;
  struct Move {
    Handle handle;
    uint64_t from, to, bytes;
  };

  ExtentAllocator(uint64_t capacity_bytes, uint64_t align_bytes = 4096);

  std::optional<Handle> allocate(uint64_t bytes, Fit fit = Fit::kFirst);
  void free(Handle h);  // an extent with references may not be freed (logic_error)
  uint64_t offset(Handle h) const;
  uint64_t size(Handle h) const;

  // In-flight references: while an extent has any, compaction does not move it.
  void acquire(Handle h);
  void release(Handle h);
  uint32_t references(Handle h) const;

  // Slides unreferenced extents toward 0 (in address order) while the bytes moved stay within
  // `max_bytes_moved`; returns the moves in the order made.
  std::vector<Move> compact(uint64_t max_bytes_moved = UINT64_MAX);
  // Targeted compaction for one allocation of `bytes`: the window of that many bytes whose
  // unreferenced extents can be relocated into holes outside it, moving the fewest bytes (at
  // most `max_bytes_moved`); moves them and returns the moves (empty: no such window, or the
  // allocation needs none). Afterwards allocate(bytes) succeeds with either fit.
  std::vector<Move> make_room(uint64_t bytes, uint64_t max_bytes_moved = UINT64_MAX);

  FragmentationMetrics metrics() const;
  uint64_t capacity() const { return capacity_; }
  size_t extents() const { return by_offset_.size(); }

 private:
  struct Extent {
    uint64_t offset, bytes;
    uint32_t refs = 0;
  };
  // Free extents as (offset, bytes), derived from the allocated ones.
  std::vector<std::pair<uint64_t, uint64_t>> free_extents() const;

  uint64_t capacity_, align_;
  std::unordered_map<Handle, Extent> extents_;
  std::map<uint64_t, Handle> by_offset_;
  Handle next_ = 1;
};

}  // namespace tiersim
