// `tiersim collective`: a collective swept over message sizes on a config's pod (system.pod),
// printed as nccl-tests prints it (size, time, algorithm and bus bandwidth), optionally stored
// as an HDF5 table.
#include <cstdio>
#include <sstream>

#include "accelerators/compute_engine.h"
#include "fabric/collectives.h"
#include "fabric/pod.h"
#include "models/config/loader.h"
#include "models/core/registry.h"
#include "models/run/result_file.h"

#ifndef TIERSIM_VERSION
#define TIERSIM_VERSION "0.0.0"
#endif

namespace tiersim {

namespace {

// "8", "64K", "1M", "8G" (binary multiples, as nccl-tests reads them).
uint64_t parse_size(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  double mult = 1;
  const std::string suffix = end ? std::string(end) : "";
  if (suffix == "K") {
    mult = 1024.0;
  } else if (suffix == "M") {
    mult = 1024.0 * 1024;
  } else if (suffix == "G") {
    mult = 1024.0 * 1024 * 1024;
  } else if (!suffix.empty()) {
    throw std::invalid_argument(flag + ": \"" + text + "\" is not a size (N, NK, NM or NG)");
  }
  const double bytes = v * mult;
  if (text.empty() || !(bytes >= 1) || bytes > 1e15) {
    throw std::invalid_argument(flag + ": \"" + text + "\" must be between 1 byte and 1 PB");
  }
  return static_cast<uint64_t>(bytes);
}

int run_collective(const std::vector<std::string>& args) {
  std::vector<std::string> files, sets;
  std::string out, op_name = "all_reduce", algo_name;
  uint64_t min_bytes = 8, max_bytes = 1ull << 30;
  uint32_t ranks = 0, factor = 2;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    auto count = [&](const std::string& v, uint32_t lo, uint32_t hi) {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < long(lo) || n > long(hi)) {
        throw std::invalid_argument(a + ": \"" + v + "\" must be an integer in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "]");
      }
      return static_cast<uint32_t>(n);
    };
    if (a == "--set") {
      sets.push_back(value());
    } else if (a == "--out") {
      out = value();
    } else if (a == "--op") {
      op_name = value();
    } else if (a == "--algorithm") {
      algo_name = value();
    } else if (a == "--ranks") {
      ranks = count(value(), 2, 65536);
    } else if (a == "--min-bytes") {
      min_bytes = parse_size(a, value());
    } else if (a == "--max-bytes") {
      max_bytes = parse_size(a, value());
    } else if (a == "--factor") {
      factor = count(value(), 2, 1024);
    } else if (a.rfind("--", 0) == 0) {
      throw std::invalid_argument("unknown option " + a);
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) throw std::invalid_argument("no config files given");
  if (min_bytes > max_bytes) throw std::invalid_argument("--min-bytes exceeds --max-bytes");
  if (!out.empty()) {
    if (const std::string problem = prepare_output_path(out); !problem.empty()) {
      throw std::invalid_argument("--out " + problem);
    }
  }
  CollectiveOp op;
  if (op_name == "all_reduce") {
    op = CollectiveOp::kAllReduce;
  } else if (op_name == "all_gather") {
    op = CollectiveOp::kAllGather;
  } else if (op_name == "reduce_scatter") {
    op = CollectiveOp::kReduceScatter;
  } else if (op_name == "all_to_all") {
    op = CollectiveOp::kAllToAll;
  } else {
    throw std::invalid_argument(
        "--op must be all_reduce, all_gather, reduce_scatter or all_to_all");
  }
  config::CollectiveAlgorithm algo = config::AUTO;
  if (!algo_name.empty() && (!config::CollectiveAlgorithm_Parse(algo_name, &algo) ||
                             algo == config::COLLECTIVE_ALGORITHM_UNSPECIFIED)) {
    throw std::invalid_argument(
        "--algorithm must be RING, ONE_SHOT, TREE, IN_SWITCH, TWO_SHOT or AUTO");
  }

  LoadedConfig loaded = load_config(files, sets, ConfigScope::kSystem);
  const config::System& sys = loaded.config.system();
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  if (!sys.has_pod()) {
    v.root("system").error("pod", "required by tiersim collective (the fabric it runs on)");
  } else {
    Validator pv = v.root("system.pod");
    Pod::validate(sys.pod(), pv);
  }
  Validator fv = v.root("system.scale_up");
  const auto& f = sys.scale_up();
  fv.positive("rank_bandwidth_bytes_per_s", f.has_rank_bandwidth_bytes_per_s(),
              f.rank_bandwidth_bytes_per_s());
  // The software stack's protocols replace the fabric's latencies.
  const config::Software& sw = loaded.config.software();
  if (sw.collective_protocols_size() == 0) {
    fv.require("step_latency_ps", f.has_step_latency_ps());
    fv.require("launch_latency_ps", f.has_launch_latency_ps());
  }
  Validator sv = v.root("software");
  SoftwareModel::validate(sw, sv);
  if (!issues.empty()) {
    for (auto& i : issues)
      i.where = loaded.locate(i.path);
    throw ConfigError(issues);
  }
  if (ranks > sys.pod().nodes()) {
    throw std::invalid_argument("--ranks " + std::to_string(ranks) + " exceeds the pod's " +
                                std::to_string(sys.pod().nodes()) + " nodes");
  }
  const Pod pod = Pod::from_config(sys.pod(), f.rank_bandwidth_bytes_per_s());
  if (ranks == 0) ranks = pod.nodes();
  // No --algorithm: the software stack's collective_algorithm, if it sets one, else AUTO.
  if (algo_name.empty() && sw.has_collective_algorithm()) {
    algo = sw.collective_algorithm();
    algo_name = config::CollectiveAlgorithm_Name(algo);
  }
  const CollectiveModel model = CollectiveModel::from_config(
      f, ranks, algo, nullptr, CollectiveModel::protocols_from_config(sw));
  PodCollectiveCache coll(pod, ranks, model.effective_protocols());
  if (algo == config::TWO_SHOT && sw.collective_protocols_size() == 0) {
    throw std::invalid_argument(
        "--algorithm TWO_SHOT runs only under a software.collective_protocols entry that lists "
        "it (e.g. configs/software/collectives/vllm_custom_allreduce.textproto)");
  }
  if (!coll.runnable(op, algo) && (algo == config::AUTO || coll.available(op, algo))) {
    throw ConfigError({ConfigIssue{
        loaded.locate("software.collective_protocols"), "software.collective_protocols",
        std::string("no protocol runs an algorithm that ") +
            (algo == config::AUTO ? "AUTO may choose"
                                  : "is " + config::CollectiveAlgorithm_Name(algo)) +
            " for " + op_name}});
  }
  if (algo != config::AUTO && !coll.available(op, algo)) {
    throw std::invalid_argument("--algorithm " + algo_name + " cannot run " + op_name +
                                " on this pod (TREE: all_reduce only; IN_SWITCH: a "
                                "POD_SINGLE_SWITCH pod whose switch reduces, not all_to_all; "
                                "TWO_SHOT: not all_to_all)");
  }

  // Each size must be served by some protocol (their message ranges and rank counts).
  for (uint64_t size = min_bytes; size <= max_bytes; size *= factor) {
    const uint64_t per_rank =
        op == CollectiveOp::kAllGather ? std::max<uint64_t>(1, size / ranks) : size;
    bool served = false;
    for (const CollectiveProtocol& pr : coll.protocols()) {
      if (!pr.serves(op, protocol_message_bytes(op, per_rank, ranks), ranks)) continue;
      for (const config::CollectiveAlgorithm a : allowed_algorithms(algo))
        served = served || (pr.runs(a) && coll.available(op, a));
    }
    if (!served) {
      throw ConfigError({ConfigIssue{
          loaded.locate("software.collective_protocols"), "software.collective_protocols",
          "no protocol serves the " + op_name + " of " + std::to_string(per_rank) +
              " bytes per rank on " + std::to_string(ranks) + " ranks under " +
              config::CollectiveAlgorithm_Name(algo) +
              " (min_message_bytes, max_message_bytes, min_ranks, max_ranks)"}});
    }
    if (size > max_bytes / factor) break;
  }

  Table t;
  const size_t c_size = t.add_column("size_bytes", Table::Type::kU64, "bytes");
  const size_t c_time = t.add_column("time_us", Table::Type::kF64, "us");
  const size_t c_alg = t.add_column("algbw_gb_per_s", Table::Type::kF64, "GB/s");
  const size_t c_bus = t.add_column("busbw_gb_per_s", Table::Type::kF64, "GB/s");
  const size_t c_algo = t.add_column("algorithm", Table::Type::kStr);
  const size_t c_energy = t.add_column("link_energy_uj", Table::Type::kF64, "uJ");
  const bool named = sw.collective_protocols_size() > 0;
  const size_t c_proto = named ? t.add_column("protocol", Table::Type::kStr) : 0;
  const std::string level =
      pod.packet_bytes() > 0
          ? "serial-link level, " + std::to_string(pod.packet_bytes()) + "-byte packets"
          : "flow level";
  std::printf(
      "# %s on %u ranks of a %u-node pod (%u links, %u switches; %s); time includes the "
      "launch latency\n",
      op_name.c_str(), ranks, pod.nodes(), unsigned(pod.links().size()), pod.switches(),
      level.c_str());
  std::printf("#%14s %12s %12s %12s %10s %14s%s\n", "size (B)", "time (us)", "algbw (GB/s)",
              "busbw (GB/s)", "algorithm", "energy (uJ)", named ? "   protocol" : "");
  for (uint64_t size = min_bytes; size <= max_bytes; size *= factor) {
    // nccl-tests' sizes: all-gather's is the gathered buffer (a whole share per rank, at least
    // 1 byte each: the size printed is the one simulated); the others' one rank's buffer.
    const uint64_t per_rank =
        op == CollectiveOp::kAllGather ? std::max<uint64_t>(1, size / ranks) : size;
    const uint64_t shown = op == CollectiveOp::kAllGather ? per_rank * ranks : size;
    const CollectiveResult& r = coll.get(op, per_rank, algo);
    const config::CollectiveAlgorithm chosen = r.algorithm;
    const double time_s = double(r.total_ps()) * 1e-12;
    const double algbw = double(shown) / time_s / 1e9;
    const double busbw = algbw * bus_bandwidth_factor(op, ranks);
    const std::string chosen_name = config::CollectiveAlgorithm_Name(chosen);
    const std::string proto = named ? coll.protocols()[r.protocol].name : "";
    std::printf(" %14llu %12.2f %12.2f %12.2f %10s %14.3f%s%s\n", (unsigned long long)shown,
                time_s * 1e6, algbw, busbw, chosen_name.c_str(), r.energy_j * 1e6,
                named ? "   " : "", proto.c_str());
    if (named) t.columns[c_proto].str.push_back(proto);
    t.columns[c_size].u64.push_back(shown);
    t.columns[c_time].f64.push_back(time_s * 1e6);
    t.columns[c_alg].f64.push_back(algbw);
    t.columns[c_bus].f64.push_back(busbw);
    t.columns[c_algo].str.push_back(chosen_name);
    t.columns[c_energy].f64.push_back(r.energy_j * 1e6);
    if (size > max_bytes / factor) break;
  }
  if (!out.empty()) {
    ResultWriter w(out);
    w.write_string("/meta/config", loaded.resolved_text());
    w.write_strings("/meta/args", args);
    w.write_string("/meta/version", TIERSIM_VERSION);
    w.write_table("/collective", t);
    w.commit();
    std::printf("results: %s\n", out.c_str());
  }
  return 0;
}

const CommandRegistrar kRegistrar(CommandKind{
    "collective",
    "  collective FILES... [--set k=v]... [--op all_reduce|all_gather|reduce_scatter|\n"
    "           all_to_all] [--algorithm RING|ONE_SHOT|TREE|IN_SWITCH|TWO_SHOT|AUTO] [--ranks N]\n"
    "           [--min-bytes N] [--max-bytes N] [--factor F] [--out FILE.h5]\n"
    "                     a collective on the config's pod (system.pod) over message sizes,\n"
    "                     as nccl-tests reports it (sizes take K, M, G suffixes); the\n"
    "                     files' software.collective_protocols, if set, replace\n"
    "                     system.scale_up's launch and step latencies; without\n"
    "                     --algorithm, software.collective_algorithm or AUTO\n",
    run_collective});

}  // namespace

}  // namespace tiersim
