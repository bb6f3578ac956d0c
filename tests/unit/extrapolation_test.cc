// Steady-state fast-forward's interpolation (models/run/extrapolation.h) by hand: a skipped step
// between two simulated ones gets the linear interpolation of their durations and of their own
// increments of every counter and vector; formulas (derived when sampled) are left alone.
#include <gtest/gtest.h>

#include <memory>

#include "models/core/component.h"
#include "models/core/stats.h"
#include "models/run/extrapolation.h"
#include "tests/support/model_presets.h"
#include "workloads/decode.h"
#include "workloads/fast_forward.h"

namespace tiersim {
namespace {

TEST(StepExtrapolation, InterpolatesDurationsCountersAndVectorsByHand) {
  StatsRegistry stats;
  Counter& bytes = stats.counter("m", "bytes", "bytes moved", "bytes");
  Vector& per = stats.vector("m", "per_stack", "bytes per stack", "bytes", {"s0", "s1"});
  int formula_calls = 0;
  auto& derived = stats.vector_formula("m", "derived", "a derived total", "bytes", {"a", "b"},
                                       [&](double* out) {
                                         ++formula_calls;
                                         out[0] = out[1] = 7;
                                       });
  derived.set_sampling("cumulative");

  TransformerShape shape = test::load_model("llama2_7b");
  shape.layers = 1;
  DecodeOptions o;
  o.batch = 1;
  o.context = 16;
  o.steps = 4;
  // Every 2 after one warm-up step: steps 0, 1 and 3 simulated, step 2 skipped.
  FastForwardWorkload ff(std::make_unique<DecodeWorkload>(shape, o), 2, 1);
  ObjectTable t;
  ff.register_objects(t);
  std::vector<std::unique_ptr<Component>> components;
  StepExtrapolation x(components, stats, ff);

  // Per simulated step: its duration and its own increments.
  struct Step {
    TimePs ps;
    uint64_t bytes;
    double s0, s1;
  };
  const Step steps[] = {{100, 10, 1, 0}, {200, 20, 2, 4}, {400, 40, 4, 8}};
  std::vector<TokenRecord> records;
  TimePs now = 0;
  size_t k = 0;
  Op op;
  while (ff.next(op)) {
    if (!op.last_of_step) continue;
    bytes.inc(steps[k].bytes);
    per.add(0, steps[k].s0);
    per.add(1, steps[k].s1);
    records.push_back(TokenRecord{op.step.value(), now, now + steps[k].ps, 1, 1});
    now += steps[k].ps;
    x.on_step_end(records, now);
    ++k;
  }
  ASSERT_EQ(k, 3u);
  const Extrapolation r = x.finish(records, now);
  EXPECT_EQ(r.simulated_steps, 3u);
  EXPECT_EQ(r.extrapolated_steps, 1u);
  EXPECT_EQ(r.extra_ps, 300u);  // halfway between 200 and 400
  ASSERT_EQ(r.records.size(), 4u);
  const TimePs ends[] = {100, 300, 600, 1000};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(r.records[i].step, i);
    EXPECT_EQ(r.records[i].end_ps, ends[i]);
    EXPECT_EQ(r.records[i].start_ps, i ? ends[i - 1] : 0);
    EXPECT_EQ(r.records[i].extrapolated, i == 2);
  }
  // Step 2's own increments: halfway between step 1's and step 3's.
  EXPECT_EQ(bytes.value(), 10u + 20 + 40 + 30);
  EXPECT_DOUBLE_EQ(per.value(0), 1 + 2 + 4 + 3.0);
  EXPECT_DOUBLE_EQ(per.value(1), 0 + 4 + 8 + 6.0);
  // The formula is neither read nor extrapolated.
  EXPECT_EQ(formula_calls, 0);
  EXPECT_THROW(x.finish(records, now), std::logic_error);
}

}  // namespace
}  // namespace tiersim
