#include "workloads/decode.h"

#include <algorithm>
#include <stdexcept>

#include "models/registry.h"

namespace tiersim {

DecodeWorkload::DecodeWorkload(const TransformerShape& shape, uint32_t batch,
                               uint32_t context_tokens, uint32_t steps)
    : shape_(shape),
      batch_(batch),
      context_(context_tokens),
      steps_(steps),
      layer_ops_(shape.layer_ops()) {
  head_ops_.push_back(OpKind::kEmbedding);
  if (shape_.tp > 1) head_ops_.push_back(OpKind::kAllReduce);  // vocab-parallel lookup
  if (shape_.embedding_norm) head_ops_.push_back(OpKind::kEmbeddingNorm);
  tail_ops_ = {OpKind::kFinalNorm, OpKind::kLmHead};
  if (shape_.tp > 1) tail_ops_.push_back(OpKind::kAllGather);  // vocab-parallel logits
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
    o.out = t.add(p + "out", ObjectClass::kWeight, shape_.out_weight_bytes(), id);
    if (!shape_.parallel_attn_mlp) {
      o.mlp_norm = t.add(p + "mlp_norm", ObjectClass::kWeight, shape_.norm_weight_bytes(), id);
    }
    o.gate_up = t.add(p + "gate_up", ObjectClass::kWeight, shape_.gate_up_weight_bytes(), id);
    o.down = t.add(p + "down", ObjectClass::kWeight, shape_.down_weight_bytes(), id);
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

uint64_t DecodeWorkload::max_activation_bytes() const {
  uint64_t m = 0;
  auto consider = [&](OpKind k) {
    const OpCost c = op_cost(shape_, k, batch_, uint64_t{context_} + steps_);
    m = std::max(m, std::max(c.activation_read_bytes, c.activation_write_bytes));
  };
  for (OpKind k : head_ops_)
    consider(k);
  for (OpKind k : layer_ops_)
    consider(k);
  for (OpKind k : tail_ops_)
    consider(k);
  return m;
}

void DecodeWorkload::fill(Op& op, OpKind kind, uint32_t layer) {
  // The token being generated is the (context + step + 1)-th in each sequence.
  const uint64_t kv_tokens = uint64_t{context_} + step_ + 1;
  const OpCost c = op_cost(shape_, kind, batch_, kv_tokens);
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
  auto weight = [&](ObjectId id) {
    if (c.weight_bytes) op.add_operand(Operand{id, 0, c.weight_bytes, Access::kRead});
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
  const uint32_t per_layer = static_cast<uint32_t>(layer_ops_.size());
  const uint32_t body = shape_.layers * per_layer;
  if (pos_ < head) {
    fill(op, head_ops_[pos_], UINT32_MAX);
  } else if (pos_ < head + body) {
    const uint32_t i = pos_ - head;
    fill(op, layer_ops_[i % per_layer], i / per_layer);
  } else {
    const uint32_t i = pos_ - head - body;
    fill(op, tail_ops_[i], UINT32_MAX);
    if (i + 1 == tail_ops_.size()) {
      op.last_of_step = true;
      pos_ = 0;
      ++step_;
      return true;
    }
  }
  ++pos_;
  return true;
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
  dv.positive("batch_size", d.has_batch_size(), d.batch_size());
  dv.require("context_tokens", d.has_context_tokens());
  dv.positive("decode_steps", d.has_decode_steps(), d.decode_steps());
}

const WorkloadRegistrar kRegistrar(WorkloadKind{
    "decode", "static-batch decode of a dense transformer with a prefilled KV cache",
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
          d.batch_size(), d.context_tokens(), d.decode_steps());
    }});

}  // namespace

}  // namespace tiersim
