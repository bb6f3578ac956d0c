#include "workloads/transformer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "models/config/loader.h"
#include "models/core/objects.h"
#include "tests/support/model_presets.h"
#include "tests/support/paths.h"
#include "workloads/decode.h"

namespace tiersim {
namespace {

using test::load_model;

// Parameter counts of the published checkpoints (hand-derived from config.json, and equal to
// the counts the model cards state).
TEST(Transformer, PresetWeightBytesMatchPublishedParameterCounts) {
  EXPECT_EQ(load_model("llama2_7b").total_weight_bytes(), 2ull * 6'738'415'616ull);
  EXPECT_EQ(load_model("llama2_70b").total_weight_bytes(), 2ull * 68'976'648'192ull);
  EXPECT_EQ(load_model("llama3_8b").total_weight_bytes(), 2ull * 8'030'261'248ull);
  EXPECT_EQ(load_model("llama3_70b").total_weight_bytes(), 2ull * 70'553'706'496ull);
}

// Hand-derived parameter counts of the other presets (from the architecture fields in each
// preset's comment: per layer qkv, out, mlp, norms and biases; embeddings, positions, final
// norm). GPT-3 175B, OPT-6.7B and BLOOM-176B equal their published counts (174.6 B, 6.658 B,
// 176.25 B).
TEST(Transformer, EveryPresetsWeightBytesMatchTheHandCount) {
  struct Row {
    const char* name;
    uint64_t params;
    uint64_t bytes_per_param;
  };
  const Row rows[] = {
      {"llama2_13b", 13'015'864'320ull, 2}, {"llama3_405b", 405'853'388'800ull, 2},
      {"gpt3_175b", 174'604'259'328ull, 2}, {"gptj_6b", 6'050'258'944ull, 2},
      {"opt_6_7b", 6'658'473'984ull, 2},    {"opt_30b", 29'974'540'288ull, 2},
      {"opt_175b", 174'604'468'224ull, 2},  {"bloom_176b", 176'247'271'424ull, 2},
  };
  for (const auto& r : rows)
    EXPECT_EQ(load_model(r.name).total_weight_bytes(), r.params * r.bytes_per_param) << r.name;
}

TEST(Transformer, QuantisedWeightsCarryGroupScales) {
  TransformerShape s = load_model("llama2_7b");
  s.weight_dtype = config::INT4;
  s.quant_group = 128;
  s.scale_dtype = config::FP16;
  // qkv: 4096 x 12288 at 4 bits, plus one fp16 scale per 128 inputs per output.
  EXPECT_EQ(s.qkv_weight_bytes(), 4096ull * 12288 / 2 + 4096 / 128 * 12288 * 2);
  s.quant_group = 0;
  EXPECT_EQ(s.qkv_weight_bytes(), 4096ull * 12288 / 2);
}

TEST(Transformer, TensorParallelShardsAndCollectives) {
  config::Parallelism p;
  p.set_tensor_parallel(8);
  const config::Config c = test::load_model_config("llama3_70b");
  const TransformerShape full = TransformerShape::from_config(c.workload().model());
  const TransformerShape s = TransformerShape::from_config(c.workload().model(), p);
  // 64 query heads and 8 KV heads split 8 ways: 8 and 1 per rank.
  EXPECT_EQ(s.q_dim(), 8u * 128);
  EXPECT_EQ(s.kv_dim(), 1u * 128);
  EXPECT_EQ(s.kv_bytes_per_token(), full.kv_bytes_per_token() / 8);
  EXPECT_EQ(s.qkv_weight_bytes(), full.qkv_weight_bytes() / 8);
  EXPECT_EQ(s.gate_up_weight_bytes(), full.gate_up_weight_bytes() / 8);
  EXPECT_EQ(s.down_weight_bytes(), full.down_weight_bytes() / 8);
  EXPECT_EQ(s.lm_head_bytes(), full.lm_head_bytes() / 8);  // 128256 = 8 x 16032
  // Norms are replicated.
  EXPECT_EQ(s.norm_weight_bytes(), full.norm_weight_bytes());
  // Two all-reduces per layer, of the layer output (batch x hidden x 2 bytes).
  const auto ops = s.layer_ops();
  EXPECT_EQ(std::count(ops.begin(), ops.end(), OpKind::kAllReduce), 2);
  const OpCost ar = op_cost(s, OpKind::kAllReduce, 64, 1);
  EXPECT_EQ(ar.collective_bytes, 64u * 8192 * 2);
  EXPECT_EQ(ar.op_class, OpClass::kCollective);
  // GQA attention: the 8 query heads of a rank share its KV head.
  EXPECT_EQ(op_cost(s, OpKind::kAttention, 64, 100).rows, 8u);
  // More ranks than KV heads: one replicated KV head per rank.
  p.set_tensor_parallel(16);
  const TransformerShape s16 = TransformerShape::from_config(c.workload().model(), p);
  EXPECT_EQ(s16.kv_dim(), 128u);
}

TEST(Transformer, LayerOpsFollowTheArchitecture) {
  // GPT-3: learned positions (no RoPE op), LayerNorm, GeLU; GPT-J: one norm, parallel branches.
  const auto gpt3 = load_model("gpt3_175b").layer_ops();
  EXPECT_EQ(std::count(gpt3.begin(), gpt3.end(), OpKind::kRope), 0);
  EXPECT_EQ(gpt3.size(), 10u);
  const auto gptj = load_model("gptj_6b").layer_ops();
  EXPECT_EQ(std::count(gptj.begin(), gptj.end(), OpKind::kMlpNorm), 0);
  EXPECT_EQ(std::count(gptj.begin(), gptj.end(), OpKind::kAttnResidual), 0);
  // OPT's ReLU is one flop per element; BLOOM's ALiBi adds one per score.
  EXPECT_DOUBLE_EQ(op_cost(load_model("opt_6_7b"), OpKind::kActivation, 2, 1).flops, 2.0 * 16384);
  const TransformerShape bloom = load_model("bloom_176b");
  EXPECT_DOUBLE_EQ(op_cost(bloom, OpKind::kAttention, 1, 10).flops,
                   4.0 * 14336 * 10 + 5.0 * 112 * 10 + 112.0 * 10);
  // Biases: GPT-3's qkv adds b x 3h flops and 3h bias elements.
  const TransformerShape g = load_model("gpt3_175b");
  const OpCost qkv = op_cost(g, OpKind::kQkvProj, 8, 1);
  EXPECT_DOUBLE_EQ(qkv.flops, 2.0 * 8 * 12288 * 36864 + 8.0 * 36864);
  EXPECT_EQ(qkv.weight_bytes, (12288ull * 36864 + 36864) * 2);
}

TEST(Transformer, KvBytesPerToken) {
  // 2 (K and V) x layers x kv_heads x head_dim x 2 bytes.
  EXPECT_EQ(load_model("llama2_70b").kv_bytes_per_token(), 327'680u);
  EXPECT_EQ(load_model("llama3_8b").kv_bytes_per_token(), 2u * 32 * 8 * 128 * 2);
  EXPECT_EQ(load_model("llama2_7b").kv_bytes_per_token(), 2u * 32 * 32 * 128 * 2);
  TransformerShape s = load_model("llama3_70b");
  s.kv_dtype = config::FP8;
  EXPECT_EQ(s.kv_bytes_per_token(), 163'840u);
}

TEST(Transformer, DtypeBytesRoundUp) {
  EXPECT_EQ(dtype_bytes(config::INT4, 3), 2u);
  EXPECT_EQ(dtype_bytes(config::FP32, 3), 12u);
  EXPECT_EQ(dtype_bytes(config::FP8, 3), 3u);
}

TEST(Transformer, OpCostsMatchHandFormulas) {
  const TransformerShape s = load_model("llama2_7b");  // h 4096, 32 heads, ffn 11008
  OpCost qkv = op_cost(s, OpKind::kQkvProj, 1, 100);
  EXPECT_DOUBLE_EQ(qkv.flops, 2.0 * 4096 * 12288);
  EXPECT_EQ(qkv.weight_bytes, 4096u * 12288 * 2);
  EXPECT_EQ(qkv.activation_read_bytes, 4096u * 2);
  EXPECT_EQ(qkv.activation_write_bytes, 12288u * 2);

  OpCost attn = op_cost(s, OpKind::kAttention, 2, 10);
  EXPECT_DOUBLE_EQ(attn.flops, 4.0 * 2 * 4096 * 10 + 5.0 * 2 * 32 * 10);
  EXPECT_EQ(attn.kv_read_bytes, 2u * 9 * (2 * 4096 * 2));  // 9 cached tokens per sequence
  EXPECT_EQ(attn.kv_write_bytes, 2u * (2 * 4096 * 2));
  EXPECT_EQ(attn.weight_bytes, 0u);

  OpCost gate_up = op_cost(s, OpKind::kGateUpProj, 4, 1);
  EXPECT_DOUBLE_EQ(gate_up.flops, 2.0 * 4 * 4096 * 11008 * 2);
  EXPECT_EQ(gate_up.weight_bytes, 2u * 4096 * 11008 * 2);
  OpCost down = op_cost(s, OpKind::kDownProj, 4, 1);
  EXPECT_DOUBLE_EQ(down.flops, 2.0 * 4 * 11008 * 4096);
  OpCost lm = op_cost(s, OpKind::kLmHead, 1, 1);
  EXPECT_DOUBLE_EQ(lm.flops, 2.0 * 4096 * 32000);
  EXPECT_EQ(lm.weight_bytes, 32000u * 4096 * 2);
  OpCost norm = op_cost(s, OpKind::kAttnNorm, 3, 1);
  EXPECT_DOUBLE_EQ(norm.flops, 4.0 * 3 * 4096);
  EXPECT_EQ(norm.weight_bytes, 4096u * 2);
  OpCost emb = op_cost(s, OpKind::kEmbedding, 3, 1);
  EXPECT_EQ(emb.weight_bytes, 3u * 4096 * 2);  // one row per sequence

  TransformerShape g = s;
  g.mlp = config::GELU;
  g.norm = config::LAYERNORM;
  EXPECT_EQ(op_cost(g, OpKind::kGateUpProj, 1, 1).weight_bytes, 4096u * 11008 * 2);
  EXPECT_DOUBLE_EQ(op_cost(g, OpKind::kActivation, 1, 1).flops, 8.0 * 11008);
  EXPECT_EQ(g.norm_weight_bytes(), 2u * 4096 * 2);  // weight and bias
}

TEST(DecodeWorkload, OpStreamOrderCountsAndKvGrowth) {
  TransformerShape s = load_model("llama2_7b");
  s.layers = 2;
  DecodeWorkload w(s, 3, 100, 2);
  ObjectTable t;
  w.register_objects(t);
  // embedding, 2 x (6 weight objects + 3 per-sequence KV objects), final_norm, lm_head
  EXPECT_EQ(t.size(), 1u + 2 * (6 + 3) + 2);
  const uint64_t tok = 2u * 4096 * 2;  // K and V of one token in one layer
  EXPECT_EQ(t.total_bytes(ObjectClass::kKvCache), 2u * 3 * 102 * tok);
  EXPECT_EQ(t.get(ObjectId(3)).name, "layer0.out");
  Op op;
  std::vector<Op> kinds;
  std::vector<Operand> attention0, attention1;  // layer 0's attention operands, steps 0 and 1
  while (w.next(op)) {
    kinds.push_back(op);
    if (op.kind == OpKind::kAttention && op.layer == LayerId(0)) {
      auto& list = op.step == StepIndex(0) ? attention0 : attention1;
      for (uint16_t i = 0; i < op.operand_count; ++i)
        list.push_back(op.operand(i));
    }
  }
  const size_t per_step = 1 + 2 * s.layer_ops().size() + 2;
  ASSERT_EQ(kinds.size(), 2 * per_step);
  for (size_t i = 0; i < kinds.size(); ++i)
    EXPECT_EQ(kinds[i].id.value(), i);
  EXPECT_EQ(kinds[0].kind, OpKind::kEmbedding);
  EXPECT_TRUE(kinds[per_step - 1].last_of_step);
  EXPECT_EQ(kinds[per_step - 1].kind, OpKind::kLmHead);
  // Each sequence reads its cached tokens from its own object and appends one token after
  // them: 100 cached at step 0, 101 at step 1.
  ASSERT_EQ(attention0.size(), 6u);
  ASSERT_EQ(attention1.size(), 6u);
  for (int q = 0; q < 3; ++q) {
    EXPECT_EQ(t.get(attention1[2 * q].object).name, "layer0.kv.seq" + std::to_string(q));
    EXPECT_EQ(attention0[2 * q].bytes, 100 * tok);
    EXPECT_EQ(attention1[2 * q].bytes, 101 * tok);
    EXPECT_EQ(attention1[2 * q + 1].access, Access::kWrite);
    EXPECT_EQ(attention1[2 * q + 1].offset_bytes, 101 * tok);
    EXPECT_EQ(attention1[2 * q + 1].bytes, tok);
  }
  DecodeOptions o;
  o.batch = 3;
  o.context = 100;
  o.steps = 2;
  EXPECT_EQ(DecodeWorkload::footprint_bytes(s, o), s.total_weight_bytes() + 2 * 3 * 102 * tok);
  EXPECT_EQ(w.sequence_tokens(), (std::vector<uint64_t>{102, 102, 102}));
}

// MoE and MLA presets against hand counts from their config.json (see each preset's comment).
TEST(Transformer, MoePresetsMatchPublishedParameterCounts) {
  // Mixtral 8x7B per layer: qkv 4096 x 6144, out 4096^2, router 4096 x 8, 8 experts of
  // 3 x 4096 x 14336, two norms; embedding and LM head 32000 x 4096; final norm.
  EXPECT_EQ(load_model("mixtral_8x7b").total_weight_bytes(), 2ull * 46'702'792'704ull);
  EXPECT_EQ(load_model("mixtral_8x22b").total_weight_bytes(), 2ull * 140'620'634'112ull);
  // DeepSeek-V3 in BF16 without scales: 671,026,404,352 parameters (the published 671 B).
  TransformerShape ds = load_model("deepseek_v3");
  EXPECT_EQ(ds.moe_layers(), 58u);
  const TransformerShape fp8 = ds;
  ds.weight_dtype = config::BF16;
  ds.quant_group = 0;
  EXPECT_EQ(ds.total_weight_bytes(), 2ull * 671'026'404'352ull);
  // As released: FP8 matrices, one FP32 scale per 128 x 128 block (ceil on each side), BF16
  // norms, router, embedding and LM head: 673,150,552,416 bytes.
  EXPECT_EQ(fp8.total_weight_bytes(), 673'150'552'416ull);
  // One expert's gate/up: 7168 x 4096 FP8 plus 56 x 32 FP32 scales.
  EXPECT_EQ(fp8.expert_gate_up_bytes(), 7168ull * 4096 + 56 * 32 * 4);
}

TEST(Transformer, LatentKvIsSharedByEveryHead) {
  const TransformerShape ds = load_model("deepseek_v3");
  // (kv_lora 512 + rope 64) x 2 bytes x 61 layers: 70,272 bytes per token.
  EXPECT_EQ(ds.kv_bytes_per_token(), 70'272u);
  // Tensor parallelism splits heads, not the latent cache.
  config::Parallelism p;
  p.set_tensor_parallel(8);
  const TransformerShape s8 = test::load_model("deepseek_v3", p);
  EXPECT_EQ(s8.kv_bytes_per_token(), 70'272u);
  EXPECT_EQ(s8.heads_rank(), 16u);
  EXPECT_EQ(s8.expert_ffn_rank(), 256u);

  // Attention for 2 sequences over L = 10 tokens, 128 heads: scores over 576 latent dims,
  // values over 512, softmax 5 per score; every head shares each latent read.
  const OpCost a = op_cost(ds, OpKind::kAttention, 2, 10);
  EXPECT_DOUBLE_EQ(a.flops,
                   2.0 * 2 * 128 * 10 * 576 + 2.0 * 2 * 128 * 10 * 512 + 5.0 * 2 * 128 * 10);
  EXPECT_EQ(a.rows, 128u);
  EXPECT_EQ(a.kv_read_bytes, 2u * 9 * 576 * 2);
  EXPECT_EQ(a.kv_write_bytes, 2u * 576 * 2);
  // Absorb: per head 128 -> 512 (W_UK); unabsorb: 512 -> 128 (W_UV).
  const OpCost ab = op_cost(ds, OpKind::kLatentAbsorb, 2, 10);
  EXPECT_DOUBLE_EQ(ab.flops, 2.0 * 2 * 128 * 128 * 512);
  EXPECT_EQ(ab.weight_bytes, 512ull * 128 * 128 + 4 * 128 * 4);
  // Query/latent projections: W_DQ 7168 x 1536, q norm, W_UQ 1536 x 128 x 192, W_DKV 7168 x 576,
  // kv norm.
  const OpCost q = op_cost(ds, OpKind::kQkvProj, 1, 1);
  EXPECT_DOUBLE_EQ(q.flops, 2.0 * 7168 * 576 + 4.0 * 512 + 2.0 * 7168 * 1536 + 4.0 * 1536 +
                                2.0 * 1536 * 128 * 192);
  const auto ops = ds.layer_ops(3);
  EXPECT_EQ(ops[3], OpKind::kLatentAbsorb);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), OpKind::kSharedGateUp), 1);
  const auto dense = ds.layer_ops(0);
  EXPECT_EQ(std::count(dense.begin(), dense.end(), OpKind::kRouter), 0);
  EXPECT_EQ(std::count(dense.begin(), dense.end(), OpKind::kGateUpProj), 1);
}

TEST(Transformer, MoeOpCostsMatchHandFormulas) {
  const TransformerShape m = load_model("mixtral_8x7b");
  const OpCost r = op_cost(m, OpKind::kRouter, 4, 1);
  EXPECT_DOUBLE_EQ(r.flops, 2.0 * 4 * 4096 * 8 + 5.0 * 4 * 8);
  EXPECT_EQ(r.weight_bytes, 4096u * 8 * 2);
  // One expert with 3 routed rows.
  const OpCost up = op_cost(m, OpKind::kExpertGateUp, 3, 1);
  EXPECT_DOUBLE_EQ(up.flops, 2.0 * 3 * 4096 * 2 * 14336);
  EXPECT_EQ(up.rows, 3u);
  EXPECT_EQ(up.weight_bytes, 2ull * 4096 * 14336 * 2);
  // Combine: k = 2 outputs scaled and summed per token.
  EXPECT_DOUBLE_EQ(op_cost(m, OpKind::kMoeCombine, 4, 1).flops, 2.0 * 4 * 2 * 4096);
}

// A batch of 8 on Mixtral: the grouped expert ops read each active expert once, with its routed
// token count as rows; bytes and FLOPs follow the routing.
TEST(DecodeWorkload, MoeLayersReadOnlyTheActiveExperts) {
  TransformerShape s = load_model("mixtral_8x7b");
  s.layers = 2;
  SyntheticRouterParams rp;
  rp.experts = 8;
  rp.top_k = 2;
  rp.moe_layers = 2;
  rp.batch = 8;
  rp.zipf = 1.0;
  rp.seed = 5;
  DecodeWorkload w(s, 8, 16, 3, std::make_unique<SyntheticRouter>(rp));
  ObjectTable t;
  w.register_objects(t);
  // embedding; per layer attn_norm, qkv, out, mlp_norm, router, 8 experts, 8 sequences' KV;
  // final_norm, lm_head.
  EXPECT_EQ(t.size(), 1u + 2 * (5 + 8 + 8) + 2);
  EXPECT_EQ(t.total_bytes(ObjectClass::kWeight) + t.total_bytes(ObjectClass::kEmbedding),
            s.total_weight_bytes());
  Op op;
  int grouped = 0;
  while (w.next(op)) {
    if (op.kind != OpKind::kExpertGateUp && op.kind != OpKind::kExpertDown) continue;
    ++grouped;
    ASSERT_TRUE(op.per_operand_compute);
    ASSERT_GE(op.operand_count, 2u);
    ASSERT_LE(op.operand_count, 8u);
    uint64_t rows = 0;
    double flops = 0;
    for (uint16_t i = 0; i < op.operand_count; ++i) {
      const Operand& o = op.operand(i);
      rows += o.rows;
      flops += o.flops;
      EXPECT_EQ(o.bytes, op.kind == OpKind::kExpertGateUp ? s.expert_gate_up_bytes()
                                                          : s.expert_down_bytes());
      EXPECT_EQ(o.offset_bytes, op.kind == OpKind::kExpertGateUp ? 0 : s.expert_gate_up_bytes());
      if (i > 0) {
        EXPECT_LT(op.operand(i - 1).object.value(), o.object.value());
      }
      EXPECT_NE(t.get(o.object).name.find(".expert"), std::string::npos);
    }
    EXPECT_EQ(rows, 16u);  // batch x top-k assignments
    EXPECT_DOUBLE_EQ(flops, op.flops);
  }
  EXPECT_EQ(grouped, 2 * 2 * 3);
  uint64_t assignments = 0;
  for (uint64_t x : w.expert_load())
    assignments += x;
  EXPECT_EQ(assignments, 3u * 2 * 16);
  std::vector<SummaryItem> summary;
  w.summarize(summary);
  ASSERT_EQ(summary.size(), 3u);
  EXPECT_GE(summary[0].value, 2.0);
  EXPECT_LE(summary[0].value, 8.0);
}

// A recorded trace replays the synthetic router's choices: the op streams are identical.
TEST(DecodeWorkload, RoutingTraceReplaysTheSyntheticRouter) {
  TransformerShape s = load_model("mixtral_8x7b");
  s.layers = 3;
  SyntheticRouterParams rp{8, 2, 3, 4, 1.2, 0.5, 2, 11};
  const std::string path = ::testing::TempDir() + "/routing.csv";
  {
    SyntheticRouter r(rp);
    std::ofstream out(path);
    write_routing_trace(out, r, TraceRouter::Shape{5, 4, 8, 2, 3, 0});
  }
  std::vector<ConfigIssue> issues;
  Validator v(issues, "workload.routing");
  auto trace = TraceRouter::load(path, TraceRouter::Shape{5, 4, 8, 2, 3, 0}, v);
  ASSERT_TRUE(trace.has_value()) << (issues.empty() ? "" : issues[0].format());
  DecodeWorkload a(s, 4, 8, 5, std::make_unique<SyntheticRouter>(rp));
  DecodeWorkload b(s, 4, 8, 5, std::make_unique<TraceRouter>(std::move(*trace)));
  ObjectTable ta, tb;
  a.register_objects(ta);
  b.register_objects(tb);
  Op x, y;
  size_t n = 0;
  while (a.next(x)) {
    ASSERT_TRUE(b.next(y));
    ASSERT_EQ(x.kind, y.kind);
    ASSERT_EQ(x.operand_count, y.operand_count) << n;
    for (uint16_t i = 0; i < x.operand_count; ++i) {
      EXPECT_EQ(x.operand(i).object, y.operand(i).object);
      EXPECT_EQ(x.operand(i).rows, y.operand(i).rows);
    }
    EXPECT_EQ(x.flops, y.flops);
    ++n;
  }
  EXPECT_FALSE(b.next(y));
  EXPECT_EQ(a.expert_load(), b.expert_load());
}

}  // namespace
}  // namespace tiersim
