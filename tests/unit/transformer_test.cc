#include "workloads/transformer.h"

#include <gtest/gtest.h>

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
  const size_t per_step = 1 + 2 * kOpsPerLayer + 2;
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
