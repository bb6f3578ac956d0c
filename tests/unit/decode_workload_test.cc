// The decode op stream's speculative and sparse modes against hand-derived counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "models/config/loader.h"
#include "models/core/objects.h"
#include "tests/support/model_presets.h"
#include "tests/support/paths.h"
#include "workloads/decode.h"
#include "workloads/fast_forward.h"

namespace tiersim {
namespace {

using test::load_model;

struct Stream {
  std::vector<OpKind> kinds;
  std::vector<bool> draft;                      // the op reads draft objects
  std::vector<std::vector<Operand>> attention;  // operands of each attention op
  std::vector<uint32_t> attention_rows;
  std::vector<double> attention_flops;
  std::vector<uint32_t> step_tokens;
};

Stream run(Workload& w, const ObjectTable& t) {
  Stream s;
  Op op;
  while (w.next(op)) {
    s.kinds.push_back(op.kind);
    bool draft = false;
    for (uint16_t i = 0; i < op.operand_count; ++i)
      draft |= t.get(op.operand(i).object).name.rfind("draft.", 0) == 0;
    s.draft.push_back(draft);
    if (op.kind == OpKind::kAttention) {
      std::vector<Operand> list;
      for (uint16_t i = 0; i < op.operand_count; ++i)
        list.push_back(op.operand(i));
      s.attention.push_back(list);
      s.attention_rows.push_back(op.rows);
      s.attention_flops.push_back(op.flops);
    }
    if (op.last_of_step) s.step_tokens.push_back(w.tokens_per_step());
  }
  return s;
}

// Speculative decoding with gamma = 4: four one-token draft passes, then one target pass of
// five queries per sequence over one read of each sequence's cache.
TEST(SpeculativeDecode, DraftPassesThenOneVerifyPass) {
  TransformerShape target = load_model("llama2_7b");
  target.layers = 2;
  TransformerShape draft = target;
  draft.layers = 1;
  draft.hidden = 1024;
  draft.heads = draft.kv_heads = 8;
  draft.ffn = 2816;
  DecodeOptions o;
  o.batch = 2;
  o.context = 100;
  o.steps = 3;
  o.draft = draft;
  o.gamma = 4;
  o.alpha = 0.7;
  o.seed = 3;
  DecodeWorkload w(target, o);
  ObjectTable t;
  w.register_objects(t);
  EXPECT_GT(t.total_bytes(ObjectClass::kDraftWeight), 0u);
  EXPECT_EQ(t.total_bytes(ObjectClass::kDraftWeight), draft.total_weight_bytes());
  const Stream s = run(w, t);
  ASSERT_EQ(s.step_tokens.size(), 3u);
  // Per step: 4 draft passes (1 attention each, 1 layer) and the target's 2 attentions.
  ASSERT_EQ(s.attention.size(), 3u * (4 * 1 + 2));
  const uint64_t tok = 2u * 4096 * 2, dtok = 2u * 1024 * 2;
  // Step 0, draft pass j: each sequence reads 100 + j cached draft tokens, appends one.
  for (uint32_t j = 0; j < 4; ++j) {
    const auto& a = s.attention[j];
    ASSERT_EQ(a.size(), 4u);
    EXPECT_EQ(a[0].bytes, (100 + j) * dtok);
    EXPECT_EQ(a[1].access, Access::kWrite);
    EXPECT_EQ(a[1].bytes, dtok);
    EXPECT_EQ(t.get(a[0].object).name, "draft.layer0.kv.seq0");
  }
  // Verify: 100 cached tokens read once, 5 written; 5 queries share each read.
  const auto& v = s.attention[4];
  EXPECT_EQ(v[0].bytes, 100 * tok);
  EXPECT_EQ(v[1].bytes, 5 * tok);
  EXPECT_EQ(v[1].offset_bytes, 100 * tok);
  EXPECT_EQ(s.attention_rows[4], 1u * 5);  // MHA: 1 query head per KV head, 5 queries
  // 5 queries over 100 cached tokens plus 1..5 new ones (causal): 5 x 100 + 15 pairs each.
  EXPECT_DOUBLE_EQ(s.attention_flops[4], 2 * (4.0 * 515 * 4096 + 5.0 * 515 * 32));
  // The next step starts where each sequence's accepted tokens end.
  uint64_t total = 0;
  for (uint32_t x : s.step_tokens) {
    EXPECT_GE(x, 2u);
    EXPECT_LE(x, 10u);
    total += x;
  }
  const auto& lengths = w.sequence_tokens();
  EXPECT_EQ(lengths[0] + lengths[1], 200 + total);
  EXPECT_EQ(w.kept_tokens(), total);
  EXPECT_EQ(w.verified_sequences(), 6u);
}

// Accepted tokens per verify match (1 - a^(g+1)) / (1 - a) within 2%, over 25,600
// verified sequences for each (alpha, gamma).
TEST(SpeculativeDecode, TokensPerVerifyMatchTheClosedForm) {
  TransformerShape target = load_model("llama2_7b");
  target.layers = 1;
  for (const auto& [alpha, gamma] :
       std::vector<std::pair<double, uint32_t>>{{0.6, 3}, {0.8, 4}, {0.9, 8}, {0.5, 1}}) {
    DecodeOptions o;
    o.batch = 64;
    o.context = 16;
    o.steps = 400;
    o.draft = target;
    o.gamma = gamma;
    o.alpha = alpha;
    o.seed = 17;
    DecodeWorkload w(target, o);
    ObjectTable t;
    w.register_objects(t);
    Op op;
    while (w.next(op)) {
    }
    const double expected = (1 - std::pow(alpha, gamma + 1)) / (1 - alpha);
    const double measured = double(w.kept_tokens()) / double(w.verified_sequences());
    EXPECT_NEAR(measured / expected, 1.0, 0.02) << "alpha " << alpha << " gamma " << gamma;
  }
}

// Sparse attention reads the sink pages, the window and top-k middle pages of each sequence,
// each page once; page digests are scored first.
TEST(SparseDecode, ReadsSinksWindowAndTopKPages) {
  TransformerShape s = load_model("llama3_8b");
  s.layers = 1;
  DecodeOptions o;
  o.batch = 2;
  o.context = 1000;
  o.steps = 20;
  o.kv_block_tokens = 16;
  o.sink_tokens = 4;
  o.window_tokens = 64;
  o.top_k_pages = 8;
  o.page_locality = 0.5;
  o.seed = 5;
  DecodeWorkload w(s, o);
  ObjectTable t;
  w.register_objects(t);
  const uint64_t tok = s.kv_bytes_per_token_per_layer();
  // Token area for 1020 tokens plus one digest per 16-token page (64 pages).
  EXPECT_EQ(t.get(ObjectId(t.size() - 4)).size_bytes, (1020 + 64) * tok);
  Op op;
  int page_selects = 0;
  uint32_t step = 0;
  while (w.next(op)) {
    if (op.kind == OpKind::kPageSelect) {
      ++page_selects;
      // Middle pages: [1, (len - 64) / 16); len = 1000 + step.
      const uint64_t middle = (1000 + step - 64) / 16 - 1;
      ASSERT_EQ(op.operand_count, 2u);
      EXPECT_EQ(op.operand(0).bytes, middle * tok);
      EXPECT_EQ(op.operand(0).offset_bytes, 1020 * tok + 1 * tok);
    }
    if (op.kind == OpKind::kAttention) {
      uint64_t read = 0;
      std::set<uint64_t> starts;
      for (uint16_t i = 0; i < op.operand_count; ++i) {
        const Operand& x = op.operand(i);
        if (x.access != Access::kRead || x.object != op.operand(0).object) continue;
        read += x.bytes;
        EXPECT_TRUE(starts.insert(x.offset_bytes).second);
      }
      // One sink page, 8 middle pages, and the window from its page start to the end.
      const uint64_t len = 1000 + step;
      const uint64_t window_from = (len - 64) / 16 * 16;
      EXPECT_EQ(read, (16 + 8 * 16 + (len - window_from)) * tok) << "step " << step;
    }
    if (op.last_of_step) ++step;
  }
  EXPECT_EQ(page_selects, 20);
  std::vector<SummaryItem> summary;
  w.summarize(summary);
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].value, 20.0 * 2 * 8);  // pages read
}

// Prefill: step 0 runs every prompt token through the model (causal attention over the prompt,
// the prompt's KV written), samples one position per sequence and yields one token each; the
// decode steps then attend to the prompt plus what was generated.
TEST(PrefillDecode, StepZeroIsThePromptThenDecodeSteps) {
  TransformerShape s = load_model("opt_6_7b");
  s.layers = 2;
  DecodeOptions o;
  o.batch = 3;
  o.context = 100;
  o.steps = 4;
  o.prefill = true;
  DecodeWorkload w(s, o);
  ObjectTable t;
  w.register_objects(t);
  EXPECT_EQ(w.total_steps(), 5u);
  EXPECT_EQ(w.prefill_steps(), 1u);
  const uint64_t tok = s.kv_bytes_per_token_per_layer();
  Op op;
  uint32_t step = 0;
  std::vector<uint32_t> tokens;
  while (w.next(op)) {
    if (op.kind == OpKind::kQkvProj) {
      // The projections run over every new token: 300 in the prefill, 3 per decode step.
      EXPECT_EQ(op.rows, step == 0 ? 300u : 3u) << "step " << step;
    }
    if (op.kind == OpKind::kLmHead) {
      EXPECT_EQ(op.rows, 3u);  // one sampled position each
    }
    if (op.kind == OpKind::kAttention) {
      uint64_t read = 0, written = 0;
      for (uint16_t i = 0; i < op.operand_count; ++i)
        (op.operand(i).access == Access::kRead ? read : written) += op.operand(i).bytes;
      const uint64_t cached = step == 0 ? 0 : 100 + step - 1;
      EXPECT_EQ(read, 3 * cached * tok) << "step " << step;
      EXPECT_EQ(written, 3 * (step == 0 ? 100 : 1) * tok) << "step " << step;
      EXPECT_EQ(op.max_queries, step == 0 ? 100u : 1u);
      // Causal prefill: the hand count of the query-key pairs.
      const double want = step == 0 ? 3 * op_cost(s, OpKind::kAttention, 1, 100, 100).flops
                                    : 3 * op_cost(s, OpKind::kAttention, 1, cached + 1, 1).flops;
      EXPECT_DOUBLE_EQ(op.flops, want);
    }
    if (op.last_of_step) {
      tokens.push_back(w.tokens_per_step());
      ++step;
    }
  }
  EXPECT_EQ(step, 5u);
  EXPECT_EQ(tokens, (std::vector<uint32_t>{3, 3, 3, 3, 3}));
  EXPECT_EQ(w.sequence_tokens(), (std::vector<uint64_t>{104, 104, 104}));
}

// A MoE prefill routes every prompt token (batch x context), more than the batch the router
// was sized for; the stickiness memory grows with it (this used to overrun it).
TEST(PrefillDecode, MoePrefillRoutesEveryPromptToken) {
  TransformerShape s = load_model("mixtral_8x7b");
  s.layers = 2;
  SyntheticRouterParams rp{8, 2, 2, 3, 1.0, 0.5, 0, 21};
  DecodeOptions o;
  o.batch = 3;
  o.context = 40;
  o.steps = 2;
  o.prefill = true;
  DecodeWorkload w(s, o, std::make_unique<SyntheticRouter>(rp));
  ObjectTable t;
  w.register_objects(t);
  Op op;
  uint32_t step = 0;
  std::vector<uint64_t> assignments;  // per step: expert rows of the first MoE layer
  uint64_t rows = 0;
  while (w.next(op)) {
    if (op.kind == OpKind::kExpertGateUp && op.layer.value() == 0) {
      for (uint16_t i = 0; i < op.operand_count; ++i)
        rows += op.operand(i).rows;
    }
    if (op.last_of_step) {
      assignments.push_back(rows);
      rows = 0;
      ++step;
    }
  }
  // Top-2: 2 x 120 prompt tokens, then 2 x 3 per decode step.
  EXPECT_EQ(assignments, (std::vector<uint64_t>{240, 6, 6}));
}

// FlexGen's block schedule: each layer runs over its micro-batches in turn (its weights read
// once per micro-batch, each with that micro-batch's rows), the embedding and the head over the
// whole batch; the pass's FLOPs equal the unsplit pass's.
TEST(MicroBatches, EachLayerRunsOverEveryMicroBatchInTurn) {
  TransformerShape s = load_model("opt_6_7b");
  s.layers = 3;
  auto stream = [&](uint32_t m) {
    DecodeOptions o;
    o.batch = 7;
    o.context = 50;
    o.steps = 1;
    o.micro_batches = m;
    auto w = std::make_unique<DecodeWorkload>(s, o);
    ObjectTable t;
    w->register_objects(t);
    std::vector<Op> ops;
    std::vector<std::pair<uint32_t, uint32_t>> kv_reads;  // (object, layer)
    Op op;
    while (w->next(op)) {
      // An op's operand list is valid until the next call: read it now.
      for (uint16_t i = 0; op.kind == OpKind::kAttention && i < op.operand_count; ++i) {
        if (op.operand(i).access == Access::kRead) {
          kv_reads.emplace_back(op.operand(i).object.value(), op.layer.value());
        }
      }
      op.set_operands(nullptr, 0);
      ops.push_back(op);
    }
    return std::make_pair(ops, kv_reads);
  };
  const auto [one, one_reads] = stream(1);
  const auto [three, three_reads] = stream(3);
  double f1 = 0, f3 = 0;
  for (const Op& op : one)
    f1 += op.flops;
  for (const Op& op : three)
    f3 += op.flops;
  EXPECT_NEAR(f3, f1, 1e-9 * f1);
  // Per layer: qkv projections of 2, 2 and 3 rows (7 sequences in 3 slices), in layer order.
  std::vector<std::pair<uint32_t, uint32_t>> qkv;  // (layer, rows)
  for (const Op& op : three) {
    if (op.kind == OpKind::kQkvProj) qkv.emplace_back(op.layer.value(), op.rows);
  }
  const std::vector<std::pair<uint32_t, uint32_t>> want = {{0, 2}, {0, 2}, {0, 3}, {1, 2}, {1, 2},
                                                           {1, 3}, {2, 2}, {2, 2}, {2, 3}};
  EXPECT_EQ(qkv, want);
  // The embedding and the LM head run once over all 7 sequences, as without micro-batches.
  for (OpKind k : {OpKind::kEmbedding, OpKind::kLmHead}) {
    auto find = [&](const std::vector<Op>& ops) {
      return *std::find_if(ops.begin(), ops.end(), [&](const Op& op) { return op.kind == k; });
    };
    EXPECT_EQ(find(three).rows, find(one).rows);
    EXPECT_EQ(find(three).flops, find(one).flops);
    EXPECT_EQ(find(three).activation_write_bytes, find(one).activation_write_bytes);
  }
  // Every layer op three times, the others once; each sequence's cache read once per layer.
  size_t layer_ops = 0;
  for (const Op& op : one)
    layer_ops += op.layer.valid() ? 1 : 0;
  EXPECT_EQ(three.size(), one.size() + 2 * layer_ops);
  EXPECT_EQ(three_reads.size(), 3u * 7u);
  using Reads = std::set<std::pair<uint32_t, uint32_t>>;
  EXPECT_EQ(Reads(three_reads.begin(), three_reads.end()),
            Reads(one_reads.begin(), one_reads.end()));
}

// Hidden-state checkpoints: each layer and sequence gets a hidden-state object next to its KV,
// every pass writes the new tokens' hidden states beside their K and V, and the KV object
// knows its checkpoint and the FLOPs per KV byte of recomputing from it (2 x hidden / KV dtype
// bytes).
TEST(HiddenStates, CheckpointsAreWrittenBesideTheKv) {
  TransformerShape s = load_model("opt_6_7b");
  s.layers = 2;
  DecodeOptions o;
  o.batch = 2;
  o.context = 10;
  o.steps = 2;
  o.hidden_states = true;
  DecodeWorkload w(s, o);
  ObjectTable t;
  w.register_objects(t);
  uint32_t kv_objects = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const ObjectInfo& x = t.get(ObjectId(uint32_t(i)));
    if (x.cls != ObjectClass::kKvCache) continue;
    ++kv_objects;
    ASSERT_TRUE(x.hidden_states.valid());
    const ObjectInfo& h = t.get(x.hidden_states);
    EXPECT_EQ(h.size_bytes, 12u * 4096 * 2);  // 12 tokens of 4096 FP16 values
    EXPECT_EQ(x.token_bytes, 2u * 4096 * 2);
    EXPECT_EQ(h.token_bytes, 4096u * 2);
    EXPECT_DOUBLE_EQ(x.recompute_flops_per_byte, 2.0 * 4096 / 2);
  }
  EXPECT_EQ(kv_objects, 4u);
  Op op;
  while (w.next(op)) {
    if (op.kind != OpKind::kAttention) continue;
    uint64_t hidden_written = 0;
    for (uint16_t i = 0; i < op.operand_count; ++i) {
      const Operand& x = op.operand(i);
      if (x.access == Access::kWrite && t.get(x.object).cls == ObjectClass::kActivation) {
        hidden_written += x.bytes;
      }
    }
    EXPECT_EQ(hidden_written, 2u * 4096 * 2);  // one token per sequence
  }
  DecodeOptions plain;  // the same batch without checkpoints, a short context
  plain.batch = 2;
  plain.context = 10;
  plain.steps = 2;
  EXPECT_GT(DecodeWorkload::footprint_bytes(s, o), DecodeWorkload::footprint_bytes(s, plain));
}

// Page locality: the fraction of each step's selected pages kept from the previous step.
TEST(SparseDecode, PageReuseFollowsLocality) {
  TransformerShape s = load_model("llama3_8b");
  s.layers = 2;
  for (double locality : {0.0, 0.5, 0.9}) {
    DecodeOptions o;
    o.batch = 16;
    o.context = 8192;
    o.steps = 100;
    o.top_k_pages = 32;
    o.page_locality = locality;
    o.seed = 9;
    DecodeWorkload w(s, o);
    ObjectTable t;
    w.register_objects(t);
    Op op;
    while (w.next(op)) {
    }
    std::vector<SummaryItem> summary;
    w.summarize(summary);
    // The first step has nothing to keep: 99 of 100 steps can.
    EXPECT_NEAR(summary[1].value, locality * 0.99, 0.01) << locality;
  }
}

// Cross-layer similarity: with no step-to-step locality, the share of a layer's pages that the
// layer above selected in the same step is s + (1 - s) k / middle (a uniform draw lands there by
// chance); layer 0 has nothing above it.
TEST(SparseDecode, LayerSimilarityFollowsTheLayerAbove) {
  TransformerShape s = load_model("llama3_8b");
  s.layers = 2;
  for (double similarity : {0.0, 0.6, 1.0}) {
    DecodeOptions o;
    o.batch = 4;
    o.context = 8192;
    o.steps = 50;
    o.top_k_pages = 32;
    o.page_locality = 0;
    o.layer_similarity = similarity;
    o.seed = 3;
    DecodeWorkload w(s, o);
    ObjectTable t;
    w.register_objects(t);
    const uint64_t page_bytes = 16 * s.kv_bytes_per_token_per_layer();
    std::map<uint32_t, std::set<uint64_t>> above;  // by sequence: layer 0's pages this step
    uint64_t shared = 0, total = 0;
    uint32_t step = 0;
    Op op;
    while (w.next(op)) {
      if (op.kind == OpKind::kAttention) {
        const uint64_t end = (8192 + step) / 16;  // window 0: the partial last page is read too
        std::map<uint32_t, std::set<uint64_t>> pages;
        for (uint16_t i = 0; i < op.operand_count; ++i) {
          const Operand& x = op.operand(i);
          if (x.access != Access::kRead) continue;
          const uint32_t seq = t.get(x.object).sequence;
          for (uint64_t p = x.offset_bytes / page_bytes;
               p < (x.offset_bytes + x.bytes) / page_bytes; ++p) {
            if (p < end) pages[seq].insert(p);
          }
        }
        if (op.layer.value() == 0) {
          above = pages;
        } else {
          for (const auto& [seq, set] : pages) {
            ASSERT_EQ(set.size(), 32u);
            for (uint64_t p : set)
              shared += above[seq].count(p);
            total += set.size();
          }
        }
      }
      if (op.last_of_step) ++step;
    }
    const double expected = similarity + (1 - similarity) * 32.0 / 512;
    EXPECT_NEAR(double(shared) / double(total), expected, 0.02) << similarity;
  }
}

// Intent records: dense weights and KV are used every step for certain; a routed expert's
// confidence is its chance of being active in a step, which the run then bears out.
TEST(DecodeIntents, ExpertConfidenceMatchesTheirActivity) {
  TransformerShape s = load_model("mixtral_8x7b");
  s.layers = 2;
  SyntheticRouterParams rp{8, 2, 2, 3, 1.5, 0.0, 0, 21};
  DecodeOptions o;
  o.batch = 3;
  o.context = 8;
  o.steps = 2000;
  DecodeWorkload w(s, o, std::make_unique<SyntheticRouter>(rp));
  ObjectTable t;
  w.register_objects(t);
  for (const auto& obj : t.all()) {
    EXPECT_EQ(obj.intent.first_step, 0u);
    EXPECT_EQ(obj.intent.last_step, 1999u);
    if (obj.name.find(".expert") == std::string::npos) {
      EXPECT_EQ(obj.intent.confidence, 1.0) << obj.name;
      // Whole reads per step: an untied embedding table is only gathered.
      const bool gathered = obj.cls == ObjectClass::kEmbedding && !s.tied_embeddings;
      EXPECT_EQ(obj.intent.uses_per_step, gathered ? 0.0 : 1.0) << obj.name;
    }
  }
  Op op;
  while (w.next(op)) {
  }
  // Linearity of expectation: the mean number of distinct experts a layer reads per step equals
  // the sum of its experts' activity probabilities.
  for (uint32_t layer = 0; layer < 2; ++layer) {
    double expected = 0;
    for (const auto& obj : t.all()) {
      if (obj.layer == LayerId(layer) && obj.name.find(".expert") != std::string::npos) {
        expected += obj.intent.confidence;
      }
    }
    double active = 0;
    for (uint32_t step = 0; step < 2000; ++step)
      active += w.active_experts()[step * 2 + layer];
    EXPECT_NEAR(active / 2000, expected, 0.03 * expected) << "layer " << layer;
  }
}

// Intents per phase: with a prefill step, each routed expert's intent is restated when decode
// begins: in the prefill (batch x context tokens routed) its use probability is the router's for
// that many tokens, then the decode step's; dense weights keep one phase. last_step covers the
// prefill step too.
TEST(DecodeIntents, PrefillPhaseRestatesExpertIntents) {
  TransformerShape s = load_model("mixtral_8x7b");
  s.layers = 2;
  SyntheticRouterParams rp{8, 2, 2, 3, 1.5, 0.0, 0, 21};
  DecodeOptions o;
  o.batch = 3;
  o.context = 100;
  o.steps = 5;
  o.prefill = true;
  auto router = std::make_unique<SyntheticRouter>(rp);
  const SyntheticRouter& r = *router;
  DecodeWorkload w(s, o, std::move(router));
  ObjectTable t;
  w.register_objects(t);
  int experts = 0, busier = 0;
  for (const auto& obj : t.all()) {
    EXPECT_EQ(obj.intent.last_step, 5u) << obj.name;  // 1 prefill + 5 decode steps
    const size_t at = obj.name.find(".expert");
    if (at == std::string::npos) {
      EXPECT_TRUE(obj.intent.phases.empty()) << obj.name;
      EXPECT_EQ(obj.intent.at(0).second, obj.intent.confidence);
      continue;
    }
    ++experts;
    const uint16_t e = static_cast<uint16_t>(std::stoi(obj.name.substr(at + 7)));
    const uint32_t layer = obj.layer.value();
    ASSERT_EQ(obj.intent.phases.size(), 2u);
    EXPECT_EQ(obj.intent.phases[1].first_step, 1u);
    EXPECT_DOUBLE_EQ(obj.intent.at(0).second, r.use_probability(layer, e, 300));
    EXPECT_DOUBLE_EQ(obj.intent.at(1).second, r.use_probability(layer, e, 3));
    EXPECT_DOUBLE_EQ(obj.intent.at(5).second, obj.intent.confidence);
    EXPECT_GE(obj.intent.at(0).second, obj.intent.at(1).second);
    busier += obj.intent.at(0).second > obj.intent.at(1).second ? 1 : 0;
  }
  EXPECT_EQ(experts, 16);
  EXPECT_GE(busier, 12);  // all but the experts a decode step uses for certain already
}

// Steady-state fast-forward: the schedule simulates the warm-up steps, every every_steps-th step
// after them and the last; a skipped step grows the KV as if it ran, so the next simulated
// step's ops are the full run's for that step.
TEST(FastForward, ScheduleAndSkippedStepsGrowTheKv) {
  FastForwardSchedule sched{3, 2, 12};
  std::vector<uint32_t> simulated;
  for (uint32_t s = 0; s < 12; ++s)
    if (sched.simulated(s)) simulated.push_back(s);
  EXPECT_EQ(simulated, (std::vector<uint32_t>{0, 1, 2, 5, 8, 11}));
  EXPECT_TRUE((FastForwardSchedule{1, 1, 5}.simulated(3)));

  TransformerShape shape = load_model("llama2_7b");
  shape.layers = 2;
  DecodeOptions o;
  o.batch = 2;
  o.context = 100;
  o.steps = 5;
  auto make = [&] { return std::make_unique<DecodeWorkload>(shape, o); };
  auto full = make();
  ObjectTable t_full;
  full->register_objects(t_full);
  const Stream all = run(*full, t_full);
  // every 2, warm-up 1, 5 steps: steps 0, 1, 3 and 4 simulated, step 2 skipped.
  FastForwardWorkload ff(make(), 2, 1);
  ObjectTable t;
  ff.register_objects(t);
  const Stream part = run(ff, t);
  ASSERT_EQ(part.step_tokens.size(), 4u);
  ASSERT_EQ(ff.skipped().size(), 1u);
  EXPECT_EQ(ff.skipped()[0].step, 2u);
  EXPECT_EQ(ff.skipped()[0].tokens, 2u);
  EXPECT_EQ(ff.skipped()[0].sequences, 2u);
  // Two attention ops per step (one per layer), each reading both sequences' caches: the
  // simulated steps' operands are the full run's steps 0, 1, 3 and 4, byte for byte.
  ASSERT_EQ(all.attention.size(), 5u * 2);
  ASSERT_EQ(part.attention.size(), 4u * 2);
  const size_t full_step[] = {0, 1, 3, 4};
  for (size_t k = 0; k < 4; ++k) {
    for (size_t l = 0; l < 2; ++l) {
      const auto& a = all.attention[full_step[k] * 2 + l];
      const auto& b = part.attention[k * 2 + l];
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].object, b[i].object);
        EXPECT_EQ(a[i].offset_bytes, b[i].offset_bytes);
        EXPECT_EQ(a[i].bytes, b[i].bytes);
      }
    }
  }
  // A prompt prefill pass is never skipped.
  o.prefill = true;
  DecodeWorkload pre(shape, o);
  ObjectTable tp;
  pre.register_objects(tp);
  EXPECT_FALSE(pre.skip_step());
}

// Expert parallelism, rank by rank: with every rank simulated each rank runs its own copies
// (together they compute every assignment, each rank its own slots' experts, and its slots'
// intents are its own experts'); the symmetric shortcut runs the rank the accelerator's cost
// model estimates the slowest: the most rows when arithmetic dominates, the most distinct copies
// when the weights' stream does.
struct FakeExpertCost : ExpertCostModel {
  double per_byte_s = 0, per_flop_s = 0;
  bool ready() const override { return true; }
  double stream_s(uint64_t bytes) const override { return double(bytes) * per_byte_s; }
  double matrix_s(double flops, uint64_t, config::Dtype) const override {
    return flops * per_flop_s;
  }
};

struct RankLayer {
  uint64_t rows = 0;
  uint32_t copies = 0;
  std::vector<uint32_t> objects;
};

// Per step and MoE layer, the expert kernels' rows, copies and objects of one workload.
std::vector<RankLayer> expert_kernels(DecodeWorkload& w, ObjectTable& t) {
  w.register_objects(t);
  std::vector<RankLayer> out;
  Op op;
  while (w.next(op)) {
    if (op.kind != OpKind::kExpertGateUp) continue;
    RankLayer l;
    for (uint16_t i = 0; i < op.operand_count; ++i) {
      l.rows += op.operand(i).rows;
      l.objects.push_back(op.operand(i).object.value());
    }
    l.copies = op.operand_count;
    out.push_back(l);
  }
  return out;
}

TEST(ExpertParallel, EachRankRunsItsOwnCopiesAndTheShortcutTheSlowest) {
  TransformerShape s = load_model("mixtral_8x7b");
  s.layers = 2;
  s.ep = 4;  // 2 experts a rank
  const SyntheticRouterParams rp{8, 2, 2, 16, 1.2, 0.0, 0, 21};
  DecodeOptions o;
  o.batch = 4;
  o.context = 8;
  o.steps = 6;
  std::vector<std::vector<RankLayer>> ranks;
  for (uint32_t r = 0; r < 4; ++r) {
    DecodeWorkload w(s, o, std::make_unique<SyntheticRouter>(rp));
    ASSERT_TRUE(w.set_expert_rank(r));
    ObjectTable t;
    ranks.push_back(expert_kernels(w, t));
    // Slot k of rank r is expert 2r + k (contiguous): its intent is that expert's.
    const SyntheticRouter router(rp);
    for (uint32_t k = 0; k < 2; ++k) {
      const auto slot = std::find_if(t.all().begin(), t.all().end(), [&](const ObjectInfo& x) {
        return x.name == "layer0.expert" + std::to_string(k);
      });
      ASSERT_NE(slot, t.all().end());
      EXPECT_DOUBLE_EQ(slot->intent.confidence,
                       router.use_probability(0, static_cast<uint16_t>(2 * r + k), 16))
          << r << " " << k;
    }
  }
  const size_t layers = ranks[0].size();
  ASSERT_EQ(layers, 12u);  // 6 steps x 2 MoE layers
  bool uneven = false;
  for (size_t l = 0; l < layers; ++l) {
    uint64_t rows = 0;
    for (const auto& r : ranks)
      rows += r[l].rows;
    EXPECT_EQ(rows, 4u * 4 * 2) << l;  // every rank's 4 tokens, top-2, computed once
    uneven = uneven || ranks[0][l].rows != ranks[1][l].rows;
  }
  EXPECT_TRUE(uneven);
  // The shortcut with arithmetic dominating runs the most rows; with the stream dominating, the
  // most distinct copies.
  for (const bool compute_bound : {true, false}) {
    FakeExpertCost cost;
    (compute_bound ? cost.per_flop_s : cost.per_byte_s) = 1.0;
    DecodeWorkload w(s, o, std::make_unique<SyntheticRouter>(rp));
    w.set_expert_cost_model(&cost);
    ObjectTable t;
    const auto shortcut = expert_kernels(w, t);
    for (size_t l = 0; l < layers; ++l) {
      uint64_t most_rows = 0;
      uint32_t most_copies = 0;
      for (const auto& r : ranks) {
        most_rows = std::max(most_rows, r[l].rows);
        most_copies = std::max(most_copies, r[l].copies);
      }
      if (compute_bound) {
        EXPECT_EQ(shortcut[l].rows, most_rows) << l;
      } else {
        EXPECT_EQ(shortcut[l].copies, most_copies) << l;
      }
    }
  }
  // Redundant copies (8 + 4 over 4 ranks, EPLB placement): a slot's intent states its expert's
  // use by its share of the tokens (token t uses copy t mod copies).
  {
    TransformerShape r = s;
    r.redundant_experts = 4;
    DecodeWorkload w(r, o, std::make_unique<SyntheticRouter>(rp));
    ASSERT_TRUE(w.set_expert_rank(1));
    ObjectTable t;
    w.register_objects(t);
    const SyntheticRouter router(rp);
    std::vector<double> load(8);
    for (uint16_t e = 0; e < 8; ++e)
      load[e] = router.use_probability(0, e, 1);
    const ExpertPlacement place = ExpertPlacement::balanced(load, 4, 4);
    bool copied = false;
    for (uint32_t k = 0; k < 3; ++k) {
      const uint16_t e = place.slot_expert[1 * 3 + k];
      const uint32_t share = (16 + place.copies(e) - 1) / place.copies(e);
      copied = copied || place.copies(e) > 1;
      const auto slot = std::find_if(t.all().begin(), t.all().end(), [&](const ObjectInfo& x) {
        return x.name == "layer0.expert" + std::to_string(k);
      });
      ASSERT_NE(slot, t.all().end());
      EXPECT_DOUBLE_EQ(slot->intent.confidence, router.use_probability(0, e, share)) << k;
    }
    EXPECT_TRUE(copied);  // rank 1 holds a copy of a hot expert
  }
  // A workload without expert parallelism has no expert rank.
  TransformerShape dense = load_model("mixtral_8x7b");
  dense.layers = 2;
  DecodeWorkload one(dense, o, std::make_unique<SyntheticRouter>(rp));
  EXPECT_FALSE(one.set_expert_rank(0));
}

// Pipeline stages: vLLM's split (the L mod pp left-over layers one each to the stages just
// before the last), each stage's weights (the embedding on the first, the head on the last).
TEST(Pipeline, StagesSplitTheLayersAsVllmDoes) {
  TransformerShape s = load_model("llama3_8b");  // 32 layers
  s.pp = 3;
  // 32 = 3 x 10 + 2: stages 0 and 1 take one more each.
  EXPECT_EQ(s.stage_layers(0).first, 0u);
  EXPECT_EQ(s.stage_layers(0).end, 11u);
  EXPECT_EQ(s.stage_layers(1).first, 11u);
  EXPECT_EQ(s.stage_layers(1).end, 22u);
  EXPECT_EQ(s.stage_layers(2).first, 22u);
  EXPECT_EQ(s.stage_layers(2).end, 32u);
  s.layers = 30;
  s.pp = 4;  // 30 = 4 x 7 + 2: stages 1 and 2
  EXPECT_EQ(s.stage_layers(0).end - s.stage_layers(0).first, 7u);
  EXPECT_EQ(s.stage_layers(1).end - s.stage_layers(1).first, 8u);
  EXPECT_EQ(s.stage_layers(2).end - s.stage_layers(2).first, 8u);
  EXPECT_EQ(s.stage_layers(3).end - s.stage_layers(3).first, 7u);
  EXPECT_EQ(s.stage_layers(3).end, 30u);
  s.layers = 32;
  s.pp = 2;
  const uint64_t layer = s.layer_weight_bytes(0);
  EXPECT_EQ(s.stage_weight_bytes(0), 16 * layer + s.embedding_bytes());
  EXPECT_EQ(s.stage_weight_bytes(1), 16 * layer + s.norm_weight_bytes() + s.lm_head_bytes());
  EXPECT_EQ(s.stage_weight_bytes(0) + s.stage_weight_bytes(1), s.total_weight_bytes());
}

// Each stage's op stream per step: per micro-batch, a receive (but the first stage's first
// step), its layers over the micro-batch's sequences, and a send (but the last stage's last
// step); its objects are its own layers' weights and KV.
TEST(Pipeline, EachStageRunsItsLayersOverItsMicroBatches) {
  TransformerShape s = load_model("llama3_8b");
  s.layers = 4;
  s.pp = 2;
  DecodeOptions o;
  o.batch = 6;
  o.context = 10;
  o.steps = 2;
  o.pipeline_micro_batches = 3;
  for (uint32_t stage = 0; stage < 2; ++stage) {
    DecodeWorkload w(s, o);
    ASSERT_TRUE(w.set_pipeline_stage(stage, 0));
    ObjectTable t;
    w.register_objects(t);
    std::set<std::string> names;
    for (const auto& x : t.all())
      names.insert(x.name);
    EXPECT_EQ(names.count("embedding"), stage == 0 ? 1u : 0u);
    EXPECT_EQ(names.count("lm_head"), stage == 1 ? 1u : 0u);
    EXPECT_EQ(names.count("layer1.qkv"), stage == 0 ? 1u : 0u);
    EXPECT_EQ(names.count("layer2.qkv"), stage == 1 ? 1u : 0u);
    EXPECT_EQ(names.count("layer3.kv.seq5"), stage == 1 ? 1u : 0u);
    EXPECT_EQ(names.count("layer0.kv.seq5"), stage == 0 ? 1u : 0u);
    Op op;
    std::vector<Op> ops;
    while (w.next(op)) {
      ops.push_back(op);
      if (op.kind == OpKind::kPipeSend) {
        // The matrix as the send sees it (later sends rewrite it): this stage's one message.
        const uint64_t bytes = stage == 0 ? 2 * s.hidden_bytes(2) : 8 * 2;
        uint64_t cells = 0;
        for (uint32_t c = 0; c < 4; ++c)
          cells += op.traffic[c] > 0 ? 1 : 0;
        EXPECT_EQ(cells, 1u);
        EXPECT_EQ(op.traffic[stage * 2 + op.peer], bytes);
      }
    }
    uint32_t receives = 0, sends = 0, steps = 0;
    std::set<uint32_t> layers;
    for (size_t i = 0; i < ops.size(); ++i) {
      const Op& x = ops[i];
      if (x.layer.valid()) layers.insert(x.layer.value());
      if (x.last_of_step) ++steps;
      if (x.kind == OpKind::kPipeRecv) {
        ++receives;
        EXPECT_EQ(x.op_class, OpClass::kPointToPoint);
        EXPECT_EQ(x.peer, stage == 0 ? 1u : 0u);
      }
      if (x.kind == OpKind::kPipeSend) {
        ++sends;
        EXPECT_EQ(x.peer, stage == 0 ? 1u : 0u);
        EXPECT_EQ(x.traffic_ranks, 2u);
        // Two micro-batch sequences: their hidden states and residual on, or their sampled
        // tokens back.
        EXPECT_EQ(x.collective_bytes, stage == 0 ? 2 * s.hidden_bytes(2) : 8 * 2);
      }
    }
    EXPECT_EQ(steps, 2u);
    EXPECT_EQ(receives, stage == 0 ? 3u : 6u);
    EXPECT_EQ(sends, stage == 0 ? 6u : 3u);
    const std::set<uint32_t> own = stage == 0 ? std::set<uint32_t>{0, 1} : std::set<uint32_t>{2, 3};
    EXPECT_EQ(layers, own);
    // A stage's first op is its micro-batch's receive (the first stage's first step: the
    // embedding), its step's last op the last micro-batch's send (the last stage's last step:
    // the LM head).
    EXPECT_EQ(ops.front().kind, stage == 0 ? OpKind::kEmbedding : OpKind::kPipeRecv);
    EXPECT_EQ(ops.back().kind, stage == 0 ? OpKind::kPipeSend : OpKind::kLmHead);
    EXPECT_TRUE(ops.back().last_of_step);
  }
  // Two tensor-parallel ranks a stage: rank 1 of stage 1 (node 3) receives from node 1 half
  // the hidden states and residual, all-gathers them with node 2, and sends its tokens to node 1.
  s.tp = 2;
  {
    DecodeWorkload w(s, o);
    EXPECT_FALSE(w.set_pipeline_stage(1, 2));
    ASSERT_TRUE(w.set_pipeline_stage(1, 1));
    ObjectTable t;
    w.register_objects(t);
    Op op;
    ASSERT_TRUE(w.next(op));
    EXPECT_EQ(op.kind, OpKind::kPipeRecv);
    EXPECT_EQ(op.peer, 1u);
    ASSERT_TRUE(w.next(op));
    EXPECT_EQ(op.kind, OpKind::kAllGather);
    EXPECT_EQ(op.op_class, OpClass::kCollective);
    EXPECT_EQ(op.collective_bytes, s.hidden_bytes(2));  // 2 x hidden x 2 tokens / 2 ranks
    while (w.next(op) && op.kind != OpKind::kPipeSend) {
    }
    EXPECT_EQ(op.peer, 1u);
    EXPECT_EQ(op.traffic_ranks, 4u);
    // Both ranks of stage 1 send to their peers at once (nodes 2 -> 0, 3 -> 1).
    EXPECT_EQ(op.traffic[2 * 4 + 0], 16u);
    EXPECT_EQ(op.traffic[3 * 4 + 1], 16u);
  }
  // Not a pipeline: no stages.
  DecodeWorkload one(load_model("llama3_8b"), o);
  EXPECT_FALSE(one.set_pipeline_stage(0, 0));
}

}  // namespace
}  // namespace tiersim
