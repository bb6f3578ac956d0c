// The two HBM levels on the same decode: a run at DETAILED fidelity and a run at FAST with the
// parameters `tiersim calibrate` derived from the same device agree on TPOT (slow: the detailed
// level simulates every 32-byte access).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

TEST(Fidelity, CalibratedFastAgreesWithDetailedOnDecode) {
  const fs::path dir = fs::temp_directory_path() / ("tiersim_fid_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string model = (dir / "small.textproto").string();
  std::ofstream(model)
      << "workload { model { name: \"small\" layers: 2 hidden_size: 1024 heads: 8"
         " kv_heads: 8 ffn_size: 4096 vocab_size: 8192 tied_embeddings: false"
         " mlp: SWIGLU norm: RMSNORM positional: ROPE weight_dtype: BF16 kv_dtype: BF16"
         " activation_dtype: BF16 } }\n";
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

}  // namespace
}  // namespace tiersim
