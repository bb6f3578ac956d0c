// `tiersim study SPEC --out DIR`: a baseline and mechanism variants over optional axes with
// replicate seeds, run as a sweep (a `variant` axis first), then reported by
// scripts/study_report: DIR/report/report.md with a claims table (metric, baseline, mechanism,
// delta, 95% confidence interval over seeds) and plots.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <stdexcept>
#include <thread>

#include "models/config/errors.h"
#include "models/core/input_file.h"
#include "models/core/registry.h"
#include "models/run/result_file.h"
#include "models/run/study.h"
#include "models/run/sweep.h"

#ifndef TIERSIM_SCRIPTS_DIR
#define TIERSIM_SCRIPTS_DIR "scripts"
#endif

namespace tiersim {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

Study load_study(const std::string& path) {
  Study s;
  parse_spec_file(path, s.spec);
  resolve_spec_paths(path, *s.spec.mutable_base());
  auto& spec = s.spec;
  std::vector<ConfigIssue> issues;
  auto fail = [&](const std::string& field, const std::string& message) {
    issues.push_back(ConfigIssue{{path, 0}, field, message});
  };
  if (!spec.has_baseline() || spec.baseline().name().empty()) {
    fail("baseline.name", "the study needs a named baseline");
  }
  if (spec.mechanisms_size() == 0) fail("mechanisms", "the study needs at least one mechanism");
  std::set<std::string> names{spec.baseline().name()};
  for (int i = 0; i < spec.mechanisms_size(); ++i) {
    const std::string at = "mechanisms[" + std::to_string(i) + "]";
    if (spec.mechanisms(i).name().empty()) fail(at + ".name", "required field is not set");
    if (!names.insert(spec.mechanisms(i).name()).second) {
      fail(at + ".name", "\"" + spec.mechanisms(i).name() + "\" names two variants");
    }
  }
  for (int i = 0; i < spec.metrics_size(); ++i) {
    if (spec.metrics(i).name().empty()) {
      fail("metrics[" + std::to_string(i) + "].name", "required field is not set");
    }
  }
  if (!issues.empty()) throw ConfigError(issues);
  if (spec.metrics_size() == 0) {
    auto* m = spec.add_metrics();
    m->set_name("tpot_ms_mean");
    m->set_lower_is_better(true);
    spec.add_metrics()->set_name("tokens_per_s");
  }
  // The points of the axes (with seeds), then every variant over them.
  config::SweepSpec sweep;
  sweep.set_name(spec.name());
  *sweep.mutable_base() = spec.base();
  *sweep.mutable_set() = spec.set();
  *sweep.mutable_axes() = spec.axes();
  sweep.set_mode(spec.mode());
  if (spec.has_seeds()) sweep.set_seeds(spec.seeds());
  if (spec.has_seed_base()) sweep.set_seed_base(spec.seed_base());
  const SweepPlan points = expand_sweep(sweep, path);
  const uint64_t runs = points.points.size() * (uint64_t(spec.mechanisms_size()) + 1);
  if (runs > kMaxSweepPoints) {
    throw ConfigError({ConfigIssue{{path, 0},
                                   "mechanisms",
                                   "the study plans " + std::to_string(runs) + " runs; at most " +
                                       std::to_string(kMaxSweepPoints)}});
  }
  s.plan.spec = sweep;
  s.plan.axis_names.push_back("variant");
  for (const auto& n : points.axis_names)
    s.plan.axis_names.push_back(n);
  std::vector<const config::StudyVariant*> variants{&spec.baseline()};
  for (const auto& m : spec.mechanisms())
    variants.push_back(&m);
  for (const auto* v : variants) {
    for (const auto& p : points.points) {
      SweepPoint q = p;
      q.index = static_cast<uint32_t>(s.plan.points.size());
      q.values.insert(q.values.begin(), v->name());
      // Base overrides, then the variant's, then the axes' and the seed.
      q.sets.assign(spec.set().begin(), spec.set().end());
      q.sets.insert(q.sets.end(), v->set().begin(), v->set().end());
      q.sets.insert(q.sets.end(), p.sets.begin() + spec.set_size(), p.sets.end());
      s.plan.points.push_back(std::move(q));
    }
  }
  return s;
}

namespace {

int run_study(const std::vector<std::string>& args) {
  std::string spec_path, dir;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  bool quiet = false, no_report = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--out" || a == "--jobs") {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      if (a == "--out") {
        dir = args[++i];
      } else {
        const std::string v = args[++i];
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (end == v.c_str() || *end != '\0' || n <= 0) {
          throw std::invalid_argument("--jobs: \"" + v + "\" is not a positive integer");
        }
        jobs = static_cast<unsigned>(n);
      }
    } else if (a == "--quiet") {
      quiet = true;
    } else if (a == "--no-report") {
      no_report = true;
    } else if (a.rfind("--", 0) == 0) {
      throw std::invalid_argument("unknown option " + a);
    } else if (spec_path.empty()) {
      spec_path = a;
    } else {
      throw std::invalid_argument("give one study spec");
    }
  }
  if (spec_path.empty()) throw std::invalid_argument("give a study spec");
  if (dir.empty()) throw std::invalid_argument("--out DIR is required");
  const Study study = load_study(spec_path);
  std::string text;
  pb::TextFormat::PrintToString(study.spec, &text);
  prepare_plan_dir(dir, "study.textproto", text);
  // What the report needs, as JSON (variants, axes, metrics and their directions).
  std::string json;
  pb::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  if (!pb::util::MessageToJsonString(study.spec, &json, o).ok()) {
    throw std::runtime_error("cannot encode the study as JSON");
  }
  if (const std::string problem =
          write_text_atomically((fs::path(dir) / "study.json").string(), json);
      !problem.empty()) {
    throw std::runtime_error(problem);
  }
  std::vector<uint32_t> all;
  for (const auto& p : study.plan.points)
    all.push_back(p.index);
  run_points(study.plan, dir, self_binary(), all, jobs, !quiet && isatty(STDERR_FILENO));
  const CollectOutcome c = collect_sweep(study.plan, dir);
  if (!quiet) {
    std::cout << study.plan.points.size() << " runs: " << c.ok << " ok, " << c.failed << " failed, "
              << c.invalid << " invalid\n";
  }
  std::cout.flush();
  if (no_report) return 0;
  // The report: Debian's python3 with pandas and matplotlib.
  const char* env = std::getenv("TIERSIM_SCRIPTS_DIR");
  const std::string script = (fs::path(env ? env : TIERSIM_SCRIPTS_DIR) / "study_report").string();
  if (!path_exists(script)) {
    throw std::runtime_error("cannot find " + script + " (set TIERSIM_SCRIPTS_DIR)");
  }
  const std::string cmd =
      "/usr/bin/python3 '" + script + "' '" + dir + "'" + (quiet ? " > /dev/null" : "");
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    throw std::runtime_error("the report script failed (exit " +
                             std::to_string(WIFEXITED(rc) ? WEXITSTATUS(rc) : rc) + ")");
  }
  return 0;
}

const CommandRegistrar kRegistrar(CommandKind{
    "study",
    "  study SPEC --out DIR [--jobs N] [--quiet] [--no-report]\n"
    "                     run a baseline and mechanism variants over axes and seeds (as a\n"
    "                     sweep, resumable) and write DIR/report/report.md: a claims table\n"
    "                     with 95% confidence intervals over seeds, and plots\n",
    run_study});

}  // namespace

}  // namespace tiersim
