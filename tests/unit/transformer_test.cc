#include "workloads/transformer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "models/config_loader.h"
#include "models/objects.h"
#include "tests/support/paths.h"
#include "workloads/decode.h"

namespace tiersim {
namespace {

TransformerShape load_model(const std::string& name) {
  std::ifstream in(test::preset("models/" + name + ".textproto"));
  std::stringstream ss;
  ss << in.rdbuf();
  config::Config c = parse_config_text(ss.str(), name, nullptr);
  return TransformerShape::from_config(c.workload().model());
}

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
  std::ifstream in(test::preset("models/llama3_70b.textproto"));
  std::stringstream ss;
  ss << in.rdbuf();
  config::Config c = parse_config_text(ss.str(), "llama3_70b", nullptr);
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
  // embedding, 2 x (7 objects), final_norm, lm_head
  EXPECT_EQ(t.size(), 1u + 2 * 7 + 2);
  EXPECT_EQ(t.total_bytes(ObjectClass::kKvCache), 2u * 3 * 102 * (2 * 4096 * 2));
  Op op;
  std::vector<Op> ops;
  while (w.next(op))
    ops.push_back(op);
  const size_t per_step = 1 + 2 * s.layer_ops().size() + 2;
  ASSERT_EQ(ops.size(), 2 * per_step);
  for (size_t i = 0; i < ops.size(); ++i)
    EXPECT_EQ(ops[i].id.value(), i);
  EXPECT_EQ(ops[0].kind, OpKind::kEmbedding);
  EXPECT_TRUE(ops[per_step - 1].last_of_step);
  EXPECT_EQ(ops[per_step - 1].kind, OpKind::kLmHead);
  // Attention of layer 0: step 0 reads 100 cached tokens, step 1 reads 101, appends after them.
  const Op& a0 = ops[1 + 3];
  const Op& a1 = ops[per_step + 1 + 3];
  ASSERT_EQ(a0.kind, OpKind::kAttention);
  const uint64_t tok = 3u * 2 * 4096 * 2;  // batch x per-token-per-layer
  EXPECT_EQ(a0.operands[0].bytes, 100 * tok);
  EXPECT_EQ(a1.operands[0].bytes, 101 * tok);
  EXPECT_EQ(a1.operands[1].access, Access::kWrite);
  EXPECT_EQ(a1.operands[1].offset_bytes, 101 * tok);
  EXPECT_EQ(a1.operands[1].bytes, tok);
  EXPECT_EQ(DecodeWorkload::footprint_bytes(s, 3, 100, 2),
            s.total_weight_bytes() + 2 * 3 * 102 * (tok / 3));
}

}  // namespace
}  // namespace tiersim
