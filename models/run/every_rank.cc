// Every rank simulated (workload.parallelism.simulate_ranks: SIMULATE_EVERY_RANK): one system
// per tensor- or expert-parallel rank, node[0 .. ranks-1], each built from its node config (the
// template with its node overrides) inside a parent module named node[r], so its components are
// named node[r].<name> and keep their config names as basenames (stats, random streams and links
// unchanged). They share the kernel and one RankGroup: every collective is a rendezvous
// (models/core/rendezvous.h). A pod step ends when the last rank ends it. Ranks with identical
// node configs form a class, simulated once (workload.parallelism.merge_identical_ranks): a
// class's ranks would run identically, as ranks meet only at collectives, which release every
// rank at once, and the simulation is deterministic. Expert-parallel ranks each run their own
// experts (ForwardPass::set_expert_rank), so none are merged; they route the same tokens alike.
// Pipeline stages each run their own layers over micro-batches (DecodeWorkload::
// set_pipeline_stage) and meet only through their sends (RankGroup::pipe), never merged.
// Data-parallel replicas (serving) each serve the requests a front end routes to them
// (ServingFrontEnd, routing at each arrival); a replica's tensor-parallel ranks are identical
// (validated) and simulated as one, each replica its own collective group; replicas are never
// merged.
#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <systemc>

#include "fabric/collectives.h"
#include "fabric/pod.h"
#include "models/config/node_overrides.h"
#include "models/core/component.h"
#include "models/core/context.h"
#include "models/core/registry.h"
#include "models/core/rendezvous.h"
#include "models/core/stats.h"
#include "models/core/workload.h"
#include "models/run/power_monitor.h"
#include "models/run/run_parts.h"
#include "models/run/simulation.h"
#include "models/run/step_prediction.h"
#include "workloads/serving_front_end.h"

namespace tiersim {

namespace {

using Clock = std::chrono::steady_clock;

// One rank's system, built in the constructor so every object made is the module's child.
class NodeModule : public sc_core::sc_module {
 public:
  // `expert_rank`: the node's expert-parallel rank, when it runs its own experts.
  // `stages`: pipeline stages (node = stage x tp + its tensor-parallel rank), or 1.
  // `front_end`: data-parallel serving's, with the node's replica's doorbell.
  NodeModule(const sc_core::sc_module_name& name, const LoadedConfig& loaded,
             const config::Config& cfg, uint32_t node, uint32_t party, RankGroup& group,
             bool expert_rank, uint32_t stages, ServingFrontEnd* front_end, Doorbell* doorbell)
      : sc_core::sc_module(name), ctx(cfg, cfg.run().seed()) {
    const uint32_t tp = std::max(1u, cfg.workload().parallelism().tensor_parallel());
    slot.node = node;
    slot.party = stages > 1 ? node % tp : front_end != nullptr ? 0 : party;
    slot.collective_group = stages > 1 || front_end != nullptr ? node / tp : 0;
    slot.group = &group;
    slot.doorbell = doorbell;
    ctx.set_rank(&slot);
    workload = find_workload_kind(workload_kind_name(cfg.workload()))->create(cfg);
    if (front_end != nullptr) {
      auto* serving = dynamic_cast<ServingWorkload*>(workload.get());
      if (serving == nullptr) throw std::logic_error("every rank: replicas run serving workloads");
      serving->set_front_end(front_end, node / tp);
    }
    if (expert_rank && !workload->set_expert_rank(node)) {
      throw std::logic_error("every rank: the workload has no expert-parallel ranks");
    }
    if (stages > 1 && !workload->set_pipeline_stage(node / tp, node % tp)) {
      throw std::logic_error("every rank: the workload has no pipeline stages");
    }
    ctx.set_workload(workload.get());
    workload->register_objects(ctx.objects());
    components = build_system(cfg, ctx);
    place_at_home(loaded, ctx);
    for (auto& c : components)
      c->prepare();
    power = std::make_unique<PowerMonitor>(ctx, components);
    if (front_end != nullptr && cfg.run().has_fast_forward()) {
      // The replica's passes predicted from its own simulated ones (every stat is registered).
      prediction = std::make_unique<ServingStepPrediction>(
          components, ctx.stats(), ServingStepPrediction::params(cfg.run().fast_forward()));
      if (!workload->set_step_predictor(prediction.get())) {
        throw std::logic_error("every rank: the replica's workload takes no step predictor");
      }
      ctx.on_step_end = [p = prediction.get()](const TokenRecord& rec) { p->on_step_end(rec); };
    }
  }

  RankSlot slot;
  Context ctx;
  std::unique_ptr<Workload> workload;
  std::vector<std::unique_ptr<Component>> components;
  std::unique_ptr<PowerMonitor> power;
  std::unique_ptr<ServingStepPrediction> prediction;  // run.fast_forward: the replica's
  std::optional<Extrapolation> predicted;             // after the run
};

// Data-parallel serving: routes each request at its arrival time and delivers it after the
// front end's latency (a closed loop's next request is routed at the completion that sends it,
// by the replica that completes). Woken only at arrivals and deliveries (and, disaggregated, at
// KV landings).
class FrontEndModule : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(FrontEndModule);
  FrontEndModule(const sc_core::sc_module_name& name, ServingFrontEnd& front_end)
      : sc_core::sc_module(name), front_end_(front_end) {
    front_end_.set_schedule([this](TimePs at) { wake_at(at); });
    SC_METHOD(route);
    sensitive << wake_;
  }

 private:
  // (An event keeps its earliest pending notification: the earliest time asked for wins.)
  void wake_at(TimePs at) {
    const TimePs now = now_ps();
    wake_.notify(at > now ? to_sc_time(at - now) : sc_core::SC_ZERO_TIME);
  }
  void route() {
    const TimePs now = now_ps();
    front_end_.route_due(now);
    front_end_.deliver_due(now);
    const TimePs next = std::min(front_end_.next_arrival_ps(), front_end_.next_delivery_ps(now));
    if (next != ServingFrontEnd::kNotSent && next > now) wake_at(next);
  }
  ServingFrontEnd& front_end_;
  sc_core::sc_event wake_;
};

// Data-parallel serving: the pod's totals of what each replica counts for itself (preemptions,
// swapped bytes, prefill tokens; the KV pool's peak, the highest replica's) in place of replica
// 0's, and each replica's own request figures (replica<d>_...).
void replica_summary(const std::vector<NodeResult>& replicas, std::vector<SummaryItem>& summary) {
  auto value = [](const std::vector<SummaryItem>& items, const std::string& name) {
    for (const auto& i : items)
      if (i.name == name) return i.value;
    return 0.0;
  };
  for (auto& item : summary) {
    const bool sum =
        item.name == "preemptions" || item.name == "swapped_bytes" || item.name == "prefill_tokens";
    if (!sum && item.name != "kv_pool_peak_fraction") continue;
    double v = 0;
    for (const auto& r : replicas) {
      const double x = value(r.summary, item.name);
      v = sum ? v + x : std::max(v, x);
    }
    item.value = v;
  }
  // Replica 0's own items become replica0_... below.
  summary.erase(
      std::remove_if(summary.begin(), summary.end(),
                     [](const SummaryItem& i) { return i.name.rfind("replica_", 0) == 0; }),
      summary.end());
  summary.push_back({"replicas", double(replicas.size()), "replicas"});
  for (size_t d = 0; d < replicas.size(); ++d) {
    const std::string p = "replica" + std::to_string(d) + "_";
    for (const char* name : {"requests_routed", "requests_completed", "ttft_ms_p50", "ttft_ms_p99",
                             "request_tpot_ms_mean", "output_tokens"}) {
      const std::string own = std::string("replica_") + name;
      for (const auto& i : replicas[d].summary)
        if (i.name == own) summary.push_back({p + name, i.value, i.unit});
    }
    summary.push_back({p + "preemptions", value(replicas[d].summary, "preemptions"), "count"});
    summary.push_back({p + "kv_pool_peak_fraction",
                       value(replicas[d].summary, "kv_pool_peak_fraction"), "fraction"});
  }
}

}  // namespace

RunOutcome run_every_rank(const LoadedConfig& loaded, const RunOptions& options) {
  const auto wall_start = Clock::now();
  const config::Config& cfg = loaded.config;
  if (!options.trace_path.empty()) {
    throw located(loaded, {ConfigIssue{{},
                                       "workload.parallelism.simulate_ranks",
                                       "a trace records one rank; trace with SIMULATE_ONE_RANK"}});
  }
  sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
  const uint32_t ranks = simulated_ranks(cfg);
  const auto& par = cfg.workload().parallelism();
  // Expert-parallel ranks run their own experts (routing is shared: every rank's router draws
  // the same from the same seed); nodes drawing random jitter, their own streams.
  const bool expert_ranks = par.expert_parallel() > 1;
  const bool merge = ranks_never_identical(cfg).empty() &&
                     (!par.has_merge_identical_ranks() || par.merge_identical_ranks());
  // Each rank's node config, and its class: the first rank with an identical config.
  // Data-parallel replicas: each replica's ranks form one class (they are identical, as
  // validated), never merged with another replica's.
  const uint32_t replicas = std::max(1u, par.data_parallel());
  const uint32_t tp = std::max(1u, par.tensor_parallel());
  std::deque<config::Config> configs;  // per class: the Contexts keep references
  std::vector<uint32_t> rank_class(ranks);
  std::vector<uint32_t> class_node;  // per class: its first rank
  for (uint32_t r = 0; r < ranks; ++r) {
    config::Config c = node_config(cfg, r);
    uint32_t k = 0;
    if (replicas > 1) {
      k = r / tp;
      if (k < configs.size() && !same_node_config(configs[k], c)) {
        throw std::logic_error("every rank: a replica's ranks differ");
      }
    } else if (merge) {
      for (; k < configs.size(); ++k) {
        if (same_node_config(configs[k], c)) break;
      }
    } else {
      k = static_cast<uint32_t>(configs.size());
    }
    if (k == configs.size()) {
      configs.push_back(std::move(c));
      class_node.push_back(r);
    }
    rank_class[r] = k;
  }
  const uint32_t classes = static_cast<uint32_t>(configs.size());
  std::vector<uint32_t> multiplicity(classes, 0);
  for (uint32_t r = 0; r < ranks; ++r)
    ++multiplicity[rank_class[r]];
  // Pipeline stages meet apart (each stage's tensor-parallel ranks); none are merged.
  const uint32_t stages = std::max(1u, par.pipeline_parallel());
  RankGroup group(classes, stages > 1 ? std::vector<uint32_t>{} : multiplicity,
                  stages > 1 ? stages : replicas);
  // Data-parallel serving: the front end and each replica's doorbell.
  std::unique_ptr<ServingFrontEnd> front_end;
  std::vector<std::unique_ptr<Doorbell>> doorbells;
  std::unique_ptr<FrontEndModule> front_end_module;
  if (replicas > 1) {
    front_end = make_serving_front_end(cfg);
    for (uint32_t d = 0; d < replicas; ++d) {
      doorbells.push_back(std::make_unique<Doorbell>());
      front_end->set_wake(d, [bell = doorbells.back().get()] { bell->ring(); });
    }
    front_end_module = std::make_unique<FrontEndModule>("front_end", *front_end);
  }
  // Disaggregated serving: a request's KV goes from each rank of its prefill replica to the same
  // rank of its decode replica, as flows on the pod's links (no collective library: no launch
  // or step latency), each transfer timed alone; the front end places them one at a time per
  // side.
  std::unique_ptr<PodCollectiveCache> kv_pod;
  if (front_end && front_end->disaggregated()) {
    const uint32_t n = replicas * tp;
    kv_pod = std::make_unique<PodCollectiveCache>(
        Pod::from_config(cfg.system().pod(), cfg.system().scale_up().rank_bandwidth_bytes_per_s()),
        n, std::vector<CollectiveProtocol>{CollectiveProtocol{}});
    front_end->set_transfer(
        [pod = kv_pod.get(), n, tp, traffic = std::vector<uint64_t>(size_t{n} * n, 0)](
            uint32_t from, uint32_t to, uint64_t bytes) mutable {
          std::fill(traffic.begin(), traffic.end(), 0);
          for (uint32_t i = 0; i < tp; ++i)
            traffic[size_t{from * tp + i} * n + to * tp + i] = bytes;
          const CollectiveResult r = pod->all_to_all(traffic.data(), config::ONE_SHOT);
          return ServingFrontEnd::Transfer{r.time_ps, r.energy_j, bytes * tp};
        });
  }
  std::vector<std::unique_ptr<NodeModule>> nodes;  // per class
  for (uint32_t k = 0; k < classes; ++k) {
    const uint32_t r = class_node[k];
    try {
      nodes.push_back(std::make_unique<NodeModule>(
          ("node[" + std::to_string(r) + "]").c_str(), loaded, configs[k], r, k, group,
          expert_ranks, stages, front_end.get(), replicas > 1 ? doorbells[r / tp].get() : nullptr));
    } catch (const ConfigError& e) {
      throw located(loaded, e.issues());
    }
  }
  for (auto& n : nodes)  // together: building the systems is not the run's time
    n->ctx.wall_limit().start(cfg.run().max_wall_time_s());

  run_kernel(cfg.run().max_sim_time_ps());
  const bool done = group.finished() == group.ranks();
  bool wall_hit = false;
  for (auto& n : nodes)
    wall_hit = wall_hit || n->ctx.wall_limit().hit();
  if (!done && !wall_hit && !sc_core::sc_pending_activity()) {
    // Nothing left to happen, yet some rank never finished: ranks waiting on each other.
    throw std::logic_error("every rank: " + std::to_string(group.finished()) + " of " +
                           std::to_string(group.ranks()) +
                           " simulated ranks (identical ranks simulated once) finished and the "
                           "others wait for a collective or a message that never comes");
  }
  check_time_bound(done, cfg.run().max_sim_time_ps(), wall_hit);
  const std::string stopped_by = done ? "complete" : wall_hit ? "max_wall_time" : "max_sim_time";
  const TimePs end_ps = now_ps();
  // Each class's /stats sample: the simulated passes' (before any predicted increments).
  for (auto& n : nodes)
    n->ctx.stats().sample(end_ps);
  // run.fast_forward: each replica's predicted passes marked in its steps, their energy and stat
  // increments booked.
  for (auto& n : nodes) {
    if (!n->prediction) continue;
    n->predicted = n->prediction->finish(n->ctx.records().tokens, end_ps);
    n->ctx.records().tokens = n->predicted->records;
  }

  // The pod's steps: each ends when its last rank ends it; it starts at the previous one's end.
  // (Data-parallel replicas step apart: the headline steps are replica 0's own, or with
  // disaggregated prefill the first decode replica's.)
  const uint32_t head = front_end && front_end->disaggregated() ? front_end->prefill_replicas() : 0;
  size_t steps = SIZE_MAX;
  for (auto& n : nodes)
    steps = std::min(steps, n->ctx.records().tokens.size());
  if (replicas > 1) steps = nodes[head]->ctx.records().tokens.size();
  std::vector<TokenRecord> pod(nodes[head]->ctx.records().tokens.begin(),
                               nodes[head]->ctx.records().tokens.begin() + steps);
  std::vector<double> class_step_ms(classes, 0.0);
  std::vector<size_t> class_steps(classes, steps);
  if (replicas > 1) {
    for (uint32_t k = 0; k < classes; ++k) {
      class_steps[k] = nodes[k]->ctx.records().tokens.size();
      for (const TokenRecord& t : nodes[k]->ctx.records().tokens)
        class_step_ms[k] += ps_to_ms(t.end_ps - t.start_ps);
    }
  }
  for (size_t s = 0; s < steps && replicas == 1; ++s) {
    for (uint32_t k = 0; k < classes; ++k) {
      const TokenRecord& t = nodes[k]->ctx.records().tokens[s];
      pod[s].end_ps = std::max(pod[s].end_ps, t.end_ps);
      class_step_ms[k] += ps_to_ms(t.end_ps - t.start_ps);
    }
    if (s > 0) pod[s].start_ps = pod[s - 1].end_ps;
  }
  // Each class's own results (its stats, steps and summary), for /nodes/<r>; the pod's steps
  // then replace the headline node's (node[0]'s, or the first decode replica's).
  const double wall_s = std::chrono::duration<double>(Clock::now() - wall_start).count();
  std::vector<NodeResult> class_results(classes);
  for (uint32_t k = 0; k < classes; ++k) {
    Context& c = nodes[k]->ctx;
    class_results[k].ctx = &c;
    class_results[k].tokens = c.records().tokens;
    class_results[k].summary = summarise_run(c, nodes[k]->components, end_ps, wall_s,
                                             nodes[k]->predicted ? &*nodes[k]->predicted : nullptr);
  }
  Context& ctx0 = nodes[head]->ctx;  // the result file's stats are the headline node's
  ctx0.records().tokens = pod;
  RunOutcome out;
  out.stopped_by = stopped_by;
  // The headline is the pod's steps; bytes, energy and the components' items are the headline
  // node's (one accelerator's, as with one rank simulated).
  out.summary = summarise_run(ctx0, nodes[head]->components, end_ps, wall_s,
                              nodes[head]->predicted ? &*nodes[head]->predicted : nullptr);
  if (nodes[head]->predicted) {
    // The prediction's items over every replica: steps summed, the checked and far passes'
    // errors pooled.
    uint32_t simulated = 0, predicted = 0, out_of_range = 0;
    std::vector<double> errors, far_errors;
    for (auto& n : nodes) {
      simulated += n->predicted->simulated_steps;
      predicted += n->predicted->extrapolated_steps;
      out_of_range += n->prediction->out_of_range();
      errors.insert(errors.end(), n->prediction->errors().begin(), n->prediction->errors().end());
      far_errors.insert(far_errors.end(), n->prediction->far_errors().begin(),
                        n->prediction->far_errors().end());
    }
    std::vector<SummaryItem> pod_items{
        {"fast_forward_simulated_steps", double(simulated), "steps"},
        {"fast_forward_extrapolated_steps", double(predicted), "steps"}};
    for (SummaryItem& i : prediction_items(out_of_range, errors, far_errors))
      pod_items.push_back(std::move(i));
    // In place of the headline replica's (they follow one another).
    const auto first = std::find_if(out.summary.begin(), out.summary.end(), [](const auto& i) {
      return i.name.rfind("fast_forward_", 0) == 0;
    });
    const auto last = std::find_if(first, out.summary.end(), [](const auto& i) {
      return i.name.rfind("fast_forward_", 0) != 0;
    });
    out.summary.insert(out.summary.erase(first, last), pod_items.begin(), pod_items.end());
  }
  out.summary.push_back({"ranks_simulated", double(ranks), "ranks"});
  out.summary.push_back({"rank_classes", double(classes), "classes"});
  // A compute counter of class k, summed over its engines.
  auto compute_counter = [&](uint32_t k, const char* stat) {
    double sum = 0;
    for (const auto& c : nodes[k]->components) {
      if (c->component_kind() != "compute") continue;
      if (const Stat* st = nodes[k]->ctx.stats().find(std::string(c->basename()) + "." + stat)) {
        sum += double(static_cast<const Counter*>(st)->value());
      }
    }
    return sum;
  };
  const bool pipeline = par.pipeline_parallel() > 1;
  double pipe_wait_ps = 0;
  for (uint32_t r = 0; r < ranks; ++r) {
    const uint32_t k = rank_class[r];
    const std::string p = "node" + std::to_string(r) + "_";
    out.summary.push_back({p + "step_ms_mean",
                           class_steps[k] ? class_step_ms[k] / double(class_steps[k]) : 0.0, "ms"});
    // The waits of a run cut short include its unfinished step's: reported for whole runs.
    if (!done) continue;
    if ((!pipeline && replicas == 1) || par.tensor_parallel() > 1) {  // its collectives' waits
      out.summary.push_back({p + "rendezvous_wait_ms_per_step",
                             class_steps[k] ? compute_counter(k, "rendezvous_wait_time") / 1e9 /
                                                  double(class_steps[k])
                                            : 0.0,
                             "ms"});
    }
    if (pipeline) {
      const double w = compute_counter(k, "pipeline_wait_time");
      // The bubbles: its receives' waits (the fill, and waiting on a slower stage), and its
      // idle tail once its last step is done (the drain).
      const auto& own = class_results[k].tokens;  // its own steps (node[0]'s are the pod's now)
      pipe_wait_ps += w + (own.empty() ? 0.0 : double(end_ps - own.back().end_ps));
      out.summary.push_back(
          {p + "pipeline_wait_ms_per_step", steps ? w / 1e9 / double(steps) : 0.0, "ms"});
    }
  }
  const uint32_t prefill = nodes[0]->workload->prefill_steps();
  if (pipeline && done && steps >= prefill + 2) {
    // The pipeline in steady state: the decode steps after the first, which also fills the
    // pipeline (with a prompt prefill step, the prefill fills it).
    double sum_ms = 0;
    for (size_t s = prefill + 1; s < steps; ++s)
      sum_ms += ps_to_ms(pod[s].end_ps - pod[s].start_ps);
    const double steady = sum_ms / double(steps - prefill - 1);
    out.summary.push_back({"pipeline_steady_tpot_ms", steady, "ms"});
    if (prefill == 0) {  // (a prompt prefill step fills the pipeline: its time is prefill_s)
      out.summary.push_back(
          {"pipeline_fill_ms", ps_to_ms(pod[0].end_ps - pod[0].start_ps) - steady, "ms"});
    }
  }
  if (pipeline && done && end_ps > 0) {
    // The stages' idle time (the pipeline's bubbles: its fill and drain, and a stage waiting
    // on a slower one), as a share of stages x the run.
    out.summary.push_back(
        {"pipeline_bubble_fraction", pipe_wait_ps / (double(end_ps) * double(ranks)), "fraction"});
  }
  if (replicas > 1) replica_summary(class_results, out.summary);
  if (!options.out_path.empty()) {
    std::vector<NodeResult> per_node;
    for (uint32_t r = 0; r < ranks; ++r) {
      per_node.push_back(class_results[rank_class[r]]);
      per_node.back().node = r;
    }
    write_results(options.out_path, loaded, ctx0, out.summary, wall_s, stopped_by, per_node);
  }
  return out;
}

}  // namespace tiersim
