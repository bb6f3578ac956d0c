#include "models/core/op.h"

namespace tiersim {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kEmbedding:
      return "embedding";
    case OpKind::kAttnNorm:
      return "attn_norm";
    case OpKind::kQkvProj:
      return "qkv_proj";
    case OpKind::kRope:
      return "rope";
    case OpKind::kAttention:
      return "attention";
    case OpKind::kOutProj:
      return "out_proj";
    case OpKind::kAttnResidual:
      return "attn_residual";
    case OpKind::kMlpNorm:
      return "mlp_norm";
    case OpKind::kGateUpProj:
      return "gate_up_proj";
    case OpKind::kActivation:
      return "activation";
    case OpKind::kDownProj:
      return "down_proj";
    case OpKind::kMlpResidual:
      return "mlp_residual";
    case OpKind::kFinalNorm:
      return "final_norm";
    case OpKind::kLmHead:
      return "lm_head";
    case OpKind::kAllReduce:
      return "all_reduce";
    case OpKind::kAllGather:
      return "all_gather";
    case OpKind::kGemm:
      return "gemm";
    case OpKind::kEmbeddingNorm:
      return "embedding_norm";
    case OpKind::kRouter:
      return "router";
    case OpKind::kExpertGateUp:
      return "expert_gate_up";
    case OpKind::kExpertActivation:
      return "expert_activation";
    case OpKind::kExpertDown:
      return "expert_down";
    case OpKind::kSharedGateUp:
      return "shared_gate_up";
    case OpKind::kSharedActivation:
      return "shared_activation";
    case OpKind::kSharedDown:
      return "shared_down";
    case OpKind::kMoeCombine:
      return "moe_combine";
    case OpKind::kLatentAbsorb:
      return "latent_absorb";
    case OpKind::kLatentUnabsorb:
      return "latent_unabsorb";
    case OpKind::kPageSelect:
      return "page_select";
    case OpKind::kIdle:
      return "idle";
    case OpKind::kSwapOut:
      return "swap_out";
    case OpKind::kHold:
      return "hold";
    case OpKind::kSwapIn:
      return "swap_in";
    case OpKind::kEpDispatch:
      return "ep_dispatch";
    case OpKind::kEpCombine:
      return "ep_combine";
    case OpKind::kPipeSend:
      return "pipe_send";
    case OpKind::kPipeRecv:
      return "pipe_recv";
    case OpKind::kPredictedPass:
      return "predicted_pass";
  }
  return "unknown";
}

}  // namespace tiersim
