#include "models/run/extrapolation.h"

#include <cmath>
#include <stdexcept>

#include "models/core/component.h"

namespace tiersim {

StepExtrapolation::StepExtrapolation(const std::vector<std::unique_ptr<Component>>& components)
    : components_(components) {}

void StepExtrapolation::on_step_end(TimePs now_ps) {
  std::vector<double> bytes(components_.size());
  std::vector<EnergyLedger> energy(components_.size());
  for (size_t c = 0; c < components_.size(); ++c) {
    bytes[c] = double(components_[c]->bytes_read() + components_[c]->bytes_written());
    components_[c]->add_energy(now_ps, energy[c]);
  }
  bytes_.push_back(std::move(bytes));
  energy_.push_back(std::move(energy));
}

Extrapolation StepExtrapolation::extrapolate(const std::vector<TokenRecord>& simulated,
                                             const std::vector<SkippedStep>& skipped) const {
  if (simulated.size() != bytes_.size()) {
    throw std::logic_error("StepExtrapolation: a snapshot per simulated step expected");
  }
  const size_t nc = components_.size();
  Extrapolation x;
  x.extra_bytes.assign(nc, 0.0);
  x.extra_energy.assign(nc, EnergyLedger{});
  x.simulated_steps = static_cast<uint32_t>(simulated.size());
  for (const auto& r : simulated)
    x.simulated_tokens += r.tokens;
  // Step k's own bytes and energy: its snapshot less the previous one (nothing before the run).
  auto bytes_of = [&](size_t k, size_t c) {
    return bytes_[k][c] - (k > 0 ? bytes_[k - 1][c] : 0.0);
  };
  auto energy_of = [&](size_t k, size_t c, size_t p) {
    return energy_[k][c].j[p] - (k > 0 ? energy_[k - 1][c].j[p] : 0.0);
  };
  size_t s = 0;  // next skipped step
  TimePs offset = 0;
  x.records.reserve(simulated.size() + skipped.size());
  for (size_t k = 0; k < simulated.size(); ++k) {
    const TokenRecord& b = simulated[k];
    // The skipped steps before simulated step k lie between k - 1 and k.
    for (; s < skipped.size() && skipped[s].step < b.step; ++s) {
      if (k == 0) throw std::logic_error("StepExtrapolation: a skipped step before the first");
      const TokenRecord& a = simulated[k - 1];
      const double w = double(skipped[s].step - a.step) / double(b.step - a.step);
      const double da = double(a.end_ps - a.start_ps), db = double(b.end_ps - b.start_ps);
      const auto d = static_cast<TimePs>(std::llround(da + w * (db - da)));
      const TimePs start = x.records.back().end_ps;
      x.records.push_back(TokenRecord{skipped[s].step, start, start + d, skipped[s].tokens,
                                      skipped[s].sequences, a.tenant, true});
      offset += d;
      for (size_t c = 0; c < nc; ++c) {
        x.extra_bytes[c] += bytes_of(k - 1, c) + w * (bytes_of(k, c) - bytes_of(k - 1, c));
        for (size_t p = 0; p < kEnergyParts; ++p) {
          x.extra_energy[c].j[p] +=
              energy_of(k - 1, c, p) + w * (energy_of(k, c, p) - energy_of(k - 1, c, p));
        }
      }
      ++x.extrapolated_steps;
    }
    TokenRecord moved = b;
    moved.start_ps += offset;
    moved.end_ps += offset;
    x.records.push_back(moved);
  }
  x.extra_ps = offset;
  return x;
}

}  // namespace tiersim
