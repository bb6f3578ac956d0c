#include "accelerators/policies/residency_policy.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <tuple>

namespace tiersim {

const char* policy_kind_name(PolicyKind k) {
  switch (k) {
    case PolicyKind::kStream:
      return "STREAM";
    case PolicyKind::kLru:
      return "LRU";
    case PolicyKind::kLfu:
      return "LFU";
    case PolicyKind::kArc:
      return "ARC";
    case PolicyKind::kBelady:
      return "BELADY";
    case PolicyKind::kRegret:
      return "REGRET";
    case PolicyKind::kConfidence:
      return "CONFIDENCE";
    case PolicyKind::kPredictedRegret:
      return "PREDICTED_REGRET";
    case PolicyKind::kStatic:
      return "STATIC";
  }
  return "?";
}

namespace {

class StreamPolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kStream; }
  AccessOutcome access(PageKey, uint64_t) override { return {}; }
  bool resident(PageKey) const override { return false; }
  size_t resident_count() const override { return 0; }
};

// An LRU list with O(1) touch, insert and removal.
class LruList {
 public:
  bool contains(PageKey k) const { return pos_.count(k) != 0; }
  void touch(PageKey k) { order_.splice(order_.begin(), order_, pos_.at(k)); }
  void push_front(PageKey k) {
    order_.push_front(k);
    pos_[k] = order_.begin();
  }
  PageKey pop_back() {
    const PageKey k = order_.back();
    order_.pop_back();
    pos_.erase(k);
    return k;
  }
  void erase(PageKey k) {
    auto it = pos_.find(k);
    order_.erase(it->second);
    pos_.erase(it);
  }
  size_t size() const { return order_.size(); }
  bool empty() const { return order_.empty(); }
  // Least recently used first.
  std::vector<PageKey> oldest_first() const { return {order_.rbegin(), order_.rend()}; }

 private:
  std::list<PageKey> order_;
  std::unordered_map<PageKey, std::list<PageKey>::iterator> pos_;
};

class LruPolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kLru; }
  AccessOutcome access(PageKey page, uint64_t) override {
    AccessOutcome o;
    if (lru_.contains(page)) {
      lru_.touch(page);
      o.hit = true;
      return o;
    }
    if (p_.frames == 0) return o;
    if (lru_.size() == p_.frames) o.victim = lru_.pop_back();
    lru_.push_front(page);
    o.admitted = true;
    return o;
  }
  bool resident(PageKey page) const override { return lru_.contains(page); }
  size_t resident_count() const override { return lru_.size(); }

 private:
  LruList lru_;
};

class LfuPolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kLfu; }
  AccessOutcome access(PageKey page, uint64_t index) override {
    AccessOutcome o;
    auto it = meta_.find(page);
    if (it != meta_.end()) {
      order_.erase({it->second.first, it->second.second, page});
      ++it->second.first;
      it->second.second = index;
      order_.insert({it->second.first, it->second.second, page});
      o.hit = true;
      return o;
    }
    if (p_.frames == 0) return o;
    if (meta_.size() == p_.frames) {
      const auto victim = *order_.begin();
      order_.erase(order_.begin());
      o.victim = std::get<2>(victim);
      meta_.erase(*o.victim);
    }
    meta_[page] = {1, index};
    order_.insert({1, index, page});
    o.admitted = true;
    return o;
  }
  bool resident(PageKey page) const override { return meta_.count(page) != 0; }
  size_t resident_count() const override { return meta_.size(); }

 private:
  std::unordered_map<PageKey, std::pair<uint64_t, uint64_t>> meta_;  // freq, last access
  std::set<std::tuple<uint64_t, uint64_t, PageKey>> order_;          // victim first
};

class ArcPolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kArc; }
  AccessOutcome access(PageKey x, uint64_t) override {
    AccessOutcome o;
    const double c = p_.frames;
    if (p_.frames == 0) return o;
    if (t1_.contains(x) || t2_.contains(x)) {
      (t1_.contains(x) ? t1_ : t2_).erase(x);
      t2_.push_front(x);
      o.hit = true;
      return o;
    }
    if (b1_.contains(x)) {
      p_target_ = std::min(c, p_target_ + std::max(double(b2_.size()) / double(b1_.size()), 1.0));
      o.victim = replace(x);
      b1_.erase(x);
      t2_.push_front(x);
    } else if (b2_.contains(x)) {
      p_target_ = std::max(0.0, p_target_ - std::max(double(b1_.size()) / double(b2_.size()), 1.0));
      o.victim = replace(x);
      b2_.erase(x);
      t2_.push_front(x);
    } else {
      const size_t l1 = t1_.size() + b1_.size();
      const size_t total = l1 + t2_.size() + b2_.size();
      if (l1 == p_.frames) {
        if (t1_.size() < p_.frames) {
          b1_.pop_back();
          o.victim = replace(x);
        } else {
          o.victim = t1_.pop_back();
        }
      } else if (total >= p_.frames) {
        if (total == 2 * size_t(p_.frames)) b2_.pop_back();
        o.victim = replace(x);
      }
      t1_.push_front(x);
    }
    o.admitted = true;
    return o;
  }
  bool resident(PageKey page) const override { return t1_.contains(page) || t2_.contains(page); }
  size_t resident_count() const override { return t1_.size() + t2_.size(); }

 private:
  // Evicts from T1 or T2 into its ghost list when the cache is full.
  std::optional<PageKey> replace(PageKey x) {
    if (t1_.size() + t2_.size() < p_.frames) return std::nullopt;
    const double t1 = double(t1_.size());
    if (!t1_.empty() && ((b2_.contains(x) && t1 == p_target_) || t1 > p_target_)) {
      const PageKey v = t1_.pop_back();
      b1_.push_front(v);
      return v;
    }
    if (t2_.empty()) {
      const PageKey v = t1_.pop_back();
      b1_.push_front(v);
      return v;
    }
    const PageKey v = t2_.pop_back();
    b2_.push_front(v);
    return v;
  }
  LruList t1_, t2_, b1_, b2_;
  double p_target_ = 0;
};

class BeladyPolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kBelady; }
  void set_future(const std::vector<PageKey>& stream) override {
    next_.assign(stream.size(), kNever);
    std::unordered_map<PageKey, uint64_t> seen;
    for (uint64_t i = stream.size(); i-- > 0;) {
      auto it = seen.find(stream[i]);
      if (it != seen.end()) next_[i] = it->second;
      seen[stream[i]] = i;
    }
  }
  AccessOutcome access(PageKey page, uint64_t index) override {
    if (index >= next_.size()) throw std::logic_error("BELADY: access beyond the known stream");
    const uint64_t next = next_[index];
    AccessOutcome o;
    auto it = next_use_.find(page);
    if (it != next_use_.end()) {
      by_next_.erase({it->second, page});
      it->second = next;
      by_next_.insert({next, page});
      o.hit = true;
      return o;
    }
    if (p_.frames == 0) return o;
    if (next_use_.size() == p_.frames) {
      const auto furthest = *by_next_.rbegin();
      if (next >= furthest.first) return o;  // used later than every resident: bypass
      by_next_.erase(std::prev(by_next_.end()));
      next_use_.erase(furthest.second);
      o.victim = furthest.second;
    }
    next_use_[page] = next;
    by_next_.insert({next, page});
    o.admitted = true;
    return o;
  }
  bool resident(PageKey page) const override { return next_use_.count(page) != 0; }
  size_t resident_count() const override { return next_use_.size(); }

 private:
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  std::vector<uint64_t> next_;  // next position of the same page, per position
  std::unordered_map<PageKey, uint64_t> next_use_;
  std::set<std::pair<uint64_t, PageKey>> by_next_;
};

class RegretPolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kRegret; }
  AccessOutcome access(PageKey page, uint64_t index) override {
    const uint64_t step = index + 1;
    Meta& m = meta_[page];
    ++m.freq;
    m.regret *= 0.98;
    if (m.evicted_at != 0 && step - m.evicted_at <= p_.regret_horizon) {
      m.regret += double(p_.regret_horizon - (step - m.evicted_at) + 1) / p_.regret_horizon;
    }
    m.last = step;
    AccessOutcome o;
    if (resident_.count(page)) {
      o.hit = true;
      return o;
    }
    if (p_.frames == 0) return o;
    if (resident_.size() == p_.frames) {
      PageKey victim = 0;
      double best = std::numeric_limits<double>::max();
      for (PageKey r : resident_) {
        const Meta& v = meta_[r];
        const double score =
            1.5 * double(v.freq) + double(v.last) / double(step) + p_.regret_weight * v.regret;
        if (score < best || (score == best && r < victim)) {
          best = score;
          victim = r;
        }
      }
      resident_.erase(victim);
      meta_[victim].evicted_at = step;
      o.victim = victim;
    }
    resident_.insert(page);
    o.admitted = true;
    return o;
  }
  bool resident(PageKey page) const override { return resident_.count(page) != 0; }
  size_t resident_count() const override { return resident_.size(); }

 private:
  struct Meta {
    uint64_t freq = 0, last = 0, evicted_at = 0;
    double regret = 0;
  };
  std::unordered_map<PageKey, Meta> meta_;
  std::set<PageKey> resident_;  // ordered: deterministic victim scan
};

class ConfidencePolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kConfidence; }
  void set_intent(PageKey page, const PageIntent& intent) override { intent_[page] = intent; }
  AccessOutcome access(PageKey page, uint64_t index) override {
    const uint64_t epoch = p_.epoch_accesses ? index / p_.epoch_accesses : 0;
    if (epoch != epoch_) {
      epoch_ = epoch;
      epoch_bytes_ = 0;
      epoch_faults_ = 0;
      fallback_ = false;
    }
    const PageIntent in = intent_.count(page) ? intent_[page] : PageIntent{};
    const double mu = effective_mu(in);
    const double lb = std::clamp(mu - p_.z * in.sigma, 0.0, 1.0);
    const double ub = std::clamp(mu + p_.z * in.sigma, 0.0, 1.0);
    AccessOutcome o;
    auto it = resident_.find(page);
    if (it != resident_.end()) {
      o.hit = true;
      lru_.touch(page);
      if (!used_.count(page)) {
        used_.insert(page);
        observe(in, 1.0);
      }
      // Hysteresis: a resident whose forecast fell to evict_ub leaves (a discretionary move).
      if (ub <= p_.evict_ub && charge()) {
        resident_.erase(it);
        lru_.erase(page);
        used_.erase(page);
        o.victim = page;
      }
      return o;
    }
    ++epoch_faults_;
    if (p_.budget_faults && epoch_faults_ > p_.budget_faults) enter_fallback();
    if (p_.blend_eta > 0) {
      // A refault: reuse the policy did not keep.
      auto last = last_access_.find(page);
      if (last != last_access_.end() && index - last->second <= p_.reuse_horizon) {
        observe(in, 1.0);
      }
      last_access_[page] = index;
    }
    if (p_.frames == 0 || fallback_ || lb < p_.admit_lb || !charge()) return o;
    if (resident_.size() == p_.frames) {
      // The resident with the lowest upper bound leaves (ties: least recently used).
      PageKey victim = 0;
      double worst = 2.0;
      for (PageKey r : lru_.oldest_first()) {
        const PageIntent& ri = intent_.count(r) ? intent_[r] : kDefault;
        const double rub = std::clamp(effective_mu(ri) + p_.z * ri.sigma, 0.0, 1.0);
        if (rub < worst) {
          worst = rub;
          victim = r;
        }
      }
      resident_.erase(victim);
      lru_.erase(victim);
      o.victim = victim;
      if (!used_.erase(victim)) observe(intent_.count(victim) ? intent_[victim] : kDefault, 0.0);
    }
    resident_.insert(page);
    lru_.push_front(page);
    o.admitted = true;
    return o;
  }
  bool resident(PageKey page) const override { return resident_.count(page) != 0; }
  size_t resident_count() const override { return resident_.size(); }
  uint64_t max_epoch_migration_bytes() const override { return max_epoch_bytes_; }
  uint64_t fallback_epochs() const override { return fallback_epochs_; }

 private:
  // Charges one discretionary move of a page to the epoch's budget; false (and fallback) when
  // it would pass the budget.
  bool charge() {
    if (fallback_) return false;
    if (p_.budget_migration_bytes && epoch_bytes_ + p_.page_bytes > p_.budget_migration_bytes) {
      enter_fallback();
      return false;
    }
    epoch_bytes_ += p_.page_bytes;
    max_epoch_bytes_ = std::max(max_epoch_bytes_, epoch_bytes_);
    return true;
  }
  void enter_fallback() {
    if (!fallback_) ++fallback_epochs_;
    fallback_ = true;
  }
  struct Belief {
    double observed = 0.5, confidence = 1.0;
  };
  double effective_mu(const PageIntent& in) {
    if (p_.blend_eta <= 0) return in.mu;
    const Belief& b = belief_[in.group];
    return b.confidence * in.mu + (1 - b.confidence) * b.observed;
  }
  // A reuse outcome of a page of `in`'s group: 1 used while resident, 0 evicted unused.
  void observe(const PageIntent& in, double outcome) {
    if (p_.blend_eta <= 0) return;
    Belief& b = belief_[in.group];
    b.observed = 0.8 * b.observed + 0.2 * outcome;
    b.confidence = std::max(0.0, b.confidence * (1 - p_.blend_eta * std::abs(in.mu - outcome)));
  }
  static constexpr PageIntent kDefault{};
  std::unordered_map<PageKey, PageIntent> intent_;
  std::unordered_map<uint32_t, Belief> belief_;
  std::unordered_set<PageKey> used_;                   // residents hit since their admission
  std::unordered_map<PageKey, uint64_t> last_access_;  // of pages that missed (blending)
  std::unordered_set<PageKey> resident_;
  LruList lru_;
  uint64_t epoch_ = 0, epoch_bytes_ = 0, epoch_faults_ = 0, max_epoch_bytes_ = 0;
  uint64_t fallback_epochs_ = 0;
  bool fallback_ = false;
};

class PredictedRegretPolicy : public ResidencyPolicy {
 public:
  using ResidencyPolicy::ResidencyPolicy;
  PolicyKind kind() const override { return PolicyKind::kPredictedRegret; }
  void set_intent(PageKey page, const PageIntent& intent) override {
    intent_[page] = intent;
    remaining_[page] = intent.remaining_accesses;
  }
  AccessOutcome access(PageKey page, uint64_t) override {
    // An observed access uses up one of the page's expected accesses.
    auto rem = remaining_.find(page);
    if (rem != remaining_.end()) rem->second = std::max(0.0, rem->second - 1.0);
    AccessOutcome o;
    if (lru_.contains(page)) {
      o.hit = true;
      lru_.touch(page);
      return o;
    }
    if (p_.frames == 0) return o;
    if (lru_.size() == p_.frames) {
      PageKey victim = 0;
      double lowest = -1;
      for (PageKey r : lru_.oldest_first()) {  // strict <: the least recent wins ties
        const double value = regret(r);
        if (lowest < 0 || value < lowest) {
          lowest = value;
          victim = r;
        }
      }
      // Deny: evicting any resident would cost at least as much as not keeping this page.
      if (regret(page) <= lowest) return o;
      lru_.erase(victim);
      o.victim = victim;
    }
    lru_.push_front(page);
    o.admitted = true;
    return o;
  }
  bool resident(PageKey page) const override { return lru_.contains(page); }
  size_t resident_count() const override { return lru_.size(); }

 private:
  // R = P(reuse) x stall penalty x remaining lifetime.
  double regret(PageKey page) const {
    auto in = intent_.find(page);
    const PageIntent i = in != intent_.end() ? in->second : PageIntent{};
    auto rem = remaining_.find(page);
    const double remaining = rem != remaining_.end() ? rem->second : i.remaining_accesses;
    return i.mu * i.stall_penalty * remaining;
  }
  std::unordered_map<PageKey, PageIntent> intent_;
  std::unordered_map<PageKey, double> remaining_;
  LruList lru_;
};

class StaticPolicy : public ResidencyPolicy {
 public:
  explicit StaticPolicy(const PolicyParams& p) : ResidencyPolicy(p) {
    for (PageKey k : p.static_pages) {
      if (chosen_.size() == p.frames) break;
      chosen_.insert(k);
    }
  }
  PolicyKind kind() const override { return PolicyKind::kStatic; }
  // A chosen page is loaded by its first access (a miss, like any placement load) and stays;
  // nothing else is admitted.
  AccessOutcome access(PageKey page, uint64_t) override {
    AccessOutcome o;
    if (loaded_.count(page)) {
      o.hit = true;
    } else if (chosen_.count(page)) {
      loaded_.insert(page);
      o.admitted = true;
    }
    return o;
  }
  bool resident(PageKey page) const override { return loaded_.count(page) != 0; }
  size_t resident_count() const override { return loaded_.size(); }

 private:
  std::unordered_set<PageKey> chosen_, loaded_;
};

}  // namespace

std::unique_ptr<ResidencyPolicy> make_policy(PolicyKind kind, const PolicyParams& p) {
  switch (kind) {
    case PolicyKind::kStream:
      return std::make_unique<StreamPolicy>(p);
    case PolicyKind::kLru:
      return std::make_unique<LruPolicy>(p);
    case PolicyKind::kLfu:
      return std::make_unique<LfuPolicy>(p);
    case PolicyKind::kArc:
      return std::make_unique<ArcPolicy>(p);
    case PolicyKind::kBelady:
      return std::make_unique<BeladyPolicy>(p);
    case PolicyKind::kRegret:
      return std::make_unique<RegretPolicy>(p);
    case PolicyKind::kPredictedRegret:
      return std::make_unique<PredictedRegretPolicy>(p);
    case PolicyKind::kConfidence:
      return std::make_unique<ConfidencePolicy>(p);
    case PolicyKind::kStatic:
      return std::make_unique<StaticPolicy>(p);
  }
  throw std::logic_error("unknown policy kind");
}

PolicyStats run_policy(ResidencyPolicy& policy, const std::vector<PageKey>& stream,
                       uint64_t oscillation_window) {
  PolicyStats s;
  policy.set_future(stream);
  std::unordered_map<PageKey, uint64_t> evicted_at;
  for (uint64_t i = 0; i < stream.size(); ++i) {
    const AccessOutcome o = policy.access(stream[i], i);
    ++s.accesses;
    if (o.hit) {
      ++s.hits;
    } else {
      ++s.misses;
      s.bytes_moved += policy.params().page_bytes;
    }
    if (o.admitted) {
      ++s.admissions;
      s.bytes_admitted += policy.params().page_bytes;
      auto it = evicted_at.find(stream[i]);
      if (it != evicted_at.end() && i - it->second <= oscillation_window) ++s.oscillations;
    }
    if (o.victim) {
      ++s.evictions;
      evicted_at[*o.victim] = i;
    }
  }
  return s;
}

}  // namespace tiersim
