// The part the DRAM memories share (the hbm kind at both levels, and the fast level's ddr and
// gddr kinds): a MemoryTarget with a DRAM power account beyond the device's per-bit energy
// (memory/dram_power.h: PHY, wires, background, active and refresh power) and, for HBM, an
// optional stack thermal model (memory/hbm_thermal.h) that the memory hosts. A model supplies
// its busy time (the active state's stack-seconds) and the per-stack counts and controls of
// HbmThermalHost.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "memory/dram_power.h"
#include "memory/hbm_thermal.h"
#include "memory/memory_target.h"

namespace tiersim {

class DramTarget : public MemoryTarget, protected HbmThermalHost {
 public:
  using MemoryTarget::MemoryTarget;

  // Set by the kind factory before the run.
  void set_power(DramPower p) { power_ = std::move(p); }
  void add_energy(TimePs now_ps, EnergyLedger& out) const final;
  bool has_energy() const final { return Component::has_energy() || power_.any(); }

  // Drives the stacks' temperatures with a thermal model (the hbm kind, before the run).
  void enable_thermal(const HbmThermalParams& p);
  const HbmThermal* thermal() const { return thermal_.get(); }
  void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const override;

 protected:
  // Stack-seconds the data path has been busy so far: the active state's time of the power
  // account.
  virtual double busy_stack_s() const = 0;
  const DramPower& power() const { return power_; }

 private:
  DramPower power_;
  std::unique_ptr<HbmThermal> thermal_;
};

}  // namespace tiersim
