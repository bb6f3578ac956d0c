#include "models/core/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace tiersim {
namespace {

TEST(Stats, CounterScalarVector) {
  StatsRegistry r;
  Counter& c = r.counter("hbm0", "bytes", "bytes read", "bytes");
  Scalar& s = r.scalar("hbm0", "energy", "energy", "J");
  Vector& v = r.vector("hbm0", "per_stack", "per stack", "bytes", {"a", "b"});
  c.inc(5);
  c.inc();
  s.add(1.5);
  s.add(2.0);
  v.add(0, 3);
  v.add(1, 4);
  EXPECT_EQ(c.value(), 6u);
  EXPECT_DOUBLE_EQ(s.value(), 3.5);
  EXPECT_DOUBLE_EQ(v.total(), 7);
  EXPECT_EQ(c.name(), "hbm0.bytes");
  EXPECT_EQ(c.unit(), "bytes");
  EXPECT_EQ(c.description(), "bytes read");
  EXPECT_EQ(r.find("hbm0.per_stack"), &v);
  EXPECT_EQ(r.find("nope"), nullptr);
}

TEST(Stats, DuplicateNameIsAProgrammingError) {
  StatsRegistry r;
  r.counter("x", "y", "d", "u");
  EXPECT_THROW(r.counter("x", "y", "d", "u"), std::logic_error);
}

TEST(Stats, HistogramBucketsAndOpenEnds) {
  StatsRegistry r;
  Histogram& h = r.histogram("g", "h", "d", "ns", {0, 10, 20, 40});
  for (double v : {-5.0, 0.0, 9.9, 10.0, 25.0, 39.9, 40.0, 1000.0})
    h.record(v);
  // [<10): -5, 0, 9.9 ; [10,20): 10 ; [20,inf): 25, 39.9, 40, 1000
  EXPECT_EQ(h.buckets(), (std::vector<uint64_t>{3, 1, 4}));
  EXPECT_EQ(h.count(), 8u);
  EXPECT_DOUBLE_EQ(h.min(), -5);
  EXPECT_DOUBLE_EQ(h.max(), 1000);
  EXPECT_DOUBLE_EQ(h.mean(), (-5 + 0 + 9.9 + 10 + 25 + 39.9 + 40 + 1000) / 8);
  EXPECT_EQ(Histogram::log2_edges(1, 8), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(Histogram::linear_edges(0, 1, 4), (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
}

TEST(Stats, HistogramBucketsAreTheSearchsWhateverCameBefore) {
  // Values in runs and at random, on and around the edges (repeated ones too), below and above
  // them, NaN: every bucket as a plain search over the edges gives it.
  StatsRegistry r;
  const std::vector<double> edges{0, 10, 10, 20, 40, 80};
  Histogram& h = r.histogram("g", "h", "d", "ns", edges);
  std::vector<uint64_t> want(edges.size() - 1, 0);
  uint64_t x = 7;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    double v = double((x >> 40) % 1000) / 10.0 - 5.0;
    if ((x >> 20) % 7 == 0) v = edges[(x >> 24) % edges.size()];
    if ((x >> 20) % 97 == 1) v = std::nan("");
    for (int k = 0; k < int((x >> 30) % 4); ++k) {
      h.record(v);
      // A linear search for the first edge > v: the bucket before it (the first below every
      // edge, the last past them all; NaN is past them all, as no edge is greater).
      size_t first_greater = 0;
      while (first_greater < edges.size() && !(v < edges[first_greater]))
        ++first_greater;
      const size_t b = first_greater == 0 ? 0 : first_greater - 1;
      ++want[std::min(b, want.size() - 1)];
    }
  }
  EXPECT_EQ(h.buckets(), want);
}

TEST(Stats, TimeAverageIntegratesPiecewiseConstantSignal) {
  StatsRegistry r;
  TimeAverage& t = r.time_average("q", "occupancy", "d", "entries");
  t.set(2, 0);    // 2 over [0, 100)
  t.set(6, 100);  // 6 over [100, 400)
  EXPECT_DOUBLE_EQ(t.average(400), (2.0 * 100 + 6.0 * 300) / 400);
  EXPECT_DOUBLE_EQ(t.average(100), 2.0);
}

TEST(Stats, FormulaAndSampling) {
  StatsRegistry r;
  Counter& c = r.counter("a", "n", "d", "count");
  r.formula("a", "rate", "d", "1/ps",
            [&](TimePs now) { return now ? double(c.value()) / now : 0; });
  Vector& v = r.vector("a", "v", "d", "u", {"x", "y", "z"});
  c.inc(10);
  v.add(2, 1);
  r.sample(5);
  c.inc(10);
  r.sample(10);
  ASSERT_EQ(r.sample_times_ps(), (std::vector<TimePs>{5, 10}));
  EXPECT_EQ(r.series(0), (std::vector<double>{10, 20}));
  EXPECT_EQ(r.series(1), (std::vector<double>{2, 2}));
  EXPECT_EQ(r.series(2), (std::vector<double>{0, 0, 1, 0, 0, 1}));
  // A stat registered late gets zero rows for the samples it missed.
  r.counter("b", "late", "d", "count");
  EXPECT_EQ(r.series(3), (std::vector<double>{0, 0}));
}

}  // namespace
}  // namespace tiersim
