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
};

class BandwidthMemoryCore {
 public:
  explicit BandwidthMemoryCore(const BandwidthMemoryParams& p);

  // Serves [addr, addr + bytes) arriving at `start_ps`; returns when its last byte is out plus
  // the unloaded latency. `addr` is the component-local address (caller checks the range).
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps);

  // Bytes served so far by server u (stack u % stacks).
  uint64_t server_bytes(uint32_t u) const { return servers_[u].bytes(); }
  TimePs server_busy_ps(uint32_t u) const { return servers_[u].busy_ps(); }
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
  // One server's part of a request: `local` is its channel-local start address.
  TimePs serve_part(uint64_t u, uint64_t local, uint64_t bytes, bool write, TimePs start_ps);
  BandwidthMemoryParams p_;
  std::vector<BandwidthServer> servers_;
  std::vector<uint64_t> next_local_;  // channel-local address that would continue each server
  std::vector<uint8_t> last_write_;   // 0 read, 1 write, 2 none yet
  uint64_t misses_ = 0, turnarounds_ = 0, parts_ = 0;
};

}  // namespace tiersim
