#include "workloads/decode.h"

#include <algorithm>
#include <stdexcept>

#include "models/core/registry.h"

namespace tiersim {

namespace {
uint64_t ceil_div(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

std::optional<SparseAttentionParams> sparse_params(const DecodeOptions& o) {
  if (!o.sparse()) return std::nullopt;
  return SparseAttentionParams{o.sink_tokens,     o.window_tokens, o.top_k_pages,
                               o.kv_block_tokens, o.page_locality, o.layer_similarity};
}
}  // namespace

SequenceKv::SequenceKv(uint64_t token_bytes, uint64_t capacity_tokens, uint32_t block_tokens,
                       bool digests)
    : token_bytes_(token_bytes),
      capacity_tokens_(capacity_tokens),
      block_tokens_(block_tokens),
      digests_(digests) {}

uint64_t SequenceKv::object_bytes() const {
  return (capacity_tokens_ + (digests_ ? ceil_div(capacity_tokens_, block_tokens_) : 0)) *
         token_bytes_;
}

void SequenceKv::register_layer(ObjectTable& t, const std::string& prefix, uint32_t layer,
                                uint32_t sequences, const ObjectIntent& intent) {
  if (first_.size() <= layer) first_.resize(layer + 1, 0);
  for (uint32_t q = 0; q < sequences; ++q) {
    const ObjectId x =
        t.add(prefix + "layer" + std::to_string(layer) + ".kv.seq" + std::to_string(q),
              ObjectClass::kKvCache, object_bytes(), LayerId(layer), intent);
    if (q == 0) first_[layer] = x.value();
    ObjectInfo& kv = t.get_mutable(x);
    kv.token_bytes = token_bytes_;
    kv.sequence = q;
    kv.kv_tokens = capacity_tokens_;
    kv.kv_block_tokens = digests_ ? block_tokens_ : 0;
  }
  if (hidden_token_bytes_ == 0) return;
  if (first_hidden_.size() <= layer) first_hidden_.resize(layer + 1, 0);
  for (uint32_t q = 0; q < sequences; ++q) {
    const ObjectId h = t.add(
        prefix + "layer" + std::to_string(layer) + ".hs.seq" + std::to_string(q),
        ObjectClass::kActivation, capacity_tokens_ * hidden_token_bytes_, LayerId(layer), intent);
    if (q == 0) first_hidden_[layer] = h.value();
    ObjectInfo& kv = t.get_mutable(object(layer, q));
    kv.hidden_states = h;
    kv.recompute_flops_per_byte = recompute_flops_per_byte_;
    kv.token_bytes = token_bytes_;
    t.get_mutable(h).token_bytes = hidden_token_bytes_;
  }
}

void SequenceKv::read(uint32_t layer, uint32_t seq, uint64_t from, uint64_t to,
                      std::vector<Operand>& out) const {
  if (to > from) {
    out.push_back(Operand{object(layer, seq), from * token_bytes_, (to - from) * token_bytes_,
                          Access::kRead});
  }
}

void SequenceKv::write(uint32_t layer, uint32_t seq, uint64_t at, uint64_t count,
                       std::vector<Operand>& out) const {
  out.push_back(
      Operand{object(layer, seq), at * token_bytes_, count * token_bytes_, Access::kWrite});
  if (hidden_token_bytes_ > 0) {
    out.push_back(Operand{ObjectId(first_hidden_[layer] + seq), at * hidden_token_bytes_,
                          count * hidden_token_bytes_, Access::kWrite});
  }
}

void SequenceKv::read_digests(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end,
                              std::vector<Operand>& out) const {
  out.push_back(Operand{object(layer, seq), (capacity_tokens_ + first) * token_bytes_,
                        (end - first) * token_bytes_, Access::kRead});
}

void SequenceKv::write_digests(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end,
                               std::vector<Operand>& out) const {
  out.push_back(Operand{object(layer, seq), (capacity_tokens_ + first) * token_bytes_,
                        (end - first) * token_bytes_, Access::kWrite});
}

DecodeWorkload::DecodeWorkload(const TransformerShape& shape, uint32_t batch,
                               uint32_t context_tokens, uint32_t steps,
                               std::unique_ptr<Router> router)
    : DecodeWorkload(
          shape,
          [&] {
            DecodeOptions o;
            o.batch = batch;
            o.context = context_tokens;
            o.steps = steps;
            return o;
          }(),
          std::move(router)) {}

DecodeWorkload::DecodeWorkload(const TransformerShape& shape, const DecodeOptions& options,
                               std::unique_ptr<Router> router)
    : o_(options),
      router_(std::move(router)),
      target_(shape, options.batch, router_.get(), sparse_params(options), options.seed),
      target_kv_(shape.kv_bytes_per_token_per_layer(), options.max_tokens(),
                 options.kv_block_tokens, options.sparse()),
      accept_rng_(options.seed ^ 0x7370656364656364ULL) {
  if (o_.speculative()) {
    draft_.emplace(*o_.draft, o_.batch, nullptr, std::nullopt, o_.seed);
    draft_kv_.emplace(o_.draft->kv_bytes_per_token_per_layer(), o_.max_tokens(), o_.kv_block_tokens,
                      false);
    passes_ = o_.gamma + 1;
  }
  if (o_.hidden_states) {
    // K and V of one token from its hidden state: 2 x hidden x (K and V width) FLOPs for the
    // KV bytes of that token (this rank's heads).
    const uint64_t hidden = dtype_bytes(shape.activation_dtype, shape.hidden);
    const double kv_values =
        double(shape.kv_bytes_per_token_per_layer()) / double(dtype_bytes(shape.kv_dtype, 1));
    target_kv_.set_hidden_states(hidden, 2.0 * double(shape.hidden) * kv_values /
                                             double(shape.kv_bytes_per_token_per_layer()));
  }
  target_.set_kv(&target_kv_);
  target_.set_micro_batches(o_.micro_batches);
  if (draft_) draft_->set_kv(&*draft_kv_);
  length_.assign(o_.batch, o_.prefill ? 0 : o_.context);
  plan_.resize(o_.batch);
}

uint64_t DecodeWorkload::footprint_bytes(const TransformerShape& s, const DecodeOptions& o) {
  // Per layer: every sequence's KV at its longest (and its hidden-state checkpoints).
  auto kv = [&](const TransformerShape& m, bool sparse) {
    const uint64_t tokens = o.max_tokens();
    const uint64_t digests = sparse ? ceil_div(tokens, o.kv_block_tokens) : 0;
    return o.batch * (tokens + digests) * m.kv_bytes_per_token_per_layer();
  };
  uint64_t per_layer = kv(s, o.sparse());
  if (o.hidden_states)
    per_layer += o.batch * o.max_tokens() * dtype_bytes(s.activation_dtype, s.hidden);
  if (s.pp > 1) {
    // A pipeline stage's node holds its own weights and its layers' KV: the largest stage's.
    uint64_t most = 0;
    for (uint32_t stage = 0; stage < s.pp; ++stage) {
      const TransformerShape::LayerRange r = s.stage_layers(stage);
      most = std::max(most, s.stage_weight_bytes(stage) + uint64_t{r.end - r.first} * per_layer);
    }
    return most;
  }
  uint64_t bytes = s.total_weight_bytes() + uint64_t{s.layers} * per_layer;
  if (o.speculative()) {
    bytes += o.draft->total_weight_bytes() + uint64_t{o.draft->layers} * kv(*o.draft, false);
  }
  return bytes;
}

bool DecodeWorkload::set_pipeline_stage(uint32_t stage, uint32_t tp_rank) {
  const TransformerShape& s = target_.shape();
  if (s.pp < 2 || draft_ || o_.micro_batches > 1 || tp_rank >= s.tp) return false;
  passes_ = std::max<uint32_t>(1, o_.pipeline_micro_batches);
  target_.set_pipeline_stage(stage, passes_);
  staged_ = true;
  stage_ = stage;
  tp_rank_ = tp_rank;
  const size_t nodes = size_t{s.pp} * s.tp;
  pipe_traffic_.assign(nodes * nodes, 0);
  return true;
}

uint64_t DecodeWorkload::hidden_slice_bytes(uint64_t tokens) const {
  const TransformerShape& s = target_.shape();
  return (2 * s.hidden_bytes(tokens) + s.tp - 1) / s.tp;
}

std::pair<uint32_t, uint32_t> DecodeWorkload::micro_batch(uint32_t k) const {
  return {static_cast<uint32_t>(uint64_t{k} * o_.batch / passes_),
          static_cast<uint32_t>(uint64_t{k + 1} * o_.batch / passes_)};
}

void DecodeWorkload::pipeline_op(Op& op, OpKind kind, OpClass op_class) {
  op = Op();
  op.id = OpId(next_id_++);
  op.kind = kind;
  op.op_class = op_class;
  op.step = StepIndex(step_);
}

bool DecodeWorkload::staged_receives() const {
  // The first stage's first step starts on the prompts.
  return stage_ > 0 || step_ > 0;
}

bool DecodeWorkload::staged_sends() const {
  // Nothing goes back to the first stage after the run's last step.
  return stage_ + 1 < target_.shape().pp || step_ + 1 < total_steps();
}

void DecodeWorkload::end_staged_pass(Op& op) {
  if (++pass_ == passes_) {
    op.last_of_step = true;
    finish_step();
    pass_ = 0;
    ++step_;
  }
  part_ = StagePart::kReceive;
}

bool DecodeWorkload::next_staged(Op& op) {
  if (step_ >= total_steps()) return false;
  const TransformerShape& s = target_.shape();
  const uint32_t pp = s.pp, tp = s.tp;
  if (part_ == StagePart::kReceive) {
    part_ = StagePart::kGather;
    if (staged_receives()) {
      pipeline_op(op, OpKind::kPipeRecv, OpClass::kPointToPoint);
      op.peer = (stage_ == 0 ? pp - 1 : stage_ - 1) * tp + tp_rank_;
      return true;
    }
  }
  if (part_ == StagePart::kGather) {
    part_ = StagePart::kPass;
    if (stage_ > 0 && tp > 1) {
      // The ranks' slices of the hidden states and residual, all-gathered (the micro-batch's
      // tokens: those of the pass about to begin).
      const auto [first, end] = micro_batch(pass_);
      const uint64_t tokens = uint64_t{end - first} * (o_.prefill && step_ == 0 ? o_.context : 1);
      const uint64_t slice = hidden_slice_bytes(tokens);
      pipeline_op(op, OpKind::kAllGather, OpClass::kCollective);
      op.collective_bytes = slice;
      op.activation_read_bytes = slice;
      op.activation_write_bytes = slice * tp;
      return true;
    }
  }
  if (part_ == StagePart::kPass) {
    if (!in_pass_) begin_pass();
    if (!target_.next(op, OpId(next_id_))) throw std::logic_error("DecodeWorkload: empty pass");
    ++next_id_;
    if (target_.done()) {
      in_pass_ = false;
      part_ = StagePart::kSend;
      if (!staged_sends()) end_staged_pass(op);
    }
    return true;
  }
  // The send: the hidden states and the residual of the micro-batch's new tokens to the next
  // stage (vLLM's IntermediateTensors), or its sampled tokens (int64 ids) back to the first.
  // Every tensor-parallel rank of the stage sends its own at once: the matrix holds them all.
  const uint32_t to = stage_ + 1 == pp ? 0 : stage_ + 1;
  const uint64_t bytes = to == 0 ? 8 * pass_sampled_ : hidden_slice_bytes(pass_tokens_);
  const size_t nodes = size_t{pp} * tp;
  for (uint32_t r = 0; r < tp; ++r)
    pipe_traffic_[(size_t{stage_} * tp + r) * nodes + size_t{to} * tp + r] = bytes;
  pipeline_op(op, OpKind::kPipeSend, OpClass::kPointToPoint);
  op.peer = to * tp + tp_rank_;
  op.collective_bytes = bytes;
  op.traffic = pipe_traffic_.data();
  op.traffic_ranks = static_cast<uint32_t>(nodes);
  end_staged_pass(op);
  return true;
}

bool DecodeWorkload::set_expert_rank(uint32_t rank) {
  if (target_.shape().ep < 2) return false;
  target_.set_expert_rank(rank);
  return true;
}

void DecodeWorkload::register_objects(ObjectTable& t) {
  // Intents: every weight and KV object is read by each pass of its model in every step.
  const uint32_t last = total_steps() - 1;
  // Expert parallelism routes every rank's tokens together.
  // A pipeline stage reads its weights once per micro-batch, each routing its share of tokens.
  WeightUse target_use{
      last, staged_ ? double(passes_) : 1.0, router_.get(),
      staged_ ? static_cast<uint32_t>(ceil_div(o_.batch, passes_)) * o_.target_queries()
              : o_.batch * o_.target_queries() * target_.shape().ep};
  if (target_.has_expert_rank()) {
    target_use.slot_expert = [this](uint32_t m, uint32_t slot) {
      return target_.slot_expert(m, slot);
    };
  }
  if (o_.prefill) {
    target_use.prefill_steps = 1;
    target_use.prefill_routed_tokens = o_.batch * o_.context;
  }
  const ObjectIntent target_kv{0, last, 1.0, 1.0, {}};
  target_.objects().register_weights(
      t, target_.shape(), "", ObjectClass::kWeight, target_use,
      [&](uint32_t l) { target_kv_.register_layer(t, "", l, o_.batch, target_kv); });
  if (draft_) {
    const WeightUse draft_use{last, double(o_.gamma), nullptr, o_.batch};
    const ObjectIntent draft_kv{0, last, double(o_.gamma), 1.0, {}};
    draft_->objects().register_weights(
        t, draft_->shape(), "draft.", ObjectClass::kDraftWeight, draft_use,
        [&](uint32_t l) { draft_kv_->register_layer(t, "draft.", l, o_.batch, draft_kv); });
  }
  registered_ = true;
}

uint64_t DecodeWorkload::max_activation_bytes() const {
  const uint64_t q =
      o_.prefill ? std::max<uint64_t>(o_.context, o_.target_queries()) : o_.target_queries();
  // Layer ops see one micro-batch; the embedding and the head the whole pass.
  const uint64_t mb = ceil_div(o_.batch, o_.micro_batches);
  const uint64_t sq = o_.target_queries();  // sampled positions per sequence
  uint64_t m = staged_ ? target_.max_activation_bytes(ceil_div(o_.batch, passes_) * q,
                                                      ceil_div(o_.batch, passes_) * sq,
                                                      ceil_div(o_.batch, passes_))
                       : target_.max_activation_bytes(mb * q, mb * sq, mb, uint64_t{o_.batch} * q,
                                                      uint64_t{o_.batch} * sq);
  if (draft_) m = std::max(m, draft_->max_activation_bytes(o_.batch, o_.batch, o_.batch));
  return m;
}

void DecodeWorkload::begin_pass() {
  if (staged_) {
    // Pipeline micro-batch pass_: a consecutive slice of the batch (the prompt's, in a prefill
    // step: every token new, one sampled position).
    const auto [first, end] = micro_batch(pass_);
    const bool prompt = o_.prefill && step_ == 0;
    pass_tokens_ = pass_sampled_ = 0;
    for (uint32_t s = first; s < end; ++s) {
      plan_[s] = prompt ? PassSequence{s, 0, o_.context, 1} : PassSequence{s, length_[s], 1, 1};
      pass_tokens_ += plan_[s].queries;
      pass_sampled_ += plan_[s].sampled;
    }
    const uint64_t per_seq = prompt ? o_.context : 1;
    target_.set_pipeline_slice(first * per_seq, uint64_t{o_.batch} * per_seq);
    target_.begin(plan_.data() + first, end - first, step_);
    in_pass_ = true;
    return;
  }
  if (o_.prefill && step_ == 0) {
    // The prompt: every token new, one sampled position (the first generated token).
    for (uint32_t s = 0; s < o_.batch; ++s)
      plan_[s] = PassSequence{s, 0, o_.context, 1};
    target_.begin(plan_.data(), o_.batch, step_);
    in_pass_ = true;
    return;
  }
  const bool drafting = draft_ && pass_ < o_.gamma;
  const uint32_t q = drafting ? 1 : o_.target_queries();
  for (uint32_t s = 0; s < o_.batch; ++s) {
    // Draft pass j appends after the j tokens it drafted before.
    plan_[s] = PassSequence{s, length_[s] + (drafting ? pass_ : 0), q, q};
  }
  (drafting ? *draft_ : target_).begin(plan_.data(), o_.batch, step_);
  in_pass_ = true;
}

void DecodeWorkload::finish_step() {
  if (o_.prefill && step_ == 0) {
    length_.assign(o_.batch, o_.context);
    last_step_tokens_ = o_.batch;
    return;
  }
  const uint64_t tok = target_.shape().kv_bytes_per_token_per_layer() * target_.shape().layers;
  uint32_t tokens = 0;
  for (uint32_t seq = 0; seq < o_.batch; ++seq) {
    uint32_t gained = 1;
    if (draft_) {
      // Drafted tokens are accepted with probability alpha each, up to the first rejection;
      // the target adds one token of its own. The rejected tail's KV is left behind.
      uint32_t accepted = 0;
      while (accepted < o_.gamma && accept_rng_.uniform() < o_.alpha)
        ++accepted;
      gained = accepted + 1;
      ++verified_;
      const uint32_t rejected = o_.gamma - accepted;
      const uint64_t draft_tok =
          draft_->shape().kv_bytes_per_token_per_layer() * draft_->shape().layers;
      wasted_kv_bytes_ += rejected * tok + (o_.gamma > gained ? o_.gamma - gained : 0) * draft_tok;
    }
    kept_ += gained;
    length_[seq] += gained;
    tokens += gained;
  }
  last_step_tokens_ = tokens;
}

bool DecodeWorkload::next(Op& op) {
  if (!registered_) throw std::logic_error("DecodeWorkload: objects not registered");
  if (staged_) return next_staged(op);
  if (step_ >= total_steps()) return false;
  if (!in_pass_) begin_pass();
  const bool prefilling = o_.prefill && step_ == 0;
  ForwardPass& pass = draft_ && pass_ < o_.gamma && !prefilling ? *draft_ : target_;
  if (!pass.next(op, OpId(next_id_))) throw std::logic_error("DecodeWorkload: empty pass");
  ++next_id_;
  if (pass.done()) {
    in_pass_ = false;
    if (prefilling || ++pass_ == passes_) {
      op.last_of_step = true;
      finish_step();
      pass_ = 0;
      ++step_;
    }
  }
  return true;
}

bool DecodeWorkload::skip_step() {
  if (!registered_) throw std::logic_error("DecodeWorkload: objects not registered");
  if (in_pass_ || pass_ != 0) throw std::logic_error("DecodeWorkload: skip_step within a step");
  if (staged_) return false;  // a stage's receives wait for the others
  if (step_ >= total_steps() || (o_.prefill && step_ == 0)) return false;
  // The step's ops are made and dropped, so everything the workload draws or counts per step
  // (MoE routing and expert load, sparse page selection, speculative acceptance) follows the
  // full run's sequence.
  Op op;
  do {
    next(op);
  } while (!op.last_of_step);
  return true;
}

void DecodeWorkload::summarize(std::vector<SummaryItem>& summary) const {
  if (draft_) {
    summary.push_back(
        {"spec_tokens_per_verify", verified_ ? double(kept_) / double(verified_) : 0.0, "tokens"});
    summary.push_back({"spec_accepted_fraction",
                       verified_ ? double(kept_ - verified_) / double(verified_ * o_.gamma) : 0.0,
                       "fraction"});
    summary.push_back({"spec_wasted_kv_bytes", double(wasted_kv_bytes_), "bytes"});
  }
  if (o_.sparse()) {
    summary.push_back({"sparse_pages_read", double(target_.pages_read()), "pages"});
    summary.push_back({"sparse_page_reuse",
                       target_.pages_selected()
                           ? double(target_.pages_kept()) / double(target_.pages_selected())
                           : 0.0,
                       "fraction"});
  }
  target_.summarize_moe(summary);
}

void DecodeWorkload::write_results(ResultSink& w) const {
  const TransformerShape& s = target_.shape();
  if (!s.moe()) return;
  const uint32_t ml = s.moe_layers();
  std::vector<double> load(target_.expert_load().begin(), target_.expert_load().end());
  w.write_matrix("/workload/moe/expert_load", ml, s.experts, load);
  w.set_attribute("/workload/moe/expert_load", "description",
                  "token-to-expert assignments per MoE layer (rows, from first_moe_layer) and "
                  "expert (columns)");
  std::vector<double> active(target_.active_experts().begin(), target_.active_experts().end());
  w.write_matrix("/workload/moe/active_experts", active.size() / ml, ml, active);
  w.set_attribute("/workload/moe/active_experts", "description",
                  "distinct experts read per routed pass (rows: a step, or a pipeline stage's "
                  "micro-batch) and MoE layer (columns)");
  w.write_scalar_u64("/workload/moe/first_moe_layer", s.first_moe_layer, "");
}

namespace {

// Tokens each MoE routing call assigns: every sequence's queries in the target pass.
uint32_t routed_tokens(const config::Config& root) {
  const auto& d = root.workload().decode();
  // Expert parallelism routes every rank's tokens in one call.
  const uint32_t ep = std::max<uint32_t>(1, root.workload().parallelism().expert_parallel());
  return d.batch_size() * ep * (d.has_speculative() ? d.speculative().draft_tokens() + 1 : 1);
}

// Speculative decoding: the draft model (dense, the target's vocabulary and parallelism), its
// tokens per step and acceptance rate.
void validate_speculative(const config::Workload& w, Validator& dv) {
  const auto& sp = w.decode().speculative();
  Validator sv = dv.at("speculative");
  if (!sp.has_draft()) {
    sv.error("draft", "required field is not set (the draft model)");
  } else {
    Validator mv = sv.at("draft");
    TransformerShape::validate(sp.draft(), mv);
    if (sp.draft().has_moe()) mv.error("moe", "the draft model must be dense");
    if (sp.draft().has_vocab_size() && w.model().has_vocab_size() &&
        sp.draft().vocab_size() != w.model().vocab_size()) {
      mv.error("vocab_size", "must equal the target model's (" +
                                 std::to_string(w.model().vocab_size()) +
                                 "): the draft proposes the target's tokens");
    }
    // The draft runs with the target's tensor parallelism.
    std::vector<ConfigIssue> tp_issues;
    Validator tv(tp_issues);
    TransformerShape::validate_parallelism(sp.draft(), w.parallelism(), tv);
    for (const auto& i : tp_issues)
      mv.error("", "workload.parallelism: " + i.message + " (the draft runs with it too)");
  }
  if (sv.positive("draft_tokens", sp.has_draft_tokens(), sp.draft_tokens()) &&
      sp.draft_tokens() > 64) {
    sv.error("draft_tokens", "at most 64");
  }
  if (!sp.has_acceptance_rate()) {
    sv.error("acceptance_rate", "required field is not set");
  } else if (!(sp.acceptance_rate() >= 0 && sp.acceptance_rate() <= 1)) {
    sv.error("acceptance_rate", "must be in [0, 1]");
  }
}

// Sparse attention: the pages selected per step and the synthetic selection's locality.
void validate_sparse_attention(const config::DecodeScenario& d, Validator& dv) {
  const auto& sa = d.sparse_attention();
  Validator av = dv.at("sparse_attention");
  if (av.positive("top_k_pages", sa.has_top_k_pages(), sa.top_k_pages()) &&
      sa.top_k_pages() > 4096) {
    av.error("top_k_pages", "at most 4096");
  }
  if (sa.has_page_locality() && !(sa.page_locality() >= 0 && sa.page_locality() <= 1)) {
    av.error("page_locality", "must be in [0, 1]");
  }
  if (sa.has_layer_similarity() && !(sa.layer_similarity() >= 0 && sa.layer_similarity() <= 1)) {
    av.error("layer_similarity", "must be in [0, 1]");
  }
}

void validate_decode(const config::Config& root, Validator& v) {
  const auto& w = root.workload();
  TransformerShape::validate_workload_model(root, v);
  const auto& d = w.decode();
  Validator dv = v.at("workload.decode");
  const bool batch_ok = dv.positive("batch_size", d.has_batch_size(), d.batch_size());
  dv.require("context_tokens", d.has_context_tokens());
  const bool steps_ok = dv.positive("decode_steps", d.has_decode_steps(), d.decode_steps());
  if (d.has_kv_block_tokens()) {
    // The decode KV is one object per sequence and layer; only sparse attention reads pages.
    if (dv.positive("kv_block_tokens", true, d.kv_block_tokens()) && !d.has_sparse_attention()) {
      dv.error("kv_block_tokens",
               "only sparse_attention uses pages in decode; set it with sparse_attention or "
               "remove it");
    }
  }
  if (d.has_micro_batches()) {
    if (dv.positive("micro_batches", true, d.micro_batches())) {
      if (batch_ok && d.micro_batches() > d.batch_size()) {
        dv.error("micro_batches", "at most batch_size (" + std::to_string(d.batch_size()) + ")");
      }
      if (d.micro_batches() > 1 && (w.model().has_moe() || d.has_speculative())) {
        dv.error("micro_batches",
                 "the block schedule runs dense models without speculative decoding");
      }
    }
  }
  if (const uint32_t pp = w.parallelism().pipeline_parallel(); pp > 1) {
    const auto& par = w.parallelism();
    const uint32_t mb = par.has_pipeline_micro_batches() ? par.pipeline_micro_batches() : pp;
    if (batch_ok && mb > d.batch_size()) {
      Validator(dv)
          .root("workload.parallelism")
          .error(par.has_pipeline_micro_batches() ? "pipeline_micro_batches" : "pipeline_parallel",
                 "micro-batches (" + std::to_string(mb) + ") at most batch_size (" +
                     std::to_string(d.batch_size()) +
                     (par.has_pipeline_micro_batches()
                          ? ")"
                          : "): set pipeline_micro_batches, which defaults to the stages"));
    }
    const char* why = "not with pipeline_parallel (a stage runs one model's micro-batches)";
    if (d.has_speculative()) dv.error("speculative", why);
    if (d.prefill() && w.model().has_moe()) {
      dv.error("prefill",
               "not with pipeline_parallel and a MoE model (not yet: the prompt's "
               "routing per micro-batch)");
    }
    if (d.micro_batches() > 1) dv.error("micro_batches", why);
    if (d.sparse_attention().layer_similarity() > 0) {
      // A stage's first layer has no previous layer's selection to resemble.
      dv.error("sparse_attention.layer_similarity",
               "not with pipeline_parallel (each stage's first layer would lose it): set 0");
    }
  }
  if (d.hidden_state_checkpoints() && d.has_sparse_attention()) {
    dv.error("hidden_state_checkpoints", "not with sparse_attention");
  }
  if (w.parallelism().expert_parallel() > 1) {
    // Not yet with expert parallelism: the prompt's routing, drafts and routing traces.
    const char* why =
        "the expert-parallel decode models decode steps of one model, routed "
        "synthetically";
    if (d.prefill()) dv.error("prefill", why);
    if (d.has_speculative()) dv.error("speculative", why);
    if (w.has_routing() && !w.routing().trace().empty()) {
      Validator(dv).root("workload.routing").error("trace", why);
    }
  }
  if (d.prefill() && w.has_routing() && !w.routing().trace().empty()) {
    dv.error("prefill", "not with a routing trace (it routes the decode steps' tokens only)");
  }
  if (d.prefill() && d.has_speculative()) {
    dv.error("prefill", "not with speculative decoding (the draft's prefill is not modelled)");
  }
  if (d.prefill() && d.has_context_tokens() && d.context_tokens() == 0) {
    dv.error("prefill", "needs context_tokens > 0 (the prompt)");
  }
  if (d.has_speculative()) validate_speculative(w, dv);
  if (d.has_sparse_attention()) validate_sparse_attention(d, dv);

  // Routing: required by a MoE model, meaningless without one.
  const bool moe = w.model().has_moe();
  Validator rv = v.at("workload.routing");
  if (!moe) {
    if (w.has_routing()) rv.error("", "the model has no moe section; remove routing");
    return;
  }
  if (w.routing().source_case() == config::MoeRouting::SOURCE_NOT_SET) {
    rv.error("", "a MoE model needs routing { synthetic { ... } } or routing { trace: \"...\" }");
    return;
  }
  if (w.routing().has_synthetic()) {
    const auto& r = w.routing().synthetic();
    Validator sv = rv.at("synthetic");
    if (r.has_zipf_exponent() && !(r.zipf_exponent() >= 0 && r.zipf_exponent() <= 10)) {
      sv.error("zipf_exponent", "must be in [0, 10] (0: uniform popularity)");
    }
    if (r.has_stickiness() && !(r.stickiness() >= 0 && r.stickiness() < 1)) {
      sv.error("stickiness", "must be in [0, 1)");
    }
    return;
  }
  const auto& m = w.model();
  if (w.routing().trace().empty()) {
    rv.error("trace", "empty path");
    return;
  }
  if (!batch_ok || !steps_ok || !m.moe().has_experts() || !m.moe().has_experts_per_token() ||
      !m.has_layers() || m.moe().first_moe_layer() >= m.layers()) {
    return;  // reported above; the trace can only be checked against a valid shape
  }
  TraceRouter::load(
      w.routing().trace(),
      TraceRouter::Shape{d.decode_steps(), routed_tokens(root), m.moe().experts(),
                         m.moe().experts_per_token(), m.layers(), m.moe().first_moe_layer()},
      rv);
}

DecodeOptions options_from_config(const config::Config& root) {
  const auto& w = root.workload();
  const auto& d = w.decode();
  DecodeOptions o;
  o.batch = d.batch_size();
  o.context = d.context_tokens();
  o.steps = d.decode_steps();
  o.kv_block_tokens = d.has_kv_block_tokens() ? d.kv_block_tokens() : 16;
  if (d.has_speculative()) {
    o.draft = TransformerShape::from_config(d.speculative().draft(), w.parallelism());
    o.gamma = d.speculative().draft_tokens();
    o.alpha = d.speculative().acceptance_rate();
  }
  if (d.has_sparse_attention()) {
    const auto& sa = d.sparse_attention();
    o.sink_tokens = sa.sink_tokens();
    o.window_tokens = sa.window_tokens();
    o.top_k_pages = sa.top_k_pages();
    o.page_locality = sa.page_locality();
    o.layer_similarity = sa.layer_similarity();
  }
  o.seed = root.run().seed();
  o.prefill = d.prefill();
  o.hidden_states = d.hidden_state_checkpoints();
  o.micro_batches = d.has_micro_batches() ? d.micro_batches() : 1;
  const auto& par = w.parallelism();
  o.pipeline_micro_batches = par.has_pipeline_micro_batches() ? par.pipeline_micro_batches()
                             : par.pipeline_parallel() > 1    ? par.pipeline_parallel()
                                                              : 1;
  return o;
}

std::unique_ptr<Router> make_router(const config::Config& root) {
  const auto& w = root.workload();
  if (!w.model().has_moe()) return nullptr;
  const auto& m = w.model();
  const auto& d = w.decode();
  if (w.routing().has_synthetic()) {
    const auto& r = w.routing().synthetic();
    SyntheticRouterParams p;
    p.experts = m.moe().experts();
    p.top_k = m.moe().experts_per_token();
    p.moe_layers = m.layers() - m.moe().first_moe_layer();
    p.batch = routed_tokens(root);
    p.zipf = r.zipf_exponent();
    p.stickiness = r.stickiness();
    p.phase_steps = r.phase_steps();
    p.seed = root.run().seed();
    return std::make_unique<SyntheticRouter>(p);
  }
  std::vector<ConfigIssue> issues;
  Validator v(issues, "workload.routing");
  auto trace = TraceRouter::load(
      w.routing().trace(),
      TraceRouter::Shape{d.decode_steps(), routed_tokens(root), m.moe().experts(),
                         m.moe().experts_per_token(), m.layers(), m.moe().first_moe_layer()},
      v);
  if (!trace) throw ConfigError(issues);  // the file changed since validation
  return std::make_unique<TraceRouter>(std::move(*trace));
}

const WorkloadRegistrar kRegistrar(WorkloadKind{
    "decode", "static-batch decode of a transformer (dense or MoE) with a prefilled KV cache",
    validate_decode,
    [](const config::Config& root) {
      return DecodeWorkload::footprint_bytes(TransformerShape::of_workload(root),
                                             options_from_config(root));
    },
    [](const config::Config& root) -> std::unique_ptr<Workload> {
      return std::make_unique<DecodeWorkload>(TransformerShape::of_workload(root),
                                              options_from_config(root), make_router(root));
    }});

}  // namespace

}  // namespace tiersim
