// Sweeps: expansion of a spec (product, zip, ranges, replicate seeds), bad specs located at their
// lines, a 64-point local sweep killed midway and resumed gives the same table as an
// uninterrupted one, failed and invalid points are recorded without stopping the sweep, and the
// Slurm job script slices the points into array tasks.
#include "models/run/sweep.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "models/config/errors.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

std::string tmpdir(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("tiersim_sweep_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string write_spec(const std::string& dir, const std::string& body) {
  const std::string path = dir + "/spec.textproto";
  std::ofstream(path) << "base: \"" << test::preset("hardware/h100_sxm.textproto") << "\"\n"
                      << "base: \"" << test::preset("models/llama3_8b.textproto") << "\"\n"
                      << "base: \"" << test::preset("studies/default.textproto") << "\"\n"
                      << "set: \"workload.decode.decode_steps=2\"\n"
                      << "set: \"run.op_records=OP_RECORDS_NONE\"\n"
                      << "set: \"run.stats_interval_ps=0\"\n"
                      << body;
  return path;
}

TEST(Sweep, ExpandsProductZipRangesAndSeeds) {
  const std::string dir = tmpdir("expand");
  SweepPlan p = load_sweep(write_spec(
      dir,
      "axes { path: \"workload.decode.batch_size\" name: \"batch\" values: [\"1\", \"2\"] }\n"
      "axes { path: \"workload.decode.context_tokens\" range { start: 100 stop: 300 step: 100 "
      "} }\n"
      "seeds: 2\nseed_base: 10\n"));
  ASSERT_EQ(p.points.size(), 2u * 3 * 2);
  EXPECT_EQ(p.axis_names[0], "batch");
  EXPECT_EQ(p.axis_names[1], "workload.decode.context_tokens");
  // Last axis fastest, replicates innermost.
  EXPECT_EQ(p.points[0].values, (std::vector<std::string>{"1", "100"}));
  EXPECT_EQ(p.points[1].seed, 11u);
  EXPECT_EQ(p.points[2].values, (std::vector<std::string>{"1", "200"}));
  EXPECT_EQ(p.points[6].values, (std::vector<std::string>{"2", "100"}));
  EXPECT_EQ(p.points[11].sets.back(), "run.seed=11");
  // Zip and a log range with integers.
  p = load_sweep(
      write_spec(dir,
                 "mode: ZIP\n"
                 "axes { path: \"workload.decode.batch_size\" values: [\"1\", \"2\", \"4\"] }\n"
                 "axes { path: \"workload.decode.context_tokens\" range { start: 128 stop: 2048 "
                 "count: 3 log: true integer: true } }\n"));
  ASSERT_EQ(p.points.size(), 3u);
  EXPECT_EQ(p.points[1].values, (std::vector<std::string>{"2", "512"}));
  EXPECT_FALSE(p.points[0].has_seed);
}

TEST(Sweep, BadSpecsAreLocated) {
  const std::string dir = tmpdir("bad");
  auto issues = [&](const std::string& body) -> std::vector<ConfigIssue> {
    try {
      load_sweep(write_spec(dir, body));
    } catch (const ConfigError& e) {
      return e.issues();
    }
    return {};
  };
  auto e = issues("axes { pth: \"x\" }\n");
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].where.line, 7);
  e = issues(
      "mode: ZIP\naxes { path: \"a\" values: [\"1\"] }\naxes { path: \"b\" values: "
      "[\"1\", \"2\"] }\n");
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].path, "axes[1]");
  e = issues("axes { path: \"a\" range { start: 1 stop: 2 } }\n");
  ASSERT_FALSE(e.empty());
  EXPECT_NE(e[0].message.find("either step or count"), std::string::npos);
}

std::string slurp_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// 64 points (8 batch sizes x 8 contexts), two at a time. Killed once at least 12 points are
// done, then rerun: the finished points are kept and the table equals an uninterrupted sweep's.
TEST(Sweep, KilledAndResumedGivesTheSameTable) {
  const std::string dir = tmpdir("resume");
  const std::string spec = write_spec(
      dir,
      "axes { path: \"workload.decode.batch_size\" range { start: 1 stop: 8 step: 1 integer: "
      "true } }\n"
      "axes { path: \"workload.decode.context_tokens\" range { start: 256 stop: 2048 step: 256 "
      "integer: true } }\n");
  const std::string resumed = dir + "/resumed", full = dir + "/full";
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();  // its own process group: the kill takes the running points too
    execl(test::tiersim_binary().c_str(), "tiersim", "sweep", spec.c_str(), "--out",
          resumed.c_str(), "--jobs", "2", "--quiet", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto finished = [&] {
    size_t n = 0;
    if (fs::exists(resumed + "/points")) {
      for (const auto& e : fs::directory_iterator(resumed + "/points"))
        n += e.path().extension() == ".h5";
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (finished() < 12 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(-pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const size_t before = finished();
  ASSERT_GE(before, 12u);
  ASSERT_LT(before, 64u) << "the sweep finished before it could be killed";
  EXPECT_FALSE(fs::exists(resumed + "/summary.csv"));
  auto r = test::run_cmd(test::tiersim_binary() + " sweep " + spec + " --out " + resumed +
                         " --jobs 2 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  r = test::run_cmd(test::tiersim_binary() + " sweep " + spec + " --out " + full +
                    " --jobs 2 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string a = slurp_file(resumed + "/summary.csv"), b = slurp_file(full + "/summary.csv");
  EXPECT_EQ(std::count(a.begin(), a.end(), '\n'), 65);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.find(",failed,"), std::string::npos);
  fs::remove_all(dir);
}

// A point that fails at run time and one whose config is invalid are recorded with their
// errors; the others complete; a different spec cannot reuse the directory.
TEST(Sweep, FailuresAreRecordedAndTheSweepGoesOn) {
  const std::string dir = tmpdir("fail");
  // batch 4096 x 100k tokens of KV does not fit the H100: invalid before running. A seed of
  // "x" is a bad override: invalid too.
  const std::string spec =
      write_spec(dir,
                 "axes { path: \"workload.decode.batch_size\" values: [\"1\", \"4096\", \"2\"] }\n"
                 "axes { path: \"workload.decode.context_tokens\" values: [\"100000\"] }\n");
  auto r =
      test::run_cmd(test::tiersim_binary() + " sweep " + spec + " --out " + dir + "/out --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string csv = slurp_file(dir + "/out/summary.csv");
  EXPECT_NE(csv.find("1,0,,4096,100000,invalid,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("0,0,,1,100000,ok,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("2,0,,2,100000,ok,"), std::string::npos) << csv;
  // Another spec into the same directory is refused (exit 2).
  const std::string other = write_spec(dir, "axes { path: \"run.seed\" values: [\"3\"] }\n");
  r = test::run_cmd(test::tiersim_binary() + " sweep " + other + " --out " + dir + "/out");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("holds a different plan"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

// An override that cannot apply to any config (an unknown field in the spec's set, an axis
// value that does not parse, a command-line --set) is refused before anything runs, naming the
// override and the point; nothing is written.
TEST(Sweep, OverridesThatCannotApplyAreRefusedUpFront) {
  const std::string dir = tmpdir("upfront");
  auto sweep = [&](const std::string& body, const std::string& extra) {
    fs::remove_all(dir + "/out");
    return test::run_cmd(test::tiersim_binary() + " sweep " + write_spec(dir, body) + " --out " +
                         dir + "/out --quiet " + extra);
  };
  auto r = sweep("set: \"workload.decode.decode_stepz=2\"\n", "");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("spec.textproto: workload.decode.decode_stepz: the override "
                       "\"workload.decode.decode_stepz=2\" does not apply"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("did you mean \"decode_steps\""), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out"));
  // The third value of the second axis: found at the first point that uses it.
  r = sweep(
      "axes { path: \"workload.decode.batch_size\" name: \"batch\" values: [\"1\", \"2\"] }\n"
      "axes { path: \"workload.decode.context_tokens\" name: \"ctx\" values: [\"128\", "
      "\"256\", \"many\"] }\n",
      "");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("\"workload.decode.context_tokens=many\" does not apply (point 2: "
                       "batch=1, ctx=many)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out"));
  r = sweep("", "--set workload.decode.batch_siz=3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown field \"batch_siz\""), std::string::npos) << r.err;
  r = sweep("", "--set workload.decode.batch_size");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--set[1]: \"workload.decode.batch_size\": expected path=value"),
            std::string::npos)
      << r.err;
  // A value that applies but fails validation stays the point's own status (see above).
  fs::remove_all(dir);
}

// An override that applies at some probe points and not at others (a field of a component
// that only some points add) is left to the points; one that fails wherever it is tried is
// refused.
TEST(Sweep, AnOverrideThatAppliesSomewhereIsLeftToThePoints) {
  SweepPlan plan;
  plan.spec.add_base(test::preset("hardware/h100_sxm.textproto"));
  plan.spec.add_base(test::preset("models/llama3_8b.textproto"));
  plan.spec.add_base(test::preset("studies/default.textproto"));
  plan.axis_names = {"extra", "latency"};
  const std::string add = "system.components[+]={name: \"x2\" sram {}}";
  const std::string use = "system.components[x2].sram.latency_ps=1";
  SweepPoint p0, p1;
  p0.index = 0;
  p0.values = {"none", "1"};
  p0.sets = {use};
  p1.index = 1;
  p1.values = {"x2", "1"};
  p1.sets = {add, use};
  plan.points = {p0, p1};
  EXPECT_NO_THROW(check_plan_overrides(plan, "spec.textproto"));
  plan.points = {p0};
  try {
    check_plan_overrides(plan, "spec.textproto");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.issues().size(), 1u);
    EXPECT_NE(e.issues()[0].message.find("the override \"" + use + "\" does not apply"),
              std::string::npos)
        << e.issues()[0].message;
  }
}

// --set on the command line joins the spec's set list: it applies to every point (after the
// spec's own sets, so it wins over them), the stored plan holds it, and a rerun with a
// different --set into the same directory is refused.
TEST(Sweep, CommandLineSetsJoinThePlan) {
  const std::string dir = tmpdir("cliset");
  const std::string spec =
      write_spec(dir, "axes { path: \"workload.decode.batch_size\" values: [\"1\", \"2\"] }\n");
  auto r = test::run_cmd(test::tiersim_binary() + " sweep " + spec + " --out " + dir +
                         "/out --quiet --set workload.decode.decode_steps=3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(
      slurp_file(dir + "/out/sweep.textproto").find("set: \"workload.decode.decode_steps=3\""),
      std::string::npos);
  r = test::run_cmd(test::tiersim_binary() + " report " + dir + "/out/points/p00001.h5 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"decode_steps\":3"), std::string::npos) << r.out;
  r = test::run_cmd(test::tiersim_binary() + " sweep " + spec + " --out " + dir +
                    "/out --quiet --set workload.decode.decode_steps=4");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("holds a different plan"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

// An axis named as a summary metric would make two table columns of one name: the collection
// stops with exit 2 naming the column, and the points' results stay for a renamed plan.
TEST(Sweep, AnAxisNamedAsAMetricIsRefusedAtCollection) {
  const std::string dir = tmpdir("axisname");
  const std::string spec = write_spec(
      dir,
      "axes { path: \"workload.decode.batch_size\" name: \"decode_steps\" values: [\"1\"] }\n");
  auto r =
      test::run_cmd(test::tiersim_binary() + " sweep " + spec + " --out " + dir + "/out --quiet");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("the column \"decode_steps\" is both an axis and a summary metric"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(fs::exists(dir + "/out/points/p00000.h5"));
  fs::remove_all(dir);
}

TEST(Sweep, SlurmScriptSlicesPointsIntoArrayTasks) {
  const std::string dir = tmpdir("slurm");
  const std::string spec = write_spec(
      dir,
      "name: \"s\"\naxes { path: \"workload.decode.batch_size\" range { start: 1 stop: 10 "
      "step: 1 integer: true } }\n");
  auto r = test::run_cmd(test::tiersim_binary() + " sweep " + spec + " --out " + dir +
                         "/out --slurm --no-submit --points-per-task 3 --array-limit 2 "
                         "--partition debug");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string script = slurp_file(dir + "/out/sweep.sbatch");
  EXPECT_NE(script.find("#SBATCH --array=0-3%2"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --partition=debug"), std::string::npos);
  EXPECT_NE(script.find("sweep run-task"), std::string::npos);
  // A task runs its slice; collect reports the rest as missing.
  r = test::run_cmd(test::tiersim_binary() + " sweep run-task " + dir +
                    "/out --task 1 --points-per-task 3");
  ASSERT_EQ(r.code, 0) << r.err;
  r = test::run_cmd(test::tiersim_binary() + " sweep collect " + dir + "/out");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("10 points: 3 ok, 0 failed, 0 invalid, 7 missing"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("missing points: 0 1 2 6 7 8 9"), std::string::npos) << r.out;
  // A point still running (its stderr file open, no exit status yet) is missing, not failed.
  std::ofstream(dir + "/out/points/p00000.err") << "some progress output\n";
  r = test::run_cmd(test::tiersim_binary() + " sweep collect " + dir + "/out");
  EXPECT_NE(r.out.find("3 ok, 0 failed, 0 invalid, 7 missing"), std::string::npos) << r.out;
  std::ofstream(dir + "/out/points/p00000.err", std::ios::app) << "exit code 1\n";
  r = test::run_cmd(test::tiersim_binary() + " sweep collect " + dir + "/out");
  EXPECT_NE(r.out.find("3 ok, 1 failed, 0 invalid, 6 missing"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tiersim
