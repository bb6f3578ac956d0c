// Step prediction of serving passes (models/run/step_prediction.h): the local linear fit
// reproduces linear functions of the features exactly, follows a smooth curve closely, and
// falls back to the neighbours' mean where no slope can be fitted; the predictor's schedule
// (warm-up, every_steps, out-of-range passes) and its bookkeeping of predicted increments.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include <cmath>
#include <memory>
#include <random>

#include "models/core/component.h"
#include "models/core/stats.h"
#include "models/run/step_prediction.h"

namespace tiersim {
namespace {

double fit_at(const std::vector<StepFeatures>& train, const std::vector<double>& y,
              const StepFeatures& x, size_t k) {
  std::vector<std::pair<size_t, double>> h;
  local_linear_weights(train, x, k, h);
  double s = 0;
  for (const auto& [i, w] : h)
    s += w * y[i];
  return s;
}

StepFeatures random_features(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  StepFeatures f;
  f.x[0] = std::floor(1 + 300 * u(rng));
  f.x[1] = std::floor(1 + 200 * u(rng));
  f.x[2] = 1e5 * u(rng);
  f.x[3] = std::floor(10 + 5000 * u(rng));
  f.x[4] = 1e7 * u(rng);
  return f;
}

double linear(const StepFeatures& f) {
  return 3e6 + 2e4 * f.x[0] - 5e3 * f.x[1] + 40 * f.x[2] + 300 * f.x[3] + 0.01 * f.x[4];
}

TEST(LocalLinearWeights, ReproducesALinearFunction) {
  std::mt19937_64 rng(7);
  std::vector<StepFeatures> train;
  std::vector<double> y;
  for (int i = 0; i < 200; ++i) {
    train.push_back(random_features(rng));
    y.push_back(linear(train.back()));
  }
  for (int t = 0; t < 50; ++t) {
    const StepFeatures x = random_features(rng);
    EXPECT_NEAR(fit_at(train, y, x, 24), linear(x), 1e-6 * linear(x));
  }
}

TEST(LocalLinearWeights, CollinearFeaturesStillGiveTheValue) {
  // Decode-only passes: one sampled position per token, attention work equal to the context.
  std::vector<StepFeatures> train;
  std::vector<double> y;
  for (int n = 1; n <= 64; ++n) {
    StepFeatures f;
    f.x[0] = f.x[1] = n;
    f.x[2] = f.x[4] = 700.0 * n + 13 * (n % 5);
    f.x[3] = 44 * n;
    train.push_back(f);
    y.push_back(linear(f));
  }
  StepFeatures x;
  x.x[0] = x.x[1] = 30.5;
  x.x[2] = x.x[4] = 700.0 * 30.5 + 20;
  x.x[3] = 44 * 30.5;
  EXPECT_NEAR(fit_at(train, y, x, 24), linear(x), 1e-6 * linear(x));
}

TEST(LocalLinearWeights, FollowsACurveCloselyAndFallsBackToTheMean) {
  // A roofline-like kink: time = max(memory, compute(rows)).
  std::vector<StepFeatures> train;
  std::vector<double> y;
  auto curve = [](double rows) { return std::max(1e7, 5e4 * rows) + 20 * rows * rows; };
  for (int n = 1; n <= 512; n += 3) {
    StepFeatures f;
    f.x[0] = n;
    train.push_back(f);
    y.push_back(curve(n));
  }
  for (double rows : {17.0, 150.5, 199.0, 333.3, 480.0}) {
    StepFeatures x;
    x.x[0] = rows;
    EXPECT_NEAR(fit_at(train, y, x, 8), curve(rows), 0.01 * curve(rows)) << rows;
  }
  // Every training point alike: no slope, the mean.
  std::vector<StepFeatures> same(5);
  std::vector<double> ys = {1, 2, 3, 4, 5};
  StepFeatures x;
  x.x[0] = 1;
  EXPECT_DOUBLE_EQ(fit_at(same, ys, x, 5), 3.0);
}

TEST(ServingStepPrediction, SchedulesAndBooksPredictedPasses) {
  StatsRegistry stats;
  Counter& bytes = stats.counter("m", "bytes", "bytes moved", "bytes");
  Counter& ticks = stats.counter("m", "ticks", "a count only waits make", "count");
  std::vector<std::unique_ptr<Component>> components;
  ServingStepPrediction::Params p;
  p.every_steps = 4;
  p.warmup_steps = 8;
  p.neighbours = 8;
  p.radius = 10;  // the box and every_steps alone (nearness: below)
  ServingStepPrediction sp(components, stats, p);
  // A pass of n tokens takes 1000 + 10 n ps and moves 100 n bytes. A predicted pass is a wait of
  // its predicted length, during which something moves 7 bytes and ticks once (booked by the
  // wait itself, then replaced by the fit).
  TimePs now = 0;
  std::vector<TokenRecord> records;
  uint32_t step = 0;
  uint64_t waits = 0;
  auto run = [&](double n) {
    StepFeatures f;
    f.x[0] = f.x[1] = n;
    TimePs d = 0;
    const bool simulated = sp.simulate(step, f, now, &d);
    if (simulated) {
      d = 1000 + TimePs(10 * n);
      bytes.inc(uint64_t(100 * n));
    } else {
      EXPECT_EQ(d, 1000 + TimePs(10 * n)) << n;
      bytes.inc(7);
      ticks.inc();
      ++waits;
    }
    records.push_back(TokenRecord{step, now, now + d, uint32_t(n), uint32_t(n)});
    sp.on_step_end(records.back());
    now += d;
    ++step;
    return simulated;
  };
  for (int i = 0; i < 8; ++i)
    EXPECT_TRUE(run(10 + i));  // the warm-up
  EXPECT_TRUE(run(100));       // out of the box
  EXPECT_FALSE(run(12));
  EXPECT_FALSE(run(13));
  EXPECT_FALSE(run(14));
  EXPECT_TRUE(run(15));  // the fourth since the last simulated one: checked
  EXPECT_FALSE(run(50));
  uint64_t simulated_bytes = 0;
  for (int n : {10, 11, 12, 13, 14, 15, 16, 17, 100, 15})
    simulated_bytes += 100 * n;
  const Extrapolation x = sp.finish(records, now);
  EXPECT_EQ(x.simulated_steps, 10u);
  EXPECT_EQ(x.extrapolated_steps, 4u);
  // The fits replace the waits' own bytes; a count only the waits made stays as counted.
  EXPECT_EQ(bytes.value(), simulated_bytes + 100 * (12 + 13 + 14 + 50));
  EXPECT_EQ(ticks.value(), waits);
  // The predicted passes took their time on the simulated clock: the records as the run made
  // them, the predicted ones marked, nothing added after the run.
  EXPECT_EQ(x.extra_ps, 0u);
  ASSERT_EQ(x.records.size(), 14u);
  for (size_t i = 0; i < x.records.size(); ++i) {
    EXPECT_EQ(x.records[i].step, i);
    EXPECT_EQ(x.records[i].start_ps, records[i].start_ps);
    EXPECT_EQ(x.records[i].end_ps, records[i].end_ps);
    EXPECT_EQ(x.records[i].extrapolated, i == 9 || i == 10 || i == 11 || i == 13) << i;
  }
  double checked = -1, error = -1;
  for (const auto& item : x.items) {
    if (item.name == "fast_forward_checked_steps") checked = item.value;
    if (item.name == "fast_forward_step_error_abs_mean_pct") error = item.value;
  }
  EXPECT_EQ(checked, 1);
  EXPECT_NEAR(error, 0, 1e-6);
}

TEST(ServingStepPrediction, SimulatesPassesWithFewSimulatedOnesNearThem) {
  StatsRegistry stats;
  std::vector<std::unique_ptr<Component>> components;
  auto make = [&](double radius) {
    ServingStepPrediction::Params p;
    p.every_steps = 1000;
    p.warmup_steps = 40;
    p.radius = radius;
    return std::make_unique<ServingStepPrediction>(components, stats, p);
  };
  for (double radius : {0.3, 0.001}) {
    auto sp = make(radius);
    uint32_t step = 0;
    TimePs now = 0;
    auto pass = [&](double n) {
      StepFeatures f;
      f.x[0] = f.x[1] = n;
      TimePs d = 0;
      const bool simulated = sp->simulate(step, f, now, &d);
      if (simulated) d = 1000 + TimePs(10 * n);
      const TokenRecord rec{step, now, now + d, uint32_t(n), uint32_t(n)};
      sp->on_step_end(rec);
      now = rec.end_ps;
      ++step;
      return simulated;
    };
    for (int i = 0; i < 40; ++i)
      EXPECT_TRUE(pass(10 + i % 8));  // five passes each of 10..17 tokens
    // 13 tokens: five simulated passes alike; the 8th nearest is one of 14 tokens, at 0.098
    // (log(15 / 14) in two features).
    EXPECT_EQ(pass(13), radius == 0.001) << radius;
    // Between 13 and 14: none within 0.001.
    EXPECT_EQ(pass(13.5), radius == 0.001) << radius;
    // Those two were inside the box: their predictions were measured (a linear cost: exact).
    const Extrapolation x = sp->finish({}, now);
    std::map<std::string, double> items;
    for (const auto& i : x.items)
      items[i.name] = i.value;
    EXPECT_EQ(items.at("fast_forward_far_checked_steps"), radius == 0.001 ? 2 : 0) << radius;
    EXPECT_EQ(items.count("fast_forward_far_step_error_abs_mean_pct"), radius == 0.001 ? 1u : 0u);
    if (radius == 0.001) {
      EXPECT_NEAR(items.at("fast_forward_far_step_error_abs_mean_pct"), 0, 1e-6);
    }
  }
}

}  // namespace
}  // namespace tiersim
