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
  if (m.positional() == config::POSITIONAL_KIND_UNSPECIFIED) {
    v.error("positional", "required field is not set (ROPE, LEARNED or ALIBI)");
  } else if (m.positional() == config::LEARNED) {
    v.positive("max_positions", m.has_max_positions(), m.max_positions());
  } else if (m.has_max_positions()) {
    v.error("max_positions", "only meaningful with positional: LEARNED");
  }
  if (m.weight_dtype() == config::DTYPE_UNSPECIFIED) {
    v.error("weight_dtype", "required field is not set");
  }
  if (m.kv_dtype() == config::DTYPE_UNSPECIFIED) v.error("kv_dtype", "required field is not set");
  if (m.activation_dtype() == config::DTYPE_UNSPECIFIED) {
    v.error("activation_dtype", "required field is not set");
  } else if (m.activation_dtype() == config::INT4) {
    v.error("activation_dtype", "INT4 activations are not supported");
  }
  if (m.has_quant_group_size()) {
    if (v.positive("quant_group_size", true, m.quant_group_size()) &&
        (m.weight_dtype() == config::FP32 || m.weight_dtype() == config::BF16 ||
         m.weight_dtype() == config::FP16)) {
      v.error("quant_group_size", "group scales need a quantised weight_dtype (FP8, INT8, INT4)");
    }
  } else if (m.scale_dtype() != config::DTYPE_UNSPECIFIED) {
    v.error("scale_dtype", "only meaningful with quant_group_size");
  }
}

void TransformerShape::validate_parallelism(const config::TransformerModel& m,
                                            const config::Parallelism& p, Validator& v) {
  if (!p.has_tensor_parallel()) return;
  if (!v.positive("tensor_parallel", true, p.tensor_parallel())) return;
  const uint32_t tp = p.tensor_parallel();
  auto divides = [&](const char* what, uint32_t n) {
    if (n % tp != 0) {
      v.error("tensor_parallel",
              "must divide the model's " + std::string(what) + " (" + std::to_string(n) + ")");
    }
  };
  divides("heads", m.heads());
  divides("ffn_size", m.ffn_size());
  if (m.kv_heads() % tp != 0 && tp % m.kv_heads() != 0) {
    v.error("tensor_parallel", "must divide kv_heads (" + std::to_string(m.kv_heads()) +
                                   ") or be a multiple of it (replicated KV heads)");
  }
}

TransformerShape TransformerShape::from_config(const config::TransformerModel& m,
                                               const config::Parallelism& p) {
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
  s.positional = m.positional();
  s.max_positions = m.max_positions();
  s.linear_bias = m.linear_bias();
  s.parallel_attn_mlp = m.parallel_attn_mlp();
  s.embedding_norm = m.embedding_norm();
  s.quant_group = m.quant_group_size();
  s.weight_dtype = m.weight_dtype();
  s.kv_dtype = m.kv_dtype();
  s.activation_dtype = m.activation_dtype();
  s.scale_dtype = m.scale_dtype() == config::DTYPE_UNSPECIFIED ? config::FP16 : m.scale_dtype();
  s.tp = p.has_tensor_parallel() ? p.tensor_parallel() : 1;
  return s;
}

uint64_t TransformerShape::matrix_bytes(uint64_t in, uint64_t out, bool bias) const {
  uint64_t b = dtype_bytes(weight_dtype, in * out);
  if (quant_group > 0) b += dtype_bytes(scale_dtype, (in + quant_group - 1) / quant_group * out);
  if (bias && linear_bias) b += dtype_bytes(activation_dtype, out);
  return b;
}

uint64_t TransformerShape::qkv_weight_bytes() const {
  return matrix_bytes(hidden, q_dim() + 2 * kv_dim(), true);
}
uint64_t TransformerShape::out_weight_bytes() const {
  return matrix_bytes(q_dim(), hidden, true);
}
uint64_t TransformerShape::gate_up_weight_bytes() const {
  return matrix_bytes(hidden, mlp_mats() * ffn_rank(), true);
}
uint64_t TransformerShape::down_weight_bytes() const {
  return matrix_bytes(ffn_rank(), hidden, true);
}
uint64_t TransformerShape::norm_weight_bytes() const {
  return dtype_bytes(activation_dtype, norm_params());
}
uint64_t TransformerShape::layer_weight_bytes() const {
  return qkv_weight_bytes() + out_weight_bytes() + gate_up_weight_bytes() + down_weight_bytes() +
         norms_per_layer() * norm_weight_bytes();
}
uint64_t TransformerShape::embedding_bytes() const {
  return dtype_bytes(weight_dtype, vocab_rank() * hidden);
}
uint64_t TransformerShape::position_table_bytes() const {
  return positional == config::LEARNED ? dtype_bytes(weight_dtype, uint64_t{max_positions} * hidden)
                                       : 0;
}
uint64_t TransformerShape::lm_head_bytes() const {
  return tied_embeddings ? 0 : dtype_bytes(weight_dtype, vocab_rank() * hidden);
}
uint64_t TransformerShape::total_weight_bytes() const {
  return layers * layer_weight_bytes() + embedding_bytes() + position_table_bytes() +
         lm_head_bytes() + (embedding_norm ? 2 : 1) * norm_weight_bytes();
}
uint64_t TransformerShape::kv_bytes_per_token_per_layer() const {
  return dtype_bytes(kv_dtype, 2 * kv_dim());
}

std::vector<OpKind> TransformerShape::layer_ops() const {
  std::vector<OpKind> ops{OpKind::kAttnNorm, OpKind::kQkvProj};
  if (positional == config::ROPE) ops.push_back(OpKind::kRope);
  ops.insert(ops.end(), {OpKind::kAttention, OpKind::kOutProj});
  if (parallel_attn_mlp) {
    // One norm feeds both branches; one reduction and one residual add for both.
    ops.insert(ops.end(), {OpKind::kGateUpProj, OpKind::kActivation, OpKind::kDownProj});
    if (tp > 1) ops.push_back(OpKind::kAllReduce);
    ops.push_back(OpKind::kMlpResidual);
    return ops;
  }
  if (tp > 1) ops.push_back(OpKind::kAllReduce);
  ops.insert(ops.end(), {OpKind::kAttnResidual, OpKind::kMlpNorm, OpKind::kGateUpProj,
                         OpKind::kActivation, OpKind::kDownProj});
  if (tp > 1) ops.push_back(OpKind::kAllReduce);
  ops.push_back(OpKind::kMlpResidual);
  return ops;
}

OpCost op_cost(const TransformerShape& s, OpKind kind, uint64_t batch, uint64_t kv_tokens) {
  OpCost c;
  const uint64_t b = batch;
  const uint64_t h = s.hidden;
  auto act = [&](uint64_t elements) { return dtype_bytes(s.activation_dtype, elements); };
  const uint64_t qkv_dim = s.q_dim() + 2 * s.kv_dim();
  const uint64_t ffn = s.ffn_rank();
  const uint64_t bias = s.linear_bias ? 1 : 0;
  auto matrix = [&](uint64_t in, uint64_t out, uint64_t weight_bytes) {
    c.op_class = OpClass::kMatrix;
    c.rows = b;
    c.flops = 2.0 * b * in * out + double(bias * b * out);
    c.weight_bytes = weight_bytes;
    c.activation_read_bytes = act(b * in);
    c.activation_write_bytes = act(b * out);
  };
  switch (kind) {
    case OpKind::kEmbedding:
      // Gather one row per sequence (from this rank's vocab shard; Megatron masks and
      // all-reduces, which the op stream does not model separately), plus its position row.
      // weight_bytes is one table's rows; LEARNED reads as many again from the position table.
      c.weight_bytes = dtype_bytes(s.weight_dtype, b * h);
      c.flops = s.positional == config::LEARNED ? double(b * h) : 0.0;
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kAttnNorm:
    case OpKind::kMlpNorm:
    case OpKind::kFinalNorm:
    case OpKind::kEmbeddingNorm:
      c.flops = 4.0 * b * h;
      c.weight_bytes = s.norm_weight_bytes();
      c.activation_read_bytes = act(b * h);
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kQkvProj:
      matrix(h, qkv_dim, s.qkv_weight_bytes());
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
      const uint64_t heads = s.heads_rank();
      c.op_class = OpClass::kMatrix;
      // Each KV head is shared by the query heads of its group: those are the rows per read.
      c.rows = heads / s.kv_heads_rank();
      c.flops = 4.0 * b * s.q_dim() * kv_tokens + 5.0 * b * heads * kv_tokens +
                (s.positional == config::ALIBI ? 1.0 * b * heads * kv_tokens : 0.0);
      c.kv_read_bytes = b * cached * s.kv_bytes_per_token_per_layer();
      c.kv_write_bytes = b * s.kv_bytes_per_token_per_layer();
      c.activation_read_bytes = act(b * qkv_dim);
      c.activation_write_bytes = act(b * s.q_dim());
      break;
    }
    case OpKind::kOutProj:
      matrix(s.q_dim(), h, s.out_weight_bytes());
      break;
    case OpKind::kAttnResidual:
    case OpKind::kMlpResidual:
      // Parallel attention/MLP adds both branch outputs to the residual.
      c.flops = (s.parallel_attn_mlp ? 2.0 : 1.0) * b * h;
      c.activation_read_bytes = act((s.parallel_attn_mlp ? 3 : 2) * b * h);
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kGateUpProj:
      matrix(h, ffn * s.mlp_mats(), s.gate_up_weight_bytes());
      break;
    case OpKind::kActivation:
      c.flops = (s.mlp == config::SWIGLU ? 5.0 : s.mlp == config::GELU ? 8.0 : 1.0) * b * ffn;
      c.activation_read_bytes = act(b * ffn * s.mlp_mats());
      c.activation_write_bytes = act(b * ffn);
      break;
    case OpKind::kDownProj:
      matrix(ffn, h, s.down_weight_bytes());
      break;
    case OpKind::kLmHead:
      c.op_class = OpClass::kMatrix;
      c.rows = b;
      c.flops = 2.0 * b * h * s.vocab_rank();
      c.weight_bytes = dtype_bytes(s.weight_dtype, s.vocab_rank() * h);
      c.activation_read_bytes = act(b * h);
      c.activation_write_bytes = act(b * s.vocab_rank());
      break;
    case OpKind::kAllReduce:
      c.op_class = OpClass::kCollective;
      c.collective_bytes = s.hidden_bytes(b);
      c.flops = double(b * h) * (s.tp - 1);  // the reduction adds
      c.activation_read_bytes = act(b * h);
      c.activation_write_bytes = act(b * h);
      break;
    case OpKind::kAllGather:
      c.op_class = OpClass::kCollective;
      c.collective_bytes = act(b * s.vocab_rank());
      c.activation_read_bytes = act(b * s.vocab_rank());
      c.activation_write_bytes = act(b * s.vocab_rank() * s.tp);
      break;
    case OpKind::kGemm:
      break;  // the GEMM workload costs its op itself
  }
  return c;
}

}  // namespace tiersim
