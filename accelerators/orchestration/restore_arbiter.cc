#include "accelerators/orchestration/restore_arbiter.h"

#include <algorithm>

namespace tiersim {

bool RestoreArbiter::restore_by_recompute(const ObjectInfo& kv, uint64_t kv_bytes,
                                          uint64_t hidden_bytes, double recompute_flops_per_s) {
  const double flops = double(kv_bytes) * kv.recompute_flops_per_byte;
  bool recompute = mode_ == config::KV_RESTORE_RECOMPUTE;
  if (mode_ == config::KV_RESTORE_ARBITRATE && path_rate_ > 0) {
    const double transfer_s = double(kv_bytes) / path_rate_;
    const double recompute_s =
        std::max(double(hidden_bytes) / path_rate_, flops / recompute_flops_per_s);
    recompute = recompute_s < transfer_s;
  }
  if (recompute) {
    recomputed_bytes_ += kv_bytes;
    hidden_bytes_read_ += hidden_bytes;
    recompute_flops_ += flops;
  } else {
    transferred_bytes_ += kv_bytes;
  }
  return recompute;
}

void RestoreArbiter::observe_home_rate(uint64_t bytes, TimePs busy_ps) {
  if (busy_ps == 0 || bytes < (1u << 20)) return;
  const double rate = double(bytes) / (double(busy_ps) * 1e-12);
  path_rate_ = path_rate_ > 0 ? 0.5 * path_rate_ + 0.5 * rate : rate;
}

}  // namespace tiersim
