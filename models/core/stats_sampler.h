// Samples every stat of the registry each `interval_ps` of simulated time while the run is
// active (an SC_METHOD with a timed trigger; it stops re-arming once the run is done). At most
// kMaxSamples samples are kept: the interval doubles each time the series fills.
#pragma once

#include <systemc>

#include "models/core/sim_time.h"
#include "models/core/stats.h"

namespace tiersim {

class StatsSampler : public sc_core::sc_module {
 public:
  static constexpr size_t kMaxSamples = size_t{1} << 16;
  SC_HAS_PROCESS(StatsSampler);
  StatsSampler(sc_core::sc_module_name name, StatsRegistry& stats, TimePs interval_ps,
               const bool& done)
      : sc_core::sc_module(name), stats_(stats), interval_ps_(interval_ps), done_(done) {
    SC_METHOD(tick);
    dont_initialize();
    // First sample one interval in.
    sensitive << start_;
  }
  void start_of_simulation() override { start_.notify(to_sc_time(interval_ps_)); }

 private:
  void tick() {
    if (done_) return;
    stats_.sample(now_ps());
    if (stats_.sample_count() >= kMaxSamples) {
      // A bounded series: past kMaxSamples, every other sample is dropped and the interval
      // doubles, so a long run keeps an evenly spaced series of at most kMaxSamples rows.
      stats_.drop_every_other_sample();
      interval_ps_ *= 2;
    }
    next_trigger(to_sc_time(interval_ps_));
  }
  StatsRegistry& stats_;
  TimePs interval_ps_;
  const bool& done_;
  sc_core::sc_event start_;
};

}  // namespace tiersim
