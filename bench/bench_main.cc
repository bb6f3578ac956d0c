// Simulator speed. Whole decode runs (each in a forked child: one SystemC elaboration per
// process) and the hot paths they stand on. Report ratios measured in one run: the machines are
// shared and noisy. Run with scripts/bench.
#include <benchmark/benchmark.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemc>

#include <chrono>
#include <cstdlib>

#include "memory/bandwidth_memory_core.h"
#include "memory/dram_stack.h"
#include "memory/hbm_device.h"
#include "memory/interleave.h"
#include "memory/tools/dram_patterns.h"
#include "models/config/loader.h"
#include "models/core/bandwidth_server.h"
#include "models/core/rng.h"
#include "models/core/stats.h"
#include "models/run/simulation.h"
#include "tests/support/hbm_fast_params.h"

namespace tiersim {
namespace {

std::string preset(const std::string& rel) {
  return std::string(TIERSIM_SOURCE_DIR) + "/configs/" + rel;
}

// One whole run of `model` on `hardware` for `steps` steps; wall time measured around the child.
void decode_run(benchmark::State& state, const char* hardware, const char* model,
                std::vector<std::string> files = {}, std::vector<std::string> sets = {}) {
  const int steps = static_cast<int>(state.range(0));
  files.insert(files.begin(), {preset(std::string("hardware/") + hardware),
                               preset(std::string("models/") + model)});
  if (files.size() == 2) files.push_back(preset("studies/default.textproto"));
  sets.push_back("workload.decode.decode_steps=" + std::to_string(steps));
  sets.push_back("run.op_records=OP_RECORDS_NONE");
  LoadedConfig loaded = load_config(files, sets);  // validated once, outside the timing
  double sim_bytes = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      RunOutcome o = run_simulation(loaded, RunOptions{});
      double bytes = 0;
      for (const auto& s : o.summary) {
        if (s.name == "hbm_bytes_per_token") bytes = s.value * steps;
      }
      if (write(fds[1], &bytes, sizeof(bytes)) != sizeof(bytes)) _exit(1);
      _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &sim_bytes, sizeof(sim_bytes)) != sizeof(sim_bytes)) {
      state.SkipWithError("child failed");
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["sim_tokens_per_wall_s"] = benchmark::Counter(
      static_cast<double>(steps) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["sim_bytes_per_wall_s"] =
      benchmark::Counter(sim_bytes * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_DecodeLlama3_8B_H100(benchmark::State& s) {
  decode_run(s, "h100_sxm.textproto", "llama3_8b.textproto");
}
BENCHMARK(BM_DecodeLlama3_8B_H100)->Arg(64)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_DecodeLlama3_70B_H200(benchmark::State& s) {
  decode_run(s, "h200.textproto", "llama3_70b.textproto");
}
BENCHMARK(BM_DecodeLlama3_70B_H200)->Arg(16)->UseManualTime()->Unit(benchmark::kMillisecond);

// The speed target: Llama-3-70B TP8 on H100, batch 64, context 2048, 256 steps (< 5 s).
void BM_Speed70BTp8(benchmark::State& s) {
  decode_run(s, "h100_sxm.textproto", "llama3_70b.textproto",
             {preset("software/cuda_events_per_kernel.textproto"),
              preset("studies/speed_70b_tp8.textproto")});
}
BENCHMARK(BM_Speed70BTp8)->Arg(256)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

// MoE with latent attention: DeepSeek-V3 TP8 on H200, batch 64, context 2048 (~200 of 256
// experts read per layer and step).
void BM_DeepSeekV3Tp8(benchmark::State& s) {
  decode_run(s, "h200.textproto", "deepseek_v3.textproto",
             {preset("software/cuda_events_per_kernel.textproto"),
              preset("studies/deepseek_v3_tp8.textproto")});
}
BENCHMARK(BM_DeepSeekV3Tp8)->Arg(64)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

// Wall time per step against layers x batch (8 steps of the TP8 70B configuration): the ratio
// of wall_us_per_step to layers_x_batch should not grow along the rows.
void BM_StepScaling(benchmark::State& s) {
  const int64_t layers = s.range(1), batch = s.range(2);
  decode_run(s, "h100_sxm.textproto", "llama3_70b.textproto",
             {preset("software/cuda_events_per_kernel.textproto"),
              preset("studies/speed_70b_tp8.textproto")},
             {"workload.model.layers=" + std::to_string(layers),
              "workload.decode.batch_size=" + std::to_string(batch)});
  s.counters["layers_x_batch"] = static_cast<double>(layers * batch);
}
BENCHMARK(BM_StepScaling)
    ->Args({8, 20, 16})
    ->Args({8, 40, 16})
    ->Args({8, 80, 16})
    ->Args({8, 80, 32})
    ->Args({8, 80, 64})
    ->Args({8, 80, 128})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_StatsCounterInc(benchmark::State& state) {
  StatsRegistry r;
  Counter& c = r.counter("g", "n", "d", "count");
  for (auto _ : state) {
    c.inc(64);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_StatsCounterInc);

void BM_StatsHistogramRecord(benchmark::State& state) {
  StatsRegistry r;
  Histogram& h = r.histogram("g", "h", "d", "ns", Histogram::log2_edges(1, 1 << 24));
  double v = 1;
  for (auto _ : state) {
    h.record(v);
    v = v * 1.7 > 1e7 ? 1 : v * 1.7;
  }
}
BENCHMARK(BM_StatsHistogramRecord);

void BM_StatsSample(benchmark::State& state) {
  StatsRegistry r;
  for (int i = 0; i < 50; ++i)
    r.counter("g", "c" + std::to_string(i), "d", "count");
  TimePs t = 0;
  for (auto _ : state)
    r.sample(t++);
}
BENCHMARK(BM_StatsSample);

void BM_BandwidthServerReserve(benchmark::State& state) {
  BandwidthServer s(3.35e12);
  TimePs t = 0;
  for (auto _ : state) {
    t = s.reserve(t, 2097152);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_BandwidthServerReserve);

void BM_InterleaveSplit(benchmark::State& state) {
  uint64_t out[6] = {};
  uint64_t addr = 0;
  for (auto _ : state) {
    interleave_split(addr, 2097152, 256, 6, out);
    addr += 2097152;
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_InterleaveSplit);

// The fast-level memory core on a serving step's access mix, H100-like (5 HBM3 stacks x 32
// channels, 256-byte interleave): weight tiles of 2 MiB streamed back to back (the streaming fast
// path), then paged-attention reads, each issued when the previous one has landed (the memory
// idles between them, as in a latency-bound paged-attention pipeline): block runs of 64 KiB
// scattered over the pool (every channel, idle) and single 8 KiB blocks (some channels).
void BM_BandwidthMemoryCoreServingMix(benchmark::State& state) {
  BandwidthMemoryCore core(test::hbm3_fast_params());
  Rng rng(1);
  uint64_t weights = 0, requests = 0;
  TimePs now = 0;
  const uint64_t pool = uint64_t{40} << 30;
  for (auto _ : state) {
    TimePs done = now;
    for (int i = 0; i < 8; ++i) {  // queued: each issued 1 ns after the previous
      done = core.serve(weights, 2 << 20, false, now + 1000 * i);
      weights = (weights + (2 << 20)) % (uint64_t{16} << 30);
    }
    now = done;
    for (int i = 0; i < 16; ++i) {
      const bool block = i % 4 == 3;
      const uint64_t bytes = block ? 8192 : 65536;
      now =
          core.serve(pool + rng.below(uint64_t{20} << 30) / bytes * bytes, bytes, i % 8 == 7, now);
    }
    requests += 24;
  }
  state.counters["requests_per_wall_s"] =
      benchmark::Counter(static_cast<double>(requests), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BandwidthMemoryCoreServingMix);

// The fast-level memory core on a paged-attention step's KV reads, H100-like as above: single
// 16 KiB blocks (64 of the 160 channels) scattered over the pool, four in flight, each issued
// when the oldest lands (the memory idles between them: a latency-bound pipeline), one in 16 a
// 1 KiB append (a write). Almost every part finds its channel idle and misses.
void BM_BandwidthMemoryCoreKvBlocks(benchmark::State& state) {
  BandwidthMemoryCore core(test::hbm3_fast_params());
  Rng rng(1);
  uint64_t requests = 0, i = 0;
  TimePs in_flight[4] = {0, 0, 0, 0};
  const uint64_t pool = uint64_t{40} << 30, block = 16384;
  for (auto _ : state) {
    const TimePs start = in_flight[i % 4];
    const bool append = i % 16 == 15;
    const uint64_t addr = pool + rng.below((uint64_t{20} << 30) / block) * block;
    in_flight[i % 4] = core.serve(addr, append ? 1024 : block, append, start);
    ++i;
    ++requests;
  }
  state.counters["requests_per_wall_s"] =
      benchmark::Counter(static_cast<double>(requests), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BandwidthMemoryCoreKvBlocks);

// The detailed HBM core (plain C++, no SystemC): simulated 32-byte requests per wall-second for a
// closed-loop stream and uniform random reads over one HBM3 stack (configs/memory/hbm3_6400).
DramStackSpec bench_hbm3() {
  config::Config c =
      load_config({preset("hardware/h100_sxm.textproto"), preset("memory/hbm3_6400.textproto"),
                   preset("models/llama3_8b.textproto"), preset("studies/default.textproto")},
                  {})
          .config;
  return dram_spec_from_config(c.system().components(0).hbm().device());
}

// The bare core loop: `n` 32-byte reads (a stream, or uniformly random) submitted as fast as the
// stack accepts them, advanced to the last completion. Returns the last cycle.
uint64_t dram_core_loop(const DramStackSpec& spec, uint64_t n, bool random) {
  DramStack stack(spec);
  std::vector<DramCompletion> done;
  done.reserve(4096);
  Rng rng(1);
  uint64_t issued = 0, completed = 0, cycle = 0;
  uint64_t addr = random ? rng.below(spec.capacity_bytes() / 32) * 32 : 0;
  while (completed < n) {
    while (issued < n && stack.submit(addr, false, issued, cycle)) {
      ++issued;
      addr = random ? rng.below(spec.capacity_bytes() / 32) * 32 : issued * 32;
    }
    done.clear();
    uint64_t next = stack.advance(cycle, done);
    completed += done.size();
    if (issued < n) next = std::min(next, cycle + 1);
    cycle = next;
  }
  return cycle;
}

void dram_requests(benchmark::State& state, bool random) {
  const DramStackSpec spec = bench_hbm3();
  const uint64_t n = 1 << 20;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dram_core_loop(spec, n, random));
  }
  state.counters["sim_requests_per_wall_s"] =
      benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}
void BM_DramStackStream(benchmark::State& s) {
  dram_requests(s, false);
}
BENCHMARK(BM_DramStackStream)->Unit(benchmark::kMillisecond);
void BM_DramStackRandom(benchmark::State& s) {
  dram_requests(s, true);
}
BENCHMARK(BM_DramStackRandom)->Unit(benchmark::kMillisecond);

// membench's pattern runner (closed loop, slots held until the data lands, latency and bandwidth
// measurement) against the bare core loop above, on the same stream of access-sized reads: the
// counter `membench_vs_core` is the runner's request rate over the core's, both timed in each
// iteration, in alternating order. The schedules differ (the bare loop keeps every queue full,
// membench holds 1,024 requests in flight), so the ratio is the runner's cost and that
// difference together.
void BM_MembenchStreamVsCore(benchmark::State& state) {
  const DramStackSpec spec = bench_hbm3();
  const uint64_t n = 1 << 20;
  if (spec.org.access_bytes != 32) {
    state.SkipWithError("the bare core loop issues 32-byte requests");
    return;
  }
  DramPattern p;
  p.name = "stream";
  p.kind = DramPattern::Kind::kStream;
  p.request_bytes = spec.org.access_bytes;
  p.outstanding = 1024;
  p.total_bytes = n * p.request_bytes;
  double core_s = 0, bench_s = 0;
  bool core_first = true;
  for (auto _ : state) {
    for (int k = 0; k < 2; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      if ((k == 0) == core_first) {
        benchmark::DoNotOptimize(dram_core_loop(spec, n, false));
        core_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } else {
        const DramPatternResult r = run_dram_pattern(spec, p);
        benchmark::DoNotOptimize(r.bandwidth_bytes_per_s);
        bench_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    }
    core_first = !core_first;
  }
  state.counters["membench_requests_per_wall_s"] =
      static_cast<double>(n) * double(state.iterations()) / bench_s;
  state.counters["membench_vs_core"] = core_s / bench_s;
}
BENCHMARK(BM_MembenchStreamVsCore)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tiersim

int sc_main(int argc, char** argv) {
  ::benchmark::Initialize(&argc, argv);
  ::benchmark::RunSpecifiedBenchmarks();
  ::benchmark::Shutdown();
  return 0;
}

int main(int argc, char** argv) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  return sc_core::sc_elab_and_sim(argc, argv);
}
