#include "models/run/cli.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "memory/tools/hbm_calibrate.h"
#include "models/config/loader.h"
#include "models/core/registry.h"
#include "models/core/time.h"
#include "models/run/result_file.h"
#include "models/run/simulation.h"

#ifndef TIERSIM_VERSION
#define TIERSIM_VERSION "0.0.0"
#endif
#include "tiersim_git_revision.h"  // generated at build time: TIERSIM_GIT_REV
#ifndef TIERSIM_GIT_REV
#define TIERSIM_GIT_REV "unknown"
#endif

namespace tiersim {

namespace po = boost::program_options;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitInternal = 1;
constexpr int kExitBadInput = 2;

const char* kUsage =
    "usage: tiersim <command> [options]\n"
    "\n"
    "commands:\n"
    "  run FILES... [--set k=v]... [--out FILE.h5] [--quiet]\n"
    "                     merge the config files in order, apply overrides, simulate, write\n"
    "                     the result file and print the summary\n"
    "  trace FILES... [--set k=v]... --out TRACE [--quiet]\n"
    "                     run as `run` does and record every object and op it consumes to\n"
    "                     TRACE (replay it with workload { replay { trace: \"TRACE\" } })\n"
    "  config FILES... [--set k=v]...\n"
    "                     print the resolved config (after merging, overrides, validation)\n"
    "  report FILE.h5 [--json]\n"
    "                     print the summary of a result file (--json: one flat JSON object)\n"
    "  calibrate FILES... [--set k=v]... [--component NAME] [--out FRAGMENT]\n"
    "                     [--duration-us D]  derive a component's fast-level parameters from\n"
    "                     its detailed description; print or write a config fragment\n"
    "  list [workloads]   print every component kind (or workload kind), one per line:\n"
    "                     its config name, then a one-line description\n"
    "  --help, --version\n"
    "\n"
    "exit codes: 0 ok, 2 bad input (config, arguments, files), 1 internal error\n";

// The built-in usage plus the commands modules registered.
std::string usage() {
  std::string u = kUsage;
  const auto cut = u.find("\nexit codes");
  std::string extra;
  for (const auto& k : command_kinds())
    extra += k.usage;
  return u.substr(0, cut) + extra + u.substr(cut);
}

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses `args` into the variables `opts` is bound to; positional arguments go to "files".
void parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& opts) {
  po::positional_options_description pos;
  pos.add("files", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError("tiersim " + command + ": " + e.what());
  }
}

struct ConfigArgs {
  std::vector<std::string> files, sets;
  std::string out;
  bool quiet = false;
  bool json = false;
};

ConfigArgs parse_args(const std::string& command, const std::vector<std::string>& args,
                      bool with_run_options, bool with_json) {
  ConfigArgs a;
  po::options_description opts;
  opts.add_options()("set", po::value(&a.sets)->composing(), "override k=v")(
      "files", po::value(&a.files)->composing(), "config files");
  if (with_run_options) {
    opts.add_options()("out", po::value(&a.out), "result file")("quiet", po::bool_switch(&a.quiet),
                                                                "no progress or summary");
  }
  if (with_json) opts.add_options()("json", po::bool_switch(&a.json), "JSON output");
  parse_options(command, args, opts);
  return a;
}

// `list`: component kinds, one per line (config name, two spaces, description);
// `list workloads`: workload scenario kinds in the same format.
int cmd_list(const std::vector<std::string>& args) {
  if (args.empty()) {
    for (const auto& k : component_kinds())
      std::cout << k.config_name << "  " << k.description << "\n";
  } else if (args.size() == 1 && args[0] == "workloads") {
    for (const auto& k : workload_kinds())
      std::cout << k.config_name << "  " << k.description << "\n";
  } else {
    throw UsageError("tiersim list: expected no argument or \"workloads\"");
  }
  return kExitOk;
}

int cmd_config(const std::vector<std::string>& args) {
  ConfigArgs a = parse_args("config", args, false, false);
  if (a.files.empty()) throw UsageError("tiersim config: no config files given");
  LoadedConfig loaded = load_config(a.files, a.sets);
  std::cout << loaded.resolved_text();
  return kExitOk;
}

int cmd_run(const std::vector<std::string>& args) {
  ConfigArgs a = parse_args("run", args, true, false);
  if (a.files.empty()) throw UsageError("tiersim run: no config files given");
  // Validate everything before simulating, including where the result goes.
  LoadedConfig loaded = load_config(a.files, a.sets);
  if (!a.out.empty()) {
    const std::string problem = prepare_output_path(a.out);
    if (!problem.empty()) throw UsageError("tiersim run: --out " + problem);
  }
  RunOptions options;
  options.out_path = a.out;
  options.progress = !a.quiet && isatty(STDERR_FILENO);
  RunOutcome outcome = run_simulation(loaded, options);
  if (!a.quiet) {
    if (outcome.stopped_by != "complete") {
      std::cout << "stopped by " << outcome.stopped_by << " before the workload completed\n";
    }
    print_summary(outcome.summary, std::cout);
    if (!a.out.empty()) std::cout << "results: " << a.out << "\n";
  }
  return kExitOk;
}

// `trace`: a run that also records its op and object stream.
int cmd_trace(const std::vector<std::string>& args) {
  ConfigArgs a = parse_args("trace", args, true, false);
  if (a.files.empty()) throw UsageError("tiersim trace: no config files given");
  if (a.out.empty()) throw UsageError("tiersim trace: --out TRACE is required");
  LoadedConfig loaded = load_config(a.files, a.sets);
  const std::string problem = prepare_output_path(a.out);
  if (!problem.empty()) throw UsageError("tiersim trace: --out " + problem);
  RunOptions options;
  options.trace_path = a.out;
  options.progress = !a.quiet && isatty(STDERR_FILENO);
  RunOutcome outcome = run_simulation(loaded, options);
  if (!a.quiet) {
    print_summary(outcome.summary, std::cout);
    std::cout << "trace: " << a.out << "\n";
  }
  return kExitOk;
}

// `calibrate`: derives a component's fast-level parameters from its detailed description and
// prints (or writes atomically, --out) a config fragment that merges after the inputs.
int cmd_calibrate(const std::vector<std::string>& args) {
  std::vector<std::string> files, sets;
  std::string component, out;
  double duration_us = kDefaultCalibrationUs;
  po::options_description opts;
  opts.add_options()("set", po::value(&sets)->composing(), "")("files", po::value(&files), "")(
      "component", po::value(&component), "")("out", po::value(&out), "")(
      "duration-us", po::value(&duration_us), "");
  parse_options("calibrate", args, opts);
  if (files.empty()) throw UsageError("tiersim calibrate: no config files given");
  if (!(duration_us > 0 && duration_us <= 1e5)) {
    throw UsageError("tiersim calibrate: --duration-us must be in (0, 100000]");
  }
  LoadedConfig loaded = load_config(files, sets, ConfigScope::kSystem);
  std::vector<const config::Component*> candidates;
  for (const auto& c : loaded.config.system().components()) {
    const ComponentKind* k = find_component_kind(component_kind_name(c));
    if (!component.empty() ? c.name() == component : (k && k->calibrate)) {
      candidates.push_back(&c);
    }
  }
  if (candidates.empty()) {
    throw UsageError(component.empty()
                         ? "tiersim calibrate: no component of a kind with a detailed level"
                         : "tiersim calibrate: no component named \"" + component + "\"");
  }
  if (candidates.size() > 1) {
    throw UsageError(
        "tiersim calibrate: several components can be calibrated; choose one with "
        "--component");
  }
  const config::Component& c = *candidates[0];
  const std::string kind = component_kind_name(c);
  const ComponentKind* k = find_component_kind(kind);
  if (!k->calibrate) {
    throw UsageError("tiersim calibrate: components of kind \"" + kind +
                     "\" have no detailed level to calibrate from");
  }
  std::ostringstream report;
  std::string fields;
  try {
    fields = k->calibrate(c, duration_us, report);
  } catch (const ConfigError& e) {
    std::vector<ConfigIssue> issues = e.issues();
    for (auto& i : issues) {
      if (i.where.file.empty()) i.where = loaded.locate(i.path);
    }
    throw ConfigError(issues);
  }
  std::ostringstream frag;
  frag << "# Fast-level parameters of component \"" << c.name()
       << "\", calibrated by `tiersim calibrate` (tiersim " << TIERSIM_VERSION << ", "
       << TIERSIM_GIT_REV << ", --duration-us " << duration_us << ") from:\n";
  for (const auto& f : files)
    frag << "#   " << f << "\n";
  for (const auto& s : sets)
    frag << "#   --set " << s << "\n";
  std::istringstream lines(report.str());
  std::string line;
  while (std::getline(lines, line))
    frag << "# " << line << "\n";
  frag << "system {\n  components {\n    name: \"" << c.name() << "\"\n    " << kind << " {\n";
  std::istringstream flines(fields);
  while (std::getline(flines, line))
    frag << "      " << line << "\n";
  frag << "    }\n  }\n}\n";
  if (out.empty()) {
    std::cout << frag.str();
    return kExitOk;
  }
  if (const std::string problem = prepare_output_path(out); !problem.empty()) {
    throw UsageError("tiersim calibrate: --out " + problem);
  }
  if (const std::string problem = write_text_atomically(out, frag.str()); !problem.empty()) {
    throw UsageError("tiersim calibrate: " + problem);
  }
  std::cout << report.str() << "fragment: " << out << "\n";
  return kExitOk;
}

int cmd_report(const std::vector<std::string>& args) {
  ConfigArgs a = parse_args("report", args, false, true);
  if (a.files.size() != 1) throw UsageError("tiersim report: give exactly one result file");
  if (!a.sets.empty()) throw UsageError("tiersim report: --set does not apply");
  const std::string& path = a.files[0];
  std::vector<SummaryItem> items;
  try {
    ResultReader reader(path);
    items = reader.summary();
  } catch (const ResultFileError& e) {
    throw UsageError("tiersim report: " + std::string(e.what()));
  } catch (const H5::Exception& e) {
    // Sealed but without a readable summary: written by another tool or another layout.
    throw UsageError("tiersim report: " + path + ": no readable summary (" + e.getDetailMsg() +
                     ")");
  }
  if (a.json) {
    google::protobuf::Struct s;
    for (const auto& i : items) {
      // JSON has no infinity or NaN: a figure that is not finite is null, never a number.
      if (std::isfinite(i.value)) {
        (*s.mutable_fields())[i.name].set_number_value(i.value);
      } else {
        (*s.mutable_fields())[i.name].set_null_value(google::protobuf::NULL_VALUE);
      }
    }
    std::string json;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    auto status = google::protobuf::util::MessageToJsonString(s, &json, opts);
    if (!status.ok()) throw std::runtime_error("JSON encoding failed");
    std::cout << json << "\n";
  } else {
    print_summary(items, std::cout);
  }
  return kExitOk;
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) {
      std::cerr << usage();
      return kExitBadInput;
    }
    const std::string command = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << usage();
      return kExitOk;
    }
    if (command == "--version") {
      std::cout << "tiersim " << TIERSIM_VERSION << " (" << TIERSIM_GIT_REV << ")\n";
      return kExitOk;
    }
    for (const auto& a : rest) {
      if (a == "--help" || a == "-h") {
        std::cout << usage();
        return kExitOk;
      }
    }
    if (command == "list") return cmd_list(rest);
    if (command == "config") return cmd_config(rest);
    if (command == "run") return cmd_run(rest);
    if (command == "trace") return cmd_trace(rest);
    if (command == "report") return cmd_report(rest);
    if (command == "calibrate") return cmd_calibrate(rest);
    if (const CommandKind* k = find_command_kind(command)) {
      try {
        return k->run(rest);
      } catch (const std::invalid_argument& e) {
        throw UsageError("tiersim " + command + ": " + e.what());
      }
    }
    std::cerr << "tiersim: unknown command \"" << command << "\"\n" << usage();
    return kExitBadInput;
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return kExitBadInput;
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return kExitBadInput;
  } catch (const RunInputError& e) {
    std::cerr << "tiersim: the run cannot go on: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "tiersim: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}

}  // namespace tiersim
