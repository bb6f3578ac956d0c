// Dense decoder-only transformer (Llama family) shapes, and the exact FLOPs and bytes of each
// op of one decode step. Plain C++: unit-tested against hand formulas.
//
// Conventions (documented in docs/workloads.md):
// - A GEMM of m x k by k x n costs 2mkn FLOPs.
// - Decode attention for a sequence with L cached tokens (including the new one) costs
//   4 * heads * head_dim * L (QK^T and AV) plus 5 * heads * L for the softmax.
// - Norms cost 4 FLOPs per element (RMSNorm: square, accumulate, scale, weight; LayerNorm the
//   same count), RoPE 3 per rotated element, SiLU-and-multiply 5 per element (GeLU 8),
//   residual adds 1.
// - Sizes in bytes round up to whole bytes (int4 packs two elements per byte); group scales of
//   quantised formats are not counted yet.
#pragma once

#include <cstdint>

#include "configs/tiersim.pb.h"
#include "models/config_error.h"
#include "models/op.h"

namespace tiersim {

// Bits per element of a dtype (0 for DTYPE_UNSPECIFIED).
uint32_t dtype_bits(config::Dtype d);
// Bytes of `elements` elements of dtype `d`, rounded up.
uint64_t dtype_bytes(config::Dtype d, uint64_t elements);

struct TransformerShape {
  uint32_t layers, hidden, heads, kv_heads, head_dim, ffn, vocab;
  bool tied_embeddings;
  config::MlpKind mlp;
  config::NormKind norm;
  config::Dtype weight_dtype, kv_dtype, activation_dtype;

  static void validate(const config::TransformerModel& m, Validator& v);
  static TransformerShape from_config(const config::TransformerModel& m);

  uint64_t q_dim() const { return uint64_t{heads} * head_dim; }
  uint64_t kv_dim() const { return uint64_t{kv_heads} * head_dim; }
  // Elements of one norm's parameters (LayerNorm has a bias too).
  uint64_t norm_params() const { return norm == config::LAYERNORM ? 2ull * hidden : hidden; }

  uint64_t qkv_weight_bytes() const;
  uint64_t out_weight_bytes() const;
  uint64_t gate_up_weight_bytes() const;  // gate + up (SwiGLU) or up only (GeLU)
  uint64_t down_weight_bytes() const;
  uint64_t norm_weight_bytes() const;
  uint64_t layer_weight_bytes() const;
  uint64_t embedding_bytes() const;
  uint64_t lm_head_bytes() const;  // 0 when tied to the embedding
  uint64_t total_weight_bytes() const;
  // K and V of one token in one layer.
  uint64_t kv_bytes_per_token_per_layer() const;
  uint64_t kv_bytes_per_token() const { return kv_bytes_per_token_per_layer() * layers; }
};

// The ops of one layer of one decode step, in order.
constexpr OpKind kLayerOps[] = {OpKind::kAttnNorm,  OpKind::kQkvProj,    OpKind::kRope,
                                OpKind::kAttention, OpKind::kOutProj,    OpKind::kAttnResidual,
                                OpKind::kMlpNorm,   OpKind::kGateUpProj, OpKind::kActivation,
                                OpKind::kDownProj,  OpKind::kMlpResidual};
constexpr int kOpsPerLayer = sizeof(kLayerOps) / sizeof(kLayerOps[0]);

struct OpCost {
  double flops = 0;
  uint64_t weight_bytes = 0;    // streamed from the weights' home
  uint64_t kv_read_bytes = 0;   // streamed from the KV cache
  uint64_t kv_write_bytes = 0;  // appended to the KV cache
  uint64_t activation_read_bytes = 0;
  uint64_t activation_write_bytes = 0;
};

// Cost of op `kind` for `batch` sequences that each attend over `kv_tokens` tokens (the cached
// context plus the token being generated).
OpCost op_cost(const TransformerShape& s, OpKind kind, uint64_t batch, uint64_t kv_tokens);

}  // namespace tiersim
