#include "memory/hbm_thermal.h"

#include <algorithm>
#include <cmath>

#include "models/core/context.h"

namespace tiersim {

std::vector<std::string> stack_labels(uint32_t n) {
  std::vector<std::string> l;
  for (uint32_t i = 0; i < n; ++i)
    l.push_back("stack" + std::to_string(i));
  return l;
}

HbmThermal::HbmThermal(sc_core::sc_module_name name, const HbmThermalParams& params,
                       HbmThermalHost& host, Context& ctx, const std::string& group)
    : sc_core::sc_module(name),
      core_(params),
      host_(host),
      group_(group),
      bytes_(params.stacks, 0.0),
      busy_(params.stacks, 0.0),
      applied_mult_(params.stacks, 0.0),
      applied_frac_(params.stacks, 0.0) {
  const uint32_t n = params.stacks;
  auto per_stack = [this, n](auto fn) {
    return [this, n, fn](double* out) {
      for (uint32_t s = 0; s < n; ++s)
        out[s] = fn(s);
    };
  };
  StatsRegistry& st = ctx.stats();
  st.vector_formula(group, "stack_temperature_c", "hottest die of each stack at the last step", "C",
                    stack_labels(n),
                    per_stack([this](uint32_t s) { return core_.stack_max_c(s); }));
  st.vector_formula(group, "base_die_temperature_c", "base die of each stack at the last step", "C",
                    stack_labels(n), per_stack([this](uint32_t s) {
                      return core_.node_c(core_.params().base_node(s));
                    }));
  st.formula(group, "accelerator_temperature_c", "accelerator die at the last step", "C",
             [this](TimePs) { return core_.node_c(core_.params().accelerator_node()); });
  st.formula(group, "sink_temperature_c", "heat sink at the last step", "C",
             [this](TimePs) { return core_.node_c(core_.params().sink_node()); });
  st.vector_formula(group, "refresh_multiplier", "refresh-rate multiplier of each stack", "x",
                    stack_labels(n),
                    per_stack([this](uint32_t s) { return core_.refresh_multiplier(s); }));
  st.vector_formula(group, "throttled", "whether each stack is throttled (1) or not (0)", "flag",
                    stack_labels(n),
                    per_stack([this](uint32_t s) { return core_.throttled(s) ? 1.0 : 0.0; }));
  st.vector_formula(group, "throttle_events", "throttle engagements of each stack", "count",
                    stack_labels(n),
                    per_stack([this](uint32_t s) { return double(core_.throttle_events(s)); }))
      .set_sampling("cumulative");
  st.timed_vector_formula(group, "throttled_s", "time each stack has spent throttled", "s",
                          stack_labels(n),
                          [this, n](TimePs now, double* out) {
                            for (uint32_t s = 0; s < n; ++s)
                              out[s] = core_.throttled_s(s, now);
                          })
      .set_sampling("cumulative");
  st.vector_formula(group, "telemetry_temperature_c",
                    "each stack's telemetry reading at the last step (its period and delay)", "C",
                    stack_labels(n), per_stack([this](uint32_t s) {
                      const TemperatureReading r = core_.read(s, core_.last_step_ps());
                      return r.valid ? r.celsius : std::nan("");
                    }));
  ctx.add_thermal_telemetry(group, &core_);
  apply_all(false);
  SC_METHOD(tick);
  dont_initialize();
  sensitive << start_;
}

void HbmThermal::start_of_simulation() {
  start_.notify(to_sc_time(core_.params().step_ps));
}

void HbmThermal::apply_all(bool only_changes) {
  for (uint32_t s = 0; s < core_.params().stacks; ++s) {
    const double m = core_.refresh_multiplier(s), f = core_.bandwidth_fraction(s);
    if (only_changes && m == applied_mult_[s] && f == applied_frac_[s]) continue;
    applied_mult_[s] = m;
    applied_frac_[s] = f;
    host_.thermal_apply(s, m, f);
  }
}

void HbmThermal::tick() {
  host_.thermal_counts(bytes_.data(), busy_.data());
  core_.step(now_ps(), bytes_.data(), busy_.data());
  apply_all(true);
  for (uint32_t s = 0; s < core_.params().stacks; ++s) {
    const TemperatureReading r = core_.read(s, now_ps());
    if (r.valid) {
      telemetry_error_max_c_ =
          std::max(telemetry_error_max_c_, std::fabs(r.celsius - core_.stack_max_c(s)));
    }
  }
  // Nothing else can happen: the run is over (the compute engine stops the kernel when the
  // workload completes; this covers runs that end by starvation).
  if (!sc_core::sc_pending_activity()) return;
  next_trigger(to_sc_time(core_.params().step_ps));
}

void HbmThermal::summarize(std::vector<SummaryItem>& out, TimePs now_ps) const {
  const uint32_t n = core_.params().stacks;
  double end = -1e300, throttled = 0, events = 0, changes = 0;
  for (uint32_t s = 0; s < n; ++s) {
    end = std::max(end, core_.stack_max_c(s));
    throttled += core_.throttled_s(s, now_ps);
    events += double(core_.throttle_events(s));
    changes += double(core_.refresh_changes(s));
  }
  out.push_back({group_ + "_max_temperature_c", core_.max_c(), "C"});
  out.push_back({group_ + "_end_temperature_c", end, "C"});
  out.push_back({group_ + "_throttle_events", events, "count"});
  out.push_back({group_ + "_throttled_s", throttled, "s"});
  out.push_back({group_ + "_refresh_changes", changes, "count"});
  out.push_back({group_ + "_telemetry_error_max_c", telemetry_error_max_c_, "C"});
}

}  // namespace tiersim
