// Strong index types: an id of one kind cannot be passed where another is expected.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>

namespace tiersim {

// A typed wrapper over an unsigned integer. Tag makes each instantiation a distinct type.
template <typename Tag, typename Rep = uint32_t>
class StrongId {
 public:
  using rep_type = Rep;
  static constexpr Rep kInvalid = std::numeric_limits<Rep>::max();

  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : value_(v) {}
  constexpr Rep value() const { return value_; }
  constexpr bool valid() const { return value_ != kInvalid; }

  friend constexpr bool operator==(StrongId a, StrongId b) { return a.value_ == b.value_; }
  friend constexpr bool operator!=(StrongId a, StrongId b) { return a.value_ != b.value_; }
  friend constexpr bool operator<(StrongId a, StrongId b) { return a.value_ < b.value_; }

 private:
  Rep value_ = kInvalid;
};

using ObjectId = StrongId<struct ObjectIdTag>;
using OpId = StrongId<struct OpIdTag, uint64_t>;
using LayerId = StrongId<struct LayerIdTag>;
using StepIndex = StrongId<struct StepIndexTag>;
using StackId = StrongId<struct StackIdTag>;
using ComponentId = StrongId<struct ComponentIdTag>;
// A workload sharing the accelerator (config tenancy): 0 is the primary, then tenancy.tenants.
using TenantId = StrongId<struct TenantIdTag, uint16_t>;

}  // namespace tiersim

namespace std {
template <typename Tag, typename Rep>
struct hash<tiersim::StrongId<Tag, Rep>> {
  size_t operator()(tiersim::StrongId<Tag, Rep> id) const { return std::hash<Rep>()(id.value()); }
};
}  // namespace std
