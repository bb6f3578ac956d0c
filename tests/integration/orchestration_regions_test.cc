// Context regions of a sparse-attention KV in whole runs (configs/studies/
// context_regions_llama3_8b.textproto): hand counts, promotion, irreversible baselines, the
// coherence veto, the compressed tier, refusals and every parameter.
#include "tests/integration/orchestration_support.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// Bytes by hand: every selected middle region is one visit (the workload's pages read); without
// vetoes or promotions every miss is one demand copy-up of one 64 KiB region (16 tokens x
// 4 KiB of K and V per layer), and those are all the bytes read from home.
TEST(ContextRegions, VisitsAndCopyUpsByHand) {
  const auto r = regions(kRecallBaseline);
  ASSERT_EQ(r.count("exit"), 0u);
  EXPECT_EQ(r.at("region_visits"), r.at("sparse_pages_read"));
  EXPECT_EQ(r.at("region_visits"), 16.0 * 8 * 32 * 32);  // steps x sequences x layers x top-k
  EXPECT_EQ(r.at("region_vetoes"), 0);
  const double tokens = 16.0 * 8;
  EXPECT_DOUBLE_EQ(r.at("demand_bytes_per_token") * tokens, r.at("region_copyups") * 65536.0);
  EXPECT_NEAR(r.at("region_hit_rate"), 1.0 - r.at("region_copyups") / r.at("region_visits"), 1e-12);
  EXPECT_EQ(r.at("region_recall"), 1);
  // The pool: 768 MiB of 64 KiB frames.
  EXPECT_EQ(r.at("region_pool_frames"), 12288);
}

// Speculative promotion pays when adjacent layers attend alike (InfiniGen's premise) and costs
// when they do not: with similarity 0.9 it raises the hit rate and lowers TPOT and the bytes
// read on demand against the recall baseline; with 0 its copies go unused (accuracy under 5%),
// evict useful regions and TPOT rises.
TEST(ContextRegions, SpeculativePromotionHelpsOnlyWhenLayersAgree) {
  for (double similarity : {0.9, 0.0}) {
    const std::string sim =
        " --set workload.decode.sparse_attention.layer_similarity=" + std::to_string(similarity);
    const auto base = regions(kRecallBaseline + sim);
    const auto mech = regions(sim);
    ASSERT_FALSE(base.count("exit") || mech.count("exit"));
    std::cout << "similarity " << similarity << ": hit rate " << base.at("region_hit_rate")
              << " -> " << mech.at("region_hit_rate") << ", TPOT " << base.at("tpot_ms_mean")
              << " -> " << mech.at("tpot_ms_mean") << " ms, demand "
              << base.at("demand_bytes_per_token") / 1e6 << " -> "
              << mech.at("demand_bytes_per_token") / 1e6 << " MB/token, promoted "
              << mech.at("region_promotion_bytes_per_token") / 1e6 << " MB/token, accuracy "
              << mech.at("region_ahead_accuracy") << "\n";
    EXPECT_GT(mech.at("region_promotions"), 0);
    if (similarity > 0) {
      EXPECT_GT(mech.at("region_hit_rate"), base.at("region_hit_rate") + 0.15);
      EXPECT_LT(mech.at("tpot_ms_mean"), base.at("tpot_ms_mean"));
      EXPECT_LT(mech.at("demand_bytes_per_token"), 0.5 * base.at("demand_bytes_per_token"));
      EXPECT_GT(mech.at("region_ahead_accuracy"), 0.5);
    } else {
      EXPECT_LT(mech.at("region_hit_rate"), base.at("region_hit_rate"));
      EXPECT_GT(mech.at("tpot_ms_mean"), base.at("tpot_ms_mean"));
      EXPECT_LT(mech.at("region_ahead_accuracy"), 0.05);
    }
  }
}

// Reversible against irreversible demotion. Without backups (StreamingLLM: no pool; H2O: a
// pool ranked by score) a region once out is never attended again: recall falls below 1 and
// nothing is read from home; with backups every selected region is attended (recall 1) at the
// price of the copy-ups. SKIP attends without late regions (copying them up for the next step):
// recall equals the hit rate, nothing waits on home reads.
TEST(ContextRegions, IrreversibleEvictionAndSkippingLoseRecall) {
  const std::string plain = kRegions + "lookahead_layers=0" + kRegions + "veto_steps=0";
  const auto reversible = regions(plain);
  const auto h2o = regions(plain + kRegions + "backup=false");
  const auto streaming = regions(plain + kRegions + "backup=false" + kRegions + "budget_bytes=0");
  const auto skip = regions(plain + kRegions + "late=LATE_REGION_SKIP");
  ASSERT_FALSE(reversible.count("exit") || h2o.count("exit") || streaming.count("exit") ||
               skip.count("exit"));
  std::cout << "recall: reversible " << reversible.at("region_recall") << ", H2O "
            << h2o.at("region_recall") << " (" << h2o.at("region_lost") << " lost), StreamingLLM "
            << streaming.at("region_recall") << ", skip " << skip.at("region_recall") << "; TPOT "
            << reversible.at("tpot_ms_mean") << " / " << h2o.at("tpot_ms_mean") << " / "
            << streaming.at("tpot_ms_mean") << " / " << skip.at("tpot_ms_mean") << " ms\n";
  EXPECT_EQ(reversible.at("region_recall"), 1);
  EXPECT_GT(reversible.at("demand_bytes_per_token"), 0);
  EXPECT_EQ(streaming.at("region_recall"), 0);
  EXPECT_EQ(streaming.at("region_pool_frames"), 0);
  EXPECT_EQ(streaming.at("region_skipped"), streaming.at("region_visits"));
  EXPECT_GT(h2o.at("region_recall"), 0);
  EXPECT_LT(h2o.at("region_recall"), 0.5);
  EXPECT_GT(h2o.at("region_lost"), 0);
  for (const auto* r : {&h2o, &streaming, &skip}) {
    EXPECT_EQ(r->at("demand_bytes_per_token"), 0);
    EXPECT_LT(r->at("tpot_ms_mean"), reversible.at("tpot_ms_mean"));
  }
  EXPECT_LT(skip.at("region_recall"), 1);
  EXPECT_DOUBLE_EQ(skip.at("region_recall"), skip.at("region_hit_rate"));
  EXPECT_EQ(skip.at("region_copyups"), skip.at("region_skipped"));
}

// The coherence veto: locking the regions attended in the last step keeps them through the
// next, at a budget of exactly the attended pages (32 per sequence and layer) some admissions
// find every region locked and are vetoed; a mass threshold above one region's share (1/32)
// locks nothing and reproduces the run without a veto.
TEST(ContextRegions, CoherenceVetoLocksRecentlyAttendedRegions) {
  const std::string tight = kRegions + "budget_bytes=536870912";
  const auto veto = regions(tight);
  const auto none = regions(tight + kRegions + "veto_steps=0");
  const auto high = regions(tight + kRegions + "veto_mass=0.5");
  ASSERT_FALSE(veto.count("exit") || none.count("exit") || high.count("exit"));
  EXPECT_GT(veto.at("region_vetoes"), 0);
  EXPECT_EQ(none.at("region_vetoes"), 0);
  // (With the veto off, admissions that find every frame holding a promotion in flight are
  // refused, not vetoed.)
  EXPECT_EQ(none.at("region_refused"), high.at("region_refused"));
  EXPECT_EQ(high.at("region_vetoes"), 0);
  EXPECT_EQ(high.at("tpot_ms_mean"), none.at("tpot_ms_mean"));
  EXPECT_EQ(high.at("region_hit_rate"), none.at("region_hit_rate"));
  EXPECT_NE(veto.at("region_hit_rate"), none.at("region_hit_rate"));
  // Promoting fewer pages per decision (the top 8 by their source's score) moves fewer bytes.
  const auto few = regions(kRegions + "promote_pages=8");
  const auto all = regions("");
  ASSERT_FALSE(few.count("exit") || all.count("exit"));
  EXPECT_LT(few.at("region_promotion_bytes_per_token"), all.at("region_promotion_bytes_per_token"));
  EXPECT_LE(few.at("region_promotions"), 8.0 * 8 * 32 * 16);
}

// The compressed (warm) tier: regions demoted from the pool stay in HBM as INT4 (a quarter of
// their 64 KiB) and are attended from there instead of being copied up: recall stays 1, fewer
// bytes come from home, TPOT falls; the quality proxy is 2^-4 x the compressed share of the
// visits; each compression is one 16 KiB copy within HBM (DMA reason demote).
TEST(ContextRegions, CompressedTierAttendsDemotedRegionsInPlace) {
  const auto base = regions("");
  const auto warm = regions(kRegions + "compressed_budget_bytes=536870912");
  ASSERT_FALSE(base.count("exit") || warm.count("exit"));
  std::cout << "compressed tier: TPOT " << base.at("tpot_ms_mean") << " -> "
            << warm.at("tpot_ms_mean") << " ms, demand " << base.at("demand_bytes_per_token") / 1e6
            << " -> " << warm.at("demand_bytes_per_token") / 1e6 << " MB/token, "
            << warm.at("region_compressed_reads") << " compressed reads, proxy "
            << warm.at("region_quality_proxy") << "\n";
  EXPECT_EQ(warm.at("region_compressed_frames"), 536870912.0 / 16384);
  EXPECT_EQ(warm.at("region_recall"), 1);
  EXPECT_GT(warm.at("region_compressed_reads"), 0);
  EXPECT_LT(warm.at("demand_bytes_per_token"), base.at("demand_bytes_per_token"));
  EXPECT_LT(warm.at("tpot_ms_mean"), base.at("tpot_ms_mean"));
  EXPECT_NEAR(warm.at("region_quality_proxy"),
              warm.at("region_compressed_reads") / warm.at("region_visits") / 16, 1e-12);
  const double tokens = 16.0 * 8;
  EXPECT_DOUBLE_EQ(warm.at("dma_demote_bytes_per_token") * tokens,
                   warm.at("region_compressions") * 16384);
}

TEST(ContextRegions, BadSettingsAreRefused) {
  expect_refused(
      regions,
      {
          {"--set workload.decode.sparse_attention=!clear --set "
           "workload.decode.kv_block_tokens=!clear",
           "policy.orchestration.context_regions"},
          {"--set policy.orchestration.kv_resident=true", "policy.orchestration.context_regions"},
          {kRegions + "ranking=REGION_LRU", "policy.orchestration.context_regions.ema_alpha"},
          {kRegions + "lookahead_layers=32",
           "policy.orchestration.context_regions.lookahead_layers"},
          {kRegions + "lookahead_layers=0" + kRegions + "promote_pages=4",
           "policy.orchestration.context_regions.promote_pages"},
          {kRegions + "veto_steps=0" + kRegions + "veto_mass=0.2",
           "policy.orchestration.context_regions.veto_mass"},
          {kRegions + "budget_bytes=!clear", "policy.orchestration.context_regions.budget_bytes"},
          {"--set workload.decode.prefill=true", "policy.orchestration.context_regions"},
          {kRegions + "compressed_dtype=BF16" + kRegions + "compressed_budget_bytes=4096",
           "policy.orchestration.context_regions.compressed_dtype"},
          {kRegions + "compressed_dtype=INT8",
           "policy.orchestration.context_regions.compressed_dtype"},
          {"--set workload.decode.sparse_attention.layer_similarity=1.5",
           "workload.decode.sparse_attention.layer_similarity"},
      });
}

// Every context-region, object-cache and DPU-buffer parameter changes the result.
TEST(ContextRegions, EveryParameterChangesTheResult) {
  const auto base = regions("");
  const auto lru = regions(kRegions + "ranking=REGION_LRU" + kRegions + "ema_alpha=!clear");
  const auto alpha = regions(kRegions + "ema_alpha=0.5");
  const std::string warm = kRegions + "compressed_budget_bytes=536870912";
  const auto int4 = regions(warm);
  const auto int8 = regions(warm + kRegions + "compressed_dtype=INT8");
  const auto slow = regions(warm + kRegions + "dequant_flops_per_element=2000");
  for (const auto* r : {&base, &lru, &alpha, &int4, &int8, &slow})
    ASSERT_EQ(r->count("exit"), 0u);
  EXPECT_NE(lru.at("region_hit_rate"), base.at("region_hit_rate"));
  EXPECT_NE(alpha.at("region_hit_rate"), base.at("region_hit_rate"));
  // INT8 regions are half the size of BF16 ones: 32 KiB frames, half as many; the proxy 2^-8.
  EXPECT_EQ(int8.at("region_compressed_frames"), 536870912.0 / 32768);
  EXPECT_NEAR(int8.at("region_quality_proxy"),
              int8.at("region_compressed_reads") / int8.at("region_visits") / 256, 1e-12);
  EXPECT_GT(slow.at("tpot_ms_mean"), int4.at("tpot_ms_mean"));
}

}  // namespace
}  // namespace tiersim
