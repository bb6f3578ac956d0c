// Static-batch decode of a transformer (dense or MoE): `batch` sequences whose prompts
// (`context` tokens) are already in the KV cache generate one token each per step for `steps`
// steps.
//
// Objects: per layer its attention weights (qkv; MLA adds kv_up holding W_UK then W_UV), out,
// its norms, its KV cache (all sequences, sized for the last step) and either its dense MLP
// (gate_up, down) or its MoE block: the router, one object per routed expert (gate/up then
// down) and the shared experts; then the embedding table, the position table (LEARNED), the
// final norm and the LM head (unless tied). Under tensor parallelism every object is this rank's
// shard and the op stream carries the collectives (see transformer.h). KV layout is token-major
// ([token][sequence]), so step s reads the first batch x (context + s) tokens of each layer's
// cache in one range and appends batch tokens after them. Prefill is not simulated (the
// prompt's KV is assumed present at step 0).
//
// MoE: at each MoE layer the router assigns each token its experts; the grouped expert ops read
// only the experts with at least one token, each once, with that expert's token count as the
// GEMM's rows. Expert load (assignments per layer and expert) and active experts per layer and
// step are recorded and written to /workload/moe.
#pragma once

#include <memory>
#include <vector>

#include "models/workload.h"
#include "workloads/moe_router.h"
#include "workloads/transformer.h"

namespace tiersim {

class DecodeWorkload : public Workload {
 public:
  // `router` is required for a MoE shape and ignored otherwise.
  DecodeWorkload(const TransformerShape& shape, uint32_t batch, uint32_t context_tokens,
                 uint32_t steps, std::unique_ptr<Router> router = nullptr);

  void register_objects(ObjectTable& objects) override;
  bool next(Op& op) override;
  uint32_t total_steps() const override { return steps_; }
  uint32_t tokens_per_step() const override { return batch_; }
  uint64_t max_activation_bytes() const override;
  void summarize(std::vector<SummaryItem>& summary) const override;
  void write_results(ResultWriter& writer) const override;

  // Bytes needed in the home memory: weights plus the KV cache at the last step.
  static uint64_t footprint_bytes(const TransformerShape& s, uint64_t batch, uint64_t context,
                                  uint64_t steps);
  const TransformerShape& shape() const { return shape_; }

  // MoE statistics so far: token-to-expert assignments per MoE layer and expert (row-major,
  // moe_layers x experts), and distinct active experts per step and MoE layer.
  const std::vector<uint64_t>& expert_load() const { return load_; }
  const std::vector<uint16_t>& active_experts() const { return active_per_layer_step_; }

 private:
  struct LayerObjects {
    ObjectId attn_norm, qkv, kv_up, out, mlp_norm, gate_up, down, kv;
    ObjectId router, shared;    // MoE layers
    uint32_t first_expert = 0;  // object id of expert 0; experts are consecutive
  };
  void fill(Op& op, OpKind kind, uint32_t layer);
  void route(uint32_t layer);  // runs the router and builds the grouped expert operands

  const TransformerShape shape_;
  const uint32_t batch_, context_, steps_;
  const std::vector<OpKind> dense_ops_, moe_ops_;
  std::vector<OpKind> head_ops_, tail_ops_;  // before and after the layers
  ObjectId embedding_, positions_, embedding_norm_, final_norm_, lm_head_;
  std::vector<LayerObjects> layers_;
  // Cursor: step; then head ops, layer and op within it, tail ops.
  uint32_t step_ = 0;
  uint32_t pos_ = 0;  // head: [0, head); layers: head; tail: head + 1 + index
  uint32_t layer_ = 0, layer_op_ = 0;
  uint64_t next_id_ = 0;
  bool registered_ = false;

  // MoE state, sized once.
  std::unique_ptr<Router> router_;
  std::vector<uint16_t> routed_;  // batch x k experts of the current layer
  std::vector<uint32_t> tokens_per_expert_;
  std::vector<Operand> up_operands_, down_operands_;
  double up_flops_ = 0, down_flops_ = 0;
  std::vector<uint64_t> load_;
  std::vector<uint16_t> active_per_layer_step_;
};

}  // namespace tiersim
