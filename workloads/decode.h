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
#include <utility>
#include <vector>

#include "models/core/rng.h"
#include "models/core/workload.h"
#include "workloads/forward_pass.h"
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
  double page_locality = 0, layer_similarity = 0;
  uint64_t seed = 0;
  // Step 0 is the prompt's prefill (see DecodeScenario.prefill); micro-batches per layer.
  bool prefill = false;
  uint32_t micro_batches = 1;
  bool hidden_states = false;  // hidden-state checkpoints next to the KV
  // Pipeline parallelism (the shape's pp > 1): micro-batches per step.
  uint32_t pipeline_micro_batches = 1;

  bool speculative() const { return draft.has_value(); }
  bool sparse() const { return top_k_pages > 0; }
  // Tokens per sequence in the pass that routes MoE tokens (verify: gamma + 1).
  uint32_t target_queries() const { return speculative() ? gamma + 1 : 1; }
  // The longest a sequence's cache can grow (every draft accepted).
  uint64_t max_tokens() const { return uint64_t{context} + uint64_t{steps} * target_queries(); }
};

// KV as one object per layer and sequence: tokens contiguous, then (sparse) one digest per page.
class SequenceKv : public KvLayout {
 public:
  SequenceKv(uint64_t token_bytes, uint64_t capacity_tokens, uint32_t block_tokens, bool digests);
  // Hidden-state checkpoints: `hidden_token_bytes` per token next to each KV object, and the
  // FLOPs that recompute one KV byte from them.
  void set_hidden_states(uint64_t hidden_token_bytes, double recompute_flops_per_byte) {
    hidden_token_bytes_ = hidden_token_bytes;
    recompute_flops_per_byte_ = recompute_flops_per_byte;
  }
  // Registers `layer`'s objects for `sequences` sequences named prefix + "layerL.kv.seqS".
  void register_layer(ObjectTable& t, const std::string& prefix, uint32_t layer, uint32_t sequences,
                      const ObjectIntent& intent);
  uint64_t object_bytes() const;

  void read(uint32_t layer, uint32_t seq, uint64_t from, uint64_t to,
            std::vector<Operand>& out) const override;
  void write(uint32_t layer, uint32_t seq, uint64_t at, uint64_t count,
             std::vector<Operand>& out) const override;
  void read_digests(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end,
                    std::vector<Operand>& out) const override;
  void write_digests(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end,
                     std::vector<Operand>& out) const override;

 private:
  ObjectId object(uint32_t layer, uint32_t seq) const { return ObjectId(first_[layer] + seq); }
  uint64_t token_bytes_, capacity_tokens_;
  uint32_t block_tokens_;
  bool digests_;
  std::vector<uint32_t> first_;  // per layer: object id of sequence 0 (sequences consecutive)
  std::vector<uint32_t> first_hidden_;  // per layer: hidden-state object of sequence 0
  uint64_t hidden_token_bytes_ = 0;
  double recompute_flops_per_byte_ = 0;
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
  bool set_expert_rank(uint32_t rank) override;
  // Tensor-parallel rank `tp_rank` of pipeline stage `stage` of the shape's pp (node
  // stage x tp + tp_rank): each step runs pipeline_micro_batches passes over consecutive slices
  // of the batch, each [receive] + the stage's layers + [send] (kPipeRecv, kPipeSend) between
  // the same tensor-parallel rank of neighbouring stages. A stage after the first receives the
  // micro-batch's hidden states and residual (2 x hidden per token) from the stage before,
  // 1/tp of them per rank, then all-gathers them among its ranks (kAllGather; vLLM's
  // all_gather_group); the first receives the last stage's sampled tokens (8 bytes each, from
  // the second step on). Each stage sends on what the next needs (the last: the sampled tokens
  // back to the first, but not after the run's last step).
  bool set_pipeline_stage(uint32_t stage, uint32_t tp_rank) override;
  void set_expert_cost_model(const ExpertCostModel* m) override { target_.set_expert_cost(m); }
  bool next(Op& op) override;
  // Every step but the prompt's prefill pass: the step's ops are made and dropped, so the KV
  // lengths, MoE routing, sparse page selection and speculative acceptance follow the full
  // run's.
  bool skip_step() override;
  uint32_t total_steps() const override { return o_.steps + (o_.prefill ? 1 : 0); }
  uint32_t prefill_steps() const override { return o_.prefill ? 1 : 0; }
  uint32_t tokens_per_step() const override { return last_step_tokens_; }
  uint32_t sequences_per_step() const override { return o_.batch; }
  uint64_t max_activation_bytes() const override;
  void summarize(std::vector<SummaryItem>& summary) const override;
  void write_results(ResultSink& writer) const override;

  // Bytes needed in the home memory: weights (and draft weights) plus every KV object.
  static uint64_t footprint_bytes(const TransformerShape& s, const DecodeOptions& o);
  const TransformerShape& shape() const { return target_.shape(); }
  // Cached tokens of each sequence (the target's tail pointers).
  const std::vector<uint64_t>& sequence_tokens() const { return length_; }

  // MoE statistics so far: token-to-expert assignments per MoE layer and expert (row-major,
  // moe_layers x experts), and distinct active experts per step and MoE layer.
  const std::vector<uint64_t>& expert_load() const { return target_.expert_load(); }
  const std::vector<uint16_t>& active_experts() const { return target_.active_experts(); }
  // Speculative statistics: verify rounds x sequences, and the tokens they kept.
  uint64_t verified_sequences() const { return verified_; }
  uint64_t kept_tokens() const { return kept_; }

 private:
  void begin_pass();
  void finish_step();  // verify outcome, tail pointers, step counters
  bool next_staged(Op& op);
  // A pipeline stage's pass `pass_` ends (after its send, if any): the step's last ends the step.
  void end_staged_pass(Op& op);
  bool staged_receives() const;
  // Pipeline micro-batch k's sequences [first, end) of the batch.
  std::pair<uint32_t, uint32_t> micro_batch(uint32_t k) const;
  // Resets `op` to a pipeline stage's own op of `kind` (a receive, its gather, a send) in this
  // step, numbered next.
  void pipeline_op(Op& op, OpKind kind, OpClass op_class);
  bool staged_sends() const;

  const DecodeOptions o_;
  std::unique_ptr<Router> router_;
  ForwardPass target_;
  std::optional<ForwardPass> draft_;
  SequenceKv target_kv_;
  std::optional<SequenceKv> draft_kv_;
  uint32_t passes_ = 1;  // per step: gamma draft passes + verify, or 1
  uint32_t step_ = 0, pass_ = 0;
  bool in_pass_ = false;
  uint64_t next_id_ = 0;
  bool registered_ = false;
  uint32_t last_step_tokens_ = 0;

  // Pipeline parallelism: this stage, where the current pass is (its receive, its ops, its
  // send), and the traffic matrix its sends point at (pp x pp, one cell used).
  enum class StagePart : uint8_t { kReceive, kGather, kPass, kSend };
  bool staged_ = false;
  uint32_t stage_ = 0, tp_rank_ = 0;
  // One rank's slice of `tokens` tokens' hidden states and residual (vLLM sends 1/tp from each
  // tensor-parallel rank and all-gathers them on arrival).
  uint64_t hidden_slice_bytes(uint64_t tokens) const;
  StagePart part_ = StagePart::kReceive;
  uint64_t pass_tokens_ = 0, pass_sampled_ = 0;  // the current micro-batch's
  std::vector<uint64_t> pipe_traffic_;

  std::vector<uint64_t> length_;  // per sequence: cached tokens (target tail pointer)
  std::vector<PassSequence> plan_;
  Rng accept_rng_;
  uint64_t verified_ = 0, kept_ = 0, wasted_kv_bytes_ = 0;
};

}  // namespace tiersim
