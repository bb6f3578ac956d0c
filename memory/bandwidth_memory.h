// A DRAM memory of bandwidth servers: the fast level of the hbm kind, and the ddr and gddr
// kinds (their parameters mapped onto the same stacks and channels, memory/ddr.h, gddr.cc).
//
// What is modelled: `stack_count` identical stacks (DDR channels, GDDR devices) of
// `channels_per_stack` channel servers; a stack's rate is the pin bandwidth (bus_width_bits x
// pin_data_rate_mbps / 8) times an efficiency fraction that folds in refresh, read/write
// turnaround and row misses, shared equally by its channels. A bulk request is split across all
// channel servers by the address interleave (interleave_bytes chunks rotate across stacks, then
// channels), each part queues first-come-first-served behind earlier requests on its channel,
// and the request completes when its last part does, plus the unloaded latency. Reads and writes
// share a channel's bandwidth. The timing is BandwidthMemoryCore (memory/bandwidth_memory_core.h);
// this class is its TLM target (MemoryTarget: range check, byte counts) and its energy account
// (the device's per bit, plus memory/dram_power.h).
//
// Fidelity: fast. Contention between requests is captured per channel; banks, refresh and
// scheduling are averaged into the efficiency fraction, with a miss penalty for a part that does
// not continue its channel's previous part and a turnaround penalty on a change of direction.
// Requests reserved with a future start (annotated delay) fill a server's idle gaps or queue.
// Temperature: above the refresh table's thresholds the refresh rate multiplies, and the
// refresh share of the bandwidth (refresh_overhead_fraction, calibrated) multiplies with it.
// With a thermal model (enable_thermal, memory/hbm_thermal.h) each stack's multiplier follows its
// own temperature, and a throttled stack's channel servers run at the throttle's fraction; the
// servers are re-rated when the state changes (recalibrating the efficiency as temperature
// crosses a range), so work already reserved keeps its times.
// Left out: per-channel imbalance, access-pattern-dependent efficiency beyond the two penalties.
//
// Stats (in this order): requests, bytes_read, bytes_written, stack_bytes (per stack),
// request_latency (ns), utilization.
#pragma once

#include <memory>
#include <string>

#include "memory/bandwidth_memory_core.h"
#include "memory/dram_target.h"

namespace tiersim {

class BandwidthMemory : public DramTarget {
 public:
  // `kind`: the component kind this instance serves ("hbm", "ddr" or "gddr").
  BandwidthMemory(sc_core::sc_module_name name, const BandwidthMemoryParams& params, Context& ctx,
                  std::string kind = "hbm", Tier tier = Tier::kHbm);

  const BandwidthMemoryParams& params() const { return params_; }

 protected:
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) override {
    return core_.serve(addr, bytes, write, start_ps);
  }
  // The power account's active time: the channel servers' busy time over channels_per_stack.
  double busy_stack_s() const override;

 private:
  const BandwidthMemoryParams params_;
  void thermal_counts(double* stack_bytes, double* stack_busy_s) const override;
  void thermal_apply(uint32_t stack, double refresh_multiplier, double fraction) override;

  BandwidthMemoryCore core_;  // server u: stack u % stacks, channel u / stacks
};

}  // namespace tiersim
