// A CXL.mem Type-3 memory expander (the `cxl` kind): device controller and DRAM media behind a
// CXL link. The link itself (lanes, 68-byte or 256-byte flits, link-layer efficiency, retimers,
// PHY latency, errors) is the system link's serial model, timed by whoever drives the link (a
// DMA engine or a switch); switch hops are switch components on the path.
//
// What is modelled, per request of n bytes arriving at time t (a read's request, or a write's
// last data byte):
// - the host's CXL port (root port and home agent, both directions) adds host_port_latency_ps;
// - the device controller adds controller_latency_ps;
// - request trackers: at most read_trackers reads (write_trackers writes) of line_bytes are in
//   flight, each held for the controller and media latency plus its line's service, so the
//   device sustains at most trackers x line_bytes / hold per direction. Reads and writes have
//   separate pools (and the link carries their data in opposite directions), so a read/write
//   mix reaches more bandwidth than reads alone, as measured expanders show;
// - the DRAM media: the ddr kind's fast model (channels, sub-channels, row misses, turnarounds).
// As a pod memory node shared by symmetric accelerators, the trackers' and media's rates are
// this accelerator's share (load_multiplier); latencies are not shared.
// The request completes when both the trackers and the media are done, plus the host port.
// Fidelity: fast. Left out: the device's internal NoC and ECC, the host's coherence (snoop
// filter, back-invalidate), interleaving across several expanders (map several ranges instead).
// TLM target, range check and counts: MemoryTarget's (device_latency is its latency histogram).
#pragma once

#include "configs/tiersim.pb.h"
#include "memory/bandwidth_memory_core.h"
#include "memory/memory_target.h"
#include "models/config/errors.h"
#include "models/core/bandwidth_server.h"

namespace tiersim {

struct CxlParams {
  TimePs host_port_latency_ps = 0;
  TimePs controller_latency_ps = 0;
  uint32_t read_trackers = 0, write_trackers = 0;
  uint32_t line_bytes = 64;
  BandwidthMemoryParams media;
  double controller_pj_per_bit = 0;  // the device controller, per bit (energy part phy_controller)
  // A pod memory node (models/config/pool_share.h): the trackers and media serve this
  // accelerator at 1/load_multiplier of their rates; it holds capacity / sharers.
  double load_multiplier = 1;
  uint32_t sharers = 1;

  // Time a tracker is held by one line: controller and media latency plus the line's service at
  // one media channel's rate.
  TimePs tracker_hold_ps() const;
  // Unshared: what the device sustains for all its requesters.
  double tracker_bytes_per_s(uint32_t trackers) const {
    return double(trackers) * line_bytes / (double(tracker_hold_ps()) * 1e-12);
  }
  // Unloaded time of a lone line read at the device, from its arrival to its data leaving
  // (controller, media), plus the host port.
  TimePs idle_read_ps() const;

  static void validate(const config::CxlExpander& c, Validator& v);
  static CxlParams from_config(const config::CxlExpander& c);
};

class CxlExpander : public MemoryTarget {
 public:
  CxlExpander(sc_core::sc_module_name name, const CxlParams& params, Context& ctx);

  const CxlParams& params() const { return params_; }
  // Energy: the media's per-bit account (dram_core) and static power (the kind factory's), plus
  // the controller per bit (phy_controller).
  void add_energy(TimePs now_ps, EnergyLedger& out) const override;
  bool has_energy() const override {
    return Component::has_energy() || params_.controller_pj_per_bit > 0;
  }

 protected:
  // `start_ps`: the request's arrival at the device.
  TimePs serve(uint64_t addr, uint64_t bytes, bool write, TimePs start_ps) override;

 private:
  const CxlParams params_;
  BandwidthMemoryCore media_;
  BandwidthServer read_trackers_, write_trackers_;
};

}  // namespace tiersim
