// Thermal-safe admission's state machine (accelerators/policies/thermal_gate.h), plain C++:
// every transition at its threshold, the minimum dwell times, the prediction by hand, the
// permissions of each state and the time accounting.
#include "accelerators/policies/thermal_gate.h"

#include <gtest/gtest.h>

namespace tiersim {
namespace {

constexpr TimePs kMs = 1'000'000'000;
using S = ThermalGateState;

ThermalGateParams reactive() {
  ThermalGateParams p;  // 85 / 90 / 82, COOL and RECOVER held 200 ms
  return p;
}

// A reading sampled at `t` and seen at `t` (no staleness).
S see(ThermalGate& g, TimePs t, double c) {
  return g.observe(t, true, c, t);
}

TEST(ThermalGate, ReactiveTransitionsAtTheirThresholds) {
  ThermalGate g(reactive());
  EXPECT_EQ(see(g, 1 * kMs, 84.999), S::kNormal);
  EXPECT_EQ(see(g, 2 * kMs, 85.0), S::kDrain);  // at drain_above_c
  EXPECT_EQ(see(g, 3 * kMs, 82.0), S::kDrain);  // hysteresis: not below recover_below_c
  EXPECT_EQ(see(g, 4 * kMs, 89.999), S::kDrain);
  EXPECT_EQ(see(g, 5 * kMs, 90.0), S::kCool);  // at cool_above_c
  // COOL is held 200 ms whatever the reading.
  EXPECT_EQ(see(g, 6 * kMs, 70.0), S::kCool);
  EXPECT_EQ(see(g, 204 * kMs, 70.0), S::kCool);
  EXPECT_EQ(see(g, 205 * kMs, 81.999), S::kRecover);  // 200 ms in COOL, below 82
  EXPECT_EQ(see(g, 300 * kMs, 80.0), S::kRecover);
  EXPECT_EQ(see(g, 405 * kMs, 80.0), S::kNormal);  // RECOVER held 200 ms
  // NORMAL straight to COOL; after its dwell, between the thresholds: DRAIN.
  EXPECT_EQ(see(g, 406 * kMs, 95.0), S::kCool);
  EXPECT_EQ(see(g, 606 * kMs, 86.0), S::kDrain);
  EXPECT_EQ(see(g, 607 * kMs, 81.0), S::kRecover);  // DRAIN below 82
  EXPECT_EQ(see(g, 608 * kMs, 85.0), S::kDrain);    // RECOVER back up at 85
  EXPECT_EQ(g.entries(S::kCool), 2u);
  EXPECT_EQ(g.entries(S::kDrain), 3u);
  EXPECT_EQ(g.decisions(), 14u);
}

TEST(ThermalGate, PermissionsByState) {
  ThermalGate g(reactive());
  EXPECT_TRUE(g.admit_new() && g.run_prefill());
  EXPECT_EQ(g.idle_fraction(), 0);
  see(g, 1, 86);
  EXPECT_FALSE(g.admit_new() || g.run_prefill());  // DRAIN: decode only
  EXPECT_EQ(g.idle_fraction(), 0);
  see(g, 2, 91);
  EXPECT_FALSE(g.admit_new() || g.run_prefill());
  EXPECT_EQ(g.idle_fraction(), 0.25);  // COOL: backpressure
  see(g, 300 * kMs, 70);
  EXPECT_EQ(g.state(), S::kRecover);
  EXPECT_FALSE(g.admit_new());
  EXPECT_TRUE(g.run_prefill());

  ThermalGateParams p = reactive();
  p.backpressure_only = true;
  ThermalGate b(p);
  see(b, 1, 91);
  EXPECT_EQ(b.state(), S::kCool);
  EXPECT_TRUE(b.admit_new() && b.run_prefill());
  EXPECT_EQ(b.idle_fraction(), 0.25);
}

TEST(ThermalGate, PredictionExtrapolatesFromTheSampleTime) {
  ThermalGateParams p = reactive();
  p.predictive = true;  // horizon 100 ms
  ThermalGate g(p);
  EXPECT_EQ(g.observe(5 * kMs, true, 80.0, 0), S::kNormal);
  EXPECT_EQ(g.predicted_c(), 80.0);  // one reading: no slope yet
  // 80 C at 0, 84 C at 100 ms: 0.04 C/ms. Seen at 110 ms: 84 + 0.04 x (10 + 100) = 88.4 C.
  EXPECT_EQ(g.observe(110 * kMs, true, 84.0, 100 * kMs), S::kDrain);
  EXPECT_NEAR(g.predicted_c(), 88.4, 1e-9);
  EXPECT_NEAR(g.signal_c(), 88.4, 1e-9);
  // The same reading again (no new sample) extrapolates further with time.
  g.observe(140 * kMs, true, 84.0, 100 * kMs);
  EXPECT_NEAR(g.predicted_c(), 89.6, 1e-9);
  // A falling trend never lowers the signal below the reading.
  g.observe(300 * kMs, true, 83.0, 200 * kMs);
  EXPECT_LT(g.predicted_c(), 83.0);
  EXPECT_EQ(g.signal_c(), 83.0);
  // Reactive with the same readings stays NORMAL.
  ThermalGate r(reactive());
  r.observe(5 * kMs, true, 80.0, 0);
  EXPECT_EQ(r.observe(110 * kMs, true, 84.0, 100 * kMs), S::kNormal);
}

TEST(ThermalGate, InvalidReadingsKeepTheStateAndTimeAddsUp) {
  ThermalGate g(reactive());
  EXPECT_EQ(g.observe(10 * kMs, false, 200.0, 0), S::kNormal);
  see(g, 20 * kMs, 86);  // DRAIN from 20 ms
  EXPECT_EQ(g.observe(30 * kMs, false, 0.0, 0), S::kDrain);
  see(g, 50 * kMs, 91);  // COOL from 50 ms
  const TimePs end = 120 * kMs;
  EXPECT_NEAR(g.seconds_in(S::kNormal, end), 0.020, 1e-12);
  EXPECT_NEAR(g.seconds_in(S::kDrain, end), 0.030, 1e-12);
  EXPECT_NEAR(g.seconds_in(S::kCool, end), 0.070, 1e-12);
  EXPECT_EQ(g.seconds_in(S::kRecover, end), 0.0);
}

}  // namespace
}  // namespace tiersim
