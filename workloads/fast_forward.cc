#include "workloads/fast_forward.h"

#include <stdexcept>

namespace tiersim {

FastForwardWorkload::FastForwardWorkload(std::unique_ptr<Workload> inner, uint32_t every_steps,
                                         uint32_t warmup_steps)
    : inner_(std::move(inner)) {
  schedule_.every_steps = every_steps;
  schedule_.warmup_steps = warmup_steps;
  schedule_.total_steps = inner_->total_steps();
  if (schedule_.total_steps == 0 || every_steps == 0 || warmup_steps == 0) {
    throw std::logic_error("FastForwardWorkload: needs a step count, every_steps and warmup_steps");
  }
  skipped_.reserve(schedule_.total_steps);
}

bool FastForwardWorkload::next(Op& op) {
  if (between_steps_) {
    while (step_ < schedule_.total_steps && !schedule_.simulated(step_)) {
      if (!inner_->skip_step()) break;
      skipped_.push_back({step_, inner_->tokens_per_step(), inner_->sequences_per_step()});
      ++step_;
    }
  }
  if (!inner_->next(op)) return false;
  between_steps_ = op.last_of_step;
  if (op.last_of_step) ++step_;
  return true;
}

}  // namespace tiersim
