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
//
// Sampled (run.detailed_sampling, SMARTS-style): a fast level calibrated from the device
// (BandwidthMemoryCore over device_calibrated_params) serves every request and keeps its channel
// state warm; in each period of requests, one run of warm-up + window consecutive requests at a
// seeded offset is also served by the stacks, which then decide those requests' completions.
// The stacks start the run once the fast-served work queued before it is out (their in-order
// service would have served it first); between runs they only advance (refresh, pulled in while
// idle). A window with a request abandoned at the run's end or the wall limit gives no sample. Each
// window gives one sample: the stacks' time on its requests over the fast level's replay of the
// same requests back to back from idle channels (a service-rate ratio, free of the arrival pacing
// the closed loop imposes). The mean and its 95% confidence half-width (Student's t) are reported;
// by default the fast level's rates are divided by the mean after each window. Fidelity of the mix:
// the fast-served requests move at the command level's measured rate but keep the fast level's
// overlap of requests (the stacks serve one request at a time), so a sampled step differs from a
// command-level one by a few percent (docs/models/hbm.md). Under sampling the command-level stats
// count the runs' requests only, and a thermal model reads the fast level's per-stack bytes (every
// request) and throttles both.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/bandwidth_memory_core.h"
#include "memory/dram_stack.h"
#include "memory/dram_target.h"
#include "models/core/rng.h"
#include "models/core/stats.h"

namespace tiersim {

// The sampling of a detailed memory (config DetailedSampling, validated).
struct DetailedSamplingParams {
  uint32_t period_requests = 0;
  uint32_t window_requests = 0;
  uint32_t warmup_requests = 0;
  bool rerate_fast_level = true;
  BandwidthMemoryParams fast;  // the fast level calibrated from the device
};

// Running mean and variance of the windows' latency ratios (Welford), and the 95% confidence
// half-width of the mean (Student's t with n - 1 degrees of freedom; 0 below two windows).
class RatioSamples {
 public:
  void add(double ratio);
  uint64_t count() const { return n_; }
  double mean() const { return mean_; }
  double ci95_half_width() const;

 private:
  uint64_t n_ = 0;
  double mean_ = 0, m2_ = 0;
};

struct HbmDetailedParams {
  uint32_t stack_count;
  uint64_t capacity_bytes_per_stack;
  uint64_t interleave_bytes;
  DramStackSpec device;
  std::vector<double> refresh_multiplier;  // per stack, from the temperatures
  std::optional<DetailedSamplingParams> sampling;
  // c valid, with a device; `sampling` set (and c's fast fields valid) for a sampled run.
  static HbmDetailedParams from_config(const config::HbmFast& c,
                                       const config::DetailedSampling* sampling = nullptr);
};

class HbmDetailed : public DramTarget {
 public:
  HbmDetailed(sc_core::sc_module_name name, const HbmDetailedParams& params, Context& ctx);

 protected:
  // Serves the request to completion: advances the stacks to its start, submits its pieces and
  // runs them until the last one is done; returns that time plus the front-end latency.
  // Sampled: every request at the fast level, and those of a period's run also (and finally)
  // at the command level.
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) override;
  // The power account's active time: the data bus at peak (bytes / peak_bytes_per_s), not the
  // controllers' bank states.
  double busy_stack_s() const override;

 public:
  void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const override;
  // Sampling's figures (0 without sampling).
  const RatioSamples& window_ratios() const { return ratios_; }
  uint64_t detailed_requests() const { return detailed_requests_; }

 private:
  // The command level alone: advances the stacks to the request's start, submits its pieces and
  // runs them until the last one is done.
  // `begin_ps`, when given, receives the time the stacks took the request's first piece.
  TimePs serve_detailed(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps,
                        TimePs* begin_ps);
  // Sampling: a window's sample (the stacks' time over the fast level's replay of the same
  // requests), then the fast level re-rated by the mean's inverse.
  void close_window();
  // The fast level's rates: each stack's refresh multiplier and throttle (a thermal model's),
  // times the correction the windows measured.
  void rerate_fast();
  // What the fast level's rates are multiplied by: the inverse of the windows' mean ratio (1
  // before a window, or without re-rating).
  double rate_correction() const;
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
  std::vector<double> issue_carry_;  // cycles of unused slots a stack keeps (>= 1)

  // Sampling (fast_ set only when sampled): the position in the current period, the offset of
  // its run, and the current window's summed latencies at either level.
  std::unique_ptr<BandwidthMemoryCore> fast_;
  Rng rng_;
  uint64_t period_pos_ = 0, run_offset_ = 0;
  struct WindowRequest {
    uint64_t addr, bytes;
    bool write;
  };
  std::vector<WindowRequest> window_;  // the current window's measured requests
  TimePs window_stack_ps_ = 0;         // the stacks' time on them (first piece to last)
  bool window_cut_ = false;            // one of them was abandoned (run's end, wall limit)
  TimePs fast_served_until_ps_ = 0;    // when the fast-served requests' parts are out
  std::vector<double> stack_refresh_, stack_throttle_;
  RatioSamples ratios_;
  uint64_t detailed_requests_ = 0, sampled_requests_ = 0;
};

}  // namespace tiersim
