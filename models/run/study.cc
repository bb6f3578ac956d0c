// `tiersim study SPEC --out DIR`: a baseline and mechanism variants over optional axes with
// replicate seeds, run as a sweep (a `variant` axis first), then reported by
// scripts/study_report: DIR/report/report.md with a claims table (metric, baseline, mechanism,
// delta, 95% confidence interval over seeds) and plots.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
#include "models/run/slurm.h"
#include "models/run/study.h"
#include "models/run/sweep.h"

#ifndef TIERSIM_SCRIPTS_DIR
#define TIERSIM_SCRIPTS_DIR "scripts"
#endif

namespace tiersim {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

Study load_study(const std::string& path, const std::vector<std::string>& extra_sets) {
  Study s;
  parse_spec_file(path, s.spec);
  resolve_spec_paths(path, *s.spec.mutable_base());
  resolve_fragment_refs(path, *s.spec.mutable_set(), true);
  append_command_line_sets(extra_sets, *s.spec.mutable_set());
  resolve_fragment_refs(path, *s.spec.mutable_baseline()->mutable_set(), true);
  for (auto& m : *s.spec.mutable_mechanisms())
    resolve_fragment_refs(path, *m.mutable_set(), true);
  for (auto& a : *s.spec.mutable_axes())
    resolve_fragment_refs(path, *a.mutable_values(), false);
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
  // A command-line --set runs before every variant's own sets: on a path a variant sets (or a
  // part of it, or a field inside it) it would lose to that variant or change what the
  // variant switches on in the others (a policy section whose presence enables it).
  auto assigned_path = [](const std::string& assignment) {
    std::string p = assignment.substr(0, assignment.find('='));
    if (!p.empty() && p.back() == '+') p.pop_back();
    if (p.size() >= 3 && p.compare(p.size() - 3, 3, "[+]") == 0) p.resize(p.size() - 3);
    return p;
  };
  auto overlaps = [](const std::string& x, const std::string& y) {
    auto inside = [](const std::string& outer, const std::string& inner) {
      return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
             (inner[outer.size()] == '.' || inner[outer.size()] == '[');
    };
    return x == y || inside(x, y) || inside(y, x);
  };
  std::vector<const config::StudyVariant*> all_variants{&spec.baseline()};
  for (const auto& m : spec.mechanisms())
    all_variants.push_back(&m);
  for (size_t k = 0; k < extra_sets.size(); ++k) {
    const std::string mine = assigned_path(extra_sets[k]);
    for (const auto* v : all_variants) {
      for (const auto& theirs : v->set()) {
        if (overlaps(mine, assigned_path(theirs))) {
          issues.push_back(ConfigIssue{
              {"--set", static_cast<int>(k + 1)},
              mine,
              "overlaps what variant \"" + v->name() + "\" sets (\"" + theirs +
                  "\"); a command-line --set applies to every variant before its own sets, so "
                  "change the spec (its set list or that variant) instead"});
        }
      }
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

// DIR/report/report.md from the collected table (scripts/study_report: Debian's python3 with
// pandas and matplotlib).
void write_report(const std::string& dir, bool quiet) {
  const char* env = std::getenv("TIERSIM_SCRIPTS_DIR");
  const std::string script = (fs::path(env ? env : TIERSIM_SCRIPTS_DIR) / "study_report").string();
  if (!path_exists(script)) {
    throw std::runtime_error("cannot find " + script + " (set TIERSIM_SCRIPTS_DIR)");
  }
  const std::string cmd = "/usr/bin/python3 " + shell_quote(script) + " " + shell_quote(dir) +
                          (quiet ? " > /dev/null" : "");
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    throw std::runtime_error("the report script failed (exit " +
                             std::to_string(WIFEXITED(rc) ? WEXITSTATUS(rc) : rc) + ")");
  }
}

// Collects the runs and writes the report. Exit code 1 when a run did not complete: with the
// baseline's runs incomplete there is nothing to compare with, so no report.
int collect_and_report(const Study& study, const std::string& dir, bool quiet, bool no_report) {
  const CollectOutcome c = collect_sweep(study.plan, dir);
  if (!quiet) {
    std::cout << study.plan.points.size() << " runs: " << c.ok << " ok, " << c.failed << " failed, "
              << c.invalid << " invalid, " << c.missing << " missing\n";
  }
  std::cout.flush();
  std::vector<uint32_t> baseline_incomplete;
  for (const auto& p : study.plan.points) {
    if (p.values.empty() || p.values[0] != study.spec.baseline().name()) continue;
    const std::string h5 = point_file(dir, p.index, "h5");
    if (!path_exists(h5) || !result_file_problem(h5).empty())
      baseline_incomplete.push_back(p.index);
  }
  if (!baseline_incomplete.empty()) {
    std::cerr << "tiersim study: " << baseline_incomplete.size() << " of the baseline's runs did "
              << "not complete (run";
    for (uint32_t i : baseline_incomplete)
      std::cerr << " " << i;
    std::cerr << "; their errors are in " << (fs::path(dir) / "points").string()
              << "/*.err, *.invalid); no report\n";
    return 1;
  }
  if (!no_report) write_report(dir, quiet);
  if (c.failed + c.invalid + c.missing > 0) {
    std::cerr << "tiersim study: " << c.failed + c.invalid + c.missing
              << " runs did not complete; the report leaves them out\n";
    return 1;
  }
  return 0;
}

int run_study(const std::vector<std::string>& args) {
  std::string spec_path, dir, resubmit_dir;
  std::vector<std::string> sets;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  bool quiet = false, no_report = false, on_slurm = false, no_submit = false, jobs_given = false;
  config::SlurmSettings slurm;
  if (!args.empty() && args[0] == "collect") {
    std::vector<std::string> rest;
    bool nr = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--no-report") {
        nr = true;
      } else {
        rest.push_back(args[i]);
      }
    }
    if (rest.size() != 1 || rest[0].rfind("--", 0) == 0) {
      throw std::invalid_argument("collect takes one study directory [--no-report]");
    }
    const std::string path = (fs::path(rest[0]) / "study.textproto").string();
    if (!path_exists(path)) {
      throw std::invalid_argument(rest[0] + " is not a study directory (no study.textproto)");
    }
    return collect_and_report(load_study(path), rest[0], false, nr);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (take_slurm_option(args, i, slurm) || take_set_option(args, i, sets)) continue;
    if (a == "--out" || a == "--jobs" || a == "--resubmit-failed") {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      if (a == "--out") {
        dir = args[++i];
      } else if (a == "--resubmit-failed") {
        resubmit_dir = args[++i];
      } else {
        const std::string v = args[++i];
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (end == v.c_str() || *end != '\0' || n <= 0) {
          throw std::invalid_argument("--jobs: \"" + v + "\" is not a positive integer");
        }
        jobs = static_cast<unsigned>(n);
        jobs_given = true;
      }
    } else if (a == "--quiet") {
      quiet = true;
    } else if (a == "--no-report") {
      no_report = true;
    } else if (a == "--slurm") {
      on_slurm = true;
    } else if (a == "--no-submit") {
      no_submit = true;
    } else if (a.rfind("--", 0) == 0) {
      throw std::invalid_argument("unknown option " + a);
    } else if (spec_path.empty()) {
      spec_path = a;
    } else {
      throw std::invalid_argument("give one study spec");
    }
  }
  if (!resubmit_dir.empty()) {
    if (no_report) slurm.set_no_report(true);
    if (!spec_path.empty() || !dir.empty() || !sets.empty()) {
      throw std::invalid_argument("--resubmit-failed DIR takes no spec, no --out and no --set");
    }
    const std::string path = (fs::path(resubmit_dir) / "study.textproto").string();
    if (!path_exists(path)) {
      throw std::invalid_argument(resubmit_dir + " is not a study directory (no study.textproto)");
    }
    const Study study = load_study(path);
    resubmit_failed({"study", study.spec.name()}, study.plan, resubmit_dir, slurm, no_submit);
    return 0;
  }
  if (spec_path.empty()) throw std::invalid_argument("give a study spec");
  if (dir.empty()) throw std::invalid_argument("--out DIR is required");
  if (!on_slurm && (slurm.ByteSizeLong() > 0 || no_submit)) {
    throw std::invalid_argument("Slurm options (--partition, --time, ...) need --slurm");
  }
  if (on_slurm && jobs_given) {
    throw std::invalid_argument(
        "--jobs is for local runs; on Slurm each task runs --cpus runs "
        "at once");
  }
  const Study study = load_study(spec_path, sets);
  check_plan_overrides(study.plan, spec_path);
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
  // The command line, for the report's provenance.
  std::string command = "tiersim study";
  for (const auto& a : args) {
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                                         "opqrstuvwxyz0123456789_./=:,+-") == std::string::npos;
    command += " " + (plain ? a : shell_quote(a));
  }
  if (const std::string problem =
          write_text_atomically((fs::path(dir) / "command.txt").string(), command + "\n");
      !problem.empty()) {
    throw std::runtime_error(problem);
  }
  if (on_slurm) {
    if (no_report) slurm.set_no_report(true);  // the collect job writes no report either
    submit_to_slurm({"study", study.spec.name()}, study.plan, dir, slurm, {}, no_submit);
    return 0;
  }
  std::vector<uint32_t> all;
  for (const auto& p : study.plan.points)
    all.push_back(p.index);
  run_points(study.plan, dir, self_binary(), all, jobs, !quiet && isatty(STDERR_FILENO));
  return collect_and_report(study, dir, quiet, no_report);
}

const CommandRegistrar kRegistrar(CommandKind{
    "study",
    "  study SPEC --out DIR [--set k=v]... [--jobs N] [--quiet] [--no-report]\n"
    "                     run a baseline and mechanism variants over axes and seeds (as a\n"
    "                     sweep, resumable) and write DIR/report/report.md: a claims table\n"
    "                     with 95% confidence intervals over seeds, and plots; exit 1 when\n"
    "                     a run did not complete (no report without the baseline's runs);\n"
    "                     --set adds to the spec's set list (before the variants' sets)\n"
    "  study SPEC --out DIR --slurm [--no-report] [Slurm options, as for sweep]\n"
    "                     the runs as a Slurm job array, then a job (afterany) that\n"
    "                     collects them and writes the report\n"
    "  study --resubmit-failed DIR [Slurm options]\n"
    "                     submit again only the array tasks with runs that have no result\n"
    "  study collect DIR [--no-report]\n"
    "                     build the table and the report from the runs that finished\n",
    run_study});

}  // namespace

}  // namespace tiersim
