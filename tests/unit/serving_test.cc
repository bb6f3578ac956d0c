// The serving scheduler, paged KV pool and request generators, driven without SystemC: a fake
// clock gives every step a fixed duration.
#include "workloads/serving.h"
#include "workloads/serving_front_end.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include "models/config/loader.h"
#include "tests/support/model_presets.h"
#include "tests/support/paths.h"

namespace tiersim {
namespace {

TransformerShape small_model() {
  TransformerShape s = test::load_model("llama2_7b");
  s.layers = 2;
  return s;
}

struct StepLog {
  TimePs start = 0;
  std::vector<Op> ops;
  std::vector<std::vector<Operand>> operands;  // copied when each op was issued
  uint32_t tokens = 0;
};

// Runs the workload with every step taking `step_ps` and idle ops their delay.
std::vector<StepLog> drive(ServingWorkload& w, TimePs step_ps, size_t max_steps = 10000) {
  ObjectTable t;
  w.register_objects(t);
  std::vector<StepLog> log;
  TimePs now = 0;
  bool begin = true;
  StepLog cur;
  Op op;
  while (log.size() < max_steps) {
    if (begin) {
      w.begin_step(now);
      begin = false;
      cur = StepLog{now, {}, {}, 0};
    }
    if (!w.next(op)) break;
    if (op.kind == OpKind::kIdle || op.kind == OpKind::kHold) {
      now += op.delay_ps;
      begin = true;
      continue;
    }
    cur.ops.push_back(op);
    cur.operands.emplace_back();
    for (uint16_t i = 0; i < op.operand_count; ++i)
      cur.operands.back().push_back(op.operand(i));
    if (op.last_of_step) {
      now += step_ps;
      w.end_step(now);
      cur.tokens = w.tokens_per_step();
      log.push_back(cur);
      begin = true;
    }
  }
  return log;
}

ServingOptions options(std::vector<ServingRequest> reqs) {
  ServingOptions o;
  o.requests = std::move(reqs);
  o.max_sequences = 8;
  o.max_step_tokens = 64;
  o.kv_block_tokens = 16;
  o.kv_cache_bytes = 1ull << 30;
  o.preemption = config::RECOMPUTE;
  return o;
}

const Op* find(const StepLog& s, OpKind k, uint32_t layer = 0) {
  for (const auto& op : s.ops) {
    if (op.kind == k && (!op.layer.valid() || op.layer.value() == layer)) return &op;
  }
  return nullptr;
}

const std::vector<Operand>& operands_of(const StepLog& s, OpKind k) {
  for (size_t i = 0; i < s.ops.size(); ++i) {
    if (s.ops[i].kind == k) return s.operands[i];
  }
  static const std::vector<Operand> none;
  return none;
}

// One request of 100 prompt tokens and 5 output tokens, budget 64 tokens per step: two prefill
// chunks (64, then 36 with the first token), then four decode steps.
TEST(Serving, ChunkedPrefillThenDecode) {
  const TransformerShape s = small_model();
  ServingWorkload w(s, options({{0, 100, 5}}));
  const auto log = drive(w, 10'000'000'000);  // 10 ms per step
  ASSERT_EQ(log.size(), 6u);
  const uint64_t tok = s.kv_bytes_per_token_per_layer();
  // Step 0: 64 prompt tokens, nothing sampled (no LM head rows).
  const Op* qkv0 = find(log[0], OpKind::kQkvProj);
  EXPECT_EQ(qkv0->rows, 64u);
  EXPECT_EQ(log[0].tokens, 0u);
  EXPECT_EQ(find(log[0], OpKind::kLmHead)->rows, 0u);
  // Step 1: 36 tokens over the 64 cached (read once), the first output token.
  uint64_t read = 0, written = 0;
  for (const Operand& o : operands_of(log[1], OpKind::kAttention))
    (o.access == Access::kRead ? read : written) += o.bytes;
  EXPECT_EQ(read, 64 * tok);
  EXPECT_EQ(written, 36 * tok);
  EXPECT_EQ(log[1].tokens, 1u);
  // Decode steps: one token each, over 100, 101, 102, 103 cached tokens.
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(operands_of(log[2 + k], OpKind::kAttention)[0].bytes, (100u + k) * tok) << k;
    EXPECT_EQ(find(log[2 + k], OpKind::kQkvProj)->rows, 1u);
  }
  const auto& r = w.records()[0];
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.generated, 5u);
  EXPECT_EQ(r.first_token_ps, 20'000'000'000u);  // end of step 1
  EXPECT_EQ(r.finish_ps, 60'000'000'000u);
  EXPECT_EQ(w.kv().free_blocks(), w.kv().blocks());  // all released
}

// A request arriving while another decodes joins the running batch: its prefill chunk and the
// other's decode token share a step. An idle gap waits exactly for the next arrival.
TEST(Serving, ContinuousBatchingAndIdleUntilArrival) {
  const TransformerShape s = small_model();
  ServingWorkload w(s, options({{5'000'000'000, 16, 6}, {32'000'000'000, 20, 2}}));
  const auto log = drive(w, 10'000'000'000);
  // Request 0 arrives at 5 ms: idle until then; steps at 5, 15, 25, 35, 45, 55 ms.
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[0].start, 5'000'000'000u);
  // At 35 ms request 1 (arrived at 32 ms) prefills 20 tokens next to request 0's decode token.
  const Op* qkv = find(log[3], OpKind::kQkvProj);
  EXPECT_EQ(log[3].start, 35'000'000'000u);
  EXPECT_EQ(qkv->rows, 21u);
  EXPECT_EQ(find(log[3], OpKind::kLmHead)->rows, 2u);  // both sample a token
  EXPECT_TRUE(w.records()[0].done && w.records()[1].done);
  EXPECT_EQ(w.records()[1].first_token_ps, 45'000'000'000u);
}

// A gate whose decisions the test scripts; it logs the steps it is told about.
struct ScriptedGate : AdmissionGate {
  std::function<AdmissionDecision(TimePs)> fn;
  std::vector<std::pair<TimePs, TimePs>> steps;
  bool step_ended = false;
  AdmissionDecision decide(TimePs now) override { return fn(now); }
  void step_done(TimePs start, TimePs end) override {
    steps.emplace_back(start, end);
    step_ended = true;
  }
};

double summary_value(const ServingWorkload& w, const std::string& name) {
  std::vector<SummaryItem> items;
  w.summarize(items);
  for (const auto& i : items) {
    if (i.name == name) return i.value;
  }
  return NAN;
}

// Admission held back: the progress guarantee still admits the oldest request when nothing
// runs; the second waits (4 deferred steps) until the first completes.
TEST(Serving, GateDefersAdmissionButKeepsOneSequenceRunning) {
  const TransformerShape s = small_model();
  ServingWorkload w(s, options({{0, 16, 4}, {0, 16, 2}}));
  ScriptedGate gate;
  gate.fn = [](TimePs) {
    AdmissionDecision d;
    d.admit_new = false;
    d.run_prefill = false;
    d.min_sequences = 1;
    d.recheck_ps = 1;
    return d;
  };
  ASSERT_TRUE(w.set_admission_gate(&gate));
  const auto log = drive(w, 10'000'000'000);
  ASSERT_EQ(log.size(), 6u);
  EXPECT_EQ(w.records()[0].finish_ps, 40'000'000'000u);        // steps 0-3
  EXPECT_EQ(w.records()[1].first_token_ps, 50'000'000'000u);   // admitted at 40 ms
  EXPECT_EQ(summary_value(w, "admission_deferred_steps"), 4);  // steps 0-3 left request 1 out
  EXPECT_EQ(gate.steps.size(), 6u);
}

// Backpressure: after each step the gate holds the next one 5 ms; the scheduler idles exactly
// that long, and holds nothing once no request is left.
TEST(Serving, GateHoldIdlesTheScheduler) {
  const TransformerShape s = small_model();
  ServingWorkload w(s, options({{0, 16, 3}}));
  ScriptedGate gate;
  gate.fn = [&gate](TimePs now) {
    AdmissionDecision d;
    if (gate.step_ended) d.hold_until_ps = now + 5'000'000'000;
    gate.step_ended = false;
    return d;
  };
  w.set_admission_gate(&gate);
  const auto log = drive(w, 10'000'000'000);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[1].start, 15'000'000'000u);
  EXPECT_EQ(log[2].start, 30'000'000'000u);
  EXPECT_EQ(w.records()[0].finish_ps, 40'000'000'000u);
  EXPECT_NEAR(summary_value(w, "admission_held_s"), 0.010, 1e-15);
  ASSERT_EQ(gate.steps.size(), 3u);
  EXPECT_EQ(gate.steps[1], std::make_pair(TimePs(15'000'000'000), TimePs(25'000'000'000)));
}

// Prefill paused: a request mid-prefill keeps its blocks and waits while the other decodes; it
// resumes as soon as it would otherwise leave the step empty.
TEST(Serving, GatePausesPrefillWhileOthersDecode) {
  const TransformerShape s = small_model();
  ServingWorkload w(s, options({{0, 16, 6}, {5'000'000'000, 100, 2}}));
  ScriptedGate gate;
  gate.fn = [](TimePs now) {
    AdmissionDecision d;
    const bool drain = now >= 15'000'000'000;
    d.admit_new = !drain;
    d.run_prefill = !drain;
    d.min_sequences = 1;
    d.recheck_ps = now + 1;
    return d;
  };
  w.set_admission_gate(&gate);
  const auto log = drive(w, 10'000'000'000);
  // Step 1 (10 ms) admits request 1 and runs 63 of its 100 prompt tokens next to request 0's
  // decode; steps 2-5 decode request 0 only; step 6 (60 ms) finishes request 1's prefill.
  ASSERT_EQ(log.size(), 8u);
  EXPECT_EQ(find(log[1], OpKind::kQkvProj)->rows, 64u);
  for (int k = 2; k <= 5; ++k)
    EXPECT_EQ(find(log[k], OpKind::kQkvProj)->rows, 1u) << k;
  EXPECT_EQ(find(log[6], OpKind::kQkvProj)->rows, 37u);
  EXPECT_EQ(w.records()[0].finish_ps, 60'000'000'000u);
  EXPECT_EQ(w.records()[1].first_token_ps, 70'000'000'000u);
  EXPECT_EQ(summary_value(w, "admission_prefill_paused_steps"), 4);
  EXPECT_EQ(summary_value(w, "admission_deferred_steps"), 0);
}

// A pool of 8 blocks (128 tokens) and two requests of 60 + 40 tokens: the newer one is
// preempted when the older needs blocks; with RECOMPUTE it prefills its prompt and generated
// tokens again; with SWAP its KV leaves over the host link and comes back.
TEST(Serving, PreemptionByRecomputeAndSwap) {
  const TransformerShape s = small_model();
  for (auto mode : {config::RECOMPUTE, config::SWAP}) {
    ServingOptions o = options({{0, 60, 40}, {0, 60, 40}});
    o.kv_cache_bytes = 8 * 16 * s.kv_bytes_per_token();
    o.preemption = mode;
    ServingWorkload w(s, o);
    const auto log = drive(w, 1'000'000'000);
    ASSERT_TRUE(w.records()[0].done && w.records()[1].done) << mode;
    EXPECT_GE(w.preemptions(), 1u);
    EXPECT_EQ(w.records()[0].preemptions, 0u);  // the older request is never the victim
    EXPECT_EQ(w.records()[0].generated, 40u);
    EXPECT_EQ(w.records()[1].generated, 40u);
    uint64_t swap_out = 0, swap_in = 0;
    for (const auto& st : log) {
      for (const auto& op : st.ops) {
        if (op.kind == OpKind::kSwapOut) swap_out += op.host_bytes;
        if (op.kind == OpKind::kSwapIn) swap_in += op.host_bytes;
      }
    }
    if (mode == config::SWAP) {
      EXPECT_GT(swap_out, 0u);
      EXPECT_EQ(swap_in, swap_out);  // every byte that left comes back
      EXPECT_EQ(swap_out % s.kv_bytes_per_token(), 0u);
    } else {
      EXPECT_EQ(swap_out, 0u);
    }
    EXPECT_EQ(w.kv().free_blocks(), 8u);
  }
}

TEST(Serving, PagedKvMapsTokensToBlocks) {
  PagedKv kv(100, 16, 8, 2);
  ObjectTable t;
  kv.register_layer(t, 0);
  ASSERT_TRUE(kv.reserve(0, 20));  // blocks 0, 1
  ASSERT_TRUE(kv.reserve(1, 16));  // block 2
  ASSERT_TRUE(kv.reserve(0, 40));  // block 3 (2 is taken): two runs
  EXPECT_EQ(kv.runs(0), 2u);
  EXPECT_EQ(kv.free_blocks(), 4u);
  std::vector<Operand> ops;
  kv.read(0, 0, 10, 40, ops);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].offset_bytes, 10u * 100);  // tokens 10..31 in blocks 0-1
  EXPECT_EQ(ops[0].bytes, 22u * 100);
  EXPECT_EQ(ops[1].offset_bytes, 3u * 16 * 100);  // tokens 32..39 in block 3
  EXPECT_EQ(ops[1].bytes, 8u * 100);
  EXPECT_FALSE(kv.reserve(1, 16 * 6));  // needs 5 more, 4 free: nothing taken
  EXPECT_EQ(kv.free_blocks(), 4u);
  kv.release(0);
  EXPECT_EQ(kv.free_blocks(), 7u);
}

// Poisson arrivals: mean gap 1/rate within 2% over 20,000 requests; lengths within bounds with
// the configured central values.
TEST(Serving, PoissonArrivalsAndLengths) {
  config::ServingScenario sc;
  sc.mutable_poisson()->set_rate_per_s(50);
  sc.mutable_poisson()->set_requests(20000);
  sc.mutable_input_tokens()->mutable_uniform()->set_min(10);
  sc.mutable_input_tokens()->mutable_uniform()->set_max(30);
  auto* ln = sc.mutable_output_tokens()->mutable_lognormal();
  ln->set_median(100);
  ln->set_sigma(0.5);
  ln->set_min(1);
  ln->set_max(1000);
  const auto reqs = drawn_requests(sc, 4);
  ASSERT_EQ(reqs.size(), 20000u);
  EXPECT_NEAR(ps_to_s(reqs.back().arrival_ps) / 20000, 0.02, 0.02 * 0.02);
  std::vector<uint32_t> out;
  double in_sum = 0;
  for (const auto& r : reqs) {
    EXPECT_GE(r.input_tokens, 10u);
    EXPECT_LE(r.input_tokens, 30u);
    in_sum += r.input_tokens;
    out.push_back(r.output_tokens);
  }
  EXPECT_NEAR(in_sum / reqs.size(), 20.0, 0.2);
  std::sort(out.begin(), out.end());
  EXPECT_NEAR(out[out.size() / 2], 100.0, 3.0);
  EXPECT_EQ(drawn_requests(sc, 4)[123].arrival_ps, reqs[123].arrival_ps);  // deterministic
}

// A dataset shape given by percentiles (configs/datasets/azure_conv_2023.textproto): over
// 20,000 draws each point's q matches the draws' CDF at its tokens and the mean lies within 2% of
// the shape's own (the points' trapezoids: 1,203.355 and 220.98 tokens).
TEST(Serving, QuantileLengthsFollowTheirPoints) {
  const LoadedConfig c = load_config(
      {test::preset("hardware/h100_sxm.textproto"), test::preset("models/llama3_8b.textproto"),
       test::preset("studies/serving_llama3_8b.textproto"),
       test::preset("datasets/azure_conv_2023.textproto")},
      {"workload.serving.poisson.requests=20000"});
  const auto& sc = c.config.workload().serving();
  const auto reqs = drawn_requests(sc, 7);
  ASSERT_EQ(reqs.size(), 20000u);
  auto check = [&](const config::QuantileLength& shape, auto field, double mean) {
    std::vector<double> v;
    for (const auto& r : reqs)
      v.push_back(double(r.*field));
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v)
      sum += x;
    EXPECT_NEAR(sum / v.size(), mean, 0.02 * mean);
    // Each point's q lies within the draws' CDF just below and at its tokens, +-0.012 (over
    // three binomial standard deviations at 20,000 draws).
    for (const auto& p : shape.points()) {
      const double below =
          double(std::lower_bound(v.begin(), v.end(), double(p.tokens())) - v.begin()) / v.size();
      const double at =
          double(std::upper_bound(v.begin(), v.end(), double(p.tokens())) - v.begin()) / v.size();
      EXPECT_GE(p.q(), below - 0.012) << "q " << p.q();
      EXPECT_LE(p.q(), at + 0.012) << "q " << p.q();
    }
    // The CDF test says nothing at q 0 and 1: every draw lies between the end points, and the
    // draws reach into the outer 0.001 of q at both ends (missed with probability
    // 0.999^20000, about 2e-9, per end).
    const auto& pts = shape.points();
    const int n = pts.size();
    EXPECT_GE(v.front(), double(pts[0].tokens()));
    EXPECT_LE(v.back(), double(pts[n - 1].tokens()));
    EXPECT_LE(v.front(),
              pts[0].tokens() +
                  0.001 / (pts[1].q() - pts[0].q()) * (double(pts[1].tokens()) - pts[0].tokens()) +
                  1);
    EXPECT_GE(v.back(), pts[n - 1].tokens() -
                            0.001 / (pts[n - 1].q() - pts[n - 2].q()) *
                                (double(pts[n - 1].tokens()) - pts[n - 2].tokens()) -
                            1);
  };
  check(sc.input_tokens().quantiles(), &ServingRequest::input_tokens, 1203.355);
  check(sc.output_tokens().quantiles(), &ServingRequest::output_tokens, 220.98);
}

// Bad percentile points are refused with the point's path.
TEST(Serving, QuantileLengthErrors) {
  const std::vector<std::string> files = {test::preset("hardware/h100_sxm.textproto"),
                                          test::preset("models/llama3_8b.textproto"),
                                          test::preset("studies/serving_llama3_8b.textproto")};
  auto error = [&](const std::string& points) {
    try {
      load_config(files, {"workload.serving.output_tokens={quantiles {" + points + "}}"});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_THAT(error("points {q: 0 tokens: 5}"),
              testing::HasSubstr("output_tokens.quantiles.points: needs at least two points"));
  EXPECT_THAT(error("points {q: 0.1 tokens: 5} points {q: 1 tokens: 9}"),
              testing::HasSubstr("points[0].q: the first point must be q 0"));
  EXPECT_THAT(error("points {q: 0 tokens: 5} points {q: 0.5 tokens: 9}"),
              testing::HasSubstr("points[1].q: the last point must be q 1"));
  EXPECT_THAT(error("points {q: 0 tokens: 5} points {q: 0 tokens: 6} points {q: 1 tokens: 9}"),
              testing::HasSubstr("points[1].q: must rise from point to point"));
  EXPECT_THAT(error("points {q: 0 tokens: 5} points {q: 1 tokens: 4}"),
              testing::HasSubstr("points[1].tokens: below the previous point's"));
}

TEST(Serving, ArrivalTraceErrorsNameTheLine) {
  const std::string path = ::testing::TempDir() + "/arrivals.csv";
  std::ofstream(path) << "arrival_ms,input_tokens,output_tokens\n0,10,5\n2.5,20,x\n3,10,5\n"
                         "1,10,5\n";
  std::vector<ConfigIssue> issues;
  Validator v(issues, "workload.serving");
  EXPECT_FALSE(load_arrival_trace(path, v).has_value());
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].where.line, 3);
  EXPECT_EQ(issues[0].path, "workload.serving.arrival_trace");
  EXPECT_EQ(issues[1].where.line, 5);
  EXPECT_NE(issues[1].message.find("non-decreasing"), std::string::npos);
  std::ofstream(path) << "arrival_ms,input_tokens,output_tokens\n0,10,5\n1.5,20,7\n";
  issues.clear();
  const auto ok = load_arrival_trace(path, v);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ((*ok)[1].arrival_ps, 1'500'000'000u);
  EXPECT_EQ((*ok)[1].output_tokens, 7u);
}

}  // namespace
}  // namespace tiersim

// ---------------------------------------------------------------------------------------------
// Data-parallel front end

namespace tiersim {
namespace {

std::vector<ServingRequest> arrivals_at(std::initializer_list<TimePs> times) {
  std::vector<ServingRequest> out;
  for (TimePs t : times)
    out.push_back(ServingRequest{t, 10, 4});
  return out;
}

TEST(ServingFrontEnd, RoundRobinRoutesInTurnAtEachArrival) {
  ServingFrontEnd fe(arrivals_at({0, 5, 5, 9, 20}), 0, 3, config::REPLICA_ROUTING_UNSPECIFIED, 1);
  std::vector<int> rings(3, 0);
  for (uint32_t d = 0; d < 3; ++d)
    fe.set_wake(d, [&rings, d] { ++rings[d]; });
  fe.route_due(4);  // only request 0 has arrived
  EXPECT_EQ(fe.replica_of(0), 0u);
  EXPECT_EQ(fe.replica_of(1), ServingFrontEnd::kUnrouted);
  EXPECT_EQ(fe.next_arrival_ps(), 5u);
  fe.route_due(9);
  fe.route_due(9);  // nothing new: routes nothing twice
  EXPECT_EQ(fe.replica_of(1), 1u);
  EXPECT_EQ(fe.replica_of(2), 2u);
  EXPECT_EQ(fe.replica_of(3), 0u);
  EXPECT_EQ(rings, (std::vector<int>{2, 1, 1}));
  uint32_t r = 0;
  ASSERT_TRUE(fe.take(0, 9, &r));
  EXPECT_EQ(r, 0u);
  ASSERT_TRUE(fe.take(0, 9, &r));
  EXPECT_EQ(r, 3u);
  EXPECT_FALSE(fe.take(0, 9, &r));
  EXPECT_FALSE(fe.all_routed());
  fe.route_due(20);  // the last: every replica is rung once more (nothing will come)
  EXPECT_TRUE(fe.all_routed());
  EXPECT_EQ(rings, (std::vector<int>{3, 3, 2}));
  EXPECT_EQ(fe.next_arrival_ps(), ServingFrontEnd::kNotSent);
}

TEST(ServingFrontEnd, LeastRequestsAndLeastKvUsageFollowTheLoad) {
  ServingFrontEnd lr(arrivals_at({0, 1, 2, 3, 4}), 0, 2, config::ROUTE_LEAST_REQUESTS, 1);
  lr.route_due(0);  // tie: the lowest replica
  lr.route_due(1);  // replica 0 has one outstanding
  EXPECT_EQ(lr.replica_of(0), 0u);
  EXPECT_EQ(lr.replica_of(1), 1u);
  lr.completed(1, 2);  // replica 1 is free again
  lr.route_due(3);     // requests 2 and 3: replica 1 (0 against 1), then the tie to replica 0
  EXPECT_EQ(lr.replica_of(2), 1u);
  EXPECT_EQ(lr.replica_of(3), 0u);
  EXPECT_EQ(lr.outstanding(0), 2u);
  EXPECT_EQ(lr.outstanding(1), 1u);

  ServingFrontEnd kv(arrivals_at({0, 1, 2}), 0, 3, config::ROUTE_LEAST_KV_USAGE, 1);
  kv.note_kv_usage(0, 0, 0.5);
  kv.note_kv_usage(1, 0, 0.2);
  kv.note_kv_usage(2, 0, 0.2);
  kv.route_due(0);  // 1 and 2 tie on KV and requests: the lower
  EXPECT_EQ(kv.replica_of(0), 1u);
  kv.route_due(1);  // 1 and 2 tie on KV; 2 has fewer requests
  EXPECT_EQ(kv.replica_of(1), 2u);
  kv.note_kv_usage(0, 1, 0.1);
  kv.route_due(2);
  EXPECT_EQ(kv.replica_of(2), 0u);
}

TEST(ServingFrontEnd, RandomPoliciesAreSeededAndPowerOfTwoTakesTheLessLoaded) {
  auto routes = [](config::ReplicaRouting p, uint64_t seed) {
    std::vector<TimePs> t;
    for (int i = 0; i < 400; ++i)
      t.push_back(TimePs(i));
    std::vector<ServingRequest> reqs;
    for (TimePs x : t)
      reqs.push_back(ServingRequest{x, 1, 1});
    ServingFrontEnd fe(reqs, 0, 4, p, seed);
    fe.route_due(400);
    std::vector<uint32_t> out;
    for (uint32_t r = 0; r < 400; ++r)
      out.push_back(fe.replica_of(r));
    return std::make_pair(out, fe);
  };
  const auto [a, fa] = routes(config::ROUTE_RANDOM, 7);
  const auto [b, fb] = routes(config::ROUTE_RANDOM, 7);
  const auto [c, fc] = routes(config::ROUTE_RANDOM, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (uint32_t d = 0; d < 4; ++d)
    EXPECT_NEAR(fa.routed_to(d), 100, 35) << d;  // uniform (about 5 sd)
  // Nothing completes: power of two keeps the outstanding counts within a few of each other,
  // far tighter than random.
  const auto [p, fp] = routes(config::ROUTE_POWER_OF_TWO, 7);
  uint32_t lo = UINT32_MAX, hi = 0;
  for (uint32_t d = 0; d < 4; ++d) {
    lo = std::min(lo, fp.outstanding(d));
    hi = std::max(hi, fp.outstanding(d));
  }
  EXPECT_LE(hi - lo, 6u);
  EXPECT_EQ(fp.outstanding(0) + fp.outstanding(1) + fp.outstanding(2) + fp.outstanding(3), 400u);
}

TEST(ServingFrontEnd, ClosedLoopSendsAtEachCompletion) {
  ServingFrontEnd fe(arrivals_at({0, 0, 0, 0, 0}), 2, 2, config::ROUTE_LEAST_REQUESTS, 1);
  EXPECT_EQ(fe.arrival_ps(2), ServingFrontEnd::kNotSent);
  fe.route_due(0);  // the two clients' first requests
  EXPECT_EQ(fe.replica_of(0), 0u);
  EXPECT_EQ(fe.replica_of(1), 1u);
  EXPECT_EQ(fe.next_arrival_ps(), ServingFrontEnd::kNotSent);  // waits for a completion
  fe.completed(1, 700);  // replica 1's client sends request 2 now, routed at once
  EXPECT_EQ(fe.arrival_ps(2), 700u);
  EXPECT_EQ(fe.replica_of(2), 1u);
  EXPECT_THROW(fe.completed(3, 800), std::logic_error);  // never routed
}

TEST(ServingFrontEnd, LatencyDelaysDeliveryAndStaleLoadsLag) {
  // A 100 ps front end: routed at the arrival, delivered (and rung) 100 ps later.
  ServingFrontEnd fe(arrivals_at({0, 30}), 0, 2, config::ROUTE_ROUND_ROBIN, 1, 100);
  std::vector<TimePs> asked;
  int rings = 0;
  fe.set_schedule([&](TimePs at) { asked.push_back(at); });
  fe.set_wake(0, [&] { ++rings; });
  fe.route_due(30);
  EXPECT_EQ(asked, (std::vector<TimePs>{130, 130}));  // routed at 30 (both due by then)
  uint32_t r = 0;
  EXPECT_TRUE(fe.pending(0));
  EXPECT_FALSE(fe.delivered(0, 129));
  EXPECT_FALSE(fe.take(0, 129, &r));
  EXPECT_EQ(fe.next_delivery_ps(50), 130u);
  const int before = rings;  // (the last routing rang every replica once: nothing more comes)
  fe.deliver_due(130);
  EXPECT_EQ(rings, before + 1);
  ASSERT_TRUE(fe.take(0, 130, &r));
  EXPECT_EQ(r, 0u);
  EXPECT_EQ(fe.next_delivery_ps(130), ServingFrontEnd::kNotSent);

  // KV use refreshed every 1000 ps: a route at 500 sees the refresh at 0 (both empty: the
  // fewer outstanding, then the lower), one at 1500 the refresh at 1000.
  ServingFrontEnd kv(arrivals_at({500, 1500, 1600}), 0, 2, config::ROUTE_LEAST_KV_USAGE, 1, 0,
                     1000);
  kv.note_kv_usage(0, 10, 0.1);
  kv.note_kv_usage(1, 10, 0.9);
  kv.route_due(500);
  EXPECT_EQ(kv.replica_of(0), 0u);  // as if both were empty (0 outstanding each: the lower)
  kv.note_kv_usage(0, 1200, 0.95);  // after the refresh at 1000: not seen before 2000
  kv.route_due(1500);
  EXPECT_EQ(kv.replica_of(1), 0u);  // 0.1 against 0.9, as of 1000
  EXPECT_DOUBLE_EQ(kv.seen_kv_usage(0, 1999), 0.1);
  EXPECT_DOUBLE_EQ(kv.seen_kv_usage(0, 2000), 0.95);
  // A note at a refresh instant is not that refresh's (it takes what came strictly before).
  kv.note_kv_usage(1, 3000, 0.05);
  EXPECT_DOUBLE_EQ(kv.seen_kv_usage(1, 3000), 0.9);
  EXPECT_DOUBLE_EQ(kv.seen_kv_usage(1, 4000), 0.05);
}

// Disaggregated: arrivals go to the prefill replica; a hand-off picks a decode replica (round
// robin over 1 and 2) and delivers there after the 50 ps connector; the decode replica pulls
// the KV when it admits the request (here 1,000 ps per byte), after any earlier transfer out of
// the same prefill replica or into the same decode replica; the pull's landing frees the
// prefill replica's copy and rings both. Decode replicas wait while requests are still being
// prefilled and are rung once none is.
TEST(ServingFrontEnd, DisaggregatedHandOffsArePulledOneAtATimePerSide) {
  ServingFrontEnd fe(arrivals_at({0, 0, 0}), 0, 3, config::ROUTE_ROUND_ROBIN, 1);
  fe.set_disaggregation(1, config::ROUTE_ROUND_ROBIN, 50);
  std::vector<std::pair<uint32_t, uint32_t>> sent;  // (from, to)
  fe.set_transfer([&](uint32_t from, uint32_t to, uint64_t bytes) {
    sent.push_back({from, to});
    return ServingFrontEnd::Transfer{bytes * 1000, 0.5, bytes * 2};
  });
  std::vector<int> rings(3, 0);
  for (uint32_t d = 0; d < 3; ++d)
    fe.set_wake(d, [&rings, d] { ++rings[d]; });
  std::vector<TimePs> asked;
  fe.set_schedule([&](TimePs at) { asked.push_back(at); });
  fe.route_due(0);
  for (uint32_t r = 0; r < 3; ++r)
    EXPECT_EQ(fe.replica_of(r), 0u);
  EXPECT_TRUE(fe.more_may_come(1));   // requests are still at the prefill replica
  EXPECT_FALSE(fe.more_may_come(0));  // every arrival is routed
  uint32_t r = 0;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(fe.take(0, 0, &r));
  // Request 0 hands off 10 bytes at 100 (to replica 1), request 1 three bytes at 100 (to 2),
  // request 2 one byte at 200 (to 1): delivered at 150, 150 and 250.
  fe.hand_off(0, 100, 10);
  fe.hand_off(1, 100, 3);
  fe.hand_off(2, 200, 1);
  EXPECT_TRUE(sent.empty());  // nothing moves before a decode replica pulls
  EXPECT_EQ(asked, (std::vector<TimePs>{150, 150, 250}));
  EXPECT_EQ(fe.replica_of(0), 1u);
  EXPECT_EQ(fe.prefill_replica_of(0), 0u);
  EXPECT_TRUE(fe.prefilled(2));
  EXPECT_EQ(fe.kv_release_ps(0), ServingFrontEnd::kNotSent);
  // Nothing is left at the prefill replica: the decode replicas were rung.
  EXPECT_FALSE(fe.more_may_come(1));
  EXPECT_EQ(rings[1], 2);  // (once when every arrival was routed, once now)
  EXPECT_FALSE(fe.take(1, 149, &r));
  ASSERT_TRUE(fe.take(1, 150, &r));
  EXPECT_EQ(r, 0u);
  EXPECT_EQ(fe.pull(0, 150), 10150u);  // 10 bytes from 150
  ASSERT_TRUE(fe.take(2, 150, &r));
  EXPECT_EQ(r, 1u);
  EXPECT_EQ(fe.pull(1, 160), 13150u);  // behind request 0's, out of the same prefill replica
  ASSERT_TRUE(fe.take(1, 250, &r));
  EXPECT_EQ(r, 2u);
  EXPECT_EQ(fe.pull(2, 300), 14150u);  // behind both: the same source, the same destination
  EXPECT_EQ(sent, (std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}, {0, 2}, {0, 1}}));
  EXPECT_EQ(fe.transfer_ps(1), 3000u);
  EXPECT_EQ(fe.handoff_ps(1), 13050u);  // from its hand-off at 100
  EXPECT_EQ(fe.kv_release_ps(1), 13150u);
  EXPECT_EQ(fe.transfers(), 3u);
  EXPECT_EQ(fe.transfer_bytes(), 28u);
  EXPECT_DOUBLE_EQ(fe.transfer_energy_j(), 1.5);
  EXPECT_EQ(fe.next_delivery_ps(300), 10150u);
  // Request 0's landing frees the prefill copy and lets replica 1 run it: both rung.
  EXPECT_FALSE(fe.release_due(0, 10149));
  EXPECT_FALSE(fe.pull_due(1, 10149));
  const std::vector<int> before = rings;
  fe.deliver_due(10150);
  EXPECT_EQ(rings[0], before[0] + 1);
  EXPECT_EQ(rings[1], before[1] + 1);
  EXPECT_EQ(rings[2], before[2]);
  EXPECT_TRUE(fe.pull_due(1, 10150));
  fe.released(1, 10150);
  EXPECT_FALSE(fe.pull_due(1, 10150));
  fe.released(0, 13150);
  EXPECT_FALSE(fe.release_due(0, 13150));
  EXPECT_TRUE(fe.release_due(0, 14150));
  fe.completed(0, 20000);
  EXPECT_EQ(fe.outstanding(1), 1u);  // request 2
  EXPECT_EQ(fe.outstanding(0), 0u);
}

// A transfer takes the earliest time both its sides are free, not the end of everything queued
// on either side: with prefill replicas 0 and 1 and decode replicas 2 and 3, request 1's pull
// (1 to 2) waits for request 0's (0 to 2) into replica 2, but request 3's (1 to 3), asked after
// it, starts at once in the free time out of replica 1.
TEST(ServingFrontEnd, DisaggregatedPullsFillTheFreeTimeOfBothSides) {
  ServingFrontEnd g(arrivals_at({0, 0, 0, 0}), 0, 4, config::ROUTE_ROUND_ROBIN, 1);
  g.set_disaggregation(2, config::ROUTE_ROUND_ROBIN, 0);
  g.set_transfer([](uint32_t, uint32_t, uint64_t bytes) {
    return ServingFrontEnd::Transfer{bytes * 1000, 0, bytes};
  });
  g.route_due(0);        // requests 0..3 to replicas 0, 1, 0, 1
  g.hand_off(0, 0, 10);  // from 0, to 2
  g.hand_off(2, 0, 1);   // from 0, to 3
  g.hand_off(1, 0, 1);   // from 1, to 2
  g.hand_off(3, 0, 2);   // from 1, to 3
  EXPECT_EQ(g.replica_of(1), 2u);
  EXPECT_EQ(g.replica_of(3), 3u);
  EXPECT_EQ(g.pull(0, 0), 10000u);  // 0 -> 2: [0, 10,000)
  EXPECT_EQ(g.pull(1, 0), 11000u);  // 1 -> 2 waits for replica 2: [10,000, 11,000)
  EXPECT_EQ(g.pull(3, 0), 2000u);   // 1 -> 3: both sides free before 10,000: [0, 2,000)
  EXPECT_EQ(g.pull(2, 0), 11000u);  // 0 -> 3: out of 0 busy to 10,000, into 3 to 2,000
  EXPECT_EQ(g.transfer_ps(3), 2000u);
  EXPECT_EQ(g.handoff_ps(2), 11000u);
}

}  // namespace
}  // namespace tiersim
