// Static-batch decode of a transformer (dense or MoE): `batch` sequences whose prompts
// (`context` tokens) are already in the KV cache generate tokens for `steps` steps. Prefill is
// not simulated (the prompt's KV is assumed present at step 0).
//
// Objects: per layer its attention weights (qkv; MLA adds kv_up holding W_UK then W_UV), out,
// its norms, and either its dense MLP (gate_up, down) or its MoE block: the router, one object
// per routed expert (gate/up then down) and the shared experts; per layer and sequence its KV
// cache (`layerN.kv.seqS`, paged in kv_block_tokens pages, sized for the longest the run can
// make it; with sparse attention each page's digest follows the token area); then the
// embedding table, the position table (LEARNED), the final norm and the LM head (unless tied).
// A draft model (speculative decoding) registers the same set under `draft.` with class
// draft_weight. Under tensor parallelism every object is this rank's shard and the op stream
// carries the collectives (see transformer.h).
//
// A step is one pass of the model over every sequence (one new token each), or with
// speculative decoding gamma draft passes then one target verify pass of gamma + 1 queries per
// sequence, after which each sequence keeps A + 1 tokens (A accepted with probability alpha
// each, until the first rejection) and its tail pointer moves back over the rest. Each
// sequence tracks its own length, so attention reads exactly its cached tokens.
//
// MoE: at each MoE layer the router assigns each token its experts; the grouped expert ops read
// only the experts with at least one token, each once, with that expert's token count as the
// GEMM's rows. Expert load (assignments per layer and expert) and active experts per layer and
// step are recorded and written to /workload/moe.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "models/rng.h"
#include "models/workload.h"
#include "workloads/moe_router.h"
#include "workloads/transformer.h"

namespace tiersim {

struct DecodeOptions {
  uint32_t batch = 1, context = 0, steps = 1;
  uint32_t kv_block_tokens = 16;
  // Speculative decoding (draft set): gamma drafted tokens, acceptance rate alpha.
  std::optional<TransformerShape> draft;
  uint32_t gamma = 0;
  double alpha = 0;
  // Sparse attention of the target model (top_k_pages > 0).
  uint32_t sink_tokens = 0, window_tokens = 0, top_k_pages = 0;
  double page_locality = 0;
  uint64_t seed = 0;

  bool speculative() const { return draft.has_value(); }
  bool sparse() const { return top_k_pages > 0; }
  // Tokens per sequence in the pass that routes MoE tokens (verify: gamma + 1).
  uint32_t target_queries() const { return speculative() ? gamma + 1 : 1; }
  // The longest a sequence's cache can grow (every draft accepted).
  uint64_t max_tokens() const { return uint64_t{context} + uint64_t{steps} * target_queries(); }
};

class DecodeWorkload : public Workload {
 public:
  // `router` is required for a MoE shape (batch: the target pass's tokens) and ignored
  // otherwise.
  DecodeWorkload(const TransformerShape& shape, const DecodeOptions& options,
                 std::unique_ptr<Router> router = nullptr);
  DecodeWorkload(const TransformerShape& shape, uint32_t batch, uint32_t context_tokens,
                 uint32_t steps, std::unique_ptr<Router> router = nullptr);

  void register_objects(ObjectTable& objects) override;
  bool next(Op& op) override;
  uint32_t total_steps() const override { return o_.steps; }
  uint32_t tokens_per_step() const override { return last_step_tokens_; }
  uint32_t sequences_per_step() const override { return o_.batch; }
  uint64_t max_activation_bytes() const override;
  void summarize(std::vector<SummaryItem>& summary) const override;
  void write_results(ResultWriter& writer) const override;

  // Bytes needed in the home memory: weights (and draft weights) plus every KV object.
  static uint64_t footprint_bytes(const TransformerShape& s, const DecodeOptions& o);
  const TransformerShape& shape() const { return target_.shape; }
  // Cached tokens of each sequence (the target's tail pointers).
  const std::vector<uint64_t>& sequence_tokens() const { return length_; }

  // MoE statistics so far: token-to-expert assignments per MoE layer and expert (row-major,
  // moe_layers x experts), and distinct active experts per step and MoE layer.
  const std::vector<uint64_t>& expert_load() const { return load_; }
  const std::vector<uint16_t>& active_experts() const { return active_per_layer_step_; }
  // Speculative statistics: verify rounds x sequences, and the tokens they kept.
  uint64_t verified_sequences() const { return verified_; }
  uint64_t kept_tokens() const { return kept_; }

 private:
  struct LayerObjects {
    ObjectId attn_norm, qkv, kv_up, out, mlp_norm, gate_up, down;
    ObjectId router, shared;    // MoE layers
    uint32_t first_expert = 0;  // object id of expert 0; experts are consecutive
    uint32_t first_kv = 0;      // object id of sequence 0's KV; sequences are consecutive
  };
  struct Model {
    TransformerShape shape;
    std::vector<OpKind> dense_ops, moe_ops, head_ops, tail_ops;
    ObjectId embedding, positions, embedding_norm, final_norm, lm_head;
    std::vector<LayerObjects> layers;
    bool sparse = false;  // this model's attention is sparse
  };
  void init_model(Model& m, const TransformerShape& shape, bool sparse);
  void register_model(ObjectTable& t, Model& m, const std::string& prefix, ObjectClass weights);
  uint64_t kv_token_area_bytes(const Model& m) const;
  void fill(Op& op, const Model& m, OpKind kind, uint32_t layer);
  void fill_attention(Op& op, const Model& m, const LayerObjects& lo, uint32_t layer);
  void fill_page_select(Op& op, const Model& m, const LayerObjects& lo, uint32_t layer);
  void select_pages(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end);
  void route(uint32_t layer);  // runs the router and builds the grouped expert operands
  void end_step();             // verify outcome, tail pointers, step counters

  const DecodeOptions o_;
  Model target_, draft_;
  uint32_t passes_ = 1;  // per step: gamma draft passes + verify, or 1
  // Cursor: step, pass; then head ops, layer and op within it, tail ops.
  uint32_t step_ = 0, pass_ = 0;
  uint32_t pos_ = 0;  // head: [0, head); layers: head; tail: head + 1 + index
  uint32_t layer_ = 0, layer_op_ = 0;
  uint64_t next_id_ = 0;
  bool registered_ = false;
  uint32_t last_step_tokens_ = 0;

  // Per sequence: cached tokens (target tail pointer).
  std::vector<uint64_t> length_;
  std::vector<Operand> operands_;  // attention and page-select operand lists
  Rng accept_rng_, page_rng_;
  uint64_t verified_ = 0, kept_ = 0, wasted_kv_bytes_ = 0;

  // Sparse attention: selected middle pages per (layer, sequence), top_k each, and how many.
  std::vector<uint32_t> selected_;
  std::vector<uint32_t> selected_count_;
  std::vector<uint32_t> scratch_;
  uint64_t pages_read_ = 0, pages_kept_ = 0, pages_selected_ = 0;

  // MoE state, sized once.
  std::unique_ptr<Router> router_;
  std::vector<uint16_t> routed_;  // tokens x k experts of the current layer
  std::vector<uint32_t> tokens_per_expert_;
  std::vector<Operand> up_operands_, down_operands_;
  double up_flops_ = 0, down_flops_ = 0;
  std::vector<uint64_t> load_;
  std::vector<uint16_t> active_per_layer_step_;
};

}  // namespace tiersim
