// Compute engine and its op scheduler.
//
// What is modelled: the engine takes the workload's ops in program order. Each op first pays a
// fixed overhead per kernel it launches (launch and tail on the device), after the host has
// launched it (software stack: host time per launch, run-ahead or synchronous). Its off-chip
// operands (weights, KV) are then streamed
// tile by tile by the DMA engine into SRAM staging buffers; the engine computes on each tile once
// it has landed and the previous tile is done, reading it from SRAM; a buffer is reused when its
// tile's compute ends. So streaming and compute overlap, bounded by `staging_buffers`. A tile's
// compute time is the larger of its share of the op's FLOPs at peak x efficiency for the op's
// dtype and its SRAM read time (a grouped op, such as the MoE expert kernels, times each tile
// with its own operand's FLOPs and rows). On-chip activations are read from SRAM before the first
// tile and written after the last. Off-chip writes (KV append) are issued when the op ends; a step
// ends when its last op and its outstanding writes are done.
//
// Fidelity: fast. One op at a time (no concurrent kernels), no inter-op prefetch of its own
// (policy ORCHESTRATED adds layer-ahead prefetch: accelerators/orchestration). Matrix ops run at
// peak x efficiency x M / (M + M_half) for M rows per weight read; vector ops at the vector rate;
// collectives take the scale-up collective model's time (symmetric tensor-parallel ranks: one is
// simulated).
#pragma once

#include <tlm_utils/simple_initiator_socket.h>

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "accelerators/dma_engine.h"
#include "accelerators/orchestration/orchestrator.h"
#include "accelerators/orchestration/thermal_admission.h"
#include "accelerators/policies/staging_buffers.h"
#include "configs/tiersim.pb.h"
#include "fabric/collectives.h"
#include "models/config/errors.h"
#include "models/core/component.h"
#include "models/core/fault_windows.h"
#include "models/core/movement_intent.h"
#include "models/core/op.h"
#include "models/core/rng.h"
#include "models/core/stats.h"
#include "models/core/workload.h"

namespace tiersim {

// The scale-up collective model: latency plus bandwidth per step (see ScaleUpFabric), or, with
// a pod (system.pod), launch latency plus the collective simulated as flows on its links. With
// the software stack's protocols (software.collective_protocols) each collective runs under
// each protocol (its launch and step latency, its wire bytes) and takes the fastest.
struct CollectiveModel {
  uint32_t ranks = 1;
  double rank_bandwidth_bytes_per_s = 0;
  // The fabric's own protocol (full wire efficiency), used when `protocols` is empty.
  TimePs step_latency_ps = 0;
  TimePs launch_latency_ps = 0;
  std::vector<CollectiveProtocol> protocols;  // the software stack's
  config::CollectiveAlgorithm algorithm = config::RING;
  std::shared_ptr<PodCollectiveCache> pod;  // null: the analytical model

  // The pod's result for an all-reduce or all-gather (pod set), launch latency included
  // (total_ps()). TREE has no all-gather form: an all-gather then runs as RING.
  const CollectiveResult& pod_result(bool all_gather, uint64_t bytes) const {
    const config::CollectiveAlgorithm a =
        all_gather && algorithm == config::TREE ? config::RING : algorithm;
    return pod->get(all_gather ? CollectiveOp::kAllGather : CollectiveOp::kAllReduce, bytes, a);
  }

  // All-reduce of an n-byte buffer held by every rank.
  TimePs all_reduce_ps(uint64_t bytes) const;
  // All-gather of n bytes from every rank (each ends with ranks x n bytes).
  TimePs all_gather_ps(uint64_t bytes) const;

  // The protocols in force: `protocols`, or the fabric's one.
  std::vector<CollectiveProtocol> effective_protocols() const;

  // `root`: for the pod, the tensor-parallel degree and the software's algorithm.
  static void validate(const config::Config& root, Validator& v);
  // `software`: the software stack's collective_algorithm (UNSPECIFIED: the fabric's);
  // `protocols`: the stack's protocols (empty: the fabric's latencies).
  static CollectiveModel from_config(
      const config::ScaleUpFabric& f, uint32_t ranks,
      config::CollectiveAlgorithm software = config::COLLECTIVE_ALGORITHM_UNSPECIFIED,
      const config::Pod* pod = nullptr, std::vector<CollectiveProtocol> protocols = {});
  // The software stack's protocols (empty when it sets none).
  static std::vector<CollectiveProtocol> protocols_from_config(const config::Software& s);
  // Checks software.collective_protocols (names, latencies, wire efficiency, algorithms).
  static void validate_protocols(const config::Software& s, Validator& v);
  // What no protocol of `s` runs that algorithm `a` needs ("" when something runs it, or when
  // `s` has no protocols): AUTO needs RING or ONE_SHOT (or, unless only all-to-alls run,
  // TWO_SHOT, or IN_SWITCH on a reducing pod); TREE needs TREE and RING (its all-gathers);
  // others themselves.
  static std::string missing_protocols(const config::Software& s, config::CollectiveAlgorithm a,
                                       bool reducing_pod, bool all_to_all_only);

 private:
  // Analytical time of one protocol, launch included: ring, one shot, or the faster (AUTO) of
  // those it runs; false when it runs neither.
  bool analytic_ps(const CollectiveProtocol& pr, bool all_gather, uint64_t bytes,
                   TimePs* out) const;
  TimePs analytic_best_ps(bool all_gather, uint64_t bytes) const;
};

// The software stack's kernel launch model (see Software in the schema).
struct SoftwareModel {
  TimePs host_launch_ps = 0;
  bool synchronize_each_kernel = false;
  TimePs host_step_ps = 0;
  TimePs host_step_per_sequence_ps = 0;
  bool overlap_host_step = false;
  bool fuse_elementwise = false;
  uint32_t qkv_kernels = 1;
  uint32_t attention_kernels = 1;
  TimePs attention_latency_ps = 0;          // per attention op, beyond the kernel overhead
  double kv_dequant_flops_per_element = 0;  // vector FLOPs per narrow KV element
  bool gather_paged_kv = false;             // paged_kv_reads PAGED_KV_GATHERED
  config::Jitter kernel_jitter;             // extra device time per kernel (kind not set: none)

  // Kernels the op launches (0: fused into a neighbour).
  uint32_t kernels(OpKind kind) const;
  // The same, plus the input quantisation kernel of a W8A8 GEMM unless elementwise work fuses.
  uint32_t kernels(const Op& op) const {
    return kernels(op.kind) + (op.quantize_input && !fuse_elementwise ? 1 : 0);
  }

  static void validate(const config::Software& s, Validator& v);
  static SoftwareModel from_config(const config::Software& s);
};

struct ComputeParams {
  static constexpr int kDtypes = 7;                // config::Dtype values
  std::array<double, kDtypes> peak_flops_per_s{};  // 0: dtype not supported
  double vector_flops_per_s = 0;
  double flops_efficiency_fraction = 1;
  double gemm_half_efficiency_rows = 0;  // 0: efficiency independent of M
  TimePs op_overhead_ps = 0;             // per kernel
  uint64_t tile_bytes = 0;
  uint32_t staging_buffers = 1;
  std::string sram, dma, weights_memory;
  std::string activation_memory;  // where activations beyond SRAM spill (weights_memory)
  double active_power_w = 0;      // on top of the static power while the device works

  // Achieved FLOP/s of a matrix op with `rows` rows sharing each weight element.
  double matrix_flops_per_s(config::Dtype d, uint64_t rows) const {
    const double shape = gemm_half_efficiency_rows > 0
                             ? double(rows) / (double(rows) + gemm_half_efficiency_rows)
                             : 1.0;
    return peak_flops_per_s[d] * flops_efficiency_fraction * shape;
  }
  double vector_rate_flops_per_s() const { return vector_flops_per_s * flops_efficiency_fraction; }

  static void validate(const config::Config& root, const config::ComputeEngine& c, Validator& v);
  static ComputeParams from_config(const config::ComputeEngine& c);
};

class ComputeEngine : public Component, public ExpertCostModel {
 public:
  tlm_utils::simple_initiator_socket<ComputeEngine> sram_socket;

  SC_HAS_PROCESS(ComputeEngine);
  ComputeEngine(sc_core::sc_module_name name, const ComputeParams& params, Context& ctx);
  void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const override;

  bool connect(Component& target, const LinkInfo& link) override;

  // ExpertCostModel: expert weights stream at the best rate an expert kernel reached in the
  // last step that ran one (the current step's until then; a kernel bound by its stream shows
  // the path's rate, one bound by its arithmetic less), and matrix ops compute at the engine's
  // rate for their rows. Not ready before an expert kernel has streamed, nor with a movement
  // controller (tiles then come from the fast memory or the home, at rates an expert's
  // residency decides).
  bool ready() const override { return expert_stream_bytes_per_s() > 0 && !orchestrator_; }
  double stream_s(uint64_t bytes) const override {
    return double(bytes) / expert_stream_bytes_per_s();
  }
  double matrix_s(double flops, uint64_t rows, config::Dtype dtype) const override {
    const double rate = params_.matrix_flops_per_s(dtype, rows);
    return rate > 0 ? flops / rate : 0.0;
  }
  void prepare() override;
  const ComputeParams& params() const { return params_; }
  // Energy: FLOPs executed at the configured pJ per FLOP (compute), static power
  // (compute_static), active power while the device works (compute_active: the run's time less
  // the host-launch waits and idle waits), and the movement controller's power while the run
  // lasts (controller).
  void add_energy(TimePs now_ps, EnergyLedger& out) const override;
  bool has_energy() const override {
    return Component::has_energy() || controller_power_w_ > 0 || params_.active_power_w > 0 ||
           pod_fabric() != nullptr;
  }
  // Time up to now_ps the device worked (not waiting for a launch or idle).
  TimePs active_ps(TimePs now_ps) const;

 protected:
  double energy_units() const override { return flops_.value(); }

 public:
 private:
  enum class Phase {
    kFetch,
    kOverhead,
    kStream,
    kRendezvous,
    kPipe,
    kAwait,
    kFinish,
    kStepEnd,
    kDone
  };

  void run();  // the scheduler process; re-triggers itself only when something can change
  // Whether the engine may go on from `at` without waiting for it (see its definition).
  bool alone_until(TimePs at, TimePs real_now) const;
  TimePs time_limit_ps_ = kMaxSimTimePs;  // run.max_sim_time_ps, when set
  bool wall_limited_ = false;             // run.max_wall_time_s set
  bool alone_ = false;  // the design's only process (start_of_simulation), fast paths on
  Counter* waits_skipped_ = nullptr;
  void start_of_simulation() override;
  // What the scheduler does after a phase: go on at once, wait until `at`, or stop.
  struct PhaseResult {
    enum Kind { kGoOn, kWait, kWaitEvent, kStop } kind = kGoOn;
    TimePs at = 0;
    sc_core::sc_event* event = nullptr;
    static PhaseResult go_on() { return {kGoOn, 0}; }
    static PhaseResult wait(TimePs at) { return {kWait, at}; }
    static PhaseResult wait_event(sc_core::sc_event& e) { return {kWaitEvent, 0, &e}; }
    static PhaseResult stop() { return {kStop, 0}; }
  };
  PhaseResult phase_fetch(TimePs now);     // the next op from the workload; its launch
  PhaseResult phase_overhead(TimePs now);  // activations read (or host attention)
  PhaseResult phase_stream(TimePs now);    // tiles of off-chip operands; the arithmetic
  // Every-rank simulation: a collective's meeting with the other ranks, once the last arrived.
  PhaseResult phase_rendezvous(TimePs now);
  // Pipeline parallelism: a send (its message posted with its arrival; the engine goes on) or
  // a receive (waits for the message's arrival), ready at pipe_ready_ps_.
  PhaseResult phase_pipe(TimePs now);
  // Data-parallel serving: an idle replica waits from await_start_ps_ until a request is
  // delivered (its doorbell).
  PhaseResult phase_await(TimePs now);
  // After the arithmetic (compute_free_): the activations' write; then the op finishes.
  PhaseResult write_activations(TimePs now);
  // A collective op's time on the fabric, and its link energy (the pod's, every rank's share).
  TimePs collective_time_ps(double* energy_j);
  PhaseResult phase_finish(TimePs now);    // the op's record; the step's write fence
  PhaseResult phase_step_end(TimePs now);  // the token record
  void begin_op(TimePs now);
  // Issues the next tile; returns 0, or the time to try again when its data is a prefetch the
  // controller has decided but not issued yet.
  TimePs issue_tile(TimePs now);
  TimePs sram_access(tlm::tlm_command cmd, uint64_t address, uint64_t bytes, TimePs start_ps);
  void finish_op(TimePs now);
  // Moves `bytes` of activations between the SRAM area and the spill region; returns when done.
  TimePs spill(uint64_t bytes, bool write, TimePs start_ps);

  // Recompute-vs-transfer (policy.orchestration.kv_restore): replaces the attention op's KV
  // reads the controller decides to recompute by reads of their hidden states, each timed with
  // its own rows and FLOPs.
  void substitute_restores();
  // The movement intent of the current op's operand `o` moved for `op`.
  MovementIntent operand_intent(const Operand& o, MoveOp op);
  // Whether the current op is decode attention the host CPU computes next to the KV.
  bool on_host() const;
  // Runs it (see HostAttention in the schema); returns when its output is back on the device.
  TimePs host_attention(TimePs now);
  // Moves `bytes` of activations between the SRAM activation area and `other` (out of the area
  // when `out`); returns when done.
  TimePs move_activations(uint64_t other, uint64_t bytes, bool out, TimePs start_ps);
  // Moves `bytes` of activations between the SRAM area and the host scratch area.
  TimePs host_copy(uint64_t bytes, bool to_host, TimePs start_ps);

  // Arithmetic of this op's class at its rate (`rows` sharing each weight element: kMatrix).
  TimePs op_compute_ps(double flops, uint32_t rows) const;
  mutable uint32_t rate_rows_ = UINT32_MAX;  // op_compute_ps's last matrix rate and its key
  mutable config::Dtype rate_dtype_ = config::DTYPE_UNSPECIFIED;
  mutable double matrix_rate_ = 0;
  mutable double memo_flops_ = -1, memo_rate_ = -1;  // the last matrix time converted
  mutable TimePs memo_compute_ps_ = 0;

  const ComputeParams params_;
  CollectiveModel collective_;
  SoftwareModel software_;
  double host_to_bytes_per_s_ = 0, host_from_bytes_per_s_ = 0;  // system.host_link (KV swaps)
  TimePs host_link_latency_ps_ = 0;
  bool step_begins_ = true;  // the next fetch starts a step: tell the workload first
  DmaEngine* dma_ = nullptr;
  TimePs sram_link_latency_ps_ = 0;
  Component* sram_ = nullptr;  // what sram_socket is bound to
  bool sram_direct_ = false;   // served without a payload (models/core/reference_paths.h)
  const AddressRangeInfo* sram_range_ = nullptr;  // the range of its last access
  std::vector<FaultWindow> sram_offline_;         // system.faults: when the SRAM refuses accesses
  Counter* sram_waits_ = nullptr;                 // registered only when it has offline windows
  Counter* sram_failures_ = nullptr;
  Counter* sram_bytes_read_ = nullptr;  // the SRAM accesses above that it served, by direction
  Counter* sram_bytes_written_ = nullptr;
  uint64_t staging_base_ = 0;              // global address of the staging buffers in SRAM
  uint64_t activation_base_ = 0;           // global address of the activation area in SRAM
  uint64_t activation_bytes_ = 0;          // the SRAM activation area
  uint64_t spill_base_ = 0;                // activations beyond it, in the activation memory
  DmaEngine* host_cpu_ = nullptr;          // host attention: the CPU's load path
  std::vector<Operand> restore_operands_;  // the current op's operands after substitution
  uint64_t demand_op_bytes_ = 0;           // this op's demand reads from home ...
  TimePs demand_op_busy_ps_ = 0;           // ... the time the path was busy serving them
  TimePs demand_op_land_ = 0;              // the latest of their landings
  bool demand_op_pending_ = false;
  uint64_t host_scratch_ = 0;  // host attention: queries and outputs in host memory

  // Under the stack's PAGED_KV_GATHERED, gathers into the tile whose first part is operand_'s
  // [operand_offset_, + bytes) of a KV object at `source` the following whole read operands of
  // the same object, while they fit in the tile (see issue_tile); fills gather_ and
  // gather_last_, returns the tile's bytes.
  uint64_t gather(const Operand& first, uint64_t bytes, uint64_t source);
  std::vector<DmaEngine::GatherRange> gather_;  // the tile's ranges (reused)
  uint16_t gather_last_ = 0;                    // the tile's last operand

  // Scheduler state.
  Phase phase_ = Phase::kFetch;
  Op op_;
  TimePs op_start_ = 0;
  TimePs stream_start_ = 0;
  TimePs compute_free_ = 0;  // when the engine finishes the last scheduled tile
  TimePs op_end_ = 0;
  TimePs writes_done_ = 0;
  TimePs step_start_ = 0;
  TimePs host_free_ = 0;  // when the host can launch the next kernel
  // host_free_ less the end of the last step that was not a predicted pass, as set there
  // (serving's predicted passes: with an overlapped host step they put the host back there, and
  // a lead beyond it delays them).
  int64_t pass_host_lead_ps_ = 0;
  uint32_t op_kernels_ = 0;
  TimePs op_latency_ps_ = 0;     // the attention kernel's fill time (SoftwareModel)
  double op_dequant_flops_ = 0;  // the op's conversion FLOPs so far (narrow KV, lowered copies)
  uint32_t current_step_ = UINT32_MAX;
  TenantId step_tenant_;  // tenancy: the tenant and own step of the step under way
  uint32_t tenant_step_ = 0;
  uint64_t stream_bytes_ = 0;  // off-chip bytes this op streams in
  uint32_t tiles_issued_ = 0;
  uint64_t stream_issued_ = 0;  // bytes of the op's read operands issued so far
  uint16_t operand_ = 0;        // cursor: operand index and offset within it
  uint64_t operand_offset_ = 0;
  std::vector<TimePs> free_ring_;  // buffer release times, FIFO
  StagingBuffers buffers_;         // each tile's fill, fence, consume, release, checked
  std::unique_ptr<Orchestrator> orchestrator_;           // policy ORCHESTRATED
  std::unique_ptr<ThermalAdmission> thermal_admission_;  // policy.thermal_admission
  static constexpr TimePs kNotWaiting = UINT64_MAX;
  TimePs wanted_ps_ = kNotWaiting;  // when the tile now waiting for a prefetch was first wanted
  uint32_t ring_head_ = 0, in_flight_ = 0;
  TimePs compute_busy_ps_ = 0;  // this op
  TimePs last_land_ = 0;
  // The best stream rate of an expert kernel in the last step that ran one, and in this step.
  double expert_rate_last_step_ = 0, expert_rate_this_step_ = 0;
  double expert_stream_bytes_per_s() const {
    return expert_rate_last_step_ > 0 ? expert_rate_last_step_ : expert_rate_this_step_;
  }
  bool record_ops_ = false;
  double controller_power_w_ = 0;  // policy.orchestration.controller_power_w (ORCHESTRATED)
  double pod_link_energy_j_ = 0;   // this rank's share of the pod's link energy so far
  // Inactive intervals (host-launch waits, idle waits), registered in time order when they
  // begin, with their end known: the finished ones' total and the latest one.
  void note_inactive(TimePs from_ps, TimePs to_ps);
  // Cuts the latest inactive interval at `to_ps` (an open wait that ended).
  void end_inactive(TimePs to_ps);
  TimePs inactive_done_ps_ = 0, inactive_from_ps_ = 0, inactive_to_ps_ = 0;

  Counter& ops_;
  Scalar& flops_;
  Counter& busy_ps_;
  Counter& data_wait_ps_;
  Counter& overhead_ps_;
  Counter& host_wait_ps_;
  Counter& kernels_;
  Counter& collective_ps_;
  Counter& host_transfer_ps_;
  Counter& idle_ps_;
  Counter& spill_bytes_;
  Counter& tiles_;
  Counter& staging_violations_;
  Counter& demand_tiles_;
  Counter& fence_wait_ps_;
  Counter& host_attention_ps_;
  Counter& host_kv_bytes_;
  Counter& skipped_bytes_;
  // Every-rank simulation (registered only then): the time this rank waited at collectives for
  // the last rank, and the collectives it arrived at last.
  std::optional<Rng> kernel_jitter_rng_;  // software.kernel_jitter's draws (this node's)
  Counter* kernel_jitter_ps_ = nullptr;
  Counter* rendezvous_wait_ps_ = nullptr;
  Counter* rendezvous_last_ = nullptr;
  uint64_t rendezvous_generation_ = 0;  // the meeting this rank waits for
  TimePs rendezvous_arrival_ps_ = 0;    // when it arrived
  // Pipeline parallelism (registered only then): receives' waits, sends, their bytes and their
  // time on the fabric.
  Counter* pipe_wait_ps_ = nullptr;
  Counter* pipe_sends_ = nullptr;
  Counter* pipe_send_bytes_ = nullptr;
  Counter* pipe_send_ps_ = nullptr;
  TimePs pipe_ready_ps_ = 0;                      // when the current send or receive could start
  TimePs await_start_ps_ = 0;                     // data-parallel serving: an idle wait's start
  std::shared_ptr<PodCollectiveCache> pipe_pod_;  // the pipeline's nodes (tp x pp ranks)
  // The pod this rank's traffic runs on (its collectives', or a pipeline's sends'), or null.
  const PodCollectiveCache* pod_fabric() const {
    return collective_.pod ? collective_.pod.get() : pipe_pod_.get();
  }
  uint32_t pipe_tp_ = 1;  // the stages' tensor-parallel ranks
};

}  // namespace tiersim
