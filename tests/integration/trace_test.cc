// `tiersim trace` records the op and object stream; a replay of it on the same hardware gives
// identical results (tokens, ops, every stat), for decode and for serving (idle gaps and
// per-step token counts included). Bad traces are rejected up front.
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

std::string tmp(const std::string& name) {
  return (fs::temp_directory_path() / ("tiersim_trace_" + std::to_string(getpid()) + "_" + name))
      .string();
}

void expect_same_results(const std::string& a, const std::string& b) {
  ResultReader x(a), y(b);
  for (const char* t : {"/tokens", "/ops"}) {
    const Table p = x.read_table(t), q = y.read_table(t);
    ASSERT_EQ(p.columns.size(), q.columns.size()) << t;
    for (size_t c = 0; c < p.columns.size(); ++c) {
      EXPECT_EQ(p.columns[c].u64, q.columns[c].u64) << t << " " << p.columns[c].name;
      EXPECT_EQ(p.columns[c].i64, q.columns[c].i64) << t << " " << p.columns[c].name;
      EXPECT_EQ(p.columns[c].f64, q.columns[c].f64) << t << " " << p.columns[c].name;
      EXPECT_EQ(p.columns[c].str, q.columns[c].str) << t << " " << p.columns[c].name;
    }
  }
  for (const char* s : {"/stats/hbm/bytes_read", "/stats/hbm/bytes_written",
                        "/stats/compute/busy_time", "/stats/sram/bytes_read"}) {
    EXPECT_EQ(x.read_doubles(s), y.read_doubles(s)) << s;
  }
  const Table o1 = x.read_table("/objects"), o2 = y.read_table("/objects");
  EXPECT_EQ(o1.find("name")->str, o2.find("name")->str);
  EXPECT_EQ(o1.find("confidence")->f64, o2.find("confidence")->f64);
}

void record_and_replay(const std::string& hardware, const std::string& files,
                       const std::string& tag) {
  const std::string trace = tmp(tag + ".trace"), orig = tmp(tag + "_orig.h5"),
                    replay = tmp(tag + "_replay.h5"), cfg = tmp(tag + "_replay.textproto");
  const std::string bin = test::tiersim_binary();
  auto r = test::run_cmd(bin + " trace " + hardware + " " + files + " --quiet --out " + trace);
  ASSERT_EQ(r.code, 0) << r.err;
  r = test::run_cmd(bin + " run " + hardware + " " + files + " --quiet --out " + orig);
  ASSERT_EQ(r.code, 0) << r.err;
  std::ofstream(cfg) << "workload { replay { trace: \"" << trace << "\" } }\n"
                     << "policy { placement: STREAM_ALL }\n"
                     << "run { seed: 1 fidelity: FAST max_sim_time_ps: 0 stats_interval_ps: 0 "
                        "op_records: OP_RECORDS_ALL }\n";
  r = test::run_cmd(bin + " run " + hardware + " " + cfg + " --quiet --out " + replay);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_results(orig, replay);
  for (const auto& f : {trace, orig, replay, cfg})
    fs::remove(f);
}

TEST(Trace, MoeDecodeReplaysIdentically) {
  record_and_replay(test::preset("hardware/h200.textproto"),
                    test::preset("models/mixtral_8x7b.textproto") + " " +
                        test::preset("studies/mixtral_8x7b.textproto") +
                        " --set workload.decode.decode_steps=4 --set run.op_records=OP_RECORDS_ALL",
                    "moe");
}

// W8A8 GEMMs (their input quantisation kernels unfused) and an FP8 KV dequantised in the
// attention kernel: the op records carry both, so the replay times them alike.
TEST(Trace, W8a8DecodeWithNarrowKvReplaysIdentically) {
  record_and_replay(test::preset("hardware/h100_sxm.textproto") + " " +
                        test::preset("software/tensorrt_llm.textproto") +
                        " --set software.fuse_elementwise=false",
                    test::preset("models/llama2_7b.textproto") + " " +
                        test::preset("studies/default.textproto") +
                        " --set workload.model.weight_dtype=FP8 --set workload.model.kv_dtype=FP8"
                        " --set workload.model.gemm_dtype=FP8 --set workload.decode.decode_steps=4"
                        " --set run.stats_interval_ps=0",
                    "w8a8");
}

TEST(Trace, ServingReplaysIdentically) {
  record_and_replay(
      test::preset("hardware/h100_sxm.textproto"),
      test::preset("models/llama3_8b.textproto") + " " +
          test::preset("studies/serving_llama3_8b.textproto") +
          " --set 'workload.serving.poisson={rate_per_s: 100 requests: 6}' "
          "--set 'workload.serving.output_tokens={fixed: 8}' --set run.op_records=OP_RECORDS_ALL",
      "serving");
}

TEST(Trace, BadTracesAreRejected) {
  const std::string junk = tmp("junk.trace"), cfg = tmp("junk.textproto");
  std::ofstream(junk) << "this is not a trace";
  std::ofstream(cfg) << "workload { replay { trace: \"" << junk << "\" } }\n";
  auto r =
      test::run_cmd(test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") +
                    " " + test::preset("studies/default.textproto") + " " + cfg + " --quiet");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.replay.trace"), std::string::npos) << r.err;
  // A replay takes no model.
  std::ofstream(cfg) << "workload { replay { trace: \"" << junk << "\" } }\n";
  r = test::run_cmd(test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") +
                    " " + test::preset("models/llama3_8b.textproto") + " " +
                    test::preset("studies/default.textproto") + " " + cfg + " --quiet");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.model: a replay takes its workload from the trace"),
            std::string::npos)
      << r.err;
  // trace needs --out.
  r = test::run_cmd(
      test::tiersim_binary() + " trace " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("models/llama3_8b.textproto") + " " + test::preset("studies/default.textproto"));
  EXPECT_EQ(r.code, 2);
  fs::remove(junk);
  fs::remove(cfg);
}

}  // namespace
}  // namespace tiersim
