// A pool of generic payloads, each with a MovementIntent extension attached once. acquire() and
// release() do not allocate after warm-up; the pool grows only when more payloads are in flight
// than ever before (counted in grown()).
//
// Fast-level payloads are timing-only: the data pointer is null and targets must not touch data.
#pragma once

#include <memory>
#include <tlm>
#include <vector>

#include "models/core/movement_intent.h"
#include "models/core/time.h"

namespace tiersim {

// One range of a scatter-gather read: `offset_bytes` from the payload's address, `bytes` long.
struct GatherPart {
  uint64_t offset_bytes = 0;
  uint64_t bytes = 0;
};

// Timing that the annotated delay cannot carry across a forwarding hop: when the first byte of a
// request's data (a write) reaches the receiver; the delay says when the last one does.
// 0: all of it arrives at the annotated time. Forwarders (links, switches) use it to stream
// data through (cut-through) instead of storing and forwarding whole transfers.
struct StreamTiming : tlm::tlm_extension<StreamTiming> {
  TimePs first_byte_ps = 0;
  // A scatter-gather request (a DMA descriptor with a list of source ranges): `gather_parts`
  // non-overlapping ranges of one target at or after the payload's address, the lowest at it;
  // the payload's length is their total, so [address, address + length) lies within their span
  // (what a switch decodes and a target checks first). The target serves each range as a
  // request of its own, all starting together, in the list's order, and answers when the last
  // is done; a link sends a read request per range (or per max_request_bytes of it). Null: the
  // payload's one range. The list belongs to the initiator and lives while b_transport runs.
  const GatherPart* gather = nullptr;
  uint32_t gather_parts = 0;
  // The initiator's completion timeout (UINT64_MAX: none) and its deadline for this request: a
  // link stall longer than the timeout, or a switch port down past the deadline, fails it.
  TimePs stall_limit_ps = UINT64_MAX;
  TimePs deadline_ps = UINT64_MAX;
  tlm::tlm_extension_base* clone() const override { return new StreamTiming(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const StreamTiming&>(other);
  }
};

class PayloadPool : public tlm::tlm_mm_interface {
 public:
  explicit PayloadPool(size_t initial = 64);
  ~PayloadPool() override;
  PayloadPool(const PayloadPool&) = delete;
  PayloadPool& operator=(const PayloadPool&) = delete;

  // A payload with reference count 1 and a reset intent; release with payload->release().
  tlm::tlm_generic_payload* acquire();
  void free(tlm::tlm_generic_payload* p) override;

  static MovementIntent& intent(tlm::tlm_generic_payload& p);
  static StreamTiming& timing(tlm::tlm_generic_payload& p);
  size_t grown() const { return grown_; }
  size_t in_flight() const { return all_.size() - free_.size(); }

 private:
  void grow(size_t n);
  std::vector<std::unique_ptr<tlm::tlm_generic_payload>> all_;
  std::vector<tlm::tlm_generic_payload*> free_;
  size_t grown_ = 0;
};

}  // namespace tiersim
