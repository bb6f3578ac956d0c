// The two HBM levels on the same decode: a run at DETAILED fidelity and a run at FAST with the
// parameters `tiersim calibrate` derived from the same device agree on TPOT (slow: the detailed
// level simulates every 32-byte access).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "memory/hbm_detailed.h"
#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

double summary(const std::string& file, const std::string& name) {
  for (const auto& s : ResultReader(file).summary()) {
    if (s.name == name) return s.value;
  }
  return -1;
}

// A two-layer model small enough for the command level, written into `dir`.
std::string small_model(const fs::path& dir) {
  const std::string model = (dir / "small.textproto").string();
  std::ofstream(model)
      << "workload { model { name: \"small\" layers: 2 hidden_size: 1024 heads: 8"
         " kv_heads: 8 ffn_size: 4096 vocab_size: 8192 tied_embeddings: false"
         " mlp: SWIGLU norm: RMSNORM positional: ROPE weight_dtype: BF16 kv_dtype: BF16"
         " activation_dtype: BF16 } }\n";
  return model;
}

TEST(Fidelity, CalibratedFastAgreesWithDetailedOnDecode) {
  const fs::path dir = fs::temp_directory_path() / ("tiersim_fid_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string model = small_model(dir);
  const std::string base = test::preset("hardware/h100_sxm.textproto") + " " +
                           test::preset("memory/hbm3_6400.textproto");
  const std::string rest = model + " " + test::preset("studies/default.textproto") +
                           " --set workload.decode.decode_steps=2 --quiet";
  const std::string cal = (dir / "cal.textproto").string();
  const std::string tiersim = test::tiersim_binary();
  auto r = test::run_cmd(tiersim + " calibrate " + base + " " + rest.substr(0, rest.find(" --")) +
                         " --out " + cal);
  ASSERT_EQ(r.code, 0) << r.err;
  double refreshes_per_s[2] = {0, 0};
  for (int hot = 0; hot < 2; ++hot) {
    const std::string temp =
        std::string(" --set system.components[hbm].hbm.temperature_c=") + (hot ? "95" : "75");
    const std::string fast = (dir / "fast.h5").string();
    const std::string detailed = (dir / "detailed.h5").string();
    r = test::run_cmd(tiersim + " run " + base + " " + cal + " " + rest + temp + " --out " + fast);
    ASSERT_EQ(r.code, 0) << r.err;
    r = test::run_cmd(tiersim + " run " + base + " " + rest + temp +
                      " --set run.fidelity=DETAILED --out " + detailed);
    ASSERT_EQ(r.code, 0) << r.err;
    const double t_fast = summary(fast, "tpot_ms_mean");
    const double t_det = summary(detailed, "tpot_ms_mean");
    std::printf("[ measured ] %s: TPOT fast (calibrated) %.5f ms, detailed %.5f ms (%.2f%%)\n",
                hot ? "95 C" : "75 C", t_fast, t_det, 100 * (t_fast / t_det - 1));
    EXPECT_NEAR(t_fast, t_det, 0.05 * t_det);
    // Both moved the same bytes.
    EXPECT_EQ(summary(fast, "hbm_bytes_per_token"), summary(detailed, "hbm_bytes_per_token"));
    // The detailed result carries command-level stats.
    ResultReader h(detailed);
    ASSERT_TRUE(h.exists("/stats/hbm/row_hit_rate"));
    const auto refreshes = h.read_doubles("/stats/hbm/refreshes");
    refreshes_per_s[hot] = refreshes.back() / summary(detailed, "sim_time_s");
  }
  // The device moves whole 32-byte bursts: with 1,000,000-byte tiles (31,250 bursts, and every
  // tile starts on a burst) the RD commands carry exactly the bytes read; with 1,000,001-byte
  // tiles the tiles start off the burst grid, so requests cover partial bursts at their ends:
  // more RD commands, at most two partial bursts per request.
  double burst_reads[2], bytes_read[2], requests[2];
  for (int odd = 0; odd < 2; ++odd) {
    const std::string out = (dir / ("burst" + std::to_string(odd) + ".h5")).string();
    r = test::run_cmd(tiersim + " run " + base + " " + rest +
                      " --set run.fidelity=DETAILED --set workload.decode.decode_steps=1"
                      " --set system.components[compute].compute.tile_bytes=" +
                      (odd ? "1000001" : "1000000") + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    ResultReader h(out);
    burst_reads[odd] = h.read_doubles("/stats/hbm/reads").back();
    bytes_read[odd] = h.read_doubles("/stats/hbm/bytes_read").back();
    requests[odd] = h.read_doubles("/stats/hbm/requests").back();
    EXPECT_EQ(h.read_doubles("/stats/hbm/writes").back() * 32,
              h.read_doubles("/stats/hbm/bytes_written").back());
  }
  EXPECT_EQ(burst_reads[0] * 32, bytes_read[0]);
  EXPECT_EQ(bytes_read[1], bytes_read[0]);
  EXPECT_GT(burst_reads[1] * 32, bytes_read[1]);
  EXPECT_LE(burst_reads[1] - burst_reads[0], 2 * requests[1]);
  // Above 85 C the refresh rate doubles (the run is short: allow for postponed refreshes).
  EXPECT_NEAR(refreshes_per_s[1] / refreshes_per_s[0], 2.0, 0.3);
  fs::remove_all(dir);
}

// Mean and Student's t half-width by hand: 1, 2, 3 have mean 2 and standard deviation 1;
// t(0.975, 2 degrees of freedom) = 4.302653, so the half-width is 4.302653 / sqrt(3).
TEST(RatioSamples, MeanAndStudentTHalfWidthByHand) {
  RatioSamples r;
  EXPECT_EQ(r.ci95_half_width(), 0.0);
  r.add(1.0);
  EXPECT_EQ(r.ci95_half_width(), 0.0);  // one window: no interval
  r.add(2.0);
  r.add(3.0);
  EXPECT_EQ(r.count(), 3u);
  EXPECT_DOUBLE_EQ(r.mean(), 2.0);
  EXPECT_NEAR(r.ci95_half_width(), 4.302653 / std::sqrt(3.0), 1e-6);
}

// Sampled detailed simulation of the same decode: every request at the device-calibrated fast
// level, runs of them at the command level; the windows' service ratio re-rates the fast level.
TEST(Fidelity, SampledDetailedDecode) {
  const fs::path dir = fs::temp_directory_path() / ("tiersim_smp_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string model = small_model(dir);
  const std::string run = test::tiersim_binary() + " run " +
                          test::preset("hardware/h100_sxm.textproto") + " " +
                          test::preset("memory/hbm3_6400.textproto") + " " + model + " " +
                          test::preset("studies/default.textproto") +
                          " --set workload.decode.decode_steps=4 --set run.fidelity=DETAILED"
                          " --quiet";
  const std::string sampled =
      " --set run.detailed_sampling.period_requests=8"
      " --set run.detailed_sampling.window_requests=2"
      " --set run.detailed_sampling.warmup_requests=1";
  auto go = [&](const std::string& name, const std::string& sets) {
    const std::string out = (dir / (name + ".h5")).string();
    const auto r = test::run_cmd(run + sets + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    return out;
  };
  const std::string det = go("detailed", "");
  const std::string smp = go("sampled", sampled);
  const std::string smp_again = go("sampled_again", sampled);
  const std::string other_seed = go("other_seed", sampled + " --set run.seed=7");
  const std::string report_only =
      go("report_only", sampled + " --set run.detailed_sampling.rerate_fast_level=false");
  const double t_det = summary(det, "tpot_ms_mean"), t_smp = summary(smp, "tpot_ms_mean");
  const double ratio = summary(smp, "hbm_sampled_service_ratio");
  const double ci = summary(smp, "hbm_sampled_service_ratio_ci95");
  std::printf(
      "[ measured ] TPOT detailed %.5f ms, sampled %.5f ms (%.2f%%), report only %.5f ms;"
      " %g windows, service ratio %.4f +- %.4f, share %.3f\n",
      t_det, t_smp, 100 * (t_smp / t_det - 1), summary(report_only, "tpot_ms_mean"),
      summary(smp, "hbm_sampled_windows"), ratio, ci, summary(smp, "hbm_detailed_request_share"));
  EXPECT_NEAR(t_smp, t_det, 0.05 * t_det);
  // One window per period of 8 requests (the last, partial period has one when its run fits);
  // 3 of every 8 at the command level.
  ResultReader h(smp);
  const double requests = h.read_doubles("/stats/hbm/requests").back();
  EXPECT_GE(summary(smp, "hbm_sampled_windows"), std::floor(requests / 8));
  EXPECT_LE(summary(smp, "hbm_sampled_windows"), std::ceil(requests / 8));
  EXPECT_NEAR(summary(smp, "hbm_detailed_request_share"), 3.0 / 8, 3.0 / requests);
  EXPECT_EQ(h.read_doubles("/stats/hbm/detailed_requests").back(),
            std::round(summary(smp, "hbm_detailed_request_share") * requests));
  EXPECT_GT(ci, 0.0);
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 1.5);
  EXPECT_DOUBLE_EQ(summary(smp, "hbm_fast_level_rate_correction"), 1.0 / ratio);
  // The same seed gives the same run; another seed other windows.
  EXPECT_EQ(summary(smp_again, "tpot_ms_mean"), t_smp);
  EXPECT_NE(summary(other_seed, "hbm_sampled_service_ratio"), ratio);
  // Reporting only: the fast level keeps its calibrated rates, and the step changes.
  EXPECT_EQ(summary(report_only, "hbm_fast_level_rate_correction"), 1.0);
  EXPECT_NE(summary(report_only, "tpot_ms_mean"), t_smp);
  // Every request in a run (period = window): the stacks decide every completion and nothing
  // waits for the fast level's copy of their work, so the run is the full DETAILED one. A
  // window longer than the run (no sample, nothing reserved for it) too; its ratio is left out.
  const std::string all = go("all",
                             " --set run.detailed_sampling.period_requests=1"
                             " --set run.detailed_sampling.window_requests=1");
  EXPECT_EQ(summary(all, "tpot_ms_mean"), t_det);
  const std::string none = go("none",
                              " --set run.detailed_sampling.period_requests=4000000000"
                              " --set run.detailed_sampling.window_requests=4000000000");
  EXPECT_EQ(summary(none, "tpot_ms_mean"), t_det);
  EXPECT_EQ(summary(none, "hbm_sampled_windows"), 0);
  EXPECT_EQ(summary(none, "hbm_sampled_service_ratio"), -1);  // not in the summary
  EXPECT_EQ(summary(none, "hbm_sampled_service_ratio_ci95"), -1);
  EXPECT_EQ(summary(none, "hbm_fast_level_rate_correction"), 1.0);
  // Bad settings exit 2 naming the field.
  auto bad = [&](const std::string& sets, const std::string& field) {
    const auto r = test::run_cmd(run + sets + " --out " + (dir / "bad.h5").string());
    EXPECT_EQ(r.code, 2) << sets;
    EXPECT_THAT(r.err, ::testing::HasSubstr(field)) << r.err;
  };
  bad(" --set run.detailed_sampling.period_requests=2 --set run.detailed_sampling.window_requests=2"
      " --set run.detailed_sampling.warmup_requests=1",
      "run.detailed_sampling.period_requests");
  bad(" --set run.detailed_sampling.period_requests=8", "run.detailed_sampling.window_requests");
  bad(sampled + " --set run.fidelity=FAST", "no hbm component runs at DETAILED");
  // A refresh multiplier that would leave the calibrated fast level no bandwidth (refresh's
  // share is about 12%: x8.5 takes it all); the full DETAILED run takes it. Stack temperatures
  // replace the component's: a hot component temperature under cool stacks is no error.
  const std::string hot = (dir / "hot.textproto").string();
  std::ofstream(hot) << "system { components { name: \"hbm\" hbm { temperature_c: 100"
                        " refresh_rate { above_c: 90 multiplier: 8.5 } } } }\n";
  const std::string run_hot = run.substr(0, run.find(" --set")) + " " + hot +
                              run.substr(run.find(" --set")) + " --out " +
                              (dir / "hot.h5").string();
  EXPECT_EQ(test::run_cmd(run_hot).code, 0);
  const auto r = test::run_cmd(run_hot + sampled);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("system.components[hbm].hbm.temperature_c")) << r.err;
  const std::string cool = (dir / "cool_stacks.textproto").string();
  std::ofstream(cool) << "system { components { name: \"hbm\" hbm {"
                         " stack_temperature_c: [50, 50, 50, 50, 50] } } }\n";
  const auto rc = test::run_cmd(run.substr(0, run.find(" --set")) + " " + hot + " " + cool +
                                run.substr(run.find(" --set")) + sampled + " --out " +
                                (dir / "cool.h5").string());
  EXPECT_EQ(rc.code, 0) << rc.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tiersim
