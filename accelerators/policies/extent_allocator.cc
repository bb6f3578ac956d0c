#include "accelerators/policies/extent_allocator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tiersim {

ExtentAllocator::ExtentAllocator(uint64_t capacity_bytes, uint64_t align_bytes)
    : capacity_(capacity_bytes / align_bytes * align_bytes), align_(align_bytes) {
  if (align_bytes == 0 || (align_bytes & (align_bytes - 1)) != 0) {
    throw std::invalid_argument("extent allocator: alignment must be a power of two");
  }
}

std::vector<std::pair<uint64_t, uint64_t>> ExtentAllocator::free_extents() const {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t cursor = 0;
  for (const auto& [off, h] : by_offset_) {
    if (off > cursor) out.push_back({cursor, off - cursor});
    cursor = off + extents_.at(h).bytes;
  }
  if (cursor < capacity_) out.push_back({cursor, capacity_ - cursor});
  return out;
}

std::optional<ExtentAllocator::Handle> ExtentAllocator::allocate(uint64_t bytes, Fit fit) {
  if (bytes == 0) return std::nullopt;
  const uint64_t need = (bytes + align_ - 1) / align_ * align_;
  std::optional<uint64_t> at;
  uint64_t best = UINT64_MAX;
  for (const auto& [off, len] : free_extents()) {
    if (len < need) continue;
    if (fit == Fit::kFirst) {
      at = off;
      break;
    }
    if (len < best) {
      best = len;
      at = off;
    }
  }
  if (!at) return std::nullopt;
  const Handle h = next_++;
  extents_[h] = Extent{*at, need, 0};
  by_offset_[*at] = h;
  return h;
}

void ExtentAllocator::free(Handle h) {
  auto it = extents_.find(h);
  if (it == extents_.end()) throw std::logic_error("extent allocator: unknown handle");
  if (it->second.refs > 0) throw std::logic_error("extent allocator: freeing a referenced extent");
  by_offset_.erase(it->second.offset);
  extents_.erase(it);
}

uint64_t ExtentAllocator::offset(Handle h) const {
  return extents_.at(h).offset;
}
uint64_t ExtentAllocator::size(Handle h) const {
  return extents_.at(h).bytes;
}
void ExtentAllocator::acquire(Handle h) {
  ++extents_.at(h).refs;
}
void ExtentAllocator::release(Handle h) {
  Extent& e = extents_.at(h);
  if (e.refs == 0) throw std::logic_error("extent allocator: release without acquire");
  --e.refs;
}
uint32_t ExtentAllocator::references(Handle h) const {
  return extents_.at(h).refs;
}

std::vector<ExtentAllocator::Move> ExtentAllocator::compact(uint64_t max_bytes_moved) {
  std::vector<Move> moves;
  uint64_t moved = 0, cursor = 0;
  // Address order is stable while we slide extents down past nothing else: rebuild at the end.
  std::vector<Handle> order;
  for (const auto& [off, h] : by_offset_)
    order.push_back(h);
  for (Handle h : order) {
    Extent& e = extents_.at(h);
    // A referenced extent stays; so does everything if the budget is spent.
    if (e.refs > 0 || e.offset == cursor || moved + e.bytes > max_bytes_moved) {
      cursor = e.offset + e.bytes;
      continue;
    }
    // Slide down to the cursor only if the gap before the next fixed extent allows it: the
    // cursor is at or past every earlier extent's end, so [cursor, cursor + bytes) is free or
    // overlaps only this extent itself.
    moves.push_back({h, e.offset, cursor, e.bytes});
    moved += e.bytes;
    by_offset_.erase(e.offset);
    e.offset = cursor;
    by_offset_[cursor] = h;
    cursor += e.bytes;
  }
  return moves;
}

std::vector<ExtentAllocator::Move> ExtentAllocator::make_room(uint64_t bytes,
                                                              uint64_t max_bytes_moved) {
  const uint64_t need = (bytes + align_ - 1) / align_ * align_;
  if (need == 0 || need > capacity_) return {};
  const auto holes = free_extents();
  // Relocates `moving` (largest first) first-fit into the holes outside [s, s + need); the
  // destinations in `to` (same order as `moving` after sorting), false if one does not fit.
  auto relocate = [&](uint64_t s, std::vector<Handle>& moving, std::vector<uint64_t>& to) {
    std::vector<std::pair<uint64_t, uint64_t>> room;  // (offset, bytes) outside the window
    for (const auto& [off, len] : holes) {
      const uint64_t end = off + len;
      if (off < s) room.push_back({off, std::min(end, s) - off});
      if (end > s + need) {
        const uint64_t from = std::max(off, s + need);
        room.push_back({from, end - from});
      }
    }
    std::stable_sort(moving.begin(), moving.end(), [&](Handle a, Handle b) {
      return extents_.at(a).bytes > extents_.at(b).bytes;
    });
    to.clear();
    for (Handle h : moving) {
      const uint64_t b = extents_.at(h).bytes;
      auto it =
          std::find_if(room.begin(), room.end(), [&](const auto& r) { return r.second >= b; });
      if (it == room.end()) return false;
      to.push_back(it->first);
      it->first += b;
      it->second -= b;
    }
    return true;
  };
  // Candidate windows start at 0 or where an extent ends.
  std::vector<uint64_t> starts{0};
  for (const auto& [off, h] : by_offset_)
    starts.push_back(off + extents_.at(h).bytes);
  uint64_t best_cost = UINT64_MAX;
  std::vector<Handle> best_moving, moving;
  std::vector<uint64_t> best_to, to;
  for (uint64_t s : starts) {
    if (s + need > capacity_) continue;
    uint64_t cost = 0;
    bool feasible = true;
    moving.clear();
    for (auto it = by_offset_.lower_bound(s); it != by_offset_.end() && it->first < s + need;
         ++it) {
      const Extent& e = extents_.at(it->second);
      if (e.refs > 0) {
        feasible = false;
        break;
      }
      cost += e.bytes;
      moving.push_back(it->second);
    }
    if (!feasible || cost == 0 || cost > max_bytes_moved || cost >= best_cost) continue;
    if (!relocate(s, moving, to)) continue;
    best_cost = cost;
    best_moving = moving;
    best_to = to;
  }
  std::vector<Move> moves;
  if (best_cost == UINT64_MAX) return moves;
  for (size_t i = 0; i < best_moving.size(); ++i) {
    Extent& e = extents_.at(best_moving[i]);
    moves.push_back({best_moving[i], e.offset, best_to[i], e.bytes});
    by_offset_.erase(e.offset);
  }
  for (size_t i = 0; i < best_moving.size(); ++i) {
    Extent& e = extents_.at(best_moving[i]);
    e.offset = best_to[i];
    by_offset_[e.offset] = best_moving[i];
  }
  return moves;
}

FragmentationMetrics ExtentAllocator::metrics() const {
  FragmentationMetrics m;
  const auto holes = free_extents();
  for (const auto& [off, len] : holes) {
    m.free_bytes += len;
    m.largest_free_extent = std::max(m.largest_free_extent, len);
  }
  m.holes = holes.size();
  if (m.free_bytes > 0) {
    m.external = 1.0 - double(m.largest_free_extent) / double(m.free_bytes);
    for (const auto& [off, len] : holes) {
      const double p = double(len) / double(m.free_bytes);
      m.entropy_bits -= p * std::log2(p);
    }
  }
  return m;
}

}  // namespace tiersim
