#include "models/run/simulation.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "models/config/node_overrides.h"
#include "models/core/component.h"
#include "models/core/context.h"
#include "models/core/registry.h"
#include "models/core/stats_sampler.h"
#include "models/core/workload.h"
#include "models/run/extrapolation.h"
#include "models/run/power_monitor.h"
#include "models/run/run_parts.h"
#include "models/run/step_prediction.h"
#include "models/run/trace.h"
#include "workloads/fast_forward.h"
#include "workloads/replay.h"
#include "workloads/tenants.h"

namespace tiersim {

namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double s) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << s << " s";
  return os.str();
}

}  // namespace

void run_kernel(uint64_t limit_ps) {
  take_run_input_error();
  try {
    if (limit_ps > 0) {
      sc_core::sc_start(to_sc_time(limit_ps));
    } else {
      sc_core::sc_start(to_sc_time(kMaxSimTimePs), sc_core::SC_EXIT_ON_STARVATION);
    }
  } catch (const std::exception& e) {
    // SystemC reports an exception thrown inside a process as its own report: recover an
    // input error raised there.
    if (std::string m = take_run_input_error(); !m.empty()) throw RunInputError(m);
    throw;
  }
}

void check_time_bound(bool done, uint64_t limit_ps, bool wall_hit) {
  if (!done && limit_ps == 0 && !wall_hit && now_ps() >= kMaxSimTimePs) {
    throw RunInputError(
        "simulated time reached 2^62 ps (about 53 days) before the workload completed; check "
        "the config's rates, latencies and degradations, or set run.max_sim_time_ps");
  }
}

RunOutcome run_simulation(const LoadedConfig& loaded, const RunOptions& options) {
  if (simulates_every_rank(loaded.config)) return run_every_rank(loaded, options);
  const auto wall_start = Clock::now();
  const config::Config& cfg = loaded.config;
  sc_core::sc_set_time_resolution(1, sc_core::SC_PS);

  Context ctx(cfg, cfg.run().seed());

  // Workload and its objects.
  const WorkloadKind* wk = find_workload_kind(workload_kind_name(cfg.workload()));
  std::unique_ptr<Workload> workload = wk->create(cfg);
  if (cfg.tenancy().tenants_size() > 0) {
    // Other tenants share the accelerator: one op stream, a step at a time.
    if (!options.trace_path.empty()) {
      throw located(loaded, {ConfigIssue{{},
                                         "tenancy.tenants",
                                         "a trace records one workload; trace the tenants one by "
                                         "one, without tenancy"}});
    }
    workload = std::make_unique<TenantScheduler>(cfg, std::move(workload));
  }
  FastForwardWorkload* fast_forward = nullptr;
  // A serving workload predicts passes instead (set up once the components are built).
  const bool predict_steps = cfg.run().has_fast_forward() && cfg.workload().has_serving();
  if (cfg.run().has_fast_forward() && !options.trace_path.empty()) {
    throw located(loaded, {ConfigIssue{{},
                                       "run.fast_forward",
                                       "a trace records every step's ops; trace without "
                                       "fast-forward"}});
  }
  if (cfg.run().has_fast_forward() && !predict_steps) {
    // Validated: a decode workload without tenancy.
    const auto& ff = cfg.run().fast_forward();
    auto wrapped = std::make_unique<FastForwardWorkload>(
        std::move(workload), ff.every_steps(), ff.has_warmup_steps() ? ff.warmup_steps() : 1);
    fast_forward = wrapped.get();
    workload = std::move(wrapped);
  }
  std::unique_ptr<TraceRecorder> recorder;
  if (!options.trace_path.empty() && cfg.workload().parallelism().expert_parallel() > 1) {
    // A trace's ops carry no traffic matrix for the expert-parallel all-to-alls.
    throw located(loaded, {ConfigIssue{{},
                                       "workload.parallelism.expert_parallel",
                                       "a trace cannot record expert-parallel dispatch and "
                                       "combine traffic; trace without expert parallelism"}});
  }
  if (!options.trace_path.empty()) {
    // Record every object and op the run consumes (the recorder forwards to the workload).
    // A trace of a replay keeps the replayed trace's dtypes (it has no model).
    const auto* replay = dynamic_cast<const ReplayWorkload*>(workload.get());
    const config::Dtype dtype = replay ? replay->header().compute_dtype()
                                : cfg.workload().has_gemm()
                                    ? cfg.workload().gemm().dtype()
                                    : cfg.workload().model().activation_dtype();
    const config::Dtype gemm_dtype = replay ? replay->header().gemm_dtype()
                                     : cfg.workload().has_gemm()
                                         ? config::DTYPE_UNSPECIFIED
                                         : cfg.workload().model().gemm_dtype();
    recorder = std::make_unique<TraceRecorder>(*workload, options.trace_path,
                                               loaded.resolved_text(), dtype, gemm_dtype);
  }
  Workload* active = recorder ? static_cast<Workload*>(recorder.get()) : workload.get();
  ctx.set_workload(active);
  active->register_objects(ctx.objects());

  std::vector<std::unique_ptr<Component>> components;
  try {
    components = build_system(cfg, ctx);
  } catch (const ConfigError& e) {
    throw located(loaded, e.issues());
  }

  place_at_home(loaded, ctx);
  try {
    for (auto& c : components)
      c->prepare();
  } catch (const ConfigError& e) {
    throw located(loaded, e.issues());
  }

  // The power time series (its stats registered before the first sample).
  PowerMonitor power(ctx, components);

  bool done = false;
  std::unique_ptr<StatsSampler> sampler;
  if (cfg.run().stats_interval_ps() > 0) {
    sampler = std::make_unique<StatsSampler>("stats_sampler", ctx.stats(),
                                             cfg.run().stats_interval_ps(), done);
  }

  // Fast-forward: every component's energy and every cumulative stat at each simulated step's
  // end (every stat is registered by now).
  std::unique_ptr<StepExtrapolation> extrapolation;
  if (fast_forward) {
    extrapolation = std::make_unique<StepExtrapolation>(components, ctx.stats(), *fast_forward);
  }
  std::unique_ptr<ServingStepPrediction> prediction;
  if (predict_steps) {
    // Validated: no gate, no trace.
    prediction = std::make_unique<ServingStepPrediction>(
        components, ctx.stats(), ServingStepPrediction::params(cfg.run().fast_forward()));
    if (!workload->set_step_predictor(prediction.get())) {
      throw std::logic_error("run.fast_forward: the serving workload takes no step predictor");
    }
  }

  // Progress on a terminal: simulated time, steps, wall time, ETA; at most 4 lines a second.
  const uint32_t total_steps = workload->total_steps();
  auto last_print = Clock::now();
  auto step_start = Clock::now();  // when the step under way began (wall clock)
  // Each line rewrites the last one and clears what a longer one left (ESC [ K).
  ctx.on_step_end = [&](const TokenRecord& rec) {
    if (extrapolation) extrapolation->on_step_end(ctx.records().tokens, rec.end_ps);
    if (prediction) prediction->on_step_end(rec);
    if (!options.progress) return;
    const auto now = Clock::now();
    step_start = now;
    const bool last = rec.step + 1 == total_steps;
    if (!last && now - last_print < std::chrono::milliseconds(250)) return;
    last_print = now;
    const double wall = std::chrono::duration<double>(now - wall_start).count();
    if (total_steps == 0) {  // not known in advance (serving)
      std::fprintf(stderr, "\r[sim %.3f ms] step %u  wall %s\x1b[K", ps_to_ms(rec.end_ps),
                   rec.step + 1, format_duration(wall).c_str());
      std::fflush(stderr);
      return;
    }
    // Fast-forward: the time goes to the simulated steps.
    uint32_t done_steps = rec.step + 1, steps = total_steps;
    if (fast_forward) {
      const FastForwardSchedule& sched = fast_forward->schedule();
      done_steps = steps = 0;
      for (uint32_t s = 0; s < total_steps; ++s) {
        if (!sched.simulated(s)) continue;
        ++steps;
        if (s <= rec.step) ++done_steps;
      }
    }
    const double eta = wall / done_steps * (steps - done_steps);
    std::fprintf(stderr, "\r[sim %.3f ms] step %u/%u  wall %s  ETA %s\x1b[K", ps_to_ms(rec.end_ps),
                 rec.step + 1, total_steps, format_duration(wall).c_str(),
                 format_duration(eta).c_str());
    if (last) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
  // Within a step, for steps that take long (the command-level HBM): the step and the layer
  // the last op finished in, once a step has run a second without ending.
  if (options.progress) {
    ctx.on_op_end = [&](uint32_t step, LayerId layer, TimePs end_ps) {
      const auto now = Clock::now();
      if (now - step_start < std::chrono::seconds(1) ||
          now - last_print < std::chrono::milliseconds(250)) {
        return;
      }
      last_print = now;
      const double wall = std::chrono::duration<double>(now - wall_start).count();
      std::fprintf(stderr, "\r[sim %.3f ms] step %u%s, in layer %s  wall %s\x1b[K",
                   ps_to_ms(end_ps), step + 1,
                   total_steps ? ("/" + std::to_string(total_steps)).c_str() : "",
                   layer.valid() ? std::to_string(layer.value()).c_str() : "-",
                   format_duration(wall).c_str());
      std::fflush(stderr);
    };
  }
  ctx.on_done = [&] { done = true; };
  // The compute engine checks the limit before every op (so after every step) and every 4096th
  // tile; the command-level HBM inside its request loop.
  ctx.wall_limit().start(cfg.run().max_wall_time_s());

  const uint64_t limit = cfg.run().max_sim_time_ps();
  run_kernel(limit);
  if (options.progress && (!done || total_steps == 0)) std::fputc('\n', stderr);
  check_time_bound(done, limit, ctx.wall_limit().hit());
  const std::string stopped_by = done                     ? "complete"
                                 : ctx.wall_limit().hit() ? "max_wall_time"
                                                          : "max_sim_time";
  const TimePs end_ps = now_ps();
  ctx.stats().sample(end_ps);

  const double wall_s = std::chrono::duration<double>(Clock::now() - wall_start).count();
  RunOutcome out;
  out.stopped_by = stopped_by;
  // Fast-forward: the skipped steps join the records on the extrapolated timeline, their energy
  // the components' and their increments the cumulative stats (/stats keep the simulated steps'
  // sample above).
  std::optional<Extrapolation> extrapolated;
  if (extrapolation || prediction) {
    extrapolated = extrapolation ? extrapolation->finish(ctx.records().tokens, end_ps)
                                 : prediction->finish(ctx.records().tokens, end_ps);
    ctx.records().tokens = extrapolated->records;
  }
  out.summary =
      summarise_run(ctx, components, end_ps, wall_s, extrapolated ? &*extrapolated : nullptr);
  // A trace of a run cut short by a limit would look complete: it is not written.
  if (recorder && !done) {
    throw RunInputError("the run stopped by " + stopped_by +
                        " before the workload completed: a trace of part of a run is not "
                        "written (raise run.max_sim_time_ps or run.max_wall_time_s)");
  }
  if (recorder) recorder->commit();
  if (!options.out_path.empty()) {
    write_results(options.out_path, loaded, ctx, out.summary, wall_s, stopped_by);
  }
  return out;
}

}  // namespace tiersim
