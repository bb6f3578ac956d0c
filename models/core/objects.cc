#include "models/core/objects.h"

namespace tiersim {

const char* object_class_name(ObjectClass c) {
  switch (c) {
    case ObjectClass::kWeight:
      return "weight";
    case ObjectClass::kEmbedding:
      return "embedding";
    case ObjectClass::kKvCache:
      return "kv_cache";
    case ObjectClass::kActivation:
      return "activation";
    case ObjectClass::kDraftWeight:
      return "draft_weight";
  }
  return "unknown";
}

const char* tier_name(Tier t) {
  switch (t) {
    case Tier::kNone:
      return "none";
    case Tier::kSram:
      return "sram";
    case Tier::kHbm:
      return "hbm";
    case Tier::kDdr:
      return "ddr";
    case Tier::kCxl:
      return "cxl";
    case Tier::kNvme:
      return "nvme";
  }
  return "unknown";
}

ObjectId ObjectTable::add(std::string name, ObjectClass cls, uint64_t size_bytes, LayerId layer,
                          ObjectIntent intent) {
  ObjectId id(static_cast<uint32_t>(objects_.size()));
  ObjectInfo o;
  o.name = name_prefix_.empty() ? std::move(name) : name_prefix_ + name;
  o.tenant = tenant_;
  o.cls = cls;
  o.size_bytes = size_bytes;
  o.layer = layer;
  o.intent = intent;
  objects_.push_back(std::move(o));
  return id;
}

uint64_t ObjectTable::total_bytes() const {
  uint64_t t = 0;
  for (const auto& o : objects_)
    t += o.size_bytes;
  return t;
}

uint64_t ObjectTable::total_bytes(ObjectClass cls) const {
  uint64_t t = 0;
  for (const auto& o : objects_) {
    if (o.cls == cls) t += o.size_bytes;
  }
  return t;
}

}  // namespace tiersim
