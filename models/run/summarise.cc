// The run's summary: the headline metrics of /summary, then each component's and the
// workload's own items.
#include <algorithm>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>

#include "models/core/component.h"
#include "models/core/context.h"
#include "models/core/energy.h"
#include "models/core/stats.h"
#include "models/core/workload.h"
#include "models/run/extrapolation.h"
#include "models/run/run_parts.h"

namespace tiersim {

double step_tpot_ms(const TokenRecord& t) {
  const double per_sequence =
      t.sequences ? static_cast<double>(t.tokens) / static_cast<double>(t.sequences) : 1.0;
  return ps_to_ms(t.end_ps - t.start_ps) / (per_sequence > 0 ? per_sequence : 1.0);
}

namespace {

// Energy over the run (models/core/energy.h): the total, per token, dynamic and static; each
// component's energy and mean power; each part's (a hop of the data path, or a static power)
// energy and mean power. Then each component's items, and (fault runs) the DMA transfers'
// outcomes.
// Fast-forwarded (`ff`): the energy includes the skipped steps' and the power is over the
// extrapolated time; the stats the components' items derive from include the skipped steps'
// increments.
void summarise_components(Context& ctx, const std::vector<std::unique_ptr<Component>>& components,
                          TimePs end_ps, uint64_t generated, const Extrapolation* ff,
                          std::vector<SummaryItem>& summary) {
  const double seconds = ps_to_s(end_ps + (ff ? ff->extra_ps : 0));
  auto mean_w = [seconds](double j) { return seconds > 0 ? j / seconds : 0.0; };
  EnergyLedger parts, one;
  std::vector<SummaryItem> energy_items, power_items;
  for (size_t i = 0; i < components.size(); ++i) {
    const auto& c = components[i];
    if (!c->has_energy()) continue;
    one.clear();
    if (ff) {
      one = ff->energy[i];
    } else {
      c->add_energy(end_ps, one);
    }
    for (size_t p = 0; p < kEnergyParts; ++p)
      parts.j[p] += one.j[p];
    energy_items.push_back({std::string("energy_j_") + c->basename(), one.total(), "J"});
    power_items.push_back({std::string("power_w_") + c->basename(), mean_w(one.total()), "W"});
  }
  if (!energy_items.empty()) {
    double energy_j = 0;
    for (const auto& e : energy_items)
      energy_j += e.value;
    summary.push_back({"energy_j", energy_j, "J"});
    summary.push_back(
        {"energy_j_per_token", generated ? energy_j / double(generated) : 0.0, "J/token"});
    summary.push_back({"energy_j_dynamic", parts.dynamic_j(), "J"});
    summary.push_back({"energy_j_static", parts.static_j(), "J"});
    summary.push_back({"power_w_mean", mean_w(energy_j), "W"});
    summary.insert(summary.end(), energy_items.begin(), energy_items.end());
    summary.insert(summary.end(), power_items.begin(), power_items.end());
    for (size_t p = 0; p < kEnergyParts; ++p) {
      if (parts.j[p] == 0) continue;
      const EnergyPart part = EnergyPart(p);
      const std::string kind = energy_part_is_static(part) ? "static_" : "path_";
      summary.push_back({"energy_j_" + kind + energy_part_name(part), parts.j[p], "J"});
      summary.push_back({"power_w_" + kind + energy_part_name(part), mean_w(parts.j[p]), "W"});
    }
  }
  for (const auto& c : components)
    c->summarize(summary, generated);
  // Fault runs: every DMA transfer completed or failed, with the retries and reroutes.
  if (ctx.config().system().faults_size() > 0) {
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
      summary.push_back({kNames[k], total, "transfers"});
    }
  }
}

// Time per output token and throughput of one step record list.
struct StepFigures {
  std::vector<double> tpot_ms;
  double mean_ms = 0;
  uint64_t generated = 0;
  TimePs prefill_ps = 0;
  double span_s = 0;  // from the first step's start to the last one's end
};

StepFigures step_figures(const std::vector<TokenRecord>& tokens, uint32_t prefill_steps) {
  // Simulated prompt prefill passes count toward the throughput, not the time per token.
  StepFigures f;
  for (const auto& t : tokens) {
    if (t.step < prefill_steps) {
      f.prefill_ps += t.end_ps - t.start_ps;
    } else if (t.tokens > 0) {
      f.tpot_ms.push_back(step_tpot_ms(t));  // serving's prefill-only steps emit none
    }
    f.generated += t.tokens;
  }
  for (double v : f.tpot_ms)
    f.mean_ms += v;
  if (!f.tpot_ms.empty()) f.mean_ms /= static_cast<double>(f.tpot_ms.size());
  f.span_s = tokens.empty() ? 0 : ps_to_s(tokens.back().end_ps - tokens.front().start_ps);
  return f;
}

}  // namespace

std::vector<SummaryItem> summarise_run(Context& ctx,
                                       const std::vector<std::unique_ptr<Component>>& components,
                                       TimePs end_ps, double wall_s, const Extrapolation* ff) {
  // With tenancy the headline is the primary tenant's (its steps timed from when it was ready),
  // and per-token figures of the system (bytes, energy) count every tenant's tokens.
  const std::vector<TenantView>* tenants = ctx.workload()->tenants();
  const auto& tokens = tenants ? (*tenants)[0].steps : ctx.records().tokens;
  const uint32_t prefill_steps =
      tenants ? (*tenants)[0].prefill_steps : ctx.workload()->prefill_steps();
  StepFigures head = step_figures(tokens, prefill_steps);
  const std::vector<double>& tpot_ms = head.tpot_ms;
  const double mean = head.mean_ms;
  const uint64_t generated = head.generated;
  const TimePs prefill_ps = head.prefill_ps;
  const double decode_s = head.span_s;
  uint64_t generated_all = generated;
  if (tenants) {
    generated_all = 0;
    for (const auto& t : ctx.records().tokens)
      generated_all += t.tokens;
  }
  uint64_t hbm_bytes = 0, sram_bytes = 0, ddr_bytes = 0, cxl_bytes = 0;
  bool has_ddr = false, has_cxl = false;
  for (const auto& c : components) {
    const uint64_t bytes = c->bytes_read() + c->bytes_written();
    if (c->tier() == Tier::kHbm) hbm_bytes += bytes;
    if (c->tier() == Tier::kSram) sram_bytes += bytes;
    if (c->tier() == Tier::kDdr) {
      ddr_bytes += bytes;
      has_ddr = true;
    }
    if (c->tier() == Tier::kCxl) {
      cxl_bytes += bytes;
      has_cxl = true;
    }
  }
  const TimePs sim_end_ps = end_ps + (ff ? ff->extra_ps : 0);
  const double per_token = generated_all ? 1.0 / static_cast<double>(generated_all) : 0.0;
  std::vector<SummaryItem> summary = {
      {"tpot_ms_mean", mean, "ms"},
      {"tpot_ms_p50", percentile(tpot_ms, 50), "ms"},
      {"tpot_ms_p99", percentile(tpot_ms, 99), "ms"},
      {"tokens_per_s", decode_s > 0 ? static_cast<double>(generated) / decode_s : 0.0, "tokens/s"},
      {"decode_steps", static_cast<double>(tokens.size()), "steps"},
      {"tokens_generated", static_cast<double>(generated), "tokens"},
      {"hbm_bytes_per_token", static_cast<double>(hbm_bytes) * per_token, "bytes/token"},
      {"sram_bytes_per_token", static_cast<double>(sram_bytes) * per_token, "bytes/token"},
      {"hbm_achieved_bytes_per_s",
       decode_s > 0 ? static_cast<double>(hbm_bytes) / ps_to_s(sim_end_ps) : 0.0, "bytes/s"},
      {"sim_time_s", ps_to_s(sim_end_ps), "s"},
      {"wall_time_s", wall_s, "s"},
  };
  if (prefill_steps > 0) summary.push_back({"prefill_s", ps_to_s(prefill_ps), "s"});
  if (const uint32_t ep = ctx.config().workload().parallelism().expert_parallel(); ep > 1) {
    // Expert-parallel ranks each serve their own sequences: the system generates ep times the
    // simulated rank's tokens.
    for (size_t i = 0; i < summary.size(); ++i) {
      if (summary[i].name == "tokens_per_s") {
        summary.push_back({"tokens_per_s_all_ranks", summary[i].value * ep, "tokens/s"});
        break;
      }
    }
  }
  if (tenants) {
    summary.push_back(
        {"tokens_generated_all_tenants", static_cast<double>(generated_all), "tokens"});
    for (const TenantView& t : *tenants) {
      const StepFigures f = step_figures(t.steps, t.prefill_steps);
      const std::string p = "tenant_" + t.name + "_";
      summary.push_back({p + "tpot_ms_mean", f.mean_ms, "ms"});
      summary.push_back({p + "tpot_ms_p99", percentile(f.tpot_ms, 99), "ms"});
      summary.push_back({p + "tokens_per_s",
                         f.span_s > 0 ? static_cast<double>(f.generated) / f.span_s : 0.0,
                         "tokens/s"});
      summary.push_back({p + "tokens_generated", static_cast<double>(f.generated), "tokens"});
      summary.push_back({p + "steps", static_cast<double>(t.steps.size()), "steps"});
      summary.push_back(
          {p + "engine_share", end_ps > 0 ? double(t.engine_ps) / double(end_ps) : 0.0, ""});
      // Its own steps' engine time: the step time alone, without the waits for other tenants.
      summary.push_back({p + "engine_ms_per_step",
                         t.steps.empty() ? 0.0 : ps_to_ms(t.engine_ps) / double(t.steps.size()),
                         "ms"});
      summary.push_back({p + "completed", t.completed ? 1.0 : 0.0, ""});
      if (t.prefill_steps > 0) summary.push_back({p + "prefill_s", ps_to_s(f.prefill_ps), "s"});
    }
  }
  if (has_ddr) {
    summary.push_back(
        {"ddr_bytes_per_token", static_cast<double>(ddr_bytes) * per_token, "bytes/token"});
  }
  if (has_cxl) {
    summary.push_back(
        {"cxl_bytes_per_token", static_cast<double>(cxl_bytes) * per_token, "bytes/token"});
  }
  if (ff) {
    summary.push_back(
        {"fast_forward_simulated_steps", static_cast<double>(ff->simulated_steps), "steps"});
    summary.push_back(
        {"fast_forward_extrapolated_steps", static_cast<double>(ff->extrapolated_steps), "steps"});
    summary.insert(summary.end(), ff->items.begin(), ff->items.end());
  }
  summarise_components(ctx, components, end_ps, generated_all, ff, summary);
  ctx.workload()->summarize(summary);
  return summary;
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

}  // namespace tiersim
