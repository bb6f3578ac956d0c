#include "workloads/forward_pass.h"

#include <algorithm>
#include <stdexcept>

namespace tiersim {

namespace {
uint64_t ceil_div(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

// The rows an op's cost is evaluated for: MoE expert ops see every token-to-expert assignment.
uint64_t cost_rows(const TransformerShape& s, OpKind k, uint64_t tokens) {
  const bool per_assignment =
      k == OpKind::kExpertGateUp || k == OpKind::kExpertActivation || k == OpKind::kExpertDown;
  return per_assignment ? tokens * s.experts_per_token : tokens;
}

// The linear layers that compute in the model's gemm_dtype (W8A8 checkpoints). The router, the
// LM head and MLA's per-head absorptions stay in the activation dtype, as FP8 serving stacks
// keep them.
bool runs_in_gemm_dtype(OpKind kind) {
  switch (kind) {
    case OpKind::kQkvProj:
    case OpKind::kOutProj:
    case OpKind::kGateUpProj:
    case OpKind::kDownProj:
    case OpKind::kExpertGateUp:
    case OpKind::kExpertDown:
    case OpKind::kSharedGateUp:
    case OpKind::kSharedDown:
      return true;
    default:
      return false;
  }
}

}  // namespace

void ModelObjects::register_weights(ObjectTable& t, const TransformerShape& s,
                                    const std::string& prefix, ObjectClass weights,
                                    const WeightUse& use,
                                    const std::function<void(uint32_t)>& after_layer) {
  const ObjectClass tables = weights == ObjectClass::kWeight ? ObjectClass::kEmbedding : weights;
  // Dense weights: read once per pass, every step, for certain.
  const ObjectIntent every{0, use.last_step, use.passes_per_step, 1.0, {}};
  // Tables are gathered a few rows per token (no whole read), but a tied embedding is read
  // whole by the LM head.
  ObjectIntent gathered = every;
  gathered.uses_per_step = 0;
  const bool staged = stage >= 0 && s.pp > 1;
  const bool first_stage = !staged || stage == 0;
  const bool last_stage = !staged || stage + 1 == int64_t{s.pp};
  const TransformerShape::LayerRange range = staged ? s.stage_layers(static_cast<uint32_t>(stage))
                                                    : TransformerShape::LayerRange{0, s.layers};
  // A last stage that is not the first reads its tied LM head's own copy of the table whole.
  const ObjectIntent table_use = s.tied_embeddings && last_stage ? every : gathered;
  embedding = first_stage || (last_stage && s.tied_embeddings)
                  ? t.add(prefix + "embedding", tables, s.embedding_bytes(), LayerId(), table_use)
                  : ObjectId();
  positions =
      first_stage && s.position_table_bytes() > 0
          ? t.add(prefix + "positions", tables, s.position_table_bytes(), LayerId(), gathered)
          : ObjectId();
  layers.assign(s.layers, Layer{});
  for (uint32_t l = range.first; l < range.end; ++l) {
    const std::string p = prefix + "layer" + std::to_string(l) + ".";
    const LayerId id(l);
    Layer lo;
    lo.attn_norm = t.add(p + "attn_norm", weights, s.norm_weight_bytes(), id, every);
    lo.qkv = t.add(p + "qkv", weights, s.qkv_weight_bytes(), id, every);
    if (s.latent) {
      lo.kv_up = t.add(p + "kv_up", weights, s.absorb_weight_bytes() + s.unabsorb_weight_bytes(),
                       id, every);
    }
    lo.out = t.add(p + "out", weights, s.out_weight_bytes(), id, every);
    if (!s.parallel_attn_mlp) {
      lo.mlp_norm = t.add(p + "mlp_norm", weights, s.norm_weight_bytes(), id, every);
    }
    if (!s.moe_layer(l)) {
      lo.gate_up = t.add(p + "gate_up", weights, s.gate_up_weight_bytes(), id, every);
      lo.down = t.add(p + "down", weights, s.down_weight_bytes(), id, every);
    } else {
      lo.router = t.add(p + "router", weights, s.router_weight_bytes(), id, every);
      if (s.shared_experts > 0) {
        lo.shared = t.add(p + "shared_experts", weights,
                          s.shared_gate_up_bytes() + s.shared_down_bytes(), id, every);
      }
      // Expert parallelism: this rank's (experts + redundant) / ep slots. The symmetric
      // shortcut plays the slowest rank's copies in each layer (see route()), and slot e's
      // intents are those of expert e, a stand-in; a rank simulated as itself states its own
      // copies' (use.slot_expert).
      for (uint32_t e = 0; e < s.experts_rank(); ++e) {
        ObjectIntent routed = every;
        if (use.router != nullptr) {
          const uint32_t m = l - s.first_moe_layer;
          const ExpertCopy copy =
              use.slot_expert ? use.slot_expert(m, e) : ExpertCopy{static_cast<uint16_t>(e), 1};
          const uint16_t expert = copy.expert;
          // Token t uses copy t mod copies: each copy sees about 1/copies of the tokens.
          const auto share = [&](uint32_t tokens) {
            return static_cast<uint32_t>((uint64_t{tokens} + copy.copies - 1) / copy.copies);
          };
          const double chance = use.router->use_probability(m, expert, share(use.routed_tokens));
          routed.uses_per_step = chance * use.passes_per_step;
          routed.confidence = chance;
          if (use.prefill_steps > 0) {
            // The prompt routes many more tokens: nearly every expert is used. Restated when
            // decode begins.
            const double busy =
                use.router->use_probability(m, expert, share(use.prefill_routed_tokens));
            routed.phases = {{0, busy * use.passes_per_step, busy},
                             {use.prefill_steps, chance * use.passes_per_step, chance}};
          }
        }
        const ObjectId x =
            t.add(p + "expert" + std::to_string(e), weights, s.expert_bytes(), id, routed);
        if (e == 0) lo.first_expert = x.value();
      }
    }
    layers[l] = lo;
    if (after_layer) after_layer(l);
  }
  embedding_norm = first_stage && s.embedding_norm ? t.add(prefix + "embedding_norm", weights,
                                                           s.norm_weight_bytes(), LayerId(), every)
                                                   : ObjectId();
  final_norm = last_stage
                   ? t.add(prefix + "final_norm", weights, s.norm_weight_bytes(), LayerId(), every)
                   : ObjectId();
  lm_head = !last_stage ? ObjectId()
            : s.tied_embeddings
                ? embedding
                : t.add(prefix + "lm_head", weights, s.lm_head_bytes(), LayerId(), every);
}

std::pair<ObjectId, uint64_t> ModelObjects::weight_of(const TransformerShape& s, OpKind kind,
                                                      uint32_t layer) const {
  const Layer* lo = layer < layers.size() ? &layers[layer] : nullptr;
  switch (kind) {
    case OpKind::kEmbedding:
      return {embedding, 0};
    case OpKind::kAttnNorm:
      return {lo->attn_norm, 0};
    case OpKind::kQkvProj:
      return {lo->qkv, 0};
    case OpKind::kLatentAbsorb:
      return {lo->kv_up, 0};
    case OpKind::kLatentUnabsorb:
      return {lo->kv_up, s.absorb_weight_bytes()};
    case OpKind::kOutProj:
      return {lo->out, 0};
    case OpKind::kMlpNorm:
      return {lo->mlp_norm, 0};
    case OpKind::kGateUpProj:
      return {lo->gate_up, 0};
    case OpKind::kDownProj:
      return {lo->down, 0};
    case OpKind::kRouter:
      return {lo->router, 0};
    case OpKind::kSharedGateUp:
      return {lo->shared, 0};
    case OpKind::kSharedDown:
      return {lo->shared, s.shared_gate_up_bytes()};
    case OpKind::kFinalNorm:
      return {final_norm, 0};
    case OpKind::kEmbeddingNorm:
      return {embedding_norm, 0};
    case OpKind::kLmHead:
      return {lm_head, 0};
    default:
      return {ObjectId(), 0};
  }
}

ForwardPass::ForwardPass(const TransformerShape& shape, uint32_t max_sequences, Router* router,
                         std::optional<SparseAttentionParams> sparse, uint64_t seed)
    : shape_(shape),
      max_sequences_(max_sequences),
      sparse_(sparse),
      page_rng_(seed ^ 0x7061676573656c63ULL),
      router_(router) {
  end_layer_ = shape.layers;
  dense_ops_ = shape.layer_ops(0);
  if (shape.moe()) moe_ops_ = shape.layer_ops(shape.first_moe_layer);
  if (sparse_) {
    // Page selection right before attention.
    for (auto* ops : {&dense_ops_, &moe_ops_}) {
      auto at = std::find(ops->begin(), ops->end(), OpKind::kAttention);
      if (at != ops->end()) ops->insert(at, OpKind::kPageSelect);
    }
    selected_.assign(size_t{shape.layers} * max_sequences * sparse_->top_k_pages, 0);
    selected_count_.assign(size_t{shape.layers} * max_sequences, 0);
  }
  head_ops_ = {OpKind::kEmbedding};
  if (shape.tp > 1) head_ops_.push_back(OpKind::kAllReduce);  // vocab-parallel lookup
  if (shape.embedding_norm) head_ops_.push_back(OpKind::kEmbeddingNorm);
  tail_ops_ = {OpKind::kFinalNorm, OpKind::kLmHead};
  if (shape.tp > 1) tail_ops_.push_back(OpKind::kAllGather);  // vocab-parallel logits
  if (shape.moe()) {
    if (router_ == nullptr) throw std::logic_error("ForwardPass: a MoE model needs a router");
    tokens_per_expert_.resize(shape.experts);
    up_operands_.resize(shape.experts_rank());
    down_operands_.resize(shape.experts_rank());
    load_.assign(size_t{shape.moe_layers()} * shape.experts, 0);
    if (shape.ep > 1) {
      const size_t cells = size_t{shape.ep} * shape.ep;
      ep_traffic_.assign(size_t{shape.moe_layers()} * 2 * cells, 0);
      if (shape.ep_domain_nodes > 0) {
        ep_domain_traffic_.assign(
            size_t{shape.moe_layers()} * 2 * shape.ep * (shape.ep / shape.ep_domain_nodes), 0);
      }
      ep_rank_rows_.assign(shape.ep, 0);
      ep_rank_active_.assign(shape.ep, 0);
      // Each MoE layer's placement of expert copies, from the router's expected loads (its
      // first popularity phase; a synthetic router's use probability for one token is
      // proportional to the expert's share. Routing traces are refused with expert
      // parallelism).
      for (uint32_t m = 0; m < shape.moe_layers(); ++m) {
        if (shape.redundant_experts == 0) {
          placement_.push_back(ExpertPlacement::contiguous(shape.experts, shape.ep));
          continue;
        }
        std::vector<double> load(shape.experts);
        for (uint32_t e = 0; e < shape.experts; ++e)
          load[e] = router_->use_probability(m, static_cast<uint16_t>(e), 1);
        placement_.push_back(ExpertPlacement::balanced(load, shape.ep, shape.redundant_experts));
      }
      slot_rows_.assign(size_t{shape.ep} * shape.experts_rank(), 0);
      token_ranks_.assign(shape.experts_per_token, 0);
    }
  }
}

void ForwardPass::set_pipeline_stage(uint32_t stage, uint32_t micro_batches) {
  if (shape_.pp < 2 || stage >= shape_.pp || micro_batches_ > 1) {
    throw std::logic_error("ForwardPass: a pipeline stage needs pipeline parallelism over it");
  }
  objects_.stage = stage;
  stage_passes_ = std::max(1u, micro_batches);
  if (shape_.moe()) step_routed_.resize(shape_.moe_layers());
  const TransformerShape::LayerRange r = shape_.stage_layers(stage);
  first_layer_ = r.first;
  end_layer_ = r.end;
  if (stage > 0) head_ops_.clear();
  if (stage + 1 < shape_.pp) tail_ops_.clear();
}

void ForwardPass::set_expert_rank(uint32_t rank) {
  if (shape_.ep < 2 || rank >= shape_.ep) {
    throw std::logic_error("ForwardPass: an expert rank needs expert parallelism over it");
  }
  own_rank_ = rank;
}

ExpertCopy ForwardPass::slot_expert(uint32_t moe_layer, uint32_t slot) const {
  if (own_rank_ < 0 || placement_.empty()) return {static_cast<uint16_t>(slot), 1};
  const ExpertPlacement& place = placement_[moe_layer];
  const uint16_t expert = place.slot_expert[size_t(own_rank_) * place.slots + slot];
  return {expert, place.copies(expert)};
}

void ForwardPass::select_micro_batch(uint32_t k) {
  if (k == UINT32_MAX || micro_batches_ == 1) {
    seqs_ = all_seqs_;
    count_ = all_count_;
  } else {
    const uint64_t first = uint64_t{k} * all_count_ / micro_batches_;
    const uint64_t end = uint64_t{k + 1} * all_count_ / micro_batches_;
    seqs_ = all_seqs_ + first;
    count_ = static_cast<uint32_t>(end - first);
  }
  tokens_ = sampled_ = 0;
  for (uint32_t i = 0; i < count_; ++i) {
    tokens_ += seqs_[i].queries;
    sampled_ += seqs_[i].sampled;
  }
}

void ForwardPass::begin(const PassSequence* seqs, uint32_t count, uint32_t step) {
  all_seqs_ = seqs;
  all_count_ = count;
  step_ = step;
  micro_batch_ = 0;
  select_micro_batch(UINT32_MAX);
  pos_ = layer_op_ = 0;
  layer_ = first_layer_;
  if (shape_.moe()) {
    routed_.resize(
        std::max<size_t>(routed_.size(), tokens_ * shape_.ep * shape_.experts_per_token));
    active_.resize(active_.size() + shape_.moe_layers(), 0);
    ++routed_passes_;
  }
}

bool ForwardPass::next(Op& op, OpId id) {
  const uint32_t head = static_cast<uint32_t>(head_ops_.size());
  OpKind kind;
  uint32_t layer = UINT32_MAX;
  if (pos_ < head) {
    kind = head_ops_[pos_++];
  } else if (pos_ == head) {
    const std::vector<OpKind>& ops = shape_.moe_layer(layer_) ? moe_ops_ : dense_ops_;
    if (micro_batches_ > 1 && layer_op_ == 0) select_micro_batch(micro_batch_);
    kind = ops[layer_op_];
    layer = layer_;
    if (++layer_op_ == ops.size()) {
      layer_op_ = 0;
      if (++micro_batch_ == micro_batches_) {
        micro_batch_ = 0;
        if (++layer_ == end_layer_) {
          layer_ = first_layer_;
          ++pos_;
        }
      }
    }
  } else {
    if (micro_batches_ > 1 && count_ != all_count_) select_micro_batch(UINT32_MAX);
    const uint32_t i = pos_ - head - 1;
    if (i >= tail_ops_.size()) return false;
    kind = tail_ops_[i];
    ++pos_;
  }
  fill(op, kind, layer);
  op.id = id;
  return true;
}

uint64_t ForwardPass::max_activation_bytes(uint64_t layer_tokens, uint64_t layer_sampled,
                                           uint64_t sequences, uint64_t pass_tokens,
                                           uint64_t pass_sampled) const {
  uint64_t m = 0;
  for (const auto* list : {&head_ops_, &dense_ops_, &moe_ops_, &tail_ops_}) {
    const bool whole = list == &head_ops_ || list == &tail_ops_;
    const uint64_t tokens = whole && pass_tokens ? pass_tokens : layer_tokens;
    const uint64_t sampled = whole && pass_sampled ? pass_sampled : layer_sampled;
    for (OpKind k : *list) {
      OpCost c;
      if (k == OpKind::kAttention) {
        // Activations scale with the query tokens (see fill_attention).
        c = op_cost(shape_, k, 1, 1, 1);
        c.activation_read_bytes *= tokens;
        c.activation_write_bytes *= tokens;
      } else if (k == OpKind::kPageSelect) {
        c = page_select_cost(shape_, 0, tokens);
        c.activation_write_bytes = 4 * sequences * (sparse_ ? sparse_->top_k_pages : 0);
      } else {
        const bool sampled_only =
            k == OpKind::kFinalNorm || k == OpKind::kLmHead || k == OpKind::kAllGather;
        c = op_cost(shape_, k, cost_rows(shape_, k, sampled_only ? sampled : tokens), 1);
      }
      m = std::max(m, std::max(c.activation_read_bytes, c.activation_write_bytes));
    }
  }
  return m;
}

void ForwardPass::route(uint32_t layer) {
  const uint32_t m = layer - shape_.first_moe_layer;
  const uint32_t experts = shape_.experts;
  const uint32_t ep = shape_.ep, k = shape_.experts_per_token;
  // Expert parallelism: every rank routes as many tokens as this one (symmetric ranks); rank
  // r's tokens are [r * tokens, (r + 1) * tokens) of one routing call.
  const uint64_t routed_tokens = tokens_ * ep;
  if (objects_.stage >= 0) {
    // A micro-batch of the step (ep is 1): the step's routing. The stage's first routed layer
    // of a step routes every MoE layer of the model, in order, over every token of the step,
    // so each layer draws what it would in one pass of the whole model; each micro-batch then
    // takes its tokens' experts.
    const size_t k_ = shape_.experts_per_token;
    if (routed_step_ != int64_t{step_}) {
      for (uint32_t mm = 0; mm < shape_.moe_layers(); ++mm) {
        std::vector<uint16_t>& all = step_routed_[mm];
        all.resize(std::max<size_t>(all.size(), slice_step_tokens_ * k_));
        router_->route(step_, mm, static_cast<uint32_t>(slice_step_tokens_), all.data());
      }
      routed_step_ = step_;
    }
    const std::vector<uint16_t>& step = step_routed_[m];
    if (slice_first_ + tokens_ > slice_step_tokens_) {
      throw std::logic_error("ForwardPass: a pipeline micro-batch outside its step's tokens");
    }
    std::copy(step.begin() + slice_first_ * k_, step.begin() + (slice_first_ + tokens_) * k_,
              routed_.begin());
  } else {
    router_->route(step_, m, static_cast<uint32_t>(routed_tokens), routed_.data());
  }
  std::fill(tokens_per_expert_.begin(), tokens_per_expert_.end(), 0);
  const size_t assignments = routed_tokens * k;
  for (size_t i = 0; i < assignments; ++i)
    ++tokens_per_expert_[routed_[i]];
  const ModelObjects::Layer& lo = objects_.layers[layer];
  const uint64_t up_bytes = shape_.expert_gate_up_bytes();
  const uint64_t down_bytes = shape_.expert_down_bytes();
  uint16_t n = 0;
  up_flops_ = down_flops_ = 0;
  expert_rows_ = 0;
  // One expert kernel pair on `rows` assignments, reading the weights in local slot `slot`.
  auto add_operands = [&](uint32_t slot, uint32_t rows) {
    const ObjectId object(lo.first_expert + slot);
    const double up = op_cost(shape_, OpKind::kExpertGateUp, rows, 1).flops;
    const double down = op_cost(shape_, OpKind::kExpertDown, rows, 1).flops;
    up_operands_[n] = Operand{object, 0, up_bytes, Access::kRead, rows, up};
    down_operands_[n] = Operand{object, up_bytes, down_bytes, Access::kRead, rows, down};
    up_flops_ += up;
    down_flops_ += down;
    expert_rows_ += rows;
    ++n;
  };
  for (uint32_t e = 0; e < experts; ++e)
    load_[size_t{m} * experts + e] += tokens_per_expert_[e];
  if (ep == 1) {
    for (uint32_t e = 0; e < experts; ++e) {
      if (tokens_per_expert_[e] > 0) add_operands(e, tokens_per_expert_[e]);
    }
  } else {
    // Traffic: token t of rank t / tokens to the ranks of the copies it uses (placement_), and
    // back.
    const ExpertPlacement& place = placement_[m];
    const uint32_t slots = place.slots;
    const size_t cells = size_t{ep} * ep;
    uint64_t* dispatch = &ep_traffic_[size_t{m} * 2 * cells];
    uint64_t* combine = dispatch + cells;
    std::fill(dispatch, dispatch + 2 * cells, 0);
    std::fill(slot_rows_.begin(), slot_rows_.end(), 0);
    // A token's hidden state goes once to each other rank holding any of the copies it uses,
    // which reduces their outputs locally before the combine sends one back (DeepEP's scheme).
    // Bytes per token each way: FP8 dispatch carries one FP32 scale per 128 channels (DeepEP).
    const uint64_t hidden_bytes = shape_.hidden_bytes(1);
    const uint64_t dispatch_bytes =
        shape_.ep_dispatch_fp8 ? shape_.hidden + 4 * ((uint64_t{shape_.hidden} + 127) / 128)
                               : hidden_bytes;
    // Across scale-out domains a token also crosses to each other domain once.
    const uint32_t dn = shape_.ep_domain_nodes, domains = dn > 0 ? ep / dn : 0;
    uint64_t* domain_dispatch =
        dn > 0 ? &ep_domain_traffic_[size_t{m} * 2 * ep * domains] : nullptr;
    if (dn > 0) std::fill(domain_dispatch, domain_dispatch + size_t{2} * ep * domains, 0);
    for (size_t t = 0; t < routed_tokens; ++t) {
      const size_t from = t / tokens_;
      for (uint32_t j = 0; j < k; ++j) {
        const uint32_t g = place.slot_for(routed_[t * k + j], t);
        ++slot_rows_[g];
        const uint32_t to = g / slots;
        token_ranks_[j] = to;
        bool first_to_rank = to != from;
        bool first_to_domain = dn > 0 && to / dn != from / dn;
        for (uint32_t i = 0; i < j && (first_to_rank || first_to_domain); ++i) {
          first_to_rank = first_to_rank && token_ranks_[i] != to;
          first_to_domain = first_to_domain && token_ranks_[i] / dn != to / dn;
        }
        if (first_to_rank) dispatch[from * ep + to] += 1;  // tokens, in bytes below
        if (first_to_domain) domain_dispatch[from * domains + to / dn] += 1;
      }
    }
    if (dn > 0) {
      // The combine brings each token back from each domain once (reduced there).
      uint64_t* domain_combine = domain_dispatch + size_t{ep} * domains;
      for (size_t c = 0; c < size_t{ep} * domains; ++c) {
        domain_combine[c] = domain_dispatch[c] * hidden_bytes;
        domain_dispatch[c] *= dispatch_bytes;
      }
    }
    for (size_t a = 0; a < ep; ++a) {
      for (size_t b = 0; b < ep; ++b)
        combine[b * ep + a] = dispatch[a * ep + b] * hidden_bytes;
    }
    for (size_t c = 0; c < cells; ++c)
      dispatch[c] *= dispatch_bytes;
    // The combine waits for the slowest rank. The symmetric shortcut computes the copies of
    // the rank the accelerator's cost model estimates the slowest (then the most assignments,
    // then the lowest rank), in its own slots; before the model is ready, the rank with the
    // most distinct copies to read (decode's expert kernels stream their weights), then the
    // most assignments (the arithmetic), then the lowest rank. A rank simulated as itself
    // computes its own copies and the rendezvous at the combine waits for the slowest.
    std::fill(ep_rank_rows_.begin(), ep_rank_rows_.end(), 0);
    std::fill(ep_rank_active_.begin(), ep_rank_active_.end(), 0);
    for (size_t g = 0; g < slot_rows_.size(); ++g) {
      ep_rank_rows_[g / slots] += slot_rows_[g];
      ep_rank_active_[g / slots] += slot_rows_[g] > 0 ? 1 : 0;
    }
    uint32_t slowest = 0;
    if (own_rank_ < 0 && expert_cost_ != nullptr && expert_cost_->ready()) {
      // The accelerator's estimate of each rank's expert kernels: per copy, its weights'
      // stream or its rows' arithmetic, whichever takes longer (the engine overlaps the two
      // tile by tile, a few tiles deep, so a copy's time is about the longer of them).
      const config::Dtype dtype =
          runs_in_gemm_dtype(OpKind::kExpertGateUp) ? shape_.gemm_dtype : shape_.activation_dtype;
      const double up_stream_s = expert_cost_->stream_s(up_bytes);
      const double down_stream_s = expert_cost_->stream_s(down_bytes);
      double slowest_s = -1;
      for (uint32_t r = 0; r < ep; ++r) {
        double t = 0;
        for (uint32_t s = 0; s < slots; ++s) {
          const uint32_t rows = slot_rows_[size_t{r} * slots + s];
          if (rows == 0) continue;
          t += std::max(up_stream_s,
                        expert_cost_->matrix_s(
                            op_cost(shape_, OpKind::kExpertGateUp, rows, 1).flops, rows, dtype)) +
               std::max(down_stream_s,
                        expert_cost_->matrix_s(op_cost(shape_, OpKind::kExpertDown, rows, 1).flops,
                                               rows, dtype));
        }
        if (t > slowest_s || (t == slowest_s && ep_rank_rows_[r] > ep_rank_rows_[slowest])) {
          slowest = r;
          slowest_s = t;
        }
      }
    } else {
      for (uint32_t r = 1; r < ep; ++r) {
        if (ep_rank_active_[r] > ep_rank_active_[slowest] ||
            (ep_rank_active_[r] == ep_rank_active_[slowest] &&
             ep_rank_rows_[r] > ep_rank_rows_[slowest])) {
          slowest = r;
        }
      }
    }
    ep_load_ratio_sum_ += double(*std::max_element(ep_rank_rows_.begin(), ep_rank_rows_.end())) /
                          (double(assignments) / ep);
    uint64_t sent = 0;  // every rank's dispatch
    for (size_t c = 0; c < cells; ++c)
      sent += dispatch[c];
    ep_dispatch_bytes_ += sent / ep;
    if (dn > 0) {
      uint64_t crossing = 0;  // every rank's dispatch bytes over the NICs
      for (size_t c = 0; c < size_t{ep} * domains; ++c)
        crossing += domain_dispatch[c];
      ep_scale_out_dispatch_bytes_ += crossing / ep;
    }
    ++ep_routed_layers_;
    const size_t runs = own_rank_ >= 0 ? size_t(own_rank_) : size_t{slowest};
    for (uint32_t s = 0; s < slots; ++s) {
      const uint32_t rows = slot_rows_[runs * slots + s];
      if (rows > 0) add_operands(s, rows);
    }
  }
  active_now_ = n;
  active_[size_t{routed_passes_ - 1} * shape_.moe_layers() + m] = n;
}

bool ForwardPass::sparse_middle(uint64_t cached, uint64_t& first, uint64_t& end) const {
  // Middle pages: whole pages after the sinks (rounded up) and before the window (rounded down).
  const uint64_t B = sparse_->block_tokens;
  first = ceil_div(sparse_->sink_tokens, B);
  end = cached >= sparse_->window_tokens ? (cached - sparse_->window_tokens) / B : 0;
  return end > first && end - first > sparse_->top_k_pages;
}

void ForwardPass::select_pages(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end) {
  const uint32_t k = sparse_->top_k_pages;
  const size_t cell = size_t{layer} * max_sequences_ + seq;
  uint32_t* pages = &selected_[cell * k];
  uint32_t& count = selected_count_[cell];
  // Keep each previous page with probability page_locality (pages never leave the middle: the
  // sinks are fixed and the window only moves forward).
  uint32_t kept = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (pages[i] >= first && pages[i] < end && page_rng_.uniform() < sparse_->page_locality) {
      pages[kept++] = pages[i];
    }
  }
  pages_kept_ += kept;
  const uint64_t middle = end - first;  // > k
  count = kept;
  // The previous layer's pages of this sequence in this step (layers run in order; micro-batches
  // finish a layer before the next), for cross-layer similarity.
  const uint32_t* above = nullptr;
  uint32_t above_count = 0;
  if (layer > 0 && sparse_->layer_similarity > 0) {
    const size_t up = cell - max_sequences_;
    above = &selected_[up * k];
    above_count = selected_count_[up];
  }
  while (count < k) {
    uint32_t p = static_cast<uint32_t>(first + page_rng_.below(middle));
    if (above_count > 0 && page_rng_.uniform() < sparse_->layer_similarity) {
      // One of the previous layer's pages not chosen yet (all chosen: the uniform draw).
      const uint32_t start = static_cast<uint32_t>(page_rng_.below(above_count));
      for (uint32_t j = 0; j < above_count; ++j) {
        const uint32_t q = above[(start + j) % above_count];
        if (q >= first && q < end && std::find(pages, pages + count, q) == pages + count) {
          p = q;
          break;
        }
      }
    }
    if (std::find(pages, pages + count, p) == pages + count) pages[count++] = p;
  }
  std::sort(pages, pages + count);
  pages_selected_ += k;
}

double ForwardPass::narrow_kv_elements_per_byte(config::Dtype compute) const {
  // A KV (or its page digests) narrower than the kernel's dtype is converted element by element.
  const uint32_t kv_bits = dtype_bits(shape_.kv_dtype);
  return kv_bits < dtype_bits(compute) ? 8.0 / kv_bits : 0.0;
}

void ForwardPass::fill_page_select(Op& op, uint32_t layer) {
  // Score the digests of each sequence's middle pages; pick its top-k.
  operands_.clear();
  double flops = 0;
  uint64_t queries = 0;
  for (uint32_t i = 0; i < count_; ++i) {
    const PassSequence& ps = seqs_[i];
    queries += ps.queries;
    uint64_t first, end;
    if (!sparse_middle(ps.cached, first, end)) continue;  // attends to all of it
    select_pages(layer, ps.seq, first, end);
    flops += page_select_cost(shape_, end - first, ps.queries).flops;
    kv_->read_digests(layer, ps.seq, first, end, operands_);
  }
  op.op_class = OpClass::kVector;
  op.flops = flops;
  op.kv_elements_per_byte = narrow_kv_elements_per_byte(op.compute_dtype);
  op.activation_read_bytes = dtype_bytes(shape_.activation_dtype, queries * shape_.q_dim());
  op.activation_write_bytes = 4 * uint64_t{count_} * sparse_->top_k_pages;
  op.set_operands(operands_.data(), static_cast<uint16_t>(operands_.size()));
}

void ForwardPass::fill_attention(Op& op, uint32_t layer) {
  operands_.clear();
  double flops = 0;
  uint32_t max_q = 1;
  for (uint32_t i = 0; i < count_; ++i) {
    const PassSequence& ps = seqs_[i];
    max_q = std::max(max_q, ps.queries);
    uint64_t attended = 0;
    uint64_t first = 0, end = 0;
    if (!sparse_ || !sparse_middle(ps.cached, first, end)) {
      kv_->read(layer, ps.seq, 0, ps.cached, operands_);
      attended = ps.cached;
    } else {
      // Sinks and window rounded out to whole pages, and the selected middle pages (adjacent
      // pages merged into one range).
      const uint64_t B = sparse_->block_tokens;
      kv_->read(layer, ps.seq, 0, first * B, operands_);
      attended += first * B;
      const size_t cell = size_t{layer} * max_sequences_ + ps.seq;
      const uint32_t* pages = &selected_[cell * sparse_->top_k_pages];
      const uint32_t count = selected_count_[cell];
      for (uint32_t a = 0; a < count;) {
        uint32_t b = a + 1;
        while (b < count && pages[b] == pages[b - 1] + 1)
          ++b;
        kv_->read(layer, ps.seq, uint64_t{pages[a]} * B, uint64_t{pages[b - 1] + 1} * B, operands_);
        attended += uint64_t{pages[b - 1] + 1 - pages[a]} * B;
        a = b;
      }
      kv_->read(layer, ps.seq, end * B, ps.cached, operands_);
      attended += ps.cached - end * B;
      pages_read_ += count;
    }
    flops += op_cost(shape_, OpKind::kAttention, 1, attended + ps.queries, ps.queries).flops;
    kv_->write(layer, ps.seq, ps.cached, ps.queries, operands_);
    if (sparse_) {
      // The digests of the pages the new tokens land in are updated.
      const uint64_t B = sparse_->block_tokens;
      kv_->write_digests(layer, ps.seq, ps.cached / B, (ps.cached + ps.queries - 1) / B + 1,
                         operands_);
    }
  }
  // Rows, activations: the pass's widest sequence sets the rows per KV read.
  const OpCost shape_cost = op_cost(shape_, OpKind::kAttention, 1, max_q, max_q);
  const OpCost act = op_cost(shape_, OpKind::kAttention, 1, 1, 1);
  op.op_class = OpClass::kMatrix;
  op.rows = static_cast<uint32_t>(shape_cost.rows);
  op.max_queries = max_q;
  op.kv_elements_per_byte = narrow_kv_elements_per_byte(op.compute_dtype);
  op.flops = flops;
  op.activation_read_bytes = act.activation_read_bytes * tokens_;
  op.activation_write_bytes = act.activation_write_bytes * tokens_;
  op.set_operands(operands_.data(), static_cast<uint16_t>(operands_.size()));
}

void ForwardPass::fill(Op& op, OpKind kind, uint32_t layer) {
  if (kind == OpKind::kRouter) route(layer);
  // The LM head and the final norm before it run over the sampled positions only.
  const bool sampled_only =
      kind == OpKind::kFinalNorm || kind == OpKind::kLmHead || kind == OpKind::kAllGather;
  const uint64_t tokens = sampled_only ? sampled_ : tokens_;
  // The expert kernels see the assignments this rank computes (with expert parallelism, the
  // slowest rank's; without, every token's k).
  const uint64_t rows = kind == OpKind::kExpertActivation && shape_.ep > 1
                            ? expert_rows_
                            : cost_rows(shape_, kind, tokens);
  const OpCost c = kind == OpKind::kAttention || kind == OpKind::kPageSelect
                       ? OpCost{}
                       : op_cost(shape_, kind, rows, 1);
  op = Op();
  op.kind = kind;
  op.step = StepIndex(step_);
  op.layer = layer == UINT32_MAX ? LayerId() : LayerId(layer);
  op.op_class = c.op_class;
  op.flops = c.flops;
  op.rows = static_cast<uint32_t>(c.rows);
  op.collective_bytes = c.collective_bytes;
  op.compute_dtype = shape_.activation_dtype;
  if (runs_in_gemm_dtype(kind) && shape_.gemm_dtype != shape_.activation_dtype) {
    op.compute_dtype = shape_.gemm_dtype;
    op.quantize_input = dtype_bits(shape_.gemm_dtype) < dtype_bits(shape_.activation_dtype);
  }
  op.activation_read_bytes = c.activation_read_bytes;
  op.activation_write_bytes = c.activation_write_bytes;
  switch (kind) {
    case OpKind::kAttention:
      fill_attention(op, layer);
      return;
    case OpKind::kPageSelect:
      fill_page_select(op, layer);
      return;
    case OpKind::kEpDispatch:
    case OpKind::kEpCombine: {
      const size_t cells = size_t{shape_.ep} * shape_.ep;
      const uint32_t m = layer - shape_.first_moe_layer;
      const size_t half = kind == OpKind::kEpCombine ? 1 : 0;
      op.traffic = &ep_traffic_[(size_t{m} * 2 + half) * cells];
      op.traffic_ranks = shape_.ep;
      if (shape_.ep_domain_nodes > 0) {
        const size_t per = size_t{shape_.ep} * (shape_.ep / shape_.ep_domain_nodes);
        op.domain_traffic = &ep_domain_traffic_[(size_t{m} * 2 + half) * per];
      }
      uint64_t sent = 0;  // this rank's message
      for (size_t b = 0; b < shape_.ep; ++b)
        sent += op.traffic[b];
      op.collective_bytes = sent;
      return;
    }
    case OpKind::kExpertGateUp:
    case OpKind::kExpertDown: {
      const bool up = kind == OpKind::kExpertGateUp;
      op.set_operands(up ? up_operands_.data() : down_operands_.data(), active_now_);
      op.per_operand_compute = true;
      op.flops = up ? up_flops_ : down_flops_;
      op.rows = active_now_
                    ? static_cast<uint32_t>(std::max<uint64_t>(1, expert_rows_ / active_now_))
                    : 1;  // mean, for records
      return;
    }
    default:
      break;
  }
  if (c.weight_bytes == 0) return;
  const auto [object, offset] = objects_.weight_of(shape_, kind, layer);
  if (!object.valid()) return;
  op.add_operand(Operand{object, offset, c.weight_bytes, Access::kRead});
  if (kind == OpKind::kEmbedding && objects_.positions.valid()) {
    op.add_operand(Operand{objects_.positions, 0, c.weight_bytes, Access::kRead});
  }
}

void ForwardPass::summarize_moe(std::vector<SummaryItem>& summary) const {
  if (!shape_.moe()) return;
  const uint32_t ml = shape_.moe_layers();
  double active = 0;
  size_t cells = 0;
  for (uint16_t a : active_) {
    if (a == 0) continue;  // a layer the run did not reach
    active += a;
    ++cells;
  }
  double imbalance = 0;
  uint32_t layers_with_load = 0;
  for (uint32_t l = 0; l < ml; ++l) {
    uint64_t total = 0, max = 0;
    for (uint32_t e = 0; e < shape_.experts; ++e) {
      const uint64_t x = load_[size_t{l} * shape_.experts + e];
      total += x;
      max = std::max(max, x);
    }
    if (total == 0) continue;
    imbalance += double(max) / (double(total) / shape_.experts);
    ++layers_with_load;
  }
  const double mean_active = cells ? active / double(cells) : 0.0;
  summary.push_back({"moe_active_experts_mean", mean_active, "experts"});
  summary.push_back({"moe_expert_load_max_over_mean",
                     layers_with_load ? imbalance / layers_with_load : 0.0, "ratio"});
  // Per step: every MoE layer this pass runs, once per routed pass of a step (a pipeline
  // stage's: its own layers, once per micro-batch).
  uint32_t own_moe_layers = 0;
  for (uint32_t l = first_layer_; l < end_layer_; ++l)
    own_moe_layers += shape_.moe_layer(l) ? 1 : 0;
  summary.push_back(
      {"moe_expert_bytes_per_step",
       mean_active * own_moe_layers * stage_passes_ * static_cast<double>(shape_.expert_bytes()),
       "bytes"});
  if (shape_.ep > 1) {
    const double layers = double(std::max<uint64_t>(1, ep_routed_layers_));
    summary.push_back({"ep_ranks", double(shape_.ep), "ranks"});
    // The most loaded rank's token-to-expert assignments over the mean rank's, per MoE layer.
    summary.push_back({"ep_rank_load_max_over_mean", ep_load_ratio_sum_ / layers, "ratio"});
    summary.push_back(
        {"ep_dispatch_bytes_per_layer", double(ep_dispatch_bytes_) / layers, "bytes"});
    if (shape_.ep_domain_nodes > 0) {
      // Across scale-out domains: the mean rank's dispatch bytes over its NIC (a token once per
      // other domain).
      summary.push_back({"ep_scale_out_dispatch_bytes_per_layer",
                         double(ep_scale_out_dispatch_bytes_) / layers, "bytes"});
    }
  }
}

}  // namespace tiersim
