#include "memory/sram_cache.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tiersim {

SramCache::SramCache(const SramCacheParams& p)
    : p_(p), lines_(size_t{p.sets()} * p.ways), generation_(65536, 1) {
  if (p_.sets() == 0) throw std::invalid_argument("SramCache: capacity below one set");
}

bool SramCache::live(const Line& l) const {
  return l.valid && l.generation == generation_[l.tenant];
}

bool SramCache::wired(const Line& l) const {
  if (!live(l) || l.binding == 0) return false;
  const Binding& b = bindings_[l.binding - 1];
  return b.live && b.generation == generation_[b.tenant];
}

SramCache::Line* SramCache::find(uint64_t line_address) {
  Line* set = &lines_[size_t{set_of(line_address)} * p_.ways];
  for (uint32_t w = 0; w < p_.ways; ++w) {
    if (live(set[w]) && set[w].tag == line_address) return &set[w];
  }
  return nullptr;
}

int SramCache::victim(uint32_t set_index, bool persisting) {
  Line* set = &lines_[size_t{set_index} * p_.ways];
  for (uint32_t w = 0; w < p_.ways; ++w) {
    if (!live(set[w])) return static_cast<int>(w);
  }
  const uint32_t carve = static_cast<uint32_t>(std::floor(p_.ways * p_.persisting_fraction));
  uint32_t persisting_lines = 0;
  for (uint32_t w = 0; w < p_.ways; ++w)
    persisting_lines += set[w].persisting && !wired(set[w]);
  // Which lines may go: a persisting fill beyond the carve-out replaces a persisting line;
  // otherwise ordinary lines go first, persisting ones only when nothing else can.
  auto pick = [&](bool want_persisting) -> int {
    int best = -1;
    if (p_.replacement == Replacement::kLru) {
      for (uint32_t w = 0; w < p_.ways; ++w) {
        if (wired(set[w]) || set[w].persisting != want_persisting) continue;
        if (best < 0 || set[w].lru < set[best].lru) best = static_cast<int>(w);
      }
      return best;
    }
    // SRRIP: the first line at the distant re-reference value, aging the candidates until one
    // is there.
    bool any = false;
    for (uint32_t w = 0; w < p_.ways; ++w)
      any |= !wired(set[w]) && set[w].persisting == want_persisting;
    if (!any) return -1;
    while (true) {
      for (uint32_t w = 0; w < p_.ways; ++w) {
        if (!wired(set[w]) && set[w].persisting == want_persisting && set[w].rrpv >= 3) {
          return static_cast<int>(w);
        }
      }
      for (uint32_t w = 0; w < p_.ways; ++w) {
        if (!wired(set[w]) && set[w].persisting == want_persisting) ++set[w].rrpv;
      }
    }
  };
  int v = -1;
  if (persisting && carve > 0 && persisting_lines >= carve) v = pick(true);
  if (v < 0) v = pick(false);
  if (v < 0) v = pick(true);
  return v;
}

SramCache::Line& SramCache::fill(uint64_t line_address, uint16_t tenant, bool persisting) {
  const uint32_t s = set_of(line_address);
  const int w = victim(s, persisting);
  if (w < 0) throw std::logic_error("SramCache: a set with every way wired");
  Line& l = lines_[size_t{s} * p_.ways + static_cast<uint32_t>(w)];
  l = Line();
  l.valid = true;
  l.tag = line_address;
  l.tenant = tenant;
  l.generation = generation_[tenant];
  l.persisting = persisting && p_.persisting_fraction > 0;
  l.rrpv = 2;  // SRRIP insertion: long re-reference
  l.lru = ++clock_;
  return l;
}

void SramCache::expire_notices(TimePs now) {
  if (pending_notices_ == 0) return;
  for (size_t i = 0; i < bindings_.size(); ++i) {
    if (bindings_[i].live && bindings_[i].evictable_at_ps <= now) {
      release(static_cast<uint32_t>(i + 1));
      --pending_notices_;
    }
  }
}

bool SramCache::access(uint64_t address, uint16_t tenant, bool write, bool persisting, TimePs now) {
  expire_notices(now);
  const uint64_t line_address = address / p_.line_bytes;
  if (Line* l = find(line_address); l && !l->filled) {
    ++misses_;  // a reserved way's first access fetches the line
    l->filled = true;
    l->lru = ++clock_;
    l->dirty |= write;
    return false;
  }
  if (Line* l = find(line_address)) {
    ++hits_;
    l->lru = ++clock_;
    l->rrpv = 0;
    l->dirty |= write;
    l->persisting |= persisting && p_.persisting_fraction > 0;
    return true;
  }
  ++misses_;
  const uint32_t s = set_of(line_address);
  if (wired_ways(s) >= p_.ways) return false;  // every way pinned: the access bypasses
  Line& l = fill(line_address, tenant, persisting);
  l.dirty = write;
  return false;
}

uint64_t SramCache::wired_bytes(uint16_t tenant) const {
  uint64_t total = 0;
  for (const auto& b : bindings_) {
    if (b.live && b.tenant == tenant && b.generation == generation_[tenant]) total += b.bytes;
  }
  return total;
}

uint32_t SramCache::wired_ways(uint32_t set) const {
  uint32_t n = 0;
  for (uint32_t w = 0; w < p_.ways; ++w)
    n += wired(lines_[size_t{set} * p_.ways + w]);
  return n;
}

bool SramCache::is_wired_resident(uint64_t address) const {
  const uint64_t line_address = address / p_.line_bytes;
  const Line* set = &lines_[size_t{set_of(line_address)} * p_.ways];
  for (uint32_t w = 0; w < p_.ways; ++w) {
    if (live(set[w]) && set[w].tag == line_address) return wired(set[w]);
  }
  return false;
}

SramCache::BindResult SramCache::bind(uint64_t address, uint64_t bytes, uint16_t tenant,
                                      uint8_t flags, TimePs now) {
  expire_notices(now);
  if (bytes == 0 || address % p_.line_bytes != 0 || bytes % p_.line_bytes != 0) {
    return {BindFault::kMisaligned, 0};
  }
  const auto q = quota_.find(tenant);
  if (q == quota_.end() || wired_bytes(tenant) + bytes > q->second) {
    return {BindFault::kQuotaExceeded, 0};
  }
  // Lines newly wired per set must fit under the per-set limit.
  const uint32_t limit = static_cast<uint32_t>(std::floor(p_.ways * p_.max_wired_fraction));
  std::unordered_map<uint32_t, uint32_t> needed;
  const uint64_t first = address / p_.line_bytes, count = bytes / p_.line_bytes;
  for (uint64_t i = 0; i < count; ++i) {
    Line* l = find(first + i);
    if (l != nullptr && wired(*l)) return {BindFault::kAlreadyWired, 0};
    ++needed[set_of(first + i)];
  }
  for (const auto& [set, n] : needed) {
    if (wired_ways(set) + n > limit) return {BindFault::kSetFull, 0};
  }
  Binding b;
  b.address = address;
  b.bytes = bytes;
  b.tenant = tenant;
  b.generation = generation_[tenant];
  b.flags = flags;
  b.live = true;
  bindings_.push_back(b);
  const uint32_t handle = static_cast<uint32_t>(bindings_.size());
  for (uint64_t i = 0; i < count; ++i) {
    Line* l = find(first + i);
    if (l == nullptr) {
      l = &fill(first + i, tenant, false);
      l->filled = (flags & kPrefetch) != 0;
      if (l->filled) prefetched_bytes_ += p_.line_bytes;
    }
    l->binding = handle;
    l->tenant = tenant;
    l->generation = generation_[tenant];
    l->persisting = false;
  }
  return {BindFault::kNone, handle};
}

std::optional<uint64_t> SramCache::release(uint32_t handle) {
  if (handle == 0 || handle > bindings_.size()) return std::nullopt;
  Binding& b = bindings_[handle - 1];
  if (!b.live || b.generation != generation_[b.tenant]) return std::nullopt;
  uint64_t written = 0;
  const uint64_t first = b.address / p_.line_bytes, count = b.bytes / p_.line_bytes;
  for (uint64_t i = 0; i < count; ++i) {
    Line* l = find(first + i);
    if (l == nullptr || l->binding != handle) continue;
    if (l->dirty && !(b.flags & kImmutable)) written += p_.line_bytes;
    l->dirty = false;
    l->binding = 0;
  }
  b.live = false;
  return written;
}

void SramCache::invalidate_tenant(uint16_t tenant) {
  ++generation_[tenant];
}

std::vector<ResidencyLossNotice> SramCache::reclaim(uint16_t tenant, TimePs now) {
  std::vector<ResidencyLossNotice> notices;
  for (size_t i = 0; i < bindings_.size(); ++i) {
    Binding& b = bindings_[i];
    if (!b.live || b.tenant != tenant || b.generation != generation_[tenant]) continue;
    if (!(b.flags & kSoftPin) || b.evictable_at_ps != UINT64_MAX) continue;
    b.evictable_at_ps = now + p_.grace_ps;
    ++pending_notices_;
    notices.push_back({static_cast<uint32_t>(i + 1), tenant, b.evictable_at_ps});
  }
  return notices;
}

}  // namespace tiersim
