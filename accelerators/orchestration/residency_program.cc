#include "accelerators/orchestration/residency_program.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "accelerators/dma_engine.h"
#include "accelerators/orchestration/orchestrator.h"
#include "accelerators/orchestration/planner.h"
#include "models/config/errors.h"
#include "models/core/context.h"
#include "models/core/movement_intent.h"
#include "models/core/workload.h"

namespace tiersim {

namespace {

constexpr TimePs kForever = ~TimePs{0};

}  // namespace

void ResidencyProgram::refuse(size_t index, const std::string& field,
                              const std::string& message) const {
  const std::string& trace = core_.params().wired_program_trace;
  const std::string at = "program[" + std::to_string(index) + "]." + field;
  if (!trace.empty()) {  // a replay's recorded program: its header is the trace's record 1
    throw ConfigError({ConfigIssue{
        {}, "workload.replay.trace", "\"" + trace + "\" record 1: " + at + ": " + message}});
  }
  throw ConfigError({ConfigIssue{{}, "policy.orchestration.wired." + at, message}});
}

ResidencyProgram::ResidencyProgram(Orchestrator& core)
    : core_(core),
      binds_(core.ctx().stats().counter(core.owner(), "wired_program_binds",
                                        "objects bound or soft-pinned by the residency program",
                                        "count")),
      releases_(core.ctx().stats().counter(core.owner(), "wired_program_releases",
                                           "objects released by the residency program", "count")),
      reclaims_(core.ctx().stats().counter(core.owner(), "wired_program_reclaims",
                                           "objects whose room was reclaimed", "count")),
      bind_bytes_(core.ctx().stats().counter(core.owner(), "wired_program_bind_bytes",
                                             "bytes copied into the wired memory by binds",
                                             "bytes")) {}

void ResidencyProgram::prepare() {
  const OrchestrationParams& p = core_.params();
  auto& map = core_.ctx().address_map();
  // The wired area: the largest quota the program ever sets, within the memory's room.
  uint64_t area = p.wired_quota_bytes;
  for (const auto& d : p.wired_program)
    if (d.op() == config::WIRED_SET_QUOTA) area = std::max<uint64_t>(area, d.quota_bytes());
  const uint64_t room = map.capacity(p.wired_memory) - map.allocated(p.wired_memory);
  if (area > room) {  // a quota the memory cannot hold is refused, not silently cut
    for (size_t i = 0; i < p.wired_program.size(); ++i) {
      const auto& d = p.wired_program[i];
      if (d.op() == config::WIRED_SET_QUOTA && d.quota_bytes() > room &&
          p.wired_quota_bytes <= room) {
        refuse(i, "quota_bytes",
               "a quota of " + std::to_string(area) + " bytes is more than \"" + p.wired_memory +
                   "\" has room for (" + std::to_string(room) + " bytes)");
      }
    }
    throw ConfigError(
        {ConfigIssue{{},
                     "policy.orchestration.wired.quota_bytes",
                     "a quota of " + std::to_string(area) + " bytes is more than \"" +
                         p.wired_memory + "\" has room for (" + std::to_string(room) + " bytes)"}});
  }
  area = area / 4096 * 4096;
  area_base_ =
      area > 0 ? core_.place_in(p.wired_memory, area, "wired.memory", "the wired area") : 0;
  std::vector<config::WiredDirective> emitted;
  if (!p.wired_emit) {
    simulate(p.wired_program, area);
  } else {
    emitted = emit(area);
    try {
      simulate(emitted, area);
    } catch (const ConfigError& e) {  // an emitted directive refused: name the option
      throw ConfigError(
          {ConfigIssue{{},
                       "policy.orchestration.wired.emit_from_intents",
                       "the emitted program is refused: " + e.issues().front().message}});
    }
  }
  // The program in force travels with a recorded trace (the compiler's output).
  if (Workload* w = core_.ctx().workload()) {
    w->record_residency_program(p.wired_emit ? emitted : p.wired_program, p.wired_quota_bytes);
  }
  // Model load: step 0's effects are in place before the run, without decisions or copies
  // (with per-tenant quotas, those of the tenants there at the start).
  if (tenant_first_event_.empty()) {
    size_t end = 0;
    while (end < events_.size() && events_[end].step == 0)
      ++end;
    load(0, end);
    next_event_ = end;
    return;
  }
  tenant_next_event_.assign(tenant_first_event_.begin(), tenant_first_event_.end() - 1);
  for (size_t t = 0; t + 1 < tenant_first_event_.size(); ++t) {
    if (p.tenant_arrival_ps[t] > 0) continue;  // its step 0 is decided when it arrives
    size_t& next = tenant_next_event_[t];
    size_t end = next;
    while (end < tenant_first_event_[t + 1] && events_[end].step == 0)
      ++end;
    load(next, end);
    next = end;
  }
}

void ResidencyProgram::load(size_t from, size_t to) {
  for (size_t k = from; k < to; ++k) {
    Event& e = events_[k];
    for (const auto& victim : e.victims) {
      residence_.erase(victim.first);
      reclaims_.inc();
    }
    if (e.op == Op::kBind || e.op == Op::kSoftPin) {
      residence_[e.object] = Residence{e.address, 0, kForever, true, 0};
      binds_.inc();
    } else if (e.op == Op::kRelease) {
      residence_.erase(e.object);
      releases_.inc();
    }
  }
}

std::vector<config::WiredDirective> ResidencyProgram::emit(uint64_t quota_bytes) const {
  const ObjectTable& objects = core_.ctx().objects();
  const uint32_t steps = std::max<uint32_t>(core_.ctx().workload()->total_steps(), 1);
  // The phase starts: model load, and every step at which some object's intent changes.
  std::set<uint32_t> starts = {0};
  if (core_.params().intent_per_phase) {
    for (size_t i = 0; i < objects.size(); ++i) {
      for (const auto& ph : objects.get(ObjectId(uint32_t(i))).intent.phases)
        if (ph.first_step < steps) starts.insert(ph.first_step);
    }
  }
  std::vector<config::WiredDirective> program;
  std::vector<std::string> held;  // the names bound now, sorted
  for (uint32_t step : starts) {
    std::vector<std::string> chosen;
    for (ObjectId id : choose_wired_objects(
             objects, [&](const ObjectInfo& o) { return core_.intent_at(o, step).first; },
             quota_bytes, nullptr)) {
      chosen.push_back(objects.get(id).name);
    }
    std::sort(chosen.begin(), chosen.end());
    config::WiredDirective release, bind;
    release.set_op(config::WIRED_RELEASE);
    release.set_step(step);
    bind.set_op(config::WIRED_BIND);
    bind.set_step(step);
    for (const auto& n : held)
      if (!std::binary_search(chosen.begin(), chosen.end(), n)) release.add_objects(n);
    for (const auto& n : chosen)
      if (!std::binary_search(held.begin(), held.end(), n)) bind.add_objects(n);
    if (release.objects_size() > 0) program.push_back(release);
    if (bind.objects_size() > 0) program.push_back(bind);
    held = chosen;
  }
  return program;
}

void ResidencyProgram::simulate(const std::vector<config::WiredDirective>& program, uint64_t area) {
  const OrchestrationParams& p = core_.params();
  if (p.wired_tenant_quota.empty()) {  // one quota over every object, steps of the run
    std::vector<size_t> all(program.size());
    std::iota(all.begin(), all.end(), 0);
    simulate_pass(program, all, 0, area, p.wired_quota_bytes, core_.ctx().workload()->total_steps(),
                  TenantId());
    return;
  }
  // Per-tenant quotas: each tenant's directives run on their own, in its own steps, in a
  // partition of the area as large as the largest quota it is ever given (so the check does not
  // depend on how the tenants' steps interleave).
  const auto* views = core_.ctx().workload()->tenants();
  const size_t n = p.tenant_names.size();
  std::vector<std::vector<size_t>> mine(n);
  std::vector<uint64_t> part(p.wired_tenant_quota);
  for (size_t i = 0; i < program.size(); ++i) {
    const auto& d = program[i];
    const auto at = std::find(p.tenant_names.begin(), p.tenant_names.end(), d.tenant());
    const size_t t = d.has_tenant() ? size_t(at - p.tenant_names.begin()) : 0;
    mine[t].push_back(i);
    if (d.op() == config::WIRED_SET_QUOTA) part[t] = std::max<uint64_t>(part[t], d.quota_bytes());
  }
  peak_tenant_bytes_.assign(n, 0);
  uint64_t offset = 0;
  for (size_t t = 0; t < n; ++t) {
    part[t] = part[t] / 4096 * 4096;
    if (offset + part[t] > area) {
      throw ConfigError({ConfigIssue{
          {},
          "policy.orchestration.wired.tenant_quotas",
          "the tenants' largest quotas (" + std::to_string(offset + part[t]) +
              " bytes with tenant " + p.tenant_names[t] + "'s) are more than the wired area (" +
              std::to_string(area) + " bytes): each tenant's part is its largest quota"}});
    }
    tenant_first_event_.push_back(events_.size());
    simulate_pass(program, mine[t], offset, part[t], p.wired_tenant_quota[t],
                  views ? (*views)[t].total_steps : 0, TenantId(static_cast<uint16_t>(t)));
    offset += part[t];
  }
  tenant_first_event_.push_back(events_.size());
  peak_bytes_ = 0;
  for (uint64_t b : peak_tenant_bytes_)
    peak_bytes_ += b;  // an upper bound: the tenants' peaks need not coincide
}

void ResidencyProgram::simulate_pass(const std::vector<config::WiredDirective>& program,
                                     std::vector<size_t> sequence, uint64_t area_offset,
                                     uint64_t area, uint64_t quota, uint32_t steps,
                                     TenantId tenant) {
  const ObjectTable& objects = core_.ctx().objects();
  const OrchestrationParams& p = core_.params();
  ExtentAllocator extents(std::max<uint64_t>(area, 4096), 4096);

  // The program run once, in step order (file order within a step).
  struct Held {
    Op pin = Op::kBind;  // kBind, kSoftPin or kUnpin
    ExtentAllocator::Handle handle = 0;
    uint64_t bytes = 0, order = 0;
    TimePs grace_ps = 0;
  };
  std::unordered_map<uint32_t, Held> held;
  uint64_t used = 0, order = 0;
  std::stable_sort(sequence.begin(), sequence.end(),
                   [&](size_t a, size_t b) { return program[a].step() < program[b].step(); });
  // Ranges of the area freed by a release or a reclaim: reusable once that event's decision is
  // taken (plus the grace of a reclaimed soft pin). A bind that lands on one waits for it.
  struct Freed {
    uint64_t offset = 0, bytes = 0;
    size_t event = 0;
    TimePs grace_ps = 0;
  };
  std::vector<Freed> freed;
  auto free_range = [&](ExtentAllocator::Handle h, TimePs grace) {
    freed.push_back({extents.offset(h), extents.size(h), events_.size(), grace});
    extents.free(h);
  };
  // Frees the oldest unpinned object, else the oldest soft pin; false when only hard pins hold
  // (with tenants, only this tenant's: each has its own part of the area).
  auto reclaim_one = [&](Event& e) {
    const Held* best = nullptr;
    uint32_t best_id = 0;
    for (const auto& [id, h] : held) {
      if (h.pin == Op::kBind) continue;
      const bool better = best == nullptr || (h.pin == Op::kUnpin && best->pin != Op::kUnpin) ||
                          (h.pin == best->pin && h.order < best->order);
      if (better) {
        best = &h;
        best_id = id;
      }
    }
    if (best == nullptr) return false;
    const TimePs grace = best->pin == Op::kSoftPin ? best->grace_ps : 0;
    e.victims.emplace_back(best_id, grace);
    free_range(best->handle, grace);
    used -= best->bytes;
    held.erase(best_id);
    return true;
  };
  for (size_t i : sequence) {
    const config::WiredDirective& d = program[i];
    // Without a step count (serving, a serving trace, tenants) a later step depends on how long
    // the run lasts: checked here in step order, and counted at the end if never reached.
    if (steps > 0 && d.step() >= steps) {
      refuse(i, "step",
             "step " + std::to_string(d.step()) + " is beyond " +
                 (tenant.valid() ? "tenant " + p.tenant_names[tenant.value()] + "'s "
                                 : std::string("the run's ")) +
                 std::to_string(steps) + " steps");
    }
    if (d.op() == config::WIRED_SET_QUOTA) {
      Event e;
      e.step = d.step();
      e.op = Op::kSetQuota;
      quota = d.quota_bytes();
      while (used > quota) {
        if (!reclaim_one(e)) {
          refuse(i, "quota_bytes",
                 std::to_string(used) + " bytes are hard-bound (BIND), more than the new quota " +
                     std::to_string(quota) + ": release them first");
        }
      }
      events_.push_back(std::move(e));
      continue;
    }
    // The objects the directive names: exact names, or prefixes ending in '*'.
    std::vector<uint32_t> ids;
    for (int k = 0; k < d.objects_size(); ++k) {
      const std::string& pattern = d.objects(k);
      const bool prefix = !pattern.empty() && pattern.back() == '*';
      const std::string stem = prefix ? pattern.substr(0, pattern.size() - 1) : pattern;
      bool any = false;
      for (size_t id = 0; id < objects.size(); ++id) {
        const ObjectInfo& o = objects.get(ObjectId(static_cast<uint32_t>(id)));
        const bool match = prefix ? o.name.compare(0, stem.size(), stem) == 0 : o.name == stem;
        if (!match || !wirable(o.cls)) continue;
        if (tenant.valid() && o.tenant != tenant) {
          refuse(i, "objects[" + std::to_string(k) + "]",
                 "\"" + pattern + "\" names " + o.name + ", tenant " +
                     p.tenant_names[o.tenant.value()] + "'s, but the directive is tenant " +
                     p.tenant_names[tenant.value()] + "'s (set its `tenant`)");
        }
        any = true;
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(uint32_t(id));
      }
      if (!any) {
        refuse(i, "objects[" + std::to_string(k) + "]",
               "\"" + pattern + "\" names no weight, embedding or draft-weight object");
      }
    }
    for (uint32_t id : ids) {
      const ObjectInfo& o = objects.get(ObjectId(id));
      Event e;
      e.step = d.step();
      e.object = id;
      auto h = held.find(id);
      switch (d.op()) {
        case config::WIRED_BIND:
        case config::WIRED_SOFT_PIN: {
          e.op = d.op() == config::WIRED_BIND ? Op::kBind : Op::kSoftPin;
          e.grace_ps = d.grace_ps();
          if (h != held.end()) {
            if (h->second.pin != Op::kUnpin) {
              refuse(i, "objects", o.name + " is already bound");
            }
            h->second.pin = e.op;  // re-pinned where it is: no copy
            h->second.grace_ps = e.grace_ps;
            e.address = area_base_ + area_offset + extents.offset(h->second.handle);
            break;
          }
          const uint64_t bytes = (o.size_bytes + 4095) / 4096 * 4096;
          const std::string whose = tenant.valid()
                                        ? "tenant " + p.tenant_names[tenant.value()] + "'s quota ("
                                        : "the quota (";
          if (bytes > std::min(area, quota)) {
            refuse(i, "objects",
                   o.name + " (" + std::to_string(o.size_bytes) + " bytes) does not fit " + whose +
                       std::to_string(quota) + " bytes) or the wired memory's room");
          }
          std::optional<ExtentAllocator::Handle> a;
          while (used + bytes > quota || !(a = extents.allocate(bytes))) {
            if (!reclaim_one(e)) {
              const bool room = used + bytes <= quota;  // within the quota: fragmentation
              refuse(i, "objects",
                     "binding " + o.name + " (" + std::to_string(bytes) + " bytes) needs " +
                         (room ? "more contiguous room than the wired area" +
                                     std::string(tenant.valid() ? " part" : "") + " has free (" +
                                     std::to_string(area - used) + " of " + std::to_string(area) +
                                     " bytes free, in pieces; the rest held by pins that cannot "
                                     "be reclaimed)"
                               : "more than " + whose + std::to_string(quota) + " bytes, " +
                                     std::to_string(used) +
                                     " held by pins that cannot be reclaimed)"));
            }
          }
          held[id] = Held{e.op, *a, bytes, order++, e.grace_ps};
          used += bytes;
          e.address = area_base_ + area_offset + extents.offset(*a);
          e.copy = true;
          for (const Freed& f : freed) {  // room last held by objects that leave later
            if (f.offset < extents.offset(*a) + bytes && extents.offset(*a) < f.offset + f.bytes) {
              e.waits.emplace_back(f.event, f.grace_ps);
            }
          }
          break;
        }
        case config::WIRED_UNPIN:
          if (h == held.end() || h->second.pin == Op::kUnpin) {
            refuse(i, "objects", o.name + " is not pinned");
          }
          e.op = Op::kUnpin;
          h->second.pin = Op::kUnpin;
          break;
        case config::WIRED_RELEASE:
          if (h == held.end()) refuse(i, "objects", o.name + " is not bound");
          e.op = Op::kRelease;
          free_range(h->second.handle, 0);
          used -= h->second.bytes;
          held.erase(h);
          break;
        default:
          refuse(i, "op", "required: BIND, SOFT_PIN, UNPIN, RELEASE or SET_QUOTA");
      }
      peak_bytes_ = std::max(peak_bytes_, used);
      if (tenant.valid()) {
        peak_tenant_bytes_[tenant.value()] = std::max(peak_tenant_bytes_[tenant.value()], used);
      }
      events_.push_back(std::move(e));
    }
  }
}

void ResidencyProgram::on_step_start(uint32_t step) {
  const TimePs now = now_ps();
  if (tenant_first_event_.empty()) {  // per-tenant programs go by each tenant's own steps
    while (next_event_ < events_.size() && events_[next_event_].step <= step) {
      apply(events_[next_event_++], now);
    }
  }
  core_.issue_due(now);
}

void ResidencyProgram::on_tenant_step(TenantId tenant, uint32_t step) {
  if (tenant_first_event_.empty() || size_t(tenant.value()) + 1 >= tenant_first_event_.size())
    return;
  const TimePs now = now_ps();
  size_t& next = tenant_next_event_[tenant.value()];
  while (next < tenant_first_event_[tenant.value() + 1] && events_[next].step <= step) {
    apply(events_[next++], now);
  }
  core_.issue_due(now);
}

void ResidencyProgram::apply(Event& e, TimePs now) {
  // One decision per object (and one per quota change), off the critical path: reads go where
  // the data is meanwhile.
  const DecisionKind kind =
      e.op == Op::kBind || e.op == Op::kSoftPin ? DecisionKind::kBind : DecisionKind::kRelease;
  const TimePs decided =
      core_.decide(now, DecisionMechanism::kResidencyProgram,
                   e.op == Op::kSetQuota ? DecisionKind::kQuota : kind, false,
                   e.op == Op::kSetQuota ? 0 : core_.map_lookup(ObjectId(e.object)));
  // Reclaimed objects leave at the decision (a soft pin after its grace); the room they held is
  // free from then.
  e.decided_ps = decided;
  for (const auto& [victim, grace] : e.victims) {
    reclaims_.inc();
    auto r = residence_.find(victim);
    if (r != residence_.end()) r->second.until_ps = std::min(r->second.until_ps, decided + grace);
  }
  // The room is free once every earlier holder of it has left (a release's decision, a
  // reclaimed soft pin's grace after its reclaim).
  TimePs room_free = decided;
  for (const auto& [event, grace] : e.waits)
    room_free = std::max(room_free, events_[event].decided_ps + grace);
  switch (e.op) {
    case Op::kBind:
    case Op::kSoftPin: {
      binds_.inc();
      if (!e.copy) break;  // re-pinned where it is
      auto old = residence_.find(e.object);
      const bool queued = old != residence_.end() && !old->second.issued;
      Residence r;
      r.address = e.address;
      r.from_ps = kForever;  // until its copy landed and was notified
      r.until_ps = kForever;
      r.issued = false;
      r.issue_at_ps = room_free;
      residence_[e.object] = r;
      if (!queued) copy_queue_.push_back(e.object);  // one queue entry per object
      break;
    }
    case Op::kRelease: {
      releases_.inc();
      auto r = residence_.find(e.object);
      if (r != residence_.end()) r->second.until_ps = std::min(r->second.until_ps, decided);
      break;
    }
    case Op::kUnpin:
    case Op::kSetQuota:
      break;
  }
}

TimePs ResidencyProgram::issue_due(TimePs now) {
  TimePs next = 0;
  size_t kept = 0;
  for (uint32_t id : copy_queue_) {
    Residence& r = residence_.at(id);
    if (r.until_ps <= std::max(now, r.issue_at_ps)) {  // released or reclaimed before its copy
      r.issued = true;
      continue;
    }
    if (r.issue_at_ps > now) {
      next = next == 0 ? r.issue_at_ps : std::min(next, r.issue_at_ps);
      copy_queue_[kept++] = id;
      continue;
    }
    const ObjectInfo& o = core_.ctx().objects().get(ObjectId(id));
    MovementIntent intent;
    intent.object = ObjectId(id);
    intent.object_class = o.cls;
    intent.op = MoveOp::kPromote;
    intent.layer = o.layer;
    const TimePs landed = core_.copy(core_.dma(), o.address, r.address, o.size_bytes, intent, now);
    r.issued = true;
    r.from_ps = landed + core_.notification_ps(DecisionMechanism::kResidencyProgram);
    bind_bytes_.inc(o.size_bytes);
  }
  copy_queue_.resize(kept);
  return next;
}

bool ResidencyProgram::locate(ObjectId object, const ObjectInfo& o, uint64_t offset,
                              uint64_t max_bytes, TimePs now, ReadSource& src) {
  auto r = residence_.find(object.value());
  if (r == residence_.end() || now < r->second.from_ps || now >= r->second.until_ps) return false;
  src.address = r->second.address + offset;
  src.bytes = max_bytes;
  src.ready_ps = src.landed_ps = now;
  src.path = ReadPath::kWired;
  return true;
}

void ResidencyProgram::summarize(std::vector<SummaryItem>& out, double per) const {
  out.push_back({"wired_program_binds", double(binds_.value()), "count"});
  out.push_back({"wired_program_releases", double(releases_.value()), "count"});
  out.push_back({"wired_program_reclaims", double(reclaims_.value()), "count"});
  out.push_back(
      {"wired_program_bind_bytes_per_token", double(bind_bytes_.value()) * per, "bytes/token"});
  out.push_back({"wired_program_peak_bytes", double(peak_bytes_), "bytes"});
  // Run-time faults: effects whose step the run (or its tenant) never reached.
  size_t unreached = events_.size() - next_event_;
  if (!tenant_first_event_.empty()) {
    unreached = 0;
    for (size_t t = 0; t + 1 < tenant_first_event_.size(); ++t)
      unreached += tenant_first_event_[t + 1] - tenant_next_event_[t];
  }
  out.push_back({"wired_program_effects_unreached", double(unreached), "count"});
  for (size_t t = 0; t < peak_tenant_bytes_.size(); ++t) {
    out.push_back({"wired_program_peak_bytes_tenant_" + core_.params().tenant_names[t],
                   double(peak_tenant_bytes_[t]), "bytes"});
  }
}

}  // namespace tiersim
