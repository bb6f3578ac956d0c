// Static-batch decode of a dense transformer: `batch` sequences whose prompts (`context` tokens)
// are already in the KV cache generate one token each per step for `steps` steps.
//
// Objects: per layer its weight matrices (qkv, out, gate_up, down), its norms and its KV cache
// (all sequences, sized for the last step); the embedding table, the position table (LEARNED),
// the final norm and the LM head (unless tied). Under tensor parallelism every object is this
// rank's shard and the op stream carries the collectives (see transformer.h). KV layout is
// token-major ([token][sequence]), so step s reads the first batch x (context + s) tokens of each
// layer's cache in one range and appends batch tokens after them. Prefill is not simulated (the
// prompt's KV is assumed present at step 0).
#pragma once

#include <vector>

#include "models/workload.h"
#include "workloads/transformer.h"

namespace tiersim {

class DecodeWorkload : public Workload {
 public:
  DecodeWorkload(const TransformerShape& shape, uint32_t batch, uint32_t context_tokens,
                 uint32_t steps);

  void register_objects(ObjectTable& objects) override;
  bool next(Op& op) override;
  uint32_t total_steps() const override { return steps_; }
  uint32_t tokens_per_step() const override { return batch_; }
  uint64_t max_activation_bytes() const override;

  // Bytes needed in the home memory: weights plus the KV cache at the last step.
  static uint64_t footprint_bytes(const TransformerShape& s, uint64_t batch, uint64_t context,
                                  uint64_t steps);
  const TransformerShape& shape() const { return shape_; }

 private:
  struct LayerObjects {
    ObjectId attn_norm, qkv, out, mlp_norm, gate_up, down, kv;
  };
  void fill(Op& op, OpKind kind, uint32_t layer);

  const TransformerShape shape_;
  const uint32_t batch_, context_, steps_;
  const std::vector<OpKind> layer_ops_;
  std::vector<OpKind> head_ops_, tail_ops_;  // before and after the layers
  ObjectId embedding_, positions_, embedding_norm_, final_norm_, lm_head_;
  std::vector<LayerObjects> layers_;
  // Cursor: step, then position within the step (head ops, layers x layer ops, tail ops).
  uint32_t step_ = 0;
  uint32_t pos_ = 0;
  uint64_t next_id_ = 0;
  bool registered_ = false;
};

}  // namespace tiersim
