// What a movement mechanism is to the controller (orchestrator.h): a file of its own behind this
// interface, given the controller's core (decisions, copies, placement, shared counters) at
// construction. The controller calls every mechanism's hooks in a fixed order (context regions,
// object cache, layer prefetch, page cache) and asks the one that owns an object's bytes where
// they are (locate). Adding a mechanism is a new file, a member of this interface and a line in
// the controller's construction, not an edit of the others.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/core/ids.h"
#include "models/core/objects.h"
#include "models/core/op.h"
#include "models/core/summary.h"
#include "models/core/time.h"

namespace tiersim {

// Where the bytes of one read come from (the compute engine's view of a tile).
enum class ReadPath : uint8_t { kResident, kStaged, kDemand, kWired };

// Which mechanism asked the controller for a decision, and what about (the summary counts
// decisions by both). kPrefetch: a copy ahead of use (a layer's home bytes, a predicted object,
// a context region promoted or copied up after a skip); kAdmission: a demand miss, admitted
// (with the evictions that make room) or bypassed; kCompaction: extents relocated to open room;
// kRestore: a sequence's KV at home restored by transfer or by recompute (the arbiter's choice);
// kBind, kRelease, kQuota: a residency program's directive applied to one object (BIND or
// SOFT_PIN; RELEASE or UNPIN) or to the quota.
enum class DecisionMechanism : uint8_t {
  kLayerPrefetch,
  kPageCache,
  kObjectCache,
  kContextRegions,
  kKvRestore,
  kResidencyProgram,
  kCount
};
enum class DecisionKind : uint8_t {
  kPrefetch,
  kAdmission,
  kCompaction,
  kRestore,
  kBind,
  kRelease,
  kQuota,
  kCount
};
const char* decision_mechanism_name(DecisionMechanism m);
const char* decision_kind_name(DecisionKind k);
struct ReadSource {
  uint64_t address = 0;  // global
  uint64_t bytes = 0;    // contiguous bytes available there, from the asked offset
  TimePs ready_ps = 0;   // when the consumer may start reading them
  TimePs landed_ps = 0;  // when the data landed (<= ready_ps; the rest is notification)
  // When the controller's decision for these bytes was taken (0: none): a wait before it is
  // control stall, after it data (until landed_ps) and notification (until ready_ps).
  TimePs decided_ps = 0;
  ReadPath path = ReadPath::kDemand;
  bool pending = false;               // a decided copy not issued yet: ask again at ready_ps
  double scale = 1.0;                 // bytes stored per logical byte (a lower-precision copy)
  double dequant_flops_per_byte = 0;  // per logical byte read
  uint64_t admit_address = 0;         // a cache miss admitted: copy the tile here once it landed
  bool skip = false;                  // context regions: the consumer attends without these bytes

  // The read waits for a decision taken at `decided` (no earlier than it was ready anyway).
  void wait_for_decision(TimePs decided) {
    decided_ps = std::max(decided_ps, decided);
    landed_ps = std::max(landed_ps, decided);
    ready_ps = std::max(ready_ps, decided);
  }
};

class MovementMechanism {
 public:
  virtual ~MovementMechanism() = default;

  // Reserves its areas (the controller placed every object before; throws ConfigError when a
  // memory has no room).
  virtual void prepare() {}
  // A step begins (before its first op).
  virtual void on_step_start(uint32_t step) {}
  // The engine starts `op` at `now` (triggers: layer-ahead copies, window moves).
  virtual void on_op_start(const Op& op, TimePs now) {}
  // Issues the copies decided by `now`; returns the next one's decision time (0: none).
  virtual TimePs issue_due(TimePs now) { return 0; }
  // Where bytes [offset, offset + max_bytes) of `object` are for a read at `now`, if this
  // mechanism holds them; false: the controller's placement answers.
  virtual bool locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes,
                      TimePs now, ReadSource& out) {
    return false;
  }
  // Bytes it copied ahead that nobody read (for the controller's prefetch accuracy).
  virtual uint64_t unused_prefetch_bytes() const { return 0; }
  // Its own summary items; `per_token` is 1 / tokens (0 without tokens).
  virtual void summarize(std::vector<SummaryItem>& out, double per_token) const {}
};

}  // namespace tiersim
