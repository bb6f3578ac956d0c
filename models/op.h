// One operation of the workload's op stream, as the compute scheduler sees it: FLOPs in a dtype,
// the off-chip objects it reads or writes (streamed through SRAM), and the on-chip activation
// bytes it reads and writes. Fixed size: no allocation per op.
#pragma once

#include <array>
#include <cstdint>

#include "configs/tiersim.pb.h"
#include "models/ids.h"

namespace tiersim {

enum class OpKind : uint8_t {
  kEmbedding,
  kAttnNorm,
  kQkvProj,
  kRope,
  kAttention,
  kOutProj,
  kAttnResidual,
  kMlpNorm,
  kGateUpProj,  // SwiGLU: gate and up; GeLU MLP: up only
  kActivation,
  kDownProj,
  kMlpResidual,
  kFinalNorm,
  kLmHead,
  kAllReduce,  // tensor-parallel all-reduce of a layer's partial output
  kAllGather,  // tensor-parallel all-gather (vocab-parallel logits)
  kGemm,       // a standalone GEMM (microbenchmark workload)
  kEmbeddingNorm,
};

// How the compute engine times an op's arithmetic: matrix units with an efficiency that depends
// on the rows sharing one weight read, vector units, or the scale-up collective model.
enum class OpClass : uint8_t { kMatrix, kVector, kCollective };
const char* op_kind_name(OpKind k);

enum class Access : uint8_t { kRead, kWrite };

struct Operand {
  ObjectId object;
  uint64_t offset_bytes = 0;  // within the object
  uint64_t bytes = 0;
  Access access = Access::kRead;
};

struct Op {
  static constexpr size_t kMaxOperands = 4;

  OpId id;
  OpKind kind = OpKind::kEmbedding;
  StepIndex step;
  LayerId layer;  // invalid for ops outside the decoder layers
  OpClass op_class = OpClass::kVector;
  double flops = 0;
  config::Dtype compute_dtype = config::BF16;
  uint32_t rows = 1;                   // kMatrix: M, the rows that share each weight element
  uint64_t collective_bytes = 0;       // kCollective: the message (per rank, before the collective)
  uint64_t activation_read_bytes = 0;  // on-chip (SRAM) inputs
  uint64_t activation_write_bytes = 0;  // on-chip (SRAM) outputs
  std::array<Operand, kMaxOperands> operands{};
  uint8_t operand_count = 0;
  bool last_of_step = false;  // the step's token is complete when this op ends

  void add_operand(const Operand& o) { operands[operand_count++] = o; }
};

}  // namespace tiersim
