// The serial-link model against hand formulas per preset, replays against the bit error rate,
// and the optical tail: p99 latency set by jitter and retrain events, not by the mean.
#include "fabric/serial_link.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include "tests/support/paths.h"

namespace tiersim {
namespace {

LinkParams preset(const std::string& name) {
  std::ifstream in(test::preset("links/" + name + ".textproto"));
  std::stringstream ss;
  ss << in.rdbuf();
  config::SerialLink c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(ss.str(), &c)) << name;
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  LinkParams::validate(c, v);
  EXPECT_TRUE(issues.empty()) << name << ": " << (issues.empty() ? "" : issues[0].format());
  return LinkParams::from_config(c);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p / 100.0 * double(v.size() - 1))];
}

// Raw and data bandwidth of every preset, from lanes x rate x encoding x flit payload x link
// layer.
TEST(Link, PresetBandwidths) {
  // PCIe Gen5 x16: 16 x 32 Gb/s / 8 x 128/130 = 63.0 GB/s raw (the spec's figure).
  EXPECT_NEAR(preset("pcie_gen5_x16").wire_bytes_per_s(), 63.015e9, 0.01e9);
  EXPECT_NEAR(preset("pcie_gen5_x16").data_bytes_per_s(), 53.56e9, 0.01e9);
  // PCIe Gen6 x16: 128 GB/s, 236 of 256 bytes per flit, 0.95 link layer.
  EXPECT_NEAR(preset("pcie_gen6_x16").data_bytes_per_s(), 128e9 * 236 / 256 * 0.95, 1e6);
  // CXL 2.0 x8: 31.5 GB/s x 64/68 x 0.928 = 27.5 GB/s, within the 27-36 GB/s measured mixed
  // bandwidth of Gen5 x8 expanders.
  EXPECT_NEAR(preset("cxl2_x8").data_bytes_per_s(), 31.5077e9 * 64 / 68 * 0.928, 1e6);
  // NVLink4: 450 GB/s nominal, 380 GB/s measured.
  EXPECT_NEAR(preset("nvlink4_h100").data_bytes_per_s(), 379.8e9, 0.1e9);
  // Optics: 8 (16) x 106.25 Gb/s x 514/544 = 803 Gb/s (1.606 Tb/s) raw.
  EXPECT_NEAR(preset("optics_dsp_pluggable_800g").wire_bytes_per_s() * 8, 803.1e9, 0.1e9);
  EXPECT_NEAR(preset("optics_cpo_1600g").wire_bytes_per_s() * 8, 1606.2e9, 0.1e9);
  EXPECT_NEAR(preset("optics_lpo_800g").data_bytes_per_s(),
              preset("optics_dsp_pluggable_800g").data_bytes_per_s(), 1.0);
}

// An idle link without errors or jitter: fixed latency plus the wire bytes' serialisation; a
// second transfer offered at once queues behind the first.
TEST(Link, LatencyIsFixedPlusSerialisationAndTransfersQueue) {
  LinkParams p = preset("cxl2_x8");
  p.bit_error_rate = 0;
  LinkModel m(p, 1);
  // 4096 B = 64 flits of 68 B = 4352 wire bytes at 31.5077 GB/s x 0.928.
  const double ser_ps = 4352.0 / (31.5077e9 * 0.928) * 1e12;
  EXPECT_EQ(p.wire_bytes(4096), 4352u);
  EXPECT_NEAR(double(m.transfer(0, 4096)), 25000 + ser_ps, 2);
  EXPECT_NEAR(double(m.transfer(0, 4096)), 25000 + 2 * ser_ps, 3);
  // Propagation: 30 m of fiber at 4.9 ns/m plus PHY and FEC.
  EXPECT_EQ(preset("optics_cpo_1600g").fixed_latency_ps(), 5000u + 30000 + 30 * 4900);
}

// Every preset: an idle 4 KiB transfer (no errors, jitter or retrains) takes its fixed latency
// (PHY + FEC + retimers + propagation, by hand per preset) plus the serialisation of its wire
// bytes (whole flits in flit mode) at lanes x rate x encoding x link layer.
TEST(Link, EveryPresetsIdleLatencyByHand) {
  struct Row {
    const char* name;
    double fixed_ps;
  };
  const Row rows[] = {{"pcie_gen5_x16", 150000},
                      {"pcie_gen6_x16", 150000 + 2000},
                      {"cxl2_x8", 25000},
                      {"cxl2_x16", 25000},
                      {"cxl3_x8", 25000 + 2000},
                      {"nvlink4_h100", 100000},
                      {"optics_dsp_pluggable_800g", 200000 + 30 * 4900},
                      {"optics_lpo_800g", 110000 + 30 * 4900},
                      {"optics_cpo_1600g", 35000 + 30 * 4900}};
  for (const auto& r : rows) {
    LinkParams p = preset(r.name);
    EXPECT_NEAR(double(p.fixed_latency_ps()), r.fixed_ps, 0.5) << r.name;
    p.bit_error_rate = 0;
    p.retrain_rate_per_s = 0;
    p.jitter = config::Jitter();
    const double wire =
        p.flit_bytes ? std::ceil(4096.0 / p.flit_payload_bytes) * p.flit_bytes : 4096.0;
    const double ser =
        wire /
        (p.lanes * p.lane_rate_gbps * 1e9 / 8 * p.encoding_efficiency * p.link_layer_efficiency) *
        1e12;
    LinkModel m(p, 1);
    EXPECT_NEAR(double(m.transfer(0, 4096)), r.fixed_ps + ser, 1.0) << r.name;
  }
}

// Replays: a flit is replayed with probability 1 - (1 - BER)^bits; the mean number of replays
// per transfer matches units x that probability (within 3% over 20,000 transfers).
TEST(Link, ReplaysFollowTheBitErrorRate) {
  LinkParams p = preset("cxl2_x8");
  p.bit_error_rate = 1e-7;
  LinkModel m(p, 7);
  const uint64_t bytes = 1 << 20;
  for (int i = 0; i < 20000; ++i)
    m.transfer(TimePs(i) * 100'000'000, bytes);
  const double units = double(p.wire_bytes(bytes)) / 68.0;
  const double expected = units * -std::expm1(68 * 8 * std::log1p(-1e-7));
  EXPECT_NEAR(double(m.replays()) / 20000, expected, expected * 0.03);
}

// Optical tail: 200,000 transfers of 64 KiB every 100 us over the DSP pluggable.
// Without retrains the tail is the jitter's: p99 - p50 = 2.33 sd, and the mean sits within
// half a sd of the median. With retrains (10 per second of 2 ms each) about 2% of transfers wait
// for one: the p99 jumps by orders of magnitude (set by the retrain duration) while the median does
// not move and the mean stays far below the p99.
TEST(Link, OpticalP99IsSetByJitterAndRetrainsNotTheMean) {
  auto latencies = [](LinkParams p) {
    LinkModel m(p, 11);
    std::vector<double> lat;
    for (int i = 0; i < 200000; ++i) {
      const TimePs start = TimePs(i) * 100'000'000;
      lat.push_back(double(m.transfer(start, 65536) - start));
    }
    return lat;
  };
  LinkParams p = preset("optics_dsp_pluggable_800g");
  p.bit_error_rate = 0;
  p.retrain_rate_per_s = 0;
  const auto calm = latencies(p);
  const double sd = p.jitter.normal().sd_ps();
  const double p50 = percentile(calm, 50), p99 = percentile(calm, 99);
  const double mean = std::accumulate(calm.begin(), calm.end(), 0.0) / calm.size();
  // The preset's jitter is N(0, sd) truncated at zero: median 0, p99 2.326 sd, mean
  // sd / sqrt(2 pi).
  EXPECT_NEAR(p99 - p50, 2.326 * sd, 0.1 * sd);
  EXPECT_NEAR(mean - p50, sd / std::sqrt(2 * M_PI), 0.05 * sd);

  p.retrain_rate_per_s = 10;
  p.retrain_duration_ps = 2'000'000'000;
  const auto flaky = latencies(p);
  const double f50 = percentile(flaky, 50), f99 = percentile(flaky, 99);
  const double fmean = std::accumulate(flaky.begin(), flaky.end(), 0.0) / flaky.size();
  std::cout << "jitter only: p50 " << p50 << " ps, p99 " << p99 << " ps, mean " << mean
            << " ps; with retrains: p50 " << f50 << ", p99 " << f99 << ", mean " << fmean
            << " ps\n";
  EXPECT_NEAR(f50, p50, 0.5 * sd);        // most transfers never see a retrain
  EXPECT_GT(f99 - f50, 100'000'000.0);    // the p99 waits 100 us or more for a retrain
  EXPECT_LT(f99 - f50, 2'000'000'000.0);  // at most one retrain's duration
  EXPECT_GT(f99, 10 * fmean);             // and sits far above the mean
}

// Retimers add their latency per crossing; messages pack into flits (64 requests of 16 B = 16
// flits); a stage fed by a slower one ends one flit after its input's last byte.
TEST(Link, RetimersMessagesAndStreaming) {
  LinkParams p = preset("cxl2_x8");
  p.bit_error_rate = 0;
  const double flit_ps = 68.0 / (31.5077e9 * 0.928) * 1e12;
  p.retimers = 2;
  p.retimer_latency_ps = 30000;
  EXPECT_EQ(p.fixed_latency_ps(), 25000u + 60000);
  EXPECT_EQ(p.messages_for(4096), 64u);
  LinkModel m(p, 1);
  EXPECT_NEAR(double(m.message(0, p.messages_for(4096))), 85000 + 16 * flit_ps, 2);
  EXPECT_EQ(m.message_count(), 64u);
  EXPECT_EQ(m.bytes(), 0u);  // messages carry no data
  // 4096 B whose last byte arrives at 1 us: 64 flits take 149 ns, so the stage ends one flit
  // after the data, not 149 ns after the transfer was offered.
  LinkModel s(p, 1);
  const TimePs done = s.transfer(0, 4096, 1'000'000);
  EXPECT_NEAR(double(done), 1'000'000 + flit_ps + 85000, 2);
}

// Priorities: a high-priority transfer offered behind a backlog of low-priority work waits for
// at most one packet of it; a low-priority one waits for everything; the backlog is pushed back
// by the high-priority transfer's serialisation.
TEST(Link, StrictPriorityWithOnePacketOfBlocking) {
  LinkParams p = preset("cxl2_x8");
  p.bit_error_rate = 0;
  p.phy_latency_ps = 0;
  const double flit_ps = 68.0 / (31.5077e9 * 0.928) * 1e12;
  LinkModel m(p, 1);
  const TimePs bulk = m.transfer(0, 1 << 20, 0, 0);  // ~38 us of backlog
  const TimePs high = m.transfer(1000, 4096, 0, 3);
  EXPECT_NEAR(double(high), 1000 + flit_ps + 64 * flit_ps, 3);
  const TimePs low = m.transfer(1000, 4096, 0, 0);
  EXPECT_NEAR(double(low), double(bulk) + 64 * flit_ps + 64 * flit_ps, 3);
}

// Outages: a link down for an interval holds a transfer offered in it until it ends, and one in
// flight pauses; a degraded link serialises at its fraction; a permanent outage never delivers.
TEST(Link, OutagesAndDegradations) {
  LinkParams p = preset("cxl2_x8");
  p.bit_error_rate = 0;
  p.phy_latency_ps = 0;
  const double ser =
      double(p.wire_bytes(1 << 20)) / (p.wire_bytes_per_s() * p.link_layer_efficiency) * 1e12;
  LinkModel down(p, 1);
  down.add_outage(10'000'000, 20'000'000, 0.0);
  EXPECT_TRUE(down.down_at(15'000'000));
  EXPECT_EQ(down.up_after(15'000'000), 20'000'000u);
  EXPECT_NEAR(double(down.transfer(12'000'000, 1 << 20)), 20'000'000 + ser, 2);
  LinkModel pause(p, 1);
  pause.add_outage(10'000'000, 20'000'000, 0.0);
  EXPECT_NEAR(double(pause.transfer(0, 1 << 20)), ser + 10'000'000, 2);  // ser > 10 us
  EXPECT_EQ(pause.outage_wait_ps(), 10'000'000u);
  LinkModel slow(p, 1);
  slow.add_outage(0, LinkModel::kNever, 0.25);
  EXPECT_NEAR(double(slow.transfer(0, 1 << 20)), 4 * ser, 4);
  LinkModel gone(p, 1);
  gone.add_outage(5, LinkModel::kNever, 0.0);
  EXPECT_EQ(gone.transfer(0, 1 << 20), LinkModel::kNever);
  EXPECT_EQ(gone.up_after(10), LinkModel::kNever);
}

TEST(Link, BadConfigsAreReported) {
  config::SerialLink c;
  c.set_lanes(0);
  c.set_flit_bytes(68);
  c.set_bit_error_rate(1e-9);
  c.set_retrain_rate_per_s(1);
  std::vector<ConfigIssue> issues;
  Validator v(issues, "link");
  LinkParams::validate(c, v);
  std::vector<std::string> paths;
  for (const auto& i : issues)
    paths.push_back(i.path);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "link.lanes"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "link.lane_rate_gbps"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "link.flit_payload_bytes"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "link.retransmit_latency_ps"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "link.retrain_duration_ps"), paths.end());
}

}  // namespace
}  // namespace tiersim
