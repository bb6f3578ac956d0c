#include "workloads/transformer.h"

namespace tiersim {

uint32_t dtype_bits(config::Dtype d) {
  switch (d) {
    case config::FP32:
      return 32;
    case config::BF16:
    case config::FP16:
      return 16;
    case config::FP8:
    case config::INT8:
      return 8;
    case config::INT4:
      return 4;
    default:
      return 0;
  }
}

uint64_t dtype_bytes(config::Dtype d, uint64_t elements) {
  return (elements * dtype_bits(d) + 7) / 8;
}

void TransformerShape::validate(const config::TransformerModel& m, Validator& v) {
  v.non_empty("name", m.has_name(), m.name());
  v.positive("layers", m.has_layers(), m.layers());
  v.positive("hidden_size", m.has_hidden_size(), m.hidden_size());
  const bool heads_ok = v.positive("heads", m.has_heads(), m.heads());
  if (v.positive("kv_heads", m.has_kv_heads(), m.kv_heads()) && heads_ok &&
      m.heads() % m.kv_heads() != 0) {
    v.error("kv_heads", "heads (" + std::to_string(m.heads()) +
                            ") must be a multiple of kv_heads (" + std::to_string(m.kv_heads()) +
                            ")");
  }
  if (m.has_head_dim()) {
    v.positive("head_dim", true, m.head_dim());
  } else if (heads_ok && m.has_hidden_size() && m.hidden_size() % m.heads() != 0) {
    v.error("head_dim", "not set, and hidden_size is not a multiple of heads");
  }
  v.positive("ffn_size", m.has_ffn_size(), m.ffn_size());
  v.positive("vocab_size", m.has_vocab_size(), m.vocab_size());
  v.require("tied_embeddings", m.has_tied_embeddings());
  if (m.mlp() == config::MLP_KIND_UNSPECIFIED) v.error("mlp", "required field is not set");
  if (m.norm() == config::NORM_KIND_UNSPECIFIED) v.error("norm", "required field is not set");
  if (m.weight_dtype() == config::DTYPE_UNSPECIFIED) {
    v.error("weight_dtype", "required field is not set");
  }
  if (m.kv_dtype() == config::DTYPE_UNSPECIFIED) v.error("kv_dtype", "required field is not set");
  if (m.activation_dtype() == config::DTYPE_UNSPECIFIED) {
    v.error("activation_dtype", "required field is not set");
  } else if (m.activation_dtype() == config::INT4) {
    v.error("activation_dtype", "INT4 activations are not supported");
  }
}

TransformerShape TransformerShape::from_config(const config::TransformerModel& m) {
  TransformerShape s;
  s.layers = m.layers();
  s.hidden = m.hidden_size();
  s.heads = m.heads();
  s.kv_heads = m.kv_heads();
  s.head_dim = m.has_head_dim() ? m.head_dim() : m.hidden_size() / m.heads();
  s.ffn = m.ffn_size();
  s.vocab = m.vocab_size();
  s.tied_embeddings = m.tied_embeddings();
  s.mlp = m.mlp();
  s.norm = m.norm();
  s.weight_dtype = m.weight_dtype();
  s.kv_dtype = m.kv_dtype();
  s.activation_dtype = m.activation_dtype();
  return s;
}

uint64_t TransformerShape::qkv_weight_bytes() const {
  return dtype_bytes(weight_dtype, uint64_t{hidden} * (q_dim() + 2 * kv_dim()));
}
uint64_t TransformerShape::out_weight_bytes() const {
  return dtype_bytes(weight_dtype, q_dim() * hidden);
}
uint64_t TransformerShape::gate_up_weight_bytes() const {
  const uint64_t mats = mlp == config::SWIGLU ? 2 : 1;
  return dtype_bytes(weight_dtype, mats * hidden * ffn);
}
uint64_t TransformerShape::down_weight_bytes() const {
  return dtype_bytes(weight_dtype, uint64_t{ffn} * hidden);
}
uint64_t TransformerShape::norm_weight_bytes() const {
  return dtype_bytes(weight_dtype, norm_params());
}
uint64_t TransformerShape::layer_weight_bytes() const {
  return qkv_weight_bytes() + out_weight_bytes() + gate_up_weight_bytes() + down_weight_bytes() +
         2 * norm_weight_bytes();
}
uint64_t TransformerShape::embedding_bytes() const {
  return dtype_bytes(weight_dtype, uint64_t{vocab} * hidden);
}
uint64_t TransformerShape::lm_head_bytes() const {
  return tied_embeddings ? 0 : dtype_bytes(weight_dtype, uint64_t{vocab} * hidden);
}
uint64_t TransformerShape::total_weight_bytes() const {
  return layers * layer_weight_bytes() + embedding_bytes() + lm_head_bytes() + norm_weight_bytes();
}
uint64_t TransformerShape::kv_bytes_per_token_per_layer() const {
  return dtype_bytes(kv_dtype, 2 * kv_dim());
}

OpCost op_cost(const TransformerShape& s, OpKind kind, uint64_t batch, uint64_t kv_tokens) {
  OpCost c;
  const uint64_t b = batch;
  const uint64_t h = s.hidden;
  auto act = [&](uint64_t elements) { return dtype_bytes(s.activation_dtype, elements); };
  const uint64_t qkv_dim = s.q_dim() + 2 * s.kv_dim();
  const uint64_t mlp_mats = s.mlp == config::SWIGLU ? 2 : 1;
  switch (kind) {
    case OpKind::kEmbedding:
      // Gather one row per sequence.
      c.weight_bytes = dtype_bytes(s.weight_dtype, b * h);
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kAttnNorm:
    case OpKind::kMlpNorm:
    case OpKind::kFinalNorm:
      c.flops = 4.0 * b * h;
      c.weight_bytes = s.norm_weight_bytes();
      c.activation_read_bytes = act(b * h);
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kQkvProj:
      c.flops = 2.0 * b * h * qkv_dim;
      c.weight_bytes = s.qkv_weight_bytes();
      c.activation_read_bytes = act(b * h);
      c.activation_write_bytes = act(b * qkv_dim);
      break;
    case OpKind::kRope: {
      const uint64_t rotated = b * (s.q_dim() + s.kv_dim());
      c.flops = 3.0 * rotated;
      c.activation_read_bytes = act(rotated);
      c.activation_write_bytes = act(rotated);
      break;
    }
    case OpKind::kAttention: {
      const uint64_t cached = kv_tokens - 1;  // the new token's K and V are on chip
      c.flops = 4.0 * b * s.q_dim() * kv_tokens + 5.0 * b * s.heads * kv_tokens;
      c.kv_read_bytes = b * cached * s.kv_bytes_per_token_per_layer();
      c.kv_write_bytes = b * s.kv_bytes_per_token_per_layer();
      c.activation_read_bytes = act(b * qkv_dim);
      c.activation_write_bytes = act(b * s.q_dim());
      break;
    }
    case OpKind::kOutProj:
      c.flops = 2.0 * b * s.q_dim() * h;
      c.weight_bytes = s.out_weight_bytes();
      c.activation_read_bytes = act(b * s.q_dim());
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kAttnResidual:
    case OpKind::kMlpResidual:
      c.flops = 1.0 * b * h;
      c.activation_read_bytes = act(2 * b * h);
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kGateUpProj:
      c.flops = 2.0 * b * h * s.ffn * mlp_mats;
      c.weight_bytes = s.gate_up_weight_bytes();
      c.activation_read_bytes = act(b * h);
      c.activation_write_bytes = act(b * s.ffn * mlp_mats);
      break;
    case OpKind::kActivation:
      c.flops = (s.mlp == config::SWIGLU ? 5.0 : 8.0) * b * s.ffn;
      c.activation_read_bytes = act(b * s.ffn * mlp_mats);
      c.activation_write_bytes = act(b * s.ffn);
      break;
    case OpKind::kDownProj:
      c.flops = 2.0 * b * s.ffn * h;
      c.weight_bytes = s.down_weight_bytes();
      c.activation_read_bytes = act(b * s.ffn);
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kLmHead:
      c.flops = 2.0 * b * h * s.vocab;
      c.weight_bytes = dtype_bytes(s.weight_dtype, uint64_t{s.vocab} * h);
      c.activation_read_bytes = act(b * h);
      c.activation_write_bytes = act(b * s.vocab);
      break;
  }
  return c;
}

}  // namespace tiersim
