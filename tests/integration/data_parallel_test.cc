// Data-parallel serving replicas (workload.parallelism.data_parallel) behind a front end, through
// the binary: round-robin replicas serve exactly as separate servers given their share of the
// arrivals would (one rank and TP2 replicas); a load-aware policy routes around a slow replica;
// a closed loop keeps its clients busy across replicas; disaggregated prefill and decode hand
// each request's KV over the pod's fabric (timed by hand); bad configs exit 2 with the field
// path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/result_summary.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

using test::summary_of;

// Twelve requests at whole milliseconds (arrival_ms, input, output).
struct TraceRow {
  int arrival_ms, input, output;
};
const TraceRow kTrace[] = {{0, 300, 20},  {4, 900, 12},  {9, 150, 30},  {15, 600, 18},
                           {22, 80, 25},  {30, 1200, 9}, {31, 400, 16}, {45, 700, 22},
                           {52, 256, 14}, {60, 512, 28}, {61, 96, 11},  {75, 1024, 15}};

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tiersim_dp_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A trace of kTrace's rows i with keep(i); its path.
  template <typename Keep>
  std::string trace(const std::string& name, Keep keep) {
    const std::string path = (dir_ / (name + ".csv")).string();
    std::ofstream f(path);
    f << "arrival_ms,input_tokens,output_tokens\n";
    for (size_t i = 0; i < std::size(kTrace); ++i)
      if (keep(i))
        f << kTrace[i].arrival_ms << "," << kTrace[i].input << "," << kTrace[i].output << "\n";
    return path;
  }
  // Llama-3-8B serving on H100s with `serving` (the scenario's arrivals) and `sets`.
  std::string run(const std::string& name, const std::string& arrivals, const std::string& sets,
                  bool pod) {
    const std::string out = (dir_ / (name + ".h5")).string();
    const std::string cmd =
        test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
        (pod ? test::preset("pods/hgx_h100_nvswitch.textproto") + " " : std::string()) +
        test::preset("models/llama3_8b.textproto") + " " +
        test::preset("studies/serving_llama3_8b.textproto") +
        " --set 'workload.serving=!clear' --set 'workload.serving={" + arrivals +
        " max_sequences: 8 max_step_tokens: 512 kv_cache_bytes: 4000000000 preemption: "
        "RECOMPUTE}' --quiet" +
        sets + " --out " + out;
    const auto r = test::run_cmd(cmd);
    EXPECT_EQ(r.code, 0) << cmd << "\n" << r.err;
    return out;
  }
  fs::path dir_;
  const std::string every_ = " --set workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK";
};

// Round robin sends request i to replica i mod 2; the replicas share nothing, so each serves its
// requests exactly as a server of its own given only those arrivals: every request's first token
// and finish to the picosecond, with one-rank replicas and with TP2 replicas (the replica's
// collectives timed on the pod as one TP2 rank's are).
TEST_F(DataParallel, RoundRobinReplicasServeAsSeparateServers) {
  const std::string all = trace("all", [](size_t) { return true; });
  for (const int tp : {1, 2}) {
    const std::string tps = " --set workload.parallelism.tensor_parallel=" + std::to_string(tp);
    const std::string tag = "tp" + std::to_string(tp);
    const std::string dp = run(tag + "_dp2", "arrival_trace: \"" + all + "\"",
                               tps + every_ + " --set workload.parallelism.data_parallel=2", true);
    ResultReader h(dp);
    const Table req = h.read_table("/workload/requests");
    const auto s = summary_of(dp);
    EXPECT_EQ(s.at("requests_completed"), 12);
    EXPECT_EQ(s.at("replicas"), 2);
    EXPECT_EQ(s.at("replica0_requests_routed"), 6);
    EXPECT_EQ(s.at("replica1_requests_routed"), 6);
    for (int d = 0; d < 2; ++d) {
      const std::string part =
          trace(tag + "_part" + std::to_string(d), [d](size_t i) { return int(i % 2) == d; });
      // The separate server: one rank (with TP2, timed on the same pod's collectives).
      const std::string alone =
          run(tag + "_alone" + std::to_string(d), "arrival_trace: \"" + part + "\"", tps, tp > 1);
      const Table own = ResultReader(alone).read_table("/workload/requests");
      ASSERT_EQ(own.rows(), 6u);
      for (size_t j = 0; j < 6; ++j) {
        const size_t i = 2 * j + d;
        EXPECT_EQ(req.find("replica")->u64[i], uint64_t(d));
        EXPECT_EQ(req.find("arrival_ps")->u64[i], own.find("arrival_ps")->u64[j]);
        EXPECT_EQ(req.find("first_token_ps")->u64[i], own.find("first_token_ps")->u64[j])
            << "tp " << tp << " request " << i;
        EXPECT_EQ(req.find("finish_ps")->u64[i], own.find("finish_ps")->u64[j])
            << "tp " << tp << " request " << i;
      }
      const auto alone_s = summary_of(alone);
      const std::string p = "replica" + std::to_string(d) + "_";
      EXPECT_DOUBLE_EQ(s.at(p + "ttft_ms_p99"), alone_s.at("ttft_ms_p99"));
      EXPECT_DOUBLE_EQ(s.at(p + "request_tpot_ms_mean"), alone_s.at("request_tpot_ms_mean"));
      EXPECT_DOUBLE_EQ(s.at(p + "output_tokens"), alone_s.at("tokens_generated"));
    }
    // The headline's step figures are replica 0's own steps.
    EXPECT_DOUBLE_EQ(s.at("tpot_ms_mean"),
                     summary_of((dir_ / (tag + "_alone0.h5")).string()).at("tpot_ms_mean"));
  }
}

// The same fault on both ranks of a TP2 replica (named apart) is the replica's: the HBM of nodes
// 2 and 3 (replica 1) away for 30 us delays replica 1's requests, not replica 0's.
TEST_F(DataParallel, AFaultOnEveryRankOfAReplicaIsTheReplicas) {
  const std::string all = trace("all", [](size_t) { return true; });
  const std::string tp2 = every_ +
                          " --set workload.parallelism.data_parallel=2"
                          " --set workload.parallelism.tensor_parallel=2";
  const std::string window = " start_ps: 20000000000 duration_ps: 30000000";
  const auto healthy = summary_of(run("healthy", "arrival_trace: \"" + all + "\"", tp2, true));
  const auto faulty = summary_of(run("faulty", "arrival_trace: \"" + all + "\"",
                                     tp2 + " --set 'system={faults {name: \"n2\"" + window +
                                         " device_offline: \"node[2].hbm\"} faults {name: \"n3\"" +
                                         window + " device_offline: \"node[3].hbm\"}}'",
                                     true));
  ASSERT_FALSE(faulty.empty());
  EXPECT_EQ(faulty.at("replica0_ttft_ms_p99"), healthy.at("replica0_ttft_ms_p99"));
  EXPECT_EQ(faulty.at("replica0_request_tpot_ms_mean"),
            healthy.at("replica0_request_tpot_ms_mean"));
  // (At 20 ms replica 1 is prefilling request 3, which arrived at 15 ms: its first token is late.)
  EXPECT_GT(faulty.at("replica1_ttft_ms_p99"), healthy.at("replica1_ttft_ms_p99"));
}

// A front end taking 5 ms per request: each replica serves exactly as a separate server given
// its requests 5 ms later, while every request's TTFT counts from its arrival at the front end.
TEST_F(DataParallel, RouterLatencyDelaysEachRequest) {
  const std::string all = trace("all", [](size_t) { return true; });
  const std::string dp = run("late", "arrival_trace: \"" + all + "\"",
                             every_ + " --set workload.parallelism.data_parallel=2" +
                                 " --set workload.serving.router_latency_ps=5000000000",
                             true);
  const Table req = ResultReader(dp).read_table("/workload/requests");
  for (int d = 0; d < 2; ++d) {
    // Replica d's requests, 5 ms later.
    const std::string path = (dir_ / ("late" + std::to_string(d) + ".csv")).string();
    {
      std::ofstream f(path);
      f << "arrival_ms,input_tokens,output_tokens\n";
      for (size_t i = d; i < std::size(kTrace); i += 2)
        f << kTrace[i].arrival_ms + 5 << "," << kTrace[i].input << "," << kTrace[i].output << "\n";
    }
    const Table own = ResultReader(run("alone_late" + std::to_string(d),
                                       "arrival_trace: \"" + path + "\"", "", false))
                          .read_table("/workload/requests");
    for (size_t j = 0; j < 6; ++j) {
      const size_t i = 2 * j + d;
      EXPECT_EQ(req.find("arrival_ps")->u64[i] + 5000000000ULL, own.find("arrival_ps")->u64[j]);
      EXPECT_EQ(req.find("first_token_ps")->u64[i], own.find("first_token_ps")->u64[j]) << i;
      EXPECT_EQ(req.find("finish_ps")->u64[i], own.find("finish_ps")->u64[j]) << i;
    }
  }
}

// Node 1's HBM at 0.3 of its peak: round robin still gives it half the requests, and they queue
// there; least-requests routing sees its outstanding requests and sends it fewer, which cuts the
// pod's tail latency. With two replicas, power of two choices compares both, as least requests
// does (ties to the first drawn).
TEST_F(DataParallel, LoadAwareRoutingAvoidsASlowReplica) {
  const std::string arrivals =
      "poisson {rate_per_s: 60 requests: 48} input_tokens {uniform {min: 200 max: 1200}} "
      "output_tokens {fixed: 48}";
  const std::string slow =
      every_ +
      " --set workload.parallelism.data_parallel=2"
      " --set 'system.pod.node_overrides[+]=name: \"slow1\" nodes: 1 system { components { name: "
      "\"hbm\" hbm { efficiency_fraction: 0.3 } } }'";
  const auto rr = summary_of(run("rr", arrivals, slow, true));
  const auto lr = summary_of(run(
      "lr", arrivals, slow + " --set workload.serving.replica_routing=ROUTE_LEAST_REQUESTS", true));
  const auto p2 = summary_of(run(
      "p2", arrivals, slow + " --set workload.serving.replica_routing=ROUTE_POWER_OF_TWO", true));
  EXPECT_EQ(rr.at("replica0_requests_routed"), 24);
  EXPECT_EQ(rr.at("replica1_requests_routed"), 24);
  EXPECT_LT(lr.at("replica1_requests_routed"), 22);
  EXPECT_EQ(lr.at("replica0_requests_routed") + lr.at("replica1_requests_routed"), 48);
  EXPECT_EQ(lr.at("requests_completed"), 48);
  EXPECT_LT(lr.at("e2e_ms_p99"), rr.at("e2e_ms_p99"));
  EXPECT_LT(lr.at("ttft_ms_p99"), rr.at("ttft_ms_p99"));
  EXPECT_EQ(p2.at("requests_completed"), 48);
  EXPECT_LT(p2.at("replica1_requests_routed"), 22);
  // Least KV usage also sends the slow replica fewer; random, whatever the load.
  const auto kv = summary_of(run(
      "kv", arrivals, slow + " --set workload.serving.replica_routing=ROUTE_LEAST_KV_USAGE", true));
  const auto rnd = summary_of(
      run("rnd", arrivals, slow + " --set workload.serving.replica_routing=ROUTE_RANDOM", true));
  EXPECT_LT(kv.at("replica1_requests_routed"), 22);
  EXPECT_EQ(kv.at("requests_completed"), 48);
  EXPECT_EQ(rnd.at("requests_completed"), 48);
  EXPECT_EQ(rnd.at("replica0_requests_routed") + rnd.at("replica1_requests_routed"), 48);
  // KV use refreshed every 100 s: the front end never sees a replica's use (all 0 since the
  // refresh at 0), so least KV usage falls to its tie-break, the fewer outstanding requests, and
  // routes exactly as least requests does.
  const auto stale = summary_of(run("stale", arrivals,
                                    slow + " --set workload.serving.replica_routing="
                                           "ROUTE_LEAST_KV_USAGE"
                                           " --set workload.serving.router_load_interval_ps="
                                           "100000000000000",
                                    true));
  EXPECT_EQ(stale.at("replica1_requests_routed"), lr.at("replica1_requests_routed"));
  EXPECT_DOUBLE_EQ(stale.at("e2e_ms_p99"), lr.at("e2e_ms_p99"));
  EXPECT_DOUBLE_EQ(stale.at("ttft_ms_p99"), lr.at("ttft_ms_p99"));
  EXPECT_NE(stale.at("replica1_requests_routed"), kv.at("replica1_requests_routed"));
  // The headline keeps the pod's figures and each replica's prefixed ones only.
  EXPECT_EQ(lr.count("replica_requests_routed"), 0u);
  // The slow replica steps slower whatever it is sent.
  EXPECT_GT(rr.at("node1_step_ms_mean"), rr.at("node0_step_ms_mean"));
}

// A closed loop over three replicas: each completion sends the next request, routed at once (an
// idle replica wakes for it); every request completes, and least-requests routing keeps the
// replicas' shares within one client of each other.
TEST_F(DataParallel, ClosedLoopKeepsTheReplicasBusy) {
  const auto s =
      summary_of(run("closed",
                     "closed_loop {clients: 6 requests: 30} input_tokens {uniform "
                     "{min: 100 max: 800}} output_tokens {uniform {min: 8 max: 40}}",
                     every_ + " --set workload.parallelism.data_parallel=3"
                              " --set workload.serving.replica_routing=ROUTE_LEAST_REQUESTS",
                     true));
  EXPECT_EQ(s.at("requests_completed"), 30);
  double routed = 0;
  for (int d = 0; d < 3; ++d) {
    const double n = s.at("replica" + std::to_string(d) + "_requests_routed");
    routed += n;
    EXPECT_GE(n, 6) << d;
    EXPECT_EQ(s.at("replica" + std::to_string(d) + "_requests_completed"), n);
  }
  EXPECT_EQ(routed, 30);
}

// Disaggregated prefill and decode, one request (300-token prompt, 20 tokens) on a prefill and a
// decode replica: the prefill replica gives its first token exactly when a server alone does;
// its KV (300 tokens x 131,072 bytes of Llama-3-8B's BF16 KV) then crosses the HGX board's
// NVSwitch as one flow, GPU to switch to GPU: 39,321,600 bytes at the node link's 36 x 100 Gb/s
// x 0.844 / 8 = 379.8 GB/s plus two 100 ns port latencies, 103,732,386 ps (rounded up); the
// decode replica's steps are the server's own, so the request finishes exactly that much later,
// and a connector latency adds itself. The links' energy: every byte crosses two links at
// 1.3 pJ/bit.
TEST_F(DataParallel, DisaggregatedRequestDecodesOnceItsKvHasArrived) {
  const std::string one = trace("one", [](size_t i) { return i == 0; });
  const std::string arrivals = "arrival_trace: \"" + one + "\"";
  const std::string dp2 = every_ + " --set workload.parallelism.data_parallel=2";
  const std::string co = run("pd_co", arrivals, dp2, true);
  const std::string pd = run(
      "pd", arrivals, dp2 + " --set 'workload.serving.disaggregation={prefill_replicas: 1}'", true);
  const std::string pd_late =
      run("pd_late", arrivals,
          dp2 +
              " --set 'workload.serving.disaggregation={prefill_replicas: 1 "
              "kv_transfer_latency_ps: 1000000}'",
          true);
  const Table c = ResultReader(co).read_table("/workload/requests");
  const Table p = ResultReader(pd).read_table("/workload/requests");
  const Table l = ResultReader(pd_late).read_table("/workload/requests");
  const uint64_t bytes = 300ull * 131072;
  const double rate = 36 * 100e9 * 0.844 / 8;
  const uint64_t transfer = uint64_t(std::ceil(double(bytes) / rate * 1e12)) + 2 * 100000;
  EXPECT_NEAR(double(p.find("kv_transfer_ms")->f64[0]), double(transfer) / 1e9, 2e-9);
  EXPECT_EQ(p.find("first_token_ps")->u64[0], c.find("first_token_ps")->u64[0]);
  const uint64_t measured = uint64_t(std::llround(p.find("kv_transfer_ms")->f64[0] * 1e9));
  EXPECT_EQ(p.find("finish_ps")->u64[0], c.find("finish_ps")->u64[0] + measured);
  EXPECT_EQ(l.find("finish_ps")->u64[0], p.find("finish_ps")->u64[0] + 1000000);
  EXPECT_EQ(p.find("prefill_replica")->u64[0], 0u);
  EXPECT_EQ(p.find("replica")->u64[0], 1u);
  const auto s = summary_of(pd);
  EXPECT_EQ(s.at("pd_kv_transfers"), 1);
  EXPECT_EQ(s.at("pd_kv_transfer_bytes"), double(bytes));
  EXPECT_NEAR(s.at("pd_kv_transfer_energy_j"), double(bytes) * 8 * 1.3e-12 * 2, 1e-9);
  EXPECT_EQ(s.at("requests_completed"), 1);
  // The headline's steps are the decode replica's: 19 decode steps after the hand-off.
  EXPECT_EQ(s.at("decode_steps"), 19);
  // TP2 replicas: each rank sends its half of the KV to its peer, two flows at once.
  const std::string tp2 = run("pd_tp2", arrivals,
                              dp2 + " --set workload.parallelism.tensor_parallel=2" +
                                  " --set 'workload.serving.disaggregation={prefill_replicas: 1}'",
                              true);
  const uint64_t half = uint64_t(std::ceil(double(bytes / 2) / rate * 1e12)) + 2 * 100000;
  const auto t = summary_of(tp2);
  EXPECT_NEAR(t.at("pd_kv_transfer_ms_mean"), double(half) / 1e9, 2e-9);
  EXPECT_EQ(t.at("pd_kv_transfer_bytes"), double(bytes));
}

// Three replicas, one prefilling: arrivals all go to replica 0, round robin over the decode
// replicas alternates 1 and 2 in hand-off order; two prefilling: arrivals alternate 0 and 1.
// A long connector latency keeps the prefill replica's KV held (its pool's peak rises).
TEST_F(DataParallel, DisaggregatedRoutingAndHeldKv) {
  const std::string all = trace("all", [](size_t) { return true; });
  const std::string arrivals = "arrival_trace: \"" + all + "\"";
  const std::string dp3 = every_ + " --set workload.parallelism.data_parallel=3";
  const std::string one_p =
      run("pd1", arrivals, dp3 + " --set 'workload.serving.disaggregation={prefill_replicas: 1}'",
          true);
  {
    const Table t = ResultReader(one_p).read_table("/workload/requests");
    // Hand-off order is the order of first tokens.
    std::vector<std::pair<uint64_t, uint64_t>> by_first;
    for (size_t i = 0; i < t.rows(); ++i) {
      EXPECT_EQ(t.find("prefill_replica")->u64[i], 0u);
      by_first.push_back({t.find("first_token_ps")->u64[i], t.find("replica")->u64[i]});
    }
    // (Prompts that end in one step hand off in admission order: arrival order here.)
    std::stable_sort(by_first.begin(), by_first.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t k = 0; k < by_first.size(); ++k)
      EXPECT_EQ(by_first[k].second, 1 + k % 2) << k;
    const auto s = summary_of(one_p);
    EXPECT_EQ(s.at("requests_completed"), 12);
    EXPECT_EQ(s.at("pd_kv_transfers"), 12);
    EXPECT_EQ(s.at("replica0_requests_routed"), 12);
    EXPECT_EQ(s.at("replica1_requests_routed"), 6);
    EXPECT_EQ(s.at("replica2_requests_routed"), 6);
  }
  const std::string two_p =
      run("pd2", arrivals, dp3 + " --set 'workload.serving.disaggregation={prefill_replicas: 2}'",
          true);
  {
    const Table t = ResultReader(two_p).read_table("/workload/requests");
    for (size_t i = 0; i < t.rows(); ++i) {
      EXPECT_EQ(t.find("prefill_replica")->u64[i], i % 2) << i;
      EXPECT_EQ(t.find("replica")->u64[i], 2u) << i;
    }
    EXPECT_EQ(summary_of(two_p).at("requests_completed"), 12);
  }
  const std::string held = run("pd_held", arrivals,
                               dp3 +
                                   " --set 'workload.serving.disaggregation={prefill_replicas: 1 "
                                   "kv_transfer_latency_ps: 200000000000}'",
                               true);
  const auto a = summary_of(one_p), b = summary_of(held);
  EXPECT_EQ(b.at("requests_completed"), 12);
  EXPECT_GT(b.at("replica0_kv_pool_peak_fraction"), 2 * a.at("replica0_kv_pool_peak_fraction"));
  EXPECT_GT(b.at("e2e_ms_p50"), a.at("e2e_ms_p50") + 199);
}

// The decode replica pulls the KV only once it admits the request, and the prefill replica holds
// it until then: with two sequences per replica and eight requests arriving together, the decode
// replica takes the first two, then the next two wait for its slots while the prefill replica,
// its two slots held by them, cannot start the fifth prompt before a decode slot frees (a
// request finishes). The hand-off of a waiting request includes its wait for admission.
TEST_F(DataParallel, DisaggregatedKvIsHeldUntilTheDecodeReplicaAdmits) {
  const std::string path = (dir_ / "burst.csv").string();
  {
    std::ofstream f(path);
    f << "arrival_ms,input_tokens,output_tokens\n";
    for (int i = 0; i < 8; ++i)
      f << "0,200,30\n";
  }
  const std::string out = run("burst", "arrival_trace: \"" + path + "\"",
                              every_ + " --set workload.parallelism.data_parallel=2" +
                                  " --set workload.serving.max_sequences=2" +
                                  " --set 'workload.serving.disaggregation={prefill_replicas: 1}'",
                              true);
  const Table t = ResultReader(out).read_table("/workload/requests");
  ASSERT_EQ(t.rows(), 8u);
  const auto first = [&](size_t i) { return t.find("first_token_ps")->u64[i]; };
  const auto finish = [&](size_t i) { return t.find("finish_ps")->u64[i]; };
  const uint64_t first_done = std::min(finish(0), finish(1));
  EXPECT_LT(first(3), first_done);  // the second pair prefilled while the first decodes
  EXPECT_GT(first(4), first_done);  // the fifth waits for a decode slot to free
  const auto s = summary_of(out);
  EXPECT_EQ(s.at("requests_completed"), 8);
  EXPECT_GT(s.at("pd_handoff_ms_p99"), 10 * s.at("pd_kv_transfer_ms_p99"));
  // Requests 0 and 1 were admitted at once: their hand-off is the transfer alone.
  EXPECT_DOUBLE_EQ(t.find("handoff_ms")->f64[0], t.find("kv_transfer_ms")->f64[0]);
}

// A request preempted at its decode replica while its KV is still on its way has no KV there to
// swap: under SWAP it recomputes (its prompt and first token prefilled again at the decode
// replica) instead of swapping out what has not arrived. A 59-block pool, a slow pod (200 MB/s
// per rank, the 880-token prompt's KV takes over 0.5 s): the short request's growth preempts the
// long one during its pull.
TEST_F(DataParallel, DisaggregatedPreemptionDuringAPullRecomputes) {
  const std::string path = (dir_ / "pull_swap.csv").string();
  {
    std::ofstream f(path);
    f << "arrival_ms,input_tokens,output_tokens\n0,32,40\n0,880,3\n";
  }
  const auto s =
      summary_of(run("pull_swap", "arrival_trace: \"" + path + "\"",
                     every_ + " --set workload.parallelism.data_parallel=2" +
                         " --set workload.serving.max_step_tokens=1024" +
                         " --set workload.serving.kv_cache_bytes=123731968" +
                         " --set workload.serving.preemption=SWAP" +
                         " --set system.scale_up.rank_bandwidth_bytes_per_s=2e8" +
                         " --set 'workload.serving.disaggregation={prefill_replicas: 1}'",
                     true));
  EXPECT_EQ(s.at("requests_completed"), 2);
  EXPECT_EQ(s.at("replica1_preemptions"), 1);
  EXPECT_EQ(s.at("swapped_bytes"), 0);
  // 32 + 880 prompt tokens at the prefill replica, 880 + 1 again at the decode replica.
  EXPECT_EQ(s.at("prefill_tokens"), 32 + 880 + 881);
}

// A closed loop over one prefill and two decode replicas (least-requests decode routing)
// completes every request; requests of one output token end at their prefill (no transfer).
TEST_F(DataParallel, DisaggregatedClosedLoopAndOneTokenRequests) {
  const auto s =
      summary_of(run("pd_closed",
                     "closed_loop {clients: 6 requests: 30} input_tokens {uniform "
                     "{min: 100 max: 800}} output_tokens {uniform {min: 1 max: 40}}",
                     every_ + " --set workload.parallelism.data_parallel=3"
                              " --set 'workload.serving.disaggregation={prefill_replicas: 1 "
                              "decode_routing: ROUTE_LEAST_REQUESTS}'",
                     true));
  EXPECT_EQ(s.at("requests_completed"), 30);
  EXPECT_EQ(s.at("replica0_requests_routed"), 30);
  EXPECT_EQ(s.at("replica1_requests_routed") + s.at("replica2_requests_routed"),
            s.at("pd_kv_transfers"));
  const auto one =
      summary_of(run("pd_one_token",
                     "closed_loop {clients: 2 requests: 6} input_tokens {fixed: 200} output_tokens "
                     "{fixed: 1}",
                     every_ + " --set workload.parallelism.data_parallel=2"
                              " --set 'workload.serving.disaggregation={prefill_replicas: 1}'",
                     true));
  EXPECT_EQ(one.at("requests_completed"), 6);
  EXPECT_EQ(one.at("pd_kv_transfers"), 0);
}

TEST_F(DataParallel, BadConfigsExitTwoNamingTheField) {
  const std::string base = test::tiersim_binary() + " run " +
                           test::preset("hardware/h100_sxm.textproto") + " " +
                           test::preset("pods/hgx_h100_nvswitch.textproto") + " " +
                           test::preset("models/llama3_8b.textproto") + " " +
                           test::preset("studies/serving_llama3_8b.textproto") + " --quiet";
  auto bad = [&](const std::string& sets, const std::string& field) {
    const auto r = test::run_cmd(base + sets + " --out " + (dir_ / "bad.h5").string());
    EXPECT_EQ(r.code, 2) << sets;
    EXPECT_THAT(r.err, ::testing::HasSubstr(field)) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "bad.h5"));
  };
  const std::string dp2 = " --set workload.parallelism.data_parallel=2";
  // Replicas are simulated side by side.
  bad(dp2, "workload.parallelism.data_parallel");
  // Routing without replicas.
  bad(" --set workload.serving.replica_routing=ROUTE_RANDOM", "workload.serving.replica_routing");
  // More replicas than the pod's nodes; with TP2, replicas x ranks.
  bad(every_ + " --set workload.parallelism.data_parallel=9", "system.pod.nodes");
  bad(every_ + " --set workload.parallelism.data_parallel=5" +
          " --set workload.parallelism.tensor_parallel=2",
      "system.pod.nodes");
  // An override must cover a whole TP2 replica (node 3 is in replica 1 with node 2).
  bad(every_ + dp2 + " --set workload.parallelism.tensor_parallel=2" +
          " --set 'system.pod.node_overrides[+]=name: \"s\" nodes: 3 system { components { name: "
          "\"hbm\" hbm { efficiency_fraction: 0.5 } } }'",
      "system.pod.node_overrides[s].nodes");
  // A replica's TP ranks are simulated as one.
  bad(every_ + dp2 + " --set workload.parallelism.tensor_parallel=2" +
          " --set workload.parallelism.merge_identical_ranks=false",
      "workload.parallelism.merge_identical_ranks");
  bad(every_ + " --set workload.parallelism.data_parallel=0", "workload.parallelism.data_parallel");
  bad(" --set workload.serving.router_latency_ps=1000", "workload.serving.router_latency_ps");
  bad(" --set workload.serving.router_load_interval_ps=1000",
      "workload.serving.router_load_interval_ps");
  // Random kernel jitter needs each rank apart; a TP2 replica's ranks are one.
  bad(every_ + dp2 + " --set workload.parallelism.tensor_parallel=2" +
          " --set software.kernel_jitter.uniform.max_ps=1000",
      "software.kernel_jitter");
  // A fault on one rank of a TP2 replica (its ranks are simulated as one).
  bad(every_ + dp2 + " --set workload.parallelism.tensor_parallel=2" +
          " --set 'system={faults {name: \"f\" start_ps: 0 device_offline: \"node[3].hbm\"}}'",
      "system.faults[f].device_offline: node 3 is in replica 1");
  // The load interval refreshes the KV use, which only least-KV routing reads.
  bad(every_ + dp2 + " --set workload.serving.router_load_interval_ps=1000",
      "workload.serving.router_load_interval_ps: only ROUTE_LEAST_KV_USAGE");
  // Disaggregation: prefill and decode replicas among two or more.
  bad(" --set 'workload.serving.disaggregation={prefill_replicas: 1}'",
      "workload.serving.disaggregation: needs workload.parallelism.data_parallel > 1");
  bad(every_ + dp2 + " --set 'workload.serving.disaggregation={prefill_replicas: 2}'",
      "workload.serving.disaggregation.prefill_replicas: must lie in [1, data_parallel - 1]");
  bad(every_ + dp2 + " --set 'workload.serving.disaggregation={prefill_replicas: 0}'",
      "workload.serving.disaggregation.prefill_replicas");
  bad(every_ + dp2 + " --set 'workload.serving.disaggregation={decode_routing: ROUTE_RANDOM}'",
      "workload.serving.disaggregation.prefill_replicas: required");
  // The KV transfers inject into the pod at the scale-up rank bandwidth.
  bad(every_ + dp2 + " --set 'system.scale_up=!clear'" +
          " --set 'workload.serving.disaggregation={prefill_replicas: 1}'",
      "system.scale_up.rank_bandwidth_bytes_per_s: required with");
  bad(every_ + dp2 + " --set workload.serving.router_load_interval_ps=1000" +
          " --set 'workload.serving.disaggregation={prefill_replicas: 1 decode_routing: "
          "ROUTE_LEAST_REQUESTS}'",
      "workload.serving.router_load_interval_ps: only ROUTE_LEAST_KV_USAGE");
  // Each replica would have its own gate (not yet).
  bad(every_ + dp2 + " --set policy.thermal_admission.memory=hbm",
      "policy.thermal_admission: not with data-parallel replicas");
}

}  // namespace
}  // namespace tiersim
