// Component tests of the compute engine's streaming pipeline on a tiny system whose numbers make
// every op time hand-derivable: HBM 1 B/ps, SRAM 4 B/ps per port, 4 KiB tiles, 1 us overhead.
// Each run elaborates in a forked child and writes a result file; the parent reads /ops.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "models/config/loader.h"
#include "models/run/result_file.h"
#include "models/run/simulation.h"
#include "tests/support/fork_sim.h"

namespace tiersim {
namespace {

const char* kSystem = R"(
system {
  components { name: "hbm" hbm { stack_count: 1 bus_width_bits: 1000 pin_data_rate_mbps: 8000
      capacity_bytes_per_stack: 1073741824 efficiency_fraction: 1.0 latency_ps: 0
      interleave_bytes: 4096 channels_per_stack: 1
      miss_penalty_ps: 0 turnaround_ps: 0 } }
  components { name: "sram" sram { capacity_bytes: 1048576 read_bandwidth_bytes_per_s: 4e12
      write_bandwidth_bytes_per_s: 4e12 latency_ps: 0 } }
  components { name: "dma" dma { bandwidth_bytes_per_s: 1e15 setup_latency_ps: 0 } }
  components { name: "compute" compute { peak { dtype: BF16 flops_per_s: 1e15 }
      vector_flops_per_s: 1e15
      flops_efficiency_fraction: 1.0 op_overhead_ps: 1000000 tile_bytes: 4096
      staging_buffers: 4 sram: "sram" dma: "dma" weights_memory: "hbm" } }
  links { name: "c_s" from: "compute" to: "sram" latency_ps: 0 }
  links { name: "d_h" from: "dma" to: "hbm" latency_ps: 0 }
  links { name: "d_s" from: "dma" to: "sram" latency_ps: 0 }
  address_map { name: "hbm" target: "hbm" base_bytes: 0 size_bytes: 1073741824 }
  address_map { name: "sram" target: "sram" base_bytes: 1099511627776 size_bytes: 1048576 }
}
workload {
  model { name: "tiny" layers: 1 hidden_size: 256 heads: 4 kv_heads: 4 ffn_size: 512
          vocab_size: 1000 tied_embeddings: false mlp: SWIGLU norm: RMSNORM positional: ROPE
          weight_dtype: BF16 kv_dtype: BF16 activation_dtype: BF16 }
  decode { batch_size: 1 context_tokens: 0 decode_steps: 1 }
}
policy { placement: STREAM_ALL }
run { seed: 1 fidelity: FAST max_sim_time_ps: 0 stats_interval_ps: 0 op_records: OP_RECORDS_ALL }
)";

struct OpTimes {
  uint64_t qkv_ps = 0;
  std::string qkv_bound;
  uint64_t norm_ps = 0;        // the first attn_norm
  uint64_t all_reduce_ps = 0;  // the first all_reduce
};

OpTimes run_tiny(const std::vector<std::string>& sets) {
  namespace fs = std::filesystem;
  const std::string dir =
      fs::temp_directory_path() / ("tiersim_compute_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string cfg = dir + "/tiny.textproto";
  const std::string out = dir + "/tiny.h5";
  std::ofstream(cfg) << kSystem;
  const std::string status = test::run_forked([&] {
    LoadedConfig loaded = load_config({cfg}, sets);
    run_simulation(loaded, RunOptions{out, "", false});
    return std::string("ok");
  });
  EXPECT_EQ(status, "ok");
  OpTimes t;
  if (status != "ok") return t;
  Table ops = ResultReader(out).read_table("/ops");
  for (size_t i = 0; i < ops.rows(); ++i) {
    if (ops.find("kind")->str[i] == "qkv_proj") {
      t.qkv_ps = ops.find("end_ps")->u64[i] - ops.find("start_ps")->u64[i];
      t.qkv_bound = ops.find("bound_by")->str[i];
    }
    const uint64_t d = ops.find("end_ps")->u64[i] - ops.find("start_ps")->u64[i];
    if (ops.find("kind")->str[i] == "attn_norm" && t.norm_ps == 0) t.norm_ps = d;
    if (ops.find("kind")->str[i] == "all_reduce" && t.all_reduce_ps == 0) t.all_reduce_ps = d;
  }
  fs::remove_all(dir);
  return t;
}

// qkv_proj: 256 x 768 bf16 = 393,216 bytes = 96 tiles of 4096; 4096 flops per tile (5 ps).
// Activations: 512 B read (128 ps) before, 1536 B written (384 ps) after.

TEST(ComputeEngine, BandwidthBoundOpKeepsHbmBusy) {
  // Tile i lands at 4096 (i + 1); its compute (SRAM read 1024 ps) ends 1024 later and frees the
  // buffer in time for the next issue, so HBM never idles: 96 x 4096 + 1024 + 384.
  OpTimes t = run_tiny({"system.components[compute].compute.op_overhead_ps=100000"});
  EXPECT_EQ(t.qkv_ps, 100000u + 96 * 4096 + 1024 + 384);
  EXPECT_EQ(t.qkv_bound, "memory");
}

TEST(ComputeEngine, LatencyBoundWithOneStagingBuffer) {
  // One buffer: each tile waits transfer + 100 ns latency + its compute before the next issues.
  OpTimes t = run_tiny({"system.components[hbm].hbm.latency_ps=100000",
                        "system.components[compute].compute.staging_buffers=1"});
  EXPECT_EQ(t.qkv_ps, 1000000u + 96 * (4096 + 100000 + 1024) + 384);
}

TEST(ComputeEngine, ComputeBoundOpSerialisesOnTheEngine) {
  // 0.5 TFLOP/s: 8192 ps per tile; the first lands at 4096, then 96 computes back to back.
  OpTimes t = run_tiny({"system.components[compute].compute.peak[0].flops_per_s=0.5e12",
                        "system.components[compute].compute.op_overhead_ps=100000"});
  EXPECT_EQ(t.qkv_ps, 100000u + 4096 + 96 * 8192 + 384);
  EXPECT_EQ(t.qkv_bound, "compute");
}

TEST(ComputeEngine, EfficiencyScalesComputeTime) {
  OpTimes t = run_tiny({"system.components[compute].compute.peak[0].flops_per_s=1e12",
                        "system.components[compute].compute.flops_efficiency_fraction=0.5"});
  EXPECT_EQ(t.qkv_ps, 1000000u + 4096 + 96 * 8192 + 384);
  EXPECT_EQ(t.qkv_bound, "overhead");  // 1 us of overhead exceeds 0.79 us of work
}

TEST(ComputeEngine, GemmEfficiencyFallsWithFewRows) {
  // One row per weight read and M_half = 1: half the peak, as in ComputeBoundOp at 0.5 TFLOP/s.
  OpTimes t = run_tiny({"system.components[compute].compute.peak[0].flops_per_s=1e12",
                        "system.components[compute].compute.gemm_half_efficiency_rows=1",
                        "system.components[compute].compute.op_overhead_ps=100000"});
  EXPECT_EQ(t.qkv_ps, 100000u + 4096 + 96 * 8192 + 384);
}

TEST(ComputeEngine, SynchronousHostLaunchIsExposedPerKernel) {
  // The host waits for attn_norm, then spends 50 us launching qkv: all of it is on the op.
  OpTimes t = run_tiny({"software.host_launch_ps=50000000", "software.synchronize_each_kernel=true",
                        "system.components[compute].compute.op_overhead_ps=100000"});
  EXPECT_EQ(t.qkv_ps, 50000000u + 100000 + 96 * 4096 + 1024 + 384);
  // Three separate Q, K, V kernels: three launches and three device overheads.
  t = run_tiny({"software.host_launch_ps=50000000", "software.synchronize_each_kernel=true",
                "software.qkv_kernels=3",
                "system.components[compute].compute.op_overhead_ps=100000"});
  EXPECT_EQ(t.qkv_ps, 3 * (50000000u + 100000) + 96 * 4096 + 1024 + 384);
}

TEST(ComputeEngine, FusedElementwiseOpsLaunchNothing) {
  // attn_norm streams 512 B of weights (one tile, 512 ps) and computes 1024 flops; fused, it pays
  // no overhead: the activations' SRAM read (128 ps) overlaps the tile landing (512 ps), then
  // the tile's SRAM read (128 ps) and the activations' write (128 ps).
  OpTimes t = run_tiny({"software.fuse_elementwise=true"});
  EXPECT_EQ(t.norm_ps, 512u + 128 + 128);
  // Unfused, one kernel: 1 us of device overhead first.
  t = run_tiny({});
  EXPECT_EQ(t.norm_ps, 1000000u + 512 + 128 + 128);
}

TEST(ComputeEngine, AllReduceTakesTheCollectiveModelsTime) {
  // TP2 ring all-reduce of 512 B: launch 2 ns + 2(p-1) steps of 1 ns + 2(p-1)(n/p)/B with
  // B = 1 GB/s = 512 ns; plus 1 us device overhead and the activation read and write (128 ps).
  OpTimes t = run_tiny(
      {"workload.parallelism.tensor_parallel=2", "system.scale_up.rank_bandwidth_bytes_per_s=1e9",
       "system.scale_up.step_latency_ps=1000", "system.scale_up.launch_latency_ps=2000",
       "system.scale_up.algorithm=RING"});
  EXPECT_EQ(t.all_reduce_ps, 1000000u + 128 + (2000 + 2 * 1000 + 512000) + 128);
}

}  // namespace
}  // namespace tiersim
