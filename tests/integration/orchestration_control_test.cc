// The movement controller as a component in whole runs: every mechanism's decisions queue on
// the controller and take its latency; a consumer waiting for one (a demand miss) is control
// stall, derived here by hand; mechanisms that decide nothing do not feel the controller.
#include "tests/integration/orchestration_support.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// Derivation. A miss is one decision the tile's read waits for. With a decision latency L
// longer than a tile's transfer and arithmetic (1 ms against ~40 us for 2 MiB over PCIe Gen5),
// the controller is the bottleneck: the engine asks for the decisions of the tiles it can issue
// (its staging ring) at once, they are taken one after another L apart, and the next tile is
// wanted before the previous decision is taken, so the intervals in which some tile waits for a
// decision join up: n misses cost exactly n L of control stall, and the run at least that much
// time. On the accelerator (0.3 us, under a tile's transfer) the link is the bottleneck and the
// control stall at most n x 0.3 us.
TEST(Control, PageCacheMissesWaitForTheControllerDerivedByHand) {
  const uint64_t latency_ps = 1'000'000'000;  // 1 ms
  const auto acc = page_cache_1b(test::preset("controllers/on_accelerator.textproto"));
  const auto host = page_cache_1b(host_fixed(latency_ps));
  ASSERT_FALSE(acc.count("exit") || host.count("exit"));
  const double tokens = 2;
  const double misses = host.at("controller_decisions_critical");
  std::cout << "misses " << misses << " (hit rate " << host.at("cache_hit_rate")
            << "); control stall per token: on the accelerator "
            << acc.at("stall_control_us_per_token") << " us, host CPU at 1 ms "
            << host.at("stall_control_us_per_token") << " us; TPOT " << acc.at("tpot_ms_mean")
            << " -> " << host.at("tpot_ms_mean") << " ms\n";
  // Every miss is one decision, on the critical path; nothing else decides.
  EXPECT_GT(misses, 500);
  EXPECT_EQ(misses, host.at("demand_misses"));
  EXPECT_EQ(misses, acc.at("controller_decisions_critical"));
  EXPECT_EQ(host.at("controller_decisions_off_path"), 0);
  EXPECT_EQ(host.at("decisions_page_cache_admission"), misses);
  EXPECT_NEAR(host.at("cache_hit_rate"), 0.5, 0.01);  // step 0 misses, step 1 hits
  // The hand-derived control stall: n L over the run, exactly (to the summary's rounding).
  EXPECT_NEAR(host.at("stall_control_us_per_token"), misses * 1000.0 / tokens,
              1e-9 * misses * 1000.0);
  EXPECT_EQ(host.at("stall_data_us_per_token"), 0);
  // The run takes at least the decisions, and at most the decisions plus the whole run on the
  // accelerator (the transfers hide under the next decisions).
  const double host_ms = host.at("tpot_ms_mean") * tokens;
  const double acc_ms = acc.at("tpot_ms_mean") * tokens;
  EXPECT_GE(host_ms, misses * 1.0);
  EXPECT_LE(host_ms, misses * 1.0 + acc_ms);
  EXPECT_LE(acc.at("stall_control_us_per_token"), misses * 0.3 / tokens + 1e-6);
  // What the waits cost: the engine's idle time before decisions were taken is the TPOT the
  // host controller adds (the rest of each wait overlaps the previous tile's transfer).
  std::cout << "engine idle for control: " << acc.at("engine_idle_control_us_per_token") << " / "
            << host.at("engine_idle_control_us_per_token") << " us/token\n";
  EXPECT_LE(host.at("engine_idle_control_us_per_token"), host.at("stall_control_us_per_token"));
  EXPECT_NEAR(
      host.at("engine_idle_control_us_per_token") - acc.at("engine_idle_control_us_per_token"),
      (host.at("tpot_ms_mean") - acc.at("tpot_ms_mean")) * 1000.0,
      0.02 * (host.at("tpot_ms_mean") - acc.at("tpot_ms_mean")) * 1000.0);
  // The controller was busy for the decisions: n L over the run's simulated time.
  EXPECT_NEAR(host.at("controller_utilization"), misses * 1e-3 / host.at("sim_time_s"), 1e-6);
}

// With a resident share that ends inside a page, the first home tile of each object starts
// mid-page: it is still a page visit, and a miss is still a decision (one per demand miss).
TEST(Control, PageVisitsThatStartMidPageAreDecisionsToo) {
  const auto r = page_cache_1b(test::preset("controllers/on_accelerator.textproto") +
                               " --set policy.orchestration.resident_fraction=0.3");
  ASSERT_FALSE(r.count("exit"));
  EXPECT_GT(r.at("controller_decisions_critical"), 0);
  EXPECT_EQ(r.at("controller_decisions_critical"), r.at("demand_misses"));
}

// With the DPU's DDR buffer, a staged copy waits for its copy into the buffer to land (the
// SSD's 200 us read latency): that wait is data, not control. With decisions of 1 ps nothing
// waits for the controller.
TEST(Control, WaitingForTheDpuBufferIsDataNotControl) {
  const auto r =
      dpu(" --set policy.orchestration.decision_latency_ps=1"
          " --set policy.orchestration.decision_jitter=!clear"
          " --set policy.orchestration.dpu_buffer.lookahead_layers=2"
          " --set system.components[dpu_nvme].nvme.read_bytes_per_s=2e9");
  ASSERT_FALSE(r.count("exit"));
  std::cout << "DPU buffer: stall " << r.at("stall_us_per_token") << " us/token, control "
            << r.at("stall_control_us_per_token") << ", data " << r.at("stall_data_us_per_token")
            << "\n";
  EXPECT_GT(r.at("stall_data_us_per_token"), 1000);
  EXPECT_LT(r.at("stall_control_us_per_token"), 1e-3 * r.at("stall_data_us_per_token"));
}

// The object cache's misses (a visit's admission or bypass, and a compaction that makes room)
// are decisions its reads wait for. Each visit is reached after the previous one's tiles were
// issued, so the controller is idle when asked and every critical decision adds L of control
// stall: critical decisions x L, exactly.
TEST(Control, ObjectCacheMissesAndCompactionsWaitForTheController) {
  const uint64_t latency_ps = 100'000'000;  // 100 us
  const std::string short_run = " --set workload.decode.decode_steps=4";
  const auto acc = expert_cache(short_run);
  const auto host = expert_cache(host_fixed(latency_ps) + short_run);
  ASSERT_FALSE(acc.count("exit") || host.count("exit"));
  const double tokens = host.at("tokens_generated");
  const double critical = host.at("controller_decisions_critical");
  std::cout << "object cache: " << host.at("decisions_object_cache_admission") << " admissions, "
            << host.at("decisions_object_cache_compaction")
            << " compactions decided; control stall " << host.at("stall_control_us_per_token")
            << " us/token at 100 us per decision; TPOT " << acc.at("tpot_ms_mean") << " -> "
            << host.at("tpot_ms_mean") << " ms\n";
  EXPECT_EQ(critical, host.at("decisions_object_cache_admission") +
                          host.at("decisions_object_cache_compaction"));
  EXPECT_NEAR(host.at("decisions_object_cache_admission"),
              host.at("object_cache_visits") * (1 - host.at("object_cache_hit_rate")), 1e-6);
  EXPECT_NEAR(host.at("stall_control_us_per_token"), critical * 100.0 / tokens,
              1e-9 * critical * 100.0);
  EXPECT_GT(host.at("tpot_ms_mean"), acc.at("tpot_ms_mean"));
}

// Context regions copied up on demand (no promotion ahead, attention waits for a late region):
// each first read of a region at home is a decision the read waits for, and the controller is
// idle when asked (the previous region's tiles were issued after its decision): critical
// decisions x L of control stall, exactly.
TEST(Control, ContextRegionCopyUpsWaitForTheController) {
  const uint64_t latency_ps = 10'000'000;  // 10 us
  const std::string short_run = " --set workload.decode.decode_steps=2" + kRecallBaseline;
  const auto acc = regions(short_run);
  const auto host = regions(host_fixed(latency_ps) + short_run);
  ASSERT_FALSE(acc.count("exit") || host.count("exit"));
  const double critical = host.at("controller_decisions_critical");
  const double tokens = host.at("tokens_generated");
  std::cout << "context regions: " << critical << " demand copy-ups decided, "
            << host.at("decisions_context_regions_prefetch") << " ahead; control stall "
            << host.at("stall_control_us_per_token") << " us/token at 10 us per decision; TPOT "
            << acc.at("tpot_ms_mean") << " -> " << host.at("tpot_ms_mean") << " ms\n";
  EXPECT_GT(critical, 0);
  EXPECT_EQ(critical, host.at("decisions_context_regions_admission"));
  EXPECT_EQ(host.at("decisions_context_regions_prefetch"), 0);
  EXPECT_NEAR(host.at("stall_control_us_per_token"), critical * 10.0 / tokens,
              1e-9 * critical * 10.0);
  EXPECT_GT(host.at("tpot_ms_mean"), acc.at("tpot_ms_mean"));
}

// The recompute-vs-transfer arbiter decides per sequence and attention op (the FlexGen T4
// setting, all weights resident, 12 sequences' KV at home behind PCIe Gen3, 3 micro-batches of
// 4): each choice is a decision the op's reads of that sequence wait for. An op's 4 decisions
// are asked at its start and taken L apart; the engine waits for the first (L of control
// stall), and for each later one only once its staging ring is done with the previous
// sequence's tiles, so each later decision exposes L minus up to one sequence's transfer (at most
// 8.5 MB at 12.9 GB/s, under 0.7 ms; the bound below allows 1 ms). Fixed modes decide nothing
// and do not feel the controller.
TEST(Control, KvRestoreChoicesWaitForTheController) {
  const std::string on_acc = test::preset("controllers/on_accelerator.textproto");
  const auto acc = run_flexgen(on_acc + kv_restore("ARBITRATE"));
  const auto host = run_flexgen(host_fixed(10'000'000'000) + kv_restore("ARBITRATE"));
  const auto fixed_acc = run_flexgen(on_acc + kv_restore("TRANSFER"));
  const auto fixed_host = run_flexgen(host_fixed(1'000'000'000) + kv_restore("TRANSFER"));
  for (const auto* m : {&acc, &host, &fixed_acc, &fixed_host})
    ASSERT_EQ(m->count("exit"), 0u);
  const double critical = host.at("controller_decisions_critical");
  const double tokens = host.at("tokens_generated");
  std::cout << "KV restore: " << critical << " choices decided; control stall "
            << host.at("stall_control_us_per_token") << " us/token at 10 ms per decision; TPOT "
            << acc.at("tpot_ms_mean") << " -> " << host.at("tpot_ms_mean") << " ms\n";
  EXPECT_EQ(critical, host.at("decisions_kv_restore_restore"));
  EXPECT_EQ(critical, host.at("controller_decisions"));
  EXPECT_GT(critical, 0);
  const double ops = critical / 4;
  EXPECT_LE(host.at("stall_control_us_per_token"), critical * 10'000.0 / tokens + 1e-6);
  EXPECT_GE(host.at("stall_control_us_per_token"),
            (ops * 10'000.0 + (critical - ops) * 9'000.0) / tokens);
  EXPECT_GT(host.at("tpot_ms_mean"), acc.at("tpot_ms_mean"));
  EXPECT_EQ(fixed_host.at("controller_decisions"), 0);
  EXPECT_EQ(fixed_host.at("tpot_ms_mean"), fixed_acc.at("tpot_ms_mean"));
}

// The residency map is looked up by every decision about an object, whatever the mechanism: a
// hit adds the map's lookup (1 us here), a miss the software path (100 us) and installs the
// entry. Page cache, 1 ms per decision (as above): n misses cost n x 1 ms plus each lookup,
// exactly. With a 256 MiB cache every step misses again: a map that holds every object misses
// each once (the first step), a one-entry map at every change of object.
std::string with_map(uint32_t entries) {
  return " --set policy.orchestration.residency_map.entries=" + std::to_string(entries) +
         " --set policy.orchestration.residency_map.lookup_latency_ps=1000000"
         " --set policy.orchestration.residency_map.software_latency_ps=100000000";
}

TEST(Control, EveryDecisionLooksItsObjectUpInTheResidencyMap) {
  const uint64_t small_cache = 268435456;
  const auto big = page_cache_1b(host_fixed(1'000'000'000) + with_map(100000), small_cache);
  const auto one = page_cache_1b(host_fixed(1'000'000'000) + with_map(1), small_cache);
  ASSERT_FALSE(big.count("exit") || one.count("exit"));
  const double tokens = 2;
  for (const auto* m : {&big, &one}) {
    const double n = m->at("controller_decisions_critical");
    const double hits = m->at("residency_map_hits"), misses = m->at("residency_map_misses");
    EXPECT_EQ(hits + misses, n);  // one lookup per decision
    EXPECT_NEAR(m->at("stall_control_us_per_token"),
                (n * 1000.0 + misses * 100.0 + hits * 1.0) / tokens, 1e-9 * n * 1100.0);
  }
  std::cout << "page cache, residency map: " << big.at("residency_map_misses") << " / "
            << one.at("residency_map_misses") << " software-path lookups with 100,000 / 1 entries"
            << " of " << big.at("controller_decisions_critical") << " decisions\n";
  // Every object is missed once by the big map; the small one misses at every change of object.
  EXPECT_EQ(big.at("residency_map_occupancy"), big.at("residency_map_misses"));
  EXPECT_GE(one.at("residency_map_misses"), 2 * big.at("residency_map_misses"));
  EXPECT_EQ(one.at("residency_map_occupancy"), 1);
  // Context regions and the object cache look up as well: one lookup per decision (a compaction
  // looks up each object it moves, so at least one per decision there).
  std::string err;
  const auto regions_map =
      regions(" --set workload.decode.decode_steps=2" + kRecallBaseline + " " +
                  test::preset("controllers/on_accelerator.textproto") + with_map(100000),
              &err);
  ASSERT_FALSE(regions_map.count("exit")) << err;
  EXPECT_GT(regions_map.at("controller_decisions"), 0);
  EXPECT_EQ(regions_map.at("residency_map_hits") + regions_map.at("residency_map_misses"),
            regions_map.at("controller_decisions"));
  const auto objects_map =
      expert_cache(" --set workload.decode.decode_steps=4 " +
                   test::preset("controllers/on_accelerator.textproto") + with_map(100000));
  ASSERT_FALSE(objects_map.count("exit"));
  EXPECT_GT(objects_map.at("decisions_object_cache_compaction"), 0);
  EXPECT_GT(objects_map.at("residency_map_hits") + objects_map.at("residency_map_misses"),
            objects_map.at("controller_decisions"));
}

// A mechanism with no decisions does not feel the controller: static placement (a resident
// share, the rest read from home on demand) and wired residency (objects bound before the run)
// give the same summary, item for item, with a host CPU loop or an on-accelerator controller.
TEST(Control, MechanismsWithoutDecisionsAreUnaffectedByThePlacement) {
  const std::string static_split =
      " --set workload.decode.decode_steps=2 --set policy.orchestration.prefetch_layers=0"
      " --set policy.orchestration.resident_fraction=0.5";
  const auto acc = run(test::preset("controllers/on_accelerator.textproto") + static_split);
  const auto host = run(test::preset("controllers/host_cpu.textproto") + static_split);
  ASSERT_FALSE(acc.count("exit") || host.count("exit"));
  for (const auto& [name, value] : acc) {
    if (name == "wall_time_s") continue;  // the only value that differs run to run
    EXPECT_EQ(value, host.at(name)) << name;
  }
  EXPECT_EQ(acc.size(), host.size());
  EXPECT_EQ(host.at("controller_decisions"), 0);
  EXPECT_GT(host.at("demand_bytes_per_token"), 0);

  const std::vector<std::string> wired = {"hardware/h100_sxm",
                                          "memory/hrm_sram_4x4",
                                          "hardware/fragments/h100_with_hrm",
                                          "models/llama3_2_1b",
                                          "software/cuda_events_per_kernel",
                                          "studies/wired_hrm_llama3_2_1b"};
  const auto wired_acc = run_presets(wired, " --set workload.decode.decode_steps=2");
  const auto wired_host = run_presets(wired, test::preset("controllers/host_cpu.textproto") +
                                                 " --set workload.decode.decode_steps=2");
  ASSERT_FALSE(wired_acc.count("exit") || wired_host.count("exit"));
  EXPECT_GT(wired_host.at("wired_bytes_per_token"), 0);
  for (const auto& [name, value] : wired_acc) {
    if (name == "wall_time_s") continue;
    EXPECT_EQ(value, wired_host.at(name)) << name;
  }
  EXPECT_EQ(wired_acc.size(), wired_host.size());
}

// Layer-ahead prefetch decides off the critical path: its decisions are counted apart, and a
// consumer reaching a copy the controller has not decided yet waits for control, not for data.
TEST(Control, PrefetchDecisionsAreOffThePathAndTheirLatenessIsControlStall) {
  const auto host = run(host_fixed(50'000'000));  // 50 us per decision: the layer window missed
  ASSERT_FALSE(host.count("exit"));
  EXPECT_EQ(host.at("controller_decisions_critical"), 0);
  EXPECT_EQ(host.at("controller_decisions_off_path"), host.at("controller_decisions"));
  EXPECT_EQ(host.at("decisions_layer_prefetch_prefetch"), host.at("controller_decisions"));
  EXPECT_GT(host.at("stall_control_us_per_token"), 0);
  EXPECT_GT(host.at("engine_idle_control_us_per_token"), 0);
  const auto fast = run(host_fixed(1));  // 1 ps per decision: nothing waits for control
  ASSERT_FALSE(fast.count("exit"));
  EXPECT_EQ(fast.at("stall_control_us_per_token"), 0);
  EXPECT_EQ(fast.at("engine_idle_control_us_per_token"), 0);
  // Decisions queue: 9 per layer asked at once, taken 50 us apart.
  EXPECT_GT(host.at("controller_queue_delay_us_mean"), 50);
  EXPECT_GT(host.at("controller_utilization"), 0.5);
}

// Servers and pipelining set the controller's rate. The 70B TP8 prefetch asks for 9 decisions
// at each layer's start; at 30 us each one server needs 270 us against a ~150 us layer and
// misses the window. Four servers (a host loop on four cores) take them four at a time, and a
// pipeline issuing one every 7.5 us has the same rate with the same 30 us latency: both fit.
TEST(Control, ServersAndPipeliningSetTheDecisionRate) {
  const std::string at30 = host_fixed(30'000'000);
  const auto one = run(at30);
  const auto four = run(at30 + " --set policy.orchestration.decision_servers=4");
  const auto piped = run(at30 + " --set policy.orchestration.decision_interval_ps=7500000");
  for (const auto* m : {&one, &four, &piped})
    ASSERT_EQ(m->count("exit"), 0u);
  std::cout << "stall us/token at 30 us per decision: one server " << one.at("stall_us_per_token")
            << " (queueing " << one.at("controller_queue_delay_us_mean") << " us, utilisation "
            << one.at("controller_utilization") << "), four " << four.at("stall_us_per_token")
            << " (queueing " << four.at("controller_queue_delay_us_mean") << " us), pipelined "
            << piped.at("stall_us_per_token") << " (queueing "
            << piped.at("controller_queue_delay_us_mean") << " us); TPOT " << one.at("tpot_ms_mean")
            << " / " << four.at("tpot_ms_mean") << " / " << piped.at("tpot_ms_mean") << " ms\n";
  EXPECT_GT(one.at("stall_us_per_token"), 1000);
  EXPECT_LT(four.at("stall_us_per_token"), 0.01 * one.at("stall_us_per_token"));
  EXPECT_LT(piped.at("stall_us_per_token"), 0.01 * one.at("stall_us_per_token"));
  EXPECT_LT(four.at("controller_queue_delay_us_mean"), one.at("controller_queue_delay_us_mean"));
  EXPECT_LT(piped.at("controller_queue_delay_us_mean"), one.at("controller_queue_delay_us_mean"));
  EXPECT_LT(four.at("tpot_ms_mean"), one.at("tpot_ms_mean"));
  // The same decisions either way. Utilisation, by hand: one server is busy the whole run (its
  // queue reaches past the end); four take decisions x 30 us over four times the run.
  EXPECT_EQ(one.at("controller_decisions"), four.at("controller_decisions"));
  EXPECT_GT(one.at("controller_utilization"), 0.99);
  EXPECT_LE(one.at("controller_utilization"), 1.0);
  EXPECT_NEAR(four.at("controller_utilization"),
              four.at("controller_decisions") * 30e-6 / (4 * four.at("sim_time_s")), 1e-3);
}

TEST(Control, BadControllerSettingsAreRefused) {
  expect_refused(run, {
                          {"--set policy.orchestration.decision_servers=0",
                           "policy.orchestration.decision_servers"},
                          {"--set policy.orchestration.decision_latency_ps=1000000"
                           " --set policy.orchestration.decision_interval_ps=2000000",
                           "policy.orchestration.decision_interval_ps"},
                          {"--set policy.orchestration.decision_interval_ps=0",
                           "policy.orchestration.decision_interval_ps"},
                      });
}

}  // namespace
}  // namespace tiersim
