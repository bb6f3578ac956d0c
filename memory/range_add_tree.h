// A segment tree over n unsigned values with range add and the maximum and minimum of all
// values in O(1): the lazy state of a bandwidth memory's channel servers while they stream
// (memory/bandwidth_memory_core.h). Plain C++; allocates only in reset().
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace tiersim {

class RangeAddTree {
 public:
  // Sets the values to v[0..n).
  void reset(const std::vector<uint64_t>& v) {
    if (v.size() != n_ || mx_.empty()) {
      n_ = v.size();
      size_ = 1;
      while (size_ < n_)
        size_ *= 2;
      mx_.assign(2 * size_, 0);
      mn_.assign(2 * size_, UINT64_MAX);
      add_.assign(2 * size_, 0);
      acc_.assign(size_, 0);
    }
    // Leaves past n_ keep (0, UINT64_MAX): no add reaches them (every range lies within n).
    for (size_t i = 0; i < n_; ++i) {
      mx_[size_ + i] = mn_[size_ + i] = v[i];
      add_[size_ + i] = 0;
    }
    for (size_t i = size_ - 1; i >= 1; --i) {
      add_[i] = 0;
      pull(i);
    }
  }
  // Adds d to the values of [l, r), l < r <= n.
  void add(size_t l, size_t r, uint64_t d) {
    if (d != 0 && l < r) add(1, 0, size_, l, r, d);
  }
  void add_all(uint64_t d) {
    if (d == 0) return;
    add_[1] += d;
    mx_[1] += d;
    mn_[1] += d;
  }
  uint64_t max() const { return mx_[1]; }
  uint64_t min() const { return mn_[1]; }
  // Every value, in order (O(n)).
  void values(std::vector<uint64_t>& out) const {
    out.resize(n_);
    // The adds pending above each inner node, top down (a leaf's own add is in its value).
    if (size_ > 1) acc_[1] = add_[1];
    for (size_t i = 2; i < size_; ++i)
      acc_[i] = acc_[i / 2] + add_[i];
    for (size_t i = 0; i < n_; ++i)
      out[i] = mx_[size_ + i] + (size_ > 1 ? acc_[(size_ + i) / 2] : 0);
  }

 private:
  void pull(size_t i) {
    mx_[i] = std::max(mx_[2 * i], mx_[2 * i + 1]) + add_[i];
    const uint64_t m = std::min(mn_[2 * i], mn_[2 * i + 1]);
    mn_[i] = m == UINT64_MAX ? m : m + add_[i];
  }
  void add(size_t i, size_t lo, size_t hi, size_t l, size_t r, uint64_t d) {
    if (r <= lo || hi <= l) return;
    if (l <= lo && hi <= r) {
      add_[i] += d;
      mx_[i] += d;
      mn_[i] += d;  // a node wholly inside [l, r) < n holds no unused leaf
      return;
    }
    const size_t mid = (lo + hi) / 2;
    add(2 * i, lo, mid, l, r, d);
    add(2 * i + 1, mid, hi, l, r, d);
    pull(i);
  }
  size_t n_ = 0, size_ = 1;
  std::vector<uint64_t> mx_, mn_, add_;
  mutable std::vector<uint64_t> acc_;  // values(): adds above each inner node
};

}  // namespace tiersim
