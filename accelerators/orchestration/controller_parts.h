// What a movement controller is made of (config ControllerParts: a host CPU loop, a DPU's cores,
// an on-accelerator engine) and the figures that follow from it. Plain C++.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "configs/tiersim.pb.h"
#include "fabric/serial_link.h"
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
  // The telemetry reads and doorbells (host loop and DPU parts), and the modelled PCIe link
  // they cross (empty: none; their times are then in decision_latency_ps alone).
  std::string pcie_link;
  uint64_t posted_queue_bytes = 0;  // 0: every write accepted on the link is ahead
  uint32_t telemetry_reads = 0;
  TimePs read_round_trip_ps = 0;
  uint32_t doorbell_writes = 0;
  TimePs doorbell_write_ps = 0;
  // decision_latency_ps minus the reads and the doorbells (the instructions, system call and
  // descriptor posts between them).
  TimePs between_ps = 0;
};
// `parts` must be valid (OrchestrationParams::validate).
ControllerFigures controller_figures(const config::ControllerParts& parts);

// Checks `parts` (each part's range and the sums' bounds), reporting under `pv`. False when
// they are not valid.
bool validate_parts(const config::ControllerParts& parts, Validator pv);

// The two directions of a modelled PCIe link a controller's reads and doorbells cross
// (HostLoopParts.pcie_link): toward the accelerator and leaving it.
struct PcieControlLink {
  const LinkModel* toward_accelerator = nullptr;
  const LinkModel* leaving_accelerator = nullptr;
};
// What the link added to one decision, beyond the parts' idle-link figures.
struct PcieControlWaits {
  TimePs reads_ps = 0;      // the telemetry reads' requests and completions, summed
  TimePs doorbells_ps = 0;  // the doorbell writes'
};
// A read the link cannot carry within PCIe's completion timeout, taken as the upper end of the
// base specification's default range (50 us to 50 ms), ends that long after it was issued: the
// model does not act on the error, the decision goes on. A doorbell (posted: no completion, no
// timeout) waits for the link; one the link never carries again is taken as lost after the same
// time.
constexpr TimePs kPcieCompletionTimeoutPs = 50'000'000'000;
// The waits of a decision of `f` (which has a pcie_link) whose reads begin at `reads_begin_ps`,
// over `link` as it is now (HostLoopParts.pcie_link states the rules; nothing is reserved): read
// i is issued when read i - 1 is back; its request waits for the packet on the wire toward the
// accelerator, its completion leaves half a round trip after the issue (plus the request's wait)
// behind the data accepted on the leaving direction (at most posted_queue_bytes of it); the
// doorbells follow the reads by between_ps and each waits for the packet on the wire toward the
// accelerator.
PcieControlWaits pcie_control_waits(const ControllerFigures& f, const PcieControlLink& link,
                                    TimePs reads_begin_ps);

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
