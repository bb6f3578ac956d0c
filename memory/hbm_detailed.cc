#include "memory/hbm_detailed.h"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>

#include "memory/hbm_device.h"
#include "memory/tools/hbm_calibrate.h"
#include "models/core/context.h"
#include "models/core/summary.h"

namespace tiersim {

void RatioSamples::add(double ratio) {
  ++n_;
  const double d = ratio - mean_;
  mean_ += d / double(n_);
  m2_ += d * (ratio - mean_);
}

double RatioSamples::ci95_half_width() const {
  if (n_ < 2) return 0.0;
  const boost::math::students_t t(double(n_ - 1));
  const double sd = std::sqrt(m2_ / double(n_ - 1));
  return boost::math::quantile(t, 0.975) * sd / std::sqrt(double(n_));
}

HbmDetailedParams HbmDetailedParams::from_config(const config::HbmFast& c,
                                                 const config::DetailedSampling* sampling) {
  HbmDetailedParams p{c.stack_count(),
                      c.capacity_bytes_per_stack(),
                      c.interleave_bytes(),
                      dram_spec_from_config(c.device()),
                      {},
                      std::nullopt};
  for (uint32_t s = 0; s < c.stack_count(); ++s) {
    p.refresh_multiplier.push_back(
        BandwidthMemoryParams::refresh_multiplier_for(c, static_cast<int>(s)));
  }
  if (sampling) {
    p.sampling = DetailedSamplingParams{
        sampling->period_requests(), sampling->window_requests(), sampling->warmup_requests(),
        !sampling->has_rerate_fast_level() || sampling->rerate_fast_level(),
        device_calibrated_params(c)};
  }
  return p;
}

HbmDetailed::HbmDetailed(sc_core::sc_module_name name, const HbmDetailedParams& params,
                         Context& ctx)
    : DramTarget(name, ctx, "hbm", Tier::kHbm, params.capacity_bytes_per_stack * params.stack_count,
                 {"requests", "bulk requests served"}),
      params_(params),
      late_starts_(ctx.stats().counter(basename(), "late_starts",
                                       "requests whose start preceded the stacks' time", "count")),
      rng_(ctx.rng_for(std::string(basename()) + ".detailed_sampling")) {
  if (params.sampling) {
    fast_ = std::make_unique<BandwidthMemoryCore>(params.sampling->fast);
    for (uint32_t s = 0; s < params.stack_count; ++s)
      stack_refresh_.push_back(params.sampling->fast.multiplier(s));
    stack_throttle_.assign(params.stack_count, 1.0);
    window_.reserve(std::min<uint32_t>(params.sampling->window_requests, 4096));
    ctx.stats()
        .formula(basename(), "detailed_requests", "requests served at the command level", "count",
                 [this](TimePs) { return double(detailed_requests_); })
        .set_sampling("cumulative");
    ctx.stats()
        .formula(basename(), "sampled_windows", "measured windows of sampled detailed simulation",
                 "count", [this](TimePs) { return double(ratios_.count()); })
        .set_sampling("cumulative");
  }
  register_latency("request_latency", "request latency from start to last byte",
                   Histogram::log2_edges(1, 1 << 24));
  const uint64_t limit_ps = ctx.config().run().max_sim_time_ps();
  stop_is_error_ = limit_ps == 0;
  stop_cycle_ = (stop_is_error_ ? kMaxSimTimePs : limit_ps) / params.device.timing.tck_ps + 1;
  for (uint32_t s = 0; s < params.stack_count; ++s) {
    stacks_.push_back(std::make_unique<DramStack>(params.device));
    stacks_.back()->set_refresh_multiplier(params.refresh_multiplier[s]);
  }
  next_.assign(params.stack_count, 0);
  issue_spacing_.assign(params.stack_count, 0.0);
  next_issue_.assign(params.stack_count, 0.0);
  issue_carry_.assign(params.stack_count, 1.0);
  done_.reserve(4096);
  // Command-level statistics, summed over stacks when sampled.
  auto sum = [this](uint64_t DramControllerStats::*field) {
    return [this, field](TimePs) {
      double t = 0;
      for (const auto& s : stacks_)
        t += static_cast<double>(s->total_stats().*field);
      return t;
    };
  };
  ctx.stats()
      .formula(basename(), "acts", "ACT commands", "count", sum(&DramControllerStats::acts))
      .set_sampling("cumulative");
  ctx.stats()
      .formula(basename(), "pres", "PRE commands (incl. auto-precharge)", "count",
               sum(&DramControllerStats::pres))
      .set_sampling("cumulative");
  ctx.stats()
      .formula(basename(), "reads", "RD commands", "count", sum(&DramControllerStats::reads))
      .set_sampling("cumulative");
  ctx.stats()
      .formula(basename(), "writes", "WR commands", "count", sum(&DramControllerStats::writes))
      .set_sampling("cumulative");
  ctx.stats()
      .formula(
          basename(), "refreshes", "REFab + REFpb commands", "count",
          [this](TimePs) {
            double t = 0;
            for (const auto& s : stacks_) {
              t += static_cast<double>(s->total_stats().refreshes + s->total_stats().refreshes_pb);
            }
            return t;
          })
      .set_sampling("cumulative");
  ctx.stats()
      .formula(basename(), "row_hit_rate", "row hits per column command", "fraction",
               [this](TimePs) {
                 double hits = 0, all = 0;
                 for (const auto& s : stacks_) {
                   const auto st = s->total_stats();
                   hits += static_cast<double>(st.row_hits);
                   all += static_cast<double>(st.row_hits + st.row_misses + st.row_conflicts);
                 }
                 return all > 0 ? hits / all : 0.0;
               })
      .set_sampling("average_since_start");
}

bool HbmDetailed::step() {
  uint64_t next = DramStack::kNever;
  for (uint64_t n : next_)
    next = std::min(next, n);
  if (next == DramStack::kNever) return false;
  cycle_ = std::max(cycle_, next);
  if (ctx().wall_limit().poll()) {
    sc_core::sc_stop();  // run.max_wall_time_s: abandon this request, the kernel stops
    return false;
  }
  if (cycle_ > stop_cycle_) {
    if (stop_is_error_) {
      raise_run_input_error(std::string(name()) + ": the command-level device reached cycle " +
                            std::to_string(cycle_) + ", past the 2^62 ps limit");
    }
    return false;  // past the run's end: the kernel stops before this request completes
  }
  for (size_t s = 0; s < stacks_.size(); ++s) {
    if (next_[s] <= cycle_) {
      done_.clear();
      next_[s] = stacks_[s]->advance(cycle_, done_);
      for (const auto& d : done_) {
        --outstanding_;
        last_done_cycle_ = std::max(last_done_cycle_, d.done_cycle);
      }
    }
  }
  return true;
}

void HbmDetailed::advance_to(uint64_t cycle) {
  while (true) {
    uint64_t next = DramStack::kNever;
    for (uint64_t n : next_)
      next = std::min(next, n);
    if (next > cycle || !step()) break;
  }
  cycle_ = std::max(cycle_, cycle);
}

TimePs HbmDetailed::serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) {
  if (!fast_) return serve_detailed(addr, bytes, write, start_ps, nullptr);
  const DetailedSamplingParams& sp = *params_.sampling;
  const uint64_t run = uint64_t{sp.warmup_requests} + sp.window_requests;
  if (period_pos_ == 0) run_offset_ = rng_.below(sp.period_requests - run + 1);
  const bool in_run = period_pos_ >= run_offset_ && period_pos_ < run_offset_ + run;
  TimePs done = fast_->serve(addr, bytes, write, start_ps);
  if (!in_run) {
    // Its parts leave the channels before its latency ends.
    fast_served_until_ps_ = std::max(fast_served_until_ps_, done - sp.fast.latency_ps);
  } else {
    // The stacks take a run's first request once the fast-served work queued before it is out
    // (not the fast level's own copy of the runs' requests).
    const TimePs begin_at = std::max(start_ps, fast_served_until_ps_);
    TimePs begin = 0;
    done = serve_detailed(addr, bytes, write, begin_at, &begin);
    ++detailed_requests_;
    if (period_pos_ >= run_offset_ + sp.warmup_requests) {
      window_stack_ps_ += done - params_.device.frontend_latency_ps - begin;
      window_.push_back({addr, bytes, write});
      // A request abandoned at the run's end or the wall-time limit ends no sample.
      window_cut_ = window_cut_ || outstanding_ > 0;
      if (period_pos_ + 1 == run_offset_ + run) close_window();
    }
  }
  ++sampled_requests_;
  if (++period_pos_ == sp.period_requests) period_pos_ = 0;
  return done;
}

void HbmDetailed::close_window() {
  const DetailedSamplingParams& sp = *params_.sampling;
  // The fast level's service of the same requests one after another from idle channels, as the
  // stacks served them, except that each starts when the previous one's last part has left (the
  // fast level overlaps a request's latency with the next, and the stacks' time excludes the
  // front end's latency but once).
  BandwidthMemoryCore replay(sp.fast);
  for (uint32_t s = 0; s < params_.stack_count; ++s) {
    if (stack_throttle_[s] != 1.0 || stack_refresh_[s] != sp.fast.multiplier(s)) {
      replay.set_stack_rate(s, stack_refresh_[s], stack_throttle_[s]);
    }
  }
  TimePs t = 0, done = 0;
  for (const WindowRequest& r : window_) {
    done = replay.serve(r.addr, r.bytes, r.write, t);
    t = done - sp.fast.latency_ps;
  }
  const double stacks_ps = double(window_stack_ps_ + params_.device.frontend_latency_ps);
  if (done > 0 && !window_cut_) ratios_.add(stacks_ps / double(done));
  window_.clear();
  window_stack_ps_ = 0;
  window_cut_ = false;
  rerate_fast();
}

double HbmDetailed::rate_correction() const {
  return params_.sampling->rerate_fast_level && ratios_.count() > 0 ? 1.0 / ratios_.mean() : 1.0;
}

void HbmDetailed::rerate_fast() {
  const double correction = rate_correction();
  for (uint32_t s = 0; s < params_.stack_count; ++s) {
    fast_->set_stack_rate(s, stack_refresh_[s], stack_throttle_[s] * correction);
  }
}

void HbmDetailed::summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {
  DramTarget::summarize(out, tokens);
  if (!fast_) return;
  const std::string g = basename();
  out.push_back({g + "_sampled_windows", double(ratios_.count()), "count"});
  out.push_back(
      {g + "_detailed_request_share",
       sampled_requests_ > 0 ? double(detailed_requests_) / double(sampled_requests_) : 0.0,
       "fraction"});
  // The ratio needs a window and its interval two: with fewer they are left out rather than
  // shown as exact figures.
  if (ratios_.count() > 0) out.push_back({g + "_sampled_service_ratio", ratios_.mean(), "ratio"});
  if (ratios_.count() > 1) {
    out.push_back({g + "_sampled_service_ratio_ci95", ratios_.ci95_half_width(), "ratio"});
  }
  out.push_back({g + "_fast_level_rate_correction", rate_correction(), "ratio"});
}

TimePs HbmDetailed::serve_detailed(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps,
                                   TimePs* begin_ps) {
  const uint64_t access = params_.device.org.access_bytes;
  // The device moves whole bursts: a request covers every burst it touches.
  const uint64_t first = addr / access * access;
  const uint64_t span = (addr + bytes + access - 1) / access * access - first;
  const uint64_t tck = params_.device.timing.tck_ps;
  const uint64_t start_cycle = (start_ps + tck - 1) / tck;
  if (start_cycle < cycle_) late_starts_.inc();
  advance_to(start_cycle);
  if (begin_ps) *begin_ps = cycle_ * tck;

  // Front end: pieces in address order, each to its stack, waiting while a queue is full.
  const uint64_t granule = params_.interleave_bytes;
  const uint32_t stacks = params_.stack_count;
  outstanding_ = span / access;
  last_done_cycle_ = cycle_;
  for (uint64_t off = 0; off < span; off += access) {
    const uint64_t a = first + off;
    const uint64_t chunk = a / granule;
    const uint32_t s = static_cast<uint32_t>(chunk % stacks);
    const uint64_t local = (chunk / stacks) * granule + a % granule;
    if (issue_spacing_[s] > 0) {
      // Throttled: wait for the stack's next issue slot (several per cycle when the spacing is
      // under a cycle: an access may issue in cycle c while its slot lies before c + 1). A
      // stack keeps the slots it did not use while the in-order front end served one rotation
      // of the other stacks (issue_carry_: at least a cycle): the common time passes a stack's
      // slots while the front end waits for another's, and without the carry the stack would
      // lose them, falling below its cap. The carry bounds a burst, not the average rate.
      const auto slot = static_cast<uint64_t>(std::floor(next_issue_[s]));
      if (slot > cycle_) advance_to(slot);
      next_issue_[s] =
          std::max(next_issue_[s], double(cycle_) - issue_carry_[s]) + issue_spacing_[s];
    }
    while (!stacks_[s]->submit(local, write, off / access, cycle_)) {
      if (!step()) break;
    }
    next_[s] = std::min(next_[s], cycle_);
  }
  while (outstanding_ > 0 && step()) {
  }
  // Abandoned at the run's end: it completes after it.
  if (outstanding_ > 0) {
    // Abandoned at the wall-time limit (the kernel stops now), or at the run's end.
    last_done_cycle_ = std::max(last_done_cycle_, ctx().wall_limit().hit() ? cycle_ : stop_cycle_);
  }
  return last_done_cycle_ * tck + params_.device.frontend_latency_ps;
}

double HbmDetailed::busy_stack_s() const {
  const double bytes = double(bytes_read() + bytes_written());
  return power().peak_bytes_per_s > 0 ? bytes / power().peak_bytes_per_s : 0.0;
}

void HbmDetailed::thermal_counts(double* stack_bytes, double* stack_busy_s) const {
  // Bytes: the column commands' bursts (sampled: the fast level's, which serves every request);
  // busy: the data bus at peak (as the energy account).
  const double access = double(params_.device.org.access_bytes);
  const double peak = params_.device.peak_bytes_per_s();
  if (fast_) {
    const uint32_t stacks = params_.stack_count;
    for (uint32_t s = 0; s < stacks; ++s)
      stack_bytes[s] = 0;
    for (uint32_t u = 0; u < fast_->params().servers(); ++u)
      stack_bytes[u % stacks] += double(fast_->server_bytes(u));
    for (uint32_t s = 0; s < stacks; ++s)
      stack_busy_s[s] = peak > 0 ? stack_bytes[s] / peak : 0.0;
    return;
  }
  for (size_t s = 0; s < stacks_.size(); ++s) {
    const DramControllerStats st = stacks_[s]->total_stats();
    stack_bytes[s] = double(st.reads + st.writes) * access;
    stack_busy_s[s] = peak > 0 ? stack_bytes[s] / peak : 0.0;
  }
}

void HbmDetailed::thermal_apply(uint32_t stack, double refresh_multiplier, double fraction) {
  stacks_[stack]->set_refresh_multiplier(refresh_multiplier);
  if (fast_) {
    stack_refresh_[stack] = refresh_multiplier;
    stack_throttle_[stack] = fraction;
    rerate_fast();
  }
  // At peak the stack takes one access per burst on each pseudo-channel.
  const DramStackSpec& d = params_.device;
  const double peak_spacing =
      double(d.timing.burst_cycles) / (double(d.channels) * double(d.pseudo_channels));
  issue_spacing_[stack] = fraction < 1.0 ? peak_spacing / fraction : 0.0;
  // One rotation of the front end: interleave_bytes of accesses on each stack in turn.
  const double run = std::max(1.0, double(params_.interleave_bytes) / double(d.org.access_bytes));
  issue_carry_[stack] = std::max(1.0, double(params_.stack_count) * run * issue_spacing_[stack]);
}

}  // namespace tiersim
