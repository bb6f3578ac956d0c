// The `nvme` component: an NVMe SSD in the system graph (the NvmeModel core of memory/nvme.h
// behind a TLM target socket), reached over a link (PCIe) like any memory.
//
// Paths: direct (peer to peer, GPUDirect-Storage style): each command's data leaves the drive
// for the link as it completes. Bounce (`bounce_memory`): each command's data is written into a
// staging area of that memory and read back before it goes on (host DRAM's copy), through the
// memory's own TLM socket, so the copy takes that memory's bandwidth from everything else using
// it; writes to the drive stage the same way before the drive writes them.
// Fidelity: fast (the core's: queue slots, dispatch IOPS, media latency, bandwidth per
// direction). Left out: the host CPU's copy cost beyond the memory traffic, the file system,
// page-cache effects.
#pragma once

#include <tlm_utils/multi_passthrough_initiator_socket.h>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include <string>
#include <utility>
#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/nvme.h"
#include "models/core/component.h"
#include "models/core/stats.h"

namespace tiersim {

class NvmeDrive : public Component {
 public:
  tlm_utils::multi_passthrough_target_socket<NvmeDrive> socket;
  // Bound in prepare() to the bounce memory, when there is one.
  tlm_utils::multi_passthrough_initiator_socket<NvmeDrive, 32, tlm::tlm_base_protocol_types, 1,
                                                sc_core::SC_ZERO_OR_MORE_BOUND>
      bounce;

  NvmeDrive(sc_core::sc_module_name name, const config::Nvme& c, Context& ctx);

  Tier tier() const override { return Tier::kNvme; }
  TargetSocket* target_socket() override { return &socket; }
  void prepare() override;
  uint64_t bytes_read() const override { return bytes_read_.value(); }
  uint64_t bytes_written() const override { return bytes_written_.value(); }

 private:
  void b_transport(int id, tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
  // One command's copy through the bounce area: written at `ready`, then read; returns when
  // the read is done.
  TimePs stage(uint64_t bytes, TimePs ready);

  NvmeModel model_;
  const uint64_t capacity_bytes_;
  const std::string bounce_memory_;
  const uint64_t bounce_bytes_;
  uint64_t bounce_base_ = 0, bounce_next_ = 0;         // target-local staging area, rotating
  std::vector<std::pair<TimePs, uint64_t>> commands_;  // scratch
  Counter& commands_count_;
  Counter& bytes_read_;
  Counter& bytes_written_;
  Counter& bounce_bytes_moved_;
  Histogram& latency_ns_;
};

}  // namespace tiersim
