// HBM stacks, detailed level: each stack is a DramStack (command-level controllers per
// pseudo-channel, memory/dram_controller.h) built from the component's `device`.
//
// What is modelled: a bulk request is split into access-sized pieces (covering every burst it
// touches, as the device moves whole bursts); pieces rotate across
// stacks every `interleave_bytes` (as at the fast level) and, inside a stack, follow the device's
// address mapping. The front end submits pieces in order, waiting when a pseudo-channel queue is
// full. The request completes when its last piece's data has moved, plus the front-end latency.
//
// Fidelity: detailed inside the stack (JEDEC timing, scheduling, page policy, refresh). Between
// requests it is loosely timed: the initiators of this tree issue blocking transactions, so the
// model serves each request to completion in arrival order; a request whose start lies before
// the stacks' current time starts late (counted in `late_starts`). Concurrent requests therefore
// do not interleave inside the stack, which drains the queues between requests (a bubble of
// about one access latency per request; tests bound its effect on bulk tiles). Approximately-
// timed initiators will remove this limit. Speed: about 2 M accesses per wall-second; use the
// fast level for full decode runs and this one for memory studies and calibration.
// TLM: blocking only (there is no non-blocking path): it is a MemoryTarget whose serve() runs
// the request to completion, so the range check, counts and latency are the base's.
// Temperature: the refresh rate of every controller follows the stack's multiplier. With a
// thermal model (enable_thermal, memory/hbm_thermal.h) the multiplier follows the stack's
// temperature: each controller takes the new tREFI from its next refresh interval, so the change
// applies command by command; a throttled stack's front end issues accesses no faster than the
// throttle's fraction of the stack's peak (an issue cap; the in-order front end then also waits
// for it when the next access goes to another stack).
#pragma once

#include <memory>
#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/dram_stack.h"
#include "memory/dram_target.h"
#include "models/core/stats.h"

namespace tiersim {

struct HbmDetailedParams {
  uint32_t stack_count;
  uint64_t capacity_bytes_per_stack;
  uint64_t interleave_bytes;
  DramStackSpec device;
  std::vector<double> refresh_multiplier;  // per stack, from the temperatures
  static HbmDetailedParams from_config(const config::HbmFast& c);  // c valid, with a device
};

class HbmDetailed : public DramTarget {
 public:
  HbmDetailed(sc_core::sc_module_name name, const HbmDetailedParams& params, Context& ctx);

 protected:
  // Serves the request to completion: advances the stacks to its start, submits its pieces and
  // runs them until the last one is done; returns that time plus the front-end latency.
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) override;
  // The power account's active time: the data bus at peak (bytes / peak_bytes_per_s), not the
  // controllers' bank states.
  double busy_stack_s() const override;

 private:
  // Advances every stack to `cycle`, processing their events on the way.
  void advance_to(uint64_t cycle);
  // Advances to the next event of any stack; false when none is pending.
  bool step();

  const HbmDetailedParams params_;
  std::vector<std::unique_ptr<DramStack>> stacks_;
  std::vector<uint64_t> next_;  // next event cycle per stack
  std::vector<DramCompletion> done_;
  uint64_t cycle_ = 0;        // the stacks' common time
  uint64_t outstanding_ = 0;  // pieces of the current request not yet completed
  uint64_t last_done_cycle_ = 0;
  // The run's end in device cycles (max_sim_time_ps, or kMaxSimTimePs without one): a request
  // still running there is abandoned (the kernel stops first), and past kMaxSimTimePs the run
  // fails, so no timing can make a call spin through billions of cycles.
  uint64_t stop_cycle_ = 0;
  bool stop_is_error_ = true;

  void thermal_counts(double* stack_bytes, double* stack_busy_s) const override;
  void thermal_apply(uint32_t stack, double refresh_multiplier, double fraction) override;

  Counter& late_starts_;
  // Throttle: per stack, the spacing between accesses the front end may issue (device cycles;
  // 0 when not throttled) and the earliest cycle of the next one.
  std::vector<double> issue_spacing_, next_issue_;
};

}  // namespace tiersim
