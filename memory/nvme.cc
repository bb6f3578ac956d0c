#include "memory/nvme.h"
#include "models/config/energy_checks.h"

#include <algorithm>

namespace tiersim {

void NvmeParams::validate(const config::Nvme& c, Validator& v) {
  v.positive("read_bytes_per_s", c.has_read_bytes_per_s(), c.read_bytes_per_s());
  v.positive("write_bytes_per_s", c.has_write_bytes_per_s(), c.write_bytes_per_s());
  v.positive("read_iops", c.has_read_iops(), c.read_iops());
  v.positive("write_iops", c.has_write_iops(), c.write_iops());
  v.require("read_latency_ps", c.has_read_latency_ps());
  v.require("write_latency_ps", c.has_write_latency_ps());
  if (v.positive("queue_depth", c.has_queue_depth(), c.queue_depth()) && c.queue_depth() > 65536) {
    v.error("queue_depth", "at most 65536 (the NVMe limit per queue)");
  }
  v.positive("max_transfer_bytes", c.has_max_transfer_bytes(),
             static_cast<double>(c.max_transfer_bytes()));
  energy_field(v, "energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
}

NvmeParams NvmeParams::from_config(const config::Nvme& c) {
  NvmeParams p;
  p.read_bytes_per_s = c.read_bytes_per_s();
  p.write_bytes_per_s = c.write_bytes_per_s();
  p.read_iops = c.read_iops();
  p.write_iops = c.write_iops();
  p.read_latency_ps = c.read_latency_ps();
  p.write_latency_ps = c.write_latency_ps();
  p.queue_depth = c.queue_depth();
  p.max_transfer_bytes = c.max_transfer_bytes();
  p.energy_pj_per_bit = c.energy_pj_per_bit();
  return p;
}

NvmeModel::NvmeModel(const NvmeParams& p)
    : p_(p),
      slots_(p.queue_depth, 0),
      read_bw_(p.read_bytes_per_s),
      write_bw_(p.write_bytes_per_s),
      read_ops_(p.read_iops),  // one "byte" per command: 1/iops seconds each
      write_ops_(p.write_iops) {}

TimePs NvmeModel::submit(TimePs start_ps, uint64_t bytes, bool write,
                         std::vector<std::pair<TimePs, uint64_t>>* done) {
  TimePs last = start_ps;
  for (uint64_t off = 0; off < bytes;) {
    const uint64_t n = std::min(p_.max_transfer_bytes, bytes - off);
    auto slot = std::min_element(slots_.begin(), slots_.end());
    const TimePs issue = std::max(start_ps, *slot);
    const TimePs latency = write ? p_.write_latency_ps : p_.read_latency_ps;
    // The controller dispatches at most `iops` commands per second: a command starts when its
    // dispatch slot begins (the slot's length is 1 / iops), pays the media latency, then its
    // data moves through the drive's bandwidth.
    BandwidthServer& ops = write ? write_ops_ : read_ops_;
    const TimePs dispatch = ops.reserve(issue, 1) - transfer_time_ps(1, ops.rate_bytes_per_s());
    const TimePs complete = (write ? write_bw_ : read_bw_).reserve(dispatch + latency, n);
    *slot = complete;
    last = std::max(last, complete);
    ++commands_;
    bytes_ += n;
    if (done) done->push_back({complete, n});
    off += n;
  }
  return last;
}

TimePs NvmeModel::read(TimePs start_ps, uint64_t bytes,
                       std::vector<std::pair<TimePs, uint64_t>>* command_done) {
  return submit(start_ps, bytes, false, command_done);
}

TimePs NvmeModel::write(TimePs start_ps, uint64_t bytes,
                        std::vector<std::pair<TimePs, uint64_t>>* command_done) {
  return submit(start_ps, bytes, true, command_done);
}

TimePs path_read(NvmeModel& drive, std::vector<BandwidthServer>& hop_servers,
                 const std::vector<PathHop>& hops, TimePs start_ps, uint64_t bytes) {
  std::vector<std::pair<TimePs, uint64_t>> commands;
  drive.read(start_ps, bytes, &commands);
  TimePs last = start_ps;
  for (const auto& [ready, n] : commands) {
    TimePs t = ready;
    for (size_t h = 0; h < hops.size(); ++h)
      t = hop_servers[h].reserve(t, n) + hops[h].latency_ps;
    last = std::max(last, t);
  }
  return last;
}

}  // namespace tiersim
