// Step prediction for a serving run under run.fast_forward (the workload's side is
// models/core/step_predictor.h; the decode workload's fast-forward is models/run/extrapolation.h).
//
// Nearness of two passes: the Euclidean distance between their features' log(1 + x), so that
// a pass of 14 tokens is as far from one of 28 as 700 from 1,400.
// Which forward passes are simulated: the first `warmup_steps`; then at least one in every
// `every_steps` (counted in passes since the last simulated one); any whose features lie outside
// the box the simulated passes in the window span, widened by 5% of each feature's range on
// either side (a feature the window holds constant must match exactly); and any whose 8th
// nearest simulated pass is farther than `radius`. Every other pass is predicted: the workload
// waits its predicted duration on the simulated clock in place of it (so data-parallel and
// disaggregated replicas keep one clock, and a replica's idle and busy spans stay where they
// fall), and at its end its predicted increments replace what the wait booked itself (static
// energy over the span, anything that counts time). Each of a predicted pass's
// outputs (its duration, every component's energy by part, every cumulative stat's increment) is
// a local linear fit at its features over the `neighbours` simulated passes nearest to it
// (tricube weights on the distance, each column scaled by its largest difference from the pass
// among them, a small ridge on the slopes; a local mean when the fit is singular), which is one
// weighted sum of the neighbours' increments. An output whose neighbours are all non-negative is
// not predicted negative. The passes a simulation was due for by the every_steps rule are
// predicted first and their error kept: the reported prediction error is a sample of passes like
// the predicted ones (the warm-up and out-of-range passes are not in it). A pass simulated for
// want of near neighbours inside the box is predicted first as well, its error kept apart (the
// far passes': what a larger radius would have let through).
//
// The window keeps the last 512 simulated passes (fewer when their rows would pass 64 MiB, as on a
// system with many stats; never fewer than 4 x neighbours). Fidelity: a pass's duration and
// increments are taken to be smooth functions of its features, near the passes simulated; what the
// features do not describe (how a MoE pass's tokens spread over the experts beyond their weight
// bytes, where a request's KV blocks sit beyond their count of runs, the memory's state left by
// the step before) averages over the neighbours.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/core/step_predictor.h"
#include "models/run/extrapolation.h"

namespace tiersim {

// The weights h (training index, weight) of a local linear fit at `x` over the `k` training
// points nearest to it, as above: the fit's value at x is the sum of h_i y_i for any outputs
// y. Fills `h`; `train` must not be empty.
// Returns the distance (as above) of the `near`-th nearest (0: the k-th).
double local_linear_weights(const std::vector<StepFeatures>& train, const StepFeatures& x, size_t k,
                            std::vector<std::pair<size_t, double>>& h, size_t near = 0);

// The summary items of a prediction: passes simulated for being out of range, passes checked,
// and the checked passes' errors ((predicted - simulated) / simulated): mean, mean of the
// absolute values, 95th percentile of the absolute values, in %; then the same (but the signed
// mean) for the far passes: those simulated for want of near neighbours inside the box, whose
// prediction was made and measured too (what a larger radius would have let through).
std::vector<SummaryItem> prediction_items(uint32_t out_of_range, const std::vector<double>& errors,
                                          const std::vector<double>& far_errors);

class ServingStepPrediction : public StepPredictor {
 public:
  struct Params {
    uint32_t every_steps = 16;
    uint32_t warmup_steps = 32;
    uint32_t neighbours = 24;
    uint32_t window = 512;
    double margin = 0.05;  // of each feature's range in the window
    // A pass is simulated unless its near_neighbours-th nearest simulated pass is within
    // `radius` (Euclidean over the features' differences in log(1 + x)).
    uint32_t near_neighbours = 8;
    double radius = 0.2;
  };
  // The parameters run.fast_forward sets (validated), the others at their defaults.
  static Params params(const config::FastForward& ff);
  ServingStepPrediction(const std::vector<std::unique_ptr<Component>>& components,
                        StatsRegistry& stats, const Params& params);

  bool simulate(uint32_t step, const StepFeatures& f, TimePs now_ps, TimePs* duration_ps) override;
  // At a step's end (its record): a simulated pass's increments join the window; a predicted
  // pass's fit is booked, less what its wait booked itself.
  void on_step_end(const TokenRecord& rec);
  // After the run, which ended at simulated time `end_ps`: every step's record (the predicted
  // ones marked), the energy with the predicted passes', the summary items of the prediction;
  // then the predicted increments are added to the cumulative stats. Call once.
  Extrapolation finish(const std::vector<TokenRecord>& records, TimePs end_ps);
  // Passes simulated for being out of range so far; the checked passes' errors.
  uint32_t out_of_range() const { return novel_; }
  const std::vector<double>& errors() const { return errors_; }
  const std::vector<double>& far_errors() const { return far_errors_; }

 private:
  using Snapshot = CumulativeState::Snapshot;
  // The fit's outputs at `f` (the window must not be empty) into `out` (row layout).
  // Returns the distance of the near_neighbours-th nearest simulated pass.
  double predict(const StepFeatures& f, std::vector<double>& out);
  bool inside(const StepFeatures& f) const;
  void add_row(const StepFeatures& f, const std::vector<double>& row);

  const Params params_;
  CumulativeState state_;
  size_t width_;     // a row: duration, the stat values, then each component's energy parts
  uint32_t window_;  // passes kept (params_.window, or fewer for wide rows)
  // The window: features and rows of the last simulated passes (a ring once full).
  std::vector<StepFeatures> features_;
  std::vector<double> rows_;
  size_t next_row_ = 0;
  StepFeatures lo_, hi_;  // the window's box

  uint32_t since_simulated_ = 0, passes_ = 0, novel_ = 0;
  // The pass under way (simulated or predicted): its step, start snapshot and, when simulated,
  // its features and, for a checked one, its predicted duration (< 0: not checked); when
  // predicted, its fit.
  bool pending_ = false, pending_predicted_ = false;
  uint32_t pending_step_ = 0;
  StepFeatures pending_features_;
  double pending_prediction_ps_ = -1;
  bool pending_far_ = false;  // its prediction was made for want of near neighbours
  std::vector<double> pending_fit_;
  Snapshot start_, end_;
  std::vector<double> row_, fit_;
  std::vector<std::pair<size_t, double>> h_;

  std::vector<double> errors_;             // (predicted - simulated) / simulated per checked pass
  std::vector<double> far_errors_;         // the same per far pass
  std::vector<uint32_t> predicted_steps_;  // in order
  std::vector<double> extra_stats_;
  std::vector<EnergyLedger> extra_energy_;
  bool finished_ = false;
};

}  // namespace tiersim
