// Recompute-vs-transfer arbitration of KV restores with hidden-state checkpoints (HCache), plain
// C++. TRANSFER reads the KV from home; RECOMPUTE reads the layer-input hidden states instead and
// recomputes K and V from them; ARBITRATE picks the cheaper per restore: cost = KV bytes / B
// against max(hidden bytes / B, FLOPs / rate at the op's rows) (the engine streams, so an
// operand's reads and its arithmetic overlap), B the home path's rate as observed from demand
// reads (an exponential average; the configured first estimate until the first observation).
#pragma once

#include <cstdint>

#include "configs/tiersim.pb.h"
#include "models/core/objects.h"
#include "models/core/time.h"

namespace tiersim {

class RestoreArbiter {
 public:
  RestoreArbiter(config::KvRestore mode, double first_path_bytes_per_s)
      : mode_(mode), path_rate_(first_path_bytes_per_s) {}

  // Whether to restore `kv_bytes` of the KV object `kv` by recomputing them from `hidden_bytes`
  // of hidden states at `recompute_flops_per_s`, rather than reading them; counts either way.
  bool restore_by_recompute(const ObjectInfo& kv, uint64_t kv_bytes, uint64_t hidden_bytes,
                            double recompute_flops_per_s);
  // `bytes` were read from home in `busy_ps` of the path's busy time (observations under 1 MiB
  // are too short to say and ignored).
  void observe_home_rate(uint64_t bytes, TimePs busy_ps);

  double path_bytes_per_s() const { return path_rate_; }
  uint64_t transferred_bytes() const { return transferred_bytes_; }
  uint64_t recomputed_bytes() const { return recomputed_bytes_; }
  uint64_t hidden_bytes_read() const { return hidden_bytes_read_; }
  double recompute_flops() const { return recompute_flops_; }

 private:
  config::KvRestore mode_;
  double path_rate_ = 0;  // bytes/s; 0: unknown (transfer)
  uint64_t transferred_bytes_ = 0, recomputed_bytes_ = 0, hidden_bytes_read_ = 0;
  double recompute_flops_ = 0;
};

}  // namespace tiersim
