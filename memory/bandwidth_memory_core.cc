#include "memory/bandwidth_memory_core.h"

#include <algorithm>

namespace tiersim {

BandwidthMemoryCore::BandwidthMemoryCore(const BandwidthMemoryParams& p, bool streaming_fast_path)
    : p_(p),
      servers_(p.servers()),
      next_local_(p.servers(), kNone),
      last_write_(p.servers(), 2),
      fast_path_enabled_(streaming_fast_path),
      bytes_diff_(p.servers() + 1, 0),
      service_diff_(p.servers() + 1, 0) {
  // Server u belongs to stack u % stacks; each stack runs at its own refresh multiplier.
  for (uint32_t u = 0; u < p.servers(); ++u) {
    servers_[u].set_rate(p.effective_bytes_per_s_per_channel(u % p.stack_count));
  }
  update_uniform_rate();
}

void BandwidthMemoryCore::update_uniform_rate() {
  rate_ = servers_.empty() ? 0 : servers_[0].rate_bytes_per_s();
  uniform_rate_ = true;
  for (const auto& s : servers_)
    uniform_rate_ = uniform_rate_ && s.rate_bytes_per_s() == rate_;
}

void BandwidthMemoryCore::settle() const {
  if (!streaming_) return;
  streaming_ = false;
  // The servers' own state is exact when nothing streamed since the tree was built; after a
  // write-back every server continues the stream again.
  candidate_ = true;
  if (!dirty_) return;
  dirty_ = false;
  busy_until_.values(scratch_);
  const uint64_t n = servers_.size(), g = p_.interleave_bytes;
  // Server u's last chunk of the stream is the last chunk k <= kE with k % n == u; the next
  // local address continues it (after the partial tail granule on the last chunk's server).
  // With k_end = q n + r_end (the stream covered every server, so q >= 1 when r_end < n - 1):
  // servers before r_end last had chunk q n + u, the next in their sequence is group q + 1;
  // servers after it had group q - 1's, the next is group q.
  const uint64_t k_end = (stream_end_ - 1) / g, r_end = k_end % n, q = k_end / n;
  const uint64_t tail_local = q * g + (stream_end_ - 1) % g + 1;
  const uint8_t dir = static_cast<uint8_t>(stream_write_);
  int64_t bytes_acc = 0, service_acc = 0;
  for (uint64_t u = 0; u < n; ++u) {
    bytes_acc += bytes_diff_[u];
    service_acc += service_diff_[u];
    servers_[u].apply_queued(scratch_[u], static_cast<TimePs>(service_acc),
                             static_cast<uint64_t>(bytes_acc));
    next_local_[u] = u < r_end ? (q + 1) * g : u == r_end ? tail_local : q * g;
    last_write_[u] = dir;
  }
  std::fill(bytes_diff_.begin(), bytes_diff_.end(), 0);
  std::fill(service_diff_.begin(), service_diff_.end(), 0);
}

void BandwidthMemoryCore::note_stream(uint64_t addr, uint64_t bytes, bool write) {
  // Only after a request that gave every server a whole granule: every server's next local
  // address then follows from the request's end. The tree is built when a request qualifies.
  candidate_ = fast_path_enabled_ && whole_granule_each(addr, bytes);
  stream_end_ = addr + bytes;
  stream_write_ = write;
}

bool BandwidthMemoryCore::whole_granule_each(uint64_t addr, uint64_t bytes) const {
  const uint64_t g = p_.interleave_bytes;
  return bytes >= (addr % g ? g - addr % g : 0) + servers_.size() * g;
}

bool BandwidthMemoryCore::stream_misses(uint64_t addr, uint64_t* from, uint64_t* count) const {
  // None when the request continues the stream; every server when it starts an interleave
  // period or more away; when it skips j < n whole granules forward, exactly the j servers that
  // owned them (their next granule in sequence was skipped); otherwise the per-server path
  // decides server by server.
  const uint64_t n = servers_.size(), g = p_.interleave_bytes, period = n * g;
  *from = 0;
  if (addr == stream_end_) {
    *count = 0;
  } else if (addr >= stream_end_ ? addr - stream_end_ >= period : stream_end_ - addr >= period) {
    *count = n;
  } else if (addr > stream_end_ && addr % g == 0 && stream_end_ % g == 0) {
    *from = (stream_end_ / g) % n;
    *count = (addr - stream_end_) / g;
  } else {
    return false;
  }
  return true;
}

bool BandwidthMemoryCore::enter_stream(uint64_t addr, uint64_t bytes, TimePs start_ps) {
  // Cheap checks on the servers' own state first, so that a stream of requests the fast path
  // declines (bulk requests on idle channels) pays no tree building.
  uint64_t miss_from = 0, miss_count = 0;
  if (!uniform_rate_ || start_ps > max_busy_ || !whole_granule_each(addr, bytes) ||
      !stream_misses(addr, &miss_from, &miss_count)) {
    return false;  // (past max_busy_: past every server's busy-until, so not queued on all)
  }
  const uint64_t n = servers_.size();
  TimePs min_busy = UINT64_MAX, gap_bound = 0;
  bool all_served = true;
  scratch_.resize(n);
  for (uint64_t u = 0; u < n; ++u) {
    scratch_[u] = servers_[u].busy_until_ps();
    min_busy = std::min(min_busy, scratch_[u]);
    gap_bound = std::max(gap_bound, servers_[u].gap_end_bound());
    all_served = all_served && servers_[u].busy_ps() > 0;
  }
  // Queued on every server (or starting exactly at every busy-until). A request that finds
  // some server idle enters no stream: within a stream one that finds every server idle is
  // served, but on its own it costs less server by server.
  if (start_ps > min_busy) return false;
  busy_until_.reset(scratch_);
  gap_end_bound_ = gap_bound;
  all_served_ = all_served;
  last_idle_ = false;
  streaming_ = true;
  dirty_ = false;
  return true;
}

bool BandwidthMemoryCore::serve_streamed(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps,
                                         TimePs& done) {
  const uint64_t n = servers_.size(), g = p_.interleave_bytes;
  uint64_t miss_from = 0, miss_count = 0;
  if (!whole_granule_each(addr, bytes) || !stream_misses(addr, &miss_from, &miss_count)) {
    return false;
  }
  const uint64_t offset = addr % g;
  const uint64_t head = offset ? g - offset : 0;
  const TimePs turn_ps = write != stream_write_ ? p_.turnaround_ps : 0;
  const TimePs extra_ps = turn_ps + (miss_count == n ? p_.miss_penalty_ps : 0);
  const uint64_t k0 = addr / g, r0 = k0 % n;
  const uint64_t rest = bytes - head;
  const uint64_t full = rest / g, tail = rest % g;
  const uint64_t u_full = head ? (r0 + 1 == n ? 0 : r0 + 1) : r0;
  const uint64_t each = full / n, extra = full % n;
  const uint64_t u_tail = (u_full + extra) % n;
  const TimePs s0 = transfer_time_ps(each * g, rate_);
  const TimePs s1 = transfer_time_ps((each + 1) * g, rate_);
  // Either queued everywhere (start_ps no later than any server's busy-until, so none goes
  // idle and remembers a gap) and too late for any remembered gap, or else idle everywhere (no
  // earlier than every busy-until: each server starts its part at start_ps and remembers the
  // gap it leaves, if any, as place() does for a server that has served earlier work). Idle
  // requests are served within the stream only after a queued one: a run of requests that each
  // find every server idle costs less server by server.
  const bool queued = start_ps <= busy_until_.min() && start_ps + s0 + extra_ps > gap_end_bound_;
  const bool idle = !queued && start_ps >= busy_until_.max() && all_served_ && !last_idle_;
  if (!queued && !idle) return false;
  // The head and tail servers' parts, exactly (a part's time is not the sum of its pieces').
  auto whole_granules = [&](uint64_t u) { return each + ((u + n - u_full) % n < extra ? 1 : 0); };
  uint64_t point_u[2] = {0, 0}, point_bytes[2] = {0, 0};
  TimePs point_ps[2] = {0, 0};
  int points = 0;
  auto point = [&](uint64_t u, uint64_t add_bytes) {
    for (int i = 0; i < points; ++i) {
      if (point_u[i] == u) {
        point_bytes[i] += add_bytes;
        return;
      }
    }
    point_u[points] = u;
    point_bytes[points++] = add_bytes;
  };
  if (head) point(r0, head);
  if (tail) point(u_tail, tail);
  TimePs max_point_ps = 0;
  for (int i = 0; i < points; ++i) {
    const uint64_t w = whole_granules(point_u[i]) * g;
    point_ps[i] = transfer_time_ps(w + point_bytes[i], rate_) - (w == each * g ? s0 : s1);
    max_point_ps = std::max(max_point_ps, point_ps[i]);
  }
  // The most any server's busy-until can grow, saturated at the time limit: a request that could
  // pass it takes the per-server path, which raises the run-input error.
  const auto sat = [](TimePs a, TimePs b) {
    return a > kMaxSimTimePs - std::min(b, kMaxSimTimePs) ? kMaxSimTimePs + 1 : a + b;
  };
  const TimePs grow = sat(sat(s1, extra_ps), sat(max_point_ps, p_.miss_penalty_ps));
  const TimePs base = idle ? start_ps : busy_until_.max();
  if (grow > kMaxSimTimePs || base > kMaxSimTimePs - grow) return false;

  if (idle) {
    // Each server's idle gap, [its busy-until, start_ps) when not empty, goes to its ring now
    // (the ring's order is the servers' own: nothing else reaches a ring while streaming);
    // every busy-until becomes start_ps before the parts are added below.
    busy_until_.values(scratch_);
    bool gaps = false;
    for (uint64_t u = 0; u < n; ++u) {
      if (start_ps > scratch_[u]) {
        servers_[u].leave_idle_gap(scratch_[u], start_ps);
        gaps = true;
      }
    }
    std::fill(scratch_.begin(), scratch_.end(), start_ps);
    busy_until_.reset(scratch_);
    if (gaps) gap_end_bound_ = std::max(gap_end_bound_, start_ps);
    ++idle_streamed_;
  }
  last_idle_ = idle;

  // Every server: each granules; the `extra` servers from u_full on (cyclic): one more.
  busy_until_.add_all(s0 + extra_ps);
  bytes_diff_[0] += static_cast<int64_t>(each * g);
  service_diff_[0] += static_cast<int64_t>(s0 + extra_ps);
  auto range_add = [&](uint64_t l, uint64_t r) {  // [l, r), l < r <= n
    busy_until_.add(l, r, s1 - s0);
    bytes_diff_[l] += static_cast<int64_t>(g);
    bytes_diff_[r] -= static_cast<int64_t>(g);
    service_diff_[l] += static_cast<int64_t>(s1 - s0);
    service_diff_[r] -= static_cast<int64_t>(s1 - s0);
  };
  auto cyclic = [&](uint64_t from, uint64_t count, const auto& add) {
    if (count == 0) return;
    if (from + count <= n) {
      add(from, from + count);
    } else {
      add(from, n);
      add(0, from + count - n);
    }
  };
  cyclic(u_full, extra, range_add);
  if (miss_count < n) {
    const TimePs miss = p_.miss_penalty_ps;
    cyclic(miss_from, miss_count, [&](uint64_t l, uint64_t r) {
      busy_until_.add(l, r, miss);
      service_diff_[l] += static_cast<int64_t>(miss);
      service_diff_[r] -= static_cast<int64_t>(miss);
    });
  }
  for (int i = 0; i < points; ++i) {
    const uint64_t u = point_u[i];
    busy_until_.add(u, u + 1, point_ps[i]);
    bytes_diff_[u] += static_cast<int64_t>(point_bytes[i]);
    bytes_diff_[u + 1] -= static_cast<int64_t>(point_bytes[i]);
    service_diff_[u] += static_cast<int64_t>(point_ps[i]);
    service_diff_[u + 1] -= static_cast<int64_t>(point_ps[i]);
  }
  parts_ += n;
  misses_ += miss_count;
  if (write != stream_write_) turnarounds_ += n;
  stream_end_ = addr + bytes;
  stream_write_ = write;
  dirty_ = true;
  ++streamed_;
  max_busy_ = std::max(max_busy_, busy_until_.max());
  done = busy_until_.max() + p_.latency_ps;
  return true;
}

template <typename BasePs>
inline TimePs BandwidthMemoryCore::serve_part(uint64_t u, uint64_t local, uint64_t bytes,
                                              const BasePs& base_ps, bool write, TimePs start_ps) {
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
  // Converted after the bookkeeping, as a server converts its own part: a part past the time
  // limit raises the run-input error at the same part, with the same state and message.
  return servers_[u].reserve_service(start_ps, bytes, base_ps() + extra);
}

namespace {
// A part size's transfer time at the servers' common rate, converted at its first use in a
// request (a size no server takes is never converted).
struct LazyPartPs {
  uint64_t bytes;
  double rate;
  TimePs ps = 0;
  bool converted = false;
  TimePs get() {
    if (!converted) {
      ps = transfer_time_ps(bytes, rate);
      converted = true;
    }
    return ps;
  }
};
}  // namespace

TimePs BandwidthMemoryCore::serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) {
  if (!streaming_ && candidate_) enter_stream(addr, bytes, start_ps);
  if (streaming_) {
    TimePs done = 0;
    if (serve_streamed(addr, bytes, write, start_ps, done)) return done;
    settle();
  }
  candidate_ = false;  // the per-server path below changes what the servers continue
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
    LazyPartPs granule{g, rate_};
    while (left > 0) {
      const auto base = [&] {
        if (!uniform_rate_) return servers_[u].service_ps(part);
        return part == g ? granule.get() : transfer_time_ps(part, rate_);
      };
      done = std::max(done, serve_part(u, local, part, base, write, start_ps));
      left -= part;
      part = std::min(left, g);
      if (++u == n) {
        u = 0;
        ++q;
      }
      local = q * g;
    }
    max_busy_ = std::max(max_busy_, done);
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
  // Most parts are each or each + 1 granules: converted once per request when every server has
  // one rate. (With one server a request may end inside its first granule: rest wraps around,
  // and the lone server's part, head + full granules + tail, is the request's size modulo 2^64;
  // it is converted as the head's server.)
  const uint64_t each_bytes = each * g, more_bytes = each_bytes + g;
  LazyPartPs each_ps{each_bytes, rate_}, more_ps{more_bytes, rate_};
  uint64_t d = (n - u_full) % n;  // distance from u_full to u = 0, in server order
  for (uint64_t u = 0; u < n; ++u) {
    const bool more = d < extra;
    uint64_t part = more ? more_bytes : each_bytes;
    if (++d == n) d = 0;
    const bool end_part = u == r0 || u == u_tail;
    if (u == r0) part += head;
    if (u == u_tail) part += tail;
    if (part == 0) continue;
    const auto base = [&] {
      if (!uniform_rate_) return servers_[u].service_ps(part);
      if (end_part) return transfer_time_ps(part, rate_);
      return more ? more_ps.get() : each_ps.get();
    };
    // The server's first chunk of this request and its channel-local address: chunks k with
    // k % n == u are consecutive granules in the channel's own address sequence. The first
    // such k is k0 + (u - r0 mod n), which lies in the next group of n exactly when u < r0.
    const uint64_t local = (q0 + (u < r0 ? 1 : 0)) * g + (u == r0 ? offset : 0);
    done = std::max(done, serve_part(u, local, part, base, write, start_ps));
  }
  note_stream(addr, bytes, write);
  max_busy_ = std::max(max_busy_, done);
  return done + p_.latency_ps;
}

void BandwidthMemoryCore::set_stack_rate(uint32_t stack, double m, double bandwidth_fraction) {
  settle();
  const double rate = p_.stack_rate_at(m) * bandwidth_fraction / p_.channels_per_stack;
  for (uint32_t u = stack; u < p_.servers(); u += p_.stack_count)
    servers_[u].set_rate(rate);
  update_uniform_rate();
}

TimePs BandwidthMemoryCore::busy_ps() const {
  settle();
  TimePs t = 0;
  for (const auto& s : servers_)
    t += s.busy_ps();
  return t;
}

}  // namespace tiersim
