#include "accelerators/orchestration/thermal_admission.h"

#include <algorithm>
#include <stdexcept>

namespace tiersim {

namespace {

double or_default(bool has, double value, double fallback) {
  return has ? value : fallback;
}

}  // namespace

void ThermalAdmissionParams::validate(const config::Config& root, Validator v) {
  if (!root.policy().has_thermal_admission()) return;
  const auto& c = root.policy().thermal_admission();
  Validator t = v.at("policy.thermal_admission");
  if (!root.workload().has_serving()) {
    t.error("", "needs a serving workload (workload.serving): it gates the serving scheduler");
  }
  if (t.non_empty("memory", c.has_memory(), c.memory())) {
    const config::Component* m = find_component(root, c.memory());
    if (m == nullptr) {
      t.error("memory", "no component named \"" + c.memory() + "\"");
    } else if (!m->has_hbm() || !m->hbm().has_thermal()) {
      t.error("memory", "\"" + c.memory() +
                            "\" has no temperature telemetry: it must be an hbm component with a "
                            "thermal section");
    } else {
      // The controller reads decision_latency_ps late: the telemetry keeps that much history,
      // bounded as the hbm bounds its own delay (65,536 periods).
      const auto& th = m->hbm().thermal();
      // (The hbm's default period is 100 ms: docs/models/thermal.md.)
      const double period = th.has_telemetry_period_ps() ? double(th.telemetry_period_ps()) : 1e11;
      const double delay = th.has_telemetry_delay_ps() ? double(th.telemetry_delay_ps()) : 0.0;
      const double late = double(from_config(c).decision_latency_ps);
      if (period > 0 && (delay + late) / period > 65536) {
        t.error("decision_latency_ps",
                "with the telemetry's delay it spans more than 65,536 "
                "telemetry periods of \"" +
                    c.memory() + "\"");
      }
    }
  }
  if (!config::ControllerPlacement_IsValid(c.controller())) {
    t.error("controller", "unknown placement " + std::to_string(c.controller()));
  }
  if (c.has_horizon_ps() && c.mode() != config::THERMAL_PREDICTIVE) {
    t.error("horizon_ps",
            "only with mode THERMAL_PREDICTIVE (a reactive controller predicts "
            "nothing)");
  }
  if (c.has_min_sequences() && root.workload().has_serving() &&
      root.workload().serving().max_sequences() > 0 &&
      c.min_sequences() > root.workload().serving().max_sequences()) {
    t.error("min_sequences", "more than workload.serving.max_sequences (" +
                                 std::to_string(root.workload().serving().max_sequences()) +
                                 "): the gate could never hold admission back");
  }
  const ThermalAdmissionParams p = from_config(c);
  if (!(p.gate.recover_below_c < p.gate.drain_above_c)) {
    t.error("recover_below_c",
            "must be below drain_above_c (" + std::to_string(p.gate.drain_above_c) + " C)");
  }
  if (!(p.gate.drain_above_c <= p.gate.cool_above_c)) {
    t.error("cool_above_c",
            "must be at least drain_above_c (" + std::to_string(p.gate.drain_above_c) + " C)");
  }
  if (c.has_min_sequences() && c.min_sequences() == 0) {
    t.error("min_sequences", "must be at least 1 (0 could stop the run for good)");
  }
  if (!(p.gate.cool_idle_fraction >= 0 && p.gate.cool_idle_fraction <= 0.95)) {
    t.error("cool_idle_fraction", "must be in [0, 0.95]");
  }
}

ThermalAdmissionParams ThermalAdmissionParams::from_config(const config::ThermalAdmission& c) {
  ThermalAdmissionParams p;
  p.memory = c.memory();
  p.controller = c.controller() == config::CONTROLLER_PLACEMENT_UNSPECIFIED ||
                         !config::ControllerPlacement_IsValid(c.controller())
                     ? config::HOST_CPU
                     : c.controller();
  p.decision_latency_ps = c.has_decision_latency_ps() ? c.decision_latency_ps()
                                                      : default_decision_latency_ps(p.controller);
  ThermalGateParams& g = p.gate;
  g.predictive = c.mode() == config::THERMAL_PREDICTIVE;
  g.drain_above_c = or_default(c.has_drain_above_c(), c.drain_above_c(), g.drain_above_c);
  g.cool_above_c = or_default(c.has_cool_above_c(), c.cool_above_c(), g.cool_above_c);
  g.recover_below_c = or_default(c.has_recover_below_c(), c.recover_below_c(), g.recover_below_c);
  if (c.has_cool_min_ps()) g.cool_min_ps = c.cool_min_ps();
  if (c.has_recover_min_ps()) g.recover_min_ps = c.recover_min_ps();
  g.cool_idle_fraction =
      or_default(c.has_cool_idle_fraction(), c.cool_idle_fraction(), g.cool_idle_fraction);
  if (c.has_horizon_ps()) g.horizon_ps = c.horizon_ps();
  if (c.has_min_sequences()) g.min_sequences = c.min_sequences();
  g.backpressure_only = c.backpressure_only();
  return p;
}

ThermalAdmission::ThermalAdmission(const ThermalAdmissionParams& p, Context& ctx,
                                   const std::string& group)
    : p_(p),
      telemetry_(ctx.thermal_telemetry(p.memory)),
      gate_(p.gate),
      decisions_(ctx.stats().counter(group, "decisions", "admission decisions taken", "count")),
      state_(ctx.stats().scalar(group, "state",
                                "gate state at the last decision: 0 normal, 1 drain, 2 cool, "
                                "3 recover",
                                "state")),
      signal_c_(ctx.stats().scalar(group, "signal_temperature_c",
                                   "the temperature the last decision compared (the hottest "
                                   "stack's reading, or its prediction)",
                                   "C")) {
  state_.set_instant();
  signal_c_.set_instant();
  if (telemetry_ == nullptr) {
    throw std::logic_error("thermal admission: \"" + p.memory + "\" registered no telemetry");
  }
  telemetry_->keep_history(p_.decision_latency_ps);
}

AdmissionDecision ThermalAdmission::decide(TimePs now_ps) {
  decisions_.inc();
  // What the controller read decision_latency_ps ago: the hottest stack.
  const TimePs seen_at = now_ps > p_.decision_latency_ps ? now_ps - p_.decision_latency_ps : 0;
  TemperatureReading hottest;
  for (uint32_t s = 0; s < telemetry_->sensor_count(); ++s) {
    const TemperatureReading r = telemetry_->read(s, seen_at);
    if (r.valid && (!hottest.valid || r.celsius > hottest.celsius)) hottest = r;
  }
  const ThermalGateState st =
      gate_.observe(now_ps, hottest.valid, hottest.celsius, hottest.sampled_ps);
  state_.set(double(static_cast<int>(st)));
  signal_c_.set(gate_.signal_c());

  AdmissionDecision d;
  d.admit_new = gate_.admit_new();
  d.run_prefill = gate_.run_prefill();
  d.min_sequences = p_.gate.min_sequences;
  if (st == ThermalGateState::kCool && hold_until_ps_ > now_ps) {
    d.hold_until_ps = hold_until_ps_;
  }
  // Nothing may run: ask again when the next reading can be visible.
  d.recheck_ps = now_ps + std::max<TimePs>(telemetry_->period_ps(), 1'000'000);
  return d;
}

void ThermalAdmission::step_done(TimePs start_ps, TimePs end_ps) {
  const double f = gate_.idle_fraction();
  // At most 19 x the step (f <= 0.95), clamped to the simulated-time bound.
  const double idle_ps = f > 0 && end_ps > start_ps ? double(end_ps - start_ps) * f / (1.0 - f) : 0;
  hold_until_ps_ =
      idle_ps > 0 ? end_ps + static_cast<TimePs>(std::min(idle_ps, double(kMaxSimTimePs))) : 0;
}

void ThermalAdmission::summarize(std::vector<SummaryItem>& out, TimePs now_ps) const {
  for (ThermalGateState s : {ThermalGateState::kNormal, ThermalGateState::kDrain,
                             ThermalGateState::kCool, ThermalGateState::kRecover}) {
    out.push_back({std::string("thermal_admission_") + thermal_gate_state_name(s) + "_s",
                   gate_.seconds_in(s, now_ps), "s"});
  }
  out.push_back(
      {"thermal_admission_cool_entries", double(gate_.entries(ThermalGateState::kCool)), "count"});
  out.push_back({"thermal_admission_drain_entries", double(gate_.entries(ThermalGateState::kDrain)),
                 "count"});
  out.push_back({"thermal_admission_decisions", double(gate_.decisions()), "count"});
}

}  // namespace tiersim
