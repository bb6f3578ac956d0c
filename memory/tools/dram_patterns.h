// Memory benchmark patterns over one command-level stack (the core of `membench` and of
// `tiersim calibrate`). Plain C++.
//
// A pattern issues requests of `request_bytes` (split into consecutive accesses) in a closed
// loop of `outstanding` requests, or open loop at `injection_bytes_per_s`, for `total_bytes`.
// Addresses: sequential (stream), uniformly random (request-aligned), or strided. Each request
// is a write with probability 1 - read_fraction (seeded, deterministic). Bandwidth is measured
// in the steady window [20%, 70%] of the run; latency is per request, from its issue to its
// last access's last data beat, plus the controller front end.
#pragma once

#include <cstdint>
#include <string>

#include "memory/bandwidth_memory_core.h"
#include "memory/dram_stack.h"

namespace tiersim {

struct DramPattern {
  enum class Kind { kStream, kRandom, kStrided };
  std::string name;
  Kind kind = Kind::kStream;
  double read_fraction = 1.0;
  uint64_t request_bytes = 64;
  uint64_t stride_bytes = 0;         // kStrided: distance between request starts
  uint32_t outstanding = 0;          // closed loop when > 0
  double injection_bytes_per_s = 0;  // open loop when > 0 (outstanding must be 0)
  uint64_t total_bytes = 0;
  uint64_t seed = 1;
};

struct DramPatternResult {
  double bandwidth_bytes_per_s = 0;
  double efficiency = 0;  // of the stack's peak
  double mean_latency_ps = 0;
  double p99_latency_ps = 0;
  double row_hit_rate = 0;
  uint64_t requests = 0;
};

// Upper bound on the bandwidth of uniformly random accesses, each opening a row, from the JEDEC
// limits alone (per pseudo channel, in accesses per command-clock cycle):
//   data bus      1 / burst_cycles                                   (the peak)
//   activations   min(1 / tRRD_S, 4 / tFAW, banks / tRC) x accesses_per_activation
//                 (tRRD_S: consecutive ACTs in different bank groups, the best case)
//   row bus       1 / (row-bus cycles per activation x pseudo channels sharing the bus)
//                 x accesses_per_activation (an ACT takes two cycles, a PRE one: 3 with open
//                 pages, 2 with auto-precharge)
//   column bus    1 / pseudo channels sharing it
// times the all-bank refresh's share of time left (1 - tRFC / tREFI; per-bank refresh is
// taken as free, which keeps the bound an upper one). `binding` names the smallest term.
struct RandomAccessCeiling {
  double fraction_of_peak = 0;
  const char* binding = "";
};
RandomAccessCeiling random_access_ceiling(const DramStackSpec& spec,
                                          double accesses_per_activation = 1.0);

// Runs `p` on a fresh stack built from `spec`. Throws std::invalid_argument for a malformed
// pattern (request not a multiple of the access size, both or neither loop mode, ...).
DramPatternResult run_dram_pattern(const DramStackSpec& spec, const DramPattern& p);

// Runs `p` on the fast level's core (a fresh BandwidthMemoryCore from `params`), with the same
// address sequence, loop discipline and steady window. Requests reserve their channels when issued.
// Efficiency is relative to the pin bandwidth of `params`.
DramPatternResult run_fast_pattern(const BandwidthMemoryParams& params, const DramPattern& p);

}  // namespace tiersim
