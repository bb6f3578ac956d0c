#include "memory/dram_target.h"

namespace tiersim {

void DramTarget::add_energy(TimePs now_ps, EnergyLedger& out) const {
  Component::add_energy(now_ps, out);
  if (!power_.any()) return;
  power_.add(double(bytes_read() + bytes_written()), busy_stack_s(), now_ps, out,
             thermal_ ? thermal_->core().refresh_multiplier_stack_s(now_ps) : -1.0);
}

void DramTarget::enable_thermal(const HbmThermalParams& p) {
  thermal_ = std::make_unique<HbmThermal>((std::string(basename()) + "_thermal").c_str(), p,
                                          static_cast<HbmThermalHost&>(*this), ctx(), basename());
}

void DramTarget::summarize(std::vector<SummaryItem>& out, uint64_t) const {
  if (thermal_) thermal_->summarize(out, now_ps());
}

}  // namespace tiersim
