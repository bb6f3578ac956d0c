// One forward pass of a transformer over a batch whose sequences each add `queries` new tokens
// on top of `cached` ones: the op stream shared by static decode (plain, speculative draft and
// verify passes) and serving (decode tokens and prefill chunks in one step).
//
// Weights: ModelObjects registers a model's weight objects (per layer qkv, kv_up (MLA), out,
// norms, dense gate_up/down or router, shared experts and one object per routed expert; then
// embedding, positions, embedding_norm, final_norm, lm_head) and maps each op to the object it
// reads. KV: a KvLayout turns "tokens [from, to) of sequence s in layer l" into operands, so
// per-sequence objects (decode) and a paged block pool (serving) share the op stream.
//
// Per op, FLOPs and bytes come from op_cost (transformer.h): projections over every new token;
// attention per sequence over its cached tokens (read once) and its new ones (causal); the LM
// head over the sampled positions only. Sparse attention (decode) selects pages here; MoE
// routing runs at each router op over every new token of the pass.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/core/objects.h"
#include "models/core/op.h"
#include "models/core/rng.h"
#include "models/core/summary.h"
#include "models/core/workload.h"
#include "workloads/moe_router.h"
#include "workloads/transformer.h"

namespace tiersim {

// A slot's expert, and the copies of it there are (a copy sees 1/copies of its tokens).
struct ExpertCopy {
  uint16_t expert = 0;
  uint32_t copies = 1;
};

// How a model's weights will be used, for their intent records.
struct WeightUse {
  uint32_t last_step = ObjectIntent::kUntilEnd;
  double passes_per_step = 1;      // forward passes per step that read every weight
  const Router* router = nullptr;  // MoE: expert use probabilities
  uint32_t routed_tokens = 0;      // tokens per routed pass
  // A prefill phase first (steps [0, prefill_steps)), routing prefill_routed_tokens per pass.
  uint32_t prefill_steps = 0, prefill_routed_tokens = 0;
  // Expert parallelism: the expert copy in each slot, per MoE layer and slot, whose use the
  // slot's intent states (unset: slot e stands for expert e, one copy).
  std::function<ExpertCopy(uint32_t moe_layer, uint32_t slot)> slot_expert = nullptr;
};

// A model's weight objects.
struct ModelObjects {
  struct Layer {
    ObjectId attn_norm, qkv, kv_up, out, mlp_norm, gate_up, down;
    ObjectId router, shared;    // MoE layers
    uint32_t first_expert = 0;  // object id of expert 0; experts are consecutive
  };
  ObjectId embedding, positions, embedding_norm, final_norm, lm_head;
  std::vector<Layer> layers;  // every layer of the model; a pipeline stage's others are unset
  // Pipeline parallelism: the stage whose weights register_weights registers (its layers; stage
  // 0 the embedding tables, the last stage the final norm and the LM head, a tied one with its
  // own copy of the embedding). -1: every weight.
  int64_t stage = -1;

  // Registers every weight object of `s` named `prefix` + name, with class `weights` (the
  // embedding tables take class embedding when `weights` is kWeight). `after_layer(l)` runs after
  // each layer's weights, so callers can register that layer's KV next to them.
  void register_weights(ObjectTable& t, const TransformerShape& s, const std::string& prefix,
                        ObjectClass weights, const WeightUse& use,
                        const std::function<void(uint32_t)>& after_layer);
  // The weight object op `kind` of `layer` reads and the offset of its part (invalid id: none).
  std::pair<ObjectId, uint64_t> weight_of(const TransformerShape& s, OpKind kind,
                                          uint32_t layer) const;
};

// Where a sequence's KV lives.
class KvLayout {
 public:
  virtual ~KvLayout() = default;
  // Appends operands reading tokens [from, to) of sequence `seq` in `layer`.
  virtual void read(uint32_t layer, uint32_t seq, uint64_t from, uint64_t to,
                    std::vector<Operand>& out) const = 0;
  // Appends operands writing `count` tokens of `seq` in `layer` starting at token `at`.
  virtual void write(uint32_t layer, uint32_t seq, uint64_t at, uint64_t count,
                     std::vector<Operand>& out) const = 0;
  // Sparse attention: the digests of pages [first, end) of `seq` in `layer`, and the digest of
  // page `page` being updated. Layouts without digests never see sparse passes.
  virtual void read_digests(uint32_t, uint32_t, uint64_t, uint64_t, std::vector<Operand>&) const {}
  virtual void write_digests(uint32_t, uint32_t, uint64_t, uint64_t, std::vector<Operand>&) const {}
};

struct PassSequence {
  uint32_t seq = 0;      // KV layout index
  uint64_t cached = 0;   // tokens already in its cache
  uint32_t queries = 1;  // new tokens this pass
  uint32_t sampled = 1;  // positions that produce logits (0: a prefill chunk before the last)
};

struct SparseAttentionParams {
  uint32_t sink_tokens = 0, window_tokens = 0, top_k_pages = 0, block_tokens = 16;
  double page_locality = 0, layer_similarity = 0;
};

class ForwardPass {
 public:
  // `max_sequences` sizes the per-sequence state (sparse page selections). `router` is
  // required for a MoE shape; `sparse` enables sparse attention.
  ForwardPass(const TransformerShape& shape, uint32_t max_sequences, Router* router,
              std::optional<SparseAttentionParams> sparse, uint64_t seed);

  const TransformerShape& shape() const { return shape_; }
  ModelObjects& objects() { return objects_; }
  void set_kv(const KvLayout* kv) { kv_ = kv; }
  // FlexGen's block schedule: each layer runs over `m` micro-batches (consecutive slices of the
  // pass's sequences) in turn; the embedding and the head run over the whole pass. Dense
  // models only (routing counts one routed pass per layer).
  void set_micro_batches(uint32_t m) { micro_batches_ = m < 1 ? 1 : m; }
  // Expert parallelism with every rank simulated: this pass is rank `rank`'s and runs its own
  // expert copies in each MoE layer (by default the symmetric shortcut runs the slowest rank's).
  // Before the objects are registered.
  void set_expert_rank(uint32_t rank);
  bool has_expert_rank() const { return own_rank_ >= 0; }
  // Pipeline parallelism: this pass is stage `stage` of shape().pp and runs its layers only
  // (stage_layers), the embedding on the first stage and the final norm and LM head on the
  // last. Before the objects are registered.
  void set_pipeline_stage(uint32_t stage, uint32_t micro_batches = 1);
  // A pipeline stage's pass is one micro-batch: its new tokens are [first_token, first_token +
  // its tokens) of the step's `step_tokens`. MoE routing is the step's: the stage's first MoE
  // layer of a step routes every MoE layer of the model over every token of the step (as one
  // pass of the whole model would, in the same order), and each micro-batch takes its tokens'
  // experts. Before begin().
  void set_pipeline_slice(uint64_t first_token, uint64_t step_tokens) {
    slice_first_ = first_token;
    slice_step_tokens_ = step_tokens;
  }
  // The symmetric shortcut runs the rank `model` estimates the slowest in each MoE layer (its
  // experts' weights streamed and their rows computed); without a model, or before it is ready,
  // the rank with the most distinct copies, then the most assignments.
  void set_expert_cost(const ExpertCostModel* model) { expert_cost_ = model; }
  // The expert in this rank's slot `slot` of MoE layer `moe_layer` (the shortcut: expert `slot`,
  // a stand-in for whichever rank's copy the slot plays).
  ExpertCopy slot_expert(uint32_t moe_layer, uint32_t slot) const;

  // Starts a pass over `count` sequences (the array stays valid until the pass ends) in step
  // `step`; `route_step` indexes MoE statistics (one routed pass per step).
  void begin(const PassSequence* seqs, uint32_t count, uint32_t step);
  // Fills the next op (id, step and cost) and returns true, or returns false after the last.
  bool next(Op& op, OpId id);
  // Whether the op just filled was the pass's last.
  bool done() const { return pos_ > head_ops_.size() + tail_ops_.size(); }

  // The largest on-chip activation footprint of any op for up to `tokens` new tokens (of which
  // up to `sampled` produce logits) in a pass of up to `sequences` sequences; with
  // micro-batches, the layer ops see those and the embedding and head ops up to `pass_tokens`
  // (of which `pass_sampled` sampled; 0: the same).
  uint64_t max_activation_bytes(uint64_t tokens, uint64_t sampled, uint64_t sequences,
                                uint64_t pass_tokens = 0, uint64_t pass_sampled = 0) const;

  // MoE statistics: assignments per MoE layer and expert (moe_layers x experts), and distinct
  // experts read per routed pass and MoE layer (one row per routed pass).
  const std::vector<uint64_t>& expert_load() const { return load_; }
  const std::vector<uint16_t>& active_experts() const { return active_; }
  void summarize_moe(std::vector<SummaryItem>& summary) const;
  // Sparse attention statistics.
  uint64_t pages_read() const { return pages_read_; }
  uint64_t pages_kept() const { return pages_kept_; }
  uint64_t pages_selected() const { return pages_selected_; }

 private:
  void fill(Op& op, OpKind kind, uint32_t layer);
  void fill_attention(Op& op, uint32_t layer);
  void fill_page_select(Op& op, uint32_t layer);
  // KV elements per stored byte when the KV is narrower than `compute` (0: the same width).
  double narrow_kv_elements_per_byte(config::Dtype compute) const;
  void select_pages(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end);
  bool sparse_middle(uint64_t cached, uint64_t& first, uint64_t& end) const;
  void route(uint32_t layer);

  const TransformerShape shape_;
  const uint32_t max_sequences_;
  ModelObjects objects_;
  const KvLayout* kv_ = nullptr;
  std::vector<OpKind> dense_ops_, moe_ops_, head_ops_, tail_ops_;

  // Narrows the sequences to micro-batch `k` of the pass (UINT32_MAX: the whole pass).
  void select_micro_batch(uint32_t k);

  // The current pass (seqs_, count_: the micro-batch being run).
  const PassSequence* all_seqs_ = nullptr;
  uint32_t all_count_ = 0, micro_batches_ = 1, micro_batch_ = 0;
  const PassSequence* seqs_ = nullptr;
  uint32_t count_ = 0, step_ = 0;
  uint64_t tokens_ = 0, sampled_ = 0;
  uint32_t pos_ = 0, layer_ = 0, layer_op_ = 0;
  uint32_t first_layer_ = 0, end_layer_ = 0;  // the layers this pass runs (a pipeline stage's)
  // Pipeline micro-batches (set_pipeline_slice): the step's routing per MoE layer of the stage.
  int64_t routed_step_ = -1;   // the step step_routed_ holds
  uint32_t stage_passes_ = 1;  // micro-batches (routed passes) per step
  uint64_t slice_first_ = 0, slice_step_tokens_ = 0;
  std::vector<std::vector<uint16_t>> step_routed_;  // per MoE layer
  std::vector<Operand> operands_;

  // Sparse attention.
  std::optional<SparseAttentionParams> sparse_;
  Rng page_rng_;
  std::vector<uint32_t> selected_, selected_count_;
  uint64_t pages_read_ = 0, pages_kept_ = 0, pages_selected_ = 0;

  // MoE.
  Router* router_ = nullptr;
  std::vector<uint16_t> routed_;
  std::vector<uint32_t> tokens_per_expert_;
  std::vector<Operand> up_operands_, down_operands_;
  double up_flops_ = 0, down_flops_ = 0;
  uint16_t active_now_ = 0;
  std::vector<uint64_t> load_;
  std::vector<uint16_t> active_;
  uint32_t routed_passes_ = 0;
  uint64_t expert_rows_ = 0;  // assignments the current MoE layer's expert kernels compute
  // Expert parallelism: per MoE layer, the dispatch then the combine traffic (ep x ep bytes,
  // sender-major); per rank, its assignments in the current layer; statistics.
  std::vector<uint64_t> ep_traffic_, ep_rank_rows_, ep_rank_active_;
  // Per MoE layer, dispatch then combine: [rank * domains + domain] (Op::domain_traffic).
  std::vector<uint64_t> ep_domain_traffic_;
  std::vector<ExpertPlacement> placement_;  // per MoE layer
  std::vector<uint32_t> slot_rows_;         // ep x slots: the current layer's assignments
  std::vector<uint32_t> token_ranks_;       // scratch: the ranks of one token's copies
  const ExpertCostModel* expert_cost_ = nullptr;
  int64_t own_rank_ = -1;  // every rank simulated: this one (-1: the slowest)
  double ep_load_ratio_sum_ = 0;
  uint64_t ep_dispatch_bytes_ = 0, ep_scale_out_dispatch_bytes_ = 0, ep_routed_layers_ = 0;
};

}  // namespace tiersim
