// The ranks' meeting point (models/core/rendezvous.h) in a SystemC kernel: three SC_METHOD
// parties arrive at 10, 30 and 20 ns; the last (30 ns) times the meeting, and all three leave at
// 30 ns + its time. A party that leaves at once and arrives at the next meeting before the others
// woke still finds its own meeting's result.
#include <gtest/gtest.h>

#include <sstream>
#include <systemc>

#include "models/core/rendezvous.h"
#include "models/core/sim_time.h"
#include "tests/support/fork_sim.h"

namespace tiersim {
namespace {

struct Party : sc_core::sc_module {
  SC_HAS_PROCESS(Party);
  Party(sc_core::sc_module_name n, Rendezvous& rv, uint32_t id, std::vector<TimePs> arrive_ps,
        TimePs collective_ps, std::ostringstream& log)
      : sc_core::sc_module(n),
        rv_(rv),
        id_(id),
        arrive_(std::move(arrive_ps)),
        t_(collective_ps),
        log_(log) {
    SC_METHOD(run);
  }
  void run() {
    const TimePs now = now_ps();
    if (waiting_) {
      const auto& r = rv_.released(generation_);
      log_ << "party " << id_ << " meeting " << generation_ << " leaves at " << now << " end "
           << r.end_ps << " straggler " << r.straggler << "\n";
      waiting_ = false;
      ++next_;
    }
    if (next_ >= arrive_.size()) return;
    if (now < arrive_[next_]) {
      next_trigger(to_sc_time(arrive_[next_] - now));
      return;
    }
    if (rv_.arrive(id_, now, next_, &generation_)) {
      rv_.release(rv_.latest_ps() + t_, 0);
      log_ << "party " << id_ << " meeting " << generation_ << " last at " << now << "\n";
      ++next_;
      run_again();
      return;
    }
    waiting_ = true;
    next_trigger(rv_.event());
  }
  void run_again() {
    if (next_ < arrive_.size()) next_trigger(sc_core::SC_ZERO_TIME);
  }
  Rendezvous& rv_;
  uint32_t id_;
  std::vector<TimePs> arrive_;
  TimePs t_;
  std::ostringstream& log_;
  size_t next_ = 0;
  bool waiting_ = false;
  uint64_t generation_ = 0;
};

TEST(Rendezvous, EveryPartyLeavesWhenTheLastArrivalsCollectiveEnds) {
  const std::string out = test::run_forked([] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    std::ostringstream log;
    Rendezvous rv(3);
    // Meeting 0 at 10, 30 and 20 ns; meeting 1: party 1 (last at meeting 0) arrives at once
    // (30 ns), the others when they are out (at 35 ns).
    Party a("a", rv, 0, {10000, 35000}, 5000, log);
    Party b("b", rv, 1, {30000, 30000}, 5000, log);
    Party c("c", rv, 2, {20000, 35000}, 5000, log);
    sc_core::sc_start();
    return log.str();
  });
  EXPECT_NE(out.find("party 1 meeting 0 last at 30000"), std::string::npos) << out;
  // Party 1 arrived strictly last.
  EXPECT_NE(out.find("party 0 meeting 0 leaves at 30000 end 35000 straggler 1"), std::string::npos)
      << out;
  EXPECT_NE(out.find("party 2 meeting 0 leaves at 30000 end 35000 straggler 1"), std::string::npos)
      << out;
  // Meeting 1's last arrival is at 35 ns (parties 0 and 2); it ends at 40 ns.
  EXPECT_NE(out.find("meeting 1 last at 35000"), std::string::npos) << out;
  // Parties 0 and 2 tie at 35 ns: no straggler.
  EXPECT_NE(out.find("party 1 meeting 1 leaves at 35000 end 40000 straggler -1"), std::string::npos)
      << out;
}

// A party that stands for several identical ranks ties with itself: never a straggler.
TEST(Rendezvous, APartyOfIdenticalRanksIsNoStraggler) {
  Rendezvous rv(2, {1, 3});
  uint64_t g = 0;
  EXPECT_FALSE(rv.arrive(0, 10, 1, &g));
  EXPECT_TRUE(rv.arrive(1, 20, 1, &g));
  rv.release(25, 0);
  EXPECT_EQ(rv.released(0).straggler, -1);
  EXPECT_FALSE(rv.arrive(1, 30, 2, &g));
  EXPECT_TRUE(rv.arrive(0, 40, 2, &g));
  rv.release(45, 0);
  EXPECT_EQ(rv.released(1).straggler, 0);
  EXPECT_EQ(rv.released(1).latest_ps, 40u);
}

TEST(Rendezvous, RefusesMismatchedMeetingsAndMisuse) {
  Rendezvous rv(2);
  uint64_t g = 0;
  EXPECT_FALSE(rv.arrive(0, 10, 7, &g));
  EXPECT_THROW(rv.arrive(1, 20, 8, &g), std::logic_error);  // another op
  EXPECT_THROW(rv.release(0, 0), std::logic_error);         // no last arrival
  EXPECT_THROW(Rendezvous(0), std::logic_error);
}

}  // namespace
}  // namespace tiersim
