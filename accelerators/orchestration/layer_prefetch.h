// Layer-ahead prefetch of the weights' home parts (with the DPU's DDR buffer), a mechanism of the
// movement controller (mechanism.h).
//
// The first op of layer L triggers layer L + k (prefetch_layers; the final norm and LM head are
// a virtual last layer, targets wrap into the next step). Each object's copy is one decision (a
// descriptor; with a residency map, looked up first: a miss takes the software path), off the
// critical path; decisions queue on the controller's servers, so with one server a layer of n
// weight objects costs n decision latencies.
// A decided copy is issued at its decision time; a consumer that reaches it earlier waits for
// it, one that reaches it before it landed waits for the landing and the notification. A
// layer's copies live in one of k + 1 slots of a staging area in the fast memory, reused round
// robin (a copy whose slot was reused is gone: its bytes are read from home). With signed
// descriptors, a share of the copies is rejected at the fabric (read from home on demand).
//
// The DPU buffer (dpu_buffer): the DPU's DMA first copies each layer's home parts into slots of
// the DPU's own memory K layers ahead (K > k, on the same controller); the layer-ahead copy then
// reads from there once that copy landed (peer to peer), or from home when it was not issued.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "accelerators/orchestration/mechanism.h"
#include "accelerators/policies/residency_map.h"
#include "models/core/stats.h"

namespace tiersim {

class DmaEngine;
class Orchestrator;

class LayerPrefetch final : public MovementMechanism {
 public:
  explicit LayerPrefetch(Orchestrator& core);

  void prepare() override;
  void on_op_start(const Op& op, TimePs now) override;
  TimePs issue_due(TimePs now) override;
  // A staged copy of the object's home part whose slot is still its own.
  bool locate(ObjectId object, const ObjectInfo& o, uint64_t offset, uint64_t max_bytes, TimePs now,
              ReadSource& out) override;
  uint64_t unused_prefetch_bytes() const override;
  void summarize(std::vector<SummaryItem>& out, double per_token) const override;

 private:
  struct Staged {
    uint64_t address = 0;         // global address of byte `resident_bytes` of the object
    uint64_t resident_bytes = 0;  // the object's resident part (the copy starts after it)
    // Decided (with the descriptor's verification); issued no earlier than issue_ps (the
    // decision, or the landing of its copy in the DPU's buffer); landed; usable.
    TimePs decided_ps = 0, issue_ps = 0, landed_ps = 0, ready_ps = 0;
    bool issued = false;
    bool used = false;        // read at least once before its slot was reused
    uint64_t bytes = 0;       // copied
    uint64_t generation = 0;  // the trigger that staged it (stale after the slot is reused)
    TimePs trigger_ps = 0;
  };
  struct Buffered {
    uint64_t address = 0;  // global, in the buffer memory
    TimePs decided_ps = 0, landed_ps = 0;
    bool issued = false;
    uint64_t generation = 0;
  };
  // Slots reused round robin: each claim starts a new generation of its slot, and a copy tagged
  // with an older generation than its slot's is gone.
  struct SlotRing {
    std::vector<uint64_t> base;        // global addresses
    std::vector<uint64_t> generation;  // each slot's current generation
    uint64_t last = 0;                 // generations handed out
    void add(uint64_t address) {
      base.push_back(address);
      generation.push_back(0);
    }
    bool empty() const { return base.empty(); }
    // The next slot: its index and its new generation.
    std::pair<size_t, uint64_t> claim() {
      const size_t slot = last % base.size();
      generation[slot] = ++last;
      return {slot, last};
    }
    bool current(uint64_t g) const { return generation[(g - 1) % base.size()] == g; }
  };
  void prefetch_layer(uint32_t layer, TimePs trigger);
  // Stage 1 into the DPU's buffer: decisions and copies of `layer`'s home parts.
  void buffer_layer(uint32_t layer, TimePs trigger);
  TimePs issue_buffer_copies(TimePs now);
  // Issues the staged copies decided by `now`; the next decision time (0: none).
  TimePs issue_staged_copies(TimePs now);
  // The DPU buffer's copy of `object` that the staged copy may read, or nullptr (a stage-1 copy
  // not issued by now is cancelled). Sets `wait_until` when that copy has not landed yet.
  const Buffered* buffered_source(ObjectId object, TimePs now, TimePs& wait_until);

  Orchestrator& core_;
  uint32_t last_layer_ = UINT32_MAX;
  // The staging area.
  std::unordered_map<uint32_t, Staged> staged_;  // by object id
  SlotRing slots_;                               // the staging area in the fast memory
  std::vector<ObjectId> queue_;                  // decided copies in decision order, not issued yet
  size_t queue_head_ = 0;
  uint64_t unused_bytes_ = 0;  // copies replaced before anyone read them
  // The DPU's buffer.
  DmaEngine* buffer_dma_ = nullptr;
  std::unordered_map<uint32_t, Buffered> buffered_;  // by object id: its latest stage-1 copy
  SlotRing buffer_slots_;                            // in the DPU's memory
  std::vector<std::pair<uint32_t, uint64_t>> buffer_queue_;  // (object id, generation)
  size_t buffer_queue_head_ = 0;

  Counter& rejected_;
  Counter& buffer_bytes_;
  Counter& buffer_sourced_bytes_;
  Counter& buffer_bypassed_bytes_;
};

}  // namespace tiersim
