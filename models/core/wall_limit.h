// A wall-clock limit on a run (run.max_wall_time_s), started by the driver, polled by the compute
// engine before every op and every 4096th tile and by models inside long loops. Plain C++; the
// caller stops the kernel when it reports expiry.
#pragma once

#include <chrono>
#include <cstdint>

namespace tiersim {

class WallLimit {
 public:
  using Clock = std::chrono::steady_clock;
  // `seconds` <= 0: no limit.
  void start(double seconds) {
    limited_ = seconds > 0;
    deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(limited_ ? seconds : 0));
    expired_ = false;
  }
  // Whether the limit has passed (once true, stays true). Reads the clock on every call: callers
  // in hot loops call poll() instead.
  bool expired() {
    if (limited_ && !expired_ && Clock::now() >= deadline_) expired_ = true;
    return expired_;
  }
  // expired(), reading the clock only every 4096th call.
  bool poll() {
    if (!limited_) return false;
    if ((++calls_ & 4095) != 0) return expired_;
    return expired();
  }
  bool hit() const { return expired_; }

 private:
  bool limited_ = false, expired_ = false;
  uint64_t calls_ = 0;
  Clock::time_point deadline_{};
};

}  // namespace tiersim
