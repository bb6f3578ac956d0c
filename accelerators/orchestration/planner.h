// The placement planner (plain C++, no SystemC): what the movement controller decides before the
// run starts, from the object table and its parameters alone.
//
// - Wired residency: the wired-residency arbiter's choice of whole weight objects to bind in the
//   wired memory, within the quota and the room left there.
// - Precision states: which weights' resident parts (object cache: whole objects) are lowered,
//   in ascending sensitivity while the quality proxy sum(sensitivity x 2^-bits x byte share)
//   stays within the budget; each lowered byte is stored at bits / weight bits.
// - Placement of every other object: embeddings, draft weights and (kv_resident) KV caches whole
//   in the fast memory; activations stay the engine's; each weight's first resident_fraction
//   (whole 4 KiB pages) in the fast memory, the next second_tier fraction in the middle tier,
//   the rest at home, prefetched per layer (the final norm and LM head form a virtual last
//   layer).
// - The staging slot: the largest layer's home bytes, in whole 4 KiB pages.
//
// Addresses are not the planner's: the controller allocates them in plan order.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_set>
#include <vector>

#include "accelerators/orchestration/params.h"
#include "models/core/ids.h"
#include "models/core/objects.h"

namespace tiersim {

struct PlannedObject {
  enum class Where : uint8_t {
    kHome,   // stays where the builder put it (activations, KV at home)
    kWired,  // bound whole in the wired memory
    kFast,   // moves whole to the fast memory
    kSplit,  // a weight: resident part, middle-tier part, home part
  };
  Where where = Where::kHome;
  uint64_t resident_bytes = 0;         // kSplit: [0, resident_bytes) in the fast memory ...
  uint64_t resident_stored_bytes = 0;  // ... stored in this many bytes (lowered: fewer)
  double scale = 1.0;                  // stored bytes per logical byte of the resident part
  uint64_t tier_bytes = 0;             // kSplit: then this many in the middle tier
};

struct PlacementPlan {
  std::vector<PlannedObject> objects;  // by object id
  std::vector<ObjectId> wired;         // in the arbiter's choice order
  double wired_saved_bytes_per_step = 0;
  // Precision states.
  // Object ids, filled in ascending sensitivity; the object cache allocates their home copies
  // in this set's iteration order (so the container type fixes those addresses).
  std::unordered_set<uint32_t> lowered;
  double low_scale = 1.0;             // stored bytes per logical byte of a lowered object
  double dequant_flops_per_byte = 0;  // per logical byte read from a lowered copy
  double quality_proxy = 0;
  uint64_t precision_vetoes = 0;
  uint64_t resident_stored_bytes = 0;  // weights' resident parts, as stored
  // Decoder layers (the largest layer id + 1); layer_objects has one more, virtual, layer.
  uint32_t layers = 0;
  std::vector<std::vector<ObjectId>> layer_objects;  // weights with a home part, per layer
  uint64_t slot_bytes = 0;                           // the largest layer's home bytes, 4 KiB pages
};

// Whether the wired memory may hold an object of this class (weights, embeddings, draft weights).
bool wirable(ObjectClass cls);
// The wired-residency arbiter's choice over the wirable objects, each read whole `reuse(o)`
// times per step, within `quota_bytes`: their ids in choice order and (optionally) the off-chip
// bytes they save per step. `tenant` valid: that tenant's objects only.
std::vector<ObjectId> choose_wired_objects(const ObjectTable& objects,
                                           const std::function<double(const ObjectInfo&)>& reuse,
                                           uint64_t quota_bytes, double* saved_bytes_per_step,
                                           TenantId tenant = TenantId());

// `weight_bits` is the weights' full precision; `wired_room_bytes` the wired memory's free bytes.
PlacementPlan plan_placement(const ObjectTable& objects, const OrchestrationParams& p,
                             double weight_bits, uint64_t wired_room_bytes);

}  // namespace tiersim
