// HBM stacks, fast level.
//
// What is modelled: `stack_count` identical stacks of `channels_per_stack` channel servers; a
// stack's rate is the pin bandwidth (bus_width_bits x pin_data_rate_mbps / 8) times an
// efficiency fraction that folds in refresh, read/write turnaround and row misses, shared equally
// by its channels. A bulk request is split across all channel servers by the address interleave
// (interleave_bytes chunks rotate across stacks, then channels), each part queues first-come-
// first-served behind earlier requests on its channel, and the request completes when its last
// part does, plus the unloaded latency. Reads and writes share a channel's bandwidth.
//
// Fidelity: fast. Contention between requests is captured per channel; banks, refresh and
// scheduling are averaged into the efficiency fraction. Requests reserved
// with a future start (annotated delay) are served in reservation order. The detailed
// command-level model and the calibration of `efficiency_fraction` arrive with the HBM issue.
// Temperature: above the refresh table's thresholds the refresh rate multiplies, and the
// refresh share of the bandwidth (refresh_overhead_fraction, calibrated) multiplies with it.
// Left out: per-channel imbalance, access-pattern-dependent efficiency, energy.
#pragma once

#include <tlm_utils/multi_passthrough_target_socket.h>

#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/hbm_fast_core.h"
#include "models/config/errors.h"
#include "models/core/component.h"
#include "models/core/stats.h"

namespace tiersim {

class HbmFast : public Component {
 public:
  // Any number of initiators may bind (the id is the binding index).
  tlm_utils::multi_passthrough_target_socket<HbmFast> socket;

  // `kind`: the component kind this instance serves ("hbm", or "gddr" with the same model).
  HbmFast(sc_core::sc_module_name name, const HbmFastParams& params, Context& ctx,
          std::string kind = "hbm", Tier tier = Tier::kHbm);

  Tier tier() const override { return tier_; }
  TargetSocket* target_socket() override { return &socket; }
  uint64_t bytes_read() const override { return bytes_read_.value(); }
  uint64_t bytes_written() const override { return bytes_written_.value(); }
  const HbmFastParams& params() const { return params_; }

 private:
  void b_transport(int id, tlm::tlm_generic_payload& p, sc_core::sc_time& delay);

  const HbmFastParams params_;
  const Tier tier_;
  HbmFastCore core_;  // server u: stack u % stacks, channel u / stacks
  Counter& requests_;
  Counter& bytes_read_;
  Counter& bytes_written_;
  VectorFormula& stack_bytes_;
  Histogram& latency_ns_;
};

}  // namespace tiersim
