#include "models/run/sweep.h"

#include <fcntl.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "models/config/errors.h"
#include "models/config/loader.h"
#include "models/core/input_file.h"
#include "models/core/registry.h"
#include "models/run/result_file.h"
#include "models/run/slurm.h"
#include "models/run/study.h"

extern char** environ;

namespace tiersim {

namespace fs = std::filesystem;
namespace pb = google::protobuf;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_atomically(const std::string& path, const std::string& text) {
  if (const std::string problem = write_text_atomically(path, text); !problem.empty()) {
    throw std::runtime_error(problem);
  }
}

std::string format_number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

class SpecErrors : public pb::io::ErrorCollector {
 public:
  explicit SpecErrors(std::string file) : file_(std::move(file)) {}
  void AddError(int line, pb::io::ColumnNumber, const std::string& message) override {
    issues.push_back(ConfigIssue{{file_, line + 1}, "", message});
  }
  std::vector<ConfigIssue> issues;

 private:
  std::string file_;
};

std::vector<std::string> axis_values(const config::SweepAxis& a) {
  if (a.values_size() > 0) return {a.values().begin(), a.values().end()};
  const auto& r = a.range();
  std::vector<double> v;
  if (r.has_count()) {
    for (uint32_t i = 0; i < r.count(); ++i) {
      const double f = r.count() == 1 ? 0.0 : double(i) / double(r.count() - 1);
      v.push_back(r.log() ? r.start() * std::pow(r.stop() / r.start(), f)
                          : r.start() + (r.stop() - r.start()) * f);
    }
  } else {
    const double n = std::floor((r.stop() - r.start()) / r.step() * (1 + 1e-9) + 1e-9);
    for (double i = 0; i <= n; ++i)
      v.push_back(r.start() + i * r.step());
  }
  std::vector<std::string> out;
  for (double x : v)
    out.push_back(r.integer() ? std::to_string(static_cast<long long>(std::llround(x)))
                              : format_number(x));
  return out;
}

}  // namespace

std::string point_file(const std::string& dir, uint32_t index, const char* ext) {
  char name[32];
  std::snprintf(name, sizeof(name), "p%05u.%s", index, ext);
  return (fs::path(dir) / "points" / name).string();
}

SweepPlan expand_sweep(const config::SweepSpec& spec, const std::string& where) {
  std::vector<ConfigIssue> issues;
  auto fail = [&](const std::string& path, const std::string& message) {
    issues.push_back(ConfigIssue{{where, 0}, path, message});
  };
  SweepPlan plan;
  plan.spec = spec;
  if (spec.base_size() == 0) fail("base", "no config files: give at least one base file");
  for (int i = 0; i < spec.base_size(); ++i) {
    if (!path_exists(spec.base(i))) {
      fail("base[" + std::to_string(i) + "]", "no such file \"" + spec.base(i) + "\"");
    }
  }
  for (int i = 0; i < spec.set_size(); ++i) {
    if (spec.set(i).find('=') == std::string::npos) {
      fail("set[" + std::to_string(i) + "]", "expected path=value");
    }
  }
  std::vector<std::vector<std::string>> values;
  for (int i = 0; i < spec.axes_size(); ++i) {
    const auto& a = spec.axes(i);
    const std::string at = "axes[" + std::to_string(i) + "]";
    if (a.path().empty()) fail(at + ".path", "required field is not set");
    if ((a.values_size() > 0) == a.has_range()) {
      fail(at, "give either values or a range");
      values.emplace_back();
      continue;
    }
    if (a.has_range()) {
      const auto& r = a.range();
      if (!r.has_start() || !r.has_stop()) fail(at + ".range", "start and stop are required");
      if (r.has_count() == r.has_step()) {
        fail(at + ".range", "give either step or count");
      } else if (r.has_step() && !(r.step() > 0 && r.stop() >= r.start())) {
        fail(at + ".range.step", "must be positive, with stop >= start");
      } else if (r.has_count() && (r.count() == 0 || r.count() > 100000)) {
        fail(at + ".range.count", "must be in 1..100000");
      } else if (r.log() && !(r.start() > 0 && r.stop() > 0)) {
        fail(at + ".range.log", "a log range needs positive start and stop");
      } else if (r.has_step() && (r.stop() - r.start()) / r.step() > 100000) {
        fail(at + ".range", "more than 100000 values");
      }
    }
    values.push_back(issues.empty() ? axis_values(a) : std::vector<std::string>{});
    plan.axis_names.push_back(a.name().empty() ? a.path() : a.name());
  }
  if (spec.mode() == config::ZIP) {
    for (size_t i = 1; i < values.size(); ++i) {
      if (values[i].size() != values[0].size()) {
        fail("axes[" + std::to_string(i) + "]",
             "ZIP needs every axis to have the same length (" + std::to_string(values[0].size()) +
                 " values in axes[0], " + std::to_string(values[i].size()) + " here)");
      }
    }
  }
  if (spec.has_seeds() && spec.seeds() == 0) fail("seeds", "must be positive");
  if (issues.empty()) {
    // The plan's size before building it: a product of axes grows fast.
    long double count = spec.has_seeds() ? spec.seeds() : 1;
    if (spec.mode() == config::ZIP) {
      count *= values.empty() ? 1 : values[0].size();
    } else {
      for (const auto& v : values)
        count *= v.size();
    }
    if (count > kMaxSweepPoints) {
      fail(spec.axes_size() > 0 ? "axes" : "seeds",
           "the plan has " + std::to_string(static_cast<double>(count)) + " points; at most " +
               std::to_string(kMaxSweepPoints) +
               " (split the sweep, or use fewer values or seeds)");
    }
  }
  if (!issues.empty()) throw ConfigError(issues);

  // Combinations: product (last axis fastest) or zip.
  std::vector<std::vector<std::string>> combos;
  if (values.empty()) {
    combos.emplace_back();
  } else if (spec.mode() == config::ZIP) {
    for (size_t k = 0; k < values[0].size(); ++k) {
      std::vector<std::string> c;
      for (const auto& v : values)
        c.push_back(v[k]);
      combos.push_back(c);
    }
  } else {
    std::vector<size_t> idx(values.size(), 0);
    while (true) {
      std::vector<std::string> c;
      for (size_t a = 0; a < values.size(); ++a)
        c.push_back(values[a][idx[a]]);
      combos.push_back(c);
      size_t a = values.size();
      while (a > 0 && ++idx[a - 1] == values[a - 1].size())
        idx[--a] = 0;
      if (a == 0) break;
    }
  }
  const uint32_t replicates = spec.has_seeds() ? spec.seeds() : 1;
  for (const auto& c : combos) {
    for (uint32_t r = 0; r < replicates; ++r) {
      SweepPoint p;
      p.index = static_cast<uint32_t>(plan.points.size());
      p.replicate = r;
      p.values = c;
      p.sets.assign(spec.set().begin(), spec.set().end());
      for (size_t a = 0; a < c.size(); ++a)
        p.sets.push_back(spec.axes(static_cast<int>(a)).path() + "=" + c[a]);
      if (spec.has_seeds() || spec.has_seed_base()) {
        p.has_seed = true;
        p.seed = spec.seed_base() + r;
        p.sets.push_back("run.seed=" + std::to_string(p.seed));
      }
      plan.points.push_back(std::move(p));
    }
  }
  return plan;
}

void parse_spec_file(const std::string& path, pb::Message& msg) {
  std::string text;
  if (const std::string problem = read_input_file(path, &text); !problem.empty()) {
    throw ConfigError({ConfigIssue{{path, 0}, "", "cannot read spec file: " + problem}});
  }
  pb::TextFormat::Parser parser;
  SpecErrors errors(path);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &msg) || !errors.issues.empty()) {
    if (errors.issues.empty()) errors.issues.push_back(ConfigIssue{{path, 0}, "", "cannot parse"});
    throw ConfigError(errors.issues);
  }
}

void resolve_spec_paths(const std::string& spec_path, pb::RepeatedPtrField<std::string>& paths) {
  const fs::path dir = fs::absolute(spec_path).parent_path();
  for (auto& s : paths) {
    const fs::path p(s);
    s = (p.is_absolute() ? p : dir / p).lexically_normal().string();
  }
}

void resolve_fragment_refs(const std::string& spec_path, pb::RepeatedPtrField<std::string>& values,
                           bool assignments) {
  const fs::path dir = fs::absolute(spec_path).parent_path();
  for (auto& v : values) {
    // "path=@file" / "path+=@file" (a set), or "@file" (an axis value).
    size_t at = 0;
    if (assignments) {
      const size_t eq = v.find('=');
      if (eq == std::string::npos) continue;
      at = eq + 1;
    }
    if (at >= v.size() || v[at] != '@' || at + 1 >= v.size()) continue;
    const fs::path p(v.substr(at + 1));
    if (!p.is_absolute()) v = v.substr(0, at + 1) + (dir / p).lexically_normal().string();
  }
}

void append_command_line_sets(const std::vector<std::string>& sets,
                              pb::RepeatedPtrField<std::string>& dst) {
  pb::RepeatedPtrField<std::string> mine;
  for (size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].find('=') == std::string::npos) {
      throw std::invalid_argument("--set[" + std::to_string(i + 1) + "]: \"" + sets[i] +
                                  "\": expected path=value");
    }
    *mine.Add() = sets[i];
  }
  // @FILE given on the command line is relative to the working directory.
  resolve_fragment_refs((fs::current_path() / "command-line").string(), mine, true);
  for (auto& m : mine)
    *dst.Add() = std::move(m);
}

bool take_set_option(const std::vector<std::string>& args, size_t& i,
                     std::vector<std::string>& sets) {
  if (args[i] != "--set") return false;
  if (i + 1 >= args.size()) throw std::invalid_argument("--set needs a value (path=value)");
  sets.push_back(args[++i]);
  return true;
}

void check_plan_overrides(const SweepPlan& plan, const std::string& where) {
  if (plan.points.empty()) return;
  // Probes: the first point of every pair of values of two axes (and of every value, with one
  // axis), so each override runs at least once beside every value of every other axis: one
  // that applies only with some other axis's value (a field of a component that value adds)
  // finds it.
  const size_t axes = plan.axis_names.size();
  std::vector<std::map<std::string, uint64_t>> index(axes);
  std::set<uint64_t> seen;
  std::set<uint32_t> probes{0};
  std::vector<uint64_t> v(axes);
  for (const auto& p : plan.points) {
    for (size_t a = 0; a < axes && a < p.values.size(); ++a) {
      v[a] = index[a].emplace(p.values[a], index[a].size()).first->second;
    }
    bool fresh = false;
    for (size_t a = 0; a < axes; ++a) {
      if (axes == 1) fresh |= seen.insert(v[a]).second;
      for (size_t b = a + 1; b < axes; ++b) {
        fresh |= seen.insert((uint64_t(a * axes + b) << 42) | (v[a] << 21) | v[b]).second;
      }
    }
    if (fresh) probes.insert(p.index);
  }
  const LoadedConfig base =
      load_config_unchecked({plan.spec.base().begin(), plan.spec.base().end()}, {});
  struct Outcome {
    uint32_t reached = 0, failed = 0;
    std::vector<ConfigIssue> first;
  };
  std::map<std::string, Outcome> outcomes;
  std::vector<std::string> order;
  for (uint32_t idx : probes) {
    const SweepPoint& p = plan.points[idx];
    config::Config c = base.config;
    for (size_t k = 0; k < p.sets.size(); ++k) {
      auto [it, added] = outcomes.try_emplace(p.sets[k]);
      if (added) order.push_back(p.sets[k]);
      Outcome& o = it->second;
      ++o.reached;
      try {
        apply_override(c, p.sets[k], static_cast<int>(k + 1), nullptr);
      } catch (const ConfigError& e) {
        ++o.failed;
        if (o.first.empty()) {
          std::string label;
          for (size_t a = 0; a < p.values.size() && a < axes; ++a) {
            label += (a ? ", " : "") + plan.axis_names[a] + "=" + p.values[a];
          }
          for (const auto& issue : e.issues()) {
            // A fragment file's own line stays; an override's location becomes the spec's.
            o.first.push_back(ConfigIssue{
                issue.where.line > 0 && issue.where.file != "--set" ? issue.where
                                                                    : SourceLocation{where, 0},
                issue.path,
                "the override \"" + p.sets[k] + "\" does not apply" +
                    (label.empty() ? "" : " (point " + std::to_string(idx) + ": " + label + ")") +
                    ": " + issue.message});
          }
        }
        break;  // later overrides of this point may depend on this one
      }
    }
  }
  // Refused: an override that failed wherever it was tried. One that applies at some probe
  // and not at another is left to the points (recorded invalid, the sweep goes on).
  std::vector<ConfigIssue> issues;
  for (const auto& s : order) {
    const Outcome& o = outcomes.at(s);
    if (o.failed > 0 && o.failed == o.reached) {
      issues.insert(issues.end(), o.first.begin(), o.first.end());
    }
  }
  if (!issues.empty()) throw ConfigError(issues);
}

SweepPlan load_sweep(const std::string& path, const std::vector<std::string>& extra_sets) {
  config::SweepSpec spec;
  parse_spec_file(path, spec);
  // Base files and fragment files (@FILE in sets and axis values) are relative to the spec's
  // directory; the plan keeps them absolute.
  resolve_spec_paths(path, *spec.mutable_base());
  resolve_fragment_refs(path, *spec.mutable_set(), true);
  for (auto& a : *spec.mutable_axes())
    resolve_fragment_refs(path, *a.mutable_values(), false);
  append_command_line_sets(extra_sets, *spec.mutable_set());
  return expand_sweep(spec, path);
}

namespace {

std::string format_eta(double s) {
  std::ostringstream os;
  if (s >= 3600) {
    os << static_cast<int>(s / 3600) << "h" << static_cast<int>(std::fmod(s, 3600) / 60) << "m";
  } else if (s >= 60) {
    os << static_cast<int>(s / 60) << "m" << static_cast<int>(std::fmod(s, 60)) << "s";
  } else {
    os << static_cast<int>(s) << "s";
  }
  return os.str();
}

// Starts `binary run ...` for point `p` with stdout discarded and stderr to its .err file.
pid_t spawn_point(const SweepPlan& plan, const SweepPoint& p, const std::string& dir,
                  const std::string& binary) {
  std::vector<std::string> args{binary, "run"};
  for (const auto& f : plan.spec.base())
    args.push_back(f);
  for (const auto& s : p.sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  args.push_back("--out");
  args.push_back(point_file(dir, p.index, "h5"));
  args.push_back("--quiet");
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const std::string err = point_file(dir, p.index, "err");
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + binary);
  return pid;
}

}  // namespace

std::string self_binary() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find the tiersim executable");
  return p.string();
}

void prepare_plan_dir(const std::string& dir, const std::string& plan_file,
                      const std::string& plan_text) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "points", ec);
  if (ec) throw std::invalid_argument("cannot create " + dir + ": " + ec.message());
  const std::string path = (fs::path(dir) / plan_file).string();
  if (path_exists(path)) {
    if (slurp(path) != plan_text) {
      throw std::invalid_argument(dir + " holds a different plan (its " + plan_file +
                                  " differs); use another --out or remove it");
    }
    return;
  }
  write_atomically(path, plan_text);
}

uint32_t run_points(const SweepPlan& plan, const std::string& dir, const std::string& binary,
                    const std::vector<uint32_t>& points, unsigned jobs, bool progress) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::vector<uint32_t> todo;
  uint32_t failed = 0, done = 0;
  for (uint32_t i : points) {
    const std::string h5 = point_file(dir, i, "h5");
    if (path_exists(h5)) {
      if (result_file_problem(h5).empty()) {
        // Finished before: resume. Its stderr file may be left from an attempt the sweep lost
        // track of (the sweep killed while the point ran on).
        std::remove(point_file(dir, i, "err").c_str());
        continue;
      }
      std::remove(h5.c_str());  // damaged: run it again
    }
    // Validate here, so a bad point is recorded without a process.
    std::remove(point_file(dir, i, "invalid").c_str());
    try {
      load_config({plan.spec.base().begin(), plan.spec.base().end()}, plan.points[i].sets);
    } catch (const ConfigError& e) {
      write_atomically(point_file(dir, i, "invalid"), std::string(e.what()) + "\n");
      ++failed;
      continue;
    }
    todo.push_back(i);
  }
  const size_t total = todo.size();
  std::map<pid_t, uint32_t> running;
  size_t next = 0;
  auto report = [&] {
    if (!progress) return;
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    const double eta = done ? wall / done * double(total - done) : 0.0;
    std::fprintf(stderr, "\r[sweep] %u/%zu done, %u failed, %zu running, wall %s, ETA %s   ", done,
                 total, failed, running.size(), format_eta(wall).c_str(),
                 done ? format_eta(eta).c_str() : "?");
    std::fflush(stderr);
  };
  while (next < todo.size() || !running.empty()) {
    while (next < todo.size() && running.size() < std::max(1u, jobs)) {
      const uint32_t i = todo[next++];
      running[spawn_point(plan, plan.points[i], dir, binary)] = i;
    }
    report();
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const uint32_t i = it->second;
    running.erase(it);
    ++done;
    const bool ok =
        WIFEXITED(status) && WEXITSTATUS(status) == 0 && path_exists(point_file(dir, i, "h5"));
    if (ok) {
      std::remove(point_file(dir, i, "err").c_str());
    } else {
      ++failed;
      std::ofstream(point_file(dir, i, "err"), std::ios::app)
          << (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                : "killed by signal " + std::to_string(WTERMSIG(status)))
          << "\n";
    }
  }
  report();
  if (progress) std::fputc('\n', stderr);
  return failed;
}

namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line, all;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    all += (all.empty() ? "" : " | ") + line;
    if (all.size() > 300) break;
  }
  return all.substr(0, 300);
}

// A point failed when its .err file records how its process ended (run_points appends the exit
// status); a .err without it belongs to a point still running (or killed with the sweep).
bool point_failed(const std::string& err_path) {
  std::ifstream in(err_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("exit code ", 0) == 0 || line.rfind("killed by signal ", 0) == 0) return true;
  }
  return false;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s)
    q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

bool parse_double(const std::string& s, double& out) {
  const char* b = s.data();
  const char* e = b + s.size();
  const auto r = std::from_chars(b, e, out);
  return r.ec == std::errc() && r.ptr == e;
}

}  // namespace

CollectOutcome collect_sweep(const SweepPlan& plan, const std::string& dir) {
  CollectOutcome out;
  const size_t n = plan.points.size();
  std::vector<std::string> status(n), error(n);
  std::vector<std::map<std::string, double>> metrics(n);
  std::vector<std::string> metric_names;
  std::map<std::string, std::string> units;  // of each metric, as the points' summaries give it
  std::set<std::string> seen;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t idx = static_cast<uint32_t>(i);
    const std::string h5 = point_file(dir, idx, "h5");
    std::string damaged;
    if (path_exists(h5)) {
      try {
        ResultReader r(h5);
        for (const auto& s : r.summary()) {
          if (s.name == "wall_time_s") continue;  // not deterministic: kept in the point's file
          metrics[i][s.name] = s.value;
          if (seen.insert(s.name).second) metric_names.push_back(s.name);
          if (!s.unit.empty()) units[s.name] = s.unit;
        }
      } catch (const ResultFileError& e) {
        damaged = e.what();
      } catch (const H5::Exception& e) {
        damaged = h5 + ": no readable summary (" + e.getDetailMsg() + ")";
      }
    }
    if (!damaged.empty()) {
      // A resumed sweep runs it again.
      metrics[i].clear();
      status[i] = "failed";
      error[i] = damaged;
      ++out.failed;
    } else if (path_exists(h5)) {
      status[i] = "ok";
      ++out.ok;
    } else if (path_exists(point_file(dir, idx, "invalid"))) {
      status[i] = "invalid";
      error[i] = first_line(point_file(dir, idx, "invalid"));
      ++out.invalid;
    } else if (point_failed(point_file(dir, idx, "err"))) {
      status[i] = "failed";
      error[i] = first_line(point_file(dir, idx, "err"));
      ++out.failed;
    } else {  // never run, or still running (its stderr file exists but has no exit status)
      status[i] = "missing";
      ++out.missing;
    }
  }
  Table t;
  const size_t c_point = t.add_column("point", Table::Type::kU64);
  const size_t c_rep = t.add_column("replicate", Table::Type::kU64);
  // Seeds: integers when every point has one; otherwise NaN where a point runs its config's.
  bool all_seeded = true;
  for (const auto& p : plan.points)
    all_seeded = all_seeded && p.has_seed;
  const size_t c_seed = t.add_column("seed", all_seeded ? Table::Type::kI64 : Table::Type::kF64);
  // Axes: integers, numbers or strings, as their values all are; a fragment file (@FILE) shows
  // as its file name without directory and extension.
  enum class AxisType { kInt, kNumber, kString };
  std::vector<size_t> c_axes;
  std::vector<AxisType> axis_type;
  auto label = [](const std::string& v) {
    return !v.empty() && v[0] == '@' ? fs::path(v.substr(1)).stem().string() : v;
  };
  for (size_t a = 0; a < plan.axis_names.size(); ++a) {
    bool number = true, integer = true;
    double v;
    for (const auto& p : plan.points) {
      number = number && parse_double(p.values[a], v);
      int64_t k;
      const std::string& s = p.values[a];
      const auto r = std::from_chars(s.data(), s.data() + s.size(), k);
      integer = integer && r.ec == std::errc() && r.ptr == s.data() + s.size();
    }
    axis_type.push_back(integer ? AxisType::kInt : number ? AxisType::kNumber : AxisType::kString);
    c_axes.push_back(t.add_column(plan.axis_names[a], integer  ? Table::Type::kI64
                                                      : number ? Table::Type::kF64
                                                               : Table::Type::kStr));
  }
  const size_t c_status = t.add_column("status", Table::Type::kStr);
  const size_t c_error = t.add_column("error", Table::Type::kStr);
  // A summary metric named as an axis (or a fixed column) would make two columns of one name.
  const std::set<std::string> fixed = {"point", "replicate", "seed", "status", "error"};
  for (const auto& m : metric_names) {
    for (const auto& c : t.columns) {
      if (c.name == m) {
        const bool is_fixed = fixed.count(m) > 0;
        throw ConfigError({ConfigIssue{
            {dir + "/sweep.textproto", 0},
            "axes",
            "the column \"" + m + "\" is both " + (is_fixed ? "a fixed column" : "an axis") +
                " and a summary metric: " +
                (is_fixed ? "a summary item may not take that name" : "rename the axis") +
                " (the points' results are kept)"}});
      }
    }
  }
  std::vector<size_t> c_metrics;
  for (const auto& m : metric_names) {
    c_metrics.push_back(t.add_column(m, Table::Type::kF64));
    t.columns.back().unit = units[m];
  }
  std::ostringstream csv;
  csv.precision(17);
  for (size_t c = 0; c < t.columns.size(); ++c)
    csv << (c ? "," : "") << csv_field(t.columns[c].name);
  csv << "\n";
  for (size_t i = 0; i < n; ++i) {
    const SweepPoint& p = plan.points[i];
    t.columns[c_point].u64.push_back(p.index);
    t.columns[c_rep].u64.push_back(p.replicate);
    if (all_seeded) {
      t.columns[c_seed].i64.push_back(static_cast<int64_t>(p.seed));
    } else {
      t.columns[c_seed].f64.push_back(p.has_seed ? static_cast<double>(p.seed) : std::nan(""));
    }
    csv << p.index << "," << p.replicate << "," << (p.has_seed ? std::to_string(p.seed) : "");
    for (size_t a = 0; a < c_axes.size(); ++a) {
      double v = 0;
      int64_t k = 0;
      const std::string& s = p.values[a];
      if (axis_type[a] == AxisType::kInt) {
        std::from_chars(s.data(), s.data() + s.size(), k);
        t.columns[c_axes[a]].i64.push_back(k);
      } else if (axis_type[a] == AxisType::kNumber) {
        parse_double(s, v);
        t.columns[c_axes[a]].f64.push_back(v);
      } else {
        t.columns[c_axes[a]].str.push_back(label(s));
      }
      csv << "," << csv_field(label(s));
    }
    t.columns[c_status].str.push_back(status[i]);
    t.columns[c_error].str.push_back(error[i]);
    csv << "," << status[i] << "," << csv_field(error[i]);
    for (size_t m = 0; m < metric_names.size(); ++m) {
      const auto it = metrics[i].find(metric_names[m]);
      const double v = it == metrics[i].end() ? std::nan("") : it->second;
      t.columns[c_metrics[m]].f64.push_back(v);
      csv << ",";
      if (it != metrics[i].end()) csv << v;
    }
    csv << "\n";
  }
  ResultWriter w((fs::path(dir) / "summary.h5").string());
  std::string spec_text;
  pb::TextFormat::PrintToString(plan.spec, &spec_text);
  w.write_string("/meta/sweep", spec_text);
  w.write_table("/summary", t);
  w.commit();
  write_atomically((fs::path(dir) / "summary.csv").string(), csv.str());
  return out;
}

namespace {

// The plan stored in a sweep directory (or a study's: its runs as a sweep).
SweepPlan stored_plan(const std::string& dir) {
  const std::string path = (fs::path(dir) / "sweep.textproto").string();
  if (!path_exists(path)) {
    const std::string study = (fs::path(dir) / "study.textproto").string();
    if (path_exists(study)) return load_study(study).plan;
    throw std::invalid_argument(dir + " is not a sweep or study directory (no sweep.textproto)");
  }
  config::SweepSpec spec;
  if (!pb::TextFormat::ParseFromString(slurp(path), &spec)) {
    throw ConfigError({ConfigIssue{{path, 0}, "", "cannot parse the stored sweep"}});
  }
  return expand_sweep(spec, path);
}

// Creates DIR and stores the plan; a directory holding a different sweep is refused.
void prepare_dir(const SweepPlan& plan, const std::string& dir) {
  std::string text;
  pb::TextFormat::PrintToString(plan.spec, &text);
  prepare_plan_dir(dir, "sweep.textproto", text);
}

struct Flags {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
};

Flags parse_flags(const std::vector<std::string>& args, const std::set<std::string>& with_value,
                  const std::set<std::string>& switches) {
  Flags f;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      f.positional.push_back(a);
    } else if (with_value.count(a)) {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      f.values[a] = args[++i];
    } else if (switches.count(a)) {
      f.switches.insert(a);
    } else {
      throw std::invalid_argument("unknown option " + a);
    }
  }
  return f;
}

uint32_t positive_flag(const Flags& f, const std::string& name, uint32_t fallback) {
  const auto it = f.values.find(name);
  if (it == f.values.end()) return fallback;
  uint32_t v = 0;
  const auto r = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (r.ec != std::errc() || r.ptr != it->second.data() + it->second.size() || v == 0) {
    throw std::invalid_argument(name + ": \"" + it->second + "\" is not a positive integer");
  }
  return v;
}

void print_outcome(const SweepPlan& plan, const CollectOutcome& c, const std::string& dir) {
  std::cout << plan.points.size() << " points: " << c.ok << " ok, " << c.failed << " failed, "
            << c.invalid << " invalid, " << c.missing << " missing\n"
            << "table: " << (fs::path(dir) / "summary.csv").string() << " and "
            << (fs::path(dir) / "summary.h5").string() << " (/summary)\n";
  if (c.failed + c.invalid > 0) {
    std::cerr << "tiersim sweep: " << c.failed + c.invalid
              << " points did not run to completion; their errors are in the table's error "
                 "column and in "
              << (fs::path(dir) / "points").string() << "/*.err, *.invalid\n";
  }
}

int run_sweep(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "collect") {
    const Flags f = parse_flags({args.begin() + 1, args.end()}, {}, {});
    if (f.positional.size() != 1) throw std::invalid_argument("collect takes one directory");
    const SweepPlan plan = stored_plan(f.positional[0]);
    const CollectOutcome c = collect_sweep(plan, f.positional[0]);
    print_outcome(plan, c, f.positional[0]);
    if (c.missing > 0) {
      std::cout << "missing points:";
      for (const auto& p : plan.points) {
        if (!path_exists(point_file(f.positional[0], p.index, "h5")) &&
            !point_failed(point_file(f.positional[0], p.index, "err")) &&
            !path_exists(point_file(f.positional[0], p.index, "invalid"))) {
          std::cout << " " << p.index;
        }
      }
      std::cout << "\n";
    }
    return 0;
  }
  if (!args.empty() && args[0] == "run-task") {
    const Flags f =
        parse_flags({args.begin() + 1, args.end()}, {"--task", "--points-per-task", "--jobs"}, {});
    if (f.positional.size() != 1) throw std::invalid_argument("run-task takes one directory");
    if (!f.values.count("--task")) throw std::invalid_argument("run-task needs --task");
    const SweepPlan plan = stored_plan(f.positional[0]);
    uint32_t task = 0;
    const std::string& t = f.values.at("--task");
    if (std::from_chars(t.data(), t.data() + t.size(), task).ec != std::errc()) {
      throw std::invalid_argument("--task: \"" + t + "\" is not a number");
    }
    const uint32_t per = positive_flag(f, "--points-per-task", 1);
    std::vector<uint32_t> mine;
    for (uint64_t i = uint64_t{task} * per;
         i < std::min<uint64_t>(plan.points.size(), uint64_t{task + 1} * per); ++i) {
      mine.push_back(static_cast<uint32_t>(i));
    }
    // The task's points, as many at once as the task has CPUs (--jobs "$SLURM_CPUS_PER_TASK").
    const uint32_t jobs = positive_flag(f, "--jobs", 1);
    const uint32_t failed = run_points(plan, f.positional[0], self_binary(), mine, jobs, false);
    std::cout << "task " << task << ": " << mine.size() << " points, " << failed << " failed\n";
    return 0;
  }
  // Slurm options first; the rest as the local sweep takes them.
  config::SlurmSettings slurm;
  std::vector<std::string> rest, sets;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!take_slurm_option(args, i, slurm) && !take_set_option(args, i, sets)) {
      rest.push_back(args[i]);
    }
  }
  const Flags f = parse_flags(rest, {"--out", "--jobs", "--resubmit-failed"},
                              {"--slurm", "--no-submit", "--quiet"});
  if (f.values.count("--resubmit-failed")) {
    if (!f.positional.empty() || f.values.count("--out")) {
      throw std::invalid_argument("--resubmit-failed DIR takes no spec and no --out");
    }
    if (!sets.empty()) throw std::invalid_argument("--resubmit-failed DIR takes no --set");
    const std::string dir = f.values.at("--resubmit-failed");
    const SweepPlan plan = stored_plan(dir);
    resubmit_failed({"sweep", plan.spec.name()}, plan, dir, slurm,
                    f.switches.count("--no-submit") > 0);
    return 0;
  }
  if (f.positional.size() != 1) throw std::invalid_argument("give one sweep spec file");
  if (!f.values.count("--out")) throw std::invalid_argument("--out DIR is required");
  const bool on_slurm = f.switches.count("--slurm") > 0;
  if (!on_slurm && (slurm.ByteSizeLong() > 0 || f.switches.count("--no-submit"))) {
    throw std::invalid_argument("Slurm options (--partition, --time, ...) need --slurm");
  }
  if (on_slurm && f.values.count("--jobs")) {
    throw std::invalid_argument(
        "--jobs is for local runs; on Slurm each task runs --cpus points "
        "at once");
  }
  const std::string dir = f.values.at("--out");
  const SweepPlan plan = load_sweep(f.positional[0], sets);
  check_plan_overrides(plan, f.positional[0]);
  prepare_dir(plan, dir);
  if (on_slurm) {
    submit_to_slurm({"sweep", plan.spec.name()}, plan, dir, slurm, {},
                    f.switches.count("--no-submit") > 0);
    return 0;
  }
  const unsigned jobs =
      positive_flag(f, "--jobs", std::max(1u, std::thread::hardware_concurrency()));
  std::vector<uint32_t> all;
  for (const auto& p : plan.points)
    all.push_back(p.index);
  const bool quiet = f.switches.count("--quiet") > 0;
  run_points(plan, dir, self_binary(), all, jobs, !quiet && isatty(STDERR_FILENO));
  const CollectOutcome c = collect_sweep(plan, dir);
  if (!quiet) print_outcome(plan, c, dir);
  return 0;
}

const CommandRegistrar kRegistrar(CommandKind{
    "sweep",
    "  sweep SPEC --out DIR [--set k=v]... [--jobs N] [--quiet]\n"
    "                     run every point of a sweep spec (one process each, N at a time;\n"
    "                     finished points are skipped on a rerun) and write DIR/summary.csv\n"
    "                     and DIR/summary.h5; --set adds to the spec's set list\n"
    "  sweep SPEC --out DIR --slurm [Slurm options]\n"
    "                     write DIR/sweep.sbatch (a job array) and DIR/collect.sbatch (the\n"
    "                     table, after the array: afterany) and submit both with sbatch\n"
    "  sweep --resubmit-failed DIR [Slurm options]\n"
    "                     submit again only the array tasks with points that have no\n"
    "                     result, with the settings kept in DIR/slurm.textproto\n"
    "  sweep collect DIR  build the table from the points that finished; list missing ones\n"
    "  Slurm options:\n" +
        std::string(kSlurmOptionsHelp),
    run_sweep});

}  // namespace

}  // namespace tiersim
