// What a movement controller is made of (config ControllerParts: a host CPU loop, a DPU's cores,
// an on-accelerator engine) and the figures that follow from it. Plain C++.
#pragma once

#include <cstdint>
#include <deque>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/time.h"

namespace tiersim {

// The figures a controller's parts give (policy.orchestration.controller_parts), each derived as
// its message in the schema states: latencies in ps rounded to the nearest, the jitter uniform
// from 0 (none when its bound is 0), no pipelining for the host and DPU loops.
struct ControllerFigures {
  config::ControllerPlacement controller = config::HOST_CPU;
  TimePs decision_latency_ps = 0;
  config::Jitter decision_jitter;
  uint32_t decision_servers = 1;
  TimePs decision_interval_ps = 0;
  config::Notification notification = config::INTERRUPT;
  TimePs notification_latency_ps = 0;
  double power_w = 0;       // drawn while deciding (all servers busy)
  double idle_power_w = 0;  // drawn with no decision in flight (= power_w: constant power)
  // An engine's die area (its tables' SRAM and its logic), and its table capacity (0: neither
  // modelled).
  double area_mm2 = 0;
  uint64_t table_bytes = 0;
  // Shared by symmetric peers (OwnedController.sharers): each decision holds a server this many
  // times its own occupancy (1: not shared). Powers above are this accelerator's share.
  double server_share = 1.0;
};
// `parts` must be valid (OrchestrationParams::validate).
ControllerFigures controller_figures(const config::ControllerParts& parts);

// Checks `parts` (each part's range and the sums' bounds), reporting under `pv`. False when
// they are not valid.
bool validate_parts(const config::ControllerParts& parts, Validator pv);

// The server-time a controller has spent deciding, exactly up to any moment: each decision holds
// a server over [start, start + occupancy), where start may lie ahead of the moment the decision
// is asked (a queue, or a trigger in the future). The oldest decisions are folded into a total
// once they ended by a moment given to add(); the others are kept.
class BusyLedger {
 public:
  // A decision asked at `now` holds a server over [start, start + occupancy).
  void add(TimePs start, TimePs occupancy, TimePs now);
  // Server-time spent deciding in [0, t]: each decision's overlap with it. `t` must not precede
  // a `now` given to add() (std::logic_error).
  TimePs busy_until(TimePs t) const;
  // Every decision's whole occupancy.
  TimePs total() const { return total_; }

 private:
  struct Interval {
    TimePs start, end;
  };
  TimePs folded_ = 0, folded_to_ = 0, total_ = 0;
  std::deque<Interval> open_;  // decisions not folded, in the order asked
};

}  // namespace tiersim
