// The object model: every tensor the workload names (weights, KV cache, activations) is an object
// with an id, a class, a size and a placement. Workloads register objects; the system builder
// places them in their home memory; the movement orchestrator (accelerators/orchestration) and its
// policies move them. Plain C++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/core/ids.h"

namespace tiersim {

enum class ObjectClass : uint8_t { kWeight, kEmbedding, kKvCache, kActivation, kDraftWeight };
const char* object_class_name(ObjectClass c);

// Memory tiers, in the order of their distance from compute.
enum class Tier : uint8_t { kNone, kSram, kHbm, kDdr, kCxl, kNvme };
const char* tier_name(Tier t);
constexpr int kTiers = 6;

// What the workload expects of an object, declared when it registers it, for movement
// policies: the steps it is live in, how many times per step it is read whole (a gather of a
// few rows, as an embedding lookup, counts as none), and how sure the
// workload is (the probability that the next step uses it as declared: 1 for dense weights and
// a static batch's KV; a routed expert's chance of being active).
struct ObjectIntent {
  static constexpr uint32_t kUntilEnd = UINT32_MAX;
  uint32_t first_step = 0;
  uint32_t last_step = kUntilEnd;
  double uses_per_step = 0;
  double confidence = 0;  // 0 with uses_per_step 0: nothing declared
  // Per phase (restated when a phase begins): from `first_step` on, until the next phase, these
  // replace the values above (the intent declared at model load). Empty: one phase.
  struct Phase {
    uint32_t first_step = 0;
    double uses_per_step = 0, confidence = 0;
  };
  std::vector<Phase> phases;  // ascending first_step

  // Uses per step and confidence in `step`.
  std::pair<double, double> at(uint32_t step) const {
    std::pair<double, double> v{uses_per_step, confidence};
    for (const auto& p : phases) {
      if (p.first_step > step) break;
      v = {p.uses_per_step, p.confidence};
    }
    return v;
  }
};

struct ObjectInfo {
  std::string name;
  ObjectClass cls = ObjectClass::kWeight;
  uint64_t size_bytes = 0;
  LayerId layer;  // invalid for objects not tied to a layer
  ObjectIntent intent;
  // KV caches with hidden-state checkpoints (HCache): the object holding the layer's input
  // hidden states of the same tokens, and the FLOPs that recompute one KV byte from them.
  ObjectId hidden_states;
  double recompute_flops_per_byte = 0;
  uint64_t token_bytes = 0;  // KV and hidden-state objects: bytes per token
  // Decode KV objects: the sequence, the token capacity (the token area; page digests, if any,
  // follow it) and the page (sparse attention's block) in tokens.
  uint32_t sequence = UINT32_MAX;
  uint64_t kv_tokens = 0;
  uint32_t kv_block_tokens = 0;
  TenantId tenant{0};    // the workload that registered it (config tenancy)
  std::string home;      // component name of the home memory; set by placement
  uint64_t address = 0;  // global address in the home memory; set by placement
  bool placed = false;
};

class ObjectTable {
 public:
  ObjectId add(std::string name, ObjectClass cls, uint64_t size_bytes, LayerId layer = LayerId(),
               ObjectIntent intent = {});
  // Objects added from now on belong to `tenant`, their names prefixed by `name_prefix`
  // (a tenant's workload registers its objects under its own name).
  void set_registering_tenant(TenantId tenant, std::string name_prefix) {
    tenant_ = tenant;
    name_prefix_ = std::move(name_prefix);
  }
  void set_intent(ObjectId id, const ObjectIntent& intent) { objects_[id.value()].intent = intent; }
  const ObjectInfo& get(ObjectId id) const { return objects_[id.value()]; }
  ObjectInfo& get_mutable(ObjectId id) { return objects_[id.value()]; }
  size_t size() const { return objects_.size(); }
  uint64_t total_bytes() const;
  uint64_t total_bytes(ObjectClass cls) const;
  const std::vector<ObjectInfo>& all() const { return objects_; }

 private:
  std::vector<ObjectInfo> objects_;
  TenantId tenant_{0};
  std::string name_prefix_;
};

}  // namespace tiersim
