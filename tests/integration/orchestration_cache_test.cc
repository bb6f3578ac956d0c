// The movement controller's caches in whole runs: the confidence-gated page cache, the object
// cache (fragmentation, compaction, precision states, prefetch, intents per phase) and the DPU's
// DDR buffer.
#include "tests/integration/orchestration_support.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// Confidence-gated residency in the system (Llama-3-8B, weights at home in host DDR, a 4 GB
// page cache in HBM, 6 steps): with every weight page declared reused each step and no budget
// it admits every miss and thrashes like LRU on the cyclic weight stream; a thrash budget of
// admissions per epoch keeps admitted pages long enough to be reused (hits), never lets an epoch
// migrate more than the budget, and counts its fallback epochs; a deliberately wrong intent
// (reuse probability 0) admits nothing.
TEST(Confidence, ThrashBudgetTurnsACyclicThrashIntoHits) {
  auto run8b = [&](const std::string& extra) { return run_8b(cache_8b(6) + extra); };
  const std::string conf = "--set policy.orchestration.replacement=REPLACEMENT_CONFIDENCE ";
  const auto lru = run8b("--set policy.orchestration.replacement=REPLACEMENT_LRU");
  const auto unbounded = run8b(conf);
  // 100 page visits per epoch, at most 10 pages admitted in each.
  const std::string budget = conf +
                             "--set policy.orchestration.confidence.epoch_pages=100 "
                             "--set policy.orchestration.confidence.budget_bytes_per_epoch=";
  ASSERT_FALSE(lru.empty() || unbounded.empty());
  const auto bounded = run8b(budget + std::to_string(10 * 2097152ULL));
  const auto wrong = run8b(conf + "--set policy.orchestration.confidence.intent_override=0");
  ASSERT_FALSE(bounded.empty() || wrong.empty());
  std::cout << "hit rate: LRU " << lru.at("cache_hit_rate") << ", confidence unbounded "
            << unbounded.at("cache_hit_rate") << ", with a thrash budget "
            << bounded.at("cache_hit_rate") << " (" << bounded.at("budget_fallback_epochs")
            << " fallback epochs, largest epoch " << bounded.at("max_epoch_migration_bytes")
            << " bytes), wrong intent " << wrong.at("cache_hit_rate") << "; TPOT "
            << lru.at("tpot_ms_mean") << " / " << unbounded.at("tpot_ms_mean") << " / "
            << bounded.at("tpot_ms_mean") << " / " << wrong.at("tpot_ms_mean") << " ms\n";
  EXPECT_LT(lru.at("cache_hit_rate"), 0.01);
  EXPECT_LT(unbounded.at("cache_hit_rate"), 0.01);
  EXPECT_EQ(unbounded.at("budget_fallback_epochs"), 0);
  EXPECT_GT(bounded.at("cache_hit_rate"), 0.05);
  EXPECT_GT(bounded.at("budget_fallback_epochs"), 0);
  EXPECT_LE(bounded.at("max_epoch_migration_bytes"), 10 * 2097152.0);
  EXPECT_LT(bounded.at("demand_bytes_per_token"), lru.at("demand_bytes_per_token"));
  EXPECT_LT(bounded.at("tpot_ms_mean"), lru.at("tpot_ms_mean"));
  EXPECT_EQ(wrong.at("cache_hit_rate"), 0);
  EXPECT_EQ(wrong.at("admission_bytes_per_token"), 0);
  // The gate's other parameters. A fault budget (5 misses per 100 visits) bounds admissions
  // too. An uncertain intent (mu 0.8: sigma 0.4) is denied at z = 1 (lower bound 0.4 < 0.6)
  // but admitted at z = 0 or with admit_lb 0.3. An over-optimistic intent (mu 0.7, z 0) thrashes
  // like LRU; blended with the observed reuse (pages evicted unused) its mu falls below
  // admit_lb, admissions stop, and the cache keeps what it holds: hits.
  const std::string o = "--set policy.orchestration.confidence.";
  const auto faults = run8b(conf + o + "epoch_pages=100 " + o + "budget_faults_per_epoch=5");
  const auto z1 = run8b(conf + o + "intent_override=0.8");
  const auto z0 = run8b(conf + o + "intent_override=0.8 " + o + "z=0");
  const auto low_lb = run8b(conf + o + "intent_override=0.8 " + o + "admit_lb=0.3");
  const auto optimistic = run8b(conf + o + "intent_override=0.7 " + o + "z=0");
  const auto blended = run8b(conf + o + "intent_override=0.7 " + o + "z=0 " + o + "blend_eta=0.5");
  EXPECT_GT(faults.at("cache_hit_rate"), 0.05);
  EXPECT_GT(faults.at("budget_fallback_epochs"), 0);
  EXPECT_EQ(z1.at("admission_bytes_per_token"), 0);
  EXPECT_GT(z0.at("admission_bytes_per_token"), 0);
  EXPECT_GT(low_lb.at("admission_bytes_per_token"), 0);
  EXPECT_EQ(optimistic.at("cache_hit_rate"), 0);
  EXPECT_GT(blended.at("cache_hit_rate"), 0.1);
  EXPECT_LT(blended.at("admission_bytes_per_token"), optimistic.at("admission_bytes_per_token"));
  std::cout << "fault budget " << faults.at("cache_hit_rate") << " hits; blending an "
            << "over-optimistic intent: " << blended.at("cache_hit_rate") << " hits, "
            << blended.at("admission_bytes_per_token") / 1e9
            << " GB/token admitted (without: " << optimistic.at("admission_bytes_per_token") / 1e9
            << ")\n";
}

// Bytes and visits add up; objects of different sizes fragment the area (admissions find enough
// free bytes but no extent); targeted compaction within its per-step budget halves those
// failures, its copies are the DMA's compact bytes; the cache beats streaming every weight, and
// LFU beats LRU on skewed routing.
TEST(ObjectCache, FragmentationCompactionAndAccounting) {
  const std::string oc = " --set policy.orchestration.object_cache.";
  const auto lru = expert_cache("");
  const auto plain = expert_cache(oc + "compaction_bytes_per_step=0");
  const auto lfu = expert_cache(oc + "eviction=OBJECT_LFU");
  const auto none = expert_cache(" --set policy.orchestration.object_cache=!clear");
  ASSERT_FALSE(lru.count("exit") || plain.count("exit") || lfu.count("exit") || none.count("exit"));
  std::cout << "hit rate LRU " << lru.at("object_cache_hit_rate") << ", LFU "
            << lfu.at("object_cache_hit_rate") << "; fragmentation mean "
            << lru.at("fragmentation_mean") << " max " << lru.at("fragmentation_max")
            << "; failures " << plain.at("fragmentation_failures") << " -> "
            << lru.at("fragmentation_failures") << " with " << lru.at("compactions")
            << " compactions (" << lru.at("compaction_bytes_per_token") / 1e6 << " MB/token); TPOT "
            << none.at("tpot_ms_mean") << " (no cache) / " << lru.at("tpot_ms_mean") << " / "
            << lfu.at("tpot_ms_mean") << " ms\n";
  for (const auto* r : {&lru, &plain, &lfu}) {
    EXPECT_DOUBLE_EQ(r->at("object_cache_visits"),
                     r->at("object_cache_hit_rate") * r->at("object_cache_visits") +
                         r->at("object_cache_admissions") + r->at("object_cache_bypasses"));
    // Without bypasses every byte read from home is copied into an extent.
    if (r->at("object_cache_bypasses") == 0) {
      EXPECT_DOUBLE_EQ(r->at("demand_bytes_per_token"), r->at("admission_bytes_per_token"));
    }
    EXPECT_GT(r->at("fragmentation_failures"), 0);
    EXPECT_GT(r->at("fragmentation_max"), 0.5);
  }
  EXPECT_EQ(plain.at("compactions"), 0);
  EXPECT_GT(lru.at("compactions"), 0);
  EXPECT_LT(lru.at("fragmentation_failures"), 0.75 * plain.at("fragmentation_failures"));
  EXPECT_DOUBLE_EQ(lru.at("compaction_bytes_per_token"), lru.at("dma_compact_bytes_per_token"));
  const double tokens = 16.0 * 4;
  EXPECT_LE(lru.at("compaction_bytes_per_token") * tokens, 16.0 * 2147483648.0);
  EXPECT_LT(lru.at("tpot_ms_mean"), none.at("tpot_ms_mean"));
  EXPECT_GT(lfu.at("object_cache_hit_rate"), lru.at("object_cache_hit_rate"));
  // A budget too small for any window compacts nothing.
  const auto tiny = expert_cache(oc + "compaction_bytes_per_step=4096");
  ASSERT_FALSE(tiny.count("exit"));
  EXPECT_EQ(tiny.at("compactions"), 0);
}

// Precision states in the object cache (HOBBIT's low-precision substitution on a miss): INT8
// copies at home halve the bytes each miss moves and each extent holds (every byte read from
// home still lands in an extent), the quality proxy is err(INT8) = 1/256 with every weight
// lowered; INT4 (1/4 of the bytes) brings the 93 GB model within the 24 GiB cache. A quality
// budget with the experts 4x less sensitive than the rest lowers experts first and vetoes the
// rest beyond it.
TEST(ObjectCache, LowPrecisionCopiesOnMiss) {
  const std::string p = " --set policy.orchestration.object_cache.precision=";
  const auto full = expert_cache("");
  const auto int8 = expert_cache(p + "'{dtype: INT8}'");
  const auto int4 = expert_cache(p + "'{dtype: INT4}'");
  const auto guarded =
      expert_cache(p +
                   "'{dtype: INT4 quality_budget: 0.05 sensitivity {prefix: \"layer\" value: 4} "
                   "sensitivity {contains: \".expert\" value: 1}}'");
  ASSERT_FALSE(full.count("exit") || int8.count("exit") || int4.count("exit") ||
               guarded.count("exit"));
  std::cout << "TPOT FP16 " << full.at("tpot_ms_mean") << ", INT8 " << int8.at("tpot_ms_mean")
            << ", INT4 " << int4.at("tpot_ms_mean") << ", INT4 within budget "
            << guarded.at("tpot_ms_mean") << " ms; hit rate " << full.at("object_cache_hit_rate")
            << " / " << int8.at("object_cache_hit_rate") << " / "
            << int4.at("object_cache_hit_rate") << " / " << guarded.at("object_cache_hit_rate")
            << "; bytes per admission "
            << full.at("admission_bytes_per_token") / full.at("object_cache_admissions") << " / "
            << int8.at("admission_bytes_per_token") / int8.at("object_cache_admissions") << "\n";
  EXPECT_NEAR(int8.at("quality_proxy"), 1.0 / 256, 1e-12);
  EXPECT_NEAR(int4.at("quality_proxy"), 1.0 / 16, 1e-12);
  EXPECT_EQ(int8.at("precision_vetoes"), 0);
  for (const auto* r : {&int8, &int4, &guarded}) {
    EXPECT_DOUBLE_EQ(r->at("demand_bytes_per_token"), r->at("admission_bytes_per_token"));
    EXPECT_LT(r->at("tpot_ms_mean"), full.at("tpot_ms_mean"));
  }
  // Every object lowered: an admission copies half (INT8) the bytes of FP16's on average
  // (the same objects, within the mix's drift).
  const double per_full = full.at("admission_bytes_per_token") / full.at("object_cache_admissions");
  const double per_int8 = int8.at("admission_bytes_per_token") / int8.at("object_cache_admissions");
  EXPECT_NEAR(per_int8 / per_full, 0.5, 0.02);
  EXPECT_GT(int4.at("object_cache_hit_rate"), 0.9);
  EXPECT_LE(guarded.at("quality_proxy"), 0.05 + 1e-12);
  EXPECT_GT(guarded.at("precision_vetoes"), 0);
  EXPECT_LT(guarded.at("lowered_objects"), int4.at("lowered_objects"));
}

// Prefetch with lookahead into the object cache, activation-aware (the objects read at the
// layer's previous visit: dense weights and the experts routed then). Where the cache holds the
// model (INT4) it turns first-touch misses into hits (accuracy 1) and shortens TPOT; where the
// working set thrashes (FP16) the copies, queued as bulk traffic behind each other on PCIe,
// evict what LRU would have hit and make consumers wait: more bytes from home and a slower
// TPOT. Prefetching every object of the layer moves more and is less accurate.
TEST(ObjectCache, ActivationAwarePrefetchHelpsOnlyWithSlack) {
  const std::string oc = " --set policy.orchestration.object_cache.";
  const std::string int4 = oc + "precision='{dtype: INT4}'";
  const auto fit = expert_cache(int4);
  const auto fit_pf = expert_cache(int4 + oc + "prefetch_layers=1");
  const auto thrash = expert_cache("");
  const auto thrash_pf = expert_cache(oc + "prefetch_layers=1");
  const auto thrash_all =
      expert_cache(oc + "prefetch_layers=1" + oc + "prefetch=OBJECT_PREFETCH_ALL");
  ASSERT_FALSE(fit.count("exit") || fit_pf.count("exit") || thrash.count("exit") ||
               thrash_pf.count("exit") || thrash_all.count("exit"));
  auto home = [](const std::map<std::string, double>& r) {
    return r.at("demand_bytes_per_token") + r.at("prefetch_bytes_per_token");
  };
  std::cout << "INT4: TPOT " << fit.at("tpot_ms_mean") << " -> " << fit_pf.at("tpot_ms_mean")
            << " ms, demand misses " << fit.at("demand_misses") << " -> "
            << fit_pf.at("demand_misses") << ", accuracy " << fit_pf.at("object_prefetch_accuracy")
            << "; FP16: TPOT " << thrash.at("tpot_ms_mean") << " -> "
            << thrash_pf.at("tpot_ms_mean") << " (all: " << thrash_all.at("tpot_ms_mean")
            << ") ms, home GB/token " << home(thrash) / 1e9 << " -> " << home(thrash_pf) / 1e9
            << " (all: " << home(thrash_all) / 1e9 << "), stall "
            << thrash_pf.at("stall_us_per_token") / 1e3 << " ms/token\n";
  EXPECT_GT(fit_pf.at("object_prefetches"), 0);
  EXPECT_DOUBLE_EQ(fit_pf.at("object_prefetch_accuracy"), 1.0);
  EXPECT_LT(fit_pf.at("demand_misses"), fit.at("demand_misses"));
  EXPECT_LT(fit_pf.at("tpot_ms_mean"), fit.at("tpot_ms_mean"));
  EXPECT_GT(home(thrash_pf), home(thrash));
  EXPECT_GT(thrash_pf.at("tpot_ms_mean"), thrash.at("tpot_ms_mean"));
  EXPECT_GT(thrash_pf.at("stall_us_per_token"), 0);
  EXPECT_GT(thrash_all.at("object_prefetch_bytes_per_token"),
            thrash_pf.at("object_prefetch_bytes_per_token"));
  EXPECT_LT(thrash_all.at("object_prefetch_accuracy"), thrash_pf.at("object_prefetch_accuracy"));
  // Every prefetched byte is a DMA prefetch byte from host DDR.
  EXPECT_DOUBLE_EQ(thrash_pf.at("object_prefetch_bytes_per_token"),
                   thrash_pf.at("prefetch_bytes_per_token"));
}

// Intents restated per phase: with a prefill step the prompt uses every expert for certain, so
// the activation-aware prefetch copies each next layer's experts during the prefill (then the
// decode phase's intent applies again); with the intent declared at model load only (the
// decode phase's) it prefetches the dense weights alone, the prefill reads the experts on
// demand and takes longer.
TEST(ObjectCache, IntentsRestatedPerPhase) {
  const std::string set =
      " --set workload.decode.prefill=true --set policy.orchestration.object_cache."
      "prefetch_layers=1 --set policy.orchestration.object_cache.precision='{dtype: INT4}'";
  const auto phases = expert_cache(set);
  const auto load_only = expert_cache(set + " --set policy.orchestration.intent_per_phase=false");
  ASSERT_FALSE(phases.count("exit") || load_only.count("exit"));
  std::cout << "prefetches " << load_only.at("object_prefetches") << " -> "
            << phases.at("object_prefetches") << ", prefill " << load_only.at("prefill_s") << " -> "
            << phases.at("prefill_s") << " s, demand "
            << load_only.at("demand_bytes_per_token") / 1e6 << " -> "
            << phases.at("demand_bytes_per_token") / 1e6 << " MB/token\n";
  EXPECT_GT(phases.at("object_prefetches"), load_only.at("object_prefetches") + 200);
  EXPECT_LT(phases.at("prefill_s"), load_only.at("prefill_s"));
  EXPECT_LT(phases.at("demand_bytes_per_token"), load_only.at("demand_bytes_per_token"));
  EXPECT_DOUBLE_EQ(phases.at("object_prefetch_accuracy"), 1.0);
}

TEST(ObjectCache, BadSettingsAreRefused) {
  expect_refused(
      expert_cache,
      {
          {"--set policy.orchestration.resident_fraction=0.5", "policy.orchestration.object_cache"},
          {"--set policy.orchestration.prefetch_layers=1", "policy.orchestration.object_cache"},
          {"--set policy.orchestration.object_cache.bytes=0",
           "policy.orchestration.object_cache.bytes"},
          {"--set policy.orchestration.object_cache.prefetch=OBJECT_PREFETCH_ALL",
           "policy.orchestration.object_cache.prefetch"},
          {"--set policy.orchestration.object_cache.prefetch_layers=1 --set "
           "policy.orchestration.object_cache.prefetch_confidence=2",
           "policy.orchestration.object_cache.prefetch_confidence"},
          {"--set 'policy.orchestration.object_cache.precision={dtype: BF16}'",
           "policy.orchestration.object_cache.precision.dtype"},
          {"--set 'policy.orchestration.object_cache.precision={dtype: INT8 sensitivity {value: "
           "2}}'",
           "policy.orchestration.object_cache.precision.sensitivity[0].prefix"},
      });
}

TEST(DpuBuffer, StagingInTheDpuDdrHidesTheHomeLatency) {
  const std::string no_buffer = " --set policy.orchestration.dpu_buffer=!clear";
  const auto buffered = dpu("");
  const auto direct1 = dpu(no_buffer);
  const auto direct3 = dpu(no_buffer + " --set policy.orchestration.prefetch_layers=3");
  ASSERT_FALSE(buffered.count("exit") || direct1.count("exit") || direct3.count("exit"));
  std::cout << "stall us/token: DPU buffer " << buffered.at("stall_us_per_token") << ", direct k=1 "
            << direct1.at("stall_us_per_token") << ", direct k=3 "
            << direct3.at("stall_us_per_token") << "; TPOT " << buffered.at("tpot_ms_mean") << " / "
            << direct1.at("tpot_ms_mean") << " / " << direct3.at("tpot_ms_mean")
            << " ms; HBM staging " << buffered.at("staging_bytes") / 1e6 << " / "
            << direct1.at("staging_bytes") / 1e6 << " / " << direct3.at("staging_bytes") / 1e6
            << " MB\n";
  EXPECT_GT(direct1.at("stall_us_per_token"), 1000);
  EXPECT_LT(buffered.at("stall_us_per_token"), 0.05 * direct1.at("stall_us_per_token"));
  EXPECT_LT(buffered.at("tpot_ms_mean"), direct1.at("tpot_ms_mean"));
  EXPECT_EQ(buffered.at("staging_bytes"), direct1.at("staging_bytes"));
  EXPECT_EQ(2 * buffered.at("staging_bytes"), direct3.at("staging_bytes"));
  EXPECT_GT(buffered.at("dpu_buffer_sourced_fraction"), 0.99);
  EXPECT_DOUBLE_EQ(buffered.at("dpu_buffer_bytes_per_token"),
                   buffered.at("dpu_dma_nvme_to_ddr_bytes_per_token"));
  EXPECT_DOUBLE_EQ(buffered.at("dpu_buffer_bytes_per_token"),
                   buffered.at("prefetch_bytes_per_token"));
  EXPECT_EQ(buffered.at("controller_decisions"), 2 * direct1.at("controller_decisions"));
}

TEST(DpuBuffer, BadSettingsAreRefused) {
  const std::string b = " --set policy.orchestration.dpu_buffer.";
  expect_refused(
      dpu, {
               {b + "lookahead_layers=1", "policy.orchestration.dpu_buffer.lookahead_layers"},
               {b + "lookahead_layers=99", "policy.orchestration.dpu_buffer.lookahead_layers"},
               {b + "memory=dpu_nvme", "policy.orchestration.dpu_buffer.memory"},
               {b + "dma=hbm", "policy.orchestration.dpu_buffer.dma"},
               {" --set policy.orchestration.prefetch_layers=0", "policy.orchestration.dpu_buffer"},
           });
}

TEST(ObjectCache, EveryParameterChangesTheResult) {
  const std::string oc = " --set policy.orchestration.object_cache.";
  const auto first = expert_cache("");
  const auto best = expert_cache(oc + "fit=EXTENT_BEST_FIT");
  const std::string pf = oc + "precision='{dtype: INT4}'" + oc + "prefetch_layers=1";
  const auto sure = expert_cache(pf);
  const auto likely = expert_cache(pf + oc + "prefetch_confidence=0.9");
  for (const auto* r : {&first, &best, &sure, &likely})
    ASSERT_EQ(r->count("exit"), 0u);
  EXPECT_NE(best.at("fragmentation_failures"), first.at("fragmentation_failures"));
  EXPECT_NE(best.at("fragmentation_mean"), first.at("fragmentation_mean"));
  // Experts the intent gives at least 0.9 are prefetched too.
  EXPECT_GT(likely.at("object_prefetches"), sure.at("object_prefetches"));
}

TEST(DpuBuffer, LookaheadSetsHowMuchLatencyIsHidden) {
  const auto two = dpu(" --set policy.orchestration.dpu_buffer.lookahead_layers=2");
  const auto three = dpu("");
  ASSERT_FALSE(two.count("exit") || three.count("exit"));
  EXPECT_GT(two.at("stall_us_per_token"), three.at("stall_us_per_token"));
}

}  // namespace
}  // namespace tiersim
