#include "models/core/rendezvous.h"

#include <algorithm>

namespace tiersim {

bool Rendezvous::arrive(uint32_t party, TimePs at_ps, uint64_t key, uint64_t* generation) {
  if (waiting_release_) throw std::logic_error("Rendezvous: arrival before the last release");
  const bool tie_with_itself = multiplicity_[party] > 1;
  if (arrived_ == 0) {
    key_ = key;
    first_party_ = party;
    latest_ps_ = at_ps;
    straggler_ = tie_with_itself ? int64_t{-1} : int64_t{party};
  } else if (key != key_) {
    throw std::logic_error("Rendezvous: node " + std::to_string(party) +
                           " arrived at another collective than node " +
                           std::to_string(first_party_) + " (the ranks' op streams differ)");
  }
  if (arrived_ > 0 && at_ps > latest_ps_) {
    latest_ps_ = at_ps;
    straggler_ = tie_with_itself ? int64_t{-1} : int64_t{party};
  } else if (arrived_ > 0 && at_ps == latest_ps_) {
    straggler_ = -1;
  }
  *generation = generation_;
  if (++arrived_ < parties_) return false;
  waiting_release_ = true;
  return true;
}

void Rendezvous::release(TimePs end_ps, double energy_j) {
  if (!waiting_release_) throw std::logic_error("Rendezvous: release without a last arrival");
  Release& r = slots_[generation_ & 1];
  r.latest_ps = latest_ps_;
  r.end_ps = end_ps;
  r.energy_j = energy_j;
  r.straggler = straggler_;
  waiting_release_ = false;
  arrived_ = 0;
  ++generation_;
  if (parties_ > 1) event_.notify(sc_core::SC_ZERO_TIME);
}

const Rendezvous::Release& Rendezvous::released(uint64_t generation) const {
  if (generation >= generation_ || generation_ - generation > 2) {
    throw std::logic_error("Rendezvous: a meeting's result read out of its window");
  }
  return slots_[generation & 1];
}

}  // namespace tiersim
