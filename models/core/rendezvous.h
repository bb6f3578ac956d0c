// Every-rank simulation (workload.parallelism.simulate_ranks: SIMULATE_EVERY_RANK): the ranks of
// a pod are simulated side by side, each its own system, and meet at every collective. A
// Rendezvous is that meeting point: each rank's engine arrives with the time it is ready; the
// last to arrive times the collective once, and every rank leaves when it ends (the latest
// arrival plus the collective's time). No thread: a waiting engine (an SC_METHOD) waits on the
// rendezvous' event with next_trigger.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <systemc>
#include <vector>

#include "models/core/time.h"

namespace tiersim {

class Rendezvous {
 public:
  // What the last arrival computed; every party of that meeting reads it.
  struct Release {
    TimePs latest_ps = 0;  // the last arrival
    TimePs end_ps = 0;     // when the collective ends for every party
    double energy_j = 0;   // the collective's link energy (the pod's, all ranks)
    // The party that arrived strictly last (latest_ps), or -1 when the latest time was a tie
    // (several parties, or one party standing for several identical ranks).
    int64_t straggler = -1;
  };

  // `multiplicity[p]`: the ranks party p stands for (empty: one each).
  explicit Rendezvous(uint32_t parties, std::vector<uint32_t> multiplicity = {})
      : parties_(parties), multiplicity_(std::move(multiplicity)) {
    if (parties == 0) throw std::logic_error("Rendezvous: no parties");
    if (multiplicity_.empty()) multiplicity_.assign(parties, 1);
    if (multiplicity_.size() != parties) throw std::logic_error("Rendezvous: multiplicities");
  }
  uint32_t parties() const { return parties_; }

  // Party `party` is ready at `at_ps` for the meeting identified by `key` (the op: its number
  // and kind; every party must bring the same). Returns true for the last arrival, which
  // must then call release(); the others wait for event() and read released(generation).
  // `generation` receives the meeting's number.
  bool arrive(uint32_t party, TimePs at_ps, uint64_t key, uint64_t* generation);
  // The last arrival's result: notifies the waiting parties (in the next delta cycle).
  void release(TimePs end_ps, double energy_j);
  // The result of meeting `generation` (valid from its release until the meeting after next is
  // released: a party reads it when it wakes, before it can arrive twice more).
  const Release& released(uint64_t generation) const;
  // Whether meeting `generation` has been released (a party woken by an earlier meeting's
  // notification waits on).
  bool is_released(uint64_t generation) const { return generation < generation_; }
  TimePs latest_ps() const { return latest_ps_; }
  sc_core::sc_event& event() { return event_; }

 private:
  uint32_t parties_;
  std::vector<uint32_t> multiplicity_;
  uint32_t arrived_ = 0;
  int64_t straggler_ = -1;
  uint64_t generation_ = 0;  // the meeting under way
  uint64_t key_ = 0;
  uint32_t first_party_ = 0;
  TimePs latest_ps_ = 0;
  bool waiting_release_ = false;  // the last has arrived, release() not yet called
  Release slots_[2];              // by generation parity
  sc_core::sc_event event_;
};

// Point-to-point messages to one rank from one other (pipeline parallelism: a stage's inbox from
// the stage before it): a send posts when its data arrives, and the receiver takes them in the
// order sent. No thread: a receiver with nothing posted waits on posted().
class PipeChannel {
 public:
  void post(TimePs arrival_ps) {
    arrivals_.push_back(arrival_ps);
    posted_.notify(sc_core::SC_ZERO_TIME);
  }
  // The oldest message's arrival, removed; false when none is posted.
  bool take(TimePs* arrival_ps) {
    if (arrivals_.empty()) return false;
    *arrival_ps = arrivals_.front();
    arrivals_.pop_front();
    return true;
  }
  sc_core::sc_event& posted() { return posted_; }

 private:
  std::deque<TimePs> arrivals_;
  sc_core::sc_event posted_;
};

// Data-parallel serving: a replica's doorbell, rung when the front end routes a request to it
// (or has nothing more to route); a replica's engine waiting for requests waits on it.
class Doorbell {
 public:
  void ring() { rung_.notify(sc_core::SC_ZERO_TIME); }
  sc_core::sc_event& rung() { return rung_; }

 private:
  sc_core::sc_event rung_;
};

// The ranks simulated side by side: their meeting points, their inboxes and how many are done.
// Pipeline stages and data-parallel replicas each meet apart: `groups` collective groups (a
// stage's or a replica's tensor-parallel ranks) of parties / groups parties each.
class RankGroup {
 public:
  // `multiplicity[p]`: the ranks party p stands for (identical ranks simulated once); group g's
  // parties are parties g x parties / groups onwards.
  explicit RankGroup(uint32_t parties, std::vector<uint32_t> multiplicity = {}, uint32_t groups = 1)
      : parties_(parties) {
    if (groups == 0 || parties % groups != 0 ||
        (!multiplicity.empty() && multiplicity.size() != parties)) {
      throw std::logic_error("RankGroup: parties in groups");
    }
    const uint32_t per = parties / groups;
    for (uint32_t g = 0; g < groups; ++g)
      rendezvous_.push_back(std::make_unique<Rendezvous>(
          per, multiplicity.empty() ? std::vector<uint32_t>{}
                                    : std::vector<uint32_t>(multiplicity.begin() + g * per,
                                                            multiplicity.begin() + (g + 1) * per)));
    for (uint32_t p = 0; p < parties; ++p)
      pipes_.push_back(std::make_unique<PipeChannel>());
  }
  // Collective group `g`'s meeting point (its parties numbered from 0).
  Rendezvous& rendezvous(uint32_t g = 0) { return *rendezvous_.at(g); }
  // Node n's inbox (pipeline stages are never merged: a node is a party).
  PipeChannel& pipe(uint32_t node) { return *pipes_.at(node); }
  uint32_t ranks() const { return parties_; }
  // A rank's workload is complete; true when it was the last (the run may stop).
  bool finish() { return ++finished_ == parties_; }
  uint32_t finished() const { return finished_; }

 private:
  uint32_t parties_;
  std::vector<std::unique_ptr<Rendezvous>> rendezvous_;
  std::vector<std::unique_ptr<PipeChannel>> pipes_;
  uint32_t finished_ = 0;
};

// A rank's place in its group (Context::rank(): null when one rank is simulated).
struct RankSlot {
  uint32_t node = 0;   // node[node] of the pod (the first of identical ranks simulated once)
  uint32_t party = 0;  // its party at its collective group's rendezvous
  uint32_t collective_group = 0;  // its collective group (a pipeline stage, a replica)
  RankGroup* group = nullptr;
  Doorbell* doorbell = nullptr;  // data-parallel serving: its replica's
};

}  // namespace tiersim
