// Tenants sharing one accelerator (config tenancy): the primary workload (the config's `workload`)
// and the workloads of tenancy.tenants, presented to the compute engine as one op stream.
//
// What is modelled: iteration-level time sharing. The engine runs one tenant's step at a time and
// never preempts a step; at each step boundary the scheduler starts the next step of the
// highest-priority tenant that has work, and among equal priorities the one with the least engine
// time per unit of share (ties: config order, the primary first). A tenant has work once it has
// arrived (arrival_ps) and is not waiting for requests (a serving tenant's idle wait is not run:
// the scheduler asks it again once the wait is over, and runs another tenant meanwhile). When no
// tenant has work the engine idles until the earliest arrival or end of a wait. Memories, links,
// SRAM and the movement controller are shared because every tenant's ops run on the same system;
// a tenant's objects are its own (named "<tenant>/<object>", the primary's unprefixed).
//
// Steps are renumbered in run order (an op's `step` is the run's step, as mechanisms see it); each
// tenant's own steps are kept in its TenantView. The run ends when the primary completes
// (TENANCY_END_WITH_PRIMARY) or when every tenant has (TENANCY_END_ALL).
//
// Left out: spatial sharing (MPS- or MIG-like partitions running kernels concurrently) and
// preemption inside a step.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/core/workload.h"

namespace tiersim {

// Tenant `index`'s own config (index >= 1): `root` with its workload replaced by `workload` and
// its seed mixed with the index, so two tenants of the same scenario draw different requests.
std::unique_ptr<config::Config> tenant_config(const config::Config& root,
                                              const config::Workload& workload, size_t index);

class TenantScheduler : public Workload {
 public:
  // `primary` is the config's workload; the others are created from root.tenancy().tenants()
  // (a valid config).
  TenantScheduler(const config::Config& root, std::unique_ptr<Workload> primary);

  void register_objects(ObjectTable& objects) override;
  bool next(Op& op) override;
  uint32_t total_steps() const override { return 0; }  // not known: tenants interleave
  void begin_step(TimePs now_ps) override;
  void end_step(TimePs now_ps) override;
  uint32_t tokens_per_step() const override;
  uint32_t sequences_per_step() const override;
  uint64_t max_activation_bytes() const override;
  // The primary's items as they are; another tenant's prefixed "tenant_<name>_".
  void summarize(std::vector<SummaryItem>& summary) const override;
  // The primary's results as they are; another tenant's under /tenants/<name>/.
  void write_results(ResultSink& writer) const override;
  TenantId step_tenant() const override { return TenantId(static_cast<uint16_t>(current_)); }
  const std::vector<TenantView>* tenants() const override { return &views_; }

 private:
  struct Entry {
    std::unique_ptr<config::Config> root;  // a tenant's own config (null for the primary)
    std::unique_ptr<Workload> workload;
    TimePs arrival_ps = 0;
    TimePs idle_until_ps = 0;  // its last answer was an idle wait until then
    TimePs last_end_ps = 0;    // its last step's end
    bool begun = false;        // its begin_step was called for the step it has not started
    bool done = false;
    // Engine time per unit of share, as the scheduler counts it: lifted to its priority class's
    // virtual clock when it gets work again (arrival, end of an idle wait), so time away earns
    // no credit to spend in a burst later (start-time fair queueing).
    double virtual_ps = 0;
    bool had_work = false;  // it had work at the last pick
  };

  // Starts the next tenant's step at `now` (its first op in pending_); false when none has work.
  bool pick(TimePs now);
  bool run_complete() const;

  config::TenancyEnd end_;
  std::vector<Entry> entries_;
  std::vector<TenantView> views_;
  size_t current_ = 0;
  bool need_pick_ = true;
  TimePs now_ps_ = 0;         // the last begin_step's time
  TimePs step_start_ps_ = 0;  // when the step under way started
  TimePs step_ready_ps_ = 0;  // when its tenant became ready for it
  bool has_pending_ = false;
  Op pending_;
  uint32_t run_step_ = 0;  // steps completed by every tenant
  // Per priority class: the virtual time of the last step started in it (SFQ's clock).
  std::map<uint32_t, double> class_clock_;
  std::vector<size_t> order_;  // pick()'s candidates, kept to avoid an allocation per step
};

}  // namespace tiersim
