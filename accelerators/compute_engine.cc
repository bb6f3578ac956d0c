#include "accelerators/compute_engine.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <set>
#include <stdexcept>

#include "accelerators/dma_engine.h"
#include "fabric/topology.h"
#include "models/config/pool_share.h"
#include "models/core/context.h"
#include "models/core/payload_pool.h"
#include "models/core/reference_paths.h"
#include "models/core/registry.h"
#include "models/core/rendezvous.h"
#include "models/core/workload.h"

namespace tiersim {

ComputeEngine::ComputeEngine(sc_core::sc_module_name name, const ComputeParams& params,
                             Context& ctx)
    : Component(name, ctx, "compute"),
      sram_socket("sram_socket"),
      params_(params),
      collective_(CollectiveModel::from_config(
          ctx.config().system().scale_up(),
          // The ranks the collectives span: tensor- or expert-parallel (a pipeline stage's:
          // each stage's collectives are timed on node[0 .. tp-1]'s places in the pod).
          std::max({1u, ctx.config().workload().parallelism().tensor_parallel(),
                    ctx.config().workload().parallelism().expert_parallel()}),
          ctx.config().software().collective_algorithm(),
          ctx.config().system().has_pod() ? &ctx.config().system().pod() : nullptr,
          CollectiveModel::protocols_from_config(ctx.config().software()))),
      software_(SoftwareModel::from_config(ctx.config().software())),
      host_to_bytes_per_s_(ctx.config().system().host_link().to_host_bytes_per_s()),
      host_from_bytes_per_s_(ctx.config().system().host_link().from_host_bytes_per_s()),
      host_link_latency_ps_(ctx.config().system().host_link().latency_ps()),
      free_ring_(params.staging_buffers, 0),
      buffers_(params.staging_buffers),
      ops_(ctx.stats().counter(basename(), "ops", "ops completed", "count")),
      flops_(ctx.stats().scalar(basename(), "flops", "floating-point operations executed", "flop")),
      busy_ps_(ctx.stats().counter(basename(), "busy_time", "time the engine computed", "ps")),
      data_wait_ps_(ctx.stats().counter(basename(), "data_wait_time",
                                        "time the engine waited for streamed operands", "ps")),
      overhead_ps_(ctx.stats().counter(basename(), "overhead_time",
                                       "fixed per-kernel device overhead time (and the attention "
                                       "kernel's latency)",
                                       "ps")),
      host_wait_ps_(ctx.stats().counter(basename(), "host_wait_time",
                                        "time the device waited for the host to launch", "ps")),
      kernels_(ctx.stats().counter(basename(), "kernels", "kernels launched", "count")),
      collective_ps_(ctx.stats().counter(basename(), "collective_time",
                                         "time in collectives (tensor- or expert-parallel)", "ps")),
      host_transfer_ps_(ctx.stats().counter(basename(), "host_transfer_time",
                                            "time in transfers over the host link (KV swaps)",
                                            "ps")),
      idle_ps_(ctx.stats().counter(basename(), "idle_time",
                                   "time with nothing to run (waiting for arrivals)", "ps")),
      spill_bytes_(ctx.stats().counter(basename(), "activation_spill_bytes",
                                       "activation bytes that did not fit in SRAM and moved to or "
                                       "from the weights' memory",
                                       "bytes")),
      tiles_(ctx.stats().counter(basename(), "tiles", "operand tiles streamed", "count")),
      staging_violations_(ctx.stats().counter(
          basename(), "staging_violations",
          "staging-buffer operations refused by the scratchpad state machine (fill only an "
          "EMPTY or RELEASED buffer, consume only a READY one, one fence per fill)",
          "count")),
      demand_tiles_(ctx.stats().counter(
          basename(), "demand_tiles",
          "tiles fetched on demand from a memory other than the fast memory (all tiles without a "
          "movement controller)",
          "count")),
      fence_wait_ps_(ctx.stats().counter(
          basename(), "fence_wait_ps",
          "time steps waited at their end for outstanding writes (the step's write fence)", "ps")),
      host_attention_ps_(ctx.stats().counter(basename(), "host_attention_ps",
                                             "decode attention computed by the host CPU, from "
                                             "the queries' send to the output's return",
                                             "ps")),
      host_kv_bytes_(ctx.stats().counter(basename(), "host_attention_kv_bytes",
                                         "cached KV bytes the host CPU read for attention",
                                         "bytes")),
      skipped_bytes_(ctx.stats().counter(
          basename(), "skipped_bytes",
          "operand bytes attention went on without (context regions skipped or lost)", "bytes")) {
  if (software_.kernel_jitter.kind_case() != config::Jitter::KIND_NOT_SET) {
    // Each node its own stream (one rank simulated: node[0]'s).
    const uint32_t node = ctx.rank() != nullptr ? ctx.rank()->node : 0;
    kernel_jitter_rng_.emplace(
        ctx.rng_for(std::string(basename()) + ".kernel_jitter.node" + std::to_string(node)));
    kernel_jitter_ps_ =
        &ctx.stats().counter(basename(), "kernel_jitter_time",
                             "extra device time drawn for kernels (kernel_jitter)", "ps");
  }
  if (ctx.rank() != nullptr) {
    rendezvous_wait_ps_ = &ctx.stats().counter(
        basename(), "rendezvous_wait_time",
        "time this rank waited at collectives for the last rank to arrive", "ps");
    rendezvous_last_ = &ctx.stats().counter(
        basename(), "rendezvous_last",
        "collectives this rank arrived at strictly last (no other rank, nor an identical rank "
        "simulated with it, as late)",
        "count");
    if (const uint32_t pp = ctx.config().workload().parallelism().pipeline_parallel();
        pp > 1 && ctx.config().system().has_pod()) {
      // The stages' sends: node s * tp + r to (s + 1) * tp + r, on the whole pipeline's nodes.
      pipe_tp_ = std::max(1u, ctx.config().workload().parallelism().tensor_parallel());
      pipe_pod_ = std::make_shared<PodCollectiveCache>(
          Pod::from_config(ctx.config().system().pod(),
                           ctx.config().system().scale_up().rank_bandwidth_bytes_per_s()),
          pipe_tp_ * pp, collective_.effective_protocols());
      pipe_wait_ps_ = &ctx.stats().counter(
          basename(), "pipeline_wait_time",
          "time this pipeline stage waited for a micro-batch to arrive (its bubbles)", "ps");
      pipe_sends_ = &ctx.stats().counter(
          basename(), "pipeline_sends", "point-to-point sends to the next pipeline stage", "count");
      pipe_send_bytes_ = &ctx.stats().counter(basename(), "pipeline_send_bytes",
                                              "bytes sent to the next pipeline stage", "bytes");
      pipe_send_ps_ = &ctx.stats().counter(
          basename(), "pipeline_send_time",
          "time the sends took on the fabric (launch latency included; the engine goes on)", "ps");
    }
  }
  if (ctx.config().run().max_sim_time_ps() > 0)
    time_limit_ps_ = ctx.config().run().max_sim_time_ps();
  wall_limited_ = ctx.config().run().max_wall_time_s() > 0;
  SC_METHOD(run);
  ctx.stats()
      .formula(
          basename(), "utilization", "fraction of time computing", "fraction",
          [this](TimePs now) { return now ? static_cast<double>(busy_ps_.value()) / now : 0.0; })
      .set_sampling("average_since_start");
  waits_skipped_ = &ctx.stats().counter(
      basename(), "waits_skipped",
      "staging-buffer waits the engine did not wait in the kernel for, as nothing else could act "
      "before them (an exact fast path; 0 with TIERSIM_REFERENCE_PATHS=1)",
      "count");
}

bool ComputeEngine::connect(Component& target, const LinkInfo& link) {
  if (std::string(target.basename()) != params_.sram || target.target_socket() == nullptr) {
    return false;
  }
  sram_socket.bind(*target.target_socket());
  sram_ = &target;
  sram_direct_ = target.serves_direct() && !reference_paths();
  sram_link_latency_ps_ = link.latency_ps;
  sram_bytes_read_ = &ctx().stats().counter(
      basename(), "sram_bytes_read",
      "bytes the engine read from its SRAM itself (landed tiles, activations)", "bytes");
  sram_bytes_written_ =
      &ctx().stats().counter(basename(), "sram_bytes_written",
                             "bytes the engine wrote to its SRAM itself (activations)", "bytes");
  sram_offline_ = offline_windows(ctx().config().system(), params_.sram);
  if (!sram_offline_.empty()) {
    sram_waits_ =
        &ctx().stats().counter(basename(), "sram_offline_waits",
                               "SRAM accesses that waited for the SRAM to come back", "count");
    sram_failures_ = &ctx().stats().counter(
        basename(), "sram_offline_failures",
        "SRAM accesses that failed: the SRAM was offline until the end of the run", "count");
  }
  return true;
}

void ComputeEngine::prepare() {
  dma_ = dynamic_cast<DmaEngine*>(ctx().component(params_.dma));
  if (dma_ == nullptr) throw std::logic_error(std::string(name()) + ": DMA engine missing");
  if (ctx().workload() != nullptr) ctx().workload()->set_expert_cost_model(this);
  if (ctx().config().policy().placement() == config::ORCHESTRATED) {
    OrchestrationParams op = OrchestrationParams::from_config(ctx().config());
    const auto& w = ctx().config().workload();
    if (w.has_replay() && w.replay().use_program()) {
      // A replay's recorded residency program is the run's (validated: wired, no program).
      if (ctx().workload() == nullptr || ctx().workload()->residency_program() == nullptr) {
        throw std::logic_error("use_program: the workload does not hand over its trace's program");
      }
      op.wired_program = *ctx().workload()->residency_program();
      op.wired_program_trace = w.replay().trace();
    }
    orchestrator_ = std::make_unique<Orchestrator>(
        (std::string(basename()) + "_orchestrator").c_str(), std::move(op), ctx());
    orchestrator_->prepare(params_.dma, params_.tile_bytes);
  }
  if (ctx().config().policy().has_thermal_admission()) {
    thermal_admission_ = std::make_unique<ThermalAdmission>(
        ThermalAdmissionParams::from_config(ctx().config().policy().thermal_admission()), ctx(),
        std::string(basename()) + "_thermal_admission");
    if (!ctx().workload()->set_admission_gate(thermal_admission_.get())) {
      throw std::logic_error("thermal admission: the workload schedules no requests");
    }
  }
  const std::string at = std::string("system.components[") + basename() + "].compute";
  auto staging =
      ctx().address_map().allocate(params_.sram, params_.tile_bytes * params_.staging_buffers, 64);
  // Activations live in the SRAM left after the staging buffers; what does not fit spills to
  // a region of the weights' memory and moves by DMA (large prefill chunks).
  const uint64_t needed = std::max<uint64_t>(ctx().workload()->max_activation_bytes(), 64);
  const auto& map = ctx().address_map();
  const uint64_t sram_left = (map.capacity(params_.sram) - map.allocated(params_.sram)) / 64 * 64;
  activation_bytes_ = std::min(needed, sram_left);
  auto act = activation_bytes_ >= 64
                 ? ctx().address_map().allocate(params_.sram, activation_bytes_, 64)
                 : std::nullopt;
  if (!staging || !act) {
    throw ConfigError(
        {ConfigIssue{{},
                     at + ".staging_buffers",
                     "SRAM \"" + params_.sram + "\" cannot hold the staging buffers (" +
                         std::to_string(params_.tile_bytes * params_.staging_buffers) +
                         " bytes) plus a 64-byte activation area"}});
  }
  if (needed > activation_bytes_) {
    auto spill = ctx().address_map().allocate(params_.activation_memory, needed, 4096);
    if (!spill) {
      throw ConfigError({ConfigIssue{{},
                                     at + ".activation_memory",
                                     "\"" + params_.activation_memory +
                                         "\" has no room for the activations that spill from "
                                         "SRAM (" +
                                         std::to_string(needed) + " bytes)"}});
    }
    spill_base_ = *spill;
  }
  staging_base_ = *staging;
  activation_base_ = *act;
  // The staging buffers and the activation area are local buffers of the SRAM (energy).
  Component* sram = ctx().component(params_.sram);
  for (const auto& [base, bytes] :
       {std::pair<uint64_t, uint64_t>{staging_base_, params_.tile_bytes * params_.staging_buffers},
        std::pair<uint64_t, uint64_t>{activation_base_, activation_bytes_}}) {
    const auto decoded = map.decode(base, bytes);
    if (sram != nullptr && decoded) sram->mark_local_buffer(decoded->local_address, bytes);
  }
  if (orchestrator_ && !orchestrator_->params().host_cpu.empty()) {
    const OrchestrationParams& op = orchestrator_->params();
    host_cpu_ = dynamic_cast<DmaEngine*>(ctx().component(op.host_cpu));
    if (host_cpu_ == nullptr) throw std::logic_error(std::string(name()) + ": host CPU missing");
    auto scratch = ctx().address_map().allocate(op.host_memory, needed, 4096);
    if (!scratch) {
      throw ConfigError({ConfigIssue{{},
                                     "policy.orchestration.host_attention.memory",
                                     "\"" + op.host_memory +
                                         "\" has no room for the host attention's queries and "
                                         "outputs (" +
                                         std::to_string(needed) + " bytes)"}});
    }
    host_scratch_ = *scratch;
  }
  const auto& run = ctx().config().run();
  record_ops_ = run.op_records() != config::OP_RECORDS_NONE;
  if (orchestrator_) controller_power_w_ = orchestrator_->params().controller_power_w;
}

void ComputeEngine::add_energy(TimePs now_ps, EnergyLedger& out) const {
  Component::add_energy(now_ps, out);
  if (orchestrator_) out.add(EnergyPart::kController, orchestrator_->controller_energy_j(now_ps));
  out.add(EnergyPart::kComputeActive, params_.active_power_w * ps_to_s(active_ps(now_ps)));
  if (const PodCollectiveCache* fabric = pod_fabric()) {
    // The pod's fabric, charged to this rank as its share: 1/nodes of the standing power.
    const Pod& pod = fabric->pod();
    const double share_s = ps_to_s(now_ps) / pod.nodes();
    out.add(EnergyPart::kLinkSerdes, pod_link_energy_j_);
    out.add(EnergyPart::kLinkIdle, pod.link_idle_power_w() * share_s);
    out.add(EnergyPart::kLaser, pod.laser_power_w() * share_s);
    out.add(EnergyPart::kSwitchBase, pod.switch_power_w() * share_s);
  }
}

void ComputeEngine::note_inactive(TimePs from_ps, TimePs to_ps) {
  // Callers register intervals in time order (a pipeline receive's from the moment it was
  // ready, which may have passed while it waited, but after any interval registered before);
  // only the latest is kept apart, so an interval before it would be lost.
  assert(from_ps >= inactive_from_ps_);
  from_ps = std::max(from_ps, inactive_to_ps_);  // never count a moment twice
  if (to_ps <= from_ps) return;
  inactive_done_ps_ += inactive_to_ps_ - inactive_from_ps_;
  inactive_from_ps_ = from_ps;
  inactive_to_ps_ = to_ps;
}

void ComputeEngine::end_inactive(TimePs to_ps) {
  inactive_to_ps_ = std::max(inactive_from_ps_, std::min(inactive_to_ps_, to_ps));
}

TimePs ComputeEngine::active_ps(TimePs now_ps) const {
  const TimePs in_latest =
      std::min(std::max(now_ps, inactive_from_ps_), inactive_to_ps_) - inactive_from_ps_;
  const TimePs inactive = inactive_done_ps_ + in_latest;
  return now_ps > inactive ? now_ps - inactive : 0;
}

TimePs ComputeEngine::sram_access(tlm::tlm_command cmd, uint64_t address, uint64_t bytes,
                                  TimePs start_ps) {
  const TimePs now = now_ps();
  if (bytes == 0) return start_ps;
  if (sram_range_ == nullptr || !AddressMap::holds(*sram_range_, address, bytes)) {
    const auto decoded = ctx().address_map().decode(address, bytes);
    if (!decoded) throw std::logic_error(std::string(name()) + ": SRAM address out of range");
    sram_range_ = decoded->range;
  }
  const uint64_t local = sram_range_->local_base + (address - sram_range_->base);
  const bool write = cmd == tlm::TLM_WRITE_COMMAND;
  // The SRAM's socket is bound to it directly: served without a payload when it can be (the
  // same service and counts as its b_transport), else through the socket.
  tlm::tlm_generic_payload* p = nullptr;
  if (!sram_direct_) {
    p = ctx().payloads().acquire();
    p->set_command(cmd);
    p->set_address(local);
    p->set_data_ptr(nullptr);
    p->set_data_length(static_cast<unsigned int>(bytes));
    p->set_streaming_width(static_cast<unsigned int>(bytes));
    p->set_byte_enable_ptr(nullptr);
    MovementIntent& intent = PayloadPool::intent(*p);
    intent.op_id = op_.id;
    intent.layer = op_.layer;
    intent.token = op_.step;
    intent.object_class = ObjectClass::kActivation;
    intent.destination = Tier::kSram;
  }
  while (true) {
    bool ok = false;
    TimePs done = 0;
    if (p == nullptr) {
      ok = sram_->serve_direct(local, bytes, write, start_ps + sram_link_latency_ps_, nullptr, 0,
                               &done) == tlm::TLM_OK_RESPONSE;
      done = std::max(done, now);
    } else {
      sc_core::sc_time delay = to_sc_time(start_ps + sram_link_latency_ps_ - now);
      p->set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      sram_socket->b_transport(*p, delay);
      ok = p->is_response_ok();
      done = now + to_ps(delay);
    }
    if (ok) {
      if (p != nullptr) p->release();
      (write ? sram_bytes_written_ : sram_bytes_read_)->inc(bytes);
      return done + sram_link_latency_ps_;
    }
    // Refused: the SRAM is offline (system.faults). Wait for it to come back; when it never
    // does, count the failure and go on as if the data had arrived (as after a failed operand
    // transfer).
    const TimePs at = start_ps + sram_link_latency_ps_;
    const TimePs back = online_after(sram_offline_, at);
    if (back == at) throw std::logic_error(std::string(name()) + ": SRAM rejected an access");
    if (back == FaultWindow::kNever) {
      if (p != nullptr) p->release();
      sram_failures_->inc();
      return at;
    }
    sram_waits_->inc();
    start_ps = back - sram_link_latency_ps_;
  }
}

TimePs ComputeEngine::op_compute_ps(double flops, uint32_t rows) const {
  switch (op_.op_class) {
    case OpClass::kMatrix:
      // Each tile of an op asks for the same rows: the rate is computed once per (dtype, rows).
      if (rows != rate_rows_ || op_.compute_dtype != rate_dtype_) {
        rate_rows_ = rows;
        rate_dtype_ = op_.compute_dtype;
        matrix_rate_ = params_.matrix_flops_per_s(op_.compute_dtype, rows);
      }
      // Equal tiles of an op have equal FLOPs: their time is converted once.
      if (flops != memo_flops_ || matrix_rate_ != memo_rate_) {
        memo_flops_ = flops;
        memo_rate_ = matrix_rate_;
        memo_compute_ps_ = compute_time_ps(flops, matrix_rate_);
      }
      return memo_compute_ps_;
    case OpClass::kVector:
      return compute_time_ps(flops, params_.vector_rate_flops_per_s());
    case OpClass::kCollective:
      return op_.kind == OpKind::kAllGather ? collective_.all_gather_ps(op_.collective_bytes)
                                            : collective_.all_reduce_ps(op_.collective_bytes);
    case OpClass::kWait:
      return op_.delay_ps;
    case OpClass::kPointToPoint:
      return 0;  // timed by phase_pipe
    case OpClass::kHostTransfer: {
      const double rate =
          op_.kind == OpKind::kSwapIn ? host_from_bytes_per_s_ : host_to_bytes_per_s_;
      return host_link_latency_ps_ +
             (rate > 0 ? static_cast<TimePs>(std::llround(double(op_.host_bytes) / rate * 1e12))
                       : 0);
    }
  }
  return 0;
}

void ComputeEngine::substitute_restores() {
  const std::string& fast = orchestrator_->params().fast_memory;
  uint64_t kv_read = 0;
  bool any = false;
  for (uint16_t i = 0; i < op_.operand_count; ++i) {
    const Operand& o = op_.operand(i);
    if (o.access != Access::kRead) continue;
    kv_read += o.bytes;
    const ObjectInfo& kv = ctx().objects().get(o.object);
    any |= kv.hidden_states.valid() && kv.home != fast;
  }
  if (!any || kv_read == 0) return;
  restore_operands_.clear();
  const double attention_flops = op_.flops;
  const double attention_rate = params_.matrix_flops_per_s(op_.compute_dtype, op_.rows);
  for (uint16_t i = 0; i < op_.operand_count; ++i) {
    Operand n = op_.operand(i);
    if (n.access == Access::kRead) {
      // The attention's own arithmetic, by its share of the cached bytes.
      const double share = attention_flops * double(n.bytes) / double(kv_read);
      n.rows = op_.rows;
      n.flops = share;
      const ObjectInfo& kv = ctx().objects().get(n.object);
      if (kv.hidden_states.valid() && kv.home != fast && kv.token_bytes > 0) {
        const ObjectInfo& hs = ctx().objects().get(kv.hidden_states);
        const uint64_t tokens = n.bytes / kv.token_bytes;
        const uint64_t hidden_bytes = tokens * hs.token_bytes;
        const double rate = params_.matrix_flops_per_s(op_.compute_dtype, uint32_t(tokens));
        if (tokens > 0 && orchestrator_->restore_by_recompute(n.object, kv, n.bytes, hidden_bytes,
                                                              rate, op_start_)) {
          // K and V projected from the hidden states (rows: the tokens), then the attention;
          // its FLOPs are scaled so that this operand's single rate gives both times.
          const double recompute = double(n.bytes) * kv.recompute_flops_per_byte;
          n.offset_bytes = n.offset_bytes / kv.token_bytes * hs.token_bytes;
          n.object = kv.hidden_states;
          n.bytes = hidden_bytes;
          n.rows = uint32_t(tokens);
          n.flops = recompute + share * rate / attention_rate;
          op_.flops += recompute;
        }
      }
    }
    restore_operands_.push_back(n);
  }
  op_.set_operands(restore_operands_.data(), static_cast<uint16_t>(restore_operands_.size()));
  op_.per_operand_compute = true;
}

void ComputeEngine::begin_op(TimePs now) {
  op_start_ = now;
  demand_op_bytes_ = 0;
  demand_op_busy_ps_ = 0;
  demand_op_land_ = 0;
  if (orchestrator_ && op_.kind == OpKind::kAttention &&
      orchestrator_->params().kv_restore != config::KV_RESTORE_TRANSFER) {
    substitute_restores();
  }
  if (op_.step.value() != current_step_) {
    current_step_ = op_.step.value();
    if (orchestrator_) orchestrator_->on_step_start(current_step_);
  }
  // Tenancy: a tenant's own step begins (directives counted in its own steps).
  if (orchestrator_ && op_.tenant.valid() &&
      (op_.tenant != step_tenant_ || op_.tenant_step != tenant_step_)) {
    step_tenant_ = op_.tenant;
    tenant_step_ = op_.tenant_step;
    orchestrator_->on_tenant_step(step_tenant_, tenant_step_);
  }
  op_kernels_ = software_.kernels(op_);
  op_dequant_flops_ = 0;
  // A device attention kernel's time before its KV streams at full rate (the software stack's
  // kernel family); host-side attention and fused-away kernels pay none.
  op_latency_ps_ = op_.kind == OpKind::kAttention && op_kernels_ > 0 && !on_host()
                       ? software_.attention_latency_ps
                       : 0;
  kernels_.inc(op_kernels_);
  stream_bytes_ = 0;
  stream_issued_ = 0;
  for (uint16_t i = 0; i < op_.operand_count; ++i) {
    const Operand& o = op_.operand(i);
    if (o.access != Access::kRead) continue;
    stream_bytes_ += o.bytes;
  }
  tiles_issued_ = 0;
  if (orchestrator_) orchestrator_->on_op_start(op_, now);
  operand_ = 0;
  operand_offset_ = 0;
  ring_head_ = 0;
  in_flight_ = 0;
  compute_busy_ps_ = 0;
  last_land_ = now;
  overhead_ps_.inc(params_.op_overhead_ps * op_kernels_ + op_latency_ps_);
}

TimePs ComputeEngine::issue_tile(TimePs now) {
  // Advance the cursor to the next read operand with bytes left.
  while (op_.operand(operand_).access != Access::kRead ||
         operand_offset_ >= op_.operand(operand_).bytes) {
    ++operand_;
    operand_offset_ = 0;
  }
  const Operand& o = op_.operand(operand_);
  const ObjectInfo& obj = ctx().objects().get(o.object);
  uint64_t bytes = std::min(params_.tile_bytes, o.bytes - operand_offset_);
  uint64_t source = obj.address + o.offset_bytes + operand_offset_;
  uint64_t admit = 0;  // a cache frame the landed tile is copied into
  TimePs ready = now;
  TimePs wanted = now, decided = 0;  // a controller's decision this tile waited for
  double scale = 1.0;                // a lower-precision resident copy
  // Vector FLOPs per logical byte: a narrow KV's conversion in the attention kernel (KV bytes
  // only: hidden states a restore recomputes from are in the compute dtype), or, when the
  // orchestrator serves a lowered copy, that copy's dequantisation instead (one conversion
  // straight to the compute dtype).
  double dequant_per_byte = obj.cls == ObjectClass::kKvCache
                                ? op_.kv_elements_per_byte * software_.kv_dequant_flops_per_element
                                : 0.0;
  if (orchestrator_) {
    // Where the bytes are: resident, staged by a prefetch (ready when it landed and the
    // consumer was told), or at home; a tile does not cross from one to the other. A prefetch
    // decided but not issued yet: wait for it.
    const auto src = orchestrator_->locate(o.object, o.offset_bytes + operand_offset_, bytes, now);
    if (src.pending) {
      if (wanted_ps_ == kNotWaiting) wanted_ps_ = now;
      return src.ready_ps;
    }
    if (src.skip) {
      // A context region attention goes on without: neither read nor computed on.
      operand_offset_ += src.bytes;
      stream_issued_ += src.bytes;
      skipped_bytes_.inc(src.bytes);
      return 0;
    }
    bytes = src.bytes;
    source = src.address;
    ready = src.ready_ps;
    admit = src.admit_address;
    scale = src.scale;
    if (src.dequant_flops_per_byte > 0) dequant_per_byte = src.dequant_flops_per_byte;
    wanted = wanted_ps_ == kNotWaiting ? now : wanted_ps_;
    decided = src.decided_ps;
    gather_.clear();
    if (software_.gather_paged_kv && admit == 0 && scale == 1.0 &&
        src.dequant_flops_per_byte == 0 && ready == now &&
        src.address == obj.address + o.offset_bytes + operand_offset_ &&
        src.path != Orchestrator::Path::kStaged && orchestrator_->reads_in_place(o.object, now)) {
      bytes = gather(o, bytes, source);
    }
    orchestrator_->record(src, bytes, wanted, ready);
    wanted_ps_ = kNotWaiting;
    if (src.path == Orchestrator::Path::kDemand) {
      demand_tiles_.inc();
      demand_op_bytes_ += bytes;
      demand_op_pending_ = true;
    }
  } else {
    gather_.clear();
    bytes = gather(o, bytes, source);
    demand_tiles_.inc();
  }
  const uint32_t slot = tiles_issued_ % params_.staging_buffers;
  const uint64_t buffer = staging_base_ + static_cast<uint64_t>(slot) * params_.tile_bytes;

  MovementIntent intent;
  intent.object = o.object;
  intent.object_class = obj.cls;
  intent.op = MoveOp::kDemandFetch;
  intent.op_id = op_.id;
  intent.layer = op_.layer;
  intent.token = op_.step;
  // A lower-precision copy moves and stores fewer bytes than the tile's logical ones.
  const uint64_t stored =
      scale < 1.0 ? std::max<uint64_t>(1, uint64_t(std::ceil(double(bytes) * scale))) : bytes;
  const TimePs land =
      gather_.size() > 1
          ? dma_->transfer_gather(gather_.data(), static_cast<uint32_t>(gather_.size()), buffer,
                                  intent, ready)
          : dma_->transfer(source, buffer, stored, intent, ready);
  if (demand_op_pending_) {
    // The path's service of this tile: from when it was free for it (its issue, or the
    // previous demand tile's landing) to the landing. Summed, the time the path was busy for
    // this op, whether the stream was path-bound or waited for the arithmetic.
    const TimePs from = std::max(ready, demand_op_land_);
    if (land > from) demand_op_busy_ps_ += land - from;
    demand_op_land_ = std::max(demand_op_land_, land);
    demand_op_pending_ = false;
  }
  if (gather_.size() > 1) {
    operand_ = gather_last_;
    operand_offset_ = op_.operand(operand_).bytes;
  } else {
    operand_offset_ += bytes;
  }
  stream_issued_ += bytes;
  ++tiles_issued_;
  tiles_.inc();
  last_land_ = std::max(last_land_, land);

  // Schedule this tile's compute: after it lands and after the previous tile. A grouped op's
  // tile carries its own operand's arithmetic; otherwise the op's, pro rata.
  const double tile_flops =
      op_.per_operand_compute
          ? o.flops * static_cast<double>(bytes) / static_cast<double>(o.bytes)
          : op_.flops * static_cast<double>(bytes) / static_cast<double>(stream_bytes_);
  const uint32_t rows = op_.per_operand_compute ? o.rows : op_.rows;
  const TimePs start = std::max(land, compute_free_);
  if (land > compute_free_) {
    data_wait_ps_.inc(land - compute_free_);
    // The engine idles for this tile; the part before its decision was taken is control's.
    const TimePs idle_from = std::max(compute_free_, wanted);
    const TimePs control_until = std::min(decided, land);
    if (orchestrator_ && control_until > idle_from) {
      orchestrator_->record_control_idle(control_until - idle_from);
    }
  }
  const TimePs read_done = sram_access(tlm::TLM_READ_COMMAND, buffer, stored, start);
  TimePs math_done = start + op_compute_ps(tile_flops, rows);
  if (dequant_per_byte > 0) {
    op_dequant_flops_ += double(bytes) * dequant_per_byte;
    math_done +=
        compute_time_ps(double(bytes) * dequant_per_byte, params_.vector_rate_flops_per_s());
  }
  compute_free_ = std::max(read_done, math_done);
  compute_busy_ps_ += compute_free_ - start;
  TimePs release = compute_free_;
  if (admit != 0) {
    // The dynamic cache admitted this page: copy the landed tile into its frame; the buffer
    // is free when both the compute and the copy are done.
    MovementIntent copy = intent;
    copy.op = MoveOp::kPromote;
    release = std::max(release, dma_->transfer(buffer, admit, stored, copy, land));
    orchestrator_->record_admission(stored);
  }
  free_ring_[(ring_head_ + in_flight_) % params_.staging_buffers] = release;
  ++in_flight_;
  // The buffer's life, dated as scheduled: filled from now, ready when the tile lands (the
  // fence), consumed from the compute start, released when the compute is done.
  if (!(buffers_.fill(slot, now) && buffers_.fence(slot, land) && buffers_.consume(slot, start) &&
        buffers_.release(slot, release))) {
    staging_violations_.inc();
  }
  return 0;
}

uint64_t ComputeEngine::gather(const Operand& first, uint64_t bytes, uint64_t source) {
  // Under PAGED_KV_GATHERED, only a part of a KV object that ends its operand, of an op that
  // times its arithmetic as a whole, gathers; the next read operands join while each continues
  // the same object and fits whole.
  gather_last_ = operand_;
  if (!software_.gather_paged_kv) return bytes;  // PAGED_KV_PER_RUN: no lookup per tile
  const ObjectInfo& obj = ctx().objects().get(first.object);
  if (obj.cls != ObjectClass::kKvCache || op_.per_operand_compute ||
      operand_offset_ + bytes != first.bytes || bytes >= params_.tile_bytes) {
    return bytes;
  }
  const uint64_t base = obj.address;
  uint64_t total = bytes;
  for (uint16_t i = operand_ + 1; i < op_.operand_count; ++i) {
    const Operand& n = op_.operand(i);
    if (n.access != Access::kRead) continue;
    if (n.bytes == 0) {
      gather_last_ = i;
      continue;
    }
    if (n.object != first.object || n.bytes > params_.tile_bytes - total) break;
    if (gather_.empty()) gather_.push_back({source, bytes});
    gather_.push_back({base + n.offset_bytes, n.bytes});
    total += n.bytes;
    gather_last_ = i;
  }
  if (gather_.size() <= 1) {
    gather_.clear();
    gather_last_ = operand_;
  }
  return total;
}

void ComputeEngine::summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {
  {
    const double per = tokens ? 1.0 / double(tokens) : 0.0;
    out.push_back({"demand_tiles_per_token", double(demand_tiles_.value()) * per, "tiles/token"});
    out.push_back(
        {"stall_fence_us_per_token", double(fence_wait_ps_.value()) * per / 1e6, "us/token"});
  }
  if (orchestrator_) orchestrator_->summarize(out, tokens);
  if (thermal_admission_) thermal_admission_->summarize(out, now_ps());
  if (const PodCollectiveCache* fabric = pod_fabric()) {
    // The pod's fabric as a whole (reported; the energy above charges this rank's share).
    const Pod& pod = fabric->pod();
    out.push_back({"pod_ports", double(pod.ports()), "ports"});
    out.push_back({"pod_link_power_w_per_port", pod.link_power_w_per_port(), "W"});
    out.push_back({"pod_static_power_w", pod.static_power_w(), "W"});
    if (pod.cost_usd() > 0) {
      out.push_back({"pod_fabric_cost_usd_per_accelerator", pod.cost_usd() / pod.nodes(), "USD"});
    }
  }
  if (ctx_const().config().system().has_pod()) {
    // Pod memory nodes: the share this accelerator's figures were timed and charged with.
    const config::Config& cfg = ctx_const().config();
    for (const auto& n : cfg.system().pod().memory_nodes()) {
      const PoolShare s = pool_share_of_memory(cfg, n.memory());
      out.push_back({"pool_" + n.memory() + "_sharers", double(s.sharers), "accelerators"});
      out.push_back({"pool_" + n.memory() + "_load_multiplier", s.load_multiplier, "x"});
    }
  }
  if (host_cpu_ != nullptr) {
    const double per = tokens ? 1.0 / double(tokens) : 0.0;
    out.push_back({"host_attention_ms_per_token", double(host_attention_ps_.value()) * per / 1e9,
                   "ms/token"});
    out.push_back(
        {"host_attention_kv_bytes_per_token", double(host_kv_bytes_.value()) * per, "bytes/token"});
  }
}

MovementIntent ComputeEngine::operand_intent(const Operand& o, MoveOp op) {
  MovementIntent intent;
  intent.object = o.object;
  intent.object_class = ctx().objects().get(o.object).cls;
  intent.op = op;
  intent.op_id = op_.id;
  intent.layer = op_.layer;
  intent.token = op_.step;
  return intent;
}

bool ComputeEngine::on_host() const {
  return host_cpu_ != nullptr && op_.kind == OpKind::kAttention && op_.max_queries == 1;
}

TimePs ComputeEngine::host_copy(uint64_t bytes, bool to_host, TimePs start_ps) {
  return move_activations(host_scratch_, bytes, to_host, start_ps);
}

TimePs ComputeEngine::host_attention(TimePs now) {
  // Queries (and the new keys and values) cross to the host; the CPU then reads every cached
  // KV byte while it computes (overlapped); the output crosses back.
  const TimePs sent = host_copy(op_.activation_read_bytes, true, now);
  TimePs read_done = sent;
  uint64_t kv = 0;
  for (uint16_t i = 0; i < op_.operand_count; ++i) {
    const Operand& o = op_.operand(i);
    if (o.access != Access::kRead) continue;
    const ObjectInfo& obj = ctx().objects().get(o.object);
    const MovementIntent intent = operand_intent(o, MoveOp::kDemandFetch);
    for (uint64_t off = 0; off < o.bytes;) {
      const uint64_t n = std::min<uint64_t>(o.bytes - off, 1ULL << 30);
      read_done =
          std::max(read_done, host_cpu_->read(obj.address + o.offset_bytes + off, n, intent, sent));
      off += n;
    }
    kv += o.bytes;
  }
  const TimePs math = sent + compute_time_ps(op_.flops, orchestrator_->params().host_flops_per_s);
  // The device idles (no active power) from the queries' send to the output's copy back.
  note_inactive(sent, std::max(read_done, math));
  const TimePs back = host_copy(op_.activation_write_bytes, false, std::max(read_done, math));
  host_attention_ps_.inc(back - now);
  host_kv_bytes_.inc(kv);
  return back;
}

TimePs ComputeEngine::spill(uint64_t bytes, bool write, TimePs start_ps) {
  const TimePs done = move_activations(spill_base_, bytes, write, start_ps);
  spill_bytes_.inc(bytes);
  return done;
}

TimePs ComputeEngine::move_activations(uint64_t other, uint64_t bytes, bool out, TimePs start_ps) {
  // In chunks of at most a tile and at most the SRAM activation area, out of it (`out`) or
  // into it.
  MovementIntent intent;
  intent.object_class = ObjectClass::kActivation;
  intent.op = out ? MoveOp::kWriteBack : MoveOp::kDemandFetch;
  intent.op_id = op_.id;
  intent.layer = op_.layer;
  intent.token = op_.step;
  TimePs done = start_ps;
  const uint64_t chunk_max = std::min(params_.tile_bytes, activation_bytes_);
  for (uint64_t off = 0; off < bytes;) {
    const uint64_t chunk = std::min(chunk_max, bytes - off);
    const TimePs t = out ? dma_->transfer(activation_base_, other + off, chunk, intent, start_ps)
                         : dma_->transfer(other + off, activation_base_, chunk, intent, start_ps);
    done = std::max(done, t);
    off += chunk;
  }
  return done;
}

void ComputeEngine::finish_op(TimePs now) {
  if (ctx().on_op_end) ctx().on_op_end(op_.step.value(), op_.layer, now);
  // Off-chip writes (KV append) leave from the activation area once the op is done.
  for (uint16_t i = 0; i < op_.operand_count; ++i) {
    const Operand& o = op_.operand(i);
    if (o.access != Access::kWrite) continue;
    const ObjectInfo& obj = ctx().objects().get(o.object);
    const MovementIntent intent = operand_intent(o, MoveOp::kWriteBack);
    uint64_t done_bytes = 0;
    while (done_bytes < o.bytes) {
      // The source is the activation area: never read past its end.
      const uint64_t chunk =
          std::min({o.bytes - done_bytes, params_.tile_bytes, activation_bytes_});
      writes_done_ = std::max(
          writes_done_, dma_->transfer(activation_base_, obj.address + o.offset_bytes + done_bytes,
                                       chunk, intent, now));
      // Context regions: the window page (or digest) in the fast memory gets it too.
      if (const uint64_t shadow =
              orchestrator_ ? orchestrator_->kv_shadow(o.object, o.offset_bytes + done_bytes) : 0) {
        writes_done_ =
            std::max(writes_done_, dma_->transfer(activation_base_, shadow, chunk, intent, now));
      }
      done_bytes += chunk;
    }
  }
  if (orchestrator_ && demand_op_bytes_ > 0 && demand_op_busy_ps_ > 0) {
    orchestrator_->observe_home_rate(demand_op_bytes_, demand_op_busy_ps_);
  }
  if ((op_.kind == OpKind::kExpertGateUp || op_.kind == OpKind::kExpertDown) && stream_bytes_ > 0 &&
      last_land_ > stream_start_) {
    expert_rate_this_step_ =
        std::max(expert_rate_this_step_,
                 double(stream_bytes_) / (double(last_land_ - stream_start_) / kPsPerS));
  }
  ops_.inc();
  flops_.add(op_.flops + op_dequant_flops_);
  busy_ps_.inc(compute_busy_ps_);

  const auto op_records = ctx().config().run().op_records();
  if (record_ops_ && (op_records == config::OP_RECORDS_ALL || op_.step.value() == 0)) {
    uint64_t offchip = 0;
    for (uint16_t i = 0; i < op_.operand_count; ++i)
      offchip += op_.operand(i).bytes;
    const TimePs streaming = stream_bytes_ ? last_land_ - stream_start_ : 0;
    const TimePs overhead = stream_start_ - op_start_;  // host wait and device launch overhead
    const TimePs active = now - stream_start_;
    BoundBy bound = streaming >= compute_busy_ps_ ? BoundBy::kMemory : BoundBy::kCompute;
    if (overhead > active) bound = BoundBy::kOverhead;
    ctx().records().ops.push_back(OpRecord{
        op_.step.value(), op_.layer.valid() ? op_.layer.value() : UINT32_MAX, op_.kind, op_start_,
        now, offchip, 2 * stream_bytes_ + op_.activation_read_bytes + op_.activation_write_bytes,
        op_.flops, bound});
  }
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "compute",
    "compute engine and op scheduler: peak FLOP/s per dtype, per-op overhead, operands "
    "streamed through SRAM staging buffers",
    [](const config::Config& root, const config::Component& c, Validator& v) {
      ComputeParams::validate(root, c.compute(), v);
      OrchestrationParams::validate(root, v.root(""));
      ThermalAdmissionParams::validate(root, v.root(""));
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      return with_energy(std::make_unique<ComputeEngine>(
                             c.name().c_str(), ComputeParams::from_config(c.compute()), ctx),
                         c.compute().energy_pj_per_flop(), c.compute().static_power_w(),
                         EnergyPart::kCompute, EnergyPart::kComputeStatic);
    },
    nullptr});
}  // namespace

}  // namespace tiersim
