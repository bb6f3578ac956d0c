// Component tests of the fabric: CXL.mem expanders, pooled memory, switches, virtual channels and
// faults, on systems built by the run's builder (build_system) and driven by a DMA engine from an
// SC_METHOD (tests/support/fabric_system.h; the DMA engine's own tests are in dma_test.cc). Each
// test elaborates in a forked child, which prints its measurements; the parent checks them against
// hand-derived values and published figures.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "accelerators/dma_engine.h"
#include "fabric/switch.h"
#include "memory/cxl.h"
#include "models/config/loader.h"
#include "models/core/context.h"
#include "models/core/rng.h"
#include "models/run/simulation.h"
#include "tests/support/fabric_system.h"
#include "tests/support/fork_sim.h"
#include "tests/support/paths.h"

namespace tiersim {
namespace {

using namespace test;  // NOLINT: the host-side test system (tests/support/fabric_system.h)

// Hand formula pieces (configs/links/cxl2_x8, configs/memory/cxl_type3_gen5_x8, ddr5_4800_8ch).
const double kFlitPs = 68.0 / (31.5077e9 * 0.928) * 1e12;  // one 68-byte flit on x8 Gen5
const double kLinkOneWayPs = 25000 + kFlitPs;              // PHY + one flit
const double kMediaPs = 45000 + 64 / (38.4e9 * 0.8 / 2) * 1e12 + 15000;  // latency+line+miss
const double kLocalPs = 100000 + 64 / (38.4e9 * 0.8 / 2) * 1e12 + 15000;

// CXL idle load-to-use: direct attach is host port + link down + controller + media
// + link up, lands in the published 200-300 ns and 70-90 ns above local DDR5; each retimer adds
// its latency per crossing.
TEST(Cxl, IdleLatencyIsInThePublishedRangeAndAboveLocalDdr) {
  auto run = [](const std::string& serial_extra) {
    std::string l = link("dma_cxl", "dma", "cxl_mem", "cxl2_x8");
    l.insert(l.rfind("}") - 2, serial_extra);
    return parse(simulate(host_system(link("dma_local", "dma", "host_ddr") + l, {}),
                          [](Context& ctx, std::ostream& os) {
                            os << "local " << read64(ctx, kLocal) << " cxl " << read64(ctx, kCxl)
                               << "\n";
                          }));
  };
  const auto m = run("");
  const double expected = 45000 + kLinkOneWayPs + 40000 + kMediaPs + kLinkOneWayPs;
  std::cout << "local " << m.at("local") / 1e3 << " ns, CXL " << m.at("cxl") / 1e3 << " ns\n";
  EXPECT_NEAR(m.at("local"), kLocalPs, 2);
  EXPECT_NEAR(m.at("cxl"), expected, 3);
  EXPECT_GE(m.at("cxl"), 200000);
  EXPECT_LE(m.at("cxl"), 300000);
  EXPECT_GE(m.at("cxl") - m.at("local"), 70000);
  EXPECT_LE(m.at("cxl") - m.at("local"), 90000);
  // Two retimers of 30 ns each on the channel: +120 ns over the round trip.
  const auto r = run(" retimers: 2 retimer_latency_ps: 30000 ");
  EXPECT_NEAR(r.at("cxl") - m.at("cxl"), 4 * 30000, 3);
}

// Each switch hop adds its configured port-to-port latency each way plus the extra link's
// round trip (~115 ns with the presets, within the 100-120 ns per hop reported); over ideal
// wires a hop adds exactly twice the configured latency.
TEST(Cxl, EachSwitchHopAddsItsConfiguredLatency) {
  auto run = [](int hops, const std::string& serial) {
    std::string links;
    std::vector<std::string> frags;
    std::string prev = "dma";
    for (int h = 0; h < hops; ++h) {
      const std::string name = "sw" + std::to_string(h);
      frags.push_back(sw(name));
      links += link(prev + "_" + name, prev, name, "cxl2_x8");
      prev = name;
    }
    links += link(prev + "_cxl", prev, "cxl_mem", hops ? serial : "cxl2_x8");
    return parse(simulate(host_system(links, frags), [](Context& ctx, std::ostream& os) {
      os << "cxl " << read64(ctx, kCxl) << "\n";
    }))["cxl"];
  };
  const double direct = run(0, "");
  const double one = run(1, "cxl2_x8"), two = run(2, "cxl2_x8");
  const double hop = 2 * 30000 + 2 * kLinkOneWayPs;
  std::cout << "direct " << direct / 1e3 << " ns, one switch " << one / 1e3 << " ns, two "
            << two / 1e3 << " ns\n";
  EXPECT_NEAR(one - direct, hop, 3);
  EXPECT_NEAR(two - one, hop, 3);
  EXPECT_GE(one - direct, 100000);
  EXPECT_LE(one - direct, 120000);
  // Over an ideal wire from the switch to the device (so the hop is the switch alone), the
  // switch adds exactly 2 x 30 ns: compare with an ideal wire from the DMA engine instead.
  const double via_ideal = run(1, "");
  const double direct_ideal = [] {
    return parse(simulate(
        host_system(link("dma_cxl", "dma", "cxl_mem"), {}),
        [](Context& ctx, std::ostream& os) { os << "cxl " << read64(ctx, kCxl) << "\n"; }))["cxl"];
  }();
  // The DMA-to-switch link (cxl2_x8) stays: the difference is the switch plus that link.
  EXPECT_NEAR(via_ideal - direct_ideal, 2 * 30000 + 2 * kLinkOneWayPs, 3);
}

// Bandwidth by read/write mix on a Gen5 x8 expander: a closed loop of 32 transfers of 4 KiB in
// flight, reads and writes in a fixed pattern. Read-only bandwidth is below every mix (separate
// tracker pools and link directions), and each mix lands within 10% of the Intel/OCP demo's
// measurements (CacheLib wiki: 17.8, 23.6, 25.1, 27.2 GB/s at all-read, 3:1, 2:1, 1:1).
TEST(Cxl, ReadOnlyBandwidthIsBelowMixedReadWrite) {
  const config::Config cfg = host_system(link("dma_cxl", "dma", "cxl_mem", "cxl2_x8"), {});
  const std::string out = simulate(cfg, [](Context& ctx, std::ostream& os) {
    const uint64_t bytes = 4096;
    const int window = 32, n = 4096;
    uint64_t base = 0;
    TimePs t0 = 0;  // each mix starts when the previous one has drained
    for (int reads : {1, 3, 2, 1}) {
      const int writes = base == 0 ? 0 : 1;
      const int period = reads + writes;
      std::vector<TimePs> done(n);
      const TimePs first = t0;
      TimePs last = t0;
      for (int i = 0; i < n; ++i) {
        const TimePs start = i < window ? first : done[i - window];
        const bool write = (i % period) >= reads;
        const uint64_t cxl = kCxl + base + uint64_t(i) * bytes;
        const uint64_t sram = uint64_t(i % 1024) * bytes;
        done[i] = write ? dma(ctx).transfer(sram, cxl, bytes, intent(), start)
                        : dma(ctx).transfer(cxl, sram, bytes, intent(), start);
        last = std::max(last, done[i]);
      }
      os << "mix_" << reads << "_" << writes << " " << double(n) * bytes / ps_to_s(last - first)
         << "\n";
      base += uint64_t(n) * bytes;
      t0 = last;
    }
  });
  const auto m = parse(out);
  std::cout << out;
  const double read_only = m.at("mix_1_0");
  EXPECT_NEAR(read_only, 17.8e9, 17.8e9 * 0.10);
  EXPECT_NEAR(m.at("mix_3_1"), 23.6e9, 23.6e9 * 0.10);
  EXPECT_NEAR(m.at("mix_2_1"), 25.1e9, 25.1e9 * 0.10);
  EXPECT_NEAR(m.at("mix_1_1"), 27.2e9, 27.2e9 * 0.10);
  for (const char* mix : {"mix_3_1", "mix_2_1", "mix_1_1"})
    EXPECT_LT(read_only, m.at(mix)) << mix;
  // The tracker bound by hand: 25 x 64 B over 89.167 ns.
  const CxlParams p = CxlParams::from_config([&] {
    config::Config c;
    google::protobuf::TextFormat::ParseFromString(file_text("memory/cxl_type3_gen5_x8.textproto"),
                                                  &c);
    return c.system().components(0).cxl();
  }());
  EXPECT_EQ(p.tracker_hold_ps(), 40000u + 45000 + 4167);
  EXPECT_NEAR(read_only, p.tracker_bytes_per_s(25), p.tracker_bytes_per_s(25) * 0.01);
}

// Closed-loop read bandwidth: `window` reads of 4 KiB in flight from `base` into SRAM.
double read_bandwidth(const config::Config& cfg, uint64_t base, int window = 32) {
  const std::string out = simulate(cfg, [&](Context& ctx, std::ostream& os) {
    const uint64_t bytes = 4096;
    const int n = 4096;
    std::vector<TimePs> done(n);
    TimePs last = 0;
    for (int i = 0; i < n; ++i) {
      const TimePs start = i < window ? 0 : done[i - window];
      done[i] = dma(ctx).transfer(base + uint64_t(i) * bytes, uint64_t(i % 1024) * bytes, bytes,
                                  intent(), start);
      last = std::max(last, done[i]);
    }
    os << "bw " << double(n) * bytes / ps_to_s(last) << "\n";
  });
  if (parse(out).count("bw") == 0) ADD_FAILURE() << out;
  return parse(out).count("bw") ? parse(out).at("bw") : 0;
}

std::string memory_node(const std::string& fields) {
  return "system { pod { memory_nodes { " + fields + " } } }";
}

// A pod memory node's sharers take their share of the pool: the tracker bound, a shared link's
// rate and a shared switch's crossbar divide by m = 1 + (sharers - 1) x peer_load, by hand.
TEST(PoolMemory, SharersDivideTheTrackersTheSharedLinksAndTheSharedSwitches) {
  const std::string direct = link("dma_cxl", "dma", "cxl_mem", "cxl2_x8");
  const double alone = read_bandwidth(host_system(direct, {}), kCxl);
  const CxlParams p = [&] {
    config::Config c;
    google::protobuf::TextFormat::ParseFromString(file_text("memory/cxl_type3_gen5_x8.textproto"),
                                                  &c);
    return CxlParams::from_config(c.system().components(0).cxl());
  }();
  const double trackers = p.tracker_bytes_per_s(25);  // 17.9 GB/s
  EXPECT_NEAR(alone, trackers, trackers * 0.01);
  // Four lock-step sharers: a quarter of the trackers each.
  const double four =
      read_bandwidth(host_system(direct, {memory_node("memory: \"cxl_mem\" sharers: 4")}), kCxl);
  EXPECT_NEAR(four, trackers / 4, trackers / 4 * 0.01);
  // Peers at half this accelerator's load: m = 1 + 3 x 0.5 = 2.5.
  const double half = read_bandwidth(
      host_system(direct, {memory_node("memory: \"cxl_mem\" sharers: 4 peer_load: 0.5")}), kCxl);
  EXPECT_NEAR(half, trackers / 2.5, trackers / 2.5 * 0.01);
  // Idle peers: the whole device again (its capacity is still shared).
  const double idle = read_bandwidth(
      host_system(direct, {memory_node("memory: \"cxl_mem\" sharers: 4 peer_load: 0")}), kCxl);
  EXPECT_NEAR(idle, alone, alone * 1e-9);
  const std::string cap = test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    const config::Config cfg =
        host_system(direct, {memory_node("memory: \"cxl_mem\" sharers: 4 peer_load: 0")});
    Context ctx(cfg, 1);
    auto components = build_system(cfg, ctx);
    return std::to_string(dynamic_cast<CxlExpander*>(ctx.component("cxl_mem"))->capacity_bytes());
  });
  EXPECT_EQ(cap, std::to_string(uint64_t{137438953472} / 4));

  // Behind a switch, with a device fast enough (2000 trackers, 32 channels: ~359 and ~246 GB/s
  // a sharer) that the shared parts in front of it bind: the switch's x8 link to the device
  // (27.5 GB/s = 31.5 x 64/68 x 0.928) over 4, and a switch crossbar set to 8 GB/s, over 4.
  const std::string via_switch =
      link("dma_sw", "dma", "sw", "cxl2_x16") + link("sw_cxl", "sw", "cxl_mem", "cxl2_x8");
  const std::string fast =
      "system { components { name: \"cxl_mem\" cxl { read_trackers: 2000 media { channels: 32 } "
      "} } }";
  const double link_rate = 32e9 / 8 * 8 * 0.984615 * 64.0 / 68 * 0.928;
  const double shared_link = read_bandwidth(
      host_system(
          via_switch,
          {sw("sw"), fast, memory_node("memory: \"cxl_mem\" sharers: 4 shared_links: \"sw_cxl\"")}),
      kCxl);
  EXPECT_NEAR(shared_link, link_rate / 4, link_rate / 4 * 0.03);
  const std::string slow =
      "system { components { name: \"sw\" switch { crossbar_bytes_per_s: 8e9 } } }";
  const double crossbar = read_bandwidth(host_system(via_switch, {sw("sw"), fast, slow}), kCxl);
  EXPECT_NEAR(crossbar, 8e9, 8e9 * 0.03);
  const double crossbar4 = read_bandwidth(
      host_system(via_switch,
                  {sw("sw"), fast, slow,
                   memory_node("memory: \"cxl_mem\" sharers: 4 shared_switches: \"sw\"")}),
      kCxl);
  EXPECT_NEAR(crossbar4, 2e9, 2e9 * 0.03);

  // A DDR pool: eight lock-step sharers stream at an eighth of the channels' rate.
  const std::string ddr = link("dma_ddr", "dma", "host_ddr");
  const double ddr_alone = read_bandwidth(host_system(ddr, {}), kLocal, 256);
  const double ddr8 = read_bandwidth(
      host_system(ddr, {memory_node("memory: \"host_ddr\" sharers: 8")}), kLocal, 256);
  EXPECT_NEAR(ddr_alone / ddr8, 8.0, 8.0 * 0.05) << ddr_alone << " " << ddr8;
  std::cout << "GB/s: alone " << alone / 1e9 << ", 4 sharers " << four / 1e9 << ", peer_load 0.5 "
            << half / 1e9 << ", idle peers " << idle / 1e9 << ", shared link " << shared_link / 1e9
            << ", crossbar " << crossbar / 1e9 << " -> " << crossbar4 / 1e9 << ", DDR "
            << ddr_alone / 1e9 << " -> " << ddr8 / 1e9 << "\n";
}

// Virtual channels: bulk prefetches saturate the switch's x8 link to the memory; a demand fetch
// issued behind them on the critical channel waits at most one packet of bulk traffic, while on
// a single channel it waits for the whole backlog.
TEST(Switch, CriticalVirtualChannelOvertakesBulkTraffic) {
  auto run = [](bool vcs) {
    std::string s = sw("sw");
    if (!vcs) {
      // Drop the virtual channels: one channel for all traffic.
      const size_t a = s.find("      virtual_channels {");
      const size_t b = s.find("      energy_pj_per_bit");
      s.erase(a, b - a);
    }
    // The memory behind the switch is an SRAM far faster than the link, so that the link is
    // the only queue.
    const std::string far =
        "system { components { name: \"far\" sram { capacity_bytes: 1073741824 "
        "read_bandwidth_bytes_per_s: 1e15 write_bandwidth_bytes_per_s: 1e15 latency_ps: 0 } } "
        "address_map { name: \"far\" target: \"far\" base_bytes: 4398046511104 "
        "size_bytes: 1073741824 } }";
    const uint64_t kFar = 4ULL << 40;
    const std::string links = link("dma_sw", "dma", "sw", "cxl2_x16") +
                              link("dma2_sw", "dma2", "sw", "cxl2_x16") +
                              link("sw_far", "sw", "far", "cxl2_x8");
    // Bulk: 64 prefetches of 256 KiB, four in flight, each issued when one completes (as a
    // DMA queue would). Critical: a 4 KiB demand fetch issued at 100 us, then one when idle.
    struct State {
      std::vector<TimePs> in_flight;
      int issued = 0;
      TimePs bulk_done = 0, crit = 0;
      bool crit_sent = false;
    };
    auto st = std::make_shared<State>();
    return parse(simulate_steps(host_system(links, {s, far}), [=](Context& ctx, std::ostream& os) {
      const TimePs now = now_ps();
      const TimePs at = 100'000'000;
      if (!st->crit_sent && now >= at) {
        st->crit =
            dma(ctx, "dma2").transfer(kFar + (1ULL << 29), 1 << 20, 4096, intent(), now) - now;
        st->crit_sent = true;
      }
      st->in_flight.erase(std::remove_if(st->in_flight.begin(), st->in_flight.end(),
                                         [&](TimePs t) { return t <= now; }),
                          st->in_flight.end());
      while (st->issued < 64 && st->in_flight.size() < 4) {
        const TimePs done = dma(ctx).transfer(kFar + uint64_t(st->issued) * (256 << 10), 0,
                                              256 << 10, intent(MoveOp::kPrefetch), now);
        st->in_flight.push_back(done);
        st->bulk_done = std::max(st->bulk_done, done);
        ++st->issued;
      }
      TimePs next = st->crit_sent ? LinkModel::kNever : at;
      for (TimePs t : st->in_flight)
        next = std::min(next, t);
      if (next != LinkModel::kNever) return next;
      const TimePs idle_at = st->bulk_done + 1'000'000;
      const TimePs idle =
          dma(ctx, "dma2").transfer(kFar + (1ULL << 28), 2 << 20, 4096, intent(), idle_at) -
          idle_at;
      os << "bulk_done " << st->bulk_done << " crit " << st->crit << " idle " << idle << "\n";
      return LinkModel::kNever;
    }));
  };
  const auto with = run(true), without = run(false);
  std::cout << "critical read behind 16 MiB of prefetches: " << with.at("crit") / 1e3
            << " ns with virtual channels, " << without.at("crit") / 1e3 << " ns without; idle "
            << with.at("idle") / 1e3 << " ns\n";
  // At most one 68-byte flit of bulk ahead of it on each of the two link directions it uses.
  EXPECT_LE(with.at("crit"), with.at("idle") + 2 * kFlitPs + 2);
  EXPECT_GT(without.at("crit"), 100 * with.at("crit"));
  // The bulk traffic still gets the link: its completion moves by no more than the critical
  // transfer's share.
  EXPECT_NEAR(with.at("bulk_done"), without.at("bulk_done"), 0.001 * without.at("bulk_done"));
}

// Faults: every transfer completes or is reported failed, the counts add up, and the memory
// served exactly the completed transfers' bytes.
std::map<std::string, double> run_faults(const std::string& topology_and_faults,
                                         const std::vector<std::string>& frags,
                                         const std::vector<TimePs>& starts) {
  return parse(
      simulate(host_system(topology_and_faults, frags), [&](Context& ctx, std::ostream& os) {
        int ok_count = 0, bad_count = 0;
        TimePs worst = 0;
        for (size_t i = 0; i < starts.size(); ++i) {
          bool ok = false;
          const TimePs done = dma(ctx).transfer(kCxl + i * 4096, 0, 4096, intent(), starts[i], &ok);
          (ok ? ok_count : bad_count)++;
          if (ok) worst = std::max(worst, done - starts[i]);
        }
        auto& d = dma(ctx);
        os << "issued " << starts.size() << " ok " << ok_count << " bad " << bad_count
           << " completed " << d.completed() << " failed " << d.failed() << " retried "
           << d.retried() << " rerouted " << d.rerouted() << " cxl_bytes "
           << ctx.component("cxl_mem")->bytes_read() << " worst " << worst << "\n";
      }));
}

std::vector<TimePs> every_us(int n) {
  std::vector<TimePs> s;
  for (int i = 0; i < n; ++i)
    s.push_back(TimePs(i) * 1'000'000);
  return s;
}

TEST(Faults, LinkDownWaitsAndLosesNothing) {
  // Down from 5 us for 10 us: the transfers started in [5, 15) us wait for it (retried).
  const auto m = run_faults(link("dma_cxl", "dma", "cxl_mem", "cxl2_x8") +
                                "faults { name: \"cut\" start_ps: 5000000 duration_ps: 10000000 "
                                "link_down: \"dma_cxl\" }\n",
                            {}, every_us(40));
  EXPECT_EQ(m.at("ok"), 40);
  EXPECT_EQ(m.at("completed"), 40);
  EXPECT_EQ(m.at("failed"), 0);
  EXPECT_EQ(m.at("retried"), 10);
  EXPECT_EQ(m.at("cxl_bytes"), 40 * 4096);
  EXPECT_GE(m.at("worst"), 1'000'000);  // the one started at 14 us waited until 15 us
}

TEST(Faults, LinkDownPastTheTimeoutFails) {
  // Down from 5 us for 2 ms, 40 times the 50 us completion timeout: the transfers started in
  // [5, 40) us cannot complete by their deadline and are reported failed at it; none waits.
  const auto m = run_faults(link("dma_cxl", "dma", "cxl_mem", "cxl2_x8") +
                                "faults { name: \"cut\" start_ps: 5000000 duration_ps: 2000000000 "
                                "link_down: \"dma_cxl\" }\n",
                            {}, every_us(40));
  EXPECT_EQ(m.at("ok"), 5);
  EXPECT_EQ(m.at("failed"), 35);
  EXPECT_EQ(m.at("completed"), 5);
  EXPECT_EQ(m.at("retried"), 0);
  EXPECT_EQ(m.at("cxl_bytes"), 5 * 4096);
  EXPECT_LE(m.at("worst"), 50'000'000);
}

TEST(Faults, AnOutageMidTransferPastTheTimeoutFailsIt) {
  // A 1 MiB read from 0 us; the link goes down at 5 us for 2 ms, 40 times the 50 us completion
  // timeout. The data on its way back stalls: the transfer fails when the stall reaches the
  // timeout (about 55 us), instead of waiting 2 ms. With the outage inside the timeout it waits.
  auto one = [](TimePs outage_ps) {
    return parse(simulate(host_system(link("dma_cxl", "dma", "cxl_mem", "cxl2_x8") +
                                          "faults { name: \"cut\" start_ps: 5000000 duration_ps: " +
                                          std::to_string(outage_ps) + " link_down: \"dma_cxl\" }\n",
                                      {}),
                          [](Context& ctx, std::ostream& os) {
                            bool ok = true;
                            const TimePs done =
                                dma(ctx).transfer(kCxl, 0, 1 << 20, intent(), 0, &ok);
                            os << "ok " << ok << " done " << done << " failed " << dma(ctx).failed()
                               << "\n";
                          }));
  };
  const auto cut = one(2'000'000'000);
  EXPECT_EQ(cut.at("ok"), 0);
  EXPECT_EQ(cut.at("failed"), 1);
  EXPECT_GE(cut.at("done"), 55'000'000);
  EXPECT_LE(cut.at("done"), 60'000'000);
  const auto blip = one(20'000'000);
  EXPECT_EQ(blip.at("ok"), 1);
  EXPECT_EQ(blip.at("failed"), 0);
  EXPECT_GE(blip.at("done"), 25'000'000);
}

TEST(Faults, DeviceOfflineFailsAfterTheTimeoutAndCountsAddUp) {
  // Offline from 5 us for 100 us; the DMA's completion timeout is 50 us: transfers started in
  // [5, 55) us fail, those in [55, 105) us wait for the device (retried), the rest are served.
  const auto m = run_faults(link("dma_cxl", "dma", "cxl_mem", "cxl2_x8") +
                                "faults { start_ps: 5000000 duration_ps: 100000000 "
                                "device_offline: \"cxl_mem\" }\n",
                            {}, every_us(120));
  EXPECT_EQ(m.at("ok") + m.at("bad"), 120);
  EXPECT_EQ(m.at("bad"), 50);
  EXPECT_EQ(m.at("failed"), 50);
  EXPECT_EQ(m.at("completed"), 70);
  EXPECT_EQ(m.at("retried"), 50);
  // Nothing lost silently: the device served exactly the completed transfers.
  EXPECT_EQ(m.at("cxl_bytes"), m.at("completed") * 4096);
  // With a completion timeout longer than the outage every transfer waits and completes.
  const auto patient = run_faults(
      link("dma_cxl", "dma", "cxl_mem", "cxl2_x8") +
          "faults { start_ps: 5000000 duration_ps: 100000000 device_offline: \"cxl_mem\" }\n",
      {"system { components { name: \"dma\" dma { completion_timeout_ps: 200000000 } } }"},
      every_us(120));
  EXPECT_EQ(patient.at("failed"), 0);
  EXPECT_EQ(patient.at("completed"), 120);
}

// The switch's crossbar bandwidth bounds what crosses it: 1 GB/s makes a 64 KiB read take at
// least 64 KiB / 1 GB/s.
TEST(Switch, CrossbarBandwidthBoundsTransfers) {
  auto read = [](const std::string& crossbar) {
    std::string s = sw("sw");
    const std::string from = "crossbar_bytes_per_s: 2.048e12";
    s.replace(s.find(from), from.size(), "crossbar_bytes_per_s: " + crossbar);
    return parse(simulate(host_system(link("dma_sw", "dma", "sw", "cxl2_x8") +
                                          link("sw_local", "sw", "host_ddr", "cxl2_x8"),
                                      {s}),
                          [](Context& ctx, std::ostream& os) {
                            os << "t " << dma(ctx).transfer(kLocal, 0, 64 << 10, intent(), 0)
                               << "\n";
                          }))["t"];
  };
  const double fast = read("2.048e12"), slow = read("1e9");
  EXPECT_LT(fast, 10e6);
  EXPECT_GE(slow, (64 << 10) / 1e9 * 1e12);
}

TEST(Faults, TrafficIsReroutedAroundADownLink) {
  const std::vector<std::string> frags = {sw("swa"), sw("swb")};
  const std::string two_paths =
      link("dma_swa", "dma", "swa", "cxl2_x8") + link("dma_swb", "dma", "swb", "cxl2_x8") +
      link("swa_cxl", "swa", "cxl_mem", "cxl2_x8") + link("swb_cxl", "swb", "cxl_mem", "cxl2_x8");
  const auto calm = run_faults(two_paths, frags, every_us(20));
  // The first path's first link is down for good: the DMA engine sends everything the other way.
  auto m = run_faults(two_paths + "faults { start_ps: 0 link_down: \"dma_swa\" }\n", frags,
                      every_us(20));
  EXPECT_EQ(m.at("completed"), 20);
  EXPECT_EQ(m.at("rerouted"), 20);
  EXPECT_EQ(m.at("worst"), calm.at("worst"));
  // The first path's second link is down for good: the switch reports a failure, and the DMA
  // engine retries over the other switch.
  m = run_faults(two_paths + "faults { start_ps: 0 link_down: \"swa_cxl\" }\n", frags,
                 every_us(20));
  EXPECT_EQ(m.at("completed"), 20);
  EXPECT_EQ(m.at("failed"), 0);
  EXPECT_EQ(m.at("rerouted"), 20);
  EXPECT_EQ(m.at("cxl_bytes"), 20 * 4096);
  // No way around: every transfer is reported failed, none reaches the device.
  m = run_faults(link("dma_swa", "dma", "swa", "cxl2_x8") +
                     link("swa_cxl", "swa", "cxl_mem", "cxl2_x8") +
                     "faults { start_ps: 0 link_down: \"swa_cxl\" }\n",
                 {sw("swa")}, every_us(20));
  EXPECT_EQ(m.at("failed"), 20);
  EXPECT_EQ(m.at("completed"), 0);
  EXPECT_EQ(m.at("cxl_bytes"), 0);
  // Behind the switch, down for 2 ms (40 times the timeout) rather than for good: the switch
  // does not wait past the engine's deadline; every transfer fails, none reaches the device.
  m = run_faults(link("dma_swa", "dma", "swa", "cxl2_x8") +
                     link("swa_cxl", "swa", "cxl_mem", "cxl2_x8") +
                     "faults { start_ps: 0 duration_ps: 2000000000 link_down: \"swa_cxl\" }\n",
                 {sw("swa")}, every_us(20));
  EXPECT_EQ(m.at("failed"), 20);
  EXPECT_EQ(m.at("completed"), 0);
  EXPECT_EQ(m.at("cxl_bytes"), 0);
}

TEST(Faults, DegradedLinkSerialisesAtItsFraction) {
  auto big_read = [](const std::string& faults) {
    return parse(simulate(host_system(link("dma_local", "dma", "host_ddr", "cxl2_x8") + faults, {}),
                          [](Context& ctx, std::ostream& os) {
                            os << "t " << dma(ctx).transfer(kLocal, 0, 8 << 20, intent(), 0)
                               << "\n";
                          }))["t"];
  };
  const double full = big_read("");
  const double half = big_read(
      "faults { start_ps: 0 duration_ps: 0 link_degraded { link: \"dma_local\" "
      "bandwidth_fraction: 0.5 } }\n");
  const double ser = double(8 << 20) / 64 * 68 / (31.5077e9 * 0.928) * 1e12;
  EXPECT_NEAR(full, ser, ser * 0.01);
  EXPECT_NEAR(half, 2 * ser, ser * 0.01);
}

// Randomized: 2,000 transfers of random sizes and directions between the SRAM and the CXL
// expander over two switched paths, with random link outages (finite and permanent), a
// degradation and device-offline windows. Every transfer returns completed or failed; the
// engine's counts add up to the transfers issued; the device served every completed transfer,
// and beyond that only attempts that failed or were retried another way (a response lost on a
// link that went down for good after the device served it).
TEST(Faults, RandomizedEveryTransferCompletesOrFails) {
  Rng rng(23);
  std::string faults;
  for (int i = 0; i < 12; ++i) {
    const char* links[] = {"dma_swa", "dma_swb", "swa_cxl", "swb_cxl"};
    const uint64_t start = rng.below(2000) * 1'000'000;
    const uint64_t duration = rng.below(4) == 0 ? 0 : (1 + rng.below(200)) * 1'000'000;
    faults += "faults { name: \"f" + std::to_string(i) + "\" start_ps: " + std::to_string(start) +
              " duration_ps: " + std::to_string(duration) + " link_down: \"" + links[rng.below(4)] +
              "\" }\n";
  }
  faults +=
      "faults { name: \"slow\" start_ps: 500000000 duration_ps: 300000000 link_degraded { "
      "link: \"swb_cxl\" bandwidth_fraction: 0.25 } }\n";
  for (int i = 0; i < 3; ++i) {
    faults += "faults { name: \"off" + std::to_string(i) +
              "\" start_ps: " + std::to_string(rng.below(2000) * 1'000'000) +
              " duration_ps: " + std::to_string((1 + rng.below(120)) * 1'000'000) +
              " device_offline: \"cxl_mem\" }\n";
  }
  const std::string topo =
      link("dma_swa", "dma", "swa", "cxl2_x8") + link("dma_swb", "dma", "swb", "cxl2_x8") +
      link("swa_cxl", "swa", "cxl_mem", "cxl2_x8") + link("swb_cxl", "swb", "cxl_mem", "cxl2_x8");
  const auto m = parse(simulate(
      host_system(topo + faults, {sw("swa"), sw("swb")}), [&](Context& ctx, std::ostream& os) {
        Rng r(29);
        uint64_t ok_bytes = 0, bad_bytes = 0, ok = 0, bad = 0;
        for (int i = 0; i < 2000; ++i) {
          const uint64_t bytes = (1 + r.below(64)) * 1024;
          const TimePs start = TimePs(i) * 1'000'000;
          const uint64_t cxl = kCxl + r.below(1 << 20) * 4096;
          bool good = false;
          if (r.below(2)) {
            dma(ctx).transfer(cxl, 0, bytes, intent(), start, &good);
          } else {
            dma(ctx).transfer(0, cxl, bytes, intent(), start, &good);
          }
          (good ? ok : bad)++;
          (good ? ok_bytes : bad_bytes) += bytes;
        }
        auto& d = dma(ctx);
        Component* c = ctx.component("cxl_mem");
        os << "ok " << ok << " bad " << bad << " completed " << d.completed() << " failed "
           << d.failed() << " served " << c->bytes_read() + c->bytes_written() << " ok_bytes "
           << ok_bytes << " bad_bytes " << bad_bytes << " rerouted " << d.rerouted() << " retried "
           << d.retried() << "\n";
      }));
  std::cout << "randomized faults: " << m.at("ok") << " completed, " << m.at("bad") << " failed, "
            << m.at("rerouted") << " rerouted, " << m.at("retried") << " retried\n";
  EXPECT_EQ(m.at("ok") + m.at("bad"), 2000);
  EXPECT_EQ(m.at("completed"), m.at("ok"));
  EXPECT_EQ(m.at("failed"), m.at("bad"));
  EXPECT_GE(m.at("served"), m.at("ok_bytes"));
  EXPECT_LE(m.at("served"), m.at("ok_bytes") + m.at("bad_bytes") + m.at("rerouted") * 65536);
  EXPECT_GT(m.at("bad"), 0);
  EXPECT_GT(m.at("rerouted") + m.at("retried"), 0);
}

// Config errors name the field: cycles, faults on unknown or ideal links, a bad fraction, a
// switch with too few ports, a virtual channel set that misses a reason, a CXL device without
// media.
TEST(FabricConfig, BadFabricsAreRejectedWithTheirPaths) {
  const std::vector<std::string> files = {test::preset("hardware/h100_sxm.textproto"),
                                          test::preset("models/llama3_8b.textproto"),
                                          test::preset("studies/default.textproto")};
  auto issues = [&](const std::vector<std::string>& sets) {
    try {
      validate_config(load_config(files, sets));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string sw_comp =
      "system={components {name: \"sw\" switch {ports: 1 latency_ps: 1000 "
      "virtual_channels {name: \"c\" priority: 1 reasons: [MOVE_DEMAND_FETCH]}}} "
      "links {name: \"a\" from: \"sw\" to: \"sw\" latency_ps: 0}}";
  std::string e = issues({sw_comp});
  EXPECT_NE(e.find("form a cycle"), std::string::npos) << e;
  EXPECT_NE(e.find("2 links use this switch, more than its 1 ports"), std::string::npos) << e;
  EXPECT_NE(e.find("MOVE_PREFETCH traffic has no virtual channel"), std::string::npos) << e;
  e =
      issues({"system={faults {name: \"f\" start_ps: 0 link_down: \"nope\"} "
              "faults {name: \"g\" start_ps: 0 link_down: \"compute_sram\"} "
              "faults {name: \"h\" start_ps: 0 link_degraded {link: \"nope\"}}}"});
  EXPECT_NE(e.find("system.faults[f].link_down: no link named \"nope\""), std::string::npos) << e;
  EXPECT_NE(e.find("system.faults[g].link_down: link \"compute_sram\" has no serial model"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("system.faults[h].link_degraded.bandwidth_fraction"), std::string::npos) << e;
  e = issues({"system={components {name: \"x\" cxl {host_port_latency_ps: 1}}}"});
  EXPECT_NE(e.find("system.components[x].cxl.media: required"), std::string::npos) << e;
  EXPECT_NE(e.find("system.components[x].cxl.read_trackers"), std::string::npos) << e;
}

}  // namespace
}  // namespace tiersim
