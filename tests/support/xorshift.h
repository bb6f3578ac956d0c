// A deterministic random stream for randomized tests (xorshift64*): the same numbers on every
// machine and standard library, unlike std:: distributions.
#pragma once

#include <cstdint>

namespace tiersim::test {

class XorShift {
 public:
  explicit XorShift(uint64_t seed) : state_(seed) {}
  // Uniform in [0, n).
  uint32_t operator()(uint32_t n) {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return uint32_t((state_ * 0x2545f4914f6cdd1dULL) >> 33) % n;
  }

 private:
  uint64_t state_;
};

}  // namespace tiersim::test
