#include "accelerators/orchestration/planner.h"

#include <algorithm>
#include <cmath>

#include "accelerators/policies/wired_arbiter.h"
#include "models/core/dtype.h"

namespace tiersim {

namespace {

// The wired-residency arbiter over whole weight objects (most off-chip bytes saved per step per
// byte first), within the quota and the wired memory's room.
void plan_wired(const ObjectTable& objects, const OrchestrationParams& p, uint64_t room_bytes,
                PlacementPlan& plan) {
  auto reuse = [](const ObjectInfo& o) { return o.intent.uses_per_step; };
  if (p.wired_tenant_quota.empty()) {
    plan.wired = choose_wired_objects(objects, reuse, std::min(p.wired_quota_bytes, room_bytes),
                                      &plan.wired_saved_bytes_per_step);
  } else {
    // Per-tenant quotas: each tenant's choice among its own objects, within its quota and the
    // room the tenants before it left (their sum is within the area by validation).
    uint64_t room = std::min(p.wired_quota_bytes, room_bytes);
    for (size_t t = 0; t < p.wired_tenant_quota.size(); ++t) {
      double saved = 0;
      const auto chosen =
          choose_wired_objects(objects, reuse, std::min(p.wired_tenant_quota[t], room), &saved,
                               TenantId(static_cast<uint16_t>(t)));
      for (ObjectId id : chosen) {
        plan.wired.push_back(id);
        room -= std::min(room, (objects.get(id).size_bytes + 4095) / 4096 * 4096);
      }
      plan.wired_saved_bytes_per_step += saved;
    }
  }
  for (ObjectId id : plan.wired)
    plan.objects[id.value()].where = PlannedObject::Where::kWired;
}

// The precision guardrail: weights lowered in ascending sensitivity while the quality proxy
// stays within the budget (byte shares: the resident parts, or whole objects in the object
// cache). The last sensitivity entry that matches an object's name applies (default 1).
void plan_precision(const ObjectTable& objects, const OrchestrationParams& p, double weight_bits,
                    PlacementPlan& plan) {
  const double low = dtype_bits(p.precision.dtype());
  plan.low_scale = std::min(1.0, low / weight_bits);
  plan.dequant_flops_per_byte =
      (p.precision.has_dequant_flops_per_element() ? p.precision.dequant_flops_per_element()
                                                   : 2.0) /
      (weight_bits / 8.0);
  const double err = std::pow(2.0, -low);
  struct Candidate {
    double sensitivity;
    uint32_t id;
    uint64_t bytes;
  };
  std::vector<Candidate> candidates;
  double total = 0;
  for (size_t i = 0; i < objects.size(); ++i) {
    const ObjectInfo& o = objects.get(ObjectId(static_cast<uint32_t>(i)));
    if (o.cls != ObjectClass::kWeight || plan.objects[i].where == PlannedObject::Where::kWired) {
      continue;
    }
    double sens = 1.0;
    for (const auto& sp : p.precision.sensitivity()) {
      if (o.name.rfind(sp.prefix(), 0) == 0 && o.name.find(sp.contains()) != std::string::npos) {
        sens = sp.value();
      }
    }
    const double resident = p.object_cache
                                ? double(o.size_bytes)
                                : std::min(1.0, p.resident_fraction) * double(o.size_bytes);
    candidates.push_back({sens, uint32_t(i), uint64_t(resident)});
    total += resident;
  }
  std::stable_sort(
      candidates.begin(), candidates.end(),
      [](const Candidate& a, const Candidate& b) { return a.sensitivity < b.sensitivity; });
  const bool limited = p.precision.has_quality_budget();
  for (const auto& c : candidates) {
    const double dq = total > 0 ? c.sensitivity * err * double(c.bytes) / total : 0.0;
    if (limited && plan.quality_proxy + dq > p.precision.quality_budget() + 1e-15) {
      ++plan.precision_vetoes;
      continue;
    }
    plan.quality_proxy += dq;
    plan.lowered.insert(c.id);
  }
}

// A weight's split: resident part (whole 4 KiB pages of resident_fraction, lowered or not),
// middle-tier part, home part (prefetched in its layer).
void plan_weight(const ObjectInfo& o, uint32_t id, const OrchestrationParams& p,
                 std::vector<uint64_t>& layer_home, PlacementPlan& plan) {
  PlannedObject& po = plan.objects[id];
  uint64_t resident = static_cast<uint64_t>(std::floor(double(o.size_bytes) * p.resident_fraction));
  resident = resident / 4096 * 4096;
  if (p.resident_fraction >= 1.0) resident = o.size_bytes;
  const bool low = plan.lowered.count(id) != 0;
  if (resident >= o.size_bytes && !low) {
    po.where = PlannedObject::Where::kFast;
    plan.resident_stored_bytes += o.size_bytes;
    return;
  }
  po.where = PlannedObject::Where::kSplit;
  po.resident_bytes = resident;
  po.scale = low ? plan.low_scale : 1.0;
  const uint64_t stored = static_cast<uint64_t>(std::ceil(double(resident) * po.scale));
  po.resident_stored_bytes = resident > 0 ? stored : 0;
  plan.resident_stored_bytes += po.resident_stored_bytes;
  if (resident >= o.size_bytes) return;  // wholly resident, lowered: no home part to prefetch
  if (!p.tier_memory.empty()) {
    uint64_t tier =
        static_cast<uint64_t>(std::floor(double(o.size_bytes) * p.tier_fraction)) / 4096 * 4096;
    if (p.resident_fraction + p.tier_fraction >= 1.0) tier = o.size_bytes;
    po.tier_bytes = std::min(tier, o.size_bytes - resident);
  }
  const uint32_t layer = o.layer.valid() ? o.layer.value() : plan.layers;
  plan.layer_objects[layer].push_back(ObjectId(id));
  layer_home[layer] += o.size_bytes - resident;
}

}  // namespace

bool wirable(ObjectClass cls) {
  return cls == ObjectClass::kWeight || cls == ObjectClass::kEmbedding ||
         cls == ObjectClass::kDraftWeight;
}

std::vector<ObjectId> choose_wired_objects(const ObjectTable& objects,
                                           const std::function<double(const ObjectInfo&)>& reuse,
                                           uint64_t quota_bytes, double* saved_bytes_per_step,
                                           TenantId tenant) {
  std::vector<WiredCandidate> candidates;
  std::vector<ObjectId> ids;
  for (size_t i = 0; i < objects.size(); ++i) {
    const ObjectInfo& o = objects.get(ObjectId(static_cast<uint32_t>(i)));
    if (!wirable(o.cls) || (tenant.valid() && o.tenant != tenant)) continue;
    WiredCandidate c;
    c.name = o.name;
    c.bytes = (o.size_bytes + 4095) / 4096 * 4096;
    c.reuse_per_step = reuse(o);
    c.bytes_saved_per_reuse = double(o.size_bytes);
    c.bind_cost_bytes = o.size_bytes;
    candidates.push_back(c);
    ids.push_back(ObjectId(static_cast<uint32_t>(i)));
  }
  const WiredChoice choice = choose_wired(candidates, quota_bytes);
  std::vector<ObjectId> chosen;
  for (size_t k : choice.chosen)
    chosen.push_back(ids[k]);
  if (saved_bytes_per_step) *saved_bytes_per_step = choice.saved_bytes_per_step;
  return chosen;
}

PlacementPlan plan_placement(const ObjectTable& objects, const OrchestrationParams& p,
                             double weight_bits, uint64_t wired_room_bytes) {
  PlacementPlan plan;
  plan.objects.assign(objects.size(), PlannedObject{});
  // With a residency program the program decides what is wired (residency_program.h).
  if (!p.wired_memory.empty() && p.wired_program.empty() && !p.wired_emit) {
    plan_wired(objects, p, wired_room_bytes, plan);
  }
  for (const auto& o : objects.all()) {
    if (o.layer.valid()) plan.layers = std::max(plan.layers, o.layer.value() + 1);
  }
  plan.layer_objects.assign(plan.layers + 1, {});
  std::vector<uint64_t> layer_home(plan.layers + 1, 0);
  if (p.precision.dtype() != config::DTYPE_UNSPECIFIED) {
    plan_precision(objects, p, weight_bits, plan);
  }
  for (size_t i = 0; i < objects.size(); ++i) {
    const ObjectInfo& o = objects.get(ObjectId(static_cast<uint32_t>(i)));
    PlannedObject& po = plan.objects[i];
    if (po.where == PlannedObject::Where::kWired) continue;
    if (o.cls == ObjectClass::kWeight) {
      plan_weight(o, static_cast<uint32_t>(i), p, layer_home, plan);
      continue;
    }
    // Embedding tables, draft weights and (with kv_resident) KV caches move to the fast memory
    // whole; activations are the engine's.
    const bool kv = o.cls == ObjectClass::kKvCache;
    if ((kv && !p.kv_resident) || o.cls == ObjectClass::kActivation) continue;
    po.where = PlannedObject::Where::kFast;
  }
  for (uint64_t b : layer_home)
    plan.slot_bytes = std::max(plan.slot_bytes, (b + 4095) / 4096 * 4096);
  return plan;
}

}  // namespace tiersim
