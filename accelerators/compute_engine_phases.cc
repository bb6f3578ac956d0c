// The compute engine's op state machine (compute_engine.h): the SC_METHOD `run` and its phases,
// fetching the next op, its fixed overhead, streaming its operands tile by tile, finishing it and
// ending the step. The engine's set-up, tiles, off-device paths, energy and summary are in
// compute_engine.cc.
#include <algorithm>
#include <cstring>
#include <vector>

#include "accelerators/compute_engine.h"
#include "accelerators/dma_engine.h"
#include "fabric/serial_link.h"
#include "models/core/context.h"
#include "models/core/reference_paths.h"
#include "models/core/rendezvous.h"
#include "models/core/workload.h"

namespace tiersim {

ComputeEngine::PhaseResult ComputeEngine::phase_fetch(TimePs now) {
  // run.max_wall_time_s, between ops (a clock read per op) and every 4096th tile: a step of a
  // large serving batch, a long replayed trace or an op of millions of tiles can take many
  // seconds of wall time (the driver also checks at every step's end).
  if (ctx().wall_limit().expired()) {
    sc_core::sc_stop();
    return PhaseResult::stop();
  }
  if (step_begins_) {
    ctx().workload()->begin_step(now);
    step_begins_ = false;
  }
  if (!ctx().workload()->next(op_)) {
    phase_ = Phase::kDone;
    if (ctx().on_done) ctx().on_done();
    // Every rank simulated: the run ends with the last rank's workload; a rank done before it
    // (a pipeline's first stage, during the drain) idles until then.
    if (ctx().rank() != nullptr) note_inactive(now, kMaxSimTimePs);
    if (ctx().rank() == nullptr || ctx().rank()->group->finish()) sc_core::sc_stop();
    return PhaseResult::stop();
  }
  if (op_.kind == OpKind::kPredictedPass) {
    // A serving pass predicted, not simulated (run.fast_forward): the whole step, its host gap
    // included, ends after its predicted length; nothing is launched or streamed. The length
    // holds the host's lead over the device as it stands after a pass; a lead beyond that (the
    // host's loop after an idle wait, which a device-bound overlapped stack never exposes
    // otherwise) delays the pass as it would delay its first launch.
    current_step_ = op_.step.value();
    const int64_t lead = int64_t(host_free_) - int64_t(now);
    const int64_t beyond = lead - std::max<int64_t>(0, pass_host_lead_ps_);
    phase_ = Phase::kStepEnd;
    return PhaseResult::wait(now + op_.delay_ps + TimePs(std::max<int64_t>(0, beyond)));
  }
  if (op_.kind == OpKind::kIdle) {
    // Waiting for an arrival: the delay counts from when the workload planned it (now), so the
    // wait ends at the arrival, or when the host finishes its step work if that is later, not a
    // host step after the arrival. (A controller's hold, kHold, counts from when the host is
    // free: its idle share comes on top of the host's work.)
    const TimePs until = now + op_.delay_ps, launched = std::max(now, host_free_);
    op_.delay_ps = until > launched ? until - launched : 0;
  }
  begin_op(now);
  // The host launches the op's kernels; synchronously it first waits for the device.
  if (op_kernels_ > 0) {
    host_free_ = std::max(host_free_, software_.synchronize_each_kernel ? now : TimePs{0}) +
                 op_kernels_ * software_.host_launch_ps;
  }
  const TimePs launched = std::max(now, host_free_);
  if (launched > now) {
    host_wait_ps_.inc(launched - now);
    note_inactive(now, launched);
  }
  TimePs jitter = 0;
  if (kernel_jitter_rng_) {
    for (uint32_t k = 0; k < op_kernels_; ++k)
      jitter += draw_jitter(software_.kernel_jitter, *kernel_jitter_rng_);
    kernel_jitter_ps_->inc(jitter);
  }
  const TimePs ready = launched + op_kernels_ * params_.op_overhead_ps + op_latency_ps_ + jitter;
  phase_ = Phase::kOverhead;
  return ready > now ? PhaseResult::wait(ready) : PhaseResult::go_on();
}

ComputeEngine::PhaseResult ComputeEngine::phase_overhead(TimePs now) {
  stream_start_ = now;
  if (on_host()) {
    // The device waits while the host computes the attention.
    op_end_ = host_attention(now);
    last_land_ = op_end_;
    phase_ = Phase::kFinish;
    return op_end_ > now ? PhaseResult::wait(op_end_) : PhaseResult::go_on();
  }
  compute_free_ = sram_access(tlm::TLM_READ_COMMAND, activation_base_,
                              std::min(op_.activation_read_bytes, activation_bytes_), now);
  if (op_.activation_read_bytes > activation_bytes_) {
    compute_free_ =
        std::max(compute_free_, spill(op_.activation_read_bytes - activation_bytes_, false, now));
  }
  phase_ = Phase::kStream;
  return PhaseResult::go_on();
}

ComputeEngine::PhaseResult ComputeEngine::phase_stream(TimePs now) {
  while (in_flight_ > 0 && free_ring_[ring_head_] <= now) {
    ring_head_ = (ring_head_ + 1) % params_.staging_buffers;
    --in_flight_;
  }
  TimePs blocked_until = 0;  // a tile waits for a prefetch not issued yet
  if (ctx().wall_limit().poll()) {
    sc_core::sc_stop();
    return PhaseResult::stop();
  }
  while (stream_issued_ < stream_bytes_ && in_flight_ < params_.staging_buffers) {
    blocked_until = issue_tile(now);
    if (blocked_until != 0) break;
  }
  if (stream_issued_ < stream_bytes_) {
    TimePs wake = blocked_until != 0 ? std::max(blocked_until, now) : free_ring_[ring_head_];
    if (blocked_until != 0 && in_flight_ > 0) wake = std::min(wake, free_ring_[ring_head_]);
    return PhaseResult::wait(wake);
  }
  if (stream_bytes_ == 0) {
    // Nothing streamed: the op computes on on-chip activations only (a collective moves them
    // over the scale-up fabric).
    const TimePs start = std::max(compute_free_, now);
    const RankSlot* rank = ctx().rank();
    if (op_.op_class == OpClass::kPointToPoint) {
      pipe_ready_ps_ = start;
      phase_ = Phase::kPipe;
      return phase_pipe(now);
    }
    if (rank != nullptr && op_.op_class == OpClass::kCollective) {
      // Every rank simulated: the collective starts when the last rank arrives.
      Rendezvous& rv = rank->group->rendezvous(rank->collective_group);
      rendezvous_arrival_ps_ = start;
      // The op itself: the ranks of a group make the same op stream, numbered alike, so every
      // meeting has its own key (a pipeline stage's gather after a receive and its LM head's
      // all-gather too).
      const uint64_t key = (op_.id.value() << 8) | uint64_t(op_.kind);
      if (!rv.arrive(rank->party, start, key, &rendezvous_generation_)) {
        phase_ = Phase::kRendezvous;
        return PhaseResult::wait_event(rv.event());
      }
      double energy_j = 0;
      const TimePs t = collective_time_ps(&energy_j);
      rv.release(rv.latest_ps() + t, energy_j);
      phase_ = Phase::kRendezvous;
      return phase_rendezvous(now);
    }
    if (op_.kind == OpKind::kIdle && rank != nullptr && rank->doorbell != nullptr) {
      // Data-parallel serving: waiting, open-ended, until the front end delivers a request here
      // (a replica's idle op never has a length of its own).
      await_start_ps_ = start;
      // Inactive from now: a run that stops during the wait counts it as idle; the interval is
      // cut where the wait ends.
      note_inactive(start, kMaxSimTimePs);
      phase_ = Phase::kAwait;
      return phase_await(now);
    }
    TimePs end;
    if (op_.op_class == OpClass::kCollective) {
      double energy_j = 0;
      end = start + collective_time_ps(&energy_j);
      collective_ps_.inc(end - start);
      // This rank's share of the collective's link energy (the ranks are symmetric).
      if (collective_.pod) pod_link_energy_j_ += energy_j / collective_.ranks;
    } else {
      end = start + op_compute_ps(op_.flops, op_.rows);
    }
    if (op_.op_class == OpClass::kHostTransfer) host_transfer_ps_.inc(end - start);
    if (op_.op_class == OpClass::kWait) {
      idle_ps_.inc(end - start);
      note_inactive(start, end);
    }
    compute_busy_ps_ += end - start;
    compute_free_ = end;
  }
  return write_activations(now);
}

TimePs ComputeEngine::collective_time_ps(double* energy_j) {
  if (op_.traffic != nullptr) {
    // Expert-parallel dispatch or combine: the routed traffic as flows on the pod.
    // Across scale-out domains, in two tiers (a token once per domain over the NICs).
    const CollectiveResult r =
        op_.domain_traffic != nullptr
            ? collective_.pod->two_tier_all_to_all(op_.traffic, op_.domain_traffic,
                                                   op_.kind == OpKind::kEpCombine)
            : collective_.pod->all_to_all(op_.traffic, collective_.algorithm);
    *energy_j = r.energy_j;
    return r.total_ps();
  }
  *energy_j =
      collective_.pod
          ? collective_.pod_result(op_.kind == OpKind::kAllGather, op_.collective_bytes).energy_j
          : 0.0;
  return op_compute_ps(op_.flops, op_.rows);
}

ComputeEngine::PhaseResult ComputeEngine::phase_rendezvous(TimePs now) {
  Rendezvous& rv = ctx().rank()->group->rendezvous(ctx().rank()->collective_group);
  // Woken by an earlier meeting's notification (it arrived in the same delta cycle): wait on.
  if (!rv.is_released(rendezvous_generation_)) return PhaseResult::wait_event(rv.event());
  const Rendezvous::Release& r = rv.released(rendezvous_generation_);
  rendezvous_wait_ps_->inc(r.latest_ps - rendezvous_arrival_ps_);
  if (r.straggler == int64_t{ctx().rank()->party}) rendezvous_last_->inc();
  collective_ps_.inc(r.end_ps - r.latest_ps);
  if (collective_.pod) pod_link_energy_j_ += r.energy_j / collective_.ranks;
  // The wait for the last rank is not the engine's work (counted in rendezvous_wait_time).
  compute_busy_ps_ += r.end_ps - r.latest_ps;
  compute_free_ = r.end_ps;
  return write_activations(now);
}

ComputeEngine::PhaseResult ComputeEngine::phase_pipe(TimePs now) {
  const RankSlot* rank = ctx().rank();
  if (rank == nullptr || pipe_wait_ps_ == nullptr || !pipe_pod_) {
    throw std::logic_error(std::string(name()) + ": a pipeline op outside a simulated pipeline");
  }
  const TimePs start = pipe_ready_ps_;
  if (op_.kind == OpKind::kPipeSend) {
    // The stage's messages (one per tensor-parallel rank, sent together) as flows on the pod
    // under the library's protocols (an uneven all-to-all, ONE_SHOT); the engine goes on while
    // they travel, as a send on its own stream does.
    const CollectiveResult r = pipe_pod_->all_to_all(op_.traffic, config::ONE_SHOT);
    rank->group->pipe(op_.peer).post(start + r.total_ps());
    pipe_sends_->inc();
    pipe_send_bytes_->inc(op_.collective_bytes);
    pipe_send_ps_->inc(r.total_ps());
    pod_link_energy_j_ += r.energy_j / pipe_tp_;  // this rank's message's share
    compute_free_ = start;
    return write_activations(now);
  }
  TimePs arrival = 0;
  if (!rank->group->pipe(rank->node).take(&arrival)) {
    return PhaseResult::wait_event(rank->group->pipe(rank->node).posted());
  }
  const TimePs end = std::max(start, arrival);
  pipe_wait_ps_->inc(end - start);
  if (end > start) note_inactive(start, end);
  compute_free_ = end;
  return write_activations(now);
}

ComputeEngine::PhaseResult ComputeEngine::phase_await(TimePs now) {
  if (!ctx().workload()->requests_pending(now)) {
    return PhaseResult::wait_event(ctx().rank()->doorbell->rung());
  }
  const TimePs end = std::max(now, await_start_ps_);
  idle_ps_.inc(end - await_start_ps_);
  end_inactive(end);
  compute_busy_ps_ += end - await_start_ps_;
  compute_free_ = end;
  return write_activations(now);
}

ComputeEngine::PhaseResult ComputeEngine::write_activations(TimePs now) {
  const TimePs act_done =
      std::max(sram_access(tlm::TLM_WRITE_COMMAND, activation_base_,
                           std::min(op_.activation_write_bytes, activation_bytes_), compute_free_),
               op_.activation_write_bytes > activation_bytes_
                   ? spill(op_.activation_write_bytes - activation_bytes_, true, compute_free_)
                   : TimePs{0});
  op_end_ = std::max(compute_free_, act_done);
  phase_ = Phase::kFinish;
  return op_end_ > now ? PhaseResult::wait(op_end_) : PhaseResult::go_on();
}

ComputeEngine::PhaseResult ComputeEngine::phase_finish(TimePs now) {
  finish_op(now);
  if (op_.op_class == OpClass::kWait) {
    // Idle time belongs to no step: the next step starts now, planned afresh. After an arrival
    // the host's loop runs once more (scheduling the request, preparing inputs): host_step_ps,
    // in synchronous and overlapped stacks alike, as nothing ran to hide it behind (an upper
    // bound: the loop's sampling and output work has no step to act on); the per-sequence part
    // is charged at that step's end as usual.
    step_start_ = now;
    step_begins_ = true;
    if (op_.kind == OpKind::kIdle) host_free_ = std::max(host_free_, now) + software_.host_step_ps;
  }
  if (!op_.last_of_step) {
    phase_ = Phase::kFetch;
    return PhaseResult::go_on();
  }
  phase_ = Phase::kStepEnd;
  if (writes_done_ > now) {
    fence_wait_ps_.inc(writes_done_ - now);
    return PhaseResult::wait(writes_done_);
  }
  return PhaseResult::go_on();
}

ComputeEngine::PhaseResult ComputeEngine::phase_step_end(TimePs now) {
  // A step spans from the previous step's end (the run's start for the first): the time between
  // tokens, host gaps included.
  ctx().workload()->end_step(now);
  step_begins_ = true;
  if (expert_rate_this_step_ > 0) {  // the expert cost model follows the path's rate by step
    expert_rate_last_step_ = expert_rate_this_step_;
    expert_rate_this_step_ = 0;
  }
  const TokenRecord rec{current_step_,
                        step_start_,
                        now,
                        ctx().workload()->tokens_per_step(),
                        ctx().workload()->sequences_per_step(),
                        ctx().workload()->step_tenant()};
  ctx().records().tokens.push_back(rec);
  if (ctx().on_step_end) ctx().on_step_end(rec);
  step_start_ = now;
  // The host's work between steps, before it launches the next one: after the step's end
  // (synchronous stacks), or from when it launched this step's last kernel (async scheduling:
  // the device waits only for what outlasts its step).
  const TimePs host_step =
      software_.host_step_ps + TimePs{rec.sequences} * software_.host_step_per_sequence_ps;
  if (op_.kind == OpKind::kPredictedPass && software_.overlap_host_step) {
    // The predicted length holds what the host did during the pass: the host stands to the
    // device as it did at the last simulated pass's end (a lead left by an idle wait's loop is
    // not carried on).
    host_free_ = static_cast<TimePs>(std::max<int64_t>(0, int64_t(now) + pass_host_lead_ps_));
  } else {
    host_free_ = (software_.overlap_host_step ? host_free_ : std::max(host_free_, now)) + host_step;
    pass_host_lead_ps_ = int64_t(host_free_) - int64_t(now);
  }
  phase_ = Phase::kFetch;
  return PhaseResult::go_on();
}

void ComputeEngine::start_of_simulation() {
  // The engine's process is the design's only one (no other engine, front end, controller,
  // thermal model or stats sampler): nothing else can ever run, or hold an event in the
  // kernel's queue, while the engine streams.
  uint32_t processes = 0;
  std::vector<const std::vector<sc_core::sc_object*>*> todo{&sc_core::sc_get_top_level_objects()};
  while (!todo.empty()) {
    const std::vector<sc_core::sc_object*>* objects = todo.back();
    todo.pop_back();
    for (const sc_core::sc_object* o : *objects) {
      const char* kind = o->kind();
      if (std::strcmp(kind, "sc_method_process") == 0 ||
          std::strcmp(kind, "sc_thread_process") == 0 ||
          std::strcmp(kind, "sc_cthread_process") == 0) {
        ++processes;
      }
      todo.push_back(&o->get_child_objects());
    }
  }
  alone_ = processes == 1 && !reference_paths();
}

bool ComputeEngine::alone_until(TimePs at, TimePs real_now) const {
  // A staging buffer's wait is skipped (the stream goes on at `at` at once) only when the
  // engine's process is the design's only one (start_of_simulation), the run's time limit is
  // not reached and no wall-time limit can stop the kernel from inside a memory (the detailed
  // HBM's own check) while the engine is ahead of it. Nothing else can run before `at` (the
  // stream notifies no event), and the kernel's queue of timed events holds nothing but the
  // engine's own wake-ups, so the calls the skipped waits make (the tiles' transfers, dated from
  // `at`) reach every component in the order and with the start times the waits would have
  // given, and no tie between simultaneous events is ordered differently. Components read the
  // kernel's time only to express start times as delays from it (b_transport), so results are
  // bit-identical. A movement controller or a thermal gate (which read it for their own state)
  // never skip.
  return alone_ && !orchestrator_ && !thermal_admission_ && at > real_now && at < time_limit_ps_ &&
         !wall_limited_;
}

void ComputeEngine::run() {
  // `now` is the engine's time: the kernel's, or later while it streams a tile ring past waits
  // nothing else could act in (alone_until); it catches the kernel up before any other phase.
  const TimePs real_now = now_ps();
  TimePs now = real_now;
  while (phase_ != Phase::kDone) {
    if (now != real_now && phase_ != Phase::kStream) {
      next_trigger(to_sc_time(now - real_now));
      return;
    }
    PhaseResult r = PhaseResult::go_on();
    switch (phase_) {
      case Phase::kDone:
        return;
      case Phase::kFetch:
        r = phase_fetch(now);
        break;
      case Phase::kOverhead:
        r = phase_overhead(now);
        break;
      case Phase::kStream:
        r = phase_stream(now);
        break;
      case Phase::kRendezvous:
        r = phase_rendezvous(now);
        break;
      case Phase::kPipe:
        r = phase_pipe(now);
        break;
      case Phase::kAwait:
        r = phase_await(now);
        break;
      case Phase::kFinish:
        r = phase_finish(now);
        break;
      case Phase::kStepEnd:
        r = phase_step_end(now);
        break;
    }
    if (r.kind == PhaseResult::kStop) return;
    if (r.kind == PhaseResult::kWait) {
      if (phase_ == Phase::kStream && alone_until(r.at, real_now)) {
        now = r.at;
        waits_skipped_->inc();
        continue;
      }
      next_trigger(to_sc_time(r.at - real_now));
      return;
    }
    if (r.kind == PhaseResult::kWaitEvent) {
      if (now != real_now) throw std::logic_error(std::string(name()) + ": an event wait ahead");
      next_trigger(*r.event);
      return;
    }
  }
}

}  // namespace tiersim
