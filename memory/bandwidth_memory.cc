#include "memory/bandwidth_memory.h"

#include "models/core/context.h"

namespace tiersim {

BandwidthMemory::BandwidthMemory(sc_core::sc_module_name name, const BandwidthMemoryParams& params,
                                 Context& ctx, std::string kind, Tier tier)
    : DramTarget(name, ctx, std::move(kind), tier, params.capacity_bytes(),
                 {"requests", "bulk requests served"}),
      params_(params),
      core_(params) {
  ctx.stats()
      .vector_formula(basename(), "stack_bytes", "bytes served per stack", "bytes",
                      stack_labels(params.stack_count),
                      [this](double* out) {
                        // Server u belongs to stack u % stacks.
                        const uint32_t stacks = params_.stack_count;
                        for (uint32_t u = 0, st = 0; u < params_.servers(); ++u) {
                          out[st] += static_cast<double>(core_.server_bytes(u));
                          if (++st == stacks) st = 0;
                        }
                      })
      .set_sampling("cumulative");
  register_latency("request_latency", "request latency from arrival to last byte",
                   Histogram::log2_edges(1, 1 << 24));
  ctx.stats()
      .formula(basename(), "utilization", "mean busy fraction over all channel servers", "fraction",
               [this](TimePs now) {
                 if (now == 0) return 0.0;
                 return static_cast<double>(core_.busy_ps()) /
                        (static_cast<double>(now) * params_.servers());
               })
      .set_sampling("average_since_start");
}

double BandwidthMemory::busy_stack_s() const {
  return ps_to_s(core_.busy_ps()) / static_cast<double>(params_.channels_per_stack);
}

void BandwidthMemory::thermal_counts(double* stack_bytes, double* stack_busy_s) const {
  const uint32_t stacks = params_.stack_count;
  for (uint32_t s = 0; s < stacks; ++s)
    stack_bytes[s] = stack_busy_s[s] = 0;
  for (uint32_t u = 0; u < params_.servers(); ++u) {
    stack_bytes[u % stacks] += double(core_.server_bytes(u));
    stack_busy_s[u % stacks] += ps_to_s(core_.server_busy_ps(u)) / params_.channels_per_stack;
  }
}

void BandwidthMemory::thermal_apply(uint32_t stack, double refresh_multiplier, double fraction) {
  core_.set_stack_rate(stack, refresh_multiplier, fraction);
}

}  // namespace tiersim
