// Decoder-only transformer shapes (dense: Llama, GPT-3, OPT, BLOOM, GPT-J families; MoE:
// Mixtral, DeepSeek-V3 with multi-head latent attention), sharded
// over `tp` tensor-parallel ranks, and the exact FLOPs and bytes of each op of one decode step
// on one rank. Plain C++: unit-tested against hand formulas.
//
// Conventions (documented in docs/workloads.md):
// - A GEMM of m x k by k x n costs 2mkn FLOPs.
// - Decode attention for a sequence with L cached tokens (including the new one) costs
//   4 * heads * head_dim * L (QK^T and AV) plus 5 * heads * L for the softmax (ALiBi adds
//   heads * L for the bias).
// - Norms cost 4 FLOPs per element (RMSNorm: square, accumulate, scale, weight; LayerNorm the
//   same count), RoPE 3 per rotated element, SiLU-and-multiply 5 per element (GeLU 8),
//   residual adds and bias adds 1.
// - Sizes in bytes round up to whole bytes (int4 packs two elements per byte). Quantised
//   weights carry one scale per quant_group_size inputs per output; norms and biases are kept
//   in the activation dtype; the embedding and LM head in the weight dtype.
// - Tensor parallelism (Megatron): QKV and gate/up split by columns (heads, FFN), out and down
//   by rows, each followed by an all-reduce of the layer output; vocab-parallel embedding (an
//   all-reduce) and LM head (an all-gather of the logits). KV heads split p ways when
//   kv_heads >= p, else each rank keeps one replicated KV head. Sizes below are per rank.
// - Expert parallelism (ep ranks, tp 1): every weight but the routed experts is replicated; a
//   rank holds experts / ep of them; each MoE layer dispatches its tokens to the experts' ranks
//   and combines the outputs back (kEpDispatch, kEpCombine) around the expert kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/dtype.h"
#include "models/core/op.h"

namespace tiersim {

struct TransformerShape {
  uint32_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  bool tied_embeddings = false;
  config::MlpKind mlp = config::SWIGLU;
  config::NormKind norm = config::RMSNORM;
  config::PositionalKind positional = config::ROPE;
  uint32_t max_positions = 0;
  bool linear_bias = false;
  bool parallel_attn_mlp = false;  // GPT-J: one norm, attention and MLP read the same input
  bool embedding_norm = false;     // BLOOM: a norm after the embedding
  uint32_t quant_group = 0;        // 0: no per-group scales
  config::Dtype weight_dtype = config::BF16, kv_dtype = config::BF16,
                activation_dtype = config::BF16, scale_dtype = config::FP16;
  uint32_t quant_group_outputs = 1;
  config::Dtype embedding_dtype = config::BF16;  // embedding table and LM head
  config::Dtype gemm_dtype = config::BF16;       // the linear layers' compute dtype
  uint32_t tp = 1;                               // tensor-parallel ranks
  // Expert-parallel ranks: each holds experts / ep whole routed experts (experts_rank()) and
  // runs the rest data-parallel on its own sequences (tp is then 1).
  uint32_t ep = 1;
  uint32_t redundant_experts = 0;  // extra expert copies over the ep ranks
  // Pipeline stages (decode, every rank simulated): stage s holds stage_layers(s), stage 0 the
  // embedding too, the last stage the final norm and the LM head (and, tied, the embedding).
  uint32_t pp = 1;
  bool ep_dispatch_fp8 = false;  // the dispatch in FP8 with per-128 FP32 scales (DeepEP)
  // Expert-parallel ranks per scale-out domain when the ranks span several (system.pod.
  // scale_out): a token then crosses to another domain once (two tiers); 0: one domain.
  uint32_t ep_domain_nodes = 0;
  // Mixture of experts (experts == 0: dense). Expert FFNs split tp ways like the dense FFN.
  uint32_t experts = 0, experts_per_token = 0, expert_ffn = 0, shared_experts = 0,
           shared_expert_ffn = 0, first_moe_layer = 0;
  // Multi-head latent attention (latent == false: kv_heads and head_dim apply). The latent cache
  // and the down projections (W_DQ, W_DKV) are replicated on every rank; heads split tp ways.
  bool latent = false;
  uint32_t kv_lora_rank = 0, q_lora_rank = 0, rope_head_dim = 0, nope_head_dim = 0, v_head_dim = 0;

  // Validates the model and, when `parallelism` is given, that it splits `tp` ways.
  static void validate(const config::TransformerModel& m, Validator& v);
  static void validate_parallelism(const config::TransformerModel& m, const config::Parallelism& p,
                                   Validator& v);
  // The workload's model section (required) and its parallelism, at their paths from the root.
  static void validate_workload_model(const config::Config& root, Validator& v);
  static TransformerShape from_config(const config::TransformerModel& m,
                                      const config::Parallelism& p = {});
  // The workload's model sharded by its parallelism (`root` valid).
  static TransformerShape of_workload(const config::Config& root) {
    TransformerShape s = from_config(root.workload().model(), root.workload().parallelism());
    const config::Pod& pod = root.system().pod();
    if (s.ep > 1 && pod.has_scale_out() && s.ep > pod.scale_out().domain_nodes()) {
      s.ep_domain_nodes = pod.scale_out().domain_nodes();
    }
    return s;
  }

  bool moe() const { return experts > 0; }
  bool moe_layer(uint32_t layer) const { return moe() && layer >= first_moe_layer; }
  uint32_t moe_layers() const { return moe() ? layers - first_moe_layer : 0; }

  // Per-rank dimensions.
  uint32_t heads_rank() const { return heads / tp; }
  uint32_t kv_heads_rank() const { return kv_heads >= tp ? kv_heads / tp : 1; }
  uint64_t ffn_rank() const { return ffn / tp; }
  uint64_t vocab_rank() const { return (uint64_t{vocab} + tp - 1) / tp; }
  // Query width per rank (MLA: heads x (nope + rope) dims); K and V width per rank (GQA).
  uint64_t q_dim() const {
    return uint64_t{heads_rank()} * (latent ? nope_head_dim + rope_head_dim : head_dim);
  }
  uint64_t kv_dim() const { return uint64_t{kv_heads_rank()} * head_dim; }
  // MLA: elements cached per token and layer (latent plus rotary key).
  uint64_t latent_dim() const { return uint64_t{kv_lora_rank} + rope_head_dim; }
  uint64_t expert_ffn_rank() const { return expert_ffn / tp; }
  // Routed expert copies this rank holds (all experts without expert parallelism).
  uint32_t experts_rank() const { return (experts + redundant_experts) / ep; }
  uint64_t shared_ffn_rank() const { return uint64_t{shared_experts} * shared_expert_ffn / tp; }
  uint64_t mlp_mats() const { return mlp == config::SWIGLU ? 2 : 1; }
  // Elements of one norm's parameters (LayerNorm has a bias too).
  uint64_t norm_params() const { return norm == config::LAYERNORM ? 2ull * hidden : hidden; }
  uint32_t norms_per_layer() const { return parallel_attn_mlp ? 1 : 2; }

  // Bytes of a weight matrix with `in` inputs and `out` outputs: elements, group scales, bias.
  uint64_t matrix_bytes(uint64_t in, uint64_t out, bool bias) const;
  // MLA: W_DQ, q norm, W_UQ/W_QR, W_DKV/W_KR and the kv norm.
  uint64_t qkv_weight_bytes() const;
  uint64_t out_weight_bytes() const;       // the row-parallel bias lives on rank 0 only; counted
  uint64_t absorb_weight_bytes() const;    // MLA: W_UK (latent -> per-head keys)
  uint64_t unabsorb_weight_bytes() const;  // MLA: W_UV (latent -> per-head values)
  uint64_t attention_weight_bytes() const;
  uint64_t gate_up_weight_bytes() const;  // gate + up (SwiGLU) or up only (GeLU)
  uint64_t down_weight_bytes() const;
  uint64_t router_weight_bytes() const;   // activation dtype, not quantised
  uint64_t expert_gate_up_bytes() const;  // one routed expert's shard
  uint64_t expert_down_bytes() const;
  uint64_t expert_bytes() const { return expert_gate_up_bytes() + expert_down_bytes(); }
  uint64_t shared_gate_up_bytes() const;  // all shared experts, as one MLP
  uint64_t shared_down_bytes() const;
  uint64_t norm_weight_bytes() const;
  uint64_t mlp_weight_bytes(uint32_t layer) const;  // dense MLP, or router + experts + shared
  uint64_t layer_weight_bytes(uint32_t layer) const;
  uint64_t embedding_bytes() const;       // vocab-parallel shard
  uint64_t position_table_bytes() const;  // LEARNED positions (replicated)
  uint64_t lm_head_bytes() const;         // 0 when tied to the embedding
  uint64_t total_weight_bytes() const;    // one rank's weights (every stage's)
  // Pipeline stage `stage`'s layers [first, end): L / pp each, and the L mod pp left over one
  // each to the stages just before the last (vLLM's get_pp_indices), and its weights.
  struct LayerRange {
    uint32_t first = 0, end = 0;
  };
  LayerRange stage_layers(uint32_t stage) const;
  uint64_t stage_weight_bytes(uint32_t stage) const;
  // K and V of one token in one layer (this rank's KV heads).
  uint64_t kv_bytes_per_token_per_layer() const;
  uint64_t kv_bytes_per_token() const { return kv_bytes_per_token_per_layer() * layers; }
  // Bytes of one all-reduce message of the layer output for `batch` tokens.
  uint64_t hidden_bytes(uint64_t batch) const {
    return dtype_bytes(activation_dtype, batch * hidden);
  }

  // The ops of one layer of one decode step, in order, for this shape.
  std::vector<OpKind> layer_ops(uint32_t layer = 0) const;
};

struct OpCost {
  OpClass op_class = OpClass::kVector;
  double flops = 0;
  uint64_t rows = 1;            // kMatrix: rows sharing each weight element
  uint64_t weight_bytes = 0;    // streamed from the weights' home
  uint64_t kv_read_bytes = 0;   // streamed from the KV cache
  uint64_t kv_write_bytes = 0;  // appended to the KV cache
  uint64_t activation_read_bytes = 0;
  uint64_t activation_write_bytes = 0;
  uint64_t collective_bytes = 0;  // kCollective: per-rank message
};

// Cost of op `kind` on one rank for `batch` sequences that each attend over `kv_tokens` tokens
// (the cached context plus the token being generated). MoE ops: for kExpertGateUp and
// kExpertDown `batch` is the rows routed to one expert (the cost of that expert); for
// kExpertActivation it is the token-to-expert assignments; for the others the tokens.
//
// `queries` (attention only): new tokens per sequence attending at once (speculative verify:
// gamma + 1; a prefill chunk). kv_tokens then counts them too; query i of the q attends to the
// cached kv_tokens - q tokens and to new tokens 1..i (causal), and the cached ones are read once.
// Every other op takes `batch` as its token count.
OpCost op_cost(const TransformerShape& s, OpKind kind, uint64_t batch, uint64_t kv_tokens,
               uint64_t queries = 1);

// Sparse attention's page selection for one sequence: score `pages` page digests (a min and a
// max key vector each, the size of one token's KV) for `queries` queries: 4 FLOPs per query
// element per page (two products, a max, a sum) plus 5 per page for the top-k.
OpCost page_select_cost(const TransformerShape& s, uint64_t pages, uint64_t queries);

}  // namespace tiersim
