// The compute engine's parameters (validated and resolved once), and its plain-C++ timing
// models: the scale-up collective model and the software stack's kernel launches.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "accelerators/compute_engine.h"
#include "fabric/serial_link.h"
#include "fabric/topology.h"
#include "models/config/energy_checks.h"
#include "models/config/loader.h"
#include "models/config/pool_share.h"
#include "models/core/registry.h"

namespace tiersim {

void ComputeParams::validate(const config::Config& root, const config::ComputeEngine& c,
                             Validator& v) {
  if (c.peak_size() == 0) v.error("peak", "no peak FLOP/s given for any dtype");
  std::set<int> seen;
  for (int i = 0; i < c.peak_size(); ++i) {
    const auto& p = c.peak(i);
    Validator pv = v.at("peak[" + std::to_string(i) + "]");
    if (p.dtype() == config::DTYPE_UNSPECIFIED) pv.error("dtype", "required field is not set");
    if (!seen.insert(p.dtype()).second) pv.error("dtype", "dtype listed twice");
    pv.positive("flops_per_s", p.has_flops_per_s(), p.flops_per_s());
  }
  const config::Dtype act = root.workload().has_gemm() ? root.workload().gemm().dtype()
                                                       : root.workload().model().activation_dtype();
  if (act != config::DTYPE_UNSPECIFIED && !seen.count(act)) {
    v.error("peak",
            "no peak FLOP/s for the workload's activation dtype " + config::Dtype_Name(act));
  }
  // The linear layers' dtype, and a speculative draft model's two (an INT4 gemm_dtype is refused
  // by the model's own check).
  auto need = [&](config::Dtype d, const std::string& what) {
    if (d != config::DTYPE_UNSPECIFIED && d != config::INT4 && !seen.count(d)) {
      v.error("peak", "no peak FLOP/s for the workload's " + what + " " + config::Dtype_Name(d));
    }
  };
  if (!root.workload().has_gemm()) need(root.workload().model().gemm_dtype(), "gemm dtype");
  if (root.workload().decode().has_speculative()) {
    const auto& draft = root.workload().decode().speculative().draft();
    need(draft.activation_dtype(), "draft model's activation dtype");
    need(draft.gemm_dtype(), "draft model's gemm dtype");
  }
  v.fraction("flops_efficiency_fraction", c.has_flops_efficiency_fraction(),
             c.flops_efficiency_fraction());
  v.non_negative("gemm_half_efficiency_rows", c.has_gemm_half_efficiency_rows(),
                 c.gemm_half_efficiency_rows());
  if (c.has_vector_flops_per_s()) {
    v.positive("vector_flops_per_s", true, c.vector_flops_per_s());
  } else if (!seen.count(config::FP32)) {
    v.error("vector_flops_per_s", "not set, and no FP32 peak to take it from");
  }
  v.require("op_overhead_ps", c.has_op_overhead_ps());
  energy_field(v, "energy_pj_per_flop", c.has_energy_pj_per_flop(), c.energy_pj_per_flop());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
  energy_field(v, "active_power_w", c.has_active_power_w(), c.active_power_w());
  if (v.positive("tile_bytes", c.has_tile_bytes(), static_cast<double>(c.tile_bytes())) &&
      c.tile_bytes() > 0xffffffffULL) {
    v.error("tile_bytes", "must be below 4 GiB");
  }
  v.at_least("staging_buffers", c.has_staging_buffers(), c.staging_buffers(), 1);

  // The software stack and, with tensor parallelism, the collective model drive this engine.
  Validator sv = v.root("software");
  SoftwareModel::validate(root.software(), sv);
  if (root.software().overlap_host_step() && root.workload().decode().has_speculative()) {
    // The next step's inputs are the tokens this step accepts: the host cannot schedule it
    // before the verification ends (async schedulers turn themselves off with drafts).
    sv.error("overlap_host_step",
             "cannot overlap the host's step work with speculative decoding (the next step "
             "depends on which drafted tokens this step accepts)");
  }
  const auto& par = root.workload().parallelism();
  if (par.expert_parallel() > 1) {
    Validator pv = v.root("workload.parallelism");
    if (!root.system().has_pod()) {
      pv.error("expert_parallel",
               "needs system.pod: the dispatch and combine all-to-alls run on its links");
    }
    if (!root.workload().has_decode()) {
      pv.error("expert_parallel", "is modelled for the decode scenario only");
    }
    if (root.tenancy().tenants_size() > 0) {
      pv.error("expert_parallel", "not with tenancy (one workload spans the ranks)");
    }
  }
  if (par.pipeline_parallel() > 1 && !root.system().has_pod()) {
    v.root("workload.parallelism")
        .error("pipeline_parallel", "needs system.pod: the stages' sends run on its links");
  }
  if (par.tensor_parallel() > 1 || par.expert_parallel() > 1 || par.pipeline_parallel() > 1) {
    if (!root.system().has_scale_up()) {
      v.root("system").error("scale_up",
                             "required with tensor, expert or pipeline parallelism (the "
                             "collective model's link bandwidth and latencies)");
    } else {
      CollectiveModel::validate(root, v);
    }
  } else if (root.system().has_pod() && par.data_parallel() > 1) {
    // Replicas of one rank each: the pod holds them; only disaggregated serving's KV transfers
    // run on its links (they need the scale-up rank bandwidth: validate_ranks).
    Validator pv = v.root("system.pod");
    if (Pod::validate(root.system().pod(), pv) &&
        par.data_parallel() > root.system().pod().nodes()) {
      pv.error("nodes", "the replicas (" + std::to_string(par.data_parallel()) +
                            ") need at least as many nodes (" +
                            std::to_string(root.system().pod().nodes()) + ")");
    }
  } else if (root.system().has_pod() && root.has_workload()) {
    // (Without a workload, as for `tiersim collective`, the pod is checked where it is used.)
    v.root("system").error("pod",
                           "a pod's fabric carries tensor-, expert- or pipeline-parallel "
                           "traffic: set workload.parallelism.tensor_parallel, expert_parallel "
                           "or pipeline_parallel > 1, or remove the pod");
  }

  // References: kinds and links.
  auto find = [&](const std::string& name) -> const config::Component* {
    for (const auto& comp : root.system().components()) {
      if (comp.name() == name) return &comp;
    }
    return nullptr;
  };
  Topology topology;
  for (const auto& l : root.system().links())
    topology.add_link(l.name(), l.from(), l.to());
  auto has_link = [&](const std::string& from, const std::string& to) {
    return topology.reachable(from, to);
  };
  struct Ref {
    const char* field;
    const std::string& value;
    bool present;
    const char* kind;
  };
  const Ref refs[] = {
      {"sram", c.sram(), c.has_sram(), "sram"},
      {"dma", c.dma(), c.has_dma(), "dma"},
      {"weights_memory", c.weights_memory(), c.has_weights_memory(), "hbm"},
      {"activation_memory", c.activation_memory(), c.has_activation_memory(), "hbm"}};
  bool refs_ok = true;
  for (const auto& r : refs) {
    if (std::string(r.field) == "activation_memory" && !r.present) continue;  // optional
    if (!v.non_empty(r.field, r.present, r.value)) {
      refs_ok = false;
      continue;
    }
    const config::Component* target = find(r.value);
    if (target == nullptr) {
      v.error(r.field, "no component named \"" + r.value + "\"");
      refs_ok = false;
    } else if (component_kind_name(*target) != r.kind &&
               !(std::string(r.kind) == "hbm" &&
                 (component_kind_name(*target) == "gddr" || component_kind_name(*target) == "ddr" ||
                  component_kind_name(*target) == "cxl" ||
                  component_kind_name(*target) == "nvme"))) {
      v.error(r.field, "\"" + r.value + "\" is a " + component_kind_name(*target) +
                           ", expected a " + r.kind +
                           (std::string(r.kind) == "hbm" ? ", gddr, ddr, cxl or nvme" : ""));
      refs_ok = false;
    }
  }
  if (!refs_ok) return;
  if (const config::Component* sram = find(c.sram());
      sram && c.has_tile_bytes() && c.has_staging_buffers() &&
      c.tile_bytes() * c.staging_buffers() > sram->sram().capacity_bytes()) {
    v.error("staging_buffers",
            "staging_buffers x tile_bytes exceeds the capacity of \"" + c.sram() + "\"");
  }
  // The compute engine's own name is the last segment of the validator prefix's parent; links
  // are checked by name in the builder too, but a missing link is a config error, so say so now.
  const std::string self = [&] {
    for (const auto& comp : root.system().components()) {
      if (comp.has_compute() && &comp.compute() == &c) return comp.name();
    }
    return std::string();
  }();
  const std::pair<std::string, std::string> needed[] = {{self, c.sram()},
                                                        {c.dma(), c.weights_memory()},
                                                        {c.dma(), c.sram()},
                                                        {c.dma(), c.activation_memory()}};
  for (const auto& [from, to] : needed) {
    if (to.empty()) continue;
    if (!has_link(from, to)) {
      v.error("", "needs a path of links from \"" + from + "\" to \"" + to + "\" in system.links");
    }
  }
}

ComputeParams ComputeParams::from_config(const config::ComputeEngine& c) {
  ComputeParams p;
  for (const auto& peak : c.peak())
    p.peak_flops_per_s[peak.dtype()] = peak.flops_per_s();
  p.vector_flops_per_s =
      c.has_vector_flops_per_s() ? c.vector_flops_per_s() : p.peak_flops_per_s[config::FP32];
  p.flops_efficiency_fraction = c.flops_efficiency_fraction();
  p.gemm_half_efficiency_rows = c.gemm_half_efficiency_rows();
  p.op_overhead_ps = c.op_overhead_ps();
  p.active_power_w = c.active_power_w();
  p.tile_bytes = c.tile_bytes();
  p.staging_buffers = c.staging_buffers();
  p.sram = c.sram();
  p.dma = c.dma();
  p.weights_memory = c.weights_memory();
  p.activation_memory = c.has_activation_memory() ? c.activation_memory() : c.weights_memory();
  return p;
}

namespace {
TimePs bytes_time_ps(double bytes, double bytes_per_s) {
  return static_cast<TimePs>(std::llround(bytes / bytes_per_s * 1e12));
}
}  // namespace

std::vector<CollectiveProtocol> CollectiveModel::effective_protocols() const {
  if (!protocols.empty()) return protocols;
  CollectiveProtocol own;
  own.launch_latency_ps = launch_latency_ps;
  own.step_latency_ps = step_latency_ps;
  return {own};
}

bool CollectiveModel::analytic_ps(const CollectiveProtocol& pr, bool all_gather, uint64_t bytes,
                                  TimePs* out) const {
  const uint64_t p = ranks;
  if (!pr.serves(all_gather ? CollectiveOp::kAllGather : CollectiveOp::kAllReduce,
                 std::max<uint64_t>(1, bytes), ranks)) {
    return false;
  }
  const TimePs step = pr.step_latency_ps;
  TimePs ring, one_shot, two_shot;
  if (all_gather) {
    const double wire = double(pr.wire_bytes(bytes));
    ring = (p - 1) * step + bytes_time_ps(double(p - 1) * wire, rank_bandwidth_bytes_per_s);
    one_shot = step + bytes_time_ps(double(p - 1) * wire, rank_bandwidth_bytes_per_s);
    two_shot = one_shot;
  } else {
    // Ring: reduce-scatter then all-gather, 2(p-1) steps of n/p bytes each.
    ring = 2 * (p - 1) * step +
           bytes_time_ps(2.0 * double(p - 1) * double(pr.wire_bytes((bytes + p - 1) / p)),
                         rank_bandwidth_bytes_per_s);
    // One shot: every rank pushes its whole buffer to the p-1 others, then reduces locally.
    one_shot = step + bytes_time_ps(double(p - 1) * double(pr.wire_bytes(bytes)),
                                    rank_bandwidth_bytes_per_s);
    // Two shot: each peer's n/p shard, then the reduced shard to every peer: two steps.
    two_shot =
        2 * step + bytes_time_ps(2.0 * double(p - 1) * double(pr.wire_bytes((bytes + p - 1) / p)),
                                 rank_bandwidth_bytes_per_s);
  }
  // The analytical model has RING, ONE_SHOT and TWO_SHOT (AUTO: the fastest of those the
  // protocol runs, ties in that order).
  bool found = false;
  TimePs t = 0;
  for (const auto& [a, time] :
       {std::pair{config::RING, ring}, std::pair{config::ONE_SHOT, one_shot},
        std::pair{config::TWO_SHOT, two_shot}}) {
    if (!pr.runs(a) || (algorithm != config::AUTO && algorithm != a)) continue;
    if (!found || time < t) t = time;
    found = true;
  }
  if (!found) return false;
  *out = pr.launch_latency_ps + t;
  return true;
}

TimePs CollectiveModel::analytic_best_ps(bool all_gather, uint64_t bytes) const {
  TimePs best = 0;
  bool found = false;
  auto consider = [&](const CollectiveProtocol& pr) {
    TimePs t;
    if (!analytic_ps(pr, all_gather, bytes, &t)) return;
    if (!found || t < best) best = t;
    found = true;
  };
  if (protocols.empty()) {
    CollectiveProtocol own;  // the fabric's latencies (no allocation: empty name and list)
    own.launch_latency_ps = launch_latency_ps;
    own.step_latency_ps = step_latency_ps;
    consider(own);
  }
  for (const CollectiveProtocol& pr : protocols)
    consider(pr);
  if (!found) {
    throw std::invalid_argument("CollectiveModel: no protocol runs the algorithm in force");
  }
  return best;
}

TimePs CollectiveModel::all_reduce_ps(uint64_t bytes) const {
  if (ranks <= 1) return 0;
  if (pod) return pod_result(false, bytes).total_ps();
  return analytic_best_ps(false, bytes);
}

TimePs CollectiveModel::all_gather_ps(uint64_t bytes) const {
  if (ranks <= 1) return 0;
  if (pod) return pod_result(true, bytes).total_ps();
  return analytic_best_ps(true, bytes);
}

std::string CollectiveModel::missing_protocols(const config::Software& s,
                                               config::CollectiveAlgorithm a, bool reducing_pod,
                                               bool all_to_all_only) {
  if (s.collective_protocols_size() == 0) return "";
  auto runs = [&](config::CollectiveAlgorithm x) {
    for (const auto& p : s.collective_protocols()) {
      if (p.algorithms_size() == 0 && x != config::TWO_SHOT) return true;
      for (const int y : p.algorithms())
        if (y == x) return true;
    }
    return false;
  };
  switch (a) {
    case config::AUTO:
      // RING and ONE_SHOT run everywhere; IN_SWITCH on a reducing switch, not all-to-alls.
      if (runs(config::RING) || runs(config::ONE_SHOT)) return "";
      if (!all_to_all_only && runs(config::TWO_SHOT)) return "";
      if (reducing_pod && !all_to_all_only && runs(config::IN_SWITCH)) return "";
      return reducing_pod && !all_to_all_only ? "RING, ONE_SHOT, IN_SWITCH or TWO_SHOT"
             : all_to_all_only                ? "RING or ONE_SHOT"
                                              : "RING, ONE_SHOT or TWO_SHOT";
    case config::TREE:
      // A decode's all-gathers run as RING under TREE.
      if (runs(config::TREE) && runs(config::RING)) return "";
      return "TREE and RING (its all-gathers)";
    default:
      return runs(a) ? "" : config::CollectiveAlgorithm_Name(a);
  }
}

namespace {

// Whether IN_SWITCH can run a collective of `ranks` on `pod`: its scale-up switch reduces and
// the ranks (node[0 .. ranks-1]) share one domain (Pod::in_switch_reduction).
bool pod_reduces(const config::Pod& pod, uint32_t ranks) {
  return pod.topology() == config::POD_SINGLE_SWITCH && pod.switch_().in_network_reduction() &&
         (!pod.has_scale_out() || ranks <= pod.scale_out().domain_nodes());
}

}  // namespace

void CollectiveModel::validate(const config::Config& root, Validator& v) {
  const config::ScaleUpFabric& f = root.system().scale_up();
  Validator fv = v.root("system.scale_up");
  fv.positive("rank_bandwidth_bytes_per_s", f.has_rank_bandwidth_bytes_per_s(),
              f.rank_bandwidth_bytes_per_s());
  // The software stack's protocols replace the fabric's latencies.
  const auto& protocols = root.software().collective_protocols();
  if (protocols.empty()) {
    fv.require("step_latency_ps", f.has_step_latency_ps());
    fv.require("launch_latency_ps", f.has_launch_latency_ps());
  }
  if (f.algorithm() == config::COLLECTIVE_ALGORITHM_UNSPECIFIED) {
    fv.error("algorithm",
             "required field is not set (RING, ONE_SHOT, TREE, IN_SWITCH, TWO_SHOT or AUTO)");
  }
  // The algorithm in force: the software stack's, else the fabric's.
  const bool by_software = root.software().has_collective_algorithm();
  const config::CollectiveAlgorithm a =
      by_software ? root.software().collective_algorithm() : f.algorithm();
  Validator av = by_software ? v.root("software") : fv;
  const char* field = by_software ? "collective_algorithm" : "algorithm";
  if (a == config::TWO_SHOT && protocols.empty()) {
    av.error(field,
             "TWO_SHOT runs only under a software.collective_protocols entry that lists it "
             "(e.g. configs/software/collectives/vllm_custom_allreduce.textproto)");
  }
  if (!protocols.empty()) {
    const auto& pr = root.workload().parallelism();
    const bool reduces =
        root.system().has_pod() &&
        pod_reduces(root.system().pod(), std::max(pr.tensor_parallel(), pr.expert_parallel()));
    const bool all_to_all_only =
        (pr.expert_parallel() > 1 || pr.pipeline_parallel() > 1) && pr.tensor_parallel() <= 1;
    const std::string missing = missing_protocols(root.software(), a, reduces, all_to_all_only);
    if (!missing.empty()) {
      v.root("software")
          .error("collective_protocols",
                 "no protocol runs " + missing + ", which the algorithm in force (" +
                     (by_software ? "software.collective_algorithm" : "system.scale_up.algorithm") +
                     ": " + config::CollectiveAlgorithm_Name(a) + ") needs");
    } else {
      // Every message size of the run's collectives must be served by some protocol.
      const auto& par = root.workload().parallelism();
      const uint32_t tp = par.tensor_parallel(), ep = par.expert_parallel();
      // Each operation with the ranks it spans: a stage's collectives its tensor-parallel
      // ranks, a pipeline stage's send (one message per rank, ONE_SHOT: an uneven all-to-all)
      // the pipeline's nodes.
      const uint32_t ranks = std::max(tp, ep);
      struct Use {
        CollectiveOp op;
        config::CollectiveAlgorithm algorithm;
        uint32_t ranks;
      };
      std::vector<Use> ops;
      if (tp > 1) {
        ops.push_back({CollectiveOp::kAllReduce, a, ranks});
        ops.push_back({CollectiveOp::kAllGather, a == config::TREE ? config::RING : a, ranks});
      }
      // Across scale-out domains the expert-parallel all-to-alls run in two tiers, directly.
      const bool two_tier = ep > 1 && root.system().pod().has_scale_out() &&
                            ep > root.system().pod().scale_out().domain_nodes();
      if (ep > 1) ops.push_back({CollectiveOp::kAllToAll, two_tier ? config::ONE_SHOT : a, ranks});
      if (par.pipeline_parallel() > 1) {
        ops.push_back({CollectiveOp::kAllToAll, config::ONE_SHOT,
                       std::max(1u, tp) * par.pipeline_parallel()});
      }
      const std::vector<CollectiveProtocol> list = protocols_from_config(root.software());
      for (const auto& [op, oa, n] : ops) {
        // An algorithm that cannot run here is reported by the checks below.
        if (oa != config::AUTO && !algorithm_available(op, oa, root.system().has_pod(), reduces)) {
          continue;
        }
        const std::string gap = coverage_gap(list, n, op, oa, root.system().has_pod(), reduces);
        if (gap.empty()) continue;
        v.root("software")
            .error("collective_protocols",
                   std::string("no protocol serves ") + collective_op_name(op) + " messages " +
                       gap + " on " + std::to_string(n) + " ranks under " +
                       config::CollectiveAlgorithm_Name(oa) +
                       " (min_message_bytes, max_message_bytes, min_ranks, max_ranks)");
        break;
      }
    }
  }
  if (!root.system().has_pod()) {
    if (a == config::TREE || a == config::IN_SWITCH) {
      av.error(field, "TREE and IN_SWITCH are simulated as traffic on a pod: set system.pod");
    }
    return;
  }
  Validator pv = v.root("system.pod");
  if (!Pod::validate(root.system().pod(), pv)) return;
  validate_memory_nodes(root, pv);
  const uint32_t tp = root.workload().parallelism().tensor_parallel();
  const uint32_t ep = root.workload().parallelism().expert_parallel();
  const uint32_t pp = std::max(1u, root.workload().parallelism().pipeline_parallel());
  const uint32_t dp = std::max(1u, root.workload().parallelism().data_parallel());
  const uint32_t ranks = std::max({1u, tp, ep}) * pp * dp;
  if (ranks > root.system().pod().nodes()) {
    pv.error("nodes", std::string(dp > 1    ? "the replicas (replicas x tensor-parallel ranks)"
                                  : pp > 1  ? "the pipeline (stages x tensor-parallel ranks)"
                                  : ep > tp ? "the expert-parallel"
                                            : "the tensor-parallel") +
                          " group (" + std::to_string(ranks) +
                          " ranks) needs at least as many nodes (" +
                          std::to_string(root.system().pod().nodes()) + ")");
  }
  const config::Pod& pod_config = root.system().pod();
  if (pod_config.has_scale_out() && tp > 1 && (dp > 1 || pp > 1)) {
    // Every replica's or stage's collectives are timed as the first group's, on node[0 ..
    // tp-1]: each group must sit in the domains as that one does.
    const uint32_t dn = pod_config.scale_out().domain_nodes();
    if (dn % tp != 0 && tp % dn != 0) {
      pv.at("scale_out")
          .error("domain_nodes",
                 "the tensor-parallel groups of " + std::to_string(tp) + " ranks of each " +
                     (dp > 1 ? "replica" : "stage") +
                     " must each lie within one domain or span whole domains: domain_nodes (" +
                     std::to_string(dn) + ") must be a multiple or a divisor of tensor_parallel");
    }
  }
  const bool reduces = pod_reduces(pod_config, std::max(tp, ep));
  if (pp > 1 && tp <= 1) return;  // the stages' sends run ONE_SHOT
  if (ep > 1 && tp <= 1) {
    // Only all-to-alls run: the algorithm chooses how.
    if (a == config::TREE || a == config::IN_SWITCH || a == config::TWO_SHOT) {
      av.error(field,
               "the expert-parallel all-to-alls run ONE_SHOT (direct), RING (pairwise) or AUTO");
    }
    const config::Pod& pod = root.system().pod();
    if (pod.has_scale_out() && ep > pod.scale_out().domain_nodes()) {
      // Across domains the dispatch and combine run in two tiers (direct in each).
      const uint32_t dn = pod.scale_out().domain_nodes();
      if (ep % dn != 0) {
        v.root("workload.parallelism")
            .error("expert_parallel",
                   "the expert-parallel ranks span scale-out domains of " + std::to_string(dn) +
                       " nodes (system.pod.scale_out.domain_nodes) and must fill them");
      }
      if (a == config::RING) {
        av.error(field,
                 "across scale-out domains the expert-parallel all-to-alls run in two tiers, "
                 "directly: ONE_SHOT or AUTO, not RING");
      }
    }
    return;
  }
  if (a == config::IN_SWITCH && !reduces) {
    av.error(field,
             "IN_SWITCH needs a POD_SINGLE_SWITCH pod whose switch has in_network_reduction, "
             "and every rank of the collective in one scale-up domain (scale_out.domain_nodes)");
  }
}

CollectiveModel CollectiveModel::from_config(const config::ScaleUpFabric& f, uint32_t ranks,
                                             config::CollectiveAlgorithm software,
                                             const config::Pod* pod,
                                             std::vector<CollectiveProtocol> protocols) {
  CollectiveModel m;
  m.ranks = ranks;
  m.rank_bandwidth_bytes_per_s = f.rank_bandwidth_bytes_per_s();
  m.step_latency_ps = f.step_latency_ps();
  m.launch_latency_ps = f.launch_latency_ps();
  m.protocols = std::move(protocols);
  m.algorithm = software != config::COLLECTIVE_ALGORITHM_UNSPECIFIED ? software : f.algorithm();
  if (pod != nullptr && ranks > 1) {
    m.pod = std::make_shared<PodCollectiveCache>(
        Pod::from_config(*pod, f.rank_bandwidth_bytes_per_s()), ranks, m.effective_protocols());
  }
  return m;
}

std::vector<CollectiveProtocol> CollectiveModel::protocols_from_config(const config::Software& s) {
  std::vector<CollectiveProtocol> out;
  for (const auto& c : s.collective_protocols()) {
    CollectiveProtocol p;
    p.name = c.name();
    p.launch_latency_ps = c.launch_latency_ps();
    p.step_latency_ps = c.step_latency_ps();
    p.wire_efficiency = c.has_wire_efficiency() ? c.wire_efficiency() : 1.0;
    if (c.has_min_message_bytes()) p.min_message_bytes = c.min_message_bytes();
    if (c.has_max_message_bytes()) p.max_message_bytes = c.max_message_bytes();
    if (c.has_min_ranks()) p.min_ranks = c.min_ranks();
    if (c.has_max_ranks()) p.max_ranks = c.max_ranks();
    for (const int o : c.operations())
      p.operations.push_back(static_cast<CollectiveOp>(o - 1));
    for (const int a : c.algorithms())
      p.algorithms.push_back(static_cast<config::CollectiveAlgorithm>(a));
    out.push_back(std::move(p));
  }
  return out;
}

void CollectiveModel::validate_protocols(const config::Software& s, Validator& v) {
  std::set<std::string> names;
  const auto* field = s.GetDescriptor()->FindFieldByName("collective_protocols");
  for (int i = 0; i < s.collective_protocols_size(); ++i) {
    const config::CollectiveProtocol& c = s.collective_protocols(i);
    Validator pv = v.at(element_path(s, field, i));
    if (c.name().empty()) {
      pv.error("name", "required field is not set");
    } else if (!names.insert(c.name()).second) {
      pv.error("name", "\"" + c.name() + "\" is listed twice");
    }
    pv.require("launch_latency_ps", c.has_launch_latency_ps());
    pv.require("step_latency_ps", c.has_step_latency_ps());
    if (c.has_wire_efficiency() && !(c.wire_efficiency() >= 0.01 && c.wire_efficiency() <= 1)) {
      pv.error("wire_efficiency", "must lie in [0.01, 1]");
    }
    for (const int a : c.algorithms()) {
      if (a == config::AUTO || a == config::COLLECTIVE_ALGORITHM_UNSPECIFIED ||
          !config::CollectiveAlgorithm_IsValid(a)) {
        pv.error("algorithms", "lists RING, ONE_SHOT, TREE, IN_SWITCH or TWO_SHOT (not AUTO)");
        break;
      }
    }
    if (c.has_min_message_bytes() && c.has_max_message_bytes() &&
        c.min_message_bytes() > c.max_message_bytes()) {
      pv.error("max_message_bytes", "lies below min_message_bytes");
    }
    for (const int o : c.operations()) {
      if (o == config::COLLECTIVE_OPERATION_UNSPECIFIED ||
          !config::CollectiveOperation_IsValid(o)) {
        pv.error("operations", "lists ALL_REDUCE, ALL_GATHER, REDUCE_SCATTER or ALL_TO_ALL");
        break;
      }
    }
    if (c.has_min_ranks() && c.min_ranks() < 2) pv.error("min_ranks", "must be at least 2");
    if (c.has_max_ranks() && c.max_ranks() < 2) pv.error("max_ranks", "must be at least 2");
    if (c.has_min_ranks() && c.has_max_ranks() && c.min_ranks() > c.max_ranks()) {
      pv.error("max_ranks", "lies below min_ranks");
    }
  }
}

uint32_t SoftwareModel::kernels(OpKind kind) const {
  switch (kind) {
    case OpKind::kAttnNorm:
    case OpKind::kMlpNorm:
    case OpKind::kRope:
    case OpKind::kAttnResidual:
    case OpKind::kMlpResidual:
    case OpKind::kActivation:
    case OpKind::kFinalNorm:
    case OpKind::kEmbeddingNorm:
    case OpKind::kExpertActivation:
    case OpKind::kSharedActivation:
    case OpKind::kMoeCombine:
      return fuse_elementwise ? 0 : 1;
    case OpKind::kIdle:
    case OpKind::kHold:
      return 0;
    case OpKind::kQkvProj:
      return qkv_kernels;
    case OpKind::kAttention:
      return attention_kernels;
    default:
      return 1;
  }
}

void SoftwareModel::validate(const config::Software& s, Validator& v) {
  if (s.has_qkv_kernels() && s.qkv_kernels() != 1 && s.qkv_kernels() != 3) {
    v.error("qkv_kernels", "must be 1 (fused QKV) or 3 (separate Q, K, V)");
  }
  if (s.has_attention_kernels() && s.attention_kernels() != 1 && s.attention_kernels() != 3) {
    v.error("attention_kernels", "must be 1 (fused) or 3 (QK^T, softmax, AV)");
  }
  if (s.has_collective_algorithm() &&
      (s.collective_algorithm() == config::COLLECTIVE_ALGORITHM_UNSPECIFIED ||
       !config::CollectiveAlgorithm_IsValid(s.collective_algorithm()))) {
    v.error("collective_algorithm", "must be RING, ONE_SHOT, TREE, IN_SWITCH, TWO_SHOT or AUTO");
  }
  CollectiveModel::validate_protocols(s, v);
  if (!config::PagedKvReads_IsValid(s.paged_kv_reads())) {
    v.error("paged_kv_reads", "must be PAGED_KV_PER_RUN or PAGED_KV_GATHERED");
  }
  if (s.has_kernel_jitter()) {
    const config::Jitter& j = s.kernel_jitter();
    Validator jv = v.at("kernel_jitter");
    if (j.kind_case() == config::Jitter::KIND_NOT_SET) {
      v.error("kernel_jitter", "set one of fixed_ps, uniform or normal");
    }
    validate_jitter(j, jv);
    // At most a second per kernel: the draws add up over a run's kernels in picoseconds.
    constexpr double kMaxPs = 1e12;
    if (j.has_fixed_ps() && double(j.fixed_ps()) > kMaxPs) jv.error("fixed_ps", "at most 1e12 ps");
    if (j.has_uniform() && double(j.uniform().max_ps()) > kMaxPs) {
      jv.at("uniform").error("max_ps", "at most 1e12 ps");
    }
    if (j.has_normal() &&
        !(j.normal().mean_ps() + 6 * j.normal().sd_ps() <= kMaxPs)) {  // also NaN, infinity
      jv.at("normal").error("mean_ps", "mean_ps + 6 sd_ps must be at most 1e12 ps");
    }
  }
  if (s.has_kv_dequant_flops_per_element()) {
    const double f = s.kv_dequant_flops_per_element();
    if (!(f >= 0 && f <= 1e6)) {
      v.error("kv_dequant_flops_per_element", "must lie in [0, 1e6]");
    }
  }
}

SoftwareModel SoftwareModel::from_config(const config::Software& s) {
  SoftwareModel m;
  m.host_launch_ps = s.host_launch_ps();
  m.synchronize_each_kernel = s.synchronize_each_kernel();
  m.host_step_ps = s.host_step_ps();
  m.host_step_per_sequence_ps = s.host_step_per_sequence_ps();
  m.overlap_host_step = s.overlap_host_step();
  m.fuse_elementwise = s.fuse_elementwise();
  m.qkv_kernels = s.has_qkv_kernels() ? s.qkv_kernels() : 1;
  m.attention_kernels = s.has_attention_kernels() ? s.attention_kernels() : 1;
  m.attention_latency_ps = s.attention_latency_ps();
  m.kv_dequant_flops_per_element = s.kv_dequant_flops_per_element();
  m.gather_paged_kv = s.paged_kv_reads() == config::PAGED_KV_GATHERED;
  m.kernel_jitter = s.kernel_jitter();
  return m;
}

}  // namespace tiersim
