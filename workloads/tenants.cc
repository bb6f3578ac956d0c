#include "workloads/tenants.h"

#include <algorithm>
#include <stdexcept>

#include "models/core/registry.h"

namespace tiersim {

namespace {

// A tenant's result datasets under /tenants/<name>/.
class PrefixedSink : public ResultSink {
 public:
  PrefixedSink(ResultSink& inner, std::string prefix) : inner_(inner), prefix_(std::move(prefix)) {}
  void write_string(const std::string& p, const std::string& v) override {
    inner_.write_string(at(p), v);
  }
  void write_strings(const std::string& p, const std::vector<std::string>& v) override {
    inner_.write_strings(at(p), v);
  }
  void write_scalar(const std::string& p, double v, const std::string& unit) override {
    inner_.write_scalar(at(p), v, unit);
  }
  void write_scalar_u64(const std::string& p, uint64_t v, const std::string& unit) override {
    inner_.write_scalar_u64(at(p), v, unit);
  }
  void write_matrix(const std::string& p, size_t rows, size_t cols,
                    const std::vector<double>& data) override {
    inner_.write_matrix(at(p), rows, cols, data);
  }
  void write_u64s(const std::string& p, const std::vector<uint64_t>& v) override {
    inner_.write_u64s(at(p), v);
  }
  void write_table(const std::string& p, const Table& t) override { inner_.write_table(at(p), t); }
  void set_attribute(const std::string& p, const std::string& n, const std::string& v) override {
    inner_.set_attribute(at(p), n, v);
  }
  void set_attribute_strings(const std::string& p, const std::string& n,
                             const std::vector<std::string>& v) override {
    inner_.set_attribute_strings(at(p), n, v);
  }

 private:
  std::string at(const std::string& p) const { return prefix_ + p; }
  ResultSink& inner_;
  std::string prefix_;
};

}  // namespace

std::unique_ptr<config::Config> tenant_config(const config::Config& root,
                                              const config::Workload& workload, size_t index) {
  auto c = std::make_unique<config::Config>(root);
  c->clear_tenancy();
  *c->mutable_workload() = workload;
  // Its own random streams (requests, routing), still from the run's seed.
  c->mutable_run()->set_seed(root.run().seed() ^ (0x9e3779b97f4a7c15ULL * index));
  return c;
}

TenantScheduler::TenantScheduler(const config::Config& root, std::unique_ptr<Workload> primary)
    : end_(root.tenancy().end()) {
  const auto& t = root.tenancy();
  Entry p;
  p.workload = std::move(primary);
  entries_.push_back(std::move(p));
  TenantView pv;
  pv.name = t.has_primary_name() ? t.primary_name() : "primary";
  pv.priority = t.primary_priority();
  pv.share = t.has_primary_share() ? t.primary_share() : 1.0;
  views_.push_back(pv);
  for (const auto& tenant : t.tenants()) {
    Entry e;
    e.root = tenant_config(root, tenant.workload(), entries_.size());
    const WorkloadKind* kind = find_workload_kind(workload_kind_name(tenant.workload()));
    if (kind == nullptr) throw std::logic_error("tenant " + tenant.name() + ": no workload kind");
    e.workload = kind->create(*e.root);
    e.arrival_ps = tenant.arrival_ps();
    e.workload->set_start(e.arrival_ps);
    entries_.push_back(std::move(e));
    TenantView v;
    v.name = tenant.name();
    v.priority = tenant.priority();
    v.share = tenant.has_share() ? tenant.share() : 1.0;
    views_.push_back(v);
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    views_[i].prefill_steps = entries_[i].workload->prefill_steps();
    views_[i].total_steps = entries_[i].workload->total_steps();
  }
}

void TenantScheduler::register_objects(ObjectTable& objects) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    objects.set_registering_tenant(TenantId(static_cast<uint16_t>(i)),
                                   i == 0 ? std::string() : views_[i].name + "/");
    entries_[i].workload->register_objects(objects);
  }
  objects.set_registering_tenant(TenantId(0), "");
}

void TenantScheduler::begin_step(TimePs now_ps) {
  now_ps_ = now_ps;
  need_pick_ = true;
}

bool TenantScheduler::run_complete() const {
  if (end_ != config::TENANCY_END_ALL) return entries_[0].done;
  for (const auto& e : entries_)
    if (!e.done) return false;
  return true;
}

bool TenantScheduler::pick(TimePs now) {
  // Candidates in the order they are served: priority, then engine time per share, then index.
  std::vector<size_t>& order = order_;
  order.clear();
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    const bool has_work = !e.done && now >= e.arrival_ps && now >= e.idle_until_ps;
    if (has_work) {
      order.push_back(i);
      // Work again after time away: from its class's clock, not from where it left off.
      const auto clock = class_clock_.find(views_[i].priority);
      if (!e.had_work && clock != class_clock_.end()) {
        e.virtual_ps = std::max(e.virtual_ps, clock->second);
      }
    }
    e.had_work = has_work;  // until it answers with an idle wait or is done
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (views_[a].priority != views_[b].priority) return views_[a].priority > views_[b].priority;
    return entries_[a].virtual_ps < entries_[b].virtual_ps;
  });
  for (size_t i : order) {
    Entry& e = entries_[i];
    if (!e.begun) {
      e.workload->begin_step(now);
      e.begun = true;
    }
    if (!e.workload->next(pending_)) {
      e.done = true;
      views_[i].completed = true;
      if (run_complete()) return false;
      continue;
    }
    if (pending_.op_class == OpClass::kWait && !pending_.last_of_step) {
      e.had_work = false;
      // Waiting for requests (or held): ask again once the wait is over; another tenant runs.
      e.idle_until_ps = now + std::max<TimePs>(pending_.delay_ps, 1);
      e.begun = false;
      continue;
    }
    current_ = i;
    has_pending_ = true;
    class_clock_[views_[i].priority] = e.virtual_ps;
    step_start_ps_ = now;
    step_ready_ps_ = std::max({e.last_end_ps, e.arrival_ps, e.idle_until_ps});
    return true;
  }
  return false;
}

bool TenantScheduler::next(Op& op) {
  if (need_pick_) {
    need_pick_ = false;
    if (run_complete()) return false;
    if (!pick(now_ps_)) {
      if (run_complete()) return false;
      // Nobody has work: idle until the earliest arrival or end of a wait.
      TimePs until = UINT64_MAX;
      for (const auto& e : entries_) {
        if (!e.done) until = std::min(until, std::max(e.arrival_ps, e.idle_until_ps));
      }
      op = Op();
      op.kind = OpKind::kIdle;
      op.op_class = OpClass::kWait;
      op.delay_ps = until > now_ps_ ? until - now_ps_ : 1;
      op.step = StepIndex(run_step_);
      return true;  // the engine begins a step again after a wait
    }
  }
  if (has_pending_) {
    op = pending_;
    has_pending_ = false;
  } else if (!entries_[current_].workload->next(op)) {
    // Workloads complete at a step's start; one that stops inside a step is a defect.
    throw std::logic_error("tenant " + views_[current_].name + " ended inside a step");
  }
  op.step = StepIndex(run_step_);
  op.tenant = TenantId(static_cast<uint16_t>(current_));
  op.tenant_step = static_cast<uint32_t>(views_[current_].steps.size());
  return true;
}

void TenantScheduler::end_step(TimePs now_ps) {
  Entry& e = entries_[current_];
  e.workload->end_step(now_ps);
  TenantView& v = views_[current_];
  TokenRecord rec{static_cast<uint32_t>(v.steps.size()),
                  step_ready_ps_,
                  now_ps,
                  e.workload->tokens_per_step(),
                  e.workload->sequences_per_step(),
                  TenantId(static_cast<uint16_t>(current_))};
  v.steps.push_back(rec);
  v.engine_ps += now_ps - step_start_ps_;
  e.virtual_ps += double(now_ps - step_start_ps_) / v.share;
  e.last_end_ps = now_ps;
  e.begun = false;
  // Known to be complete: the run may end now (the primary's last step).
  const uint32_t total = e.workload->total_steps();
  if (total > 0 ? v.steps.size() >= total : e.workload->complete()) {
    e.done = true;
    v.completed = true;
  }
  ++run_step_;
}

uint32_t TenantScheduler::tokens_per_step() const {
  return entries_[current_].workload->tokens_per_step();
}

uint32_t TenantScheduler::sequences_per_step() const {
  return entries_[current_].workload->sequences_per_step();
}

uint64_t TenantScheduler::max_activation_bytes() const {
  uint64_t m = 0;
  for (const auto& e : entries_)
    m = std::max(m, e.workload->max_activation_bytes());
  return m;
}

void TenantScheduler::summarize(std::vector<SummaryItem>& summary) const {
  entries_[0].workload->summarize(summary);
  for (size_t i = 1; i < entries_.size(); ++i) {
    std::vector<SummaryItem> items;
    entries_[i].workload->summarize(items);
    for (auto& item : items) {
      item.name = "tenant_" + views_[i].name + "_" + item.name;
      summary.push_back(std::move(item));
    }
  }
}

void TenantScheduler::write_results(ResultSink& writer) const {
  entries_[0].workload->write_results(writer);
  for (size_t i = 1; i < entries_.size(); ++i) {
    PrefixedSink sink(writer, "/tenants/" + views_[i].name);
    entries_[i].workload->write_results(sink);
  }
}

}  // namespace tiersim
