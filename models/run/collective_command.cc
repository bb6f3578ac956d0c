// `tiersim collective`: a collective swept over message sizes on a config's pod (system.pod),
// printed as nccl-tests prints it (size, time, algorithm and bus bandwidth), optionally stored
// as an HDF5 table.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "accelerators/compute_engine.h"
#include "fabric/collectives.h"
#include "fabric/pod.h"
#include "models/config/loader.h"
#include "models/core/registry.h"
#include "models/core/rng.h"
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

// The `/collective` table and `/meta` (the resolved config, the arguments, the version),
// written atomically to `out`.
void write_collective(const std::string& out, const LoadedConfig& loaded,
                      const std::vector<std::string>& args, const Table& t) {
  ResultWriter w(out);
  w.write_string("/meta/config", loaded.resolved_text());
  w.write_strings("/meta/args", args);
  w.write_string("/meta/version", TIERSIM_VERSION);
  w.write_table("/collective", t);
  w.commit();
  std::printf("results: %s\n", out.c_str());
}

// A MoE all-to-all as DeepEP's tests drive it: every rank routes `tokens` tokens to `top_k` of
// `experts` experts (expert e on rank e / (experts / ranks)), by independent random scores,
// limited to the `top_k_groups` domains (groups) whose best expert scores highest (0: every
// domain). A token goes once to each other rank holding any of its experts (`traffic`, bytes),
// and, across domains, once to each other domain (`domain_tokens`, tokens). Independent
// continuous scores make every ranking equally likely, so uniform draws stand in for DeepEP's
// |N(0, 1)| + 1.
struct MoeTraffic {
  std::vector<uint64_t> traffic;        // [from * ranks + to], tokens
  std::vector<uint64_t> domain_tokens;  // [rank * domains + domain], tokens (own domain: 0)
  uint64_t rank0_domain_pairs = 0;      // rank 0's (token, domain) pairs, its own domain too
  uint64_t rank0_received = 0;          // tokens rank 0 receives, its own too
};

MoeTraffic route_moe(uint32_t ranks, uint32_t domain_nodes, uint32_t tokens, uint32_t experts,
                     uint32_t top_k, uint32_t top_k_groups, uint64_t seed) {
  const uint32_t domains = ranks / domain_nodes, per_rank = experts / ranks;
  const uint32_t per_domain = per_rank * domain_nodes;
  const bool limited = top_k_groups > 0 && top_k_groups < domains;
  MoeTraffic m;
  m.traffic.assign(size_t{ranks} * ranks, 0);
  m.domain_tokens.assign(size_t{ranks} * domains, 0);
  Rng rng(seed);
  std::vector<double> score(experts), group(domains);
  std::vector<uint32_t> order(experts), groups(domains);
  std::vector<uint8_t> rank_hit(ranks), domain_hit(domains);
  for (uint32_t a = 0; a < ranks; ++a) {
    for (uint32_t t = 0; t < tokens; ++t) {
      for (uint32_t e = 0; e < experts; ++e)
        score[e] = rng.uniform();
      uint32_t candidates = experts;
      for (uint32_t e = 0; e < experts; ++e)
        order[e] = e;
      if (limited) {
        for (uint32_t d = 0; d < domains; ++d) {
          group[d] = *std::max_element(score.begin() + size_t{d} * per_domain,
                                       score.begin() + size_t{d + 1} * per_domain);
          groups[d] = d;
        }
        std::partial_sort(groups.begin(), groups.begin() + top_k_groups, groups.end(),
                          [&](uint32_t x, uint32_t y) { return group[x] > group[y]; });
        candidates = 0;
        for (uint32_t g = 0; g < top_k_groups; ++g) {
          for (uint32_t e = 0; e < per_domain; ++e)
            order[candidates++] = groups[g] * per_domain + e;
        }
      }
      std::partial_sort(order.begin(), order.begin() + top_k, order.begin() + candidates,
                        [&](uint32_t x, uint32_t y) { return score[x] > score[y]; });
      std::fill(rank_hit.begin(), rank_hit.end(), 0);
      std::fill(domain_hit.begin(), domain_hit.end(), 0);
      for (uint32_t j = 0; j < top_k; ++j) {
        const uint32_t b = order[j] / per_rank;
        rank_hit[b] = 1;
        domain_hit[b / domain_nodes] = 1;
      }
      for (uint32_t b = 0; b < ranks; ++b) {
        if (!rank_hit[b]) continue;
        if (b != a) ++m.traffic[size_t{a} * ranks + b];
        if (b == 0) ++m.rank0_received;
      }
      for (uint32_t d = 0; d < domains; ++d) {
        if (!domain_hit[d]) continue;
        if (d != a / domain_nodes) ++m.domain_tokens[size_t{a} * domains + d];
        if (a == 0) ++m.rank0_domain_pairs;
      }
    }
  }
  return m;
}

// `tiersim collective --op moe_dispatch|moe_combine`: one MoE all-to-all of routed tokens
// (route_moe), reported as DeepEP's tests report it.
struct MoeOptions {
  uint32_t tokens = 4096, experts = 256, top_k = 8, top_k_groups = 0;
  uint64_t token_bytes = 0, seed = 1;
};

int run_moe(const std::vector<std::string>& args, const std::string& op_name,
            const LoadedConfig& loaded, const Pod& pod, PodCollectiveCache& coll, uint32_t ranks,
            const MoeOptions& o, const std::string& out) {
  const bool gather = op_name == "moe_combine";
  const uint32_t dn = pod.scale_out() ? pod.domain_nodes() : ranks;
  const bool two_tier = pod.scale_out() && ranks > dn;
  if (two_tier && ranks % dn != 0) {
    throw std::invalid_argument("--ranks " + std::to_string(ranks) +
                                " must fill whole scale-out domains of " + std::to_string(dn) +
                                " nodes");
  }
  const uint32_t domain_nodes = two_tier ? dn : ranks;
  if (o.experts % ranks != 0) {
    throw std::invalid_argument("--experts " + std::to_string(o.experts) +
                                " must be a multiple of --ranks " + std::to_string(ranks));
  }
  if (o.top_k > o.experts) throw std::invalid_argument("--top-k exceeds --experts");
  const uint32_t domains = ranks / domain_nodes;
  if (o.top_k_groups > 0 && o.top_k_groups < domains &&
      uint64_t{o.top_k_groups} * (o.experts / domains) < o.top_k) {
    throw std::invalid_argument("--top-k-groups leaves fewer than --top-k experts to choose from");
  }
  const MoeTraffic m =
      route_moe(ranks, domain_nodes, o.tokens, o.experts, o.top_k, o.top_k_groups, o.seed);
  std::vector<uint64_t> traffic(m.traffic.size()), domain(m.domain_tokens.size());
  for (uint32_t a = 0; a < ranks; ++a) {
    for (uint32_t b = 0; b < ranks; ++b) {
      // A combine sends back what the dispatch brought.
      const uint64_t tok =
          gather ? m.traffic[size_t{b} * ranks + a] : m.traffic[size_t{a} * ranks + b];
      traffic[size_t{a} * ranks + b] = tok * o.token_bytes;
    }
  }
  for (size_t i = 0; i < domain.size(); ++i)
    domain[i] = m.domain_tokens[i] * o.token_bytes;
  const CollectiveResult r = two_tier
                                 ? coll.two_tier_all_to_all(traffic.data(), domain.data(), gather)
                                 : coll.all_to_all(traffic.data(), config::ONE_SHOT);
  const double time_s = double(r.total_ps()) * 1e-12;
  // DeepEP's figures: rank 0's (token, domain) pairs (its own domain too) and the tokens it
  // receives (its own too), in bytes, over the time.
  const double rdma = double(m.rank0_domain_pairs * o.token_bytes) / time_s / 1e9;
  const double nvl = double(m.rank0_received * o.token_bytes) / time_s / 1e9;
  std::printf(
      "# %s of %u tokens per rank, top-%u of %u experts%s, %llu bytes per token, on %u ranks "
      "(%u domains of %u; %s) of a %u-node pod; time includes the launch latency\n",
      op_name.c_str(), o.tokens, o.top_k, o.experts,
      o.top_k_groups > 0 ? (" in " + std::to_string(o.top_k_groups) + " groups").c_str() : "",
      (unsigned long long)o.token_bytes, ranks, domains, domain_nodes,
      two_tier ? "two tiers" : "direct", pod.nodes());
  std::printf("#%12s %14s %14s %14s %14s\n", "time (us)", "rdma (GB/s)", "nvl (GB/s)", "link bytes",
              "energy (uJ)");
  std::printf(" %12.2f %14.2f %14.2f %14llu %14.3f\n", time_s * 1e6, rdma, nvl,
              (unsigned long long)r.link_bytes, r.energy_j * 1e6);
  if (!out.empty()) {
    Table t;
    const size_t c_time = t.add_column("time_us", Table::Type::kF64, "us");
    const size_t c_rdma = t.add_column("rdma_gb_per_s", Table::Type::kF64, "GB/s");
    const size_t c_nvl = t.add_column("nvl_gb_per_s", Table::Type::kF64, "GB/s");
    const size_t c_bytes = t.add_column("link_bytes", Table::Type::kU64, "bytes");
    const size_t c_energy = t.add_column("link_energy_uj", Table::Type::kF64, "uJ");
    t.columns[c_time].f64.push_back(time_s * 1e6);
    t.columns[c_rdma].f64.push_back(rdma);
    t.columns[c_nvl].f64.push_back(nvl);
    t.columns[c_bytes].u64.push_back(r.link_bytes);
    t.columns[c_energy].f64.push_back(r.energy_j * 1e6);
    write_collective(out, loaded, args, t);
  }
  return 0;
}

int run_collective(const std::vector<std::string>& args) {
  std::vector<std::string> files, sets;
  std::string out, op_name = "all_reduce", algo_name;
  uint64_t min_bytes = 8, max_bytes = 1ull << 30;
  uint32_t ranks = 0, factor = 2;
  MoeOptions moe;
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
    } else if (a == "--tokens") {
      moe.tokens = count(value(), 1, 1u << 20);
    } else if (a == "--experts") {
      moe.experts = count(value(), 1, 65536);
    } else if (a == "--top-k") {
      moe.top_k = count(value(), 1, 64);
    } else if (a == "--top-k-groups") {
      moe.top_k_groups = count(value(), 0, 65536);
    } else if (a == "--token-bytes") {
      moe.token_bytes = parse_size(a, value());
    } else if (a == "--seed") {
      moe.seed = count(value(), 0, 1u << 30);
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
  const bool moe_op = op_name == "moe_dispatch" || op_name == "moe_combine";
  const bool moe_flags = std::find_if(args.begin(), args.end(), [](const std::string& x) {
                           return x == "--tokens" || x == "--experts" || x == "--top-k" ||
                                  x == "--top-k-groups" || x == "--token-bytes" || x == "--seed";
                         }) != args.end();
  if (moe_flags && !moe_op) {
    throw std::invalid_argument(
        "--tokens, --experts, --top-k, --top-k-groups, --token-bytes and --seed are for --op "
        "moe_dispatch or moe_combine");
  }
  if (moe_op) {
    if (moe.token_bytes == 0) {
      throw std::invalid_argument("--op " + op_name + " needs --token-bytes (bytes per token)");
    }
    for (const char* f : {"--min-bytes", "--max-bytes", "--factor", "--algorithm"}) {
      if (std::find(args.begin(), args.end(), f) != args.end()) {
        throw std::invalid_argument(std::string(f) + " is not for --op " + op_name +
                                    " (one routed all-to-all, ONE_SHOT)");
      }
    }
  }
  CollectiveOp op = CollectiveOp::kAllToAll;
  if (moe_op) {
  } else if (op_name == "all_reduce") {
    op = CollectiveOp::kAllReduce;
  } else if (op_name == "all_gather") {
    op = CollectiveOp::kAllGather;
  } else if (op_name == "reduce_scatter") {
    op = CollectiveOp::kReduceScatter;
  } else if (op_name == "all_to_all") {
    op = CollectiveOp::kAllToAll;
  } else {
    throw std::invalid_argument(
        "--op must be all_reduce, all_gather, reduce_scatter, all_to_all, moe_dispatch or "
        "moe_combine");
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
  if (moe_op) {
    // One routed all-to-all, direct (in two tiers across scale-out domains).
    algo = config::ONE_SHOT;
    algo_name = "ONE_SHOT";
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

  if (moe_op) {
    // One direct all-to-all of any size: every size must be served under ONE_SHOT.
    const std::string gap = coll.coverage_gap(CollectiveOp::kAllToAll, config::ONE_SHOT);
    if (!gap.empty()) {
      throw ConfigError({ConfigIssue{
          loaded.locate("software.collective_protocols"), "software.collective_protocols",
          "no protocol serves " + op_name + " messages " + gap + " on " + std::to_string(ranks) +
              " ranks under ONE_SHOT (min_message_bytes, max_message_bytes, min_ranks, "
              "max_ranks)"}});
    }
    return run_moe(args, op_name, loaded, pod, coll, ranks, moe, out);
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
  if (!out.empty()) write_collective(out, loaded, args, t);
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
    "                     --algorithm, software.collective_algorithm or AUTO\n"
    "  collective FILES... --op moe_dispatch|moe_combine --token-bytes B [--tokens N]\n"
    "           [--experts E] [--top-k K] [--top-k-groups G] [--seed S] [--ranks N]\n"
    "                     one MoE all-to-all of randomly routed tokens as DeepEP's tests\n"
    "                     drive it (across scale-out domains in two tiers), with DeepEP's\n"
    "                     RDMA and NVLink bandwidths\n",
    run_collective});

}  // namespace

}  // namespace tiersim
