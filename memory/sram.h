// On-package SRAM used as a scratchpad of staging buffers.
//
// What is modelled: one array (a read port and a write port, each a bandwidth server, plus a
// fixed access latency), or `regions`, each with `banks` banks interleaved every
// bank_interleave_bytes, each bank with its own read and write port (the region's bandwidth
// shared equally) and the region's latency. Regions may sit on other chiplets of a mesh: a
// request to one crosses |dx| + |dy| hops each way (hop_latency_ps) and its data crosses that
// chiplet's mesh port (link_bytes_per_s per direction). A request spanning regions or banks is
// split; it completes when its last part does. Capacity bounds what the address map and staging
// buffers may use. The scratchpad legality state machine of the buffers is
// accelerators/policies/staging_buffers (the compute engine drives it); cache mode and wired
// residency are the SramCache core (memory/sram_cache.h). Fidelity: fast. Requests reserved with a
// future start fill a server's idle gaps or queue (models/core/bandwidth_server.h). Left out: bank
// conflicts below the interleave granule, the mesh's intermediate links (only the remote chiplet's
// port is a server), per-hop contention.
// TLM target, range check and byte counts: MemoryTarget's. Stats (in this order): bytes_read,
// bytes_written, bytes_by_region, read_utilization, write_utilization.
#pragma once

#include <utility>
#include <vector>

#include "configs/tiersim.pb.h"
#include "memory/memory_target.h"
#include "models/config/errors.h"
#include "models/core/bandwidth_server.h"
#include "models/core/stats.h"

namespace tiersim {

struct SramRegionParams {
  std::string name;
  uint64_t base_bytes = 0, capacity_bytes = 0;
  uint32_t chiplet = 0, banks = 1;
  uint64_t bank_interleave_bytes = 256;
  double read_bandwidth_bytes_per_s = 0, write_bandwidth_bytes_per_s = 0;
  TimePs latency_ps = 0;
};

struct SramParams {
  uint64_t capacity_bytes;
  double read_bandwidth_bytes_per_s;  // of the whole SRAM (the sum over regions)
  double write_bandwidth_bytes_per_s;
  TimePs latency_ps;                      // of the first region
  std::vector<SramRegionParams> regions;  // one when the config gives none
  uint32_t mesh_columns = 1, home_chiplet = 0;
  TimePs hop_latency_ps = 0;
  double mesh_link_bytes_per_s = 0;
  // Energy beyond the array's pJ/bit (the component's default account): wires of global
  // accesses, and local buffers' own rate (< 0: not set, local buffers pay as global accesses).
  double wire_pj_per_bit = 0;
  double local_pj_per_bit = -1;

  // Mesh hops from the home chiplet to `chiplet`.
  uint32_t hops(uint32_t chiplet) const;

  static void validate(const config::Sram& c, Validator& v);
  static SramParams from_config(const config::Sram& c);
};

class Sram : public MemoryTarget {
 public:
  Sram(sc_core::sc_module_name name, const SramParams& params, Context& ctx);

  const SramParams& params() const { return params_; }

  // Energy (docs/models/power.md): global accesses pay the array (sram_array) and the wires
  // (sram_wires), accesses inside a marked local buffer pay local_pj_per_bit (local_sram);
  // leakage is the static power (sram_leakage).
  void mark_local_buffer(uint64_t local_address, uint64_t bytes) override;
  void add_energy(TimePs now_ps, EnergyLedger& out) const override;
  bool has_energy() const override {
    return Component::has_energy() || params_.wire_pj_per_bit > 0 || params_.local_pj_per_bit > 0;
  }

 protected:
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) override {
    if (!local_.empty()) local_bytes_ += local_part(addr, bytes);
    return params_.regions.size() == 1 ? serve_region(0, addr, bytes, write, start_ps)
                                       : serve_regions(addr, bytes, write, start_ps);
  }

 private:
  // Serves the regions [addr, addr + bytes) touches, each from `start`; returns when the last
  // part is done.
  TimePs serve_regions(uint64_t addr, uint64_t bytes, bool write, TimePs start);
  // Serves [local, local + bytes) of region r from `start`; returns when its last byte is done.
  TimePs serve_region(size_t r, uint64_t local, uint64_t bytes, bool write, TimePs start);

  struct Bank {
    BandwidthServer read, write;
  };
  struct Region {
    std::vector<Bank> banks;
    uint32_t chiplet = 0, hops = 0;
  };
  struct MeshPort {
    BandwidthServer out, in;  // a chiplet's mesh port, each direction
  };
  const SramParams params_;
  std::vector<Region> regions_;
  std::vector<MeshPort> ports_;  // by chiplet (used for remote chiplets)
  std::vector<uint64_t> split_;  // scratch: bytes per bank
  Vector& bytes_by_region_;
  // Local buffers [first, second) (component-local addresses) and the bytes served inside them.
  std::vector<std::pair<uint64_t, uint64_t>> local_;
  uint64_t local_bytes_ = 0;
  uint64_t local_part(uint64_t addr, uint64_t bytes) const;
};

}  // namespace tiersim
