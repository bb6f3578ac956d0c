#include "accelerators/orchestration/page_cache.h"

#include <algorithm>
#include <cmath>

#include "accelerators/orchestration/orchestrator.h"
#include "models/core/component.h"
#include "models/core/context.h"
#include "models/core/workload.h"

namespace tiersim {

PageCache::PageCache(Orchestrator& core)
    : core_(core),
      hits_(core.ctx().stats().counter(core.owner(), "cache_hits",
                                       "tiles read from the dynamic cache", "count")),
      misses_(core.ctx().stats().counter(core.owner(), "cache_misses",
                                         "tiles of cached objects read from home", "count")),
      oscillations_(core.ctx().stats().counter(core.owner(), "cache_oscillations",
                                               "pages readmitted within 64 visits of eviction",
                                               "count")) {}

void PageCache::prepare() {
  const OrchestrationParams& p = core_.params();
  for (const auto& o : core_.ctx().objects().all()) {
    for (const auto& ph : o.intent.phases)
      if (ph.first_step > 0) phase_starts_.insert(ph.first_step);
  }
  page_bytes_ = p.page_bytes ? p.page_bytes : core_.tile_bytes();
  const uint64_t frames = p.cache_bytes / page_bytes_;
  const uint64_t base = core_.place(frames * page_bytes_, "the cache frames");
  for (uint64_t f = frames; f-- > 0;)
    free_frames_.push_back(base + f * page_bytes_);
  PolicyParams pp;
  pp.frames = static_cast<uint32_t>(frames);
  pp.page_bytes = page_bytes_;
  const auto& g = p.confidence;
  if (g.has_admit_lb()) pp.admit_lb = g.admit_lb();
  if (g.has_evict_ub()) pp.evict_ub = g.evict_ub();
  if (g.has_z()) pp.z = g.z();
  if (g.has_epoch_pages()) pp.epoch_accesses = g.epoch_pages();
  pp.budget_migration_bytes = g.budget_bytes_per_epoch();
  pp.budget_faults = g.budget_faults_per_epoch();
  pp.blend_eta = g.blend_eta();
  const PolicyKind kinds[] = {PolicyKind::kStream,     PolicyKind::kLru,
                              PolicyKind::kLfu,        PolicyKind::kArc,
                              PolicyKind::kBelady,     PolicyKind::kRegret,
                              PolicyKind::kConfidence, PolicyKind::kPredictedRegret};
  // BELADY bypasses everything until it knows the future (the first step).
  policy_ = make_policy(
      p.replacement == config::REPLACEMENT_BELADY ? PolicyKind::kStream : kinds[p.replacement], pp);
}

void PageCache::on_step_start(uint32_t step) {
  // A phase begins: re-ingest the intents (as pages are next visited).
  if (core_.params().intent_per_phase && phase_starts_.count(step)) intent_given_.clear();
  if (core_.params().replacement != config::REPLACEMENT_BELADY || step != 1) return;
  // Decode steps read the same weight pages in the same order: the future is the first step's
  // sequence, repeated for the steps left.
  const uint32_t steps = core_.ctx().workload()->total_steps();
  std::vector<PageKey> future;
  for (uint32_t s = 1; s < std::max<uint32_t>(steps, 2); ++s)
    future.insert(future.end(), first_step_pages_.begin(), first_step_pages_.end());
  PolicyParams pp = policy_->params();
  policy_ = make_policy(PolicyKind::kBelady, pp);
  policy_->set_future(future);
  accesses_ = 0;
}

void PageCache::give_intent(ObjectId object, const ObjectInfo& o) {
  const auto& g = core_.params().confidence;
  const uint32_t step = core_.step();
  PageIntent in;
  const auto [uses, confidence] = core_.intent_at(o, step);
  in.mu = g.has_intent_override() ? g.intent_override() : std::clamp(confidence, 0.0, 1.0);
  // Use in a step as a Bernoulli trial: its standard deviation (0 for dense weights).
  in.sigma = std::sqrt(in.mu * (1.0 - in.mu));
  in.group = static_cast<uint32_t>(o.cls);
  const Component* home = core_.ctx().component(o.home);
  const Tier tier = home ? home->tier() : Tier::kHbm;
  const double ladder[] = {1.0, 0.1, 1.0, 10.0, 30.0, 10000.0};  // none, SRAM, HBM, DDR, ...
  in.stall_penalty = ladder[static_cast<int>(tier)];
  in.remaining_accesses =
      std::max(1.0, uses) * double(core_.ctx().workload()->total_steps() - step);
  const uint64_t pages = (o.size_bytes + page_bytes_ - 1) / page_bytes_;
  for (uint64_t pg = 0; pg < pages; ++pg)
    policy_->set_intent((PageKey(object.value()) << 32) | pg, in);
}

bool PageCache::locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes,
                       TimePs now, ReadSource& src) {
  const uint64_t page = offset / page_bytes_;
  const uint64_t in_page = offset - page * page_bytes_;
  src.bytes = std::min(max_bytes, page_bytes_ - in_page);
  src.ready_ps = src.landed_ps = now;
  const PageKey key = (PageKey(object.value()) << 32) | page;
  if (in_page != 0 && key == visit_key_) {
    // A later tile of the page being visited (pages larger than tiles) follows the visit: from
    // the frame when the page is resident (its copy is not modelled separately), else from
    // home; not before the visit's decision.
    if (decided_ps_ > now) src.wait_for_decision(decided_ps_);
    auto f = frame_of_.find(key);
    if (f != frame_of_.end() && policy_->resident(key)) {
      src.address = f->second + in_page;
      src.path = ReadPath::kResident;
      return true;
    }
    src.address = o.address + offset;
    src.path = ReadPath::kDemand;
    return true;
  }
  // One access per page visit: the first tile read of the page (its first bytes, or where the
  // read starts inside it: a resident part ending mid-page, an operand not aligned to pages).
  visit_key_ = key;
  decided_ps_ = 0;  // a hit takes no decision
  const PolicyKind kind = policy_->kind();
  if ((kind == PolicyKind::kConfidence || kind == PolicyKind::kPredictedRegret) &&
      intent_given_.insert(object.value()).second) {
    give_intent(object, o);
  }
  if (core_.step() == 0) first_step_pages_.push_back(key);
  page_stream_.push_back(key);
  const AccessOutcome r = policy_->access(key, accesses_++);
  if (r.victim) {
    free_frames_.push_back(frame_of_.at(*r.victim));
    frame_of_.erase(*r.victim);
    evicted_at_[*r.victim] = page_stream_.size();
  }
  if (r.admitted) {
    frame_of_[key] = free_frames_.back();
    free_frames_.pop_back();
    auto e = evicted_at_.find(key);
    if (e != evicted_at_.end() && page_stream_.size() - e->second <= 64) oscillations_.inc();
  }
  (r.hit ? hits_ : misses_).inc();
  if (r.hit) {
    src.address = frame_of_.at(key) + in_page;
    src.path = ReadPath::kResident;
    return true;
  }
  // A miss is a decision the read waits for (admit, evicting what makes room, or bypass): it
  // queues on the controller and takes its latency before the home read starts.
  decided_ps_ = core_.decide(now, DecisionMechanism::kPageCache, DecisionKind::kAdmission, true,
                             core_.map_lookup(object));
  src.wait_for_decision(decided_ps_);
  src.address = o.address + offset;
  src.path = ReadPath::kDemand;
  if (r.admitted) src.admit_address = frame_of_.at(key) + in_page;
  return true;
}

void PageCache::summarize(std::vector<SummaryItem>& out, double per) const {
  const double visits = double(hits_.value() + misses_.value());
  out.push_back({"cache_hit_rate", visits ? double(hits_.value()) / visits : 0.0, "fraction"});
  out.push_back(
      {"admission_bytes_per_token", double(core_.admission_bytes()) * per, "bytes/token"});
  out.push_back({"cache_oscillations", double(oscillations_.value()), "count"});
  if (policy_->kind() == PolicyKind::kConfidence) {
    out.push_back({"budget_fallback_epochs", double(policy_->fallback_epochs()), "count"});
    out.push_back(
        {"max_epoch_migration_bytes", double(policy_->max_epoch_migration_bytes()), "bytes"});
  }
  // The offline bound on this very page stream: the oracle (MIN with bypass) with the same
  // frames; the policy's extra fetches from home beyond it, per token.
  auto oracle = make_policy(PolicyKind::kBelady, policy_->params());
  const PolicyStats bound = run_policy(*oracle, page_stream_);
  out.push_back({"extra_bytes_vs_oracle_per_token",
                 (double(misses_.value()) - double(bound.misses)) * double(page_bytes_) * per,
                 "bytes/token"});
}

}  // namespace tiersim
