#include "workloads/transformer.h"

namespace tiersim {

void TransformerShape::validate(const config::TransformerModel& m, Validator& v) {
  v.non_empty("name", m.has_name(), m.name());
  v.positive("layers", m.has_layers(), m.layers());
  v.positive("hidden_size", m.has_hidden_size(), m.hidden_size());
  const bool heads_ok = v.positive("heads", m.has_heads(), m.heads());
  if (m.has_latent_attention()) {
    // One shared latent replaces per-head K and V.
    for (const char* f : {"kv_heads", "head_dim"}) {
      if ((f[0] == 'k' && m.has_kv_heads()) || (f[0] == 'h' && m.has_head_dim())) {
        v.error(f, "does not apply with latent_attention (its latent is shared by every head)");
      }
    }
    const auto& la = m.latent_attention();
    Validator lv = v.at("latent_attention");
    lv.positive("kv_lora_rank", la.has_kv_lora_rank(), la.kv_lora_rank());
    lv.positive("rope_head_dim", la.has_rope_head_dim(), la.rope_head_dim());
    lv.positive("nope_head_dim", la.has_nope_head_dim(), la.nope_head_dim());
    lv.positive("v_head_dim", la.has_v_head_dim(), la.v_head_dim());
    if (m.positional() != config::POSITIONAL_KIND_UNSPECIFIED && m.positional() != config::ROPE) {
      v.error("positional", "latent_attention needs ROPE (its rope_head_dim is the rotary key)");
    }
  } else {
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
  }
  if (m.has_moe()) {
    const auto& e = m.moe();
    Validator ev = v.at("moe");
    const bool experts_ok = ev.positive("experts", e.has_experts(), e.experts());
    if (ev.positive("experts_per_token", e.has_experts_per_token(), e.experts_per_token()) &&
        experts_ok && e.experts_per_token() > e.experts()) {
      ev.error("experts_per_token", "exceeds experts (" + std::to_string(e.experts()) + ")");
    }
    if (experts_ok && e.experts() > 65535) ev.error("experts", "at most 65535 experts");
    ev.positive("expert_ffn_size", e.has_expert_ffn_size(), e.expert_ffn_size());
    if (e.has_shared_expert_ffn_size()) {
      ev.positive("shared_expert_ffn_size", true, e.shared_expert_ffn_size());
      if (e.shared_experts() == 0) {
        ev.error("shared_expert_ffn_size", "set, but shared_experts is 0 or not set");
      }
    }
    if (m.has_layers() && e.first_moe_layer() >= m.layers()) {
      ev.error("first_moe_layer", "must be below layers (" + std::to_string(m.layers()) + ")");
    }
  }
  // Every layer has a MoE block when moe.first_moe_layer is 0: no dense MLP uses ffn_size.
  const bool dense_layers = !m.has_moe() || m.moe().first_moe_layer() > 0;
  if (dense_layers) {
    v.positive("ffn_size", m.has_ffn_size(), m.ffn_size());
  } else if (m.has_ffn_size()) {
    v.error("ffn_size", "no dense layer uses it (every layer is MoE: see moe.expert_ffn_size)");
  }
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
  if (m.has_quant_group_outputs()) {
    v.positive("quant_group_outputs", true, m.quant_group_outputs());
    if (!m.has_quant_group_size()) {
      v.error("quant_group_outputs", "only meaningful with quant_group_size");
    }
  }
  if (m.gemm_dtype() == config::INT4) {
    v.error("gemm_dtype", "INT4 GEMMs are not supported (INT4 weights compute in a wider dtype)");
  } else if (m.gemm_dtype() != config::DTYPE_UNSPECIFIED &&
             m.weight_dtype() != config::DTYPE_UNSPECIFIED &&
             dtype_bits(m.gemm_dtype()) < dtype_bits(m.weight_dtype())) {
    v.error("gemm_dtype", config::Dtype_Name(m.gemm_dtype()) + " GEMMs over " +
                              config::Dtype_Name(m.weight_dtype()) +
                              " weights would quantise every weight at every step; store the "
                              "weights in the GEMM dtype (weight_dtype)");
  } else if (m.gemm_dtype() == config::DTYPE_UNSPECIFIED &&
             m.weight_dtype() != config::DTYPE_UNSPECIFIED &&
             m.activation_dtype() != config::DTYPE_UNSPECIFIED &&
             m.activation_dtype() != config::INT4 &&
             dtype_bits(m.activation_dtype()) < dtype_bits(m.weight_dtype())) {
    // Without gemm_dtype the GEMMs compute in the activation dtype.
    v.error("activation_dtype", config::Dtype_Name(m.activation_dtype()) +
                                    " activations make the GEMMs compute in " +
                                    config::Dtype_Name(m.activation_dtype()) + " over " +
                                    config::Dtype_Name(m.weight_dtype()) +
                                    " weights, quantising every weight at every step; store the "
                                    "weights in that dtype (weight_dtype)");
  }
  if (m.embedding_dtype() == config::INT4) {
    v.error("embedding_dtype", "INT4 embeddings are not supported");
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
  if (p.has_expert_parallel() && v.positive("expert_parallel", true, p.expert_parallel()) &&
      p.expert_parallel() > 1) {
    const uint32_t ep = p.expert_parallel();
    if (!m.has_moe()) {
      v.error("expert_parallel", "needs a mixture-of-experts model (model.moe)");
    } else if ((uint64_t{m.moe().experts()} + p.redundant_experts()) % ep != 0) {
      v.error("expert_parallel", p.redundant_experts() > 0
                                     ? "must divide the model's experts plus redundant_experts (" +
                                           std::to_string(m.moe().experts()) + " + " +
                                           std::to_string(p.redundant_experts()) + ")"
                                     : "must divide the model's experts (" +
                                           std::to_string(m.moe().experts()) +
                                           "); redundant_experts can make up the difference");
    } else if (p.redundant_experts() > uint64_t{m.moe().experts()} * (ep - 1)) {
      v.error("redundant_experts", "at most experts x (expert_parallel - 1) copies (" +
                                       std::to_string(uint64_t{m.moe().experts()} * (ep - 1)) +
                                       "): then every rank holds every expert");
    }
    if (p.tensor_parallel() > 1) {
      v.error("expert_parallel",
              "with tensor_parallel > 1 is not modelled: expert-parallel ranks run attention "
              "and dense layers data-parallel (set tensor_parallel 1)");
    }
  }
  if (p.has_redundant_experts() && p.redundant_experts() > 0 &&
      !(p.has_expert_parallel() && p.expert_parallel() > 1)) {
    v.error("redundant_experts", "needs expert_parallel > 1");
  }
  if (p.ep_dispatch_dtype() != config::DTYPE_UNSPECIFIED) {
    if (!(p.has_expert_parallel() && p.expert_parallel() > 1)) {
      v.error("ep_dispatch_dtype", "needs expert_parallel > 1");
    } else if (p.ep_dispatch_dtype() != config::FP8 &&
               p.ep_dispatch_dtype() != m.activation_dtype()) {
      v.error("ep_dispatch_dtype", "FP8 (DeepEP's dispatch) or the activation dtype (" +
                                       config::Dtype_Name(m.activation_dtype()) + ")");
    }
  }
  if (p.has_pipeline_parallel() && v.positive("pipeline_parallel", true, p.pipeline_parallel()) &&
      p.pipeline_parallel() > 1) {
    // Not yet: stages of expert-parallel ranks.
    if (m.has_layers() && p.pipeline_parallel() > m.layers()) {
      v.error("pipeline_parallel", "at most the model's layers (" + std::to_string(m.layers()) +
                                       "): a stage holds one "
                                       "or more");
    }
    if (p.expert_parallel() > 1) {
      v.error("pipeline_parallel",
              "with expert_parallel > 1 is not modelled yet (set expert_parallel 1)");
    }
  }
  if (p.has_data_parallel() && v.positive("data_parallel", true, p.data_parallel()) &&
      p.data_parallel() > 1 && (p.expert_parallel() > 1 || p.pipeline_parallel() > 1)) {
    v.error("data_parallel",
            "replicas of expert-parallel ranks or pipeline stages are not modelled yet (set "
            "expert_parallel and pipeline_parallel 1)");
  }
  if (p.has_pipeline_micro_batches() &&
      v.positive("pipeline_micro_batches", true, p.pipeline_micro_batches()) &&
      !(p.has_pipeline_parallel() && p.pipeline_parallel() > 1)) {
    v.error("pipeline_micro_batches", "needs pipeline_parallel > 1");
  }
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
  if (!m.has_moe() || m.moe().first_moe_layer() > 0) divides("ffn_size", m.ffn_size());
  if (m.has_moe()) {
    divides("moe.expert_ffn_size", m.moe().expert_ffn_size());
    if (m.moe().shared_experts() > 0) {
      divides("moe.shared_expert_ffn_size x shared_experts",
              m.moe().shared_experts() * (m.moe().has_shared_expert_ffn_size()
                                              ? m.moe().shared_expert_ffn_size()
                                              : m.moe().expert_ffn_size()));
    }
  }
  if (m.has_latent_attention()) return;  // the latent is replicated; heads split
  if (m.kv_heads() % tp != 0 && tp % m.kv_heads() != 0) {
    v.error("tensor_parallel", "must divide kv_heads (" + std::to_string(m.kv_heads()) +
                                   ") or be a multiple of it (replicated KV heads)");
  }
}

void TransformerShape::validate_workload_model(const config::Config& root, Validator& v) {
  const auto& w = root.workload();
  if (!w.has_model()) {
    v.error("workload.model", "required field is not set");
    return;
  }
  Validator mv = v.at("workload.model");
  validate(w.model(), mv);
  Validator pv = v.at("workload.parallelism");
  validate_parallelism(w.model(), w.parallelism(), pv);
}

TransformerShape TransformerShape::from_config(const config::TransformerModel& m,
                                               const config::Parallelism& p) {
  TransformerShape s;
  s.layers = m.layers();
  s.hidden = m.hidden_size();
  s.heads = m.heads();
  s.latent = m.has_latent_attention();
  // MLA: every query head shares the one latent (MQA-like); head_dim is the value head width.
  s.kv_heads = s.latent ? 1 : m.kv_heads();
  s.head_dim = s.latent           ? m.latent_attention().v_head_dim()
               : m.has_head_dim() ? m.head_dim()
                                  : m.hidden_size() / m.heads();
  if (s.latent) {
    const auto& la = m.latent_attention();
    s.kv_lora_rank = la.kv_lora_rank();
    s.q_lora_rank = la.q_lora_rank();
    s.rope_head_dim = la.rope_head_dim();
    s.nope_head_dim = la.nope_head_dim();
    s.v_head_dim = la.v_head_dim();
  }
  if (m.has_moe()) {
    const auto& e = m.moe();
    s.experts = e.experts();
    s.experts_per_token = e.experts_per_token();
    s.expert_ffn = e.expert_ffn_size();
    s.shared_experts = e.shared_experts();
    s.shared_expert_ffn =
        e.has_shared_expert_ffn_size() ? e.shared_expert_ffn_size() : e.expert_ffn_size();
    s.first_moe_layer = e.first_moe_layer();
  }
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
  s.quant_group_outputs = m.has_quant_group_outputs() ? m.quant_group_outputs() : 1;
  s.embedding_dtype =
      m.embedding_dtype() == config::DTYPE_UNSPECIFIED ? m.weight_dtype() : m.embedding_dtype();
  s.gemm_dtype =
      m.gemm_dtype() == config::DTYPE_UNSPECIFIED ? m.activation_dtype() : m.gemm_dtype();
  s.tp = p.has_tensor_parallel() ? p.tensor_parallel() : 1;
  s.ep = p.has_expert_parallel() && p.expert_parallel() > 0 ? p.expert_parallel() : 1;
  s.redundant_experts = s.ep > 1 ? p.redundant_experts() : 0;
  s.ep_dispatch_fp8 = s.ep > 1 && p.ep_dispatch_dtype() == config::FP8;
  s.pp = p.has_pipeline_parallel() && p.pipeline_parallel() > 0 ? p.pipeline_parallel() : 1;
  return s;
}

uint64_t TransformerShape::matrix_bytes(uint64_t in, uint64_t out, bool bias) const {
  uint64_t b = dtype_bytes(weight_dtype, in * out);
  if (quant_group > 0) {
    b += dtype_bytes(scale_dtype, (in + quant_group - 1) / quant_group *
                                      ((out + quant_group_outputs - 1) / quant_group_outputs));
  }
  if (bias && linear_bias) b += dtype_bytes(activation_dtype, out);
  return b;
}

uint64_t TransformerShape::qkv_weight_bytes() const {
  if (!latent) return matrix_bytes(hidden, q_dim() + 2 * kv_dim(), true);
  const uint64_t q = q_lora_rank > 0 ? matrix_bytes(hidden, q_lora_rank, false) +
                                           dtype_bytes(activation_dtype, q_lora_rank) +
                                           matrix_bytes(q_lora_rank, q_dim(), false)
                                     : matrix_bytes(hidden, q_dim(), false);
  return q + matrix_bytes(hidden, latent_dim(), false) +
         dtype_bytes(activation_dtype, kv_lora_rank);
}
uint64_t TransformerShape::out_weight_bytes() const {
  return matrix_bytes(latent ? uint64_t{heads_rank()} * v_head_dim : q_dim(), hidden, true);
}
uint64_t TransformerShape::absorb_weight_bytes() const {
  return latent ? matrix_bytes(kv_lora_rank, uint64_t{heads_rank()} * nope_head_dim, false) : 0;
}
uint64_t TransformerShape::unabsorb_weight_bytes() const {
  return latent ? matrix_bytes(kv_lora_rank, uint64_t{heads_rank()} * v_head_dim, false) : 0;
}
uint64_t TransformerShape::attention_weight_bytes() const {
  return qkv_weight_bytes() + absorb_weight_bytes() + unabsorb_weight_bytes() + out_weight_bytes();
}
uint64_t TransformerShape::gate_up_weight_bytes() const {
  return matrix_bytes(hidden, mlp_mats() * ffn_rank(), true);
}
uint64_t TransformerShape::down_weight_bytes() const {
  return matrix_bytes(ffn_rank(), hidden, true);
}
uint64_t TransformerShape::router_weight_bytes() const {
  return dtype_bytes(activation_dtype, uint64_t{hidden} * experts);
}
uint64_t TransformerShape::expert_gate_up_bytes() const {
  return matrix_bytes(hidden, mlp_mats() * expert_ffn_rank(), false);
}
uint64_t TransformerShape::expert_down_bytes() const {
  return matrix_bytes(expert_ffn_rank(), hidden, false);
}
uint64_t TransformerShape::shared_gate_up_bytes() const {
  return shared_experts ? matrix_bytes(hidden, mlp_mats() * shared_ffn_rank(), false) : 0;
}
uint64_t TransformerShape::shared_down_bytes() const {
  return shared_experts ? matrix_bytes(shared_ffn_rank(), hidden, false) : 0;
}
uint64_t TransformerShape::norm_weight_bytes() const {
  return dtype_bytes(activation_dtype, norm_params());
}
uint64_t TransformerShape::mlp_weight_bytes(uint32_t layer) const {
  if (!moe_layer(layer)) return gate_up_weight_bytes() + down_weight_bytes();
  return router_weight_bytes() + uint64_t{experts_rank()} * expert_bytes() +
         shared_gate_up_bytes() + shared_down_bytes();
}
uint64_t TransformerShape::layer_weight_bytes(uint32_t layer) const {
  return attention_weight_bytes() + mlp_weight_bytes(layer) +
         norms_per_layer() * norm_weight_bytes();
}
uint64_t TransformerShape::embedding_bytes() const {
  return dtype_bytes(embedding_dtype, vocab_rank() * hidden);
}
uint64_t TransformerShape::position_table_bytes() const {
  return positional == config::LEARNED
             ? dtype_bytes(embedding_dtype, uint64_t{max_positions} * hidden)
             : 0;
}
uint64_t TransformerShape::lm_head_bytes() const {
  return tied_embeddings ? 0 : dtype_bytes(embedding_dtype, vocab_rank() * hidden);
}
uint64_t TransformerShape::total_weight_bytes() const {
  uint64_t layers_bytes = 0;
  if (!moe()) {
    layers_bytes = layers * layer_weight_bytes(0);
  } else {
    layers_bytes = uint64_t{first_moe_layer} * layer_weight_bytes(0) +
                   uint64_t{moe_layers()} * layer_weight_bytes(first_moe_layer);
  }
  return layers_bytes + embedding_bytes() + position_table_bytes() + lm_head_bytes() +
         (embedding_norm ? 2 : 1) * norm_weight_bytes();
}
TransformerShape::LayerRange TransformerShape::stage_layers(uint32_t stage) const {
  // Stage i holds L / pp layers, plus one when it is among the L mod pp stages just before the
  // last (the last stage carries the head; the first, the embedding).
  const uint32_t base = layers / pp, extra = layers % pp;
  auto count = [&](uint32_t i) { return base + (i + 1 < pp && i + 1 + extra >= pp ? 1u : 0u); };
  LayerRange r;
  for (uint32_t i = 0; i < stage; ++i)
    r.first += count(i);
  r.end = r.first + count(stage);
  return r;
}

uint64_t TransformerShape::stage_weight_bytes(uint32_t stage) const {
  if (pp <= 1) return total_weight_bytes();
  const LayerRange r = stage_layers(stage);
  uint64_t bytes = 0;
  for (uint32_t l = r.first; l < r.end; ++l)
    bytes += layer_weight_bytes(l);
  if (stage == 0) {
    bytes +=
        embedding_bytes() + position_table_bytes() + (embedding_norm ? norm_weight_bytes() : 0);
  }
  if (stage + 1 == pp) {
    // A tied LM head reads a copy of the embedding table on the last stage.
    bytes += norm_weight_bytes() + (tied_embeddings ? embedding_bytes() : lm_head_bytes());
  }
  return bytes;
}

uint64_t TransformerShape::kv_bytes_per_token_per_layer() const {
  return latent ? dtype_bytes(kv_dtype, latent_dim()) : dtype_bytes(kv_dtype, 2 * kv_dim());
}

std::vector<OpKind> TransformerShape::layer_ops(uint32_t layer) const {
  std::vector<OpKind> ops{OpKind::kAttnNorm, OpKind::kQkvProj};
  if (positional == config::ROPE) ops.push_back(OpKind::kRope);
  if (latent) ops.push_back(OpKind::kLatentAbsorb);
  ops.push_back(OpKind::kAttention);
  if (latent) ops.push_back(OpKind::kLatentUnabsorb);
  ops.push_back(OpKind::kOutProj);
  const bool moe_here = moe_layer(layer);
  auto mlp = [&] {
    if (!moe_here) {
      ops.insert(ops.end(), {OpKind::kGateUpProj, OpKind::kActivation, OpKind::kDownProj});
      return;
    }
    ops.push_back(OpKind::kRouter);
    if (shared_experts > 0) {
      ops.insert(ops.end(),
                 {OpKind::kSharedGateUp, OpKind::kSharedActivation, OpKind::kSharedDown});
    }
    if (ep > 1) ops.push_back(OpKind::kEpDispatch);
    ops.insert(ops.end(), {OpKind::kExpertGateUp, OpKind::kExpertActivation, OpKind::kExpertDown});
    if (ep > 1) ops.push_back(OpKind::kEpCombine);
    ops.push_back(OpKind::kMoeCombine);
  };
  if (parallel_attn_mlp) {
    // One norm feeds both branches; one reduction and one residual add for both.
    mlp();
    if (tp > 1) ops.push_back(OpKind::kAllReduce);
    ops.push_back(OpKind::kMlpResidual);
    return ops;
  }
  if (tp > 1) ops.push_back(OpKind::kAllReduce);
  ops.insert(ops.end(), {OpKind::kAttnResidual, OpKind::kMlpNorm});
  mlp();
  if (tp > 1) ops.push_back(OpKind::kAllReduce);
  ops.push_back(OpKind::kMlpResidual);
  return ops;
}

OpCost page_select_cost(const TransformerShape& s, uint64_t pages, uint64_t queries) {
  OpCost c;
  c.op_class = OpClass::kVector;
  c.flops = 4.0 * double(queries) * double(s.q_dim()) * double(pages) + 5.0 * double(pages);
  c.kv_read_bytes = pages * s.kv_bytes_per_token_per_layer();
  c.activation_read_bytes = dtype_bytes(s.activation_dtype, queries * s.q_dim());
  c.activation_write_bytes = 4 * pages;  // one score per page
  return c;
}

OpCost op_cost(const TransformerShape& s, OpKind kind, uint64_t batch, uint64_t kv_tokens,
               uint64_t queries) {
  OpCost c;
  const uint64_t b = batch;
  const uint64_t h = s.hidden;
  auto act = [&](uint64_t elements) { return dtype_bytes(s.activation_dtype, elements); };
  const double mlp_flops_per_element = s.mlp == config::SWIGLU ? 5.0
                                       : s.mlp == config::GELU ? 8.0
                                                               : 1.0;
  const uint64_t qkv_dim = s.q_dim() + 2 * s.kv_dim();
  const uint64_t ffn = s.ffn_rank();
  const uint64_t bias = s.linear_bias ? 1 : 0;
  auto matrix = [&](uint64_t in, uint64_t out, uint64_t weight_bytes, uint64_t with_bias = 1) {
    c.op_class = OpClass::kMatrix;
    c.rows = b;
    c.flops = 2.0 * b * in * out + double(with_bias * bias * b * out);
    c.weight_bytes = weight_bytes;
    c.activation_read_bytes = act(b * in);
    c.activation_write_bytes = act(b * out);
  };
  switch (kind) {
    case OpKind::kEmbedding:
      // Gather one row per sequence (from this rank's vocab shard; Megatron masks and
      // all-reduces, which the op stream does not model separately), plus its position row.
      // weight_bytes is one table's rows; LEARNED reads as many again from the position table.
      c.weight_bytes = dtype_bytes(s.embedding_dtype, b * h);
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
      if (!s.latent) {
        matrix(h, qkv_dim, s.qkv_weight_bytes());
        break;
      }
      // MLA: x W_DQ, norm, W_UQ (or x W_Q), and x W_DKV, norm; queries and the new latent out.
      matrix(h, 1, s.qkv_weight_bytes());
      c.flops = 2.0 * b * h * s.latent_dim() + 4.0 * b * s.kv_lora_rank +
                (s.q_lora_rank > 0 ? 2.0 * b * h * s.q_lora_rank + 4.0 * b * s.q_lora_rank +
                                         2.0 * b * s.q_lora_rank * s.q_dim()
                                   : 2.0 * b * h * s.q_dim());
      c.activation_write_bytes = act(b * (s.q_dim() + s.latent_dim()));
      break;
    case OpKind::kRope: {
      // MLA rotates each head's rope part and the one shared rotary key.
      const uint64_t rotated =
          s.latent ? b * (uint64_t{s.heads_rank()} * s.rope_head_dim + s.rope_head_dim)
                   : b * (s.q_dim() + s.kv_dim());
      c.flops = 3.0 * rotated;
      c.activation_read_bytes = act(rotated);
      c.activation_write_bytes = act(rotated);
      break;
    }
    case OpKind::kLatentAbsorb:
    case OpKind::kLatentUnabsorb: {
      // Per head, b x nope by nope x kv_lora (absorb) or b x kv_lora by kv_lora x v (unabsorb).
      const uint64_t heads = s.heads_rank();
      const bool absorb = kind == OpKind::kLatentAbsorb;
      const uint64_t in = absorb ? s.nope_head_dim : s.kv_lora_rank;
      const uint64_t out = absorb ? s.kv_lora_rank : s.v_head_dim;
      matrix(heads * in, out, absorb ? s.absorb_weight_bytes() : s.unabsorb_weight_bytes(), 0);
      c.flops = 2.0 * b * heads * in * out;
      c.activation_write_bytes = act(b * heads * out);
      break;
    }
    case OpKind::kAttention: {
      const uint64_t q = queries;
      const uint64_t cached = kv_tokens - q;  // the new tokens' K and V are on chip
      const uint64_t heads = s.heads_rank();
      const uint64_t bq = b * q;  // query tokens
      // Query-key pairs per sequence: the q new tokens are the last q of kv_tokens and each
      // attends to the tokens up to itself (causal), so q (K - q) + q (q + 1) / 2; K for q = 1.
      const double pairs = double(b) * (double(q) * double(cached) + double(q) * (q + 1) / 2.0);
      c.op_class = OpClass::kMatrix;
      c.kv_read_bytes = b * cached * s.kv_bytes_per_token_per_layer();
      c.kv_write_bytes = bq * s.kv_bytes_per_token_per_layer();
      if (s.latent) {
        // Scores over latent plus rotary key, values are the latent itself; every head (and
        // every query) shares each cached latent.
        c.rows = heads * q;
        c.flops = 2.0 * pairs * heads * s.latent_dim() + 2.0 * pairs * heads * s.kv_lora_rank +
                  5.0 * pairs * heads;
        c.activation_read_bytes = act(bq * (heads + 1) * s.latent_dim());
        c.activation_write_bytes = act(bq * heads * s.kv_lora_rank);
        break;
      }
      // Each KV head is shared by the query heads of its group (times the queries): those are
      // the rows per read.
      c.rows = heads / s.kv_heads_rank() * q;
      c.flops = 4.0 * pairs * s.q_dim() + 5.0 * pairs * heads +
                (s.positional == config::ALIBI ? 1.0 * pairs * heads : 0.0);
      c.activation_read_bytes = act(bq * qkv_dim);
      c.activation_write_bytes = act(bq * s.q_dim());
      break;
    }
    case OpKind::kOutProj:
      matrix(s.latent ? uint64_t{s.heads_rank()} * s.v_head_dim : s.q_dim(), h,
             s.out_weight_bytes());
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
    case OpKind::kExpertActivation:
    case OpKind::kSharedActivation: {
      const uint64_t width = kind == OpKind::kActivation         ? ffn
                             : kind == OpKind::kExpertActivation ? s.expert_ffn_rank()
                                                                 : s.shared_ffn_rank();
      c.flops = mlp_flops_per_element * b * width;
      c.activation_read_bytes = act(b * width * s.mlp_mats());
      c.activation_write_bytes = act(b * width);
      break;
    }
    case OpKind::kRouter:
      // Router logits, then softmax and top-k (about 5 FLOPs per logit).
      matrix(h, s.experts, s.router_weight_bytes(), 0);
      c.flops += 5.0 * b * s.experts;
      break;
    case OpKind::kExpertGateUp:
      matrix(h, s.expert_ffn_rank() * s.mlp_mats(), s.expert_gate_up_bytes(), 0);
      break;
    case OpKind::kExpertDown:
      matrix(s.expert_ffn_rank(), h, s.expert_down_bytes(), 0);
      break;
    case OpKind::kSharedGateUp:
      matrix(h, s.shared_ffn_rank() * s.mlp_mats(), s.shared_gate_up_bytes(), 0);
      break;
    case OpKind::kSharedDown:
      matrix(s.shared_ffn_rank(), h, s.shared_down_bytes(), 0);
      break;
    case OpKind::kMoeCombine: {
      // Scale each of the k expert outputs by its gate weight and sum them (plus the shared
      // experts' output).
      const uint64_t inputs = uint64_t{s.experts_per_token} + (s.shared_experts ? 1 : 0);
      c.flops = 2.0 * b * s.experts_per_token * h + (s.shared_experts ? 1.0 * b * h : 0.0);
      c.activation_read_bytes = act(b * inputs * h);
      c.activation_write_bytes = act(b * h);
      break;
    }
    case OpKind::kDownProj:
      matrix(ffn, h, s.down_weight_bytes());
      break;
    case OpKind::kLmHead:
      c.op_class = OpClass::kMatrix;
      c.rows = b;
      c.flops = 2.0 * b * h * s.vocab_rank();
      c.weight_bytes = dtype_bytes(s.embedding_dtype, s.vocab_rank() * h);
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
    case OpKind::kEpDispatch:
    case OpKind::kEpCombine:
      // The expected message when routing is even: each token's hidden state to each of its k
      // experts (dispatch) and each expert output back (combine); the workload sets the
      // routed traffic matrix.
      c.op_class = OpClass::kCollective;
      c.collective_bytes = act(b * s.experts_per_token * h);
      c.activation_read_bytes =
          act((kind == OpKind::kEpDispatch ? b : b * s.experts_per_token) * h);
      c.activation_write_bytes = act(b * s.experts_per_token * h);
      break;
    case OpKind::kGemm:
    case OpKind::kPageSelect:
    case OpKind::kIdle:
    case OpKind::kHold:
    case OpKind::kSwapOut:
    case OpKind::kSwapIn:
    case OpKind::kPipeSend:
    case OpKind::kPipeRecv:
    case OpKind::kPredictedPass:
      break;  // costed by their workloads (GEMM, page_select_cost, serving, pipeline stages)
  }
  return c;
}

}  // namespace tiersim
