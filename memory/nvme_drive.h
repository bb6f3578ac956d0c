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
// Faults: a command's copy through the bounce memory waits while that memory is offline
// (bounce_offline_waits); when it is offline until the end of the run the drive cannot deliver
// the request and refuses it (MemoryTarget::kRefused: requests_refused, no bytes). The commands
// copied before count in bounce_bytes; a command written into the bounce memory but never read
// back counts in bounce_bytes_unread.
// TLM target, range check and counts: MemoryTarget's; `commands` (the count the base registers
// first) counts NVMe commands, which this model adds itself.
#pragma once

#include <tlm_utils/multi_passthrough_initiator_socket.h>

#include <string>
#include <utility>
#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/memory_target.h"
#include "memory/nvme.h"
#include "models/core/fault_windows.h"
#include "models/core/stats.h"

namespace tiersim {

class NvmeDrive : public MemoryTarget {
 public:
  // Bound in prepare() to the bounce memory, when there is one.
  tlm_utils::multi_passthrough_initiator_socket<NvmeDrive, 32, tlm::tlm_base_protocol_types, 1,
                                                sc_core::SC_ZERO_OR_MORE_BOUND>
      bounce;

  NvmeDrive(sc_core::sc_module_name name, const config::Nvme& c, Context& ctx);

  void prepare() override;

 protected:
  // Splits the request into commands (and stages each through the bounce memory, when there is
  // one); counts the commands.
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) override;

 private:
  // One command's copy through the bounce area: written at `ready`, then read; returns when
  // the read is done (kRefused: the bounce memory is offline until the end of the run).
  TimePs stage(uint64_t bytes, TimePs ready);

  NvmeModel model_;
  const std::string bounce_memory_;
  const uint64_t bounce_bytes_;
  uint64_t bounce_base_ = 0, bounce_next_ = 0;         // target-local staging area, rotating
  std::vector<std::pair<TimePs, uint64_t>> commands_;  // scratch
  Counter& bounce_bytes_moved_;
  // system.faults: when the bounce memory is offline; the counts registered only when it has
  // offline windows.
  std::vector<FaultWindow> bounce_offline_;
  Counter* bounce_waits_ = nullptr;
  Counter* bounce_unread_ = nullptr;
};

}  // namespace tiersim
