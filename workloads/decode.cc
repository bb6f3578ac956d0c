#include "workloads/decode.h"

#include <algorithm>
#include <stdexcept>

#include "models/registry.h"

namespace tiersim {

DecodeWorkload::DecodeWorkload(const TransformerShape& shape, uint32_t batch,
                               uint32_t context_tokens, uint32_t steps,
                               std::unique_ptr<Router> router)
    : shape_(shape),
      batch_(batch),
      context_(context_tokens),
      steps_(steps),
      dense_ops_(shape.layer_ops(0)),
      moe_ops_(shape.moe() ? shape.layer_ops(shape.first_moe_layer) : std::vector<OpKind>{}),
      router_(std::move(router)) {
  head_ops_.push_back(OpKind::kEmbedding);
  if (shape_.tp > 1) head_ops_.push_back(OpKind::kAllReduce);  // vocab-parallel lookup
  if (shape_.embedding_norm) head_ops_.push_back(OpKind::kEmbeddingNorm);
  tail_ops_ = {OpKind::kFinalNorm, OpKind::kLmHead};
  if (shape_.tp > 1) tail_ops_.push_back(OpKind::kAllGather);  // vocab-parallel logits
  if (shape_.moe()) {
    if (!router_) throw std::logic_error("DecodeWorkload: a MoE model needs a router");
    routed_.resize(size_t{batch_} * shape_.experts_per_token);
    tokens_per_expert_.resize(shape_.experts);
    up_operands_.resize(shape_.experts);
    down_operands_.resize(shape_.experts);
    load_.assign(size_t{shape_.moe_layers()} * shape_.experts, 0);
    active_per_layer_step_.assign(size_t{steps_} * shape_.moe_layers(), 0);
  }
}

uint64_t DecodeWorkload::footprint_bytes(const TransformerShape& s, uint64_t batch,
                                         uint64_t context, uint64_t steps) {
  return s.total_weight_bytes() +
         s.layers * batch * (context + steps) * s.kv_bytes_per_token_per_layer();
}

void DecodeWorkload::register_objects(ObjectTable& t) {
  embedding_ = t.add("embedding", ObjectClass::kEmbedding, shape_.embedding_bytes());
  positions_ = shape_.position_table_bytes() > 0
                   ? t.add("positions", ObjectClass::kEmbedding, shape_.position_table_bytes())
                   : ObjectId();
  layers_.clear();
  const uint64_t kv_bytes =
      uint64_t{batch_} * (context_ + steps_) * shape_.kv_bytes_per_token_per_layer();
  for (uint32_t l = 0; l < shape_.layers; ++l) {
    const std::string p = "layer" + std::to_string(l) + ".";
    const LayerId id(l);
    LayerObjects o;
    o.attn_norm = t.add(p + "attn_norm", ObjectClass::kWeight, shape_.norm_weight_bytes(), id);
    o.qkv = t.add(p + "qkv", ObjectClass::kWeight, shape_.qkv_weight_bytes(), id);
    if (shape_.latent) {
      o.kv_up = t.add(p + "kv_up", ObjectClass::kWeight,
                      shape_.absorb_weight_bytes() + shape_.unabsorb_weight_bytes(), id);
    }
    o.out = t.add(p + "out", ObjectClass::kWeight, shape_.out_weight_bytes(), id);
    if (!shape_.parallel_attn_mlp) {
      o.mlp_norm = t.add(p + "mlp_norm", ObjectClass::kWeight, shape_.norm_weight_bytes(), id);
    }
    if (!shape_.moe_layer(l)) {
      o.gate_up = t.add(p + "gate_up", ObjectClass::kWeight, shape_.gate_up_weight_bytes(), id);
      o.down = t.add(p + "down", ObjectClass::kWeight, shape_.down_weight_bytes(), id);
    } else {
      o.router = t.add(p + "router", ObjectClass::kWeight, shape_.router_weight_bytes(), id);
      if (shape_.shared_experts > 0) {
        o.shared = t.add(p + "shared_experts", ObjectClass::kWeight,
                         shape_.shared_gate_up_bytes() + shape_.shared_down_bytes(), id);
      }
      for (uint32_t e = 0; e < shape_.experts; ++e) {
        const ObjectId x = t.add(p + "expert" + std::to_string(e), ObjectClass::kWeight,
                                 shape_.expert_bytes(), id);
        if (e == 0) o.first_expert = x.value();
      }
    }
    o.kv = t.add(p + "kv", ObjectClass::kKvCache, kv_bytes, id);
    layers_.push_back(o);
  }
  embedding_norm_ = shape_.embedding_norm
                        ? t.add("embedding_norm", ObjectClass::kWeight, shape_.norm_weight_bytes())
                        : ObjectId();
  final_norm_ = t.add("final_norm", ObjectClass::kWeight, shape_.norm_weight_bytes());
  lm_head_ = shape_.tied_embeddings
                 ? embedding_
                 : t.add("lm_head", ObjectClass::kWeight, shape_.lm_head_bytes());
  registered_ = true;
}

namespace {
// The rows an op's cost is evaluated for: MoE expert ops see every token-to-expert assignment.
uint64_t cost_rows(const TransformerShape& s, OpKind k, uint64_t batch) {
  const bool per_assignment =
      k == OpKind::kExpertGateUp || k == OpKind::kExpertActivation || k == OpKind::kExpertDown;
  return per_assignment ? batch * s.experts_per_token : batch;
}
}  // namespace

uint64_t DecodeWorkload::max_activation_bytes() const {
  uint64_t m = 0;
  auto consider = [&](OpKind k) {
    const OpCost c = op_cost(shape_, k, cost_rows(shape_, k, batch_), uint64_t{context_} + steps_);
    m = std::max(m, std::max(c.activation_read_bytes, c.activation_write_bytes));
  };
  for (const auto* list : {&head_ops_, &dense_ops_, &moe_ops_, &tail_ops_}) {
    for (OpKind k : *list)
      consider(k);
  }
  return m;
}

void DecodeWorkload::route(uint32_t layer) {
  const uint32_t m = layer - shape_.first_moe_layer;
  const uint32_t experts = shape_.experts;
  router_->route(step_, m, routed_.data());
  std::fill(tokens_per_expert_.begin(), tokens_per_expert_.end(), 0);
  for (uint16_t e : routed_)
    ++tokens_per_expert_[e];
  const LayerObjects& lo = layers_[layer];
  const uint64_t up_bytes = shape_.expert_gate_up_bytes();
  const uint64_t down_bytes = shape_.expert_down_bytes();
  uint16_t n = 0;
  up_flops_ = down_flops_ = 0;
  for (uint32_t e = 0; e < experts; ++e) {
    const uint32_t rows = tokens_per_expert_[e];
    if (rows == 0) continue;
    load_[size_t{m} * experts + e] += rows;
    const ObjectId object(lo.first_expert + e);
    const double up = op_cost(shape_, OpKind::kExpertGateUp, rows, 1).flops;
    const double down = op_cost(shape_, OpKind::kExpertDown, rows, 1).flops;
    up_operands_[n] = Operand{object, 0, up_bytes, Access::kRead, rows, up};
    down_operands_[n] = Operand{object, up_bytes, down_bytes, Access::kRead, rows, down};
    up_flops_ += up;
    down_flops_ += down;
    ++n;
  }
  active_per_layer_step_[size_t{step_} * shape_.moe_layers() + m] = n;
}

void DecodeWorkload::fill(Op& op, OpKind kind, uint32_t layer) {
  // The token being generated is the (context + step + 1)-th in each sequence.
  const uint64_t kv_tokens = uint64_t{context_} + step_ + 1;
  if (kind == OpKind::kRouter) route(layer);
  const OpCost c = op_cost(shape_, kind, cost_rows(shape_, kind, batch_), kv_tokens);
  op = Op();
  op.id = OpId(next_id_++);
  op.kind = kind;
  op.step = StepIndex(step_);
  op.layer = layer == UINT32_MAX ? LayerId() : LayerId(layer);
  op.op_class = c.op_class;
  op.flops = c.flops;
  op.rows = static_cast<uint32_t>(c.rows);
  op.collective_bytes = c.collective_bytes;
  op.compute_dtype = shape_.activation_dtype;
  op.activation_read_bytes = c.activation_read_bytes;
  op.activation_write_bytes = c.activation_write_bytes;
  auto weight = [&](ObjectId id, uint64_t offset = 0) {
    if (c.weight_bytes) op.add_operand(Operand{id, offset, c.weight_bytes, Access::kRead});
  };
  const LayerObjects* lo = layer == UINT32_MAX ? nullptr : &layers_[layer];
  switch (kind) {
    case OpKind::kEmbedding:
      weight(embedding_);
      if (positions_.valid()) {
        op.add_operand(Operand{positions_, 0, c.weight_bytes, Access::kRead});
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
      weight(lo->kv_up, shape_.absorb_weight_bytes());
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
      weight(lo->shared, shape_.shared_gate_up_bytes());
      break;
    case OpKind::kExpertGateUp:
    case OpKind::kExpertDown: {
      const bool up = kind == OpKind::kExpertGateUp;
      const uint16_t n = active_per_layer_step_[size_t{step_} * shape_.moe_layers() + layer -
                                                shape_.first_moe_layer];
      op.set_operands(up ? up_operands_.data() : down_operands_.data(), n);
      op.per_operand_compute = true;
      op.flops = up ? up_flops_ : down_flops_;
      op.rows = n ? static_cast<uint32_t>(routed_.size() / n) : 1;  // mean, for records
      break;
    }
    case OpKind::kFinalNorm:
      weight(final_norm_);
      break;
    case OpKind::kEmbeddingNorm:
      weight(embedding_norm_);
      break;
    case OpKind::kLmHead:
      weight(lm_head_);
      break;
    case OpKind::kAttention: {
      const uint64_t cached_bytes = c.kv_read_bytes;
      if (cached_bytes) op.add_operand(Operand{lo->kv, 0, cached_bytes, Access::kRead});
      op.add_operand(Operand{lo->kv, cached_bytes, c.kv_write_bytes, Access::kWrite});
      break;
    }
    default:
      break;
  }
}

bool DecodeWorkload::next(Op& op) {
  if (!registered_) throw std::logic_error("DecodeWorkload: objects not registered");
  if (step_ >= steps_) return false;
  const uint32_t head = static_cast<uint32_t>(head_ops_.size());
  if (pos_ < head) {
    fill(op, head_ops_[pos_], UINT32_MAX);
    ++pos_;
    return true;
  }
  if (pos_ == head) {
    const std::vector<OpKind>& ops = shape_.moe_layer(layer_) ? moe_ops_ : dense_ops_;
    fill(op, ops[layer_op_], layer_);
    if (++layer_op_ == ops.size()) {
      layer_op_ = 0;
      if (++layer_ == shape_.layers) {
        layer_ = 0;
        ++pos_;
      }
    }
    return true;
  }
  const uint32_t i = pos_ - head - 1;
  fill(op, tail_ops_[i], UINT32_MAX);
  if (i + 1 == tail_ops_.size()) {
    op.last_of_step = true;
    pos_ = 0;
    ++step_;
  } else {
    ++pos_;
  }
  return true;
}

void DecodeWorkload::summarize(std::vector<SummaryItem>& summary) const {
  if (!shape_.moe()) return;
  // Only the steps that ran (a max_sim_time stop ends early): a step ran when its layers routed.
  const uint32_t ml = shape_.moe_layers();
  const uint32_t done_steps = std::min(step_ + (pos_ > 0 ? 1 : 0), steps_);
  double active = 0;
  size_t cells = 0;
  for (size_t i = 0; i < size_t{done_steps} * ml; ++i) {
    if (active_per_layer_step_[i] == 0) continue;  // a layer the stopped step did not reach
    active += active_per_layer_step_[i];
    ++cells;
  }
  double imbalance = 0;
  uint32_t layers_with_load = 0;
  for (uint32_t m = 0; m < ml; ++m) {
    uint64_t total = 0, max = 0;
    for (uint32_t e = 0; e < shape_.experts; ++e) {
      const uint64_t x = load_[size_t{m} * shape_.experts + e];
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
  summary.push_back({"moe_expert_bytes_per_step",
                     mean_active * ml * static_cast<double>(shape_.expert_bytes()), "bytes"});
}

void DecodeWorkload::write_results(ResultWriter& w) const {
  if (!shape_.moe()) return;
  const uint32_t ml = shape_.moe_layers();
  std::vector<double> load(load_.begin(), load_.end());
  w.write_matrix("/workload/moe/expert_load", ml, shape_.experts, load);
  w.set_attribute("/workload/moe/expert_load", "description",
                  "token-to-expert assignments per MoE layer (rows, from first_moe_layer) and "
                  "expert (columns)");
  std::vector<double> active(active_per_layer_step_.begin(), active_per_layer_step_.end());
  w.write_matrix("/workload/moe/active_experts", steps_, ml, active);
  w.set_attribute("/workload/moe/active_experts", "description",
                  "distinct experts read per step (rows) and MoE layer (columns)");
  w.write_scalar_u64("/workload/moe/first_moe_layer", shape_.first_moe_layer, "");
}

namespace {

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
      TraceRouter::Shape{d.decode_steps(), d.batch_size(), m.moe().experts(),
                         m.moe().experts_per_token(), m.layers(), m.moe().first_moe_layer()},
      rv);
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
    p.batch = d.batch_size();
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
      TraceRouter::Shape{d.decode_steps(), d.batch_size(), m.moe().experts(),
                         m.moe().experts_per_token(), m.layers(), m.moe().first_moe_layer()},
      v);
  if (!trace) throw ConfigError(issues);  // the file changed since validation
  return std::make_unique<TraceRouter>(std::move(*trace));
}

const WorkloadRegistrar kRegistrar(WorkloadKind{
    "decode", "static-batch decode of a transformer (dense or MoE) with a prefilled KV cache",
    validate_decode,
    [](const config::Config& root) {
      const auto& d = root.workload().decode();
      return DecodeWorkload::footprint_bytes(
          TransformerShape::from_config(root.workload().model(), root.workload().parallelism()),
          d.batch_size(), d.context_tokens(), d.decode_steps());
    },
    [](const config::Config& root) -> std::unique_ptr<Workload> {
      const auto& d = root.workload().decode();
      return std::make_unique<DecodeWorkload>(
          TransformerShape::from_config(root.workload().model(), root.workload().parallelism()),
          d.batch_size(), d.context_tokens(), d.decode_steps(), make_router(root));
    }});

}  // namespace

}  // namespace tiersim
