// Sweeps and studies on Slurm (see slurm.h).
#include "models/run/slurm.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "models/core/input_file.h"
#include "models/run/result_file.h"

namespace tiersim {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

const char* const kSlurmOptionsHelp =
    "        [--partition P] [--time T] [--mem M] [--cpus N] [--account A] [--qos Q]\n"
    "        [--sbatch-extra '--option=value']... [--array-limit N] [--points-per-task K]\n"
    "        [--no-submit]\n";

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

namespace {

constexpr uint32_t kDefaultArrayLimit = 64;

bool all_of(const std::string& v, const char* allowed) {
  return !v.empty() && v.find_first_not_of(allowed) == std::string::npos;
}

uint32_t positive(const std::string& name, const std::string& v) {
  uint32_t n = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || n == 0) {
    throw std::invalid_argument(name + ": \"" + v + "\" is not a positive integer");
  }
  return n;
}

void write_or_throw(const std::string& path, const std::string& text) {
  if (const std::string problem = write_text_atomically(path, text); !problem.empty()) {
    throw std::runtime_error(problem);
  }
}

std::string settings_path(const std::string& dir) {
  return (fs::path(dir) / "slurm.textproto").string();
}

// Runs `cmd` (an sbatch --parsable) and returns the job id from its standard output (its
// notices on stderr are kept apart); a failure (or no sbatch) is an input error.
std::string run_sbatch(const std::string& cmd, const std::string& stderr_path) {
  FILE* pipe = popen((cmd + " 2>" + shell_quote(stderr_path)).c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run sbatch");
  std::string output;
  char buf[256];
  while (fgets(buf, sizeof(buf), pipe) != nullptr)
    output += buf;
  const int rc = pclose(pipe);
  std::ifstream err_in(stderr_path);
  std::stringstream err;
  err << err_in.rdbuf();
  if (rc != 0) {
    throw std::invalid_argument("sbatch failed (is Slurm installed and configured?): " + err.str() +
                                output);
  }
  // --parsable prints "jobid" or "jobid;cluster" on a line of its own.
  std::istringstream lines(output);
  std::string line, id;
  while (std::getline(lines, line)) {
    const std::string head = line.substr(0, line.find(';'));
    if (all_of(head, "0123456789")) id = head;
  }
  if (id.empty()) throw std::runtime_error("sbatch printed no job id: " + output + err.str());
  return id;
}

// A job name sbatch takes as one word: the spec's name with anything but letters, digits and
// _ . - turned into _.
std::string job_name(const std::string& name) {
  std::string out = "tiersim-";
  for (char c : name)
    out +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ? c : '_';
  return out;
}

// The directives every job of the submission shares.
void common_directives(std::ostringstream& s, const config::SlurmSettings& c) {
  if (c.has_partition()) s << "#SBATCH --partition=" << c.partition() << "\n";
  if (c.has_time()) s << "#SBATCH --time=" << c.time() << "\n";
  if (c.has_account()) s << "#SBATCH --account=" << c.account() << "\n";
  if (c.has_qos()) s << "#SBATCH --qos=" << c.qos() << "\n";
}

// "0-9" for every task, else "2,5,7".
std::string array_spec(const std::vector<uint32_t>& tasks, uint32_t total) {
  if (tasks.empty()) return "0-" + std::to_string(total - 1);
  std::string out;
  for (uint32_t t : tasks)
    out += (out.empty() ? "" : ",") + std::to_string(t);
  return out;
}

}  // namespace

bool take_slurm_option(const std::vector<std::string>& args, size_t& i, config::SlurmSettings& s) {
  static const char* kOptions[] = {"--partition",    "--time",        "--mem",
                                   "--cpus",         "--account",     "--qos",
                                   "--sbatch-extra", "--array-limit", "--points-per-task"};
  const std::string& a = args[i];
  if (std::find_if(std::begin(kOptions), std::end(kOptions),
                   [&](const char* o) { return a == o; }) == std::end(kOptions)) {
    return false;
  }
  if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
  const std::string v = args[++i];
  const char* kName = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
  auto bad = [&](const char* what) {
    throw std::invalid_argument(a + ": \"" + v + "\" is not " + what);
  };
  if (a == "--partition") {
    if (!all_of(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-,")) {
      bad("a partition name (letters, digits, _ . - and commas)");
    }
    s.set_partition(v);
  } else if (a == "--time") {
    if (!all_of(v, "0123456789:-")) bad("a Slurm time (minutes, or [D-]HH:MM:SS)");
    s.set_time(v);
  } else if (a == "--mem") {
    const size_t digits = v.find_first_not_of("0123456789");
    if (digits == 0 || v.empty() ||
        (digits != std::string::npos &&
         (digits + 1 != v.size() || std::string("KMGT").find(v[digits]) == std::string::npos))) {
      bad("a memory size (a number with an optional K, M, G or T)");
    }
    s.set_mem(v);
  } else if (a == "--cpus") {
    s.set_cpus(positive(a, v));
  } else if (a == "--account") {
    if (!all_of(v, kName)) bad("an account name (letters, digits, _ . -)");
    s.set_account(v);
  } else if (a == "--qos") {
    if (!all_of(v, kName)) bad("a QOS name (letters, digits, _ . -)");
    s.set_qos(v);
  } else if (a == "--sbatch-extra") {
    if (v.rfind("--", 0) != 0 || v.size() < 3 || v.find_first_of("\n\r\t ") != std::string::npos) {
      bad("one sbatch option (\"--option\" or \"--option=value\", no spaces)");
    }
    s.add_sbatch_extra(v);
  } else if (a == "--array-limit") {
    s.set_array_limit(positive(a, v));
  } else {
    s.set_points_per_task(positive(a, v));
  }
  return true;
}

void submit_to_slurm(const SlurmTarget& target, const SweepPlan& plan, const std::string& dir,
                     const config::SlurmSettings& settings, const std::vector<uint32_t>& tasks,
                     bool no_submit) {
  const uint32_t per_task = std::max<uint32_t>(1, settings.points_per_task());
  const uint32_t limit = settings.has_array_limit() ? settings.array_limit() : kDefaultArrayLimit;
  const uint32_t total = static_cast<uint32_t>((plan.points.size() + per_task - 1) / per_task);
  if (total == 0) throw std::invalid_argument("the plan has no points");
  const std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  // The directory appears in #SBATCH lines, which sbatch does not unquote.
  for (char c : abs_dir) {
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ' || c == '%' || c == '"' ||
        c == '\'' || c == '\\') {
      throw std::invalid_argument("--out " + dir +
                                  ": a Slurm run needs a directory path without spaces, quotes, "
                                  "backslashes, % or control characters");
    }
  }
  if (total > 1000) {
    std::cerr << "tiersim " << target.kind << ": " << total
              << " array tasks; clusters often cap arrays at 1001 (MaxArraySize): "
                 "--points-per-task groups points into fewer tasks\n";
  }
  fs::create_directories(fs::path(abs_dir) / "slurm");
  const std::string name = job_name(target.name.empty() ? target.kind : target.name);
  const std::string binary = shell_quote(self_binary());
  const size_t submitted = tasks.empty() ? total : tasks.size();

  std::ostringstream a;
  a << "#!/bin/bash\n"
    << "# tiersim " << target.kind << ": " << plan.points.size() << " points in " << total
    << " array tasks of " << per_task
    << (tasks.empty() ? ""
                      : "; resubmitted: tasks with missing "
                        "points only")
    << ". The collect job (collect.sbatch) runs after it.\n"
    << "#SBATCH --job-name=" << name << "\n"
    << "#SBATCH --array=" << array_spec(tasks, total) << "%" << limit << "\n"
    << "#SBATCH --output=" << abs_dir << "/slurm/%A_%a.out\n"
    << "#SBATCH --ntasks=1\n"
    << "#SBATCH --cpus-per-task=" << (settings.has_cpus() ? settings.cpus() : 1) << "\n";
  common_directives(a, settings);
  if (settings.has_mem()) a << "#SBATCH --mem=" << settings.mem() << "\n";
  for (const auto& x : settings.sbatch_extra())
    a << "#SBATCH " << x << "\n";
  a << "exec " << binary << " sweep run-task " << shell_quote(abs_dir)
    << " --task \"$SLURM_ARRAY_TASK_ID\" --points-per-task " << per_task
    << " --jobs \"${SLURM_CPUS_PER_TASK:-1}\"\n";
  const std::string array_script = (fs::path(abs_dir) / (target.kind + ".sbatch")).string();
  write_or_throw(array_script, a.str());

  std::ostringstream c;
  c << "#!/bin/bash\n"
    << "# tiersim " << target.kind << ": builds the table"
    << (target.kind == "study" ? " and the report" : "")
    << " once every array task has ended (afterany).\n"
    << "#SBATCH --job-name=" << name << "-collect\n"
    << "#SBATCH --output=" << abs_dir << "/slurm/collect_%j.out\n"
    << "#SBATCH --ntasks=1\n"
    << "#SBATCH --cpus-per-task=1\n";
  common_directives(c, settings);
  if (settings.has_mem()) c << "#SBATCH --mem=" << settings.mem() << "\n";
  for (const auto& x : settings.sbatch_extra())
    c << "#SBATCH " << x << "\n";
  c << "exec " << binary << " " << target.kind << " collect " << shell_quote(abs_dir)
    << (settings.no_report() ? " --no-report" : "") << "\n";
  const std::string collect_script = (fs::path(abs_dir) / "collect.sbatch").string();
  write_or_throw(collect_script, c.str());

  std::string text;
  pb::TextFormat::PrintToString(settings, &text);
  write_or_throw(settings_path(abs_dir), text);
  std::cout << "job scripts: " << array_script << " (" << submitted << " of " << total
            << " array tasks) and " << collect_script << "\n";
  if (no_submit) return;
  const std::string err = (fs::path(abs_dir) / "slurm" / "sbatch.err").string();
  const std::string jobs = (fs::path(abs_dir) / "slurm" / "jobs.txt").string();
  const std::string array_id = run_sbatch("sbatch --parsable " + shell_quote(array_script), err);
  // Recorded at once: a failed collect submission must not leave an array nobody knows of.
  std::ofstream(jobs, std::ios::app)
      << "array " << array_id << " tasks " << array_spec(tasks, total) << "\n";
  std::string collect_id;
  try {
    collect_id = run_sbatch(
        "sbatch --parsable --dependency=afterany:" + array_id + " " + shell_quote(collect_script),
        err);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string(e.what()) + "\nthe array job " + array_id +
                                " is queued without its collect job: when it ends, run tiersim " +
                                target.kind + " collect " + abs_dir + " (or scancel " + array_id +
                                ")");
  }
  std::ofstream(jobs, std::ios::app)
      << "collect " << collect_id << " afterany:" << array_id << "\n";
  std::cout << "submitted array job " << array_id << " and collect job " << collect_id
            << " (after it); the table appears in " << abs_dir
            << "; resubmit what failed with: tiersim " << target.kind << " --resubmit-failed "
            << abs_dir << "\n";
}

std::vector<uint32_t> tasks_to_resubmit(const SweepPlan& plan, const std::string& dir,
                                        uint32_t points_per_task) {
  std::vector<uint32_t> tasks;
  const uint32_t per = std::max<uint32_t>(1, points_per_task);
  for (const auto& p : plan.points) {
    const std::string h5 = point_file(dir, p.index, "h5");
    const bool complete = path_exists(h5) && result_file_problem(h5).empty();
    if (complete || path_exists(point_file(dir, p.index, "invalid"))) continue;
    const uint32_t task = p.index / per;
    if (tasks.empty() || tasks.back() != task) tasks.push_back(task);
  }
  return tasks;
}

size_t resubmit_failed(const SlurmTarget& target, const SweepPlan& plan, const std::string& dir,
                       const config::SlurmSettings& overrides, bool no_submit) {
  const std::string path = settings_path(dir);
  if (!path_exists(path)) {
    throw std::invalid_argument(dir + " was never submitted to Slurm (no slurm.textproto)");
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  config::SlurmSettings s;
  if (!pb::TextFormat::ParseFromString(text.str(), &s)) {
    throw std::invalid_argument(path + ": cannot parse the stored Slurm settings");
  }
  if (overrides.has_points_per_task() &&
      overrides.points_per_task() != std::max<uint32_t>(1, s.points_per_task())) {
    throw std::invalid_argument(
        "--points-per-task cannot change on a resubmission (the task ids would not match)");
  }
  // Tasks still queued or running have no results yet: resubmitting them would run their
  // points twice.
  std::ifstream jobs_in(fs::path(dir) / "slurm" / "jobs.txt");
  std::string kind, id, rest;
  std::vector<std::string> queued;
  while (jobs_in >> kind >> id && std::getline(jobs_in, rest)) {
    if (kind != "array" || !all_of(id, "0123456789")) continue;
    FILE* pipe = popen(("squeue -h -o %i -j " + id + " 2>/dev/null").c_str(), "r");
    if (pipe == nullptr) continue;
    char buf[64];
    const bool any = fgets(buf, sizeof(buf), pipe) != nullptr;
    while (fgets(buf, sizeof(buf), pipe) != nullptr) {
    }
    if (pclose(pipe) == 0 && any) queued.push_back(id);
  }
  if (!queued.empty()) {
    std::string ids;
    for (const auto& q : queued)
      ids += (ids.empty() ? "" : ", ") + q;
    throw std::invalid_argument("array job(s) " + ids + " of " + dir +
                                " are still queued or running: wait for them (or scancel "
                                "them) before resubmitting");
  }
  if (overrides.sbatch_extra_size() > 0) s.clear_sbatch_extra();
  s.MergeFrom(overrides);
  const std::vector<uint32_t> tasks = tasks_to_resubmit(plan, dir, s.points_per_task());
  if (tasks.empty()) {
    std::cout << "every point of " << dir << " has a result (or is invalid): nothing to resubmit\n";
    return 0;
  }
  submit_to_slurm(target, plan, dir, s, tasks, no_submit);
  return tasks.size();
}

}  // namespace tiersim
