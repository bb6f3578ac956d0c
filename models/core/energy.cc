#include "models/core/energy.h"

namespace tiersim {

const char* energy_part_name(EnergyPart p) {
  switch (p) {
    case EnergyPart::kDramCore:
      return "dram_core";
    case EnergyPart::kPhyController:
      return "phy_controller";
    case EnergyPart::kPackageWires:
      return "package_wires";
    case EnergyPart::kSramArray:
      return "sram_array";
    case EnergyPart::kSramWires:
      return "sram_wires";
    case EnergyPart::kLocalSram:
      return "local_sram";
    case EnergyPart::kLinkSerdes:
      return "link_serdes";
    case EnergyPart::kLinkRetimers:
      return "link_retimers";
    case EnergyPart::kSwitchCore:
      return "switch_core";
    case EnergyPart::kStorageMedia:
      return "storage_media";
    case EnergyPart::kCompute:
      return "compute";
    case EnergyPart::kDramBackground:
      return "dram_background";
    case EnergyPart::kDramRefresh:
      return "dram_refresh";
    case EnergyPart::kSramLeakage:
      return "sram_leakage";
    case EnergyPart::kLinkIdle:
      return "link_idle";
    case EnergyPart::kLaser:
      return "laser";
    case EnergyPart::kSwitchBase:
      return "switch_base";
    case EnergyPart::kController:
      return "controller";
    case EnergyPart::kComputeStatic:
      return "compute_static";
    case EnergyPart::kComputeActive:
      return "compute_active";
    case EnergyPart::kDeviceStatic:
      return "device_static";
    case EnergyPart::kCount:
      break;
  }
  return "?";
}

double EnergyLedger::total() const {
  double s = 0;
  for (double v : j)
    s += v;
  return s;
}

double EnergyLedger::dynamic_j() const {
  double s = 0;
  for (size_t i = 0; i < kFirstStaticPart; ++i)
    s += j[i];
  return s;
}

double EnergyLedger::static_j() const {
  double s = 0;
  for (size_t i = kFirstStaticPart; i < kEnergyParts; ++i)
    s += j[i];
  return s;
}

}  // namespace tiersim
