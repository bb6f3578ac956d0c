// Wired residency as a program (policy.orchestration.wired.program), a mechanism of the movement
// controller (mechanism.h; docs/models/orchestration.md, "Residency program").
//
// Directives apply when their step begins, in the order written: BIND (pin whole objects in the
// wired memory; never a victim), SOFT_PIN (pinned, but a later BIND or SET_QUOTA that needs room
// may reclaim it: a residency-loss notice, then `grace_ps` more before its room is reused),
// UNPIN (a pinned object stays, reclaimable at once), RELEASE (unpinned and its room freed) and
// SET_QUOTA (the wired quota from then on; reclaims what no longer fits). Reclaim takes unpinned
// objects first, then soft pins, oldest binding first; hard pins never.
//
// The program depends on steps only, so prepare() runs it once against the quota and the room
// (an extent allocator over the wired area) and refuses, before the run and naming the
// directive's field path, a BIND beyond the quota or the room, a RELEASE or UNPIN of what is not
// bound, a BIND of what is bound, an object that matches nothing or does not fit, a step beyond
// the run, and a SET_QUOTA below the hard-pinned bytes. With emit_from_intents the program is
// emitted first (the compiler view): at model load and at each step where an intent changes
// phase, the wired-residency arbiter's choice for that phase is bound and what it no longer
// chooses released. Step 0 is model load: its binds are in
// place before the run (no copy charged, as the arbiter's). At a later step each object of a
// directive is one controller decision (off the critical path): a bind copies the object from
// its home into its extent once decided (and once the room's previous holders have left), and
// reads switch to the wired copy when it landed and was notified; a release or a reclaim sends
// reads home from its decision (a soft pin's, after the grace).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "accelerators/orchestration/mechanism.h"
#include "accelerators/policies/extent_allocator.h"
#include "configs/tiersim.pb.h"
#include "models/core/stats.h"

namespace tiersim {

class Orchestrator;

class ResidencyProgram final : public MovementMechanism {
 public:
  explicit ResidencyProgram(Orchestrator& core);

  // Runs the program against the quota and the room; throws ConfigError naming the directive.
  void prepare() override;
  void on_step_start(uint32_t step) override;
  // With per-tenant quotas: tenant `tenant`'s own step `step` begins; its directives of that step
  // apply (its step 0 at its arrival; model load for a tenant there at the run's start).
  void on_tenant_step(TenantId tenant, uint32_t step);
  TimePs issue_due(TimePs now) override;
  bool locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes, TimePs now,
              ReadSource& out) override;
  void summarize(std::vector<SummaryItem>& out, double per_token) const override;

 private:
  enum class Op : uint8_t { kBind, kSoftPin, kUnpin, kRelease, kSetQuota };
  // One effect of the program on one object, in program order (found by prepare()).
  struct Event {
    uint32_t step = 0;  // the run's step, or (with per-tenant quotas) the tenant's own
    Op op = Op::kBind;
    uint32_t object = 0;   // unused for kSetQuota
    uint64_t address = 0;  // kBind, kSoftPin: the extent's global address
    bool copy = false;     // a bind that copies (not a re-pin of an object still there)
    // Objects this one's room is taken from (reclaimed now), and how long each may stay.
    std::vector<std::pair<uint32_t, TimePs>> victims;
    // A bind's extent overlaps room freed by these earlier events (index, grace): its copy
    // waits until each has been decided and its grace has passed.
    std::vector<std::pair<size_t, TimePs>> waits;
    TimePs grace_ps = 0;    // kSoftPin
    TimePs decided_ps = 0;  // when its decision was taken (0: model load)
  };
  // Where reads of an object go: the wired copy at `address` from `from_ps` until `until_ps`.
  struct Residence {
    uint64_t address = 0;
    TimePs from_ps = 0, until_ps = 0;
    bool issued = true;      // its copy has been issued
    TimePs issue_at_ps = 0;  // decided, and the room's previous holders gone
  };
  void apply(Event& e, TimePs now);
  // Refuses directive `index` of the program in force (the config's, or a replayed trace's),
  // naming `field` of it: throws ConfigError.
  [[noreturn]] void refuse(size_t index, const std::string& field,
                           const std::string& message) const;
  // The program from the intents (emit_from_intents): per phase, the arbiter's choice bound and
  // what it no longer chooses released.
  std::vector<config::WiredDirective> emit(uint64_t quota_bytes) const;
  // Runs `program` against the quota and the room into events_ (ConfigError on a refusal): as
  // one pass, or with per-tenant quotas one pass per tenant in its own part of the area.
  void simulate(const std::vector<config::WiredDirective>& program, uint64_t area);
  // The directives `sequence` (indices into `program`) in step order, in [area_offset,
  // area_offset + area) of the wired area under `quota`; `steps`: the run's (or the tenant's)
  // step count, 0 if not known; `tenant` valid: that tenant's directives and objects only.
  void simulate_pass(const std::vector<config::WiredDirective>& program,
                     std::vector<size_t> sequence, uint64_t area_offset, uint64_t area,
                     uint64_t quota, uint32_t steps, TenantId tenant);
  // Applies events [from, to) in place, before the run (model load: no decision, no copy).
  void load(size_t from, size_t to);

  Orchestrator& core_;
  std::vector<Event> events_;
  size_t next_event_ = 0;
  // With per-tenant quotas: each tenant's events are events_[first[t], first[t + 1]), and the
  // next to apply of each.
  std::vector<size_t> tenant_first_event_, tenant_next_event_;
  std::unordered_map<uint32_t, Residence> residence_;  // by object id
  std::vector<uint32_t> copy_queue_;                   // objects whose copy is not issued
  uint64_t area_base_ = 0;
  uint64_t peak_bytes_ = 0;
  std::vector<uint64_t> peak_tenant_bytes_;  // by tenant, with per-tenant quotas
  Counter& binds_;
  Counter& releases_;
  Counter& reclaims_;
  Counter& bind_bytes_;
};

}  // namespace tiersim
