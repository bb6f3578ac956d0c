// One operation of the workload's op stream, as the compute scheduler sees it: FLOPs in a dtype,
// the off-chip objects it reads or writes (streamed through SRAM), and the on-chip activation
// bytes it reads and writes. Fixed size: no allocation per op.
#pragma once

#include <array>
#include <cstdint>

#include "configs/tiersim.pb.h"
#include "models/core/ids.h"
#include "models/core/time.h"

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
  kRouter,            // MoE: router linear layer, softmax and top-k
  kExpertGateUp,      // MoE: the active routed experts' gate/up, one grouped kernel
  kExpertActivation,  // MoE: activation over every token-to-expert assignment
  kExpertDown,        // MoE: the active routed experts' down projections, one grouped kernel
  kSharedGateUp,      // MoE: shared experts (every token)
  kSharedActivation,
  kSharedDown,
  kMoeCombine,      // MoE: weight and sum each token's expert outputs (and shared output)
  kLatentAbsorb,    // MLA: queries into the latent space (W_UK per head)
  kLatentUnabsorb,  // MLA: latent attention output back to value heads (W_UV per head)
  kPageSelect,      // sparse attention: score page digests, pick the top-k pages
  kIdle,            // serving: nothing to run until `delay_ps` has passed (next arrival)
  kSwapOut,         // serving: a preempted sequence's KV to host memory over the host link
  kSwapIn,          // serving: a swapped sequence's KV back from host memory
  kHold,            // serving: a controller holds the next step for `delay_ps` (backpressure)
  kEpDispatch,      // expert parallelism: every token's hidden state to its experts' ranks
  kEpCombine,       // expert parallelism: the experts' outputs back to the tokens' ranks
  kPipeSend,        // pipeline parallelism: a micro-batch's hidden states (or sampled tokens)
                    // to the next stage (the first, from the last)
  kPipeRecv,        // pipeline parallelism: wait for the previous stage's send
  kPredictedPass,   // serving under run.fast_forward: a forward pass not simulated, standing
                    // for the whole step (its host gap included) for `delay_ps`
};

// How the compute engine times an op's arithmetic: matrix units with an efficiency that depends
// on the rows sharing one weight read, vector units, or the scale-up collective model.
// kWait: a fixed delay (delay_ps); kHostTransfer: host_bytes over the host link model;
// kPointToPoint: a send to, or a receive from, one other rank (`peer`) over the pod.
enum class OpClass : uint8_t { kMatrix, kVector, kCollective, kWait, kHostTransfer, kPointToPoint };
const char* op_kind_name(OpKind k);

enum class Access : uint8_t { kRead, kWrite };

struct Operand {
  ObjectId object;
  uint64_t offset_bytes = 0;  // within the object
  uint64_t bytes = 0;
  Access access = Access::kRead;
  // Grouped ops (one kernel over several weight sets, such as MoE experts) time each operand's
  // arithmetic on its own: `flops` consume this operand's bytes, with `rows` rows sharing each
  // element. Used only when Op::per_operand_compute is set.
  uint32_t rows = 0;
  double flops = 0;
};

struct Op {
  static constexpr size_t kMaxOperands = 4;

  OpId id;
  OpKind kind = OpKind::kEmbedding;
  StepIndex step;
  // Tenancy: whose step it is and which of that tenant's own steps (invalid tenant: no tenancy,
  // or an idle wait of the tenant scheduler).
  TenantId tenant;
  uint32_t tenant_step = 0;
  LayerId layer;  // invalid for ops outside the decoder layers
  OpClass op_class = OpClass::kVector;
  double flops = 0;
  config::Dtype compute_dtype = config::BF16;
  uint32_t rows = 1;              // kMatrix: M, the rows that share each weight element
  uint32_t max_queries = 1;       // kAttention: the most new tokens of any sequence
  uint64_t collective_bytes = 0;  // kCollective: the message (per rank, before the collective)
  // kEpDispatch / kEpCombine: bytes rank i sends rank j at traffic[i * traffic_ranks + j], a
  // matrix the workload owns, valid until its pass ends.
  // kPipeSend: the same, with the one message to `peer` (traffic[rank * traffic_ranks + peer]).
  const uint64_t* traffic = nullptr;
  uint32_t traffic_ranks = 0;
  // kEpDispatch / kEpCombine across scale-out domains (two tiers, DeepEP's internode scheme):
  // at [rank * domains + domain], the bytes rank sends to (dispatch) or receives from
  // (combine) each other domain, a token once per domain; null within one domain.
  const uint64_t* domain_traffic = nullptr;
  uint32_t peer = 0;                    // kPointToPoint: the rank sent to or received from
  uint64_t host_bytes = 0;              // kHostTransfer: bytes over the host link
  TimePs delay_ps = 0;                  // kWait: how long
  uint64_t activation_read_bytes = 0;   // on-chip (SRAM) inputs
  uint64_t activation_write_bytes = 0;  // on-chip (SRAM) outputs
  uint16_t operand_count = 0;
  bool per_operand_compute = false;  // see Operand::rows
  bool last_of_step = false;         // the step's token is complete when this op ends
  // kMatrix: the input activations are quantised to compute_dtype first (W8A8 GEMMs); a kernel
  // of its own unless the software stack fuses elementwise work.
  bool quantize_input = false;
  // kAttention and kPageSelect (whose digests are KV): KV elements per stored byte when the KV is
  // narrower than compute_dtype and the kernel dequantises it (1 for FP8 / INT8, 2 for INT4); 0:
  // read in the compute dtype.
  double kv_elements_per_byte = 0;

  // Up to kMaxOperands operands live in the op; a grouped op points at a list its workload owns,
  // valid until the workload's next call to next().
  const Operand& operand(size_t i) const { return external_ ? external_[i] : inline_[i]; }
  void add_operand(const Operand& o) { inline_[operand_count++] = o; }
  void set_operands(const Operand* list, uint16_t count) {
    external_ = list;
    operand_count = count;
  }

 private:
  std::array<Operand, kMaxOperands> inline_{};
  const Operand* external_ = nullptr;
};

}  // namespace tiersim
