#include "workloads/decode.h"

#include <algorithm>
#include <stdexcept>

#include "models/registry.h"

namespace tiersim {

namespace {
// The rows an op's cost is evaluated for: MoE expert ops see every token-to-expert assignment.
uint64_t cost_rows(const TransformerShape& s, OpKind k, uint64_t tokens) {
  const bool per_assignment =
      k == OpKind::kExpertGateUp || k == OpKind::kExpertActivation || k == OpKind::kExpertDown;
  return per_assignment ? tokens * s.experts_per_token : tokens;
}

uint64_t ceil_div(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}
}  // namespace

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
      accept_rng_(options.seed ^ 0x7370656364656364ULL),
      page_rng_(options.seed ^ 0x7061676573656c63ULL),
      router_(std::move(router)) {
  init_model(target_, shape, o_.sparse());
  if (o_.speculative()) {
    init_model(draft_, *o_.draft, false);
    passes_ = o_.gamma + 1;
  }
  length_.assign(o_.batch, o_.context);
  const TransformerShape& s = target_.shape;
  const uint64_t tokens = uint64_t{o_.batch} * o_.target_queries();
  operands_.resize(size_t{o_.batch} * (o_.top_k_pages + 4));
  if (o_.sparse()) {
    selected_.assign(size_t{s.layers} * o_.batch * o_.top_k_pages, 0);
    selected_count_.assign(size_t{s.layers} * o_.batch, 0);
    scratch_.reserve(o_.top_k_pages);
  }
  if (s.moe()) {
    if (!router_) throw std::logic_error("DecodeWorkload: a MoE model needs a router");
    routed_.resize(tokens * s.experts_per_token);
    tokens_per_expert_.resize(s.experts);
    up_operands_.resize(s.experts);
    down_operands_.resize(s.experts);
    load_.assign(size_t{s.moe_layers()} * s.experts, 0);
    active_per_layer_step_.assign(size_t{o_.steps} * s.moe_layers(), 0);
  }
}

void DecodeWorkload::init_model(Model& m, const TransformerShape& shape, bool sparse) {
  m.shape = shape;
  m.sparse = sparse;
  m.dense_ops = shape.layer_ops(0);
  if (shape.moe()) m.moe_ops = shape.layer_ops(shape.first_moe_layer);
  if (sparse) {
    // Page selection right before attention.
    for (auto* ops : {&m.dense_ops, &m.moe_ops}) {
      auto at = std::find(ops->begin(), ops->end(), OpKind::kAttention);
      if (at != ops->end()) ops->insert(at, OpKind::kPageSelect);
    }
  }
  m.head_ops = {OpKind::kEmbedding};
  if (shape.tp > 1) m.head_ops.push_back(OpKind::kAllReduce);  // vocab-parallel lookup
  if (shape.embedding_norm) m.head_ops.push_back(OpKind::kEmbeddingNorm);
  m.tail_ops = {OpKind::kFinalNorm, OpKind::kLmHead};
  if (shape.tp > 1) m.tail_ops.push_back(OpKind::kAllGather);  // vocab-parallel logits
}

uint64_t DecodeWorkload::kv_token_area_bytes(const Model& m) const {
  return o_.max_tokens() * m.shape.kv_bytes_per_token_per_layer();
}

uint64_t DecodeWorkload::footprint_bytes(const TransformerShape& s, const DecodeOptions& o) {
  auto kv = [&](const TransformerShape& m, bool sparse) {
    const uint64_t tokens = o.max_tokens();
    const uint64_t digests = sparse ? ceil_div(tokens, o.kv_block_tokens) : 0;
    return uint64_t{m.layers} * o.batch * (tokens + digests) * m.kv_bytes_per_token_per_layer();
  };
  uint64_t bytes = s.total_weight_bytes() + kv(s, o.sparse());
  if (o.speculative()) bytes += o.draft->total_weight_bytes() + kv(*o.draft, false);
  return bytes;
}

void DecodeWorkload::register_model(ObjectTable& t, Model& m, const std::string& prefix,
                                    ObjectClass weights) {
  const TransformerShape& s = m.shape;
  const ObjectClass embeddings =
      weights == ObjectClass::kWeight ? ObjectClass::kEmbedding : weights;
  m.embedding = t.add(prefix + "embedding", embeddings, s.embedding_bytes());
  m.positions = s.position_table_bytes() > 0
                    ? t.add(prefix + "positions", embeddings, s.position_table_bytes())
                    : ObjectId();
  m.layers.clear();
  const uint64_t tok = s.kv_bytes_per_token_per_layer();
  const uint64_t kv_bytes =
      kv_token_area_bytes(m) + (m.sparse ? ceil_div(o_.max_tokens(), o_.kv_block_tokens) * tok : 0);
  for (uint32_t l = 0; l < s.layers; ++l) {
    const std::string p = prefix + "layer" + std::to_string(l) + ".";
    const LayerId id(l);
    LayerObjects lo;
    lo.attn_norm = t.add(p + "attn_norm", weights, s.norm_weight_bytes(), id);
    lo.qkv = t.add(p + "qkv", weights, s.qkv_weight_bytes(), id);
    if (s.latent) {
      lo.kv_up =
          t.add(p + "kv_up", weights, s.absorb_weight_bytes() + s.unabsorb_weight_bytes(), id);
    }
    lo.out = t.add(p + "out", weights, s.out_weight_bytes(), id);
    if (!s.parallel_attn_mlp) {
      lo.mlp_norm = t.add(p + "mlp_norm", weights, s.norm_weight_bytes(), id);
    }
    if (!s.moe_layer(l)) {
      lo.gate_up = t.add(p + "gate_up", weights, s.gate_up_weight_bytes(), id);
      lo.down = t.add(p + "down", weights, s.down_weight_bytes(), id);
    } else {
      lo.router = t.add(p + "router", weights, s.router_weight_bytes(), id);
      if (s.shared_experts > 0) {
        lo.shared = t.add(p + "shared_experts", weights,
                          s.shared_gate_up_bytes() + s.shared_down_bytes(), id);
      }
      for (uint32_t e = 0; e < s.experts; ++e) {
        const ObjectId x = t.add(p + "expert" + std::to_string(e), weights, s.expert_bytes(), id);
        if (e == 0) lo.first_expert = x.value();
      }
    }
    for (uint32_t q = 0; q < o_.batch; ++q) {
      const ObjectId x =
          t.add(p + "kv.seq" + std::to_string(q), ObjectClass::kKvCache, kv_bytes, id);
      if (q == 0) lo.first_kv = x.value();
    }
    m.layers.push_back(lo);
  }
  m.embedding_norm = s.embedding_norm
                         ? t.add(prefix + "embedding_norm", weights, s.norm_weight_bytes())
                         : ObjectId();
  m.final_norm = t.add(prefix + "final_norm", weights, s.norm_weight_bytes());
  m.lm_head =
      s.tied_embeddings ? m.embedding : t.add(prefix + "lm_head", weights, s.lm_head_bytes());
}

void DecodeWorkload::register_objects(ObjectTable& t) {
  register_model(t, target_, "", ObjectClass::kWeight);
  if (o_.speculative()) register_model(t, draft_, "draft.", ObjectClass::kDraftWeight);
  registered_ = true;
}

uint64_t DecodeWorkload::max_activation_bytes() const {
  uint64_t m = 0;
  auto consider_model = [&](const Model& model, uint64_t q) {
    const uint64_t tokens = uint64_t{o_.batch} * q;
    for (const auto* list : {&model.head_ops, &model.dense_ops, &model.moe_ops, &model.tail_ops}) {
      for (OpKind k : *list) {
        const OpCost c =
            k == OpKind::kAttention
                ? op_cost(model.shape, k, o_.batch, o_.max_tokens(), q)
                : op_cost(model.shape, k, cost_rows(model.shape, k, tokens), o_.max_tokens());
        m = std::max(m, std::max(c.activation_read_bytes, c.activation_write_bytes));
      }
    }
  };
  consider_model(target_, o_.target_queries());
  if (o_.speculative()) consider_model(draft_, 1);
  if (o_.sparse()) {
    const OpCost c = page_select_cost(target_.shape, ceil_div(o_.max_tokens(), o_.kv_block_tokens),
                                      o_.target_queries());
    m = std::max(m, o_.batch * std::max(c.activation_read_bytes, c.activation_write_bytes));
  }
  return m;
}

void DecodeWorkload::route(uint32_t layer) {
  const TransformerShape& s = target_.shape;
  const uint32_t m = layer - s.first_moe_layer;
  const uint32_t experts = s.experts;
  router_->route(step_, m, routed_.data());
  std::fill(tokens_per_expert_.begin(), tokens_per_expert_.end(), 0);
  for (uint16_t e : routed_)
    ++tokens_per_expert_[e];
  const LayerObjects& lo = target_.layers[layer];
  const uint64_t up_bytes = s.expert_gate_up_bytes();
  const uint64_t down_bytes = s.expert_down_bytes();
  uint16_t n = 0;
  up_flops_ = down_flops_ = 0;
  for (uint32_t e = 0; e < experts; ++e) {
    const uint32_t rows = tokens_per_expert_[e];
    if (rows == 0) continue;
    load_[size_t{m} * experts + e] += rows;
    const ObjectId object(lo.first_expert + e);
    const double up = op_cost(s, OpKind::kExpertGateUp, rows, 1).flops;
    const double down = op_cost(s, OpKind::kExpertDown, rows, 1).flops;
    up_operands_[n] = Operand{object, 0, up_bytes, Access::kRead, rows, up};
    down_operands_[n] = Operand{object, up_bytes, down_bytes, Access::kRead, rows, down};
    up_flops_ += up;
    down_flops_ += down;
    ++n;
  }
  active_per_layer_step_[size_t{step_} * s.moe_layers() + m] = n;
}

void DecodeWorkload::select_pages(uint32_t layer, uint32_t seq, uint64_t first, uint64_t end) {
  const uint32_t k = o_.top_k_pages;
  const size_t cell = size_t{layer} * o_.batch + seq;
  uint32_t* pages = &selected_[cell * k];
  uint32_t& count = selected_count_[cell];
  // Keep each previous page with probability page_locality (pages never leave the middle: the
  // sinks are fixed and the window only moves forward).
  uint32_t kept = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (pages[i] >= first && pages[i] < end && page_rng_.uniform() < o_.page_locality) {
      pages[kept++] = pages[i];
    }
  }
  pages_kept_ += kept;
  const uint64_t middle = end - first;  // > k
  count = kept;
  while (count < k) {
    const uint32_t p = static_cast<uint32_t>(first + page_rng_.below(middle));
    if (std::find(pages, pages + count, p) == pages + count) pages[count++] = p;
  }
  std::sort(pages, pages + count);
  pages_selected_ += k;
}

void DecodeWorkload::fill_page_select(Op& op, const Model& m, const LayerObjects& lo,
                                      uint32_t layer) {
  // Score the digests of each sequence's middle pages; pick its top-k.
  const TransformerShape& s = m.shape;
  const uint64_t tok = s.kv_bytes_per_token_per_layer();
  const uint64_t B = o_.kv_block_tokens;
  const uint64_t digest_base = kv_token_area_bytes(m);
  const uint32_t q = o_.target_queries();
  uint16_t n = 0;
  double flops = 0;
  for (uint32_t seq = 0; seq < o_.batch; ++seq) {
    const uint64_t len = length_[seq];
    const uint64_t first = ceil_div(o_.sink_tokens, B);
    const uint64_t end = len >= o_.window_tokens ? (len - o_.window_tokens) / B : 0;
    if (end <= first || end - first <= o_.top_k_pages) continue;  // attends to all of it
    select_pages(layer, seq, first, end);
    const OpCost c = page_select_cost(s, end - first, q);
    flops += c.flops;
    operands_[n++] = Operand{ObjectId(lo.first_kv + seq), digest_base + first * tok,
                             (end - first) * tok, Access::kRead};
  }
  const OpCost per = page_select_cost(s, 0, q);
  op.op_class = OpClass::kVector;
  op.flops = flops;
  op.activation_read_bytes = o_.batch * per.activation_read_bytes;
  op.activation_write_bytes = 4 * uint64_t{o_.batch} * o_.top_k_pages;
  op.set_operands(operands_.data(), n);
}

void DecodeWorkload::fill_attention(Op& op, const Model& m, const LayerObjects& lo,
                                    uint32_t layer) {
  const TransformerShape& s = m.shape;
  const bool is_target = &m == &target_;
  const uint32_t q = is_target ? o_.target_queries() : 1;
  const uint64_t tok = s.kv_bytes_per_token_per_layer();
  const uint64_t B = o_.kv_block_tokens;
  const OpCost shape_cost = op_cost(s, OpKind::kAttention, o_.batch, q, q);
  op.rows = static_cast<uint32_t>(shape_cost.rows);
  op.activation_read_bytes = shape_cost.activation_read_bytes;
  op.activation_write_bytes = shape_cost.activation_write_bytes;
  uint16_t n = 0;
  double flops = 0;
  auto read = [&](ObjectId kv, uint64_t from_token, uint64_t to_token) {
    if (to_token > from_token) {
      operands_[n++] = Operand{kv, from_token * tok, (to_token - from_token) * tok, Access::kRead};
    }
    return to_token > from_token ? to_token - from_token : 0;
  };
  for (uint32_t seq = 0; seq < o_.batch; ++seq) {
    const ObjectId kv(lo.first_kv + seq);
    // Draft pass j appends after the j tokens it drafted before.
    const uint64_t cached = length_[seq] + (is_target ? 0 : pass_);
    uint64_t attended = 0;
    const uint64_t first = ceil_div(o_.sink_tokens, B);
    const uint64_t end = cached >= o_.window_tokens ? (cached - o_.window_tokens) / B : 0;
    if (!m.sparse || end <= first || end - first <= o_.top_k_pages) {
      attended = read(kv, 0, cached);
    } else {
      // Sinks and window rounded out to whole pages, and the selected middle pages (adjacent
      // pages merged into one range).
      attended += read(kv, 0, first * B);
      const size_t cell = size_t{layer} * o_.batch + seq;
      const uint32_t* pages = &selected_[cell * o_.top_k_pages];
      const uint32_t count = selected_count_[cell];
      for (uint32_t i = 0; i < count;) {
        uint32_t j = i + 1;
        while (j < count && pages[j] == pages[j - 1] + 1)
          ++j;
        attended += read(kv, uint64_t{pages[i]} * B, uint64_t{pages[j - 1] + 1} * B);
        i = j;
      }
      attended += read(kv, end * B, cached);
      pages_read_ += count;
    }
    flops += op_cost(s, OpKind::kAttention, 1, attended + q, q).flops;
    operands_[n++] = Operand{kv, cached * tok, q * tok, Access::kWrite};
    if (m.sparse) {
      // The digests of the pages the new tokens land in are updated.
      const uint64_t pages = (cached + q - 1) / B - cached / B + 1;
      operands_[n++] =
          Operand{kv, kv_token_area_bytes(m) + cached / B * tok, pages * tok, Access::kWrite};
    }
  }
  op.flops = flops;
  op.set_operands(operands_.data(), n);
}

void DecodeWorkload::fill(Op& op, const Model& m, OpKind kind, uint32_t layer) {
  const TransformerShape& s = m.shape;
  const bool is_target = &m == &target_;
  const uint64_t tokens = uint64_t{o_.batch} * (is_target ? o_.target_queries() : 1);
  if (kind == OpKind::kRouter) route(layer);
  const OpCost c = kind == OpKind::kAttention || kind == OpKind::kPageSelect
                       ? OpCost{}
                       : op_cost(s, kind, cost_rows(s, kind, tokens), 1);
  op = Op();
  op.id = OpId(next_id_++);
  op.kind = kind;
  op.step = StepIndex(step_);
  op.layer = layer == UINT32_MAX ? LayerId() : LayerId(layer);
  op.op_class = kind == OpKind::kAttention ? OpClass::kMatrix : c.op_class;
  op.flops = c.flops;
  op.rows = static_cast<uint32_t>(c.rows);
  op.collective_bytes = c.collective_bytes;
  op.compute_dtype = s.activation_dtype;
  op.activation_read_bytes = c.activation_read_bytes;
  op.activation_write_bytes = c.activation_write_bytes;
  auto weight = [&](ObjectId id, uint64_t offset = 0) {
    if (c.weight_bytes) op.add_operand(Operand{id, offset, c.weight_bytes, Access::kRead});
  };
  const LayerObjects* lo = layer == UINT32_MAX ? nullptr : &m.layers[layer];
  switch (kind) {
    case OpKind::kEmbedding:
      weight(m.embedding);
      if (m.positions.valid()) {
        op.add_operand(Operand{m.positions, 0, c.weight_bytes, Access::kRead});
      }
      break;
    case OpKind::kAttnNorm:
      weight(lo->attn_norm);
      break;
    case OpKind::kQkvProj:
      weight(lo->qkv);
      break;
    case OpKind::kLatentAbsorb:
      weight(lo->kv_up);
      break;
    case OpKind::kLatentUnabsorb:
      weight(lo->kv_up, s.absorb_weight_bytes());
      break;
    case OpKind::kOutProj:
      weight(lo->out);
      break;
    case OpKind::kMlpNorm:
      weight(lo->mlp_norm);
      break;
    case OpKind::kGateUpProj:
      weight(lo->gate_up);
      break;
    case OpKind::kDownProj:
      weight(lo->down);
      break;
    case OpKind::kRouter:
      weight(lo->router);
      break;
    case OpKind::kSharedGateUp:
      weight(lo->shared);
      break;
    case OpKind::kSharedDown:
      weight(lo->shared, s.shared_gate_up_bytes());
      break;
    case OpKind::kExpertGateUp:
    case OpKind::kExpertDown: {
      const bool up = kind == OpKind::kExpertGateUp;
      const uint16_t n =
          active_per_layer_step_[size_t{step_} * s.moe_layers() + layer - s.first_moe_layer];
      op.set_operands(up ? up_operands_.data() : down_operands_.data(), n);
      op.per_operand_compute = true;
      op.flops = up ? up_flops_ : down_flops_;
      op.rows = n ? static_cast<uint32_t>(routed_.size() / n) : 1;  // mean, for records
      break;
    }
    case OpKind::kFinalNorm:
      weight(m.final_norm);
      break;
    case OpKind::kEmbeddingNorm:
      weight(m.embedding_norm);
      break;
    case OpKind::kLmHead:
      weight(m.lm_head);
      break;
    case OpKind::kAttention:
      fill_attention(op, m, *lo, layer);
      break;
    case OpKind::kPageSelect:
      fill_page_select(op, m, *lo, layer);
      break;
    default:
      break;
  }
}

void DecodeWorkload::end_step() {
  const uint64_t tok = target_.shape.kv_bytes_per_token_per_layer() * target_.shape.layers;
  uint32_t tokens = 0;
  for (uint32_t seq = 0; seq < o_.batch; ++seq) {
    uint32_t gained = 1;
    if (o_.speculative()) {
      // Drafted tokens are accepted with probability alpha each, up to the first rejection;
      // the target adds one token of its own. The rejected tail's KV is left behind.
      uint32_t accepted = 0;
      while (accepted < o_.gamma && accept_rng_.uniform() < o_.alpha)
        ++accepted;
      gained = accepted + 1;
      ++verified_;
      const uint32_t rejected = o_.gamma - accepted;
      const uint64_t draft_tok = draft_.shape.kv_bytes_per_token_per_layer() * draft_.shape.layers;
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
  if (step_ >= o_.steps) return false;
  const Model& m = o_.speculative() && pass_ < o_.gamma ? draft_ : target_;
  const uint32_t head = static_cast<uint32_t>(m.head_ops.size());
  if (pos_ < head) {
    fill(op, m, m.head_ops[pos_], UINT32_MAX);
    ++pos_;
    return true;
  }
  if (pos_ == head) {
    const std::vector<OpKind>& ops = m.shape.moe_layer(layer_) ? m.moe_ops : m.dense_ops;
    fill(op, m, ops[layer_op_], layer_);
    if (++layer_op_ == ops.size()) {
      layer_op_ = 0;
      if (++layer_ == m.shape.layers) {
        layer_ = 0;
        ++pos_;
      }
    }
    return true;
  }
  const uint32_t i = pos_ - head - 1;
  fill(op, m, m.tail_ops[i], UINT32_MAX);
  if (i + 1 < m.tail_ops.size()) {
    ++pos_;
    return true;
  }
  pos_ = 0;
  if (++pass_ < passes_) return true;
  op.last_of_step = true;
  end_step();
  pass_ = 0;
  ++step_;
  return true;
}

void DecodeWorkload::summarize(std::vector<SummaryItem>& summary) const {
  if (o_.speculative()) {
    summary.push_back(
        {"spec_tokens_per_verify", verified_ ? double(kept_) / double(verified_) : 0.0, "tokens"});
    summary.push_back({"spec_accepted_fraction",
                       verified_ ? double(kept_ - verified_) / double(verified_ * o_.gamma) : 0.0,
                       "fraction"});
    summary.push_back({"spec_wasted_kv_bytes", double(wasted_kv_bytes_), "bytes"});
  }
  if (o_.sparse()) {
    summary.push_back({"sparse_pages_read", double(pages_read_), "pages"});
    summary.push_back({"sparse_page_reuse",
                       pages_selected_ ? double(pages_kept_) / double(pages_selected_) : 0.0,
                       "fraction"});
  }
  const TransformerShape& s = target_.shape;
  if (!s.moe()) return;
  const uint32_t ml = s.moe_layers();
  double active = 0;
  size_t cells = 0;
  for (uint16_t a : active_per_layer_step_) {
    if (a == 0) continue;  // a step or layer the run did not reach
    active += a;
    ++cells;
  }
  double imbalance = 0;
  uint32_t layers_with_load = 0;
  for (uint32_t l = 0; l < ml; ++l) {
    uint64_t total = 0, max = 0;
    for (uint32_t e = 0; e < s.experts; ++e) {
      const uint64_t x = load_[size_t{l} * s.experts + e];
      total += x;
      max = std::max(max, x);
    }
    if (total == 0) continue;
    imbalance += double(max) / (double(total) / s.experts);
    ++layers_with_load;
  }
  const double mean_active = cells ? active / double(cells) : 0.0;
  summary.push_back({"moe_active_experts_mean", mean_active, "experts"});
  summary.push_back({"moe_expert_load_max_over_mean",
                     layers_with_load ? imbalance / layers_with_load : 0.0, "ratio"});
  summary.push_back({"moe_expert_bytes_per_step",
                     mean_active * ml * static_cast<double>(s.expert_bytes()), "bytes"});
}

void DecodeWorkload::write_results(ResultWriter& w) const {
  const TransformerShape& s = target_.shape;
  if (!s.moe()) return;
  const uint32_t ml = s.moe_layers();
  std::vector<double> load(load_.begin(), load_.end());
  w.write_matrix("/workload/moe/expert_load", ml, s.experts, load);
  w.set_attribute("/workload/moe/expert_load", "description",
                  "token-to-expert assignments per MoE layer (rows, from first_moe_layer) and "
                  "expert (columns)");
  std::vector<double> active(active_per_layer_step_.begin(), active_per_layer_step_.end());
  w.write_matrix("/workload/moe/active_experts", o_.steps, ml, active);
  w.set_attribute("/workload/moe/active_experts", "description",
                  "distinct experts read per step (rows) and MoE layer (columns)");
  w.write_scalar_u64("/workload/moe/first_moe_layer", s.first_moe_layer, "");
}

namespace {

// Tokens each MoE routing call assigns: every sequence's queries in the target pass.
uint32_t routed_tokens(const config::Config& root) {
  const auto& d = root.workload().decode();
  return d.batch_size() * (d.has_speculative() ? d.speculative().draft_tokens() + 1 : 1);
}

void validate_decode(const config::Config& root, Validator& v) {
  const auto& w = root.workload();
  if (!w.has_model()) {
    v.error("workload.model", "required field is not set");
  } else {
    Validator mv = v.at("workload.model");
    TransformerShape::validate(w.model(), mv);
    Validator pv = v.at("workload.parallelism");
    TransformerShape::validate_parallelism(w.model(), w.parallelism(), pv);
  }
  const auto& d = w.decode();
  Validator dv = v.at("workload.decode");
  const bool batch_ok = dv.positive("batch_size", d.has_batch_size(), d.batch_size());
  dv.require("context_tokens", d.has_context_tokens());
  const bool steps_ok = dv.positive("decode_steps", d.has_decode_steps(), d.decode_steps());

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
  }
  o.seed = root.run().seed();
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
      return DecodeWorkload::footprint_bytes(
          TransformerShape::from_config(root.workload().model(), root.workload().parallelism()),
          options_from_config(root));
    },
    [](const config::Config& root) -> std::unique_ptr<Workload> {
      return std::make_unique<DecodeWorkload>(
          TransformerShape::from_config(root.workload().model(), root.workload().parallelism()),
          options_from_config(root), make_router(root));
    }});

}  // namespace

}  // namespace tiersim
