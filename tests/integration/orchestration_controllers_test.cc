// Movement controllers built from their parts, in whole runs: each parts preset against its
// hand-derived figures, every part of a decision, telemetry reads and doorbells over a modelled
// PCIe link, active and idle power, an engine's tables and area, several controllers with an
// ownership map, a controller shared by peers, and the refusals of bad parts and ownership.
#include "tests/integration/orchestration_support.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// Every figure but the wall time equal.
void expect_same_run(const std::map<std::string, double>& a, const std::map<std::string, double>& b,
                     const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [k, v] : a) {
    if (k.find("wall") != std::string::npos) continue;
    ASSERT_EQ(b.count(k), 1u) << what << ": " << k;
    EXPECT_EQ(v, b.at(k)) << what << ": " << k;
  }
}

// Each parts preset gives the figures its header derives by hand: the run equals, figure for
// figure, the placement preset with those figures set explicitly.
TEST(Control, PartsPresetsGiveTheFiguresDerivedByHand) {
  const struct {
    const char* parts;
    std::string by_hand;
  } cases[] = {
      // 2 x 1 us + 20,000 / (3 GHz x 1) = 6,666,667 ps + 1 us + 0.5 us; notification 5 + 5 us.
      {"controllers/parts/host_loop.textproto",
       test::preset("controllers/host_cpu.textproto") +
           " --set policy.orchestration.decision_latency_ps=10166667"
           " --set policy.orchestration.decision_jitter.uniform.min_ps=0"
           " --set policy.orchestration.decision_jitter.uniform.max_ps=20000000"
           " --set policy.orchestration.notification_latency_ps=10000000"
           " --set policy.orchestration.controller_power_w=10"},
      // 1 us + 5,000 / (2.5 GHz x 1.5) = 1,333,333 ps + 0.2 us; 16 cores; 0.5 us + 2 us / 2.
      {"controllers/parts/dpu_bluefield3.textproto",
       test::preset("controllers/dpu.textproto") +
           " --set policy.orchestration.decision_latency_ps=2533333"
           " --set policy.orchestration.decision_jitter.uniform.min_ps=0"
           " --set policy.orchestration.decision_jitter.uniform.max_ps=2000000"
           " --set policy.orchestration.decision_servers=16"
           " --set policy.orchestration.notification_latency_ps=1500000"
           " --set policy.orchestration.controller_power_w=40"},
      // 64 cycles at 1.5 GHz = 42,667 ps + 2 x 30 ns + 100 ns; every 4 cycles = 2,667 ps.
      {"controllers/parts/engine.textproto",
       test::preset("controllers/on_accelerator.textproto") +
           " --set policy.orchestration.decision_latency_ps=202667"
           " --set policy.orchestration.decision_servers=4"
           " --set policy.orchestration.decision_interval_ps=2667"
           " --set policy.orchestration.notification_latency_ps=300000"
           " --set policy.orchestration.controller_power_w=2"},
  };
  for (const auto& c : cases) {
    auto parts = page_cache_1b(" --set policy.orchestration+=@" + test::preset(c.parts));
    const auto by_hand = page_cache_1b(c.by_hand);
    // Only the engine has a die area: 1 MiB of tables at 0.25 mm2/MiB + 0.14 mm2 of logic.
    if (std::string(c.parts) == "controllers/parts/engine.textproto") {
      EXPECT_NEAR(parts["controller_area_mm2"], 0.39, 1e-12);
      parts.erase("controller_area_mm2");
    }
    EXPECT_EQ(by_hand.count("controller_area_mm2"), 0u);
    ASSERT_FALSE(parts.count("exit") || by_hand.count("exit")) << c.parts;
    std::cout << c.parts << ": TPOT " << parts.at("tpot_ms_mean") << " ms, control stall "
              << parts.at("stall_control_us_per_token") << " us/token\n";
    EXPECT_GT(parts.at("controller_decisions_critical"), 500) << c.parts;
    expect_same_run(parts, by_hand, c.parts);
  }
}

// Every part of a decision counts: a host loop of 3,000,000 instructions at 3 GHz x 1 (1 ms)
// plus two telemetry reads of 50 us, then of 100 us, takes 1.1 ms, then 1.2 ms per decision;
// above a tile's transfer, n misses cost n decisions of control stall (derived above).
TEST(Control, EveryPartOfADecisionCounts) {
  const std::string host =
      " --set policy.orchestration.controller_parts.host_loop.cores=1"
      " --set policy.orchestration.controller_parts.host_loop.core_ghz=3"
      " --set policy.orchestration.controller_parts.host_loop.instructions_per_cycle=1"
      " --set policy.orchestration.controller_parts.host_loop.instructions_per_decision=3000000"
      " --set policy.orchestration.controller_parts.host_loop.telemetry_reads=2"
      " --set policy.orchestration.controller_parts.host_loop.interrupt_ps=5000000";
  const auto at50 = page_cache_1b(host +
                                  " --set policy.orchestration.controller_parts.host_loop."
                                  "pcie_read_round_trip_ps=50000000");
  const auto at100 = page_cache_1b(host +
                                   " --set policy.orchestration.controller_parts.host_loop."
                                   "pcie_read_round_trip_ps=100000000");
  ASSERT_FALSE(at50.count("exit") || at100.count("exit"));
  const double misses = at50.at("controller_decisions_critical"), tokens = 2;
  EXPECT_EQ(misses, at100.at("controller_decisions_critical"));
  EXPECT_NEAR(at50.at("stall_control_us_per_token"), misses * 1100.0 / tokens,
              1e-9 * misses * 1100.0);
  EXPECT_NEAR(at100.at("stall_control_us_per_token"), misses * 1200.0 / tokens,
              1e-9 * misses * 1200.0);
  // One core: it is the controller's only server, and its power (none given) is none.
  EXPECT_NEAR(at100.at("controller_utilization"), misses * 1.2e-3 / at100.at("sim_time_s"), 1e-6);
}

// Telemetry reads and doorbells over the modelled PCIe link (host_loop.pcie_link): the host
// loop of EveryPartOfADecisionCounts (two reads of 50 us, 1 ms of instructions) plus a doorbell
// of 0.5 us, on Llama-3.2-1B whose 8,192-token prompt is prefilled. With 1.1 ms decisions the
// controller is the bottleneck, so every wait the link adds to a decision is control stall: the
// stall grows by exactly the link's waits (controller_pcie_wait_us_per_token). With the KV in
// HBM nothing the accelerator writes crosses the link, and a read's packets wait at most for a
// 256-byte packet on the wire (4.78 ns at 53.6 GB/s); with the KV at home in host DDR the
// prompt's KV (256 MiB of posted writes) holds the reads' completions back.
TEST(Control, TelemetryReadsWaitBehindThePostedWritesOnTheirPcieLink) {
  const std::string p = " --set policy.orchestration.controller_parts.";
  const std::string host =
      p + "host_loop.cores=1" + p + "host_loop.core_ghz=3" + p +
      "host_loop.instructions_per_cycle=1" + p + "host_loop.instructions_per_decision=3000000" + p +
      "host_loop.telemetry_reads=2" + p + "host_loop.pcie_read_round_trip_ps=50000000" + p +
      "host_loop.doorbell_writes=1" + p + "host_loop.doorbell_write_ps=500000" + p +
      "host_loop.interrupt_ps=5000000" +
      " --set workload.decode.prefill=true"
      " --set workload.decode.context_tokens=8192";
  const std::string link = p + "host_loop.pcie_link=dma_host_ddr";
  const std::string kv_home = " --set policy.orchestration.kv_resident=false";
  const auto figures = page_cache_1b(host);
  const auto hbm = page_cache_1b(host + link);
  const auto figures_home = page_cache_1b(host + kv_home);
  const auto home = page_cache_1b(host + link + kv_home);
  ASSERT_FALSE(figures.count("exit") || hbm.count("exit") || figures_home.count("exit") ||
               home.count("exit"));
  std::cout << "read wait: KV in HBM " << hbm.at("controller_telemetry_read_wait_us_mean")
            << " us, KV at home " << home.at("controller_telemetry_read_wait_us_mean")
            << " us; stall " << figures_home.at("stall_control_us_per_token") << " -> "
            << home.at("stall_control_us_per_token") << " us/token\n";
  // Without pcie_link: no link items.
  EXPECT_EQ(figures.count("controller_telemetry_reads"), 0u);
  for (const auto* m : {&hbm, &home}) {
    EXPECT_EQ(m->at("controller_telemetry_reads"), 2 * m->at("controller_decisions"));
  }
  // The stall grows by the link's waits, exactly (to the summary's rounding).
  auto added = [](const std::map<std::string, double>& a, const std::map<std::string, double>& b) {
    return b.at("stall_control_us_per_token") - a.at("stall_control_us_per_token");
  };
  EXPECT_NEAR(added(figures, hbm), hbm.at("controller_pcie_wait_us_per_token"),
              1e-6 * hbm.at("stall_control_us_per_token"));
  EXPECT_NEAR(added(figures_home, home), home.at("controller_pcie_wait_us_per_token"),
              1e-6 * home.at("stall_control_us_per_token"));
  // KV in HBM: the header-slot wait only, at most one packet per read and doorbell.
  const double packet_us = 256.0 / (16 * 32e9 / 8 * 0.984615 * 0.85) * 1e6;
  EXPECT_LE(hbm.at("controller_telemetry_read_wait_us_mean"), packet_us);
  EXPECT_LE(hbm.at("controller_doorbell_wait_us_mean"), packet_us);
  // KV at home: completions wait behind the prompt's KV writes, far beyond a packet.
  EXPECT_GT(home.at("controller_telemetry_read_wait_us_mean"), 100 * packet_us);
  EXPECT_GT(home.at("prefill_s"), figures_home.at("prefill_s"));
  // A posted queue of 16 KiB in the accelerator's port bounds each completion's wait to its
  // drain (plus a packet).
  const auto queued =
      page_cache_1b(host + link + kv_home + p + "host_loop.pcie_posted_queue_bytes=16384");
  ASSERT_FALSE(queued.count("exit"));
  EXPECT_LE(queued.at("controller_telemetry_read_wait_us_mean"), 65 * packet_us);
  EXPECT_GT(queued.at("controller_telemetry_read_wait_us_mean"), packet_us);
  EXPECT_LT(queued.at("controller_telemetry_read_wait_us_mean"),
            home.at("controller_telemetry_read_wait_us_mean"));
  // The same host loop as a further controller owning the page cache, beside the engine: its
  // reads meet the same waits.
  const auto owned = page_cache_1b(
      test::preset("controllers/on_accelerator.textproto") +
      " --set 'policy.orchestration.controllers[+]={name:\"loop\" owns:[PAGE_CACHE] "
      "parts{host_loop{cores:1 core_ghz:3 instructions_per_cycle:1 "
      "instructions_per_decision:3000000 telemetry_reads:2 pcie_read_round_trip_ps:50000000 "
      "doorbell_writes:1 doorbell_write_ps:500000 interrupt_ps:5000000 "
      "pcie_link:\"dma_host_ddr\"}}}' --set workload.decode.prefill=true"
      " --set workload.decode.context_tokens=8192" +
      kv_home);
  ASSERT_FALSE(owned.count("exit"));
  EXPECT_EQ(owned.at("controller_telemetry_reads"), 2 * owned.at("controller_loop_decisions"));
  EXPECT_EQ(owned.at("controller_pcie_wait_us_per_token"),
            home.at("controller_pcie_wait_us_per_token"));
  EXPECT_EQ(owned.at("stall_control_us_per_token"), home.at("stall_control_us_per_token"));
  // A DPU reading across the same link: its reads are timed the same way.
  const auto dpu = page_cache_1b(" --set policy.orchestration+=@" +
                                 test::preset("controllers/parts/dpu_bluefield3.textproto") + p +
                                 "dpu.pcie_link=dma_host_ddr --set workload.decode.prefill=true"
                                 " --set workload.decode.context_tokens=8192" +
                                 kv_home);
  ASSERT_FALSE(dpu.count("exit"));
  EXPECT_EQ(dpu.at("controller_telemetry_reads"), dpu.at("controller_decisions"));
  EXPECT_GT(dpu.at("controller_telemetry_read_wait_us_mean"), 100 * packet_us);
  EXPECT_EQ(dpu.count("controller_doorbell_wait_us_mean"), 0u);  // a DPU rings no doorbell
  // With a posted queue of its own port, as the host loop's.
  const auto dpu_queued =
      page_cache_1b(" --set policy.orchestration+=@" +
                    test::preset("controllers/parts/dpu_bluefield3.textproto") + p +
                    "dpu.pcie_link=dma_host_ddr" + p +
                    "dpu.pcie_posted_queue_bytes=16384 --set workload.decode.prefill=true"
                    " --set workload.decode.context_tokens=8192" +
                    kv_home);
  ASSERT_FALSE(dpu_queued.count("exit"));
  EXPECT_LE(dpu_queued.at("controller_telemetry_read_wait_us_mean"), 65 * packet_us);
}

// The link is the accelerator's DMA engine's even when the orchestration's copies run on
// another engine: a second engine, on links of its own to HBM and host DDR, moves the layer
// prefetch's copies, and the host loop still reads across the compute engine's PCIe link. An
// engine with no path to the fast memory is refused (it failed inside the run before).
TEST(Control, TelemetryReadsCrossTheAcceleratorsLinkWhateverEngineCopies) {
  const std::string second =
      " --set 'system.components[+]={name:\"dma2\" dma{bandwidth_bytes_per_s:50e9 "
      "setup_latency_ps:1000000}}'";
  const std::string links =
      " --set 'system.links[+]={name:\"dma2_hbm\" from:\"dma2\" to:\"hbm\" latency_ps:0}'"
      " --set 'system.links[+]={name:\"dma2_host\" from:\"dma2\" to:\"host_ddr\" "
      "latency_ps:0}'";
  const std::string loop =
      " --set policy.orchestration+=@" + test::preset("controllers/parts/host_loop.textproto") +
      " --set policy.orchestration.controller_parts.host_loop.pcie_link=dma_host_ddr"
      " --set policy.orchestration.dma=dma2";
  const auto m = run(second + links + loop);
  ASSERT_FALSE(m.count("exit"));
  EXPECT_GT(m.at("dma2_prefetch_bytes_per_token"), 0);  // the second engine copies
  // The DPU buffer's engine must reach the buffer and the weights' home too.
  std::string err;
  const auto buffer = run_presets({"hardware/h100_sxm", "hardware/fragments/h100_dpu_nvme",
                                   "models/llama3_70b", "studies/dpu_buffer_70b_tp8"},
                                  second + " --set policy.orchestration.dpu_buffer.dma=dma2", &err);
  EXPECT_EQ(buffer.count("exit") ? buffer.at("exit") : 0, 2);
  EXPECT_NE(err.find("policy.orchestration.dpu_buffer.dma: \"dma2\" has no path of links to the "
                     "buffer \"dpu_ddr\""),
            std::string::npos)
      << err;
  EXPECT_GT(m.at("controller_decisions"), 0);
  EXPECT_EQ(m.at("controller_telemetry_reads"), 2 * m.at("controller_decisions"));
  expect_refused(
      run, {{second + loop,
             "policy.orchestration.dma: \"dma2\" has no path of links to the fast memory \"hbm\""},
            // A path to the fast memory but not to the weights' home.
            {second +
                 " --set 'system.links[+]={name:\"dma2_hbm\" from:\"dma2\" to:\"hbm\" "
                 "latency_ps:0}'" +
                 loop,
             "policy.orchestration.dma: \"dma2\" has no path of links to the weights' home "
             "\"host_ddr\""},
            // A serial link, but not the accelerator's engine's.
            {second +
                 " --set 'system.links[+]={name:\"dma2_host\" from:\"dma2\" to:\"host_ddr\" "
                 "latency_ps:0 serial{lanes:16 lane_rate_gbps:32}}'" +
                 loop +
                 " --set policy.orchestration.dma=!clear"
                 " --set policy.orchestration.controller_parts.host_loop.pcie_link=dma2_host",
             "policy.orchestration.controller_parts.host_loop.pcie_link: link \"dma2_host\" runs "
             "from \"dma2\""}});
}

// Controller power, active and idle: each decision server draws 1/servers of the idle power
// all the time and 1/servers of (power - idle power) more while it decides. The host loop of
// EveryPartOfADecisionCounts (1.2 ms a decision, misses only) at 10 W a core while deciding and
// 2 W idle: E = T x cores x 2 W + misses x 1.2 ms x 8 W on one core; on two cores the same
// decisions spread over both, each core's difference weighing 8 W (cores x 8 W / cores).
TEST(Control, ControllerPowerIsIdleAllTheTimeAndActiveWhileDeciding) {
  const std::string p = " --set policy.orchestration.controller_parts.host_loop.";
  auto host = [&](uint32_t cores, const std::string& idle) {
    return p + "cores=" + std::to_string(cores) + p + "core_ghz=3" + p +
           "instructions_per_cycle=1" + p + "instructions_per_decision=3000000" + p +
           "telemetry_reads=2" + p + "pcie_read_round_trip_ps=100000000" + p +
           "interrupt_ps=5000000" + p + "watts_per_core=10" + idle;
  };
  const auto constant = page_cache_1b(host(1, ""));
  const auto one = page_cache_1b(host(1, p + "idle_watts_per_core=2"));
  const auto two = page_cache_1b(host(2, p + "idle_watts_per_core=2"));
  ASSERT_FALSE(constant.count("exit") || one.count("exit") || two.count("exit"));
  const double misses = one.at("controller_decisions_critical");
  const double busy_s = misses * 1.2e-3;
  // Unset idle power: 10 W for the whole run, as before.
  EXPECT_NEAR(constant.at("energy_j_static_controller"), 10 * constant.at("sim_time_s"), 1e-9);
  // The same decisions and time (the idle power changes no timing).
  EXPECT_EQ(one.at("sim_time_s"), constant.at("sim_time_s"));
  const double t1 = one.at("sim_time_s");
  EXPECT_NEAR(one.at("energy_j_static_controller"), 2 * t1 + 8 * busy_s, 1e-9 * t1);
  EXPECT_NEAR(one.at("power_w_static_controller"), 2 + 8 * busy_s / t1, 1e-9);
  EXPECT_GT(busy_s / t1, 0.5);  // the controller is busy most of the run: the split matters
  // Two cores: idle 4 W; the busy core-seconds are the decisions' time, at 8 W each.
  const double t2 = two.at("sim_time_s");
  EXPECT_EQ(two.at("controller_decisions_critical"), misses);
  EXPECT_NEAR(two.at("energy_j_static_controller"), 4 * t2 + 8 * busy_s, 1e-9 * t2);
  // The figures without parts: controller_power_w while deciding, the idle power otherwise.
  const auto figures = page_cache_1b(host_fixed(1'200'000'000) +
                                     " --set policy.orchestration.controller_power_w=10"
                                     " --set policy.orchestration.controller_idle_power_w=2");
  ASSERT_FALSE(figures.count("exit"));
  const double tf = figures.at("sim_time_s");
  EXPECT_NEAR(figures.at("energy_j_static_controller"),
              2 * tf + 8 * figures.at("controller_decisions") * 1.2e-3, 1e-9 * tf);
}

TEST(Control, BadIdlePowersAreRefused) {
  const std::string host =
      " --set policy.orchestration+=@" + test::preset("controllers/parts/host_loop.textproto");
  const std::string p = " --set policy.orchestration.controller_parts.";
  expect_refused(
      run,
      {
          {host + p + "host_loop.idle_watts_per_core=11",
           "policy.orchestration.controller_parts.host_loop.idle_watts_per_core: lies above "
           "watts_per_core"},
          {" --set policy.orchestration+=@" + test::preset("controllers/parts/engine.textproto") +
               p + "engine.idle_power_w=-1",
           "policy.orchestration.controller_parts.engine.idle_power_w"},
          {host + " --set policy.orchestration.controller_idle_power_w=1",
           "policy.orchestration.controller_idle_power_w: given by controller_parts"},
          {" --set policy.orchestration.controller_power_w=1"
           " --set policy.orchestration.controller_idle_power_w=2",
           "policy.orchestration.controller_idle_power_w: lies above controller_power_w"},
      });
}

// An engine's parts as a message literal (configs/controllers/parts/engine.textproto's).
const std::string kEngineParts =
    "engine{units:4 clock_ghz:1.5 pipeline_cycles:64 initiation_interval_cycles:4 map_lookups:2 "
    "sram_lookup_ps:30000 descriptor_issue_ps:100000 doorbell_ps:300000 power_w:2}";

std::string owned_by_engine(const std::string& owns) {
  return " --set 'policy.orchestration.controllers[+]={name:\"engine\" owns:[" + owns + "] parts{" +
         kEngineParts + "}}'";
}

// An owned engine's idle power, pipelined: its busy time is its issue slots (2,667 ps a
// decision), each of its 4 units drawing 1/4 of the 1.5 W difference while it issues.
TEST(Control, AnOwnedPipelinedEnginesIdlePowerCountsItsIssueSlots) {
  const auto r = page_cache_1b(
      host_fixed(1'000'000'000) +
      " --set 'policy.orchestration.controllers[+]={name:\"engine\" owns:[PAGE_CACHE] parts{" +
      kEngineParts.substr(0, kEngineParts.size() - 1) + " idle_power_w:0.5}}}'");
  ASSERT_FALSE(r.count("exit"));
  const double t = r.at("sim_time_s"), n = r.at("controller_engine_decisions");
  const double busy_s = n * 2667e-12;  // server-seconds
  EXPECT_GT(n, 500);
  EXPECT_NEAR(r.at("controller_engine_utilization"), busy_s / (4 * t), 1e-12);
  // The host loop (no power given) draws nothing: the engine's 0.5 W all the time, 1.5 W / 4
  // per unit while it issues.
  EXPECT_NEAR(r.at("energy_j_static_controller"), 0.5 * t + 1.5 * busy_s / 4, 1e-12);
}

// An engine's tables hold the residency map when the engine is the orchestration's own
// controller: 1 MiB holds floor(8 Mib / 141) = 59,493 entries of 141 bits, not one more.
TEST(Control, AnEnginesTablesHoldItsResidencyMap) {
  const std::string engine =
      " --set policy.orchestration+=@" + test::preset("controllers/parts/engine.textproto");
  const std::string map =
      " --set 'policy.orchestration.residency_map={software_latency_ps:1000000 entries:";
  std::string err;
  const auto fits = run(engine + map + "59493}'", &err);
  EXPECT_EQ(fits.count("exit"), 0u) << err;
  EXPECT_NEAR(fits.at("controller_area_mm2"), 0.39, 1e-12);
  EXPECT_EQ(fits.at("residency_map_sram_bytes"), 1048565.0);  // ceil(59,493 x 141 / 8)
  const std::string p = " --set policy.orchestration.controller_parts.engine.";
  expect_refused(
      run, {
               {engine + map + "59494}'",
                "policy.orchestration.residency_map.entries: 59494 entries of 141 bits (1048582 "
                "bytes) do not fit the engine's tables"},
               {engine + p + "sram_mm2_per_mib=!clear",
                "policy.orchestration.controller_parts.engine.sram_mm2_per_mib: required"},
               {engine + p + "table_bytes=!clear",
                "policy.orchestration.controller_parts.engine.table_bytes: required with "
                "sram_mm2_per_mib"},
               {engine + p + "logic_mm2=-1",
                "policy.orchestration.controller_parts.engine.logic_mm2: must lie in"},
           });
  // Without table_bytes the map is not checked against the tables, and only the logic has an
  // area; without either, no area is reported.
  const auto unbounded = run(
      engine + p + "table_bytes=!clear" + p + "sram_mm2_per_mib=!clear" + map + "100000}'", &err);
  EXPECT_EQ(unbounded.count("exit"), 0u) << err;
  EXPECT_NEAR(unbounded.at("controller_area_mm2"), 0.14, 1e-12);
  const auto no_area = run(
      engine + p + "table_bytes=!clear" + p + "sram_mm2_per_mib=!clear" + p + "logic_mm2=!clear",
      &err);
  EXPECT_EQ(no_area.count("exit"), 0u) << err;
  EXPECT_EQ(no_area.count("controller_area_mm2"), 0u);
}

// The ownership map: the page cache owned by an on-accelerator engine beside a 1 ms host loop
// decides exactly as with the engine as the only controller (the page cache is the run's only
// decider): the same TPOT and control stall, the engine's decisions and utilisation the lone
// engine's, the host loop idle, and the powers summed (0 W + 2 W).
TEST(Control, AnOwnedMechanismDecidesOnItsOwnController) {
  const auto owned = page_cache_1b(host_fixed(1'000'000'000) + owned_by_engine("PAGE_CACHE"));
  const auto alone = page_cache_1b(" --set policy.orchestration+=@" +
                                   test::preset("controllers/parts/engine.textproto"));
  const auto host = page_cache_1b(host_fixed(1'000'000'000));
  ASSERT_FALSE(owned.count("exit") || alone.count("exit") || host.count("exit"));
  std::cout << "page cache owned by the engine beside a 1 ms host loop: TPOT "
            << owned.at("tpot_ms_mean") << " ms (engine alone " << alone.at("tpot_ms_mean")
            << ", host alone " << host.at("tpot_ms_mean") << ")\n";
  EXPECT_EQ(owned.at("tpot_ms_mean"), alone.at("tpot_ms_mean"));
  EXPECT_EQ(owned.at("stall_control_us_per_token"), alone.at("stall_control_us_per_token"));
  EXPECT_EQ(owned.at("controller_decisions"), alone.at("controller_decisions"));
  EXPECT_EQ(owned.at("controller_engine_decisions"), alone.at("controller_decisions"));
  EXPECT_EQ(owned.at("controller_engine_queue_delay_us_mean"),
            alone.at("controller_queue_delay_us_mean"));
  EXPECT_EQ(owned.at("controller_engine_utilization"), alone.at("controller_utilization"));
  EXPECT_EQ(owned.at("controller_utilization"), 0);
  EXPECT_EQ(owned.at("energy_j"), alone.at("energy_j"));
  EXPECT_LT(owned.at("tpot_ms_mean"), 0.5 * host.at("tpot_ms_mean"));
}

// The layer prefetch owned by the engine beside a host loop whose notification takes 5 ms: its
// copies' consumers are told by the engine's doorbell, so the run is the engine-alone run (the
// host loop's notification would make every staged layer wait 5 ms).
TEST(Control, AnOwnedMechanismsCopiesTakeItsControllersNotification) {
  auto prefetch_1b = [](const std::string& controller) {
    return run_presets(
        {"hardware/h100_sxm", "memory/ddr5_4800_8ch", "hardware/fragments/h100_weights_in_host_ddr",
         "models/llama3_2_1b", "studies/offload_prefetch_70b_tp8"},
        controller +
            " --set workload.parallelism.tensor_parallel=1"
            " --set workload.decode.decode_steps=2");
  };
  const std::string slow_host =
      host_fixed(1'000'000) + " --set policy.orchestration.notification_latency_ps=5000000000";
  const auto owned = prefetch_1b(slow_host + owned_by_engine("LAYER_PREFETCH"));
  const auto alone = prefetch_1b(" --set policy.orchestration+=@" +
                                 test::preset("controllers/parts/engine.textproto"));
  const auto host = prefetch_1b(slow_host);
  ASSERT_FALSE(owned.count("exit") || alone.count("exit") || host.count("exit"));
  std::cout << "layer prefetch owned by the engine beside a host loop notifying in 5 ms: TPOT "
            << owned.at("tpot_ms_mean") << " ms (engine alone " << alone.at("tpot_ms_mean")
            << ", host alone " << host.at("tpot_ms_mean") << ")\n";
  EXPECT_GT(owned.at("controller_engine_decisions"), 0);
  EXPECT_EQ(owned.at("controller_engine_decisions"), owned.at("controller_decisions"));
  EXPECT_EQ(owned.at("tpot_ms_mean"), alone.at("tpot_ms_mean"));
  EXPECT_EQ(owned.at("stall_notification_us_per_token"),
            alone.at("stall_notification_us_per_token"));
  EXPECT_GT(host.at("stall_notification_us_per_token"),
            100 * owned.at("stall_notification_us_per_token"));
}

// A controller shared by symmetric peers (a pool's movement engine, one per pod): each of this
// accelerator's decisions holds the server m = 1 + (sharers - 1) x peer_load times its own
// 1 ms, its latency unchanged. The page cache's n misses keep the one server busy back to back
// (utilisation ~1), so the last decision is taken (n - 1) m ms + 1 ms after the first is asked:
// run times differ by (n - 1)(m - m') ms between shares. Power: 10 W / sharers, all run long.
TEST(Control, ASharedControllerHoldsEachDecisionForItsPeersToo) {
  auto shared = [](const std::string& share, const std::string& idle = "") {
    return page_cache_1b(
        test::preset("controllers/on_accelerator.textproto") +
        " --set 'policy.orchestration.controllers[+]={name:\"pool\" owns:[PAGE_CACHE] "
        "parts{host_loop{cores:1 core_ghz:3 instructions_per_cycle:1 "
        "instructions_per_decision:3000000 interrupt_ps:5000000 watts_per_core:10" +
        idle + "}} " + share + "}'");
  };
  const auto two = shared("sharers:2"), half = shared("sharers:2 peer_load:0.5"),
             four = shared("sharers:4");
  ASSERT_FALSE(two.count("exit") || half.count("exit") || four.count("exit"));
  const double n = two.at("controller_decisions_critical");
  EXPECT_GT(n, 500);
  EXPECT_EQ(four.at("controller_decisions_critical"), n);
  EXPECT_NEAR(four.at("sim_time_s") - two.at("sim_time_s"), (n - 1) * 2 * 1e-3, 1e-9);
  EXPECT_NEAR(two.at("sim_time_s") - half.at("sim_time_s"), (n - 1) * 0.5 * 1e-3, 1e-9);
  // The utilisation counts the peers' decisions: the server is busy all along (which the
  // derivation needs, the 1.5 share included).
  EXPECT_GT(four.at("controller_pool_utilization"), 0.999);
  EXPECT_GT(half.at("controller_pool_utilization"), 0.998);
  EXPECT_NEAR(two.at("energy_j_static_controller"), 5 * two.at("sim_time_s"), 1e-9);
  EXPECT_NEAR(four.at("energy_j_static_controller"), 2.5 * four.at("sim_time_s"), 1e-9);
  // With an idle power: 1/sharers of it all run long, and the active increment of this
  // accelerator's own decisions (n x 1 ms at 8 W), whatever the peers' load.
  const auto idle = shared("sharers:2 peer_load:0.5", " idle_watts_per_core:2"),
             idle_free = shared("sharers:2 peer_load:0", " idle_watts_per_core:2");
  ASSERT_FALSE(idle.count("exit") || idle_free.count("exit"));
  for (const auto* r : {&idle, &idle_free}) {
    EXPECT_NEAR(r->at("energy_j_static_controller"), 1 * r->at("sim_time_s") + 8 * n * 1e-3,
                1e-9 * r->at("sim_time_s"));
  }
  // Not shared (sharers 1) is the plain owned controller.
  const auto one = shared("sharers:1"), plain = shared("");
  ASSERT_FALSE(one.count("exit") || plain.count("exit"));
  expect_same_run(one, plain, "sharers 1");
}

TEST(Control, BadOwnershipIsRefused) {
  const std::string page_cache =
      " --set policy.orchestration.prefetch_layers=0 --set policy.orchestration.resident_fraction=0"
      " --set policy.orchestration.replacement=REPLACEMENT_LRU"
      " --set policy.orchestration.cache_bytes=4000000000";
  const std::string c = "policy.orchestration.controllers[0].";
  expect_refused(run, {
                          // Owning what the run does not configure (no page cache here).
                          {owned_by_engine("PAGE_CACHE"), c + "owns[0]"},
                          // A mechanism owned twice.
                          {owned_by_engine("LAYER_PREFETCH") +
                               " --set 'policy.orchestration.controllers[+]={name:\"dpu\" "
                               "owns:[LAYER_PREFETCH] parts{" +
                               kEngineParts + "}}'",
                           "policy.orchestration.controllers[1].owns[0]"},
                          // Names and parts.
                          {owned_by_engine("LAYER_PREFETCH") +
                               " --set policy.orchestration.controllers[0].name=Big_One",
                           c + "name"},
                          {owned_by_engine("LAYER_PREFETCH") +
                               " --set policy.orchestration.controllers[0].parts=!clear",
                           c + "parts"},
                          {owned_by_engine("LAYER_PREFETCH") +
                               " --set policy.orchestration.controllers[0].parts.engine.units=0",
                           c + "parts.engine.units"},
                          {page_cache + " --set 'policy.orchestration.controllers[+]={name:\"x\"}'",
                           c + "owns"},
                          // Sharing out of range.
                          {owned_by_engine("LAYER_PREFETCH") +
                               " --set policy.orchestration.controllers[0].sharers=0",
                           c + "sharers: must be in [1, 4096]"},
                          {owned_by_engine("LAYER_PREFETCH") +
                               " --set policy.orchestration.controllers[0].peer_load=1.5",
                           c + "peer_load: must be in [0, 1]"},
                          {owned_by_engine("LAYER_PREFETCH") +
                               " --set policy.orchestration.controllers[0].peer_load=0.5",
                           c + "peer_load: the load of the other sharers: needs sharers above 1"},
                      });
}

TEST(Control, BadControllerPartsAreRefused) {
  auto parts = [](const char* preset) {
    return " --set policy.orchestration+=@" + test::preset(preset);
  };
  const std::string host = parts("controllers/parts/host_loop.textproto");
  const std::string p = " --set policy.orchestration.controller_parts.";
  expect_refused(
      run,
      {
          // A figure the parts give, also set.
          {host + " --set policy.orchestration.decision_latency_ps=1000",
           "policy.orchestration.decision_latency_ps"},
          {host + " --set policy.orchestration.controller_power_w=5",
           "policy.orchestration.controller_power_w"},
          // A placement or notification the parts are not.
          {host + " --set policy.orchestration.controller=DPU", "policy.orchestration.controller"},
          {host + " --set policy.orchestration.notification=DOORBELL",
           "policy.orchestration.notification"},
          // Parts out of range or missing.
          {host + p + "host_loop.cores=0", "policy.orchestration.controller_parts.host_loop.cores"},
          {host + p + "host_loop.core_ghz=0",
           "policy.orchestration.controller_parts.host_loop.core_ghz"},
          {host + p + "host_loop.pcie_read_round_trip_ps=!clear",
           "policy.orchestration.controller_parts.host_loop."
           "pcie_read_round_trip_ps"},
          {host + p + "host_loop.syscall_ps=2000000000000",
           "policy.orchestration.controller_parts.host_loop.syscall_ps"},
          // Sums beyond bounds: a decision of more than 1 s, 1 MW of power.
          {host + p + "host_loop.core_ghz=1e-15",
           "policy.orchestration.controller_parts.host_loop: a decision takes"},
          {host + p + "host_loop.watts_per_core=1e308",
           "policy.orchestration.controller_parts.host_loop: the controller's power"},
          {parts("controllers/parts/engine.textproto") + p + "engine.initiation_interval_cycles=65",
           "policy.orchestration.controller_parts.engine."
           "initiation_interval_cycles"},
          {parts("controllers/parts/dpu_bluefield3.textproto") + p + "dpu.poll_interval_ps=!clear",
           "policy.orchestration.controller_parts.dpu.poll_interval_ps"},
          // The PCIe link of the reads: a link, with a serial model, from the accelerator's DMA
          // engine, that something crosses.
          {host + p + "host_loop.pcie_link=nope",
           "policy.orchestration.controller_parts.host_loop.pcie_link: no system link"},
          {host + p + "host_loop.pcie_link=dma_hbm",
           "policy.orchestration.controller_parts.host_loop.pcie_link: link \"dma_hbm\" has no "
           "serial model"},
          {host + p + "host_loop.pcie_link=dma_host_ddr" + p + "host_loop.telemetry_reads=0" + p +
               "host_loop.doorbell_writes=0",
           "policy.orchestration.controller_parts.host_loop.pcie_link: nothing crosses it"},
          {host + p + "host_loop.pcie_posted_queue_bytes=4096",
           "policy.orchestration.controller_parts.host_loop.pcie_posted_queue_bytes: needs "
           "pcie_link"},
          {host + p + "host_loop.pcie_link=dma_host_ddr" + p +
               "host_loop.pcie_posted_queue_bytes=0",
           "policy.orchestration.controller_parts.host_loop.pcie_posted_queue_bytes: must be in"},
          {host + p + "host_loop.pcie_link=dma_host_ddr" + p +
               "host_loop.pcie_posted_queue_bytes=1073741825",
           "policy.orchestration.controller_parts.host_loop.pcie_posted_queue_bytes: must be in"},
          {host + p + "host_loop.pcie_link=dma_host_ddr" + p + "host_loop.telemetry_reads=0" + p +
               "host_loop.pcie_posted_queue_bytes=4096",
           "policy.orchestration.controller_parts.host_loop.pcie_posted_queue_bytes: bounds"},
          {parts("controllers/parts/dpu_bluefield3.textproto") + p + "dpu.pcie_link=nope",
           "policy.orchestration.controller_parts.dpu.pcie_link"},
          {parts("controllers/parts/dpu_bluefield3.textproto") + p + "dpu.pcie_link=dma_host_ddr" +
               p + "dpu.telemetry_reads=0",
           "policy.orchestration.controller_parts.dpu.pcie_link: nothing crosses it"},
          {" --set 'policy.orchestration.controllers[+]={name:\"loop\" owns:[LAYER_PREFETCH] "
           "parts{host_loop{cores:1 core_ghz:3 instructions_per_cycle:1 "
           "instructions_per_decision:1000 interrupt_ps:1 pcie_link:\"nope\"}}}'",
           "policy.orchestration.controllers[0].parts.host_loop.pcie_link"},
      });
}

}  // namespace
}  // namespace tiersim
