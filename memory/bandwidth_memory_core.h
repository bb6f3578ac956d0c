// The fast HBM level's timing, plain C++: used by the SystemC shell BandwidthMemory (which also
// serves the ddr and gddr kinds), by the CXL expander for its media and by the pattern runner.
// Each channel server queues first-come-first-served; a request part pays its bytes at the
// channel's effective rate, plus `miss_penalty_ps` unless it continues the channel's previous
// part in the channel's own address sequence (streaming locality), plus `turnaround_ps` when the
// channel switches between reads and writes.
#pragma once

#include <cstdint>
#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/range_add_tree.h"
#include "models/config/errors.h"
#include "models/core/bandwidth_server.h"
#include "models/core/time.h"

namespace tiersim {

struct BandwidthMemoryParams {
  uint32_t stack_count;
  uint32_t bus_width_bits;
  double pin_data_rate_mbps;
  uint64_t capacity_bytes_per_stack;
  double efficiency_fraction;
  TimePs latency_ps;
  uint64_t interleave_bytes;
  uint32_t channels_per_stack = 1;
  double refresh_multiplier = 1.0;         // from the temperature and the step table
  double refresh_overhead_fraction = 0.0;  // share of refresh in efficiency at x1
  TimePs miss_penalty_ps = 0;  // extra service time when a part does not continue its channel's
                               // previous part (a row miss in the fast level's terms)
  TimePs turnaround_ps = 0;    // extra service time when a channel changes direction
  std::vector<double> stack_refresh_multiplier = {};  // per stack, when stack temps are given

  double peak_bytes_per_s_per_stack() const {
    return pin_data_rate_mbps * 1e6 * bus_width_bits / 8.0;
  }
  double multiplier(uint32_t stack) const {
    return stack_refresh_multiplier.empty() ? refresh_multiplier : stack_refresh_multiplier[stack];
  }
  // Effective rate of one stack at its own refresh multiplier m: refresh costs r of the
  // bandwidth at x1 and m x r at m, so the efficiency scales by (1 - m r) / (1 - r).
  double stack_rate(uint32_t stack) const {
    return peak_bytes_per_s_per_stack() * efficiency_fraction *
           (1.0 - multiplier(stack) * refresh_overhead_fraction) /
           (1.0 - refresh_overhead_fraction);
  }
  // A stack's rate at refresh multiplier m (a thermal model's, instead of the configured one).
  double stack_rate_at(double m) const {
    return peak_bytes_per_s_per_stack() * efficiency_fraction *
           (1.0 - m * refresh_overhead_fraction) / (1.0 - refresh_overhead_fraction);
  }
  double effective_bytes_per_s() const {
    double t = 0;
    for (uint32_t s = 0; s < stack_count; ++s)
      t += stack_rate(s);
    return t;
  }
  double effective_bytes_per_s_per_channel(uint32_t stack) const {
    return stack_rate(stack) / channels_per_stack;
  }
  uint32_t servers() const { return stack_count * channels_per_stack; }
  uint64_t capacity_bytes() const { return capacity_bytes_per_stack * stack_count; }

  // `fast_level`: the component runs at FAST (only then is refresh_overhead_fraction needed).
  static void validate(const config::HbmFast& c, Validator& v, bool fast_level = true);
  // The refresh-rate multiplier at the component's temperature, or at stack `stack`'s when
  // stack temperatures are given (both levels use it).
  static double refresh_multiplier_for(const config::HbmFast& c, int stack = -1);
  static BandwidthMemoryParams from_config(const config::HbmFast& c);  // c must be valid

  // The share of these media that one of a pool's sharers sees (models/config/pool_share.h):
  // every channel at 1/m of its rate, row misses and turnarounds m times as long (each sharer's
  // stream pays its own), capacity / sharers.
  BandwidthMemoryParams shared(double load_multiplier, uint32_t sharers) const {
    BandwidthMemoryParams p = *this;
    p.efficiency_fraction /= load_multiplier;
    p.miss_penalty_ps = static_cast<TimePs>(double(miss_penalty_ps) * load_multiplier + 0.5);
    p.turnaround_ps = static_cast<TimePs>(double(turnaround_ps) * load_multiplier + 0.5);
    p.capacity_bytes_per_stack /= sharers;
    return p;
  }
};

// Streaming fast path (exact): a bulk request that gives every channel server at least one whole
// granule, with every server at the same rate, that continues the previous bulk request's
// addresses (no server misses), lies at least one interleave period (servers x
// interleave_bytes) away from its end (every server misses) or skips whole granules forward (the
// servers that owned them miss), and arrives
//  - while every server is still busy (queued behind earlier work, so no idle gap is left or
//    filled): each server's part then is `each` or `each + 1` whole granules over a contiguous
//    (cyclic) range of servers, plus the partial head and tail granules. The servers' busy-until
//    times are kept in a segment tree (range add, max and min in O(log n)) and their bytes and
//    service totals in difference arrays, so such a request costs O(log servers) instead of
//    O(servers); or
//  - once every server is idle, right after a queued request of the stream (as the first tile of
//    a kernel does after its launch gap), when every server has served earlier work: each
//    server starts its part at the request's start and remembers the gap it leaves in its ring
//    (O(servers)), and the stream goes on without a write-back.
// Any other request, a rate change or a read of a server's counters first writes the state back
// to the servers. Every figure equals the per-server computation's, bit for bit (unit tests: a
// core with the fast path off, on random request streams).
class BandwidthMemoryCore {
 public:
  explicit BandwidthMemoryCore(const BandwidthMemoryParams& p, bool streaming_fast_path = true);

  // Serves [addr, addr + bytes) arriving at `start_ps`; returns when its last byte is out plus
  // the unloaded latency. `addr` is the component-local address (caller checks the range).
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps);

  // Bytes served so far by server u (stack u % stacks).
  uint64_t server_bytes(uint32_t u) const {
    settle();
    return servers_[u].bytes();
  }
  TimePs server_busy_ps(uint32_t u) const {
    settle();
    return servers_[u].busy_ps();
  }
  // Requests served by the streaming fast path (a speed statistic; results do not depend on it).
  uint64_t streamed_requests() const { return streamed_; }
  // The core's bound on every server's busy-until (the stream's entry declines a request that
  // starts after it without a pass over the servers), and server u's busy-until, for tests.
  TimePs busy_until_bound() const { return max_busy_; }
  TimePs server_busy_until(uint32_t u) const {
    settle();
    return servers_[u].busy_until_ps();
  }
  // Of those, requests that found every server idle (each left its gap, if its busy-until was
  // earlier than the request's start).
  uint64_t idle_streamed_requests() const { return idle_streamed_; }
  // Re-rates stack `stack`'s channel servers for refresh multiplier m and a bandwidth fraction
  // (a thermal model's throttle): from the next reservation; work already reserved keeps its
  // times.
  void set_stack_rate(uint32_t stack, double m, double bandwidth_fraction);
  TimePs busy_ps() const;
  uint64_t misses() const { return misses_; }
  uint64_t parts() const { return parts_; }
  uint64_t turnarounds() const { return turnarounds_; }
  const BandwidthMemoryParams& params() const { return p_; }

 private:
  static constexpr uint64_t kNone = UINT64_MAX;
  // One server's part of a request: `local` is its channel-local start address; base_ps()
  // gives the part's transfer time at the server's rate (called after the miss and turnaround
  // bookkeeping, where the server's own conversion would raise past the time limit).
  template <typename BasePs>
  TimePs serve_part(uint64_t u, uint64_t local, uint64_t bytes, const BasePs& base_ps, bool write,
                    TimePs start_ps);
  // The streaming fast path: false (nothing changed) when the request does not qualify.
  bool serve_streamed(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps, TimePs& done);
  // After a bulk request served server by server: every server now continues it (a candidate
  // for the fast path) when it gave each a whole granule.
  void note_stream(uint64_t addr, uint64_t bytes, bool write);
  // The request gives every server at least one whole granule.
  bool whole_granule_each(uint64_t addr, uint64_t bytes) const;
  // Which servers miss when the request follows the stream that ended at stream_end_: a cyclic
  // range [from, from + count) of servers; false when the rule is not one of the closed forms.
  bool stream_misses(uint64_t addr, uint64_t* from, uint64_t* count) const;
  // Builds the lazy state from the servers when the request at hand can take the fast path.
  bool enter_stream(uint64_t addr, uint64_t bytes, TimePs start_ps);
  // Writes the lazy state back to the servers (const: the lazy state is a cache of theirs; not
  // safe for concurrent readers, like the rest of the core).
  void settle() const;
  void update_uniform_rate();

  BandwidthMemoryParams p_;
  mutable std::vector<BandwidthServer> servers_;
  mutable std::vector<uint64_t> next_local_;  // channel-local address that would continue each
  mutable std::vector<uint8_t> last_write_;   // 0 read, 1 write, 2 none yet
  uint64_t misses_ = 0, turnarounds_ = 0, parts_ = 0;
  // No server's busy-until is later (an upper bound: the latest end of any request's parts, or
  // its start; a gap filled leaves a busy-until unchanged). After a part raised the time-limit
  // error it may be stale; the run ends with that error.
  TimePs max_busy_ = 0;

  // Lazy streaming state (valid while streaming_): busy-until per server in the tree; bytes and
  // service added since entering, as difference arrays (entry u adds to servers u..n-1);
  // every server continues the bulk stream that ended at stream_end_ in direction stream_write_.
  bool fast_path_enabled_;
  bool uniform_rate_ = false;
  double rate_ = 0;                 // every server's rate when uniform_rate_
  mutable bool streaming_ = false;  // the tree and difference arrays hold the servers' state
  mutable bool dirty_ = false;      // a request was served since the tree was built
  mutable bool candidate_ = false;  // every server continues stream_end_ (servers' own state)
  uint64_t stream_end_ = 0;
  bool stream_write_ = false;
  TimePs gap_end_bound_ = 0;  // no remembered gap of any server ends later
  bool all_served_ = false;   // every server had served work on entering (an idle one leaves a
                              // gap); totals only grow, so it stays true while streaming
  bool last_idle_ = false;    // the last request streamed found every server idle
  RangeAddTree busy_until_;
  mutable std::vector<int64_t> bytes_diff_, service_diff_;
  mutable std::vector<uint64_t> scratch_;
  uint64_t streamed_ = 0, idle_streamed_ = 0;
};

}  // namespace tiersim
