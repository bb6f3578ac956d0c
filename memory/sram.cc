#include "memory/sram.h"

#include <algorithm>
#include <cstdlib>

#include "memory/interleave.h"
#include "models/config/energy_checks.h"
#include "models/core/context.h"
#include "models/core/registry.h"

namespace tiersim {

uint32_t SramParams::hops(uint32_t chiplet) const {
  const int64_t c = mesh_columns;
  const int64_t dx = std::llabs(int64_t(chiplet) % c - int64_t(home_chiplet) % c);
  const int64_t dy = std::llabs(int64_t(chiplet) / c - int64_t(home_chiplet) / c);
  return static_cast<uint32_t>(dx + dy);
}

void SramParams::validate(const config::Sram& c, Validator& v) {
  v.positive("capacity_bytes", c.has_capacity_bytes(), static_cast<double>(c.capacity_bytes()));
  energy_field(v, "energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  energy_field(v, "wire_energy_pj_per_bit", c.has_wire_energy_pj_per_bit(),
               c.wire_energy_pj_per_bit());
  energy_field(v, "local_energy_pj_per_bit", c.has_local_energy_pj_per_bit(),
               c.local_energy_pj_per_bit());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
  if (c.regions_size() == 0) {
    v.positive("read_bandwidth_bytes_per_s", c.has_read_bandwidth_bytes_per_s(),
               c.read_bandwidth_bytes_per_s());
    v.positive("write_bandwidth_bytes_per_s", c.has_write_bandwidth_bytes_per_s(),
               c.write_bandwidth_bytes_per_s());
    v.require("latency_ps", c.has_latency_ps());
    if (c.has_mesh()) v.error("mesh", "a mesh joins regions; set `regions` too");
    return;
  }
  // With regions, the per-array fields would be silently ignored: refuse them.
  for (const char* f :
       {"read_bandwidth_bytes_per_s", "write_bandwidth_bytes_per_s", "latency_ps"}) {
    const bool set = std::string(f) == "latency_ps" ? c.has_latency_ps()
                     : std::string(f) == "read_bandwidth_bytes_per_s"
                         ? c.has_read_bandwidth_bytes_per_s()
                         : c.has_write_bandwidth_bytes_per_s();
    if (set) v.error(f, "set per region when `regions` are given");
  }
  uint64_t total = 0;
  uint32_t max_chiplet = 0;
  bool remote = false;
  for (int i = 0; i < c.regions_size(); ++i) {
    const auto& r = c.regions(i);
    Validator rv = v.at("regions[" + (r.name().empty() ? std::to_string(i) : r.name()) + "]");
    rv.non_empty("name", r.has_name(), r.name());
    rv.positive("capacity_bytes", r.has_capacity_bytes(), double(r.capacity_bytes()));
    total += r.capacity_bytes();
    if (r.has_banks()) rv.positive("banks", true, r.banks());
    if (r.has_bank_interleave_bytes() &&
        rv.positive("bank_interleave_bytes", true, double(r.bank_interleave_bytes())) &&
        (r.bank_interleave_bytes() & (r.bank_interleave_bytes() - 1)) != 0) {
      rv.error("bank_interleave_bytes", "must be a power of two");
    }
    rv.positive("read_bandwidth_bytes_per_s", r.has_read_bandwidth_bytes_per_s(),
                r.read_bandwidth_bytes_per_s());
    rv.positive("write_bandwidth_bytes_per_s", r.has_write_bandwidth_bytes_per_s(),
                r.write_bandwidth_bytes_per_s());
    rv.require("latency_ps", r.has_latency_ps());
    max_chiplet = std::max(max_chiplet, r.chiplet());
    if (r.has_chiplet() && (!c.has_mesh() || r.chiplet() != c.mesh().home_chiplet())) {
      remote = true;
    }
  }
  if (c.has_capacity_bytes() && total != c.capacity_bytes()) {
    v.error("capacity_bytes",
            "must equal the sum of the regions' capacities (" + std::to_string(total) + ")");
  }
  if (remote && !c.has_mesh()) {
    v.error("mesh", "regions on other chiplets need a mesh (columns, hop latency, links)");
  }
  if (c.has_mesh()) {
    Validator mv = v.at("mesh");
    mv.positive("columns", c.mesh().has_columns(), c.mesh().columns());
    mv.require("hop_latency_ps", c.mesh().has_hop_latency_ps());
    mv.positive("link_bytes_per_s", c.mesh().has_link_bytes_per_s(), c.mesh().link_bytes_per_s());
  }
}

SramParams SramParams::from_config(const config::Sram& c) {
  SramParams p;
  p.capacity_bytes = c.capacity_bytes();
  p.read_bandwidth_bytes_per_s = c.read_bandwidth_bytes_per_s();
  p.write_bandwidth_bytes_per_s = c.write_bandwidth_bytes_per_s();
  p.latency_ps = c.latency_ps();
  p.wire_pj_per_bit = c.wire_energy_pj_per_bit();
  if (c.has_local_energy_pj_per_bit()) p.local_pj_per_bit = c.local_energy_pj_per_bit();
  if (c.has_mesh()) {
    p.mesh_columns = c.mesh().columns();
    p.home_chiplet = c.mesh().home_chiplet();
    p.hop_latency_ps = c.mesh().hop_latency_ps();
    p.mesh_link_bytes_per_s = c.mesh().link_bytes_per_s();
  }
  if (c.regions_size() == 0) {
    SramRegionParams r;
    r.name = "all";
    r.capacity_bytes = c.capacity_bytes();
    r.chiplet = p.home_chiplet;
    r.read_bandwidth_bytes_per_s = c.read_bandwidth_bytes_per_s();
    r.write_bandwidth_bytes_per_s = c.write_bandwidth_bytes_per_s();
    r.latency_ps = c.latency_ps();
    p.regions.push_back(r);
    return p;
  }
  uint64_t base = 0;
  p.read_bandwidth_bytes_per_s = p.write_bandwidth_bytes_per_s = 0;
  for (const auto& rc : c.regions()) {
    SramRegionParams r;
    r.name = rc.name();
    r.base_bytes = base;
    r.capacity_bytes = rc.capacity_bytes();
    r.chiplet = rc.has_chiplet() ? rc.chiplet() : p.home_chiplet;
    r.banks = rc.has_banks() ? rc.banks() : 1;
    r.bank_interleave_bytes = rc.has_bank_interleave_bytes() ? rc.bank_interleave_bytes() : 256;
    r.read_bandwidth_bytes_per_s = rc.read_bandwidth_bytes_per_s();
    r.write_bandwidth_bytes_per_s = rc.write_bandwidth_bytes_per_s();
    r.latency_ps = rc.latency_ps();
    p.read_bandwidth_bytes_per_s += r.read_bandwidth_bytes_per_s;
    p.write_bandwidth_bytes_per_s += r.write_bandwidth_bytes_per_s;
    base += r.capacity_bytes;
    p.regions.push_back(r);
  }
  p.latency_ps = p.regions.front().latency_ps;
  return p;
}

namespace {
// Params built by hand with no regions describe one array: make it the single region.
SramParams normalized(SramParams p) {
  if (p.regions.empty()) {
    SramRegionParams r;
    r.name = "all";
    r.capacity_bytes = p.capacity_bytes;
    r.chiplet = p.home_chiplet;
    r.read_bandwidth_bytes_per_s = p.read_bandwidth_bytes_per_s;
    r.write_bandwidth_bytes_per_s = p.write_bandwidth_bytes_per_s;
    r.latency_ps = p.latency_ps;
    p.regions.push_back(r);
  }
  return p;
}

std::vector<std::string> region_names(const SramParams& p) {
  std::vector<std::string> n;
  for (const auto& r : p.regions)
    n.push_back(r.name);
  return n;
}
}  // namespace

Sram::Sram(sc_core::sc_module_name name, const SramParams& params, Context& ctx)
    : MemoryTarget(name, ctx, "sram", Tier::kSram, params.capacity_bytes, {}),
      params_(normalized(params)),
      bytes_by_region_(ctx.stats().vector(basename(), "bytes_by_region",
                                          "bytes read or written per region", "bytes",
                                          region_names(normalized(params)))) {
  uint32_t max_banks = 1;
  for (const auto& r : params_.regions) {
    Region region;
    for (uint32_t b = 0; b < r.banks; ++b) {
      region.banks.push_back(Bank{BandwidthServer(r.read_bandwidth_bytes_per_s / r.banks),
                                  BandwidthServer(r.write_bandwidth_bytes_per_s / r.banks)});
    }
    region.chiplet = r.chiplet;
    region.hops = params_.hops(r.chiplet);
    if (ports_.size() <= r.chiplet) {
      ports_.resize(r.chiplet + 1, MeshPort{BandwidthServer(params_.mesh_link_bytes_per_s),
                                            BandwidthServer(params_.mesh_link_bytes_per_s)});
    }
    regions_.push_back(std::move(region));
    max_banks = std::max(max_banks, r.banks);
  }
  split_.assign(max_banks, 0);
  auto busy = [this](bool write) {
    TimePs t = 0;
    for (const auto& r : regions_)
      for (const auto& b : r.banks)
        t += (write ? b.write : b.read).busy_ps();
    return t;
  };
  auto servers = [this] {
    size_t n = 0;
    for (const auto& r : regions_)
      n += r.banks.size();
    return double(n);
  };
  ctx.stats()
      .formula(basename(), "read_utilization", "mean read-port busy fraction over banks",
               "fraction",
               [busy, servers](TimePs now) {
                 return now ? double(busy(false)) / (double(now) * servers()) : 0.0;
               })
      .set_sampling("average_since_start");
  ctx.stats()
      .formula(basename(), "write_utilization", "mean write-port busy fraction over banks",
               "fraction",
               [busy, servers](TimePs now) {
                 return now ? double(busy(true)) / (double(now) * servers()) : 0.0;
               })
      .set_sampling("average_since_start");
}

TimePs Sram::serve_region(size_t r, uint64_t local, uint64_t bytes, bool write, TimePs start) {
  const SramRegionParams& rp = params_.regions[r];
  Region& region = regions_[r];
  const TimePs hop_ps = TimePs{region.hops} * params_.hop_latency_ps;
  const TimePs at_bank = start + hop_ps;  // the request crossed the mesh
  TimePs done = 0;
  if (region.banks.size() == 1) {
    done = (write ? region.banks[0].write : region.banks[0].read).reserve(at_bank, bytes);
  } else {
    std::fill(split_.begin(), split_.begin() + region.banks.size(), 0);
    interleave_split(local, bytes, rp.bank_interleave_bytes,
                     static_cast<uint32_t>(region.banks.size()), split_.data());
    for (size_t b = 0; b < region.banks.size(); ++b) {
      if (split_[b] == 0) continue;
      done = std::max(
          done, (write ? region.banks[b].write : region.banks[b].read).reserve(at_bank, split_[b]));
    }
  }
  if (region.hops > 0) {
    // The data crosses the remote chiplet's mesh port (streaming with the banks).
    MeshPort& port = ports_[region.chiplet];
    done = std::max(done, (write ? port.in : port.out).reserve(at_bank, bytes));
  }
  bytes_by_region_.add(r, double(bytes));
  return done + rp.latency_ps + hop_ps;
}

TimePs Sram::serve_regions(uint64_t addr, uint64_t bytes, bool write, TimePs start) {
  TimePs done = 0;
  uint64_t at = addr, left = bytes;
  for (size_t r = 0; r < params_.regions.size() && left > 0; ++r) {
    const SramRegionParams& rp = params_.regions[r];
    if (at >= rp.base_bytes + rp.capacity_bytes) continue;
    const uint64_t part = std::min(left, rp.base_bytes + rp.capacity_bytes - at);
    done = std::max(done, serve_region(r, at - rp.base_bytes, part, write, start));
    at += part;
    left -= part;
  }
  return done;
}

void Sram::mark_local_buffer(uint64_t local_address, uint64_t bytes) {
  if (bytes > 0) local_.push_back({local_address, local_address + bytes});
}

uint64_t Sram::local_part(uint64_t addr, uint64_t bytes) const {
  uint64_t n = 0;
  for (const auto& r : local_) {
    const uint64_t lo = std::max(addr, r.first), hi = std::min(addr + bytes, r.second);
    if (hi > lo) n += hi - lo;
  }
  return n;
}

void Sram::add_energy(TimePs now_ps, EnergyLedger& out) const {
  // Global accesses: the array (the default account's pJ/bit, sram_array) and the wires; local
  // buffers at their own rate (or as global when it is not set).
  const double total = double(bytes_read() + bytes_written());
  const double local = double(local_bytes_);
  const double global = total - local;
  out.add(EnergyPart::kSramArray, bits_energy_j(global, energy_pj_per_unit()));
  out.add(EnergyPart::kSramWires, bits_energy_j(global, params_.wire_pj_per_bit));
  if (params_.local_pj_per_bit >= 0) {
    out.add(EnergyPart::kLocalSram, bits_energy_j(local, params_.local_pj_per_bit));
  } else {
    out.add(EnergyPart::kSramArray, bits_energy_j(local, energy_pj_per_unit()));
    out.add(EnergyPart::kSramWires, bits_energy_j(local, params_.wire_pj_per_bit));
  }
  out.add(EnergyPart::kSramLeakage, static_power() * ps_to_s(now_ps));
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "sram",
    "on-package SRAM scratchpad: one array or regions of banks (read and write ports per bank), "
    "possibly on chiplets joined by a mesh",
    [](const config::Config&, const config::Component& c, Validator& v) {
      SramParams::validate(c.sram(), v);
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      return with_energy(
          std::make_unique<Sram>(c.name().c_str(), SramParams::from_config(c.sram()), ctx),
          c.sram().energy_pj_per_bit(), c.sram().static_power_w(), EnergyPart::kSramArray,
          EnergyPart::kSramLeakage);
    },
    nullptr});
}  // namespace

}  // namespace tiersim
