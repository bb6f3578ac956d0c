// The wired-residency arbiter (the hardware-enforced on-chip residency essay), plain C++: chooses
// which objects to BIND in on-chip SRAM under a tenant's wired quota. Each candidate's score is
//   reuse_per_step x bytes_saved_per_reuse / (bind_cost_bytes + quota_cost_bytes)
// (off-chip bytes saved per step, per byte it costs to bind and to hold), and a greedy knapsack
// takes candidates in descending score while they fit the quota (a candidate that does not fit
// is skipped, and smaller ones after it may still fit). Objects that are reused less than once
// per step save nothing and are never chosen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tiersim {

struct WiredCandidate {
  std::string name;
  uint64_t bytes = 0;                // quota it would hold (line-aligned)
  double reuse_per_step = 0;         // reads of the whole object per step
  double bytes_saved_per_reuse = 0;  // off-chip bytes a resident copy saves per read
  uint64_t bind_cost_bytes = 0;      // the PREFETCH (once)
  double score() const;
};

struct WiredChoice {
  std::vector<size_t> chosen;  // indices into the candidates, in choice order
  uint64_t bytes = 0;
  double saved_bytes_per_step = 0;
};

WiredChoice choose_wired(const std::vector<WiredCandidate>& candidates, uint64_t quota_bytes);

}  // namespace tiersim
