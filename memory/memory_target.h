// The base of every memory model (the hbm kind at both levels, ddr, gddr, sram, cxl, nvme): a
// Component that initiators reach through one multi-passthrough TLM target socket (any number
// of initiators may bind; the id is the binding index), with the memory's tier, its capacity and
// the counts every memory keeps.
//
// Contract of b_transport (blocking, loosely timed):
// - [address, address + length) must be non-empty and lie in [0, capacity_bytes); otherwise the
//   response is TLM_ADDRESS_ERROR_RESPONSE, the model is not called and nothing is counted.
// - The model's serve() gets the component-local address, the length, the direction (a write, or
//   else a read: the initiators send only reads and writes) and the start time (now plus the
//   annotated delay), and returns when the request's last byte is done. serve() is the model's
//   timing, and only that: it must not change the delay or the response.
// - Then b_transport counts: one request (when the model has a per-request counter), the bytes
//   read or written, and done - start in ns (when the model registered a latency histogram);
//   sets the annotated delay to done - now (never negative) and responds TLM_OK_RESPONSE.
// - A model that depends on another memory (an NVMe drive's bounce memory) may return kRefused
//   from serve() when it cannot serve the request (that memory offline until the end of the
//   run): b_transport then refuses it as an offline device would (TLM_GENERIC_ERROR_RESPONSE,
//   requests_refused, no bytes). Such a model calls allow_refusals() from its constructor.
// Energy is Component's: the bytes read and written (these counters) x energy_pj_per_unit, and
// static power; the kind factories set both (with_energy).
// Stats, in registration order: the count (optional; "requests" for most models), bytes_read,
// bytes_written; then the model's own, with the latency histogram where the model registers it
// (register_latency), so each model keeps its own order of stats.
// Fidelity: none of its own; the timing is serve()'s. Cost per request: the one virtual call to
// serve(), no allocation.
#pragma once

#include <tlm_utils/multi_passthrough_target_socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/core/component.h"
#include "models/core/fault_windows.h"
#include "models/core/stats.h"

namespace tiersim {

class MemoryTarget : public Component {
 public:
  // The counter registered before the byte counters.
  struct CountStat {
    const char* name = nullptr;  // no counter when null
    const char* description = "";
    // True: b_transport adds one per request served. False: the model adds to it (count()).
    bool per_request = true;
  };

  tlm_utils::multi_passthrough_target_socket<MemoryTarget> socket;

  // `name` is the sc_module_name the most-derived constructor received; `capacity_bytes` bounds
  // the local addresses served. Registers the count (when named) and the byte counters.
  MemoryTarget(const sc_core::sc_module_name& name, Context& ctx, std::string kind, Tier tier,
               uint64_t capacity_bytes, const CountStat& count);

  Tier tier() const final { return tier_; }
  TargetSocket* target_socket() final { return &socket; }
  uint64_t bytes_read() const final { return bytes_read_.value(); }
  uint64_t bytes_written() const final { return bytes_written_.value(); }
  uint64_t capacity_bytes() const { return capacity_bytes_; }

  // b_transport's service and counting without the payload (Component::serve_direct); the
  // socket's b_transport calls it too, so both paths are one.
  bool serves_direct() const final { return true; }
  tlm::tlm_response_status serve_direct(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps,
                                        const GatherPart* gather, uint32_t gather_parts,
                                        TimePs* done_ps) final;

  // serve()'s answer when the model cannot serve the request (see the contract above).
  static constexpr TimePs kRefused = UINT64_MAX;

 protected:
  // The model's timing of [addr, addr + bytes) (component-local, in range) starting at
  // `start_ps`: returns when its last byte is done (not before `start_ps`).
  virtual TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) = 0;

  // Registers the histogram of done - start (ns) that b_transport records into; at most once,
  // from the model's constructor, at the place in its stats where it belongs.
  void register_latency(const std::string& name, const std::string& description,
                        std::vector<double> edges);
  // The count named in the constructor (for a model that counts it itself).
  Counter& count() { return *count_; }
  // Registers requests_refused (when the memory has no offline windows of its own): serve() may
  // return kRefused.
  void allow_refusals();

 private:
  void b_transport(int id, tlm::tlm_generic_payload& p, sc_core::sc_time& delay);

  const Tier tier_;
  const uint64_t capacity_bytes_;
  const bool count_per_request_;
  Counter* count_;  // null when the model has none
  Counter& bytes_read_;
  Counter& bytes_written_;
  Histogram* latency_ = nullptr;  // null until (unless) the model registers it
  // system.faults device_offline windows of this memory: a request starting inside one is
  // refused (TLM_GENERIC_ERROR_RESPONSE, answered at once) and counted in requests_refused,
  // never served or counted in bytes.
  std::vector<FaultWindow> offline_;
  Counter* refused_ = nullptr;  // registered only when the memory has offline windows, or
                                // allow_refusals()
};

}  // namespace tiersim
