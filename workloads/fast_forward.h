// Steady-state fast-forward of a decode run (run.fast_forward): a workload that forwards a
// decode workload's op stream for the steps the schedule simulates and skips the others
// (Workload::skip_step), noting each skipped step's index, tokens and sequences. The run's
// driver (models/run/extrapolation.h) gives the skipped steps their durations, bytes and energy
// after the run.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/core/workload.h"

namespace tiersim {

// Which steps are simulated: the first `warmup_steps`, then every `every_steps`-th step after
// them, and the last.
struct FastForwardSchedule {
  uint32_t every_steps = 1;
  uint32_t warmup_steps = 1;
  uint32_t total_steps = 0;

  bool simulated(uint32_t step) const {
    return step < warmup_steps || step + 1 >= total_steps ||
           (step - warmup_steps) % every_steps == 0;
  }
};

// A step the run did not simulate.
struct SkippedStep {
  uint32_t step;
  uint32_t tokens, sequences;
};

class FastForwardWorkload : public Workload {
 public:
  // `inner` must know its step count (total_steps() > 0).
  FastForwardWorkload(std::unique_ptr<Workload> inner, uint32_t every_steps, uint32_t warmup_steps);

  void register_objects(ObjectTable& objects) override { inner_->register_objects(objects); }
  bool set_expert_rank(uint32_t rank) override { return inner_->set_expert_rank(rank); }
  void set_expert_cost_model(const ExpertCostModel* m) override {
    inner_->set_expert_cost_model(m);
  }
  bool next(Op& op) override;
  uint32_t total_steps() const override { return inner_->total_steps(); }
  bool complete() const override { return inner_->complete(); }
  void begin_step(TimePs now_ps) override { inner_->begin_step(now_ps); }
  void set_start(TimePs start_ps) override { inner_->set_start(start_ps); }
  void end_step(TimePs now_ps) override { inner_->end_step(now_ps); }
  uint32_t tokens_per_step() const override { return inner_->tokens_per_step(); }
  uint32_t sequences_per_step() const override { return inner_->sequences_per_step(); }
  uint32_t prefill_steps() const override { return inner_->prefill_steps(); }
  uint64_t max_activation_bytes() const override { return inner_->max_activation_bytes(); }
  void summarize(std::vector<SummaryItem>& summary) const override { inner_->summarize(summary); }
  void write_results(ResultSink& writer) const override { inner_->write_results(writer); }

  const FastForwardSchedule& schedule() const { return schedule_; }
  // The steps skipped so far, in step order.
  const std::vector<SkippedStep>& skipped() const { return skipped_; }

 private:
  std::unique_ptr<Workload> inner_;
  FastForwardSchedule schedule_;
  uint32_t step_ = 0;  // the next step to run or skip
  bool between_steps_ = true;
  std::vector<SkippedStep> skipped_;
};

}  // namespace tiersim
