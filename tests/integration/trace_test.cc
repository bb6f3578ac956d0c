// `tiersim trace` records the op and object stream; a replay of it on the same hardware gives
// identical results (tokens, ops, every stat), for decode and for serving (idle gaps and
// per-step token counts included). Bad traces are rejected up front.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/util/delimited_message_util.h>

#include "configs/tiersim.pb.h"
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

double summary_value(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line, name;
  double v;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    if (l >> name >> v && name == key) return v;
  }
  return -1;
}

// A residency program travels with the trace: the recorded run's program as written, or what
// emit_from_intents emitted (the compiler's output), replayed with use_program gives the same
// results; without use_program the replay has none. Illegal or misplaced programs exit 2.
TEST(Trace, TheResidencyProgramTravelsWithTheTrace) {
  const std::string hw = test::preset("hardware/h100_sxm.textproto") + " " +
                         test::preset("memory/hrm_sram_4x4.textproto") + " " +
                         test::preset("hardware/fragments/h100_with_hrm.textproto") + " " +
                         test::preset("software/cuda_events_per_kernel.textproto");
  const std::string files = test::preset("models/llama3_2_1b.textproto") + " " +
                            test::preset("studies/wired_hrm_llama3_2_1b.textproto") +
                            " --set workload.decode.decode_steps=6";
  // Every directive (the program of the residency-program tests), 256 MiB then 128 MiB.
  const std::string program =
      " --set 'policy.orchestration.wired={memory:\"hrm\" quota_bytes:268435456"
      " program{op:WIRED_BIND step:0 objects:\"layer15.*\"}"
      " program{op:WIRED_SOFT_PIN step:1 objects:\"layer14.*\"}"
      " program{op:WIRED_BIND step:2 objects:\"layer13.*\"}"
      " program{op:WIRED_UNPIN step:3 objects:\"layer13.*\"}"
      " program{op:WIRED_SET_QUOTA step:3 quota_bytes:134217728}"
      " program{op:WIRED_RELEASE step:4 objects:\"layer15.*\"}"
      " program{op:WIRED_BIND step:5 objects:\"layer15.*\"}}'";
  const std::string bin = test::tiersim_binary();
  const std::string cfg = tmp("program_replay.textproto");
  auto replay_config = [&](const std::string& trace, const std::string& quota, bool use) {
    std::ofstream(cfg) << "workload { replay { trace: \"" << trace
                       << "\" use_program: " << (use ? "true" : "false") << " } }\n"
                       << "policy { placement: ORCHESTRATED orchestration { fast_memory: \"hbm\" "
                          "resident_fraction: 1 controller: ON_ACCELERATOR notification: DOORBELL "
                          "wired { memory: \"hrm\" quota_bytes: "
                       << quota << " } } }\n"
                       << "run { seed: 1 fidelity: FAST max_sim_time_ps: 0 stats_interval_ps: 0 "
                          "op_records: OP_RECORDS_ALL }\n";
  };
  for (const std::string& how :
       {program, std::string(" --set policy.orchestration.wired.emit_from_intents=true")}) {
    const std::string trace = tmp("program.trace"), orig = tmp("program_orig.h5"),
                      replay = tmp("program_replay.h5");
    auto r = test::run_cmd(bin + " trace " + hw + " " + files + how +
                           " --set run.op_records=OP_RECORDS_ALL --quiet --out " + trace);
    ASSERT_EQ(r.code, 0) << r.err;
    auto o = test::run_cmd(bin + " run " + hw + " " + files + how +
                           " --set run.op_records=OP_RECORDS_ALL --out " + orig);
    ASSERT_EQ(o.code, 0) << o.err;
    const bool handwritten = how == program;
    replay_config(trace, handwritten ? "268435456" : "1073741824", true);
    auto p = test::run_cmd(bin + " run " + hw + " " + cfg + " --out " + replay);
    ASSERT_EQ(p.code, 0) << p.err;
    expect_same_results(orig, replay);
    for (const char* k : {"tpot_ms_mean", "wired_program_binds", "wired_bytes_per_token",
                          "wired_program_bind_bytes_per_token", "hbm_bytes_per_token"}) {
      EXPECT_EQ(summary_value(o.out, k), summary_value(p.out, k)) << k;
    }
    EXPECT_GT(summary_value(p.out, "wired_program_binds"), 0) << p.out;
    if (handwritten) {
      // 24 binds: layer15 (6 objects) at load, layer14, layer13 and layer15 again.
      EXPECT_EQ(summary_value(p.out, "wired_program_binds"), 24);
      // Without use_program the arbiter chooses instead: no program runs.
      replay_config(trace, "268435456", false);
      auto n = test::run_cmd(bin + " run " + hw + " " + cfg + " --out " + replay);
      ASSERT_EQ(n.code, 0) << n.err;
      EXPECT_EQ(summary_value(n.out, "wired_program_binds"), -1);
      // A replayed program is a mechanism that decides: a controller may own it, and the
      // residency map is looked up by its decisions.
      replay_config(trace, "268435456", true);
      auto w = test::run_cmd(
          bin + " run " + hw + " " + cfg +
          " --set 'policy.orchestration.controllers[+]={name:\"eng\" owns:[RESIDENCY_PROGRAM]"
          " parts{engine{units:1 clock_ghz:1 pipeline_cycles:100 initiation_interval_cycles:100"
          " doorbell_ps:1000}}}'"
          " --set 'policy.orchestration.residency_map={entries:64 software_latency_ps:1000}'"
          " --out " +
          replay);
      ASSERT_EQ(w.code, 0) << w.err;
      EXPECT_GT(summary_value(w.out, "controller_eng_decisions"), 0) << w.out;
      EXPECT_EQ(summary_value(w.out, "controller_eng_decisions"),
                summary_value(w.out, "controller_decisions"));
      EXPECT_GT(summary_value(w.out, "residency_map_misses"), 0);
      // Another quota than the program was made for.
      replay_config(trace, "134217728", true);
      n = test::run_cmd(bin + " run " + hw + " " + cfg + " --quiet");
      EXPECT_EQ(n.code, 2);
      EXPECT_NE(n.err.find("policy.orchestration.wired.quota_bytes: the trace's program was made "
                           "for a quota of 268435456 bytes"),
                std::string::npos)
          << n.err;
      // A directive that does not fit (the trace edited: a third layer bound at step 2): named
      // in the trace.
      {
        std::ifstream in(trace, std::ios::binary);
        google::protobuf::io::IstreamInputStream stream(&in);
        config::TraceHeader h;
        config::TraceOp op;
        bool eof = false;
        ASSERT_TRUE(google::protobuf::util::ParseDelimitedFromZeroCopyStream(&h, &stream, &eof));
        EXPECT_TRUE(h.has_program());
        EXPECT_EQ(h.program_quota_bytes(), 268435456u);
        auto* d = h.add_program();
        d->set_op(config::WIRED_BIND);
        d->set_step(2);
        d->add_objects("layer1.*");
        std::ofstream out(trace + ".edited", std::ios::binary);
        google::protobuf::util::SerializeDelimitedToOstream(h, &out);
        for (op.Clear();
             google::protobuf::util::ParseDelimitedFromZeroCopyStream(&op, &stream, &eof);
             op.Clear()) {
          google::protobuf::util::SerializeDelimitedToOstream(op, &out);
        }
      }
      replay_config(trace + ".edited", "268435456", true);
      n = test::run_cmd(bin + " run " + hw + " " + cfg + " --quiet");
      EXPECT_EQ(n.code, 2);
      EXPECT_NE(n.err.find("workload.replay.trace: \"" + trace +
                           ".edited\" record 1: program[7].objects: binding layer1."),
                std::string::npos)
          << n.err;
      fs::remove(trace + ".edited");
      // A program of the config's own beside the trace's; the trace's with a page cache.
      replay_config(trace, "268435456", true);
      n = test::run_cmd(bin + " run " + hw + " " + cfg +
                        " --set 'policy.orchestration.wired.program[+]={op:WIRED_BIND step:0 "
                        "objects:\"layer1.*\"}' --quiet");
      EXPECT_EQ(n.code, 2);
      EXPECT_NE(n.err.find("policy.orchestration.wired.program: not with "
                           "workload.replay.use_program"),
                std::string::npos)
          << n.err;
      n = test::run_cmd(bin + " run " + hw + " " + cfg +
                        " --set policy.orchestration.prefetch_layers=1 --quiet");
      EXPECT_EQ(n.code, 2);
      EXPECT_NE(n.err.find("workload.replay.use_program: not with layer prefetch"),
                std::string::npos)
          << n.err;
      n = test::run_cmd(bin + " run " + hw + " " + cfg +
                        " --set 'policy.orchestration.wired=!clear' --quiet");
      EXPECT_EQ(n.code, 2);
      EXPECT_NE(n.err.find("workload.replay.use_program: needs policy.orchestration.wired"),
                std::string::npos)
          << n.err;
    }
    for (const auto& f : {trace, orig, replay})
      fs::remove(f);
  }
  // A trace without a program; a trace whose program is malformed.
  const std::string plain = tmp("plain.trace");
  auto r = test::run_cmd(bin + " trace " + hw + " " + files + " --quiet --out " + plain);
  ASSERT_EQ(r.code, 0) << r.err;
  replay_config(plain, "268435456", true);
  r = test::run_cmd(bin + " run " + hw + " " + cfg + " --quiet");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("carries no residency program"), std::string::npos) << r.err;
  {
    std::ifstream in(plain, std::ios::binary);
    google::protobuf::io::IstreamInputStream stream(&in);
    config::TraceHeader h;
    bool eof = false;
    ASSERT_TRUE(google::protobuf::util::ParseDelimitedFromZeroCopyStream(&h, &stream, &eof));
    h.set_has_program(true);
    h.set_program_quota_bytes(268435456);
    h.add_program()->set_op(config::WIRED_BIND);  // no objects
    std::ofstream out(plain + ".bad", std::ios::binary);
    google::protobuf::util::SerializeDelimitedToOstream(h, &out);
  }
  replay_config(plain + ".bad", "268435456", true);
  r = test::run_cmd(bin + " run " + hw + " " + cfg + " --quiet");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("record 1: program[0].objects: required"), std::string::npos) << r.err;
  // A run cut short by a limit writes no trace: part of a run would look complete.
  const std::string cut = tmp("cut.trace");
  r = test::run_cmd(bin + " trace " + hw + " " + files +
                    " --set run.max_sim_time_ps=1000000 --quiet --out " + cut);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("a trace of part of a run is not written"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cut));
  for (const auto& f : {plain, plain + ".bad", cfg})
    fs::remove(f);
}

// A decode run with prefill: the trace keeps how many of its steps are prefill, so the replay's
// TPOT leaves them out as the recorded run's does.
TEST(Trace, PrefillStepsReplayAsPrefill) {
  const std::string hw = test::preset("hardware/h100_sxm.textproto");
  const std::string files =
      test::preset("models/llama3_2_1b.textproto") + " " +
      test::preset("studies/default.textproto") +
      " --set workload.decode.decode_steps=4 --set workload.decode.prefill=true";
  const std::string trace = tmp("prefill.trace"), cfg = tmp("prefill.textproto");
  const std::string bin = test::tiersim_binary();
  auto t = test::run_cmd(bin + " trace " + hw + " " + files + " --out " + trace);
  ASSERT_EQ(t.code, 0) << t.err;
  auto o = test::run_cmd(bin + " run " + hw + " " + files);
  ASSERT_EQ(o.code, 0) << o.err;
  std::ofstream(cfg) << "workload { replay { trace: \"" << trace << "\" } }\n"
                     << "policy { placement: STREAM_ALL }\n"
                     << "run { seed: 1 fidelity: FAST max_sim_time_ps: 0 stats_interval_ps: 0 "
                        "op_records: OP_RECORDS_NONE }\n";
  auto r = test::run_cmd(bin + " run " + hw + " " + cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(summary_value(o.out, "tpot_ms_mean"), 0);
  EXPECT_EQ(summary_value(o.out, "tpot_ms_mean"), summary_value(r.out, "tpot_ms_mean"));
  EXPECT_EQ(summary_value(o.out, "tpot_ms_mean"), summary_value(t.out, "tpot_ms_mean"));
  fs::remove(trace);
  fs::remove(cfg);
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
