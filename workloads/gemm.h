// GEMM microbenchmark: C (M x N) = A (M x K) x B (K x N), repeated. A and B stream from the
// home memory and C is written back once per repetition, as a library GEMM whose tiles reuse A
// and B on chip would (each operand crosses the memory interface once). Every repetition is one
// step, so per-step times are per-GEMM times.
#pragma once

#include "models/core/workload.h"
#include "workloads/transformer.h"

namespace tiersim {

class GemmWorkload : public Workload {
 public:
  GemmWorkload(uint64_t m, uint64_t k, uint64_t n, config::Dtype dtype, uint32_t repetitions);

  void register_objects(ObjectTable& objects) override;
  bool next(Op& op) override;
  uint32_t total_steps() const override { return repetitions_; }
  uint32_t tokens_per_step() const override { return 1; }
  uint64_t max_activation_bytes() const override { return 0; }

  uint64_t a_bytes() const { return dtype_bytes(dtype_, m_ * k_); }
  uint64_t b_bytes() const { return dtype_bytes(dtype_, k_ * n_); }
  uint64_t c_bytes() const { return dtype_bytes(dtype_, m_ * n_); }
  double flops() const { return 2.0 * double(m_) * double(k_) * double(n_); }

 private:
  const uint64_t m_, k_, n_;
  const config::Dtype dtype_;
  const uint32_t repetitions_;
  ObjectId a_, b_, c_;
  uint32_t step_ = 0;
};

}  // namespace tiersim
