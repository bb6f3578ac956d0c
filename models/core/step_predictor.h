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
  // start: the previous step's end). True: the pass is simulated (the workload emits its ops as
  // usual). False: it is not; `*duration_ps` is its predicted duration (at least 1), and the
  // workload emits one OpKind::kPredictedPass op of that length in place of the pass's ops (the
  // simulated clock moves through it, so replicas sharing the clock keep it). The predictor
  // books the pass's energy and stat increments when the step ends.
  virtual bool simulate(uint32_t step, const StepFeatures& f, TimePs now_ps,
                        TimePs* duration_ps) = 0;
};

}  // namespace tiersim
