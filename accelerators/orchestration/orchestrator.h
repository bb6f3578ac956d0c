// The movement controller of policy ORCHESTRATED (config Orchestration; docs/models/
// orchestration.md): the controller core and the mechanisms it runs.
//
// The core places objects once (the plan of planner.h: wired objects bound, precision states,
// every weight split into a resident part in the fast memory, a middle-tier part and a home
// part), queues every mechanism's decisions on its decision servers (a prefetch's copy, a
// miss's admission, a compaction, a region copy-up, a restore choice: each the controller's
// latency by placement plus jitter; critical when a consumer waits for it; docs/models/
// controller.md), issues decided copies at their decision time from its own
// SC_METHOD (event-driven: a copy reserves bandwidth from then, not ahead of the engine's
// tiles), answers the compute engine's per-tile `locate` and counts what each tile waited for.
// The mechanisms (one file each, behind mechanism.h) decide what moves: layer-ahead prefetch
// with the DPU buffer (layer_prefetch), the dynamic page cache (page_cache), the object cache
// (object_cache) and context regions of a sparse-attention KV (context_regions). The
// recompute-vs-transfer arbiter is restore_arbiter.
//
// The compute engine asks, per tile, where an operand's bytes are: in the resident part (fast
// memory, ready now), with a mechanism (staged, cached, in a region: ready when its copy landed
// plus the notification), or only at home (streamed on demand). The engine starts the tile's
// transfer no earlier than the ready time: the difference is the exposed stall, counted as data
// (the copy had not landed) and notification (it had, the consumer had not been told).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <systemc>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "accelerators/orchestration/mechanism.h"
#include "accelerators/orchestration/params.h"
#include "accelerators/orchestration/planner.h"
#include "accelerators/orchestration/restore_arbiter.h"
#include "accelerators/policies/residency_map.h"
#include "models/core/ids.h"
#include "models/core/objects.h"
#include "models/core/op.h"
#include "models/core/rng.h"
#include "models/core/stats.h"
#include "models/core/time.h"

namespace tiersim {

class Context;
class DmaEngine;
class LayerPrefetch;
class PageCache;
class ObjectCache;
class ContextRegions;
class ResidencyProgram;
struct MovementIntent;

class Orchestrator : public sc_core::sc_module {
 public:
  using Path = ReadPath;
  using Source = ReadSource;
  // Where a weight's parts live: [0, resident_bytes) at resident_address (stored at `scale`
  // bytes per logical byte), [resident_bytes, tier_end) in the middle tier from tier_address,
  // [tier_end, size) at home.
  struct Split {
    uint64_t resident_bytes = 0;
    uint64_t resident_address = 0;
    double scale = 1.0;
    uint64_t tier_end = 0;
    uint64_t tier_address = 0;
  };

  SC_HAS_PROCESS(Orchestrator);
  Orchestrator(sc_core::sc_module_name name, const OrchestrationParams& p, Context& ctx);
  ~Orchestrator() override;

  // ---- The compute engine's interface ----

  // Places the objects (called from the compute engine's prepare, after the builder put every
  // object at home), then lets each mechanism reserve its areas (cache frames of `tile_bytes`
  // unless page_bytes is set). `default_dma` moves copies when the params name none. Throws
  // ConfigError when a memory cannot hold them.
  void prepare(const std::string& default_dma, uint64_t tile_bytes);
  // A step begins.
  void on_step_start(uint32_t step);
  // Tenancy: tenant `tenant`'s own step `step` begins (after on_step_start of the run's step).
  void on_tenant_step(TenantId tenant, uint32_t step);
  // The engine issued the copy of an admitted tile (`bytes`) into its cache frame.
  void record_admission(uint64_t bytes) { admission_bytes_.inc(bytes); }
  // The op the engine starts.
  void on_op_start(const Op& op, TimePs now);
  // Where bytes [offset, offset + max_bytes) of `object` are for a read starting at `now`.
  Source locate(ObjectId object, uint64_t offset, uint64_t max_bytes, TimePs now);
  // Whether every read of `object` at `now` is served from where it was placed, with nothing
  // of the controller's in the way: no split, no context regions of a KV object, no residency
  // program, no restore decision pending. Then locate() answers the object's address and path
  // and changes nothing, so the engine may gather reads of it without asking part by part.
  bool reads_in_place(ObjectId object, TimePs now) const;
  // The engine's tile from `s` starts at `start`; it first wanted it at `wanted` (<= start):
  // counts the exposed stall and the bytes by path.
  void record(const Source& s, uint64_t bytes, TimePs wanted, TimePs start);
  // The engine sat idle `ps` waiting for a tile whose decision had not been taken (the exposed
  // part of the control stall: waits hidden under the engine's other tiles are not counted).
  void record_control_idle(TimePs ps) { control_idle_ps_.inc(ps); }
  void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const;
  // The controllers' energy up to `now`: each draws its idle power all the time plus, per
  // decision server, (power - idle power) / servers while that server decides.
  double controller_energy_j(TimePs now) const;
  const OrchestrationParams& params() const { return p_; }
  // Recompute-vs-transfer (restore_arbiter.h): whether to restore `kv_bytes` of the KV object
  // `kv` by recomputing them from `hidden_bytes` of hidden states at `recompute_flops_per_s`,
  // for an op starting at `now`. Under KV_RESTORE_ARBITRATE the choice is a decision of the
  // controller the op's reads of that KV (or its hidden states) wait for.
  bool restore_by_recompute(ObjectId kv_id, const ObjectInfo& kv, uint64_t kv_bytes,
                            uint64_t hidden_bytes, double recompute_flops_per_s, TimePs now);
  // The engine read `bytes` from home on demand in one op, the path busy `busy_ps`.
  void observe_home_rate(uint64_t bytes, TimePs busy_ps) {
    arbiter_.observe_home_rate(bytes, busy_ps);
  }
  // Context regions: the fast-memory address that also receives a KV write at `offset` of
  // `object` (its window page or page digest), or 0.
  uint64_t kv_shadow(ObjectId object, uint64_t offset) const;

  // ---- The mechanisms' interface (the controller core) ----

  Context& ctx() const { return ctx_; }
  const std::string& owner() const { return owner_; }
  DmaEngine& dma() const { return *dma_; }
  Rng& rng() { return rng_; }
  uint32_t step() const { return step_; }
  uint64_t tile_bytes() const { return tile_bytes_; }
  const PlacementPlan& plan() const { return plan_; }
  const Split* split(ObjectId object) const {
    auto it = split_.find(object.value());
    return it == split_.end() ? nullptr : &it->second;
  }
  // An object's intent (uses per step, confidence) in `step`: its phase's, or (intent_per_phase
  // off) the one declared at model load.
  std::pair<double, double> intent_at(const ObjectInfo& o, uint32_t step) const;
  // One decision on the controller, asked for at `trigger`: it waits in the controller's queue
  // for the first free of its decision servers (in the order asked), then takes `extra` (a
  // residency map lookup or the software path) plus the decision latency and its jitter; a
  // pipelined server may start the next one decision_interval_ps later. Returns when it is
  // taken (never before a decision asked earlier). `critical`: a consumer waits for it (a demand
  // miss), as opposed to a copy ahead of use; counted apart, with the queueing delay and the
  // controller's busy time.
  TimePs decide(TimePs trigger, DecisionMechanism mechanism, DecisionKind kind, bool critical,
                TimePs extra = 0);
  // The residency map (policy.orchestration.residency_map): every decision about an object
  // first looks it up (a hit costs the map's lookup, a miss the software path and installs the
  // entry); returns that time, the `extra` of decide(), or 0 without a map. A decision about
  // several objects (a compaction's moves) looks each up.
  TimePs map_lookup(ObjectId object);
  // How the consumers of `m`'s copies learn that one landed: its controller's notification.
  TimePs notification_ps(DecisionMechanism m) const {
    return p_.controllers[owner_of(m)].notification_latency_ps;
  }
  // The copy a decision about `object` issued is under way no more (ok: landed).
  void map_complete(ObjectId object, bool ok) {
    if (map_) map_->complete(object.value(), ok);
  }
  // A DMA copy of `bytes` in TLM-sized pieces from `start` on `dma`; when it landed.
  TimePs copy(DmaEngine& dma, uint64_t src, uint64_t dst, uint64_t bytes,
              const MovementIntent& intent, TimePs start);
  // Bytes the engine copied into cache frames after misses (page and object cache).
  uint64_t admission_bytes() const { return admission_bytes_.value(); }
  // A copy toward the consumer was issued: counts its bytes and its trigger-to-ready time.
  void count_prefetch(uint64_t bytes, TimePs trigger_ps, TimePs ready_ps);
  // Issues every mechanism's copies decided by `now` and wakes the core for the next one.
  void issue_due(TimePs now);
  // `bytes` (4 KiB-aligned, at least one page) in the fast memory for `what`, or ConfigError.
  uint64_t place(uint64_t bytes, const std::string& what);
  // The same in another memory, naming `field` (under policy.orchestration) in the error.
  uint64_t place_in(const std::string& memory, uint64_t bytes, const std::string& field,
                    const std::string& what);

 private:
  // Binds the wired objects and moves every other object where the plan puts it.
  void apply_plan();
  // Finds each controller's pcie_link among the links of the accelerator's DMA engine
  // `dma_name` (the compute engine's; ConfigError: not one of them).
  void attach_pcie_links(const std::string& dma_name);
  void run();
  // Where the bytes are, before a restore decision's wait (locate adds it).
  Source locate_bytes(ObjectId object, uint64_t offset, uint64_t max_bytes, TimePs now);
  // Counts the exposed stall of a tile wanted at `now` and started at `start`.
  void count_stall(const Source& s, TimePs now, TimePs start);

  OrchestrationParams p_;
  Context& ctx_;
  std::string owner_;
  sc_core::sc_event wake_;
  DmaEngine* dma_ = nullptr;
  Rng rng_;
  uint64_t tile_bytes_ = 0;
  PlacementPlan plan_;
  std::unordered_map<uint32_t, Split> split_;  // by object id (weights with a home part)
  std::unordered_set<uint32_t> wired_;         // bound objects (by id)
  uint64_t wired_bytes_ = 0;
  // Each controller's state (params().controllers, the orchestration's own first).
  struct ControllerState {
    std::vector<TimePs> server_free;  // when each decision server can start another
    TimePs last_decided = 0;          // its decisions retire in the order asked
    uint64_t decisions = 0;
    TimePs queue_delay_ps = 0;
    BusyLedger busy;  // its servers' decisions, exactly up to any moment
    // Its telemetry reads and doorbells over a modelled PCIe link (no models: not modelled).
    PcieControlLink pcie;
    uint64_t telemetry_reads = 0, doorbell_writes = 0;
    TimePs read_wait_ps = 0, doorbell_wait_ps = 0;  // added by the link, summed
  };
  std::vector<ControllerState> controllers_;
  // The controller owning `m` (params().owner).
  size_t owner_of(DecisionMechanism m) const;
  // Server-time controller i has spent deciding up to `now` (a decision in progress counts up
  // to `now`; one not started by then, none).
  TimePs busy_until(size_t i, TimePs now) const { return controllers_[i].busy.busy_until(now); }
  uint32_t step_ = 0;
  RestoreArbiter arbiter_;
  // The running op's restore decisions: when each restored object's reads may start.
  std::unordered_map<uint32_t, TimePs> restore_ready_;
  TimePs restore_op_ps_ = 0;

  // The mechanisms, in hook order; typed pointers for locate.
  std::unique_ptr<ResidencyMap> map_;  // residency_map: null without one
  Tier map_tier_ = Tier::kNone;        // the fast memory's (resolved at the first lookup)
  std::unique_ptr<ContextRegions> regions_;
  std::unique_ptr<ObjectCache> objects_;
  std::unique_ptr<LayerPrefetch> prefetch_;
  std::unique_ptr<PageCache> pages_;
  std::unique_ptr<ResidencyProgram> program_;
  std::vector<MovementMechanism*> mechanisms_;

  TimePs stall_counted_until_ = 0;  // the exposed stall is counted up to here
  Counter& decisions_;
  Counter& critical_decisions_;
  Counter& queue_delay_ps_;  // from asking to the controller starting on it, summed
  Counter& busy_ps_;         // the controller deciding (lookup, latency, jitter), summed
  Counter& control_stall_ps_;
  Counter& control_idle_ps_;
  // By mechanism and kind (nullptr: a pair no mechanism of this run can ask for).
  Counter* decisions_by_[size_t(DecisionMechanism::kCount)][size_t(DecisionKind::kCount)] = {};
  Counter& prefetch_bytes_;
  Counter& demand_bytes_;
  Counter& demand_misses_;  // tiles of home bytes read on demand
  Counter& resident_bytes_read_;
  Counter& staged_bytes_read_;
  Counter& wired_bytes_read_;
  Counter& data_stall_ps_;
  Counter& notify_stall_ps_;
  Counter& late_tiles_;
  Counter& staged_tiles_;
  Counter& admission_bytes_;
  Histogram& decision_to_ready_ns_;
};

}  // namespace tiersim
