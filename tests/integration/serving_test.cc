// End-to-end serving: per-request records agree with the step records, preemption by swap takes
// the host link model's time, and bad serving configs are rejected up front.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

const char* kSmall =
    " --set 'workload.serving={poisson {rate_per_s: 50 requests: 12} "
    "input_tokens {uniform {min: 64 max: 256}} output_tokens {fixed: 16} max_sequences: 8 "
    "max_step_tokens: 256 kv_cache_bytes: 2000000000 preemption: RECOMPUTE "
    "slo {ttft_ms: 100 tpot_ms: 20}}'";

std::string base_cmd() {
  return test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
         test::preset("models/llama3_8b.textproto") + " " +
         test::preset("studies/serving_llama3_8b.textproto") +
         " --set 'workload.serving=!clear' --set run.op_records=OP_RECORDS_ALL --quiet";
}

std::string out_path(const char* tag) {
  return (fs::temp_directory_path() /
          (std::string("tiersim_serving_") + tag + std::to_string(getpid()) + ".h5"))
      .string();
}

double summary(const ResultReader& h, const std::string& name) {
  for (const auto& s : h.summary()) {
    if (s.name == name) return s.value;
  }
  ADD_FAILURE() << "no summary item " << name;
  return -1;
}

TEST(Serving, RequestsAgreeWithSteps) {
  const std::string out = out_path("a");
  auto r = test::run_cmd(base_cmd() + kSmall + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  EXPECT_EQ(summary(h, "requests_completed"), 12);
  const Table req = h.read_table("/workload/requests");
  const auto& arrival = req.find("arrival_ps")->u64;
  const auto& first = req.find("first_token_ps")->u64;
  const auto& generated = req.find("generated_tokens")->u64;
  ASSERT_EQ(arrival.size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(generated[i], 16u);
    EXPECT_GT(first[i], arrival[i]);
  }
  // The run idles until the first arrival; its first step prefills that request alone and
  // produces its first token: TTFT = that step's duration.
  const Table tok = h.read_table("/tokens");
  EXPECT_EQ(tok.find("start_ps")->u64[0], arrival[0]);
  EXPECT_EQ(first[0], tok.find("end_ps")->u64[0]);
  // Every output token appears in exactly one step.
  const auto& tokens = tok.find("tokens")->u64;
  EXPECT_EQ(std::accumulate(tokens.begin(), tokens.end(), uint64_t{0}), 12u * 16);
  EXPECT_LE(summary(h, "goodput_requests_per_s"), summary(h, "requests_per_s") + 1e-12);
  EXPECT_GT(summary(h, "ttft_ms_p50"), 0);
  EXPECT_GT(summary(h, "request_tpot_ms_p50"), 0);
  fs::remove(out);
}

// The board's active power is drawn while the device works, not while it idles between
// arrivals (12 requests at 5 per second leave it idle about 40% of the run) nor while it waits for
// the host: active energy = active_power_w x (run time - idle - host waits).
TEST(Serving, ActivePowerStopsWhileTheDeviceIdles) {
  const std::string out = out_path("p");
  std::string sparse = kSmall;
  sparse.replace(sparse.find("rate_per_s: 50"), 14, "rate_per_s: 5");
  auto r = test::run_cmd(base_cmd() + sparse + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  const double t = summary(h, "sim_time_s");
  const double idle_s = 1e-12 * h.read_doubles("/stats/compute/idle_time").back();
  const double wait_s = 1e-12 * h.read_doubles("/stats/compute/host_wait_time").back();
  EXPECT_GT(idle_s, 0.25 * t);
  EXPECT_NEAR(summary(h, "energy_j_static_compute_active"), 158 * (t - idle_s - wait_s), 1e-9);
  EXPECT_NEAR(summary(h, "energy_j_static_compute_static"), 121.7 * t, 1e-9);
  fs::remove(out);
  // Sampled every 10 ms: the active part of the power series is never negative, reaches the
  // full active power while the device works and is zero in intervals it idles through.
  r = test::run_cmd(base_cmd() + sparse + " --set run.stats_interval_ps=10000000000 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader s(out);
  const auto part = s.read_doubles("/stats/power/part");
  const auto times = s.read_doubles("/stats/time_ps");
  const std::string labels = s.attribute("/stats/power/part", "labels");
  size_t column = 0;
  for (size_t pos = 0; pos < labels.find("compute_active"); ++pos)
    column += labels[pos] == ',';
  ASSERT_NE(labels.find("compute_active"), std::string::npos);
  const size_t np = part.size() / times.size();
  double lowest = 1e9, highest = 0;
  for (size_t i = 0; i < times.size(); ++i) {
    lowest = std::min(lowest, part[i * np + column]);
    highest = std::max(highest, part[i * np + column]);
  }
  EXPECT_EQ(lowest, 0);
  EXPECT_NEAR(highest, 158, 1e-6);
  fs::remove(out);
}

// A pool of 256 tokens for 8 requests of up to 64 + 256 + 16 tokens forces preemption; with SWAP
// the swapped KV crosses the host link at its configured rates (H100 preset: 53 GB/s out,
// 35 GB/s in, 1.1 us each).
TEST(Serving, SwapPreemptionTakesTheHostLinkTime) {
  const std::string out = out_path("b");
  const std::string cmd =
      base_cmd() +
      " --set 'workload.serving={poisson {rate_per_s: 1000 requests: 8} "
      "input_tokens {uniform {min: 64 max: 200}} output_tokens {fixed: 40} max_sequences: 8 "
      "max_step_tokens: 512 kv_cache_bytes: 33554432 preemption: SWAP}' --out " +
      out;
  auto r = test::run_cmd(cmd);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  EXPECT_EQ(summary(h, "requests_completed"), 8);
  EXPECT_GT(summary(h, "preemptions"), 0);
  const double swapped = summary(h, "swapped_bytes");
  EXPECT_GT(swapped, 0);
  const Table ops = h.read_table("/ops");
  const auto& kind = ops.find("kind")->str;
  const double swaps = double(std::count(kind.begin(), kind.end(), "swap_out") +
                              std::count(kind.begin(), kind.end(), "swap_in"));
  const double expected_ps = swaps * 1.1e6 + swapped / 53e9 * 1e12 + swapped / 35e9 * 1e12;
  const auto host = h.read_doubles("/stats/compute/host_transfer_time");
  EXPECT_NEAR(host.back(), expected_ps, swaps);  // within 1 ps of rounding per transfer
  fs::remove(out);
}

std::string closed_loop(uint32_t clients, uint32_t requests) {
  return " --set 'workload.serving={closed_loop {clients: " + std::to_string(clients) +
         " requests: " + std::to_string(requests) +
         "} input_tokens {uniform {min: 64 max: 256}} output_tokens {fixed: 16} max_sequences: 8 "
         "max_step_tokens: 256 kv_cache_bytes: 2000000000 preemption: RECOMPUTE}'";
}

// Closed-loop clients: the first `clients` requests are sent at 0 and each completion sends the
// next request at once, so request k >= clients arrives at the (k - clients)-th completion and
// never more than `clients` requests are in flight; one client runs them back to back. The
// means are those of the requests table.
TEST(Serving, ClosedLoopClientsSendWhenARequestCompletes) {
  for (uint32_t clients : {1u, 3u}) {
    const std::string out = out_path("c");
    auto r = test::run_cmd(base_cmd() + closed_loop(clients, 10) + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    ResultReader h(out);
    EXPECT_EQ(summary(h, "requests_completed"), 10);
    const Table req = h.read_table("/workload/requests");
    const auto& arrival = req.find("arrival_ps")->u64;
    const auto& first = req.find("first_token_ps")->u64;
    const auto& finish = req.find("finish_ps")->u64;
    const auto& generated = req.find("generated_tokens")->u64;
    ASSERT_EQ(arrival.size(), 10u);
    std::vector<uint64_t> done(finish.begin(), finish.end());
    std::sort(done.begin(), done.end());
    for (size_t k = 0; k < 10; ++k) {
      EXPECT_EQ(arrival[k], k < clients ? 0 : done[k - clients]) << "request " << k;
      size_t in_flight = 0;
      for (size_t j = 0; j < 10; ++j)
        in_flight += arrival[j] <= arrival[k] && arrival[k] < finish[j];
      EXPECT_LE(in_flight, clients) << "at request " << k << "'s arrival";
      if (clients == 1 && k > 0) {
        EXPECT_EQ(arrival[k], finish[k - 1]);
      }
    }
    double gaps_ms = 0, tpot_sum = 0, ttft_sum = 0;
    uint64_t gaps = 0;
    for (size_t k = 0; k < 10; ++k) {
      gaps_ms += double(finish[k] - first[k]) * 1e-9;
      gaps += generated[k] - 1;
      tpot_sum += req.find("tpot_ms")->f64[k];
      ttft_sum += req.find("ttft_ms")->f64[k];
    }
    EXPECT_NEAR(summary(h, "itl_ms_mean"), gaps_ms / double(gaps), 1e-9);
    EXPECT_NEAR(summary(h, "request_tpot_ms_mean"), tpot_sum / 10, 1e-9);
    EXPECT_NEAR(summary(h, "ttft_ms_mean"), ttft_sum / 10, 1e-9);
    for (uint64_t sent : req.find("sent")->u64)
      EXPECT_EQ(sent, 1u);
    fs::remove(out);
  }
  // A run stopped early: requests no client sent are marked, their arrival 0, nothing generated.
  const std::string out = out_path("s");
  auto r = test::run_cmd(base_cmd() + closed_loop(3, 20) +
                         " --set run.max_sim_time_ps=300000000000 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  ResultReader h(out);
  const Table req = h.read_table("/workload/requests");
  size_t unsent = 0;
  for (size_t k = 0; k < 20; ++k) {
    if (req.find("sent")->u64[k]) continue;
    ++unsent;
    EXPECT_EQ(req.find("arrival_ps")->u64[k], 0u);
    EXPECT_EQ(req.find("generated_tokens")->u64[k], 0u);
  }
  EXPECT_GT(unsent, 0u);
  fs::remove(out);
}

// A request arriving at an idle server waits for its arrival (an absolute time), then for one
// run of the host's step loop (host_step_ps) before its prefill launches, in synchronous and
// overlapped stacks alike: requests a second apart, each alone, take exactly host_step_ps longer
// to their first token than with no host step work.
TEST(Serving, ArrivalAtAnIdleServerPaysOneHostStep) {
  const std::string sparse =
      " --set 'workload.serving={poisson {rate_per_s: 1 requests: 3} input_tokens {fixed: 64} "
      "output_tokens {fixed: 4} max_sequences: 8 max_step_tokens: 256 kv_cache_bytes: "
      "2000000000 preemption: RECOMPUTE}' --set software.host_step_per_sequence_ps=0";
  auto ttfts = [&](const std::string& extra) {
    const std::string out = out_path("idle");
    auto r = test::run_cmd(base_cmd() + sparse + extra + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<double> t;
    if (r.code != 0) return t;
    ResultReader h(out);
    const Table req = h.read_table("/workload/requests");
    const auto& arrival = req.find("arrival_ps")->u64;
    const auto& first = req.find("first_token_ps")->u64;
    const auto& finish = req.find("finish_ps")->u64;
    for (size_t k = 0; k < arrival.size(); ++k) {
      if (k > 0) {
        EXPECT_GT(arrival[k], finish[k - 1]) << "requests must not overlap";
      }
      t.push_back(double(first[k] - arrival[k]));
    }
    fs::remove(out);
    return t;
  };
  for (const char* overlap : {"false", "true"}) {
    const std::string mode = std::string(" --set software.overlap_host_step=") + overlap;
    const auto none = ttfts(mode + " --set software.host_step_ps=0");
    const auto some = ttfts(mode + " --set software.host_step_ps=50000000");
    ASSERT_EQ(none.size(), 3u);
    ASSERT_EQ(some.size(), 3u);
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(some[k] - none[k], 50e6, 1e3) << "overlap " << overlap << " request " << k;
  }
}

// The serving scenario of kSmall with the pool sized by `pool` (one or more fields).
std::string small_with_pool(const std::string& pool) {
  return " --set 'workload.serving={poisson {rate_per_s: 50 requests: 4} "
         "input_tokens {fixed: 64} output_tokens {fixed: 4} max_sequences: 8 "
         "max_step_tokens: 256 preemption: RECOMPUTE " +
         pool + "}'";
}

// Pools sized as vLLM and TensorRT-LLM size them, by hand: the H100 maps C = 5 x 16 GiB for its
// weights memory; Llama-3-8B's weights W are its weight objects; a 16-token block of its KV is
// 16 x 32 layers x 2 x 8 heads x 128 x 2 bytes; the pool is whole blocks.
TEST(Serving, KvPoolSizedAsAFractionOfMemory) {
  const double capacity = 5.0 * 17179869184.0, block = 16.0 * 32 * 2 * 8 * 128 * 2;
  const double reserved = 3e9;
  auto pool_of = [&](const std::string& pool, double& weights) {
    const std::string out = out_path("pool");
    auto r = test::run_cmd(base_cmd() + small_with_pool(pool) + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    if (r.code != 0) return -1.0;
    ResultReader h(out);
    const Table objects = h.read_table("/objects");
    weights = 0;
    for (size_t i = 0; i < objects.find("name")->str.size(); ++i) {
      const std::string& cls = objects.find("class")->str[i];
      if (cls == "weight" || cls == "embedding")
        weights += double(objects.find("size_bytes")->u64[i]);
    }
    const double got = summary(h, "kv_pool_bytes");
    fs::remove(out);
    return got;
  };
  double w = 0;
  const double vllm =
      pool_of("kv_cache_memory_fraction: 0.9 kv_cache_reserved_bytes: 3000000000", w);
  ASSERT_GT(w, 15e9);
  EXPECT_EQ(vllm, std::floor(std::floor(0.9 * capacity - w - reserved) / block) * block);
  const double trt = pool_of("kv_cache_free_fraction: 0.95", w);
  EXPECT_EQ(trt, std::floor(std::floor(0.95 * (capacity - w)) / block) * block);
  const double fixed = pool_of("kv_cache_bytes: 2000000000", w);
  EXPECT_EQ(fixed, std::floor(2e9 / block) * block);
}

// software.paged_kv_reads. Four closed-loop clients decode 64 tokens after 512 in: with
// one-token blocks every decode token takes its own block, interleaved with the other
// sequences' (a run of its own), against 64-token blocks (one scattered run per sequence); the
// same bytes either way. PAGED_KV_GATHERED reads a tile's runs with one scatter-gather
// descriptor: the same tiles, and step times within 0.2% (each run is still a memory request of
// its own). PAGED_KV_PER_RUN (the default) reads each run as a tile: 51% more tiles and 8% longer
// steps with one-token blocks, as the staging ring holds four 4 KiB blocks at a time; with
// 64-token blocks (runs of whole tiles) the two agree.
TEST(Serving, PagedKvReadsGatheredOrPerRun) {
  auto run_blocks = [&](int block_tokens, const char* reads, double& tiles) {
    const std::string out = out_path("blocks");
    auto r = test::run_cmd(
        base_cmd() +
        " --set 'workload.serving={closed_loop {clients: 4 requests: 4} input_tokens {fixed: 512} "
        "output_tokens {fixed: 64} max_sequences: 4 max_step_tokens: 4096 kv_cache_bytes: "
        "2000000000 preemption: RECOMPUTE kv_block_tokens: " +
        std::to_string(block_tokens) + "}' --set software.paged_kv_reads=" + reads + " --out " +
        out);
    EXPECT_EQ(r.code, 0) << r.err;
    if (r.code != 0) return -1.0;
    ResultReader h(out);
    tiles = summary(h, "demand_tiles_per_token");
    const double tpot = summary(h, "tpot_ms_p50");
    fs::remove(out);
    return tpot;
  };
  double tiles_1 = 0, tiles_64 = 0, per_run_tiles_1 = 0, per_run_tiles_64 = 0;
  const double scattered = run_blocks(1, "PAGED_KV_GATHERED", tiles_1);
  const double runs = run_blocks(64, "PAGED_KV_GATHERED", tiles_64);
  ASSERT_GT(runs, 0);
  EXPECT_EQ(tiles_1, tiles_64);
  EXPECT_NEAR(scattered / runs, 1.0, 0.002) << scattered << " vs " << runs << " ms";
  const double per_run_scattered = run_blocks(1, "PAGED_KV_PER_RUN", per_run_tiles_1);
  const double per_run_runs = run_blocks(64, "PAGED_KV_PER_RUN", per_run_tiles_64);
  EXPECT_EQ(per_run_tiles_64, tiles_64);
  EXPECT_EQ(per_run_runs, runs);
  EXPECT_GT(per_run_tiles_1, 1.4 * tiles_1);
  EXPECT_GT(per_run_scattered / scattered, 1.05) << per_run_scattered << " vs " << scattered;
  // An unknown value is refused with the field's path.
  auto r = test::run_cmd(base_cmd() + kSmall + " --set software.paged_kv_reads=7");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("paged_kv_reads"), std::string::npos) << r.err;
}

TEST(Serving, BadConfigsAreRejected) {
  // SWAP needs the host link.
  auto r = test::run_cmd(base_cmd() + kSmall +
                         " --set workload.serving.preemption=SWAP --set system.host_link=!clear");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("system.host_link"), std::string::npos) << r.err;
  // A pool that cannot hold one request.
  r = test::run_cmd(base_cmd() + kSmall + " --set workload.serving.kv_cache_bytes=1000000");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("could never finish"), std::string::npos) << r.err;
  // Pool sizing: two ways at once, a reserve beside fixed bytes, a fraction past 1, a fraction
  // that leaves nothing after the weights.
  r = test::run_cmd(base_cmd() +
                    small_with_pool("kv_cache_bytes: 2000000000 kv_cache_free_fraction: 0.9"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_cache_free_fraction: set only one of"),
            std::string::npos)
      << r.err;
  r = test::run_cmd(base_cmd() +
                    small_with_pool("kv_cache_bytes: 2000000000 kv_cache_reserved_bytes: 1"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_cache_reserved_bytes: only meaningful"),
            std::string::npos)
      << r.err;
  r = test::run_cmd(base_cmd() + small_with_pool("kv_cache_memory_fraction: 1.5"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_cache_memory_fraction"), std::string::npos) << r.err;
  r = test::run_cmd(base_cmd() + small_with_pool("kv_cache_memory_fraction: 0.1"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_cache_memory_fraction: leaves no KV pool"),
            std::string::npos)
      << r.err;
  // A fraction with orchestrated placement (part of the weights live elsewhere).
  r = test::run_cmd(base_cmd() + small_with_pool("kv_cache_free_fraction: 0.9") +
                    " --set policy.placement=ORCHESTRATED");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_cache_free_fraction: sizes the pool from the weights "
                       "memory minus every weight, which holds only with policy.placement: "
                       "STREAM_ALL"),
            std::string::npos)
      << r.err;
  r = test::run_cmd(base_cmd() + small_with_pool("kv_cache_memory_fraction: 0.9") +
                    " --set policy.placement=ORCHESTRATED");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_cache_memory_fraction: sizes the pool from the "
                       "weights memory"),
            std::string::npos)
      << r.err;
  // Zero-token blocks are named, not divided by.
  r = test::run_cmd(base_cmd() + kSmall + " --set workload.serving.kv_block_tokens=0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_block_tokens"), std::string::npos) << r.err;
  // Input plus output past 2^32 tokens does not wrap into a request that fits.
  r = test::run_cmd(base_cmd() + kSmall +
                    " --set 'workload.serving.output_tokens={fixed: 4294967295}'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("a request can need 4294967551"), std::string::npos) << r.err;
  r = test::run_cmd(base_cmd() + small_with_pool(""));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.kv_cache_bytes: required field is not set"),
            std::string::npos)
      << r.err;
  // More closed-loop clients than requests, or no client count.
  r = test::run_cmd(base_cmd() + closed_loop(4, 3));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(
      r.err.find("workload.serving.closed_loop.requests: fewer requests (3) than clients (4)"),
      std::string::npos)
      << r.err;
  r = test::run_cmd(base_cmd() + closed_loop(4, 8) +
                    " --set workload.serving.closed_loop.clients=0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("workload.serving.closed_loop.clients"), std::string::npos) << r.err;
  // No arrivals.
  r = test::run_cmd(base_cmd() + " --set workload.serving.max_sequences=4");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("needs arrivals"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tiersim
