#include "memory/memory_target.h"

#include <algorithm>
#include <stdexcept>

#include "models/core/context.h"
#include "models/core/payload_pool.h"

namespace tiersim {

MemoryTarget::MemoryTarget(const sc_core::sc_module_name& name, Context& ctx, std::string kind,
                           Tier tier, uint64_t capacity_bytes, const CountStat& count)
    : Component(name, ctx, std::move(kind)),
      socket("socket"),
      tier_(tier),
      capacity_bytes_(capacity_bytes),
      count_per_request_(count.name != nullptr && count.per_request),
      count_(count.name != nullptr
                 ? &ctx.stats().counter(basename(), count.name, count.description, "count")
                 : nullptr),
      bytes_read_(ctx.stats().counter(basename(), "bytes_read", "bytes read", "bytes")),
      bytes_written_(ctx.stats().counter(basename(), "bytes_written", "bytes written", "bytes")) {
  socket.register_b_transport(this, &MemoryTarget::b_transport);
  offline_ = offline_windows(ctx.config().system(), basename());
  if (!offline_.empty()) allow_refusals();
}

void MemoryTarget::allow_refusals() {
  if (refused_ != nullptr) return;
  refused_ =
      &ctx().stats().counter(basename(), "requests_refused",
                             "requests refused while the device (or a memory it depends on) was "
                             "offline",
                             "count");
}

void MemoryTarget::register_latency(const std::string& name, const std::string& description,
                                    std::vector<double> edges) {
  if (latency_ != nullptr) {
    throw std::logic_error(std::string(this->name()) + ": latency histogram registered twice");
  }
  latency_ = &ctx().stats().histogram(basename(), name, description, "ns", std::move(edges));
}

void MemoryTarget::b_transport(int, tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
  const TimePs now = now_ps();
  const StreamTiming* timing = p.get_extension<StreamTiming>();
  TimePs done = 0;
  const tlm::tlm_response_status status =
      serve_direct(p.get_address(), p.get_data_length(), p.is_write(), now + to_ps(delay),
                   timing != nullptr ? timing->gather : nullptr,
                   timing != nullptr ? timing->gather_parts : 0, &done);
  p.set_response_status(status);
  if (status == tlm::TLM_OK_RESPONSE) delay = to_sc_time(done > now ? done - now : 0);
}

tlm::tlm_response_status MemoryTarget::serve_direct(uint64_t addr, uint64_t bytes, bool write,
                                                    TimePs start, const GatherPart* gather,
                                                    uint32_t gather_parts, TimePs* done_ps) {
  if (bytes == 0 || addr >= capacity_bytes_ || bytes > capacity_bytes_ - addr) {
    return tlm::TLM_ADDRESS_ERROR_RESPONSE;
  }
  if (refused_ != nullptr && online_after(offline_, start) != start) {
    refused_->inc();
    return tlm::TLM_GENERIC_ERROR_RESPONSE;
  }
  TimePs done = 0;
  if (gather_parts > 0) {
    // A scatter-gather request: every range in range first, then each served as a request of
    // its own from `start`; answered when the last is done. Each range served counts its bytes,
    // so a refusal after some (an NVMe drive's bounce memory gone mid-list) leaves them counted
    // as served for the initiator's lost bytes.
    uint64_t total = 0;
    for (uint32_t i = 0; i < gather_parts; ++i) {
      const GatherPart& g = gather[i];
      if (g.bytes == 0 || g.offset_bytes >= capacity_bytes_ - addr ||
          g.bytes > capacity_bytes_ - addr - g.offset_bytes) {
        return tlm::TLM_ADDRESS_ERROR_RESPONSE;
      }
      total += g.bytes;
    }
    if (total != bytes) throw std::logic_error(std::string(name()) + ": gather length mismatch");
    for (uint32_t i = 0; i < gather_parts; ++i) {
      const GatherPart& g = gather[i];
      const TimePs d = serve(addr + g.offset_bytes, g.bytes, write, start);
      if (d == kRefused) {
        if (refused_ == nullptr)
          throw std::logic_error(std::string(name()) + ": refused a request");
        refused_->inc();
        return tlm::TLM_GENERIC_ERROR_RESPONSE;
      }
      done = std::max(done, d);
      (write ? bytes_written_ : bytes_read_).inc(g.bytes);
      if (count_per_request_) count_->inc();
      if (latency_ != nullptr) latency_->record(static_cast<double>(d - start) / kPsPerNs);
    }
    *done_ps = done;
    return tlm::TLM_OK_RESPONSE;
  }
  done = serve(addr, bytes, write, start);
  if (done == kRefused) {
    if (refused_ == nullptr) throw std::logic_error(std::string(name()) + ": refused a request");
    refused_->inc();
    return tlm::TLM_GENERIC_ERROR_RESPONSE;
  }
  if (count_per_request_) count_->inc();
  (write ? bytes_written_ : bytes_read_).inc(bytes);
  if (latency_ != nullptr) latency_->record(static_cast<double>(done - start) / kPsPerNs);
  *done_ps = done;
  return tlm::TLM_OK_RESPONSE;
}

}  // namespace tiersim
