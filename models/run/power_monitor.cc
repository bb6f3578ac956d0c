#include "models/run/power_monitor.h"

#include <string>

#include "models/core/component.h"
#include "models/core/context.h"
#include "models/core/stats.h"

namespace tiersim {

PowerMonitor::PowerMonitor(Context& ctx, const std::vector<std::unique_ptr<Component>>& components)
    : part_w_(kEnergyParts, 0.0) {
  std::vector<std::string> names;
  for (const auto& c : components) {
    if (!c->has_energy()) continue;
    components_.push_back(c.get());
    names.push_back(c->basename());
  }
  if (components_.empty()) return;
  previous_.resize(components_.size());
  component_w_.assign(components_.size(), 0.0);
  std::vector<std::string> parts;
  for (size_t p = 0; p < kEnergyParts; ++p)
    parts.push_back(energy_part_name(EnergyPart(p)));
  ctx.stats()
      .formula("power", "total", "mean power of the system over the sample interval", "W",
               [this](TimePs now) {
                 update(now);
                 return total_w_;
               })
      .set_interval_mean();
  ctx.stats()
      .timed_vector_formula("power", "component",
                            "mean power of each component over the sample interval", "W",
                            std::move(names),
                            [this](TimePs now, double* out) {
                              update(now);
                              for (size_t i = 0; i < component_w_.size(); ++i)
                                out[i] = component_w_[i];
                            })
      .set_interval_mean();
  ctx.stats()
      .timed_vector_formula(
          "power", "part",
          "mean power of each energy part (hop or static power) over the sample interval", "W",
          std::move(parts),
          [this](TimePs now, double* out) {
            update(now);
            for (size_t p = 0; p < kEnergyParts; ++p)
              out[p] = part_w_[p];
          })
      .set_interval_mean();
}

void PowerMonitor::update(TimePs now_ps) {
  if (now_ps == updated_ps_) return;
  updated_ps_ = now_ps;
  if (now_ps <= previous_ps_) return;  // same time as the previous sample: repeat its values
  const double dt = ps_to_s(now_ps - previous_ps_);
  total_w_ = 0;
  for (double& w : part_w_)
    w = 0;
  for (size_t i = 0; i < components_.size(); ++i) {
    scratch_.clear();
    components_[i]->add_energy(now_ps, scratch_);
    double delta = 0;
    for (size_t p = 0; p < kEnergyParts; ++p) {
      const double d = scratch_.j[p] - previous_[i].j[p];
      part_w_[p] += d / dt;
      delta += d;
    }
    component_w_[i] = delta / dt;
    total_w_ += delta / dt;
    previous_[i] = scratch_;
  }
  previous_ps_ = now_ps;
}

}  // namespace tiersim
