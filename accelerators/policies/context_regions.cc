#include "accelerators/policies/context_regions.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

namespace tiersim {

RegionPool::RegionPool(const RegionPolicyParams& p) : p_(p), log_keep_(std::log(1.0 - p.alpha)) {
  free_.reserve(p_.frames);
  for (uint32_t f = p_.frames; f-- > 0;)
    free_.push_back(f);
  for (uint32_t f = p_.compressed_frames; f-- > 0;)
    cfree_.push_back(f);
}

void RegionPool::out_of_tier(Region& r) {
  if (p_.backup) {
    r.state = State::kHome;
    r.demoted = true;
    ++c_.demotions;
  } else {
    r.state = State::kLost;
    ++c_.lost;
  }
}

void RegionPool::demote(RegionKey key, Region& r) {
  if (p_.compressed_frames == 0) {
    out_of_tier(r);
    return;
  }
  uint32_t cf;
  if (!cfree_.empty()) {
    cf = cfree_.back();
    cfree_.pop_back();
  } else {
    // The least recently attended compressed region leaves the tier.
    auto it = corder_.begin();
    Region& old = regions_.at(it->second);
    corder_.erase(it);
    cf = old.cframe;
    out_of_tier(old);
  }
  compressed_now_.push_back({key, r.frame});
  r.state = State::kCompressed;
  r.cframe = cf;
  corder_.insert({r.touch, key});
  ++c_.compressions;
}

RegionPool::Region& RegionPool::get(RegionKey key, State initial) {
  auto [it, fresh] = regions_.try_emplace(key);
  if (fresh) it->second.state = initial;
  return it->second;
}

const RegionPool::Region* RegionPool::find(RegionKey key) const {
  auto it = regions_.find(key);
  return it == regions_.end() ? nullptr : &it->second;
}

double RegionPool::rank_of(const Region& r) const {
  if (!p_.score) return double(r.touch);
  // ema decays by (1 - alpha) per step: ema(t) = ema * keep^(t - ema_step), so
  // ln ema(t) = [ln ema - ema_step ln keep] + t ln keep, and the bracket orders regions at any t.
  if (r.ema <= 0) return -std::numeric_limits<double>::infinity();
  return std::log(r.ema) - double(r.ema_step) * log_keep_;
}

void RegionPool::leave_order(RegionKey key, Region& r) {
  if (!r.in_order) return;
  order_.erase({r.rank, key});
  r.in_order = false;
}

void RegionPool::enter(RegionKey key, Region& r, uint32_t step) {
  leave_order(key, r);
  r.rank = rank_of(r);
  if (locked(r, step)) {
    locked_.emplace_back(r.lock_until, key);
    std::push_heap(locked_.begin(), locked_.end(), std::greater<>());
    return;
  }
  order_.insert({r.rank, key});
  r.in_order = true;
}

void RegionPool::release(uint32_t step) {
  while (!locked_.empty() && locked_.front().first <= step) {
    std::pop_heap(locked_.begin(), locked_.end(), std::greater<>());
    const RegionKey key = locked_.back().second;
    locked_.pop_back();
    auto it = regions_.find(key);
    if (it == regions_.end()) continue;
    Region& r = it->second;
    // Stale: left the pool, already back in the order, or locked again for longer.
    if (r.state != State::kPool || r.in_order || locked(r, step)) continue;
    r.rank = rank_of(r);
    order_.insert({r.rank, key});
    r.in_order = true;
  }
}

void RegionPool::attend(RegionKey key, uint32_t step) {
  Region& r = get(key);
  if (r.last_step == step) return;
  // Steps between the last update and this one were not attended: decay, then add this one.
  r.ema *= std::pow(1.0 - p_.alpha, double(step - r.ema_step));
  r.ema += p_.alpha;
  r.ema_step = step;
  r.last_step = step;
  if (r.state == State::kCompressed) corder_.erase({r.touch, key});
  r.touch = ++touches_;
  if (r.state == State::kCompressed) corder_.insert({r.touch, key});
  r.speculative = false;
  if (veto_active()) {
    r.lock_until = std::max(r.lock_until, step + 1 + p_.veto_steps);
  }
  if (r.state == State::kPool) enter(key, r, step);
}

std::optional<uint32_t> RegionPool::admit(RegionKey key, uint32_t step, bool compete) {
  Region& r = get(key);
  if (r.state == State::kPool) return r.frame;
  release(step);
  if (r.state == State::kCompressed) {  // back to full precision: leaves the compressed tier
    corder_.erase({r.touch, key});
    cfree_.push_back(r.cframe);
    r.state = State::kHome;
  }
  uint32_t frame;
  if (!free_.empty()) {
    frame = free_.back();
    free_.pop_back();
  } else {
    // The lowest-ranked region that is not locked (locked ones are out of the order).
    if (order_.empty()) {
      ++(veto_active() ? c_.vetoes : c_.refused);
      return std::nullopt;
    }
    auto it = order_.begin();
    if (compete && !(rank_of(r) > it->first)) {
      ++c_.declined;
      return std::nullopt;
    }
    const RegionKey victim_key = it->second;
    Region& victim = regions_.at(victim_key);
    order_.erase(it);
    victim.in_order = false;
    frame = victim.frame;
    victim.speculative = false;
    demote(victim_key, victim);
  }
  if (r.demoted) ++c_.repromotions;
  r.state = State::kPool;
  r.frame = frame;
  r.issued = true;
  r.decided_ps = r.landed_ps = r.ready_ps = 0;
  ++c_.admissions;
  enter(key, r, step);
  locked_count_ = p_.frames - free_.size() - order_.size();
  return frame;
}

bool RegionPool::place(RegionKey key) {
  if (free_.empty()) return false;
  Region& r = get(key);
  if (r.state == State::kPool) return true;
  r.state = State::kPool;
  r.frame = free_.back();
  free_.pop_back();
  enter(key, r, 0);
  return true;
}

void RegionPool::protect(RegionKey key, uint32_t until, uint32_t step) {
  Region& r = get(key);
  r.lock_until = std::max(r.lock_until, until);
  if (r.state == State::kPool) enter(key, r, step);
}

void RegionPool::lose(RegionKey key) {
  Region& r = get(key);
  if (r.state == State::kPool) {
    leave_order(key, r);
    free_.push_back(r.frame);
  }
  if (r.state == State::kCompressed) {
    corder_.erase({r.touch, key});
    cfree_.push_back(r.cframe);
  }
  if (r.state != State::kLost) ++c_.lost;
  r.state = State::kLost;
}

std::vector<RegionKey> RegionPool::order() const {
  std::vector<RegionKey> out;
  for (const auto& e : order_)
    out.push_back(e.second);
  return out;
}

}  // namespace tiersim
