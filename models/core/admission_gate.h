// What a serving scheduler may do at a step, as a movement controller decides it (admission
// control, prefill pacing, backpressure). Plain C++: a workload that schedules requests asks its
// gate at every step's planning and reports each step's end; the gate's implementation lives
// with the controllers (accelerators/orchestration/thermal_admission.h).
#pragma once

#include <cstdint>

#include "models/core/time.h"

namespace tiersim {

struct AdmissionDecision {
  bool admit_new = true;    // waiting and swapped-out requests may enter the batch
  bool run_prefill = true;  // running requests still in their prefill may run a chunk
  // Backpressure: the step starts no earlier than this (0 or <= now: at once). The scheduler
  // waits idle until then and plans afresh.
  TimePs hold_until_ps = 0;
  // When the decision keeps everything from running (nothing to decode, prefill paused, no
  // admission), the scheduler waits until this time and asks again (> now).
  TimePs recheck_ps = 0;
  // Progress guarantee: while a step would run fewer than this many sequences, the oldest
  // running requests run their prefill and waiting ones are admitted whatever the flags say (a
  // gate that drains the batch to nothing while the stacks cannot cool below its threshold would
  // otherwise stop the run).
  uint32_t min_sequences = 0;
};

class AdmissionGate {
 public:
  virtual ~AdmissionGate() = default;
  // At a step's planning, time `now_ps`.
  virtual AdmissionDecision decide(TimePs now_ps) = 0;
  // A forward-pass step planned at `start_ps` ended at `end_ps` (idle waits are not steps).
  virtual void step_done(TimePs start_ps, TimePs end_ps) = 0;
};

}  // namespace tiersim
