// Energy by part: the hops a bit takes on its way (dynamic, per bit through each hop, or per
// FLOP) and the standing power of each component (static, per second while the run lasts).
// Plain C++ (no SystemC): every component adds what it owns to an EnergyLedger
// (Component::add_energy), the run summary sums the ledgers by component and by part, and the
// power time series (models/run/power_monitor.h) differences them between samples. A thermal
// model can read the same ledgers at its own time steps.
//
// Contract: a ledger entry is joules accumulated from the start of the run up to the time the
// ledger was filled for; it never decreases with that time. Parts are disjoint: a bit crossing
// several hops is charged once in each hop's part, by the component that owns the hop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tiersim {

enum class EnergyPart : uint8_t {
  // Dynamic: per bit through the hop (compute: per FLOP).
  kDramCore,       // the DRAM device: arrays, sense amplifiers, on-die data path, its I/O
  kPhyController,  // the host side of a memory interface: PHY and memory controller
  kPackageWires,   // interposer / package / board wires and on-die wires to the consumer
  kSramArray,      // a global SRAM's array (bank access)
  kSramWires,      // a global SRAM's wires (on-die network between banks and consumers)
  kLocalSram,      // local SRAM next to its consumer: staging buffers, activations
  kLinkSerdes,     // serial-link SerDes, PCS and medium (both ends)
  kLinkRetimers,   // retimers on a serial link
  kSwitchCore,     // a switch's crossbar and ports, per bit switched
  kStorageMedia,   // NVMe controller and flash
  kCompute,        // arithmetic
  // Static: power while the run lasts.
  kDramBackground,  // DRAM standby (IDD2N-class) plus the active-standby increment while busy
  kDramRefresh,     // DRAM refresh at the device's refresh-rate multiplier
  kSramLeakage,     // SRAM leakage
  kLinkIdle,        // serial-link idle power (per direction)
  kLaser,           // optical link lasers (per direction)
  kSwitchBase,      // a switch's base power
  kController,      // the movement controller (host cores, DPU, on-accelerator engine)
  kComputeStatic,   // the compute engine's static power
  kComputeActive,   // the compute engine's power while the device works
  kDeviceStatic,    // other devices' standing power (DDR, CXL expander, NVMe drive, ...)
  kCount
};

constexpr size_t kEnergyParts = static_cast<size_t>(EnergyPart::kCount);
constexpr size_t kFirstStaticPart = static_cast<size_t>(EnergyPart::kDramBackground);

// The part's name in summary keys and stat labels (snake case, e.g. "dram_core").
const char* energy_part_name(EnergyPart p);
inline bool energy_part_is_static(EnergyPart p) {
  return static_cast<size_t>(p) >= kFirstStaticPart;
}

// Joules `bytes` cost at `pj_per_bit` per bit.
inline double bits_energy_j(double bytes, double pj_per_bit) {
  return bytes * 8.0 * pj_per_bit * 1e-12;
}

struct EnergyLedger {
  std::array<double, kEnergyParts> j{};

  void add(EnergyPart p, double joules) { j[static_cast<size_t>(p)] += joules; }
  double operator[](EnergyPart p) const { return j[static_cast<size_t>(p)]; }
  double total() const;
  double dynamic_j() const;  // the dynamic parts
  double static_j() const;   // the static parts
  void clear() { j.fill(0.0); }
};

}  // namespace tiersim
