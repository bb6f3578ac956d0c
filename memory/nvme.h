// An NVMe SSD's timing core (plain C++), for the offload tier: a request of n bytes splits into
// commands of at most max_transfer_bytes; each command takes the earliest free of queue_depth
// slots, waits for a dispatch slot (the controller starts at most `iops` commands per second
// per direction), pays the media latency, then moves its data through the drive's bandwidth
// (one server per direction, first come first served). A queue slot frees when its command
// completes. Fidelity: fast; no FTL, garbage collection or write cliff; reads and writes do not
// interfere beyond the shared queue slots.
//
// Two paths to an accelerator (path_read): direct (GPUDirect-style: SSD -> link -> device) and
// bounce (SSD -> host DRAM, then host DRAM -> link -> device), each command store-and-forward,
// commands pipelined.
#pragma once

#include <cstdint>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/bandwidth_server.h"
#include "models/core/time.h"

namespace tiersim {

struct NvmeParams {
  double read_bytes_per_s = 0, write_bytes_per_s = 0;
  double read_iops = 0, write_iops = 0;
  TimePs read_latency_ps = 0, write_latency_ps = 0;
  uint32_t queue_depth = 1;
  uint64_t max_transfer_bytes = 131072;
  double energy_pj_per_bit = 0;

  static void validate(const config::Nvme& c, Validator& v);
  static NvmeParams from_config(const config::Nvme& c);
};

class NvmeModel {
 public:
  explicit NvmeModel(const NvmeParams& p);

  // Returns when the last command of the request completes; `command_done` (optional)
  // receives each command's completion time and size, in order.
  TimePs read(TimePs start_ps, uint64_t bytes,
              std::vector<std::pair<TimePs, uint64_t>>* command_done = nullptr);
  TimePs write(TimePs start_ps, uint64_t bytes,
               std::vector<std::pair<TimePs, uint64_t>>* command_done = nullptr);

  uint64_t commands() const { return commands_; }
  uint64_t bytes() const { return bytes_; }
  double energy_j() const { return double(bytes_) * 8.0 * p_.energy_pj_per_bit * 1e-12; }
  const NvmeParams& params() const { return p_; }

 private:
  TimePs submit(TimePs start_ps, uint64_t bytes, bool write,
                std::vector<std::pair<TimePs, uint64_t>>* done);

  NvmeParams p_;
  std::vector<TimePs> slots_;  // when each queue slot frees
  BandwidthServer read_bw_, write_bw_, read_ops_, write_ops_;
  uint64_t commands_ = 0, bytes_ = 0;
};

// A hop after the drive: a first-come-first-served server with a fixed latency (a link, or host
// DRAM's write-then-read).
struct PathHop {
  double bytes_per_s = 0;
  TimePs latency_ps = 0;
};

// Reads `bytes` from the drive to the device through `hops`, store-and-forward per command:
// each command enters hop i when it left hop i - 1 (and the hop is free). Returns when the last
// byte reached the device.
TimePs path_read(NvmeModel& drive, std::vector<BandwidthServer>& hop_servers,
                 const std::vector<PathHop>& hops, TimePs start_ps, uint64_t bytes);

}  // namespace tiersim
