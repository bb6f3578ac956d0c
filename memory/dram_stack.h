// One HBM stack at command level: `channels x pseudo_channels` pseudo-channel controllers
// behind an address mapping. Plain C++ and event-driven: advance() visits only the controllers
// whose next event is due and returns the next cycle anything can happen. The SystemC shell of
// the detailed HBM model (and `tiersim calibrate`) drive it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "memory/dram_address.h"
#include "memory/dram_controller.h"

namespace tiersim {

struct DramStackSpec {
  uint32_t channels = 0, pseudo_channels = 0;
  DramOrganization org;  // per pseudo-channel
  DramTiming timing;
  ControllerPolicy policy;
  std::string mapping = DramAddressMapping::kDefaultOrder;
  uint64_t frontend_latency_ps = 0;  // controller and PHY, added to every access's latency

  // Peak data bandwidth of the stack: every pseudo-channel moving one access per burst.
  double peak_bytes_per_s() const {
    return double(channels) * pseudo_channels * org.access_bytes * 1e12 /
           (double(timing.burst_cycles) * timing.tck_ps);
  }
  uint64_t capacity_bytes() const { return uint64_t{channels} * pseudo_channels * org.bytes(); }
};

class DramStack {
 public:
  static constexpr uint64_t kNever = PseudoChannelController::kNever;

  // Throws std::invalid_argument when the mapping does not parse for the organisation.
  explicit DramStack(const DramStackSpec& spec);

  // Queues one access at `cycle` if its pseudo-channel's queue has room; false otherwise.
  bool submit(uint64_t address, bool write, uint64_t id, uint64_t cycle);
  // Advances every controller due at `cycle`; appends completions. Returns the next event cycle.
  uint64_t advance(uint64_t cycle, std::vector<DramCompletion>& done);
  void set_refresh_multiplier(double m);

  const DramStackSpec& spec() const { return spec_; }
  const DramAddressMapping& mapping() const { return mapping_; }
  size_t controllers() const { return controllers_.size(); }
  const PseudoChannelController& controller(size_t i) const { return *controllers_[i]; }
  DramControllerStats total_stats() const;
  // Latency of a completed access: front end plus arrival to last data beat.
  uint64_t latency_ps(const DramCompletion& d) const {
    return spec_.frontend_latency_ps + (d.done_cycle - d.arrival_cycle) * spec_.timing.tck_ps;
  }

 private:
  DramStackSpec spec_;
  DramAddressMapping mapping_;
  std::vector<std::unique_ptr<PseudoChannelController>> controllers_;
  std::vector<SharedCommandBuses> buses_;  // one per channel (pseudo-channel mode)
  std::vector<uint64_t> next_;             // next event cycle per controller
};

}  // namespace tiersim
