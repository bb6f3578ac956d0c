#include "models/run/simulation.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "fabric/topology.h"
#include "models/core/component.h"
#include "models/core/context.h"
#include "models/core/registry.h"
#include "models/core/stats_sampler.h"
#include "models/core/workload.h"
#include "models/run/trace.h"

#ifndef TIERSIM_VERSION
#define TIERSIM_VERSION "0.0.0"
#endif
#ifndef TIERSIM_GIT_REV
#define TIERSIM_GIT_REV "unknown"
#endif

namespace tiersim {

namespace {

using Clock = std::chrono::steady_clock;

ConfigError located(const LoadedConfig& loaded, std::vector<ConfigIssue> issues) {
  for (auto& i : issues) {
    if (i.where.file.empty()) i.where = loaded.locate(i.path);
  }
  return ConfigError(std::move(issues));
}

std::string format_duration(double s) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << s << " s";
  return os.str();
}

// Time per output token of a step: its latency over the tokens each sequence gained.
double step_tpot_ms(const TokenRecord& t) {
  const double per_sequence =
      t.sequences ? static_cast<double>(t.tokens) / static_cast<double>(t.sequences) : 1.0;
  return ps_to_ms(t.end_ps - t.start_ps) / (per_sequence > 0 ? per_sequence : 1.0);
}

// Writes the whole result file under a temporary name, then renames it.
void write_results(const std::string& path, const LoadedConfig& loaded, Context& ctx,
                   const std::vector<SummaryItem>& summary, double wall_s,
                   const std::string& stopped_by) {
  ResultWriter w(path);
  ctx.workload()->write_results(w);
  w.write_string("/meta/config", loaded.resolved_text());
  w.write_strings("/meta/files", loaded.files);
  w.write_strings("/meta/overrides", loaded.overrides);
  w.write_string("/meta/version", TIERSIM_VERSION);
  w.write_string("/meta/git_revision", TIERSIM_GIT_REV);
  w.write_scalar_u64("/meta/seed", ctx.seed(), "");
  w.write_scalar("/meta/wall_time_s", wall_s, "s");
  w.write_string("/meta/stopped_by", stopped_by);

  for (const auto& s : summary)
    w.write_scalar("/summary/" + s.name, s.value, s.unit);

  // Stats: one dataset per stat, rows are samples.
  const StatsRegistry& stats = ctx.stats();
  w.write_u64s("/stats/time_ps", stats.sample_times_ps());
  const size_t samples = stats.sample_times_ps().size();
  for (size_t i = 0; i < stats.all().size(); ++i) {
    const Stat& s = *stats.all()[i];
    std::string name = s.name();
    const auto dot = name.find('.');
    const std::string path_name =
        "/stats/" +
        (dot == std::string::npos ? name : name.substr(0, dot) + "/" + name.substr(dot + 1));
    w.write_matrix(path_name, samples, s.width(), stats.series(i));
    w.set_attribute(path_name, "unit", s.unit());
    w.set_attribute(path_name, "description", s.description());
    w.set_attribute(path_name, "kind", stat_kind_name(s.kind()));
    if (!s.labels().empty()) {
      std::string labels;
      for (const auto& l : s.labels())
        labels += (labels.empty() ? "" : ",") + l;
      w.set_attribute(path_name, "labels", labels);
    }
    if (s.kind() == StatKind::kHistogram) {
      const auto& h = static_cast<const Histogram&>(s);
      w.write_matrix(path_name + "_edges", h.edges().size(), 1, h.edges());
      std::vector<uint64_t> counts(h.buckets().begin(), h.buckets().end());
      w.write_u64s(path_name + "_counts", counts);
    }
  }

  Table tokens;
  const size_t c_step = tokens.add_column("step", Table::Type::kU64);
  const size_t c_start = tokens.add_column("start_ps", Table::Type::kU64, "ps");
  const size_t c_end = tokens.add_column("end_ps", Table::Type::kU64, "ps");
  const size_t c_lat = tokens.add_column("latency_ms", Table::Type::kF64, "ms");
  const size_t c_tok = tokens.add_column("tokens", Table::Type::kU64);
  const size_t c_seq = tokens.add_column("sequences", Table::Type::kU64);
  const size_t c_tpot = tokens.add_column("tpot_ms", Table::Type::kF64, "ms");
  for (const auto& t : ctx.records().tokens) {
    tokens.columns[c_seq].u64.push_back(t.sequences);
    tokens.columns[c_tpot].f64.push_back(step_tpot_ms(t));
    tokens.columns[c_step].u64.push_back(t.step);
    tokens.columns[c_start].u64.push_back(t.start_ps);
    tokens.columns[c_end].u64.push_back(t.end_ps);
    tokens.columns[c_lat].f64.push_back(ps_to_ms(t.end_ps - t.start_ps));
    tokens.columns[c_tok].u64.push_back(t.tokens);
  }
  w.write_table("/tokens", tokens);

  Table ops;
  const size_t o_step = ops.add_column("step", Table::Type::kU64);
  const size_t o_layer = ops.add_column("layer", Table::Type::kI64);
  const size_t o_kind = ops.add_column("kind", Table::Type::kStr);
  const size_t o_start = ops.add_column("start_ps", Table::Type::kU64, "ps");
  const size_t o_end = ops.add_column("end_ps", Table::Type::kU64, "ps");
  const size_t o_off = ops.add_column("offchip_bytes", Table::Type::kU64, "bytes");
  const size_t o_sram = ops.add_column("sram_bytes", Table::Type::kU64, "bytes");
  const size_t o_flops = ops.add_column("flops", Table::Type::kF64, "flop");
  const size_t o_bound = ops.add_column("bound_by", Table::Type::kStr);
  for (const auto& o : ctx.records().ops) {
    ops.columns[o_step].u64.push_back(o.step);
    ops.columns[o_layer].i64.push_back(o.layer == UINT32_MAX ? int64_t{-1} : int64_t{o.layer});
    ops.columns[o_kind].str.push_back(op_kind_name(o.kind));
    ops.columns[o_start].u64.push_back(o.start_ps);
    ops.columns[o_end].u64.push_back(o.end_ps);
    ops.columns[o_off].u64.push_back(o.offchip_bytes);
    ops.columns[o_sram].u64.push_back(o.sram_bytes);
    ops.columns[o_flops].f64.push_back(o.flops);
    ops.columns[o_bound].str.push_back(bound_by_name(o.bound_by));
  }
  w.write_table("/ops", ops);

  // The object table with placements and the workload's intent records.
  Table objects;
  const size_t b_name = objects.add_column("name", Table::Type::kStr);
  const size_t b_cls = objects.add_column("class", Table::Type::kStr);
  const size_t b_size = objects.add_column("size_bytes", Table::Type::kU64, "bytes");
  const size_t b_layer = objects.add_column("layer", Table::Type::kI64);
  const size_t b_home = objects.add_column("home", Table::Type::kStr);
  const size_t b_addr = objects.add_column("address", Table::Type::kU64);
  const size_t b_first = objects.add_column("first_step", Table::Type::kI64);
  const size_t b_last = objects.add_column("last_step", Table::Type::kI64);
  const size_t b_uses = objects.add_column("uses_per_step", Table::Type::kF64);
  const size_t b_conf = objects.add_column("confidence", Table::Type::kF64);
  for (const auto& o : ctx.objects().all()) {
    objects.columns[b_name].str.push_back(o.name);
    objects.columns[b_cls].str.push_back(object_class_name(o.cls));
    objects.columns[b_size].u64.push_back(o.size_bytes);
    objects.columns[b_layer].i64.push_back(o.layer.valid() ? int64_t{o.layer.value()} : -1);
    objects.columns[b_home].str.push_back(o.home);
    objects.columns[b_addr].u64.push_back(o.address);
    objects.columns[b_first].i64.push_back(o.intent.first_step);
    objects.columns[b_last].i64.push_back(
        o.intent.last_step == ObjectIntent::kUntilEnd ? int64_t{-1} : int64_t{o.intent.last_step});
    objects.columns[b_uses].f64.push_back(o.intent.uses_per_step);
    objects.columns[b_conf].f64.push_back(o.intent.confidence);
  }
  w.write_table("/objects", objects);
  w.commit();
}

}  // namespace

const char* bound_by_name(BoundBy b) {
  switch (b) {
    case BoundBy::kMemory:
      return "memory";
    case BoundBy::kCompute:
      return "compute";
    case BoundBy::kOverhead:
      return "overhead";
  }
  return "unknown";
}

void print_summary(const std::vector<SummaryItem>& items, std::ostream& os) {
  size_t width = 6;
  for (const auto& i : items)
    width = std::max(width, i.name.size());
  os << std::left << std::setw(static_cast<int>(width)) << "metric"
     << "  " << std::right << std::setw(16) << "value"
     << "  unit\n";
  os << std::string(width + 26, '-') << "\n";
  for (const auto& i : items) {
    std::ostringstream v;
    v << std::setprecision(6) << i.value;
    os << std::left << std::setw(static_cast<int>(width)) << i.name << "  " << std::right
       << std::setw(16) << v.str() << "  " << i.unit << "\n";
  }
}

std::vector<std::unique_ptr<Component>> build_system(const config::Config& cfg, Context& ctx) {
  std::vector<std::unique_ptr<Component>> components;
  for (const auto& c : cfg.system().components()) {
    const ComponentKind* kind = find_component_kind(component_kind_name(c));
    components.push_back(kind->create(c, ctx));
    ctx.add_component(components.back().get());
  }
  for (const auto& r : cfg.system().address_map()) {
    ctx.address_map().add(r.name(), r.target(), r.base_bytes(), r.size_bytes());
  }
  ctx.set_topology(std::make_shared<Topology>());
  for (const auto& l : cfg.system().links())
    ctx.topology().add_link(l.name(), l.from(), l.to());
  for (const auto& l : cfg.system().links()) {
    Component* from = ctx.component(l.from());
    Component* to = ctx.component(l.to());
    if (!from->connect(
            *to, LinkInfo{l.name(), l.latency_ps(), l.has_serial() ? &l.serial() : nullptr})) {
      throw ConfigError({ConfigIssue{{},
                                     "system.links[" + l.name() + "].from",
                                     "\"" + l.from() + "\" (a " + from->component_kind() +
                                         ") cannot initiate transfers to \"" + l.to() + "\""}});
    }
  }
  return components;
}

RunOutcome run_simulation(const LoadedConfig& loaded, const RunOptions& options) {
  const auto wall_start = Clock::now();
  const config::Config& cfg = loaded.config;
  sc_core::sc_set_time_resolution(1, sc_core::SC_PS);

  Context ctx(cfg, cfg.run().seed());

  // Workload and its objects.
  const WorkloadKind* wk = find_workload_kind(workload_kind_name(cfg.workload()));
  std::unique_ptr<Workload> workload = wk->create(cfg);
  std::unique_ptr<TraceRecorder> recorder;
  if (!options.trace_path.empty()) {
    // Record every object and op the run consumes (the recorder forwards to the workload).
    const config::Dtype dtype = cfg.workload().has_gemm()
                                    ? cfg.workload().gemm().dtype()
                                    : cfg.workload().model().activation_dtype();
    recorder = std::make_unique<TraceRecorder>(*workload, options.trace_path,
                                               loaded.resolved_text(), dtype);
  }
  Workload* active = recorder ? static_cast<Workload*>(recorder.get()) : workload.get();
  ctx.set_workload(active);
  active->register_objects(ctx.objects());

  std::vector<std::unique_ptr<Component>> components;
  try {
    components = build_system(cfg, ctx);
  } catch (const ConfigError& e) {
    throw located(loaded, e.issues());
  }

  // Placement: every object at home in the compute engine's weights memory (STREAM_ALL).
  std::string home;
  for (const auto& c : cfg.system().components()) {
    if (c.has_compute()) home = c.compute().weights_memory();
  }
  for (size_t i = 0; i < ctx.objects().size(); ++i) {
    ObjectInfo& o = ctx.objects().get_mutable(ObjectId(static_cast<uint32_t>(i)));
    auto addr = ctx.address_map().allocate(home, std::max<uint64_t>(o.size_bytes, 1), 4096);
    if (!addr) {
      throw located(loaded, {ConfigIssue{{},
                                         "workload",
                                         "object " + o.name + " does not fit in \"" + home +
                                             "\" (" + std::to_string(ctx.objects().total_bytes()) +
                                             " bytes of objects)"}});
    }
    o.home = home;
    o.address = *addr;
    o.placed = true;
  }
  try {
    for (auto& c : components)
      c->prepare();
  } catch (const ConfigError& e) {
    throw located(loaded, e.issues());
  }

  bool done = false;
  std::unique_ptr<StatsSampler> sampler;
  if (cfg.run().stats_interval_ps() > 0) {
    sampler = std::make_unique<StatsSampler>("stats_sampler", ctx.stats(),
                                             cfg.run().stats_interval_ps(), done);
  }

  // Progress on a terminal: simulated time, steps, wall time, ETA; at most 4 lines a second.
  const uint32_t total_steps = workload->total_steps();
  auto last_print = Clock::now();
  ctx.on_step_end = [&](const TokenRecord& rec) {
    if (!options.progress) return;
    const auto now = Clock::now();
    const bool last = rec.step + 1 == total_steps;
    if (!last && now - last_print < std::chrono::milliseconds(250)) return;
    last_print = now;
    const double wall = std::chrono::duration<double>(now - wall_start).count();
    if (total_steps == 0) {  // not known in advance (serving)
      std::fprintf(stderr, "\r[sim %.3f ms] step %u  wall %s   ", ps_to_ms(rec.end_ps),
                   rec.step + 1, format_duration(wall).c_str());
      std::fflush(stderr);
      return;
    }
    const double eta = wall / (rec.step + 1) * (total_steps - rec.step - 1);
    std::fprintf(stderr, "\r[sim %.3f ms] step %u/%u  wall %s  ETA %s   ", ps_to_ms(rec.end_ps),
                 rec.step + 1, total_steps, format_duration(wall).c_str(),
                 format_duration(eta).c_str());
    if (last) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
  ctx.on_done = [&] { done = true; };

  const uint64_t limit = cfg.run().max_sim_time_ps();
  if (limit > 0) {
    sc_core::sc_start(to_sc_time(limit));
  } else {
    sc_core::sc_start();
  }
  if (options.progress && (!done || total_steps == 0)) std::fputc('\n', stderr);
  const std::string stopped_by = done ? "complete" : "max_sim_time";
  const TimePs end_ps = now_ps();
  ctx.stats().sample(end_ps);

  // Summary.
  const auto& tokens = ctx.records().tokens;
  std::vector<double> tpot_ms;
  uint64_t generated = 0;
  // Simulated prompt prefill passes count toward the throughput, not the time per token.
  const uint32_t prefill_steps = ctx.workload()->prefill_steps();
  TimePs prefill_ps = 0;
  for (const auto& t : tokens) {
    if (t.step < prefill_steps) {
      prefill_ps += t.end_ps - t.start_ps;
    } else if (t.tokens > 0) {
      tpot_ms.push_back(step_tpot_ms(t));  // serving's prefill-only steps emit none
    }
    generated += t.tokens;
  }
  double mean = 0;
  for (double v : tpot_ms)
    mean += v;
  if (!tpot_ms.empty()) mean /= static_cast<double>(tpot_ms.size());
  const double decode_s =
      tokens.empty() ? 0 : ps_to_s(tokens.back().end_ps - tokens.front().start_ps);
  uint64_t hbm_bytes = 0, sram_bytes = 0, ddr_bytes = 0, cxl_bytes = 0;
  bool has_ddr = false, has_cxl = false;
  for (const auto& c : components) {
    if (c->tier() == Tier::kHbm) hbm_bytes += c->bytes_read() + c->bytes_written();
    if (c->tier() == Tier::kSram) sram_bytes += c->bytes_read() + c->bytes_written();
    if (c->tier() == Tier::kDdr) {
      ddr_bytes += c->bytes_read() + c->bytes_written();
      has_ddr = true;
    }
    if (c->tier() == Tier::kCxl) {
      cxl_bytes += c->bytes_read() + c->bytes_written();
      has_cxl = true;
    }
  }
  const double per_token = generated ? 1.0 / static_cast<double>(generated) : 0.0;
  const double wall_s = std::chrono::duration<double>(Clock::now() - wall_start).count();

  RunOutcome out;
  out.stopped_by = stopped_by;
  out.summary = {
      {"tpot_ms_mean", mean, "ms"},
      {"tpot_ms_p50", percentile(tpot_ms, 50), "ms"},
      {"tpot_ms_p99", percentile(tpot_ms, 99), "ms"},
      {"tokens_per_s", decode_s > 0 ? static_cast<double>(generated) / decode_s : 0.0, "tokens/s"},
      {"decode_steps", static_cast<double>(tokens.size()), "steps"},
      {"tokens_generated", static_cast<double>(generated), "tokens"},
      {"hbm_bytes_per_token", static_cast<double>(hbm_bytes) * per_token, "bytes/token"},
      {"sram_bytes_per_token", static_cast<double>(sram_bytes) * per_token, "bytes/token"},
      {"hbm_achieved_bytes_per_s",
       decode_s > 0 ? static_cast<double>(hbm_bytes) / ps_to_s(end_ps) : 0.0, "bytes/s"},
      {"sim_time_s", ps_to_s(end_ps), "s"},
      {"wall_time_s", wall_s, "s"},
  };
  if (prefill_steps > 0) out.summary.push_back({"prefill_s", ps_to_s(prefill_ps), "s"});
  if (has_ddr) {
    out.summary.push_back(
        {"ddr_bytes_per_token", static_cast<double>(ddr_bytes) * per_token, "bytes/token"});
  }
  if (has_cxl) {
    out.summary.push_back(
        {"cxl_bytes_per_token", static_cast<double>(cxl_bytes) * per_token, "bytes/token"});
  }
  // Energy: dynamic plus static power over the simulated time, per component and per token.
  double energy_j = 0;
  std::vector<SummaryItem> energy_items;
  for (const auto& c : components) {
    if (!c->has_energy()) continue;
    const double e = c->dynamic_energy_j() + c->static_power_w() * ps_to_s(end_ps);
    energy_j += e;
    energy_items.push_back({std::string("energy_j_") + c->basename(), e, "J"});
  }
  if (!energy_items.empty()) {
    out.summary.push_back({"energy_j", energy_j, "J"});
    out.summary.push_back(
        {"energy_j_per_token", generated ? energy_j / double(generated) : 0.0, "J/token"});
    out.summary.insert(out.summary.end(), energy_items.begin(), energy_items.end());
  }
  for (const auto& c : components)
    c->summarize(out.summary, generated);
  // Fault runs: every DMA transfer completed or failed, with the retries and reroutes.
  if (cfg.system().faults_size() > 0) {
    const char* kCounts[] = {"transfers", "transfers_failed", "transfers_retried",
                             "transfers_rerouted"};
    const char* kNames[] = {"transfers_completed", "transfers_failed", "transfers_retried",
                            "transfers_rerouted"};
    for (size_t k = 0; k < 4; ++k) {
      double total = 0;
      for (const auto& c : components) {
        if (c->component_kind() != "dma") continue;
        const std::string name = std::string(c->basename()) + "." + kCounts[k];
        for (const auto& st : ctx.stats().all()) {
          if (st->name() == name && st->kind() == StatKind::kCounter) {
            total += static_cast<double>(static_cast<const Counter&>(*st).value());
          }
        }
      }
      out.summary.push_back({kNames[k], total, "transfers"});
    }
  }
  workload->summarize(out.summary);
  if (recorder) recorder->commit();
  if (!options.out_path.empty()) {
    write_results(options.out_path, loaded, ctx, out.summary, wall_s, stopped_by);
  }
  return out;
}

}  // namespace tiersim
