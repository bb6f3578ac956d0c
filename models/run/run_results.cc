// The result file of one run (HDF5, written under a temporary name and renamed when complete):
// /meta, /summary, /stats (one dataset per stat, rows are samples), /tokens, /ops, /objects and
// the workload's own datasets.
#include <string>

#include "models/core/context.h"
#include "models/core/stats.h"
#include "models/core/workload.h"
#include "models/run/result_file.h"
#include "models/run/run_parts.h"

#ifndef TIERSIM_VERSION
#define TIERSIM_VERSION "0.0.0"
#endif
#include "tiersim_git_revision.h"  // generated at build time: TIERSIM_GIT_REV
#ifndef TIERSIM_GIT_REV
#define TIERSIM_GIT_REV "unknown"
#endif

namespace tiersim {

// Writes the whole result file under a temporary name, then renames it.
namespace {

// One dataset per stat under `prefix` ("/stats" or "/nodes/<r>/stats"); rows are samples.
void write_stats(ResultWriter& w, const std::string& prefix, const StatsRegistry& stats) {
  w.write_u64s(prefix + "/time_ps", stats.sample_times_ps());
  const size_t samples = stats.sample_times_ps().size();
  for (size_t i = 0; i < stats.all().size(); ++i) {
    const Stat& s = *stats.all()[i];
    std::string name = s.name();
    const auto dot = name.find('.');
    const std::string path_name =
        prefix + "/" +
        (dot == std::string::npos ? name : name.substr(0, dot) + "/" + name.substr(dot + 1));
    w.write_matrix(path_name, samples, s.width(), stats.series(i));
    w.set_attribute(path_name, "unit", s.unit());
    w.set_attribute(path_name, "description", s.description());
    w.set_attribute(path_name, "kind", stat_kind_name(s.kind()));
    w.set_attribute(path_name, "sampling", s.sampling());
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
}

}  // namespace

void write_results(const std::string& path, const LoadedConfig& loaded, Context& ctx,
                   const std::vector<SummaryItem>& summary, double wall_s,
                   const std::string& stopped_by, const std::vector<NodeResult>& nodes) {
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

  write_stats(w, "/stats", ctx.stats());

  // /tokens: the engine's steps in run order (with tenancy, a column says whose); with tenancy,
  // each tenant's own steps under /tenants/<name>/tokens, timed from when it was ready.
  const std::vector<TenantView>* tenants = ctx.workload()->tenants();
  auto token_table = [&](const std::vector<TokenRecord>& records, bool tenant_column) {
    Table tokens;
    const size_t c_step = tokens.add_column("step", Table::Type::kU64);
    const size_t c_start = tokens.add_column("start_ps", Table::Type::kU64, "ps");
    const size_t c_end = tokens.add_column("end_ps", Table::Type::kU64, "ps");
    const size_t c_lat = tokens.add_column("latency_ms", Table::Type::kF64, "ms");
    const size_t c_tok = tokens.add_column("tokens", Table::Type::kU64);
    const size_t c_seq = tokens.add_column("sequences", Table::Type::kU64);
    const size_t c_tpot = tokens.add_column("tpot_ms", Table::Type::kF64, "ms");
    const size_t c_ten = tenant_column ? tokens.add_column("tenant", Table::Type::kU64) : 0;
    // run.fast_forward: 1 for a step not simulated (a decode step interpolated after the run,
    // a serving pass predicted), 0 for a simulated one.
    const bool ff = ctx.config().run().has_fast_forward();
    const size_t c_ext = ff ? tokens.add_column("extrapolated", Table::Type::kU64) : 0;
    for (const auto& t : records) {
      tokens.columns[c_seq].u64.push_back(t.sequences);
      tokens.columns[c_tpot].f64.push_back(step_tpot_ms(t));
      tokens.columns[c_step].u64.push_back(t.step);
      tokens.columns[c_start].u64.push_back(t.start_ps);
      tokens.columns[c_end].u64.push_back(t.end_ps);
      tokens.columns[c_lat].f64.push_back(ps_to_ms(t.end_ps - t.start_ps));
      tokens.columns[c_tok].u64.push_back(t.tokens);
      if (tenant_column) tokens.columns[c_ten].u64.push_back(t.tenant.value());
      if (ff) tokens.columns[c_ext].u64.push_back(t.extrapolated ? 1 : 0);
    }
    return tokens;
  };
  w.write_table("/tokens", token_table(ctx.records().tokens, tenants != nullptr));
  std::vector<std::string> node_names;
  for (const NodeResult& n : nodes) {
    const std::string p = "/nodes/" + std::to_string(n.node);
    node_names.push_back(std::to_string(n.node));
    for (const auto& item : n.summary)
      w.write_scalar(p + "/summary/" + item.name, item.value, item.unit);
    write_stats(w, p + "/stats", n.ctx->stats());
    w.write_table(p + "/tokens", token_table(n.tokens, false));
  }
  if (!nodes.empty()) w.set_attribute_strings("/nodes", "names", node_names);
  if (tenants) {
    std::vector<std::string> names;
    for (const auto& t : *tenants) {
      names.push_back(t.name);
      w.write_table("/tenants/" + t.name + "/tokens", token_table(t.steps, false));
    }
    w.set_attribute_strings("/tenants", "names", names);  // in order: the primary first
  }

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

}  // namespace tiersim
