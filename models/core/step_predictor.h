// The seam between a serving workload and step prediction (run.fast_forward with a serving
// workload; the predictor is models/run/step_prediction.h). Plain C++.
#pragma once

#include <array>
#include <cstdint>

#include "models/core/time.h"

namespace tiersim {

// What a forward pass of a serving step is, as the predictor fits on it: the tokens it computes
// (the matrix ops' rows), the positions it samples (the LM head's rows), the KV tokens its
// attention reads, the KV block runs it reads (one memory request each), its attention work
// (query-key pairs: quadratic in a prefill chunk), and the weight bytes it reads (constant for a
// dense model; a MoE pass's depend on the experts its tokens reach).
struct StepFeatures {
  static constexpr size_t kCount = 6;
  std::array<double, kCount> x{};
};

class StepPredictor {
 public:
  virtual ~StepPredictor() = default;
  // Called when the workload has planned forward pass `step` at simulated time `now_ps` (its
  // start). True: the pass is simulated (the workload emits its ops as usual). False: it is
  // not; `*duration_ps` is its predicted duration (at least 1), its energy and stat increments
  // are booked, and the workload books the step as ended `*duration_ps` later on its own clock
  // (the simulated clock does not move). `tokens` is what the step will generate.
  virtual bool simulate(uint32_t step, const StepFeatures& f, uint32_t tokens, TimePs now_ps,
                        TimePs* duration_ps) = 0;
};

}  // namespace tiersim
