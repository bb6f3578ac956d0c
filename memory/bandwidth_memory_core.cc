#include "memory/bandwidth_memory_core.h"

#include <algorithm>

namespace tiersim {

BandwidthMemoryCore::BandwidthMemoryCore(const BandwidthMemoryParams& p)
    : p_(p), servers_(p.servers()), next_local_(p.servers(), kNone), last_write_(p.servers(), 2) {
  // Server u belongs to stack u % stacks; each stack runs at its own refresh multiplier.
  for (uint32_t u = 0; u < p.servers(); ++u) {
    servers_[u].set_rate(p.effective_bytes_per_s_per_channel(u % p.stack_count));
  }
}

TimePs BandwidthMemoryCore::serve_part(uint64_t u, uint64_t local, uint64_t bytes, bool write,
                                       TimePs start_ps) {
  TimePs extra = 0;
  ++parts_;
  if (local != next_local_[u]) {
    extra += p_.miss_penalty_ps;
    ++misses_;
  }
  if (last_write_[u] != 2 && last_write_[u] != static_cast<uint8_t>(write)) {
    extra += p_.turnaround_ps;
    ++turnarounds_;
  }
  next_local_[u] = local + bytes;
  last_write_[u] = static_cast<uint8_t>(write);
  return servers_[u].reserve_with_overhead(start_ps, bytes, extra);
}

TimePs BandwidthMemoryCore::serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) {
  const uint64_t n = p_.servers();
  const uint64_t g = p_.interleave_bytes;
  const uint64_t k0 = addr / g;
  const uint64_t q0 = k0 / n, r0 = k0 % n;
  const uint64_t offset = addr % g;
  TimePs done = start_ps;
  if (offset + bytes <= (n - 1) * g) {
    // Fewer chunks than servers: each touched server takes one chunk, in address order.
    uint64_t u = r0, q = q0, left = bytes;
    uint64_t part = std::min(bytes, g - offset);
    uint64_t local = q0 * g + offset;
    while (left > 0) {
      done = std::max(done, serve_part(u, local, part, write, start_ps));
      left -= part;
      part = std::min(left, g);
      if (++u == n) {
        u = 0;
        ++q;
      }
      local = q * g;
    }
    return done + p_.latency_ps;
  }
  // Every server takes a part: `each` whole granules, one more for the `extra` servers that
  // follow the first whole granule's server, plus the leading partial granule (server r0) and
  // the trailing one. Computed in one pass, no per-request split array.
  const uint64_t head = offset ? g - offset : 0;  // bytes > head here
  const uint64_t rest = bytes - head;
  const uint64_t full = rest / g, tail = rest % g;
  const uint64_t u_full = head ? (r0 + 1 == n ? 0 : r0 + 1) : r0;
  const uint64_t each = full / n, extra = full % n;
  const uint64_t u_tail = (u_full + extra) % n;
  uint64_t d = (n - u_full) % n;  // distance from u_full to u = 0, in server order
  for (uint64_t u = 0; u < n; ++u) {
    uint64_t part = (each + (d < extra ? 1 : 0)) * g;
    if (u == r0) part += head;
    if (u == u_tail) part += tail;
    if (++d == n) d = 0;
    if (part == 0) continue;
    // The server's first chunk of this request and its channel-local address: chunks k with
    // k % n == u are consecutive granules in the channel's own address sequence. The first
    // such k is k0 + (u - r0 mod n), which lies in the next group of n exactly when u < r0.
    const uint64_t local = (q0 + (u < r0 ? 1 : 0)) * g + (u == r0 ? offset : 0);
    done = std::max(done, serve_part(u, local, part, write, start_ps));
  }
  return done + p_.latency_ps;
}

void BandwidthMemoryCore::set_stack_rate(uint32_t stack, double m, double bandwidth_fraction) {
  const double rate = p_.stack_rate_at(m) * bandwidth_fraction / p_.channels_per_stack;
  for (uint32_t u = stack; u < p_.servers(); u += p_.stack_count)
    servers_[u].set_rate(rate);
}

TimePs BandwidthMemoryCore::busy_ps() const {
  TimePs t = 0;
  for (const auto& s : servers_)
    t += s.busy_ps();
  return t;
}

}  // namespace tiersim
