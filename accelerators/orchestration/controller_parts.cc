// A controller described by its parts (policy.orchestration.controller_parts, and each further
// controller's parts): the figures they give, and their checks.
#include "accelerators/orchestration/controller_parts.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/config/energy_checks.h"

namespace tiersim {

namespace {

TimePs round_ps(double ps) {
  return static_cast<TimePs>(std::llround(ps));
}
// Time of `instructions` at `ghz` x `ipc` (ns per cycle = 1 / ghz).
TimePs instructions_ps(uint64_t instructions, double ghz, double ipc) {
  return round_ps(double(instructions) * 1000.0 / (ghz * ipc));
}
config::Jitter uniform_to(TimePs max_ps) {
  config::Jitter j;
  if (max_ps > 0) {
    j.mutable_uniform()->set_min_ps(0);
    j.mutable_uniform()->set_max_ps(max_ps);
  }
  return j;
}

}  // namespace

ControllerFigures controller_figures(const config::ControllerParts& parts) {
  ControllerFigures f;
  if (parts.has_host_loop()) {
    const auto& h = parts.host_loop();
    f.controller = config::HOST_CPU;
    f.decision_latency_ps =
        TimePs{h.telemetry_reads()} * h.pcie_read_round_trip_ps() +
        instructions_ps(h.instructions_per_decision(), h.core_ghz(), h.instructions_per_cycle()) +
        h.syscall_ps() + TimePs{h.doorbell_writes()} * h.doorbell_write_ps();
    f.decision_jitter = uniform_to(h.scheduling_jitter_ps());
    f.pcie_link = h.pcie_link();
    f.posted_queue_bytes = h.pcie_posted_queue_bytes();
    f.telemetry_reads = h.telemetry_reads();
    f.read_round_trip_ps = h.pcie_read_round_trip_ps();
    f.doorbell_writes = h.doorbell_writes();
    f.doorbell_write_ps = h.doorbell_write_ps();
    f.decision_servers = h.cores();
    f.notification = config::INTERRUPT;
    f.notification_latency_ps = h.interrupt_ps() + h.consumer_signal_ps();
    f.power_w = h.cores() * h.watts_per_core();
    f.idle_power_w = h.has_idle_watts_per_core() ? h.cores() * h.idle_watts_per_core() : f.power_w;
  } else if (parts.has_dpu()) {
    const auto& d = parts.dpu();
    f.controller = config::DPU;
    f.decision_latency_ps =
        TimePs{d.telemetry_reads()} * d.pcie_read_round_trip_ps() +
        instructions_ps(d.instructions_per_decision(), d.core_ghz(), d.instructions_per_cycle()) +
        TimePs{d.descriptor_writes()} * d.descriptor_write_ps();
    f.decision_jitter = uniform_to(d.jitter_ps());
    f.pcie_link = d.pcie_link();
    f.posted_queue_bytes = d.pcie_posted_queue_bytes();
    f.telemetry_reads = d.telemetry_reads();
    f.read_round_trip_ps = d.pcie_read_round_trip_ps();
    f.decision_servers = d.cores();
    f.notification = config::POLLING;
    f.notification_latency_ps = d.flag_write_ps() + (d.poll_interval_ps() + 1) / 2;
    f.power_w = d.power_w();
    f.idle_power_w = d.has_idle_power_w() ? d.idle_power_w() : f.power_w;
  } else {
    const auto& e = parts.engine();
    const double cycle_ps = 1000.0 / e.clock_ghz();
    f.controller = config::ON_ACCELERATOR;
    f.decision_latency_ps = round_ps(e.pipeline_cycles() * cycle_ps) +
                            TimePs{e.map_lookups()} * e.sram_lookup_ps() + e.descriptor_issue_ps();
    f.decision_servers = e.units();
    f.decision_interval_ps =
        std::max<TimePs>(1, round_ps(e.initiation_interval_cycles() * cycle_ps));
    f.notification = config::DOORBELL;
    f.notification_latency_ps = e.doorbell_ps();
    f.power_w = e.power_w();
    f.idle_power_w = e.has_idle_power_w() ? e.idle_power_w() : f.power_w;
    f.table_bytes = e.table_bytes();
    f.area_mm2 = e.logic_mm2() + double(e.table_bytes()) / double(1 << 20) * e.sram_mm2_per_mib();
  }
  f.between_ps = f.decision_latency_ps - TimePs{f.telemetry_reads} * f.read_round_trip_ps -
                 TimePs{f.doorbell_writes} * f.doorbell_write_ps;
  return f;
}

PcieControlWaits pcie_control_waits(const ControllerFigures& f, const PcieControlLink& link,
                                    TimePs reads_begin_ps) {
  constexpr TimePs kNever = LinkModel::kNever;
  PcieControlWaits w;
  const LinkModel& in = *link.toward_accelerator;
  const LinkModel& out = *link.leaving_accelerator;
  // At most the posted queue's bytes ahead of a completion (none given: every accepted write).
  const TimePs queue_ps =
      f.posted_queue_bytes > 0 ? out.serialisation_ps(f.posted_queue_bytes) : kNever;
  // A read lasts at most the completion timeout in all: its waits at most that less its
  // round trip.
  const TimePs most = kPcieCompletionTimeoutPs > f.read_round_trip_ps
                          ? kPcieCompletionTimeoutPs - f.read_round_trip_ps
                          : 0;
  TimePs t = reads_begin_ps;
  for (uint32_t i = 0; i < f.telemetry_reads; ++i) {
    const TimePs req_start = in.packet_start_ps(t);
    const TimePs request = req_start == kNever ? most : std::min(req_start - t, most);
    const TimePs completion_at = t + request + f.read_round_trip_ps / 2;
    // Behind the writes queued ahead of it (at most the posted queue's), then any outage.
    const TimePs behind = queue_ps == kNever
                              ? out.data_sent_ps()
                              : std::min(out.data_sent_ps(), completion_at + queue_ps);
    TimePs begin = std::max(completion_at, behind);
    if (out.down_at(begin)) begin = out.up_after(begin);
    const TimePs completion =
        begin == kNever ? most - request : std::min(begin - completion_at, most - request);
    w.reads_ps += request + completion;
    t += f.read_round_trip_ps + request + completion;
  }
  t += f.between_ps;
  for (uint32_t i = 0; i < f.doorbell_writes; ++i) {
    const TimePs start = in.packet_start_ps(t);
    const TimePs wait = start == kNever ? kPcieCompletionTimeoutPs : start - t;
    w.doorbells_ps += wait;
    t += f.doorbell_write_ps + wait;
  }
  return w;
}

namespace {

// Each part's range and the sums' bounds, reported under `pv`.
void validate_parts_into(const config::ControllerParts& parts, Validator& pv) {
  constexpr uint64_t kMaxPs = 1'000'000'000'000;  // 1 s: a part longer than that is a typo
  constexpr uint32_t kMaxCount = 1'000'000;
  auto count_in = [](Validator& v, const char* field, bool has, uint32_t value, uint32_t lo,
                     uint32_t hi) {
    if (!v.require(field, has)) return;
    if (value < lo || value > hi) {
      v.error(field, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
  };
  auto time_ok = [&](Validator& v, const char* field, bool has, uint64_t value, bool required) {
    if (required && !v.require(field, has)) return;
    if (value > kMaxPs) v.error(field, "must be at most 1 s (1e12 ps)");
  };
  auto count_ok = [&](Validator& v, const char* field, uint32_t value) {
    if (value > kMaxCount) v.error(field, "must be at most 1000000");
  };
  auto rate_ok = [](Validator& v, const char* field, bool has, double value) {
    if (v.positive(field, has, value) && !(value <= 1e3)) v.error(field, "must be at most 1000");
  };
  // An idle power: an energy figure no higher than the active one.
  auto idle_ok = [](Validator& v, const char* field, bool has, double idle, double active,
                    const char* active_field) {
    if (!has) return;
    energy_field(v, field, true, idle);
    if (idle > active) v.error(field, std::string("lies above ") + active_field);
  };
  // What a host loop and a DPU share: cores running the policy, and telemetry read across PCIe.
  auto cores_ok = [&](Validator& v, const auto& p) {
    count_in(v, "cores", p.has_cores(), p.cores(), 1, 4096);
    rate_ok(v, "core_ghz", p.has_core_ghz(), p.core_ghz());
    rate_ok(v, "instructions_per_cycle", p.has_instructions_per_cycle(),
            p.instructions_per_cycle());
    if (v.require("instructions_per_decision", p.has_instructions_per_decision()) &&
        p.instructions_per_decision() > 1'000'000'000) {
      v.error("instructions_per_decision", "must be at most 1e9");
    }
    count_ok(v, "telemetry_reads", p.telemetry_reads());
    time_ok(v, "pcie_read_round_trip_ps", p.has_pcie_read_round_trip_ps(),
            p.pcie_read_round_trip_ps(), p.telemetry_reads() > 0);
  };
  if (parts.has_host_loop()) {
    Validator h = pv.at("host_loop");
    const auto& p = parts.host_loop();
    cores_ok(h, p);
    time_ok(h, "syscall_ps", p.has_syscall_ps(), p.syscall_ps(), false);
    count_ok(h, "doorbell_writes", p.doorbell_writes());
    time_ok(h, "doorbell_write_ps", p.has_doorbell_write_ps(), p.doorbell_write_ps(),
            p.doorbell_writes() > 0);
    time_ok(h, "interrupt_ps", p.has_interrupt_ps(), p.interrupt_ps(), true);
    time_ok(h, "consumer_signal_ps", p.has_consumer_signal_ps(), p.consumer_signal_ps(), false);
    time_ok(h, "scheduling_jitter_ps", p.has_scheduling_jitter_ps(), p.scheduling_jitter_ps(),
            false);
    energy_field(h, "watts_per_core", p.has_watts_per_core(), p.watts_per_core());
    idle_ok(h, "idle_watts_per_core", p.has_idle_watts_per_core(), p.idle_watts_per_core(),
            p.watts_per_core(), "watts_per_core");
  } else if (parts.has_dpu()) {
    Validator d = pv.at("dpu");
    const auto& p = parts.dpu();
    cores_ok(d, p);
    count_ok(d, "descriptor_writes", p.descriptor_writes());
    time_ok(d, "descriptor_write_ps", p.has_descriptor_write_ps(), p.descriptor_write_ps(),
            p.descriptor_writes() > 0);
    time_ok(d, "flag_write_ps", p.has_flag_write_ps(), p.flag_write_ps(), true);
    time_ok(d, "poll_interval_ps", p.has_poll_interval_ps(), p.poll_interval_ps(), true);
    time_ok(d, "jitter_ps", p.has_jitter_ps(), p.jitter_ps(), false);
    energy_field(d, "power_w", p.has_power_w(), p.power_w());
    idle_ok(d, "idle_power_w", p.has_idle_power_w(), p.idle_power_w(), p.power_w(), "power_w");
  } else if (parts.has_engine()) {
    Validator e = pv.at("engine");
    const auto& p = parts.engine();
    count_in(e, "units", p.has_units(), p.units(), 1, 4096);
    rate_ok(e, "clock_ghz", p.has_clock_ghz(), p.clock_ghz());
    count_in(e, "pipeline_cycles", p.has_pipeline_cycles(), p.pipeline_cycles(), 1, kMaxCount);
    count_in(e, "initiation_interval_cycles", p.has_initiation_interval_cycles(),
             p.initiation_interval_cycles(), 1, std::max<uint32_t>(1, p.pipeline_cycles()));
    count_ok(e, "map_lookups", p.map_lookups());
    time_ok(e, "sram_lookup_ps", p.has_sram_lookup_ps(), p.sram_lookup_ps(), p.map_lookups() > 0);
    time_ok(e, "descriptor_issue_ps", p.has_descriptor_issue_ps(), p.descriptor_issue_ps(), false);
    time_ok(e, "doorbell_ps", p.has_doorbell_ps(), p.doorbell_ps(), true);
    energy_field(e, "power_w", p.has_power_w(), p.power_w());
    idle_ok(e, "idle_power_w", p.has_idle_power_w(), p.idle_power_w(), p.power_w(), "power_w");
    if (p.has_table_bytes() && (p.table_bytes() == 0 || p.table_bytes() > (uint64_t{1} << 40))) {
      e.error("table_bytes", "must be in [1, 1 TiB]");
    }
    if (p.has_table_bytes() || p.has_sram_mm2_per_mib()) {
      if (e.positive("sram_mm2_per_mib", p.has_sram_mm2_per_mib(), p.sram_mm2_per_mib()) &&
          !(p.sram_mm2_per_mib() <= 1e3)) {
        e.error("sram_mm2_per_mib", "must be at most 1000");
      }
      if (!p.has_table_bytes()) e.error("table_bytes", "required with sram_mm2_per_mib");
    }
    if (p.has_logic_mm2() && !(p.logic_mm2() >= 0 && p.logic_mm2() <= 1e4)) {
      e.error("logic_mm2", "must lie in [0, 10000]");
    }
  } else {
    pv.error("", "set one of host_loop, dpu or engine");
    return;
  }
  // The sums, in floating point first: each part is bounded, but slow rates could still make
  // a decision (or the power) absurd; a controller whose decision or notification takes more
  // than a second is a typo.
  auto total_ok = [&](Validator v, double decision_ps, double notify_ps, double power_w) {
    if (!(decision_ps <= double(kMaxPs))) {
      v.error("", "a decision takes " + std::to_string(decision_ps / 1e12) +
                      " s by these parts: at most 1 s");
    }
    if (!(notify_ps <= double(kMaxPs))) {
      v.error("", "the notification takes " + std::to_string(notify_ps / 1e12) +
                      " s by these parts: at most 1 s");
    }
    if (!(power_w <= 1e6)) v.error("", "the controller's power must be at most 1 MW");
  };
  auto compute_ps = [](uint64_t instructions, double ghz, double ipc) {
    return ghz > 0 && ipc > 0 ? double(instructions) * 1000.0 / (ghz * ipc) : 0.0;
  };
  if (parts.has_host_loop()) {
    const auto& p = parts.host_loop();
    total_ok(
        pv.at("host_loop"),
        double(p.telemetry_reads()) * double(p.pcie_read_round_trip_ps()) +
            compute_ps(p.instructions_per_decision(), p.core_ghz(), p.instructions_per_cycle()) +
            double(p.syscall_ps()) + double(p.doorbell_writes()) * double(p.doorbell_write_ps()),
        double(p.interrupt_ps()) + double(p.consumer_signal_ps()),
        double(p.cores()) * p.watts_per_core());
  } else if (parts.has_dpu()) {
    const auto& p = parts.dpu();
    total_ok(
        pv.at("dpu"),
        double(p.telemetry_reads()) * double(p.pcie_read_round_trip_ps()) +
            compute_ps(p.instructions_per_decision(), p.core_ghz(), p.instructions_per_cycle()) +
            double(p.descriptor_writes()) * double(p.descriptor_write_ps()),
        double(p.flag_write_ps()) + double(p.poll_interval_ps()) / 2, p.power_w());
  } else {
    const auto& p = parts.engine();
    total_ok(pv.at("engine"),
             (p.clock_ghz() > 0 ? double(p.pipeline_cycles()) * 1000.0 / p.clock_ghz() : 0.0) +
                 double(p.map_lookups()) * double(p.sram_lookup_ps()) +
                 double(p.descriptor_issue_ps()),
             double(p.doorbell_ps()), p.power_w());
  }
}

}  // namespace

bool validate_parts(const config::ControllerParts& parts, Validator pv) {
  std::vector<ConfigIssue> local;
  Validator lv(local, pv.path(""));
  validate_parts_into(parts, lv);
  for (auto& i : local)
    pv.root(i.path).error("", i.message);
  return local.empty();
}

void BusyLedger::add(TimePs start, TimePs occupancy, TimePs now) {
  if (now < folded_to_) throw std::logic_error("BusyLedger: time went back");
  total_ += occupancy;
  // Fold the oldest decisions while they ended by now (amortised O(1); one that ended behind a
  // longer one waits for it and meanwhile counts whole in busy_until).
  while (!open_.empty() && open_.front().end <= now) {
    folded_ += open_.front().end - open_.front().start;
    open_.pop_front();
  }
  folded_to_ = now;
  if (occupancy > 0) open_.push_back({start, start + occupancy});
}

TimePs BusyLedger::busy_until(TimePs t) const {
  if (t < folded_to_) throw std::logic_error("BusyLedger: asked before a folded moment");
  TimePs busy = folded_;
  for (const Interval& i : open_) {
    if (t > i.start) busy += std::min(t, i.end) - i.start;
  }
  return busy;
}

}  // namespace tiersim
