// The HBM thermal model without SystemC: the RC network against analytic step responses, the
// stack network's steady state by hand, refresh ranges and throttle hysteresis at their
// boundaries, telemetry period and delay, and the validation of every thermal field.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "memory/hbm_thermal_core.h"
#include "memory/thermal_rc.h"

namespace tiersim {
namespace {

TEST(ThermalRc, OneNodeStepResponseIsAnalytic) {
  // C dT/dt = P - (T - Ta) / R: T(t) = Ta + P R (1 - exp(-t / RC)).
  const double c = 0.5, r = 2.0, ta = 30.0, p = 10.0;
  ThermalRc rc(1);
  rc.set_capacity(0, c);
  rc.to_ambient(0, r);
  rc.set_ambient(ta);
  rc.prepare(0.05);  // a step of tau / 20
  double t = ta;
  for (int k = 1; k <= 100; ++k) {
    rc.step(&p, &t);
    const double exact = ta + p * r * (1 - std::exp(-k * 0.05 / (r * c)));
    ASSERT_NEAR(t, exact, 1e-9 * exact) << "step " << k;
  }
  // advance() over any length agrees, and the steady state is Ta + P R.
  double u = ta;
  rc.advance(0.37, &p, &u);
  EXPECT_NEAR(u, ta + p * r * (1 - std::exp(-0.37)), 1e-9);
  double ss = 0;
  rc.steady_state(&p, &ss);
  EXPECT_NEAR(ss, ta + p * r, 1e-12);
  EXPECT_NEAR(rc.fastest_time_constant_s(), r * c, 1e-9);
}

TEST(ThermalRc, TwoNodeChainStepResponseWithinOnePercent) {
  // Node 0 (C0, power P) -- R01 -- node 1 (C1) -- R1a -- ambient. The analytic response is a
  // sum of two exponentials with the eigenvalues of C^-1 G; checked within 1% (it is exact to
  // rounding) over a step much longer than the fast time constant.
  const double c0 = 0.01, c1 = 1.0, r01 = 0.5, r1a = 0.2, p = 20, ta = 40;
  ThermalRc rc(2);
  rc.set_capacity(0, c0);
  rc.set_capacity(1, c1);
  rc.connect(0, 1, r01);
  rc.to_ambient(1, r1a);
  rc.set_ambient(ta);
  const double h = 0.01;
  rc.prepare(h);
  // A = -C^-1 G.
  const double g01 = 1 / r01, g1a = 1 / r1a;
  const double a00 = -g01 / c0, a01 = g01 / c0, a10 = g01 / c1, a11 = -(g01 + g1a) / c1;
  const double tr = a00 + a11, det = a00 * a11 - a01 * a10;
  const double l1 = tr / 2 + std::sqrt(tr * tr / 4 - det),
               l2 = tr / 2 - std::sqrt(tr * tr / 4 - det);
  // Steady state: T1 = Ta + P R1a, T0 = T1 + P R01. Deviation x(0) = -T_ss + Ta.
  const double s0 = ta + p * (r01 + r1a), s1 = ta + p * r1a;
  const double x0 = ta - s0, x1 = ta - s1;
  // x(t) = a v1 e^{l1 t} + b v2 e^{l2 t}, eigenvectors v = (a01, l - a00).
  const double v1a = a01, v1b = l1 - a00, v2a = a01, v2b = l2 - a00;
  const double d = v1a * v2b - v2a * v1b;
  const double ca = (x0 * v2b - v2a * x1) / d, cb = (v1a * x1 - x0 * v1b) / d;
  double t[2] = {ta, ta};
  const double pw[2] = {p, 0};
  for (int k = 1; k <= 300; ++k) {
    rc.step(pw, t);
    const double tt = k * h;
    const double e0 = s0 + ca * v1a * std::exp(l1 * tt) + cb * v2a * std::exp(l2 * tt);
    const double e1 = s1 + ca * v1b * std::exp(l1 * tt) + cb * v2b * std::exp(l2 * tt);
    ASSERT_NEAR(t[0], e0, 0.01 * (e0 - ta)) << "k " << k;
    ASSERT_NEAR(t[1], e1, 0.01 * (e1 - ta)) << "k " << k;
    ASSERT_NEAR(t[0], e0, 1e-7) << "k " << k;  // in fact exact to rounding
  }
}

TEST(ThermalRc, NodeWithoutPathToAmbientIsRejected) {
  ThermalRc rc(2);
  rc.set_capacity(0, 1);
  rc.set_capacity(1, 1);
  rc.connect(0, 1, 1);
  EXPECT_THROW(rc.prepare(0.1), std::invalid_argument);
}

// One stack, decoupled from the accelerator die: the steady state is the series path by hand.
HbmThermalParams one_stack() {
  HbmThermalParams p;
  p.stacks = 1;
  p.dram_layers = 2;
  p.coolant_c = 40;
  p.sink_k_per_w = 0.1;
  p.top_k_per_w = 0.5;
  p.layer_k_per_w = 0.2;
  p.interposer_k_per_w = 1e9;  // no path through the accelerator die
  p.accelerator_power_w = 0;
  p.base_die_power_fraction = 0.5;
  p.refresh_steps = {{85.0, 2.0}, {95.0, 4.0}};
  p.telemetry_period_ps = p.step_ps;
  return p;
}

TEST(HbmThermal, SteadyStateIsTheSeriesPathByHand) {
  HbmThermalParams p = one_stack();
  p.has_initial_stack_power = true;
  p.initial_stack_power_w = 20;  // 10 W in the base die, 5 W in each DRAM die
  HbmThermalCore core(p);
  const double sink = 40 + 20 * 0.1, top = sink + 20 * 0.5, lower = top + 15 * 0.2,
               base = lower + 10 * 0.2;
  EXPECT_NEAR(core.node_c(p.sink_node()), sink, 1e-6);
  EXPECT_NEAR(core.node_c(p.die_node(0, 1)), top, 1e-6);
  EXPECT_NEAR(core.node_c(p.die_node(0, 0)), lower, 1e-6);
  EXPECT_NEAR(core.node_c(p.base_node(0)), base, 1e-6);
  EXPECT_NEAR(core.stack_max_c(0), base, 1e-6);
}

TEST(HbmThermal, TrafficHeatsTheStackAndStepsAreExact) {
  // From the coolant temperature with no background, a constant traffic's heat follows the
  // network's exact response: compare with the same network advanced in one call.
  HbmThermalParams p = one_stack();
  p.device_pj_per_bit = 4;
  p.has_initial_stack_power = true;
  p.initial_stack_power_w = 0;
  HbmThermalCore core(p);
  const double rate = 500e9;  // bytes/s: 16 W at 4 pJ/bit
  double bytes = 0, busy = 0;
  const int steps = 50;
  for (int k = 1; k <= steps; ++k) {
    bytes += rate * ps_to_s(p.step_ps);
    core.step(TimePs(k) * p.step_ps, &bytes, &busy);
  }
  // The same network built by hand, integrated in one advance() from the same start.
  HbmThermalCore fresh(p);
  std::vector<double> t(p.nodes()), pw(p.nodes(), 0.0);
  for (size_t i = 0; i < t.size(); ++i)
    t[i] = fresh.node_c(i);
  const double w = rate * 8 * 4e-12;
  pw[p.base_node(0)] = 0.5 * w;
  pw[p.die_node(0, 0)] = pw[p.die_node(0, 1)] = 0.25 * w;
  ThermalRc net(p.nodes());
  net.set_capacity(p.base_node(0), p.base_die_j_per_k);
  net.set_capacity(p.die_node(0, 0), p.layer_j_per_k);
  net.set_capacity(p.die_node(0, 1), p.layer_j_per_k);
  net.set_capacity(p.accelerator_node(), p.accelerator_j_per_k);
  net.set_capacity(p.sink_node(), p.sink_j_per_k);
  net.connect(p.base_node(0), p.die_node(0, 0), p.layer_k_per_w);
  net.connect(p.base_node(0), p.accelerator_node(), p.interposer_k_per_w);
  net.connect(p.die_node(0, 0), p.die_node(0, 1), p.layer_k_per_w);
  net.connect(p.die_node(0, 1), p.sink_node(), p.top_k_per_w);
  net.connect(p.accelerator_node(), p.sink_node(), p.accelerator_k_per_w);
  net.to_ambient(p.sink_node(), p.sink_k_per_w);
  net.set_ambient(p.coolant_c);
  net.prepare(1.0);
  net.advance(steps * ps_to_s(p.step_ps), pw.data(), t.data());
  for (size_t i = 0; i < t.size(); ++i)
    EXPECT_NEAR(core.node_c(i), t[i], 1e-6) << "node " << i;
  EXPECT_GT(core.stack_max_c(0), 40.5);
}

// The initial stack power that puts the hottest die at `target` C (the series path by hand).
double power_for(const HbmThermalParams& p, double target) {
  // base = 40 + P (0.1 + 0.5) + 0.75 P 0.2 + 0.5 P 0.2 = 40 + 0.85 P
  return (target - 40) / 0.85;
}

TEST(HbmThermal, RefreshRangesAtTheirBoundaries) {
  HbmThermalParams p = one_stack();
  EXPECT_EQ(p.refresh_multiplier(85.0), 1.0);
  EXPECT_EQ(p.refresh_multiplier(85.001), 2.0);
  EXPECT_EQ(p.refresh_multiplier(95.0), 2.0);
  EXPECT_EQ(p.refresh_multiplier(95.001), 4.0);
  p.has_initial_stack_power = true;
  for (const auto& [target, mult] : std::vector<std::pair<double, double>>{
           {84.99, 1.0}, {85.01, 2.0}, {94.99, 2.0}, {95.01, 4.0}}) {
    p.initial_stack_power_w = power_for(p, target);
    HbmThermalCore core(p);
    EXPECT_NEAR(core.stack_max_c(0), target, 1e-6);
    EXPECT_EQ(core.refresh_multiplier(0), mult) << target;
  }
}

TEST(HbmThermal, ThrottleHysteresis) {
  HbmThermalParams p = one_stack();
  p.throttle = true;
  p.throttle_above_c = 95;
  p.throttle_release_c = 90;
  p.throttle_bandwidth_fraction = 0.6;
  p.has_initial_stack_power = true;
  // Just below the limit: not throttled; just above: throttled from the start (one event).
  p.initial_stack_power_w = power_for(p, 94.99);
  EXPECT_FALSE(HbmThermalCore(p).throttled(0));
  p.initial_stack_power_w = power_for(p, 95.01);
  HbmThermalCore core(p);
  ASSERT_TRUE(core.throttled(0));
  EXPECT_EQ(core.bandwidth_fraction(0), 0.6);
  EXPECT_EQ(core.throttle_events(0), 1u);
  // No heat: the stack cools; it stays throttled between 90 and 95 C and releases below 90.
  double bytes = 0, busy = 0;
  TimePs now = 0;
  bool seen_between = false;
  uint64_t throttled_steps = 0;
  while (core.throttled(0)) {
    now += p.step_ps;
    core.step(now, &bytes, &busy);
    ++throttled_steps;
    const double t = core.stack_max_c(0);
    if (t < 95 && t >= 90) {
      EXPECT_TRUE(core.throttled(0)) << t;
      seen_between = true;
    }
    ASSERT_LT(now, TimePs(1e13)) << "never released";
  }
  EXPECT_TRUE(seen_between);
  EXPECT_LT(core.stack_max_c(0), 90.0);
  EXPECT_EQ(core.bandwidth_fraction(0), 1.0);
  // Time throttled: every step until the release (states change at step ends).
  EXPECT_NEAR(core.throttled_s(0, now), throttled_steps * ps_to_s(p.step_ps), 1e-12);
  EXPECT_EQ(core.throttle_events(0), 1u);
}

TEST(HbmThermal, RefreshIntegralFollowsTheMultiplier) {
  HbmThermalParams p = one_stack();
  p.has_initial_stack_power = true;
  p.initial_stack_power_w = power_for(p, 90);  // x2 at the start, cooling below 85 later
  HbmThermalCore core(p);
  ASSERT_EQ(core.refresh_multiplier(0), 2.0);
  double bytes = 0, busy = 0, expect = 0;
  TimePs now = 0;
  for (int k = 0; k < 20000 && core.refresh_multiplier(0) == 2.0; ++k) {
    expect += 2.0 * ps_to_s(p.step_ps);
    now += p.step_ps;
    core.step(now, &bytes, &busy);
  }
  ASSERT_EQ(core.refresh_multiplier(0), 1.0);
  EXPECT_EQ(core.refresh_changes(0), 1u);
  EXPECT_NEAR(core.refresh_multiplier_stack_s(now), expect, 1e-12);
  EXPECT_NEAR(core.refresh_multiplier_stack_s(now + p.step_ps / 2), expect + ps_to_s(p.step_ps / 2),
              1e-12);
}

TEST(HbmThermal, TelemetryHonoursPeriodAndDelay) {
  HbmThermalParams p = one_stack();
  p.device_pj_per_bit = 4;
  p.telemetry_period_ps = 3 * p.step_ps;
  p.telemetry_delay_ps = 2 * p.step_ps + 1;
  HbmThermalCore core(p);
  EXPECT_FALSE(core.read(0, 0).valid);                     // the first sample is not visible yet
  EXPECT_FALSE(core.read(1, p.telemetry_delay_ps).valid);  // no such sensor
  const double initial = core.stack_max_c(0);
  EXPECT_TRUE(core.read(0, p.telemetry_delay_ps).valid);
  EXPECT_EQ(core.read(0, p.telemetry_delay_ps).celsius, initial);
  double bytes = 0, busy = 0;
  std::vector<double> at_step(13);
  at_step[0] = initial;
  const TimePs s = p.step_ps;
  for (int k = 1; k < 13; ++k) {
    bytes += 1e9;
    core.step(TimePs(k) * s, &bytes, &busy);
    at_step[k] = core.stack_max_c(0);
    // Samples every 3 steps, visible 2 steps + 1 ps later: at step k the newest visible one is
    // the last multiple of 3 at or below k - 3.
    const TemperatureReading r = core.read(0, TimePs(k) * s);
    if (k < 3) {
      EXPECT_FALSE(r.valid) << k;  // the initial sample is visible from 2 steps + 1 ps
      continue;
    }
    const int j = (k - 3) / 3 * 3;
    EXPECT_EQ(r.sampled_ps, TimePs(j) * s) << k;
    EXPECT_EQ(r.celsius, at_step[j]) << k;
  }
  EXPECT_GT(at_step[9], at_step[3]);
}

TEST(HbmThermal, KeepHistoryServesLateReaders) {
  // Samples every 3 steps, no delay: the ring keeps the two newest; a reader 7 steps late needs
  // the sample of step 3 at step 12, which only a longer history keeps.
  HbmThermalParams p = one_stack();
  p.device_pj_per_bit = 4;
  p.telemetry_period_ps = 3 * p.step_ps;
  const TimePs s = p.step_ps;
  HbmThermalCore plain(p), late(p);
  late.keep_history(7 * s);
  double bytes = 0, busy = 0, bytes2 = 0, busy2 = 0;
  double at3 = 0;
  for (int k = 1; k <= 12; ++k) {
    bytes += 1e9;
    bytes2 += 1e9;
    plain.step(TimePs(k) * s, &bytes, &busy);
    late.step(TimePs(k) * s, &bytes2, &busy2);
    if (k == 3) at3 = late.stack_max_c(0);
  }
  EXPECT_FALSE(plain.read(0, 5 * s).valid);
  const TemperatureReading r = late.read(0, 5 * s);
  ASSERT_TRUE(r.valid);
  EXPECT_EQ(r.sampled_ps, 3 * s);
  EXPECT_EQ(r.celsius, at3);
  // The newest reading is the same either way.
  EXPECT_EQ(late.read(0, 12 * s).celsius, plain.read(0, 12 * s).celsius);
}

config::HbmFast valid_hbm() {
  config::HbmFast c;
  c.set_stack_count(2);
  c.set_refresh_overhead_fraction(0.12);
  c.mutable_thermal();
  return c;
}

TEST(HbmThermal, BadFieldsAreReportedWithTheirPath) {
  struct Case {
    const char* path;
    std::function<void(config::HbmThermal&)> set;
  };
  const std::vector<Case> cases = {
      {"thermal.coolant_c", [](auto& t) { t.set_coolant_c(250); }},
      {"thermal.sink_k_per_w", [](auto& t) { t.set_sink_k_per_w(0); }},
      {"thermal.sink_j_per_k", [](auto& t) { t.set_sink_j_per_k(-1); }},
      {"thermal.dram_layers", [](auto& t) { t.set_dram_layers(0); }},
      {"thermal.layer_j_per_k", [](auto& t) { t.set_layer_j_per_k(INFINITY); }},
      {"thermal.layer_k_per_w", [](auto& t) { t.set_layer_k_per_w(NAN); }},
      {"thermal.base_die_j_per_k", [](auto& t) { t.set_base_die_j_per_k(0); }},
      {"thermal.top_k_per_w", [](auto& t) { t.set_top_k_per_w(-0.3); }},
      {"thermal.interposer_k_per_w", [](auto& t) { t.set_interposer_k_per_w(0); }},
      {"thermal.accelerator_j_per_k", [](auto& t) { t.set_accelerator_j_per_k(0); }},
      {"thermal.accelerator_k_per_w", [](auto& t) { t.set_accelerator_k_per_w(0); }},
      {"thermal.accelerator_power_w", [](auto& t) { t.set_accelerator_power_w(-5); }},
      {"thermal.base_die_power_fraction", [](auto& t) { t.set_base_die_power_fraction(1.5); }},
      {"thermal.initial_stack_power_w", [](auto& t) { t.set_initial_stack_power_w(NAN); }},
      {"thermal.step_ps", [](auto& t) { t.set_step_ps(10); }},
      {"thermal.throttle_above_c", [](auto& t) { t.set_throttle_above_c(-100); }},
      {"thermal.throttle_release_c",
       [](auto& t) {
         t.set_throttle_above_c(95);
         t.set_throttle_release_c(95);
       }},
      {"thermal.throttle_release_c", [](auto& t) { t.set_throttle_release_c(80); }},
      {"thermal.throttle_bandwidth_fraction",
       [](auto& t) {
         t.set_throttle_above_c(95);
         t.set_throttle_bandwidth_fraction(0);
       }},
      {"thermal.telemetry_period_ps", [](auto& t) { t.set_telemetry_period_ps(150'000'000); }},
      {"thermal.telemetry_delay_ps", [](auto& t) { t.set_telemetry_delay_ps(uint64_t{1} << 60); }},
  };
  {
    config::HbmFast c = valid_hbm();
    std::vector<ConfigIssue> issues;
    Validator v(issues);
    HbmThermalParams::validate(c, v, true);
    EXPECT_TRUE(issues.empty()) << issues[0].path;
  }
  for (const auto& k : cases) {
    config::HbmFast c = valid_hbm();
    k.set(*c.mutable_thermal());
    std::vector<ConfigIssue> issues;
    Validator v(issues);
    HbmThermalParams::validate(c, v, true);
    ASSERT_FALSE(issues.empty()) << k.path;
    EXPECT_EQ(issues[0].path, k.path);
  }
  // The fast level needs refresh's share of the bandwidth with a thermal model.
  config::HbmFast c = valid_hbm();
  c.clear_refresh_overhead_fraction();
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  HbmThermalParams::validate(c, v, true);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "refresh_overhead_fraction");
}

}  // namespace
}  // namespace tiersim
