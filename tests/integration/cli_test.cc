// The tiersim binary as users meet it: exit codes, error messages, determinism, atomic results.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "models/core/registry.h"
#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

class Cli : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tiersim_cli_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string tiersim(const std::string& args) { return test::tiersim_binary() + " " + args; }
  std::string base() {
    return test::preset("hardware/a100_80gb.textproto") + " " +
           test::preset("models/llama2_7b.textproto") + " " +
           test::preset("studies/default.textproto");
  }
  std::string path(const std::string& name) { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
    return path(name);
  }
  fs::path dir_;
};

TEST_F(Cli, HelpVersionAndUnknownCommand) {
  auto r = test::run_cmd(tiersim("--help"));
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("usage: tiersim"));
  r = test::run_cmd(tiersim("--version"));
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("tiersim "));
  r = test::run_cmd(tiersim("frobnicate"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command"));
  r = test::run_cmd(tiersim("run --bogus " + base()));
  EXPECT_EQ(r.code, 2);
  r = test::run_cmd(tiersim(""));
  EXPECT_EQ(r.code, 2);
}

TEST_F(Cli, ListPrintsEveryRegisteredComponentKindOnePerLine) {
  auto r = test::run_cmd(tiersim("list"));
  ASSERT_EQ(r.code, 0);
  std::istringstream lines(r.out);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    const auto& k = component_kinds().at(n++);
    EXPECT_EQ(line, k.config_name + "  " + k.description);
  }
  EXPECT_EQ(n, component_kinds().size());
  // Every kind of the config's Component oneof is registered.
  const auto* oneof = config::Component::descriptor()->FindOneofByName("kind");
  EXPECT_EQ(static_cast<size_t>(oneof->field_count()), component_kinds().size());
  r = test::run_cmd(tiersim("list workloads"));
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("decode  "));
}

TEST_F(Cli, ConfigPrintsTheResolvedConfig) {
  auto r = test::run_cmd(tiersim("config " + base() + " --set workload.decode.batch_size=3"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("batch_size: 3"));
  EXPECT_THAT(r.out, HasSubstr("name: \"llama2_7b\""));
}

TEST_F(Cli, TypoInAConfigFieldExits2WithFileLineAndPath) {
  const std::string f =
      write("typo.textproto", "workload {\n  decode {\n    batch_sise: 2\n  }\n}\n");
  auto r = test::run_cmd(tiersim("run " + base() + " " + f));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, f + ":3: workload.decode.batch_sise: unknown field \"batch_sise\" in "
                       "DecodeScenario (did you mean \"batch_size\"?)\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(Cli, BadEnumExits2WithFileLineAndPath) {
  const std::string f = write("enum.textproto", "run {\n  op_records: SOME\n}\n");
  auto r = test::run_cmd(tiersim("run " + base() + " " + f));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr(f + ":2: run.op_records: unknown enum value \"SOME\"; expected "
                                   "one of OP_RECORDS_ALL"));
}

TEST_F(Cli, BadSetPathExits2NamingTheArgumentAndPath) {
  auto r = test::run_cmd(
      tiersim("run " + base() + " --set run.seed=3 --set system.components[hbm].hbm.stacks=6"));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "--set[2]: system.components[hbm].hbm.stacks: unknown field \"stacks\" in "
            "HbmFast (did you mean \"stack_count\"?)\n");
}

// Presets as files: PATH=@FILE replaces the message at PATH with a fragment file's (a link
// preset on a CXL link keeps none of the CXL link's fields), PATH+=@FILE merges it (the CXL
// flit stays: a hybrid, on purpose), [+] appends an element; bad fragments exit 2 naming the
// fragment's file and line, or the argument.
TEST_F(Cli, FragmentFilesReplaceOrMergeAndElementsAppend) {
  const std::string cxl = test::preset("hardware/h100_sxm.textproto") + " " +
                          test::preset("memory/cxl_type3_gen5_x8.textproto") + " " +
                          test::preset("switches/cxl_switch_gen5.textproto") + " " +
                          test::preset("hardware/fragments/h100_weights_in_cxl.textproto") + " " +
                          test::preset("models/llama3_2_1b.textproto") + " " +
                          test::preset("studies/default.textproto");
  const std::string cpo = test::preset("links/optics_cpo_1600g.textproto");
  const std::string link = "system.links[switch_cxl].serial";
  auto serial_of = [&](const std::string& set) {
    auto r = test::run_cmd(tiersim("config " + cxl + " --set '" + set + "'"));
    EXPECT_EQ(r.code, 0) << r.err;
    const size_t at = r.out.find("name: \"switch_cxl\"");
    return at == std::string::npos ? std::string()
                                   : r.out.substr(at, r.out.find("links {", at) - at);
  };
  const std::string replaced = serial_of(link + "=@" + cpo);
  EXPECT_THAT(replaced, HasSubstr("lanes: 16"));
  EXPECT_THAT(replaced, HasSubstr("laser_power_w: 1.12"));
  EXPECT_THAT(replaced, testing::Not(HasSubstr("flit_bytes")));
  const std::string merged = serial_of(link + "+=@" + cpo);
  EXPECT_THAT(merged, HasSubstr("lanes: 16"));
  EXPECT_THAT(merged, HasSubstr("flit_bytes: 68"));
  // Appending repeated elements, then addressing them.
  auto r = test::run_cmd(
      tiersim("config " + base() +
              " --set 'system.components[hbm].hbm.refresh_rate[+]={above_c: 85 multiplier: 2}'"
              " --set system.components[hbm].hbm.refresh_rate[+].above_c=95"
              " --set system.components[hbm].hbm.refresh_rate[1].multiplier=4"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("above_c: 85\n        multiplier: 2"));
  EXPECT_THAT(r.out, HasSubstr("above_c: 95\n        multiplier: 4"));
  // Bad fragments and misuse.
  const std::string bad = write("bad.textproto", "lanes: 4\nbogus: 3\n");
  r = test::run_cmd(tiersim("config " + cxl + " --set " + link + "=@" + bad));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr(bad + ":2: " + link + ": "));
  EXPECT_THAT(r.err, HasSubstr("bogus"));
  r = test::run_cmd(tiersim("config " + cxl + " --set " + link + "=@" + path("none.textproto")));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--set[1]: " + link + ": cannot read fragment file"));
  r = test::run_cmd(tiersim("config " + base() + " --set workload.decode.batch_size=@" + bad));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("this is a scalar field"));
  r = test::run_cmd(tiersim("config " + base() + " --set 'run+={seed: 3}'"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("PATH+=@FILE"));
  // A new component is named in errors as later --set arguments would name it.
  r = test::run_cmd(
      tiersim("config " + base() + " --set 'system.components[+]={name: \"hbm2\" hbm {}}'"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--set[1]: system.components[hbm2]"));
}

TEST_F(Cli, MissingFileAndUnwritableOutputAreBadInput) {
  auto r = test::run_cmd(tiersim("run " + path("nope.textproto")));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("nope.textproto: cannot read config file: no such file"));
  r = test::run_cmd(tiersim("run " + base() + " --out " + dir_.string()));
  EXPECT_EQ(r.code, 2);
  r = test::run_cmd(tiersim("report " + path("missing.h5")));
  EXPECT_EQ(r.code, 2);
}

TEST_F(Cli, SameConfigAndSeedGiveIdenticalSummaryAndTokens) {
  const std::string args = base() + " --quiet --set workload.decode.decode_steps=6";
  ASSERT_EQ(test::run_cmd(tiersim("run " + args + " --out " + path("a.h5"))).code, 0);
  ASSERT_EQ(test::run_cmd(tiersim("run " + args + " --out " + path("b.h5"))).code, 0);
  ResultReader a(path("a.h5")), b(path("b.h5"));
  auto sa = a.summary(), sb = b.summary();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].name, sb[i].name);
    if (sa[i].name == "wall_time_s") continue;          // the one metric of the host, not the model
    EXPECT_EQ(sa[i].value, sb[i].value) << sa[i].name;  // bit for bit
  }
  Table ta = a.read_table("/tokens"), tb = b.read_table("/tokens");
  ASSERT_EQ(ta.rows(), 6u);
  for (const auto& col : ta.columns) {
    const auto* other = tb.find(col.name);
    ASSERT_NE(other, nullptr);
    EXPECT_EQ(col.u64, other->u64) << col.name;
    EXPECT_EQ(col.f64, other->f64) << col.name;
  }
  EXPECT_EQ(a.read_string("/meta/config"), b.read_string("/meta/config"));
  // A different seed is recorded (the fast decode model draws no random numbers yet).
  ASSERT_EQ(test::run_cmd(tiersim("run " + args + " --set run.seed=9 --out " + path("c.h5"))).code,
            0);
  EXPECT_THAT(ResultReader(path("c.h5")).read_string("/meta/config"), HasSubstr("seed: 9"));
}

TEST_F(Cli, ResultFileHasMetaSummaryStatsTokensAndOps) {
  auto r = test::run_cmd(
      tiersim("run " + base() + " --set workload.decode.decode_steps=3 --out " + path("r.h5")));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("tpot_ms_mean"));
  ResultReader h(path("r.h5"));
  for (const char* p : {"/meta/config", "/meta/overrides", "/meta/version", "/meta/git_revision",
                        "/meta/seed", "/meta/wall_time_s", "/stats/time_ps",
                        "/stats/hbm/bytes_read", "/stats/compute/utilization", "/tokens", "/ops"}) {
    EXPECT_TRUE(h.exists(p)) << p;
  }
  EXPECT_EQ(h.read_strings("/meta/overrides"),
            std::vector<std::string>{"workload.decode.decode_steps=3"});
  std::vector<std::string> names;
  for (const auto& s : h.summary())
    names.push_back(s.name);
  for (const char* n :
       {"tpot_ms_mean", "tpot_ms_p50", "tpot_ms_p99", "tokens_per_s", "decode_steps",
        "hbm_bytes_per_token", "sram_bytes_per_token", "sim_time_s", "wall_time_s"}) {
    EXPECT_THAT(names, testing::Contains(n));
  }
  EXPECT_EQ(h.attribute("/stats/hbm/bytes_read", "unit"), "bytes");
  EXPECT_EQ(h.read_table("/ops").rows(), 3u * (1 + 32 * 11 + 2));

  r = test::run_cmd(tiersim("report " + path("r.h5") + " --json"));
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_THAT(r.out, HasSubstr("\"tpot_ms_p99\":"));
  EXPECT_THAT(r.out, HasSubstr("\"decode_steps\":3"));
  r = test::run_cmd(tiersim("report " + path("r.h5")));
  EXPECT_THAT(r.out, HasSubstr("decode_steps"));
}

TEST_F(Cli, CalibrateWritesAFragmentThatMergesIntoTheRun) {
  // The hardware alone: calibrate runs no workload, so it needs no model, policy or run.
  const std::string inputs = test::preset("hardware/h100_sxm.textproto") + " " +
                             test::preset("memory/hbm3_6400.textproto");
  const std::string workload = " " + test::preset("models/llama3_8b.textproto") + " " +
                               test::preset("studies/default.textproto");
  const std::string frag = path("cal.textproto");
  auto r = test::run_cmd(tiersim("calibrate " + inputs + " --duration-us 40 --out " + frag));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("decode_tiles"));
  EXPECT_THAT(r.out, HasSubstr("unloaded_read"));
  EXPECT_THAT(r.out, HasSubstr("bandwidth patterns ran 193 us"));  // raised from 40: refresh
  const std::string text = test::slurp(frag);
  EXPECT_THAT(text, HasSubstr("efficiency_fraction: 0.8"));
  EXPECT_THAT(text, HasSubstr("calibrated by `tiersim calibrate`"));
  r = test::run_cmd(tiersim("config " + inputs + workload + " " + frag));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, testing::Not(HasSubstr("efficiency_fraction: 0.87\n")));
  // Without a device there is nothing to calibrate from.
  r = test::run_cmd(tiersim("calibrate " + base()));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs a device"));
  r = test::run_cmd(tiersim("calibrate " + inputs + " --component compute"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("no detailed level"));
}

TEST_F(Cli, MembenchWritesABandwidthLatencyTableThatPlots) {
  // The hardware alone, as for calibrate; the system is still checked (a bad field is exit 2).
  const std::string inputs = test::preset("hardware/h100_sxm.textproto") + " " +
                             test::preset("memory/hbm3_6400.textproto");
  const std::string out = path("mb.h5");
  auto r = test::run_cmd(tiersim("membench " + inputs +
                                 " --pattern stream --request-bytes 4096 --points 1,4,64"
                                 " --duration-us 5 --out " +
                                 out));
  ASSERT_EQ(r.code, 0) << r.err;
  Table t = ResultReader(out).read_table("/membench");
  ASSERT_EQ(t.rows(), 3u);
  const auto& bw = t.find("bandwidth_bytes_per_s")->f64;
  const auto& lat = t.find("mean_latency_ns")->f64;
  EXPECT_LT(bw[0], bw[1]);  // more in flight: more bandwidth ...
  EXPECT_LT(bw[1], bw[2]);
  EXPECT_LT(lat[0], lat[2]);  // ... and more latency
  const std::string png = path("mb.png");
  r = test::run_cmd("/usr/bin/python3 " + test::source_dir() + "/scripts/plot_membench " + png +
                    " " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(fs::file_size(png), 10000u);
  // Bad arguments are bad input.
  EXPECT_EQ(test::run_cmd(tiersim("membench " + inputs + " --pattern zigzag --out " + out)).code,
            2);
  EXPECT_EQ(test::run_cmd(tiersim("membench " + inputs + " --request-bytes 48 --out " + out)).code,
            2);
  EXPECT_EQ(test::run_cmd(tiersim("membench " + base() + " --out " + out)).code, 2);
  r = test::run_cmd(tiersim("membench " + inputs +
                            " --set system.components[hbm].hbm.stack_count=0 --out " + out));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("stack_count"));
}

TEST_F(Cli, OpRecordsAndMaxSimTimeChangeWhatIsRecorded) {
  const std::string args = base() + " --quiet --set workload.decode.decode_steps=3";
  ASSERT_EQ(test::run_cmd(tiersim("run " + args + " --set run.op_records=OP_RECORDS_FIRST_STEP" +
                                  " --out " + path("first.h5")))
                .code,
            0);
  EXPECT_EQ(ResultReader(path("first.h5")).read_table("/ops").rows(), 1u + 32 * 11 + 2);
  ASSERT_EQ(test::run_cmd(tiersim("run " + args + " --set run.op_records=OP_RECORDS_NONE" +
                                  " --out " + path("none.h5")))
                .code,
            0);
  EXPECT_EQ(ResultReader(path("none.h5")).read_table("/ops").rows(), 0u);
  // A step takes ~10.2 ms here: a 25 ms limit stops the run after two steps.
  auto r = test::run_cmd(tiersim("run " + args + " --set run.max_sim_time_ps=25000000000" +
                                 " --out " + path("cut.h5")));
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader cut(path("cut.h5"));
  EXPECT_EQ(cut.read_string("/meta/stopped_by"), "max_sim_time");
  EXPECT_EQ(cut.read_table("/tokens").rows(), 2u);
}

TEST_F(Cli, SigkillLeavesNothingAtTheOutPath) {
  // A long run (70B-class traffic on H200 for many steps), killed while it simulates.
  const std::string out = path("killed.h5");
  const std::string cmd = test::tiersim_binary();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string h = test::preset("hardware/h200.textproto");
    const std::string m = test::preset("models/llama2_70b.textproto");
    const std::string s = test::preset("studies/default.textproto");
    execl(cmd.c_str(), cmd.c_str(), "run", h.c_str(), m.c_str(), s.c_str(), "--set",
          "workload.decode.decode_steps=20000", "--set",
          "system.components[compute].compute.tile_bytes=65536", "--quiet", "--out", out.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";
  EXPECT_FALSE(fs::exists(out));
  // Whatever it left behind is visibly partial.
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_THAT(e.path().filename().string(), HasSubstr(".partial-"));
  }
}

}  // namespace
}  // namespace tiersim
