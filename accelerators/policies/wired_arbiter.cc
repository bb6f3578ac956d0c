#include "accelerators/policies/wired_arbiter.h"

#include <algorithm>
#include <numeric>

namespace tiersim {

double WiredCandidate::score() const {
  const double cost = double(bind_cost_bytes) + double(bytes);
  return cost > 0 ? reuse_per_step * bytes_saved_per_reuse / cost : 0.0;
}

WiredChoice choose_wired(const std::vector<WiredCandidate>& candidates, uint64_t quota_bytes) {
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return candidates[a].score() > candidates[b].score();
  });
  WiredChoice c;
  for (size_t i : order) {
    const WiredCandidate& w = candidates[i];
    if (w.reuse_per_step < 1.0 || w.bytes == 0) continue;
    if (c.bytes + w.bytes > quota_bytes) continue;
    c.chosen.push_back(i);
    c.bytes += w.bytes;
    c.saved_bytes_per_step += w.reuse_per_step * w.bytes_saved_per_reuse;
  }
  return c;
}

}  // namespace tiersim
