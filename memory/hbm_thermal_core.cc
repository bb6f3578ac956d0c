#include "memory/hbm_thermal_core.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/config/energy_checks.h"

namespace tiersim {

namespace {

// Mean power (W) of `bytes` at `pj_per_bit` over `dt_s`.
double bits_w(double bytes, double pj_per_bit, double dt_s) {
  return bytes * 8.0 * pj_per_bit * 1e-12 / dt_s;
}

struct CoolingPreset {
  double sink_k_per_w, sink_j_per_k, coolant_c;
};

// Sink to coolant, sink heat capacity, coolant temperature (docs/models/thermal.md: grade C
// estimates; coolant temperatures are ASHRAE's upper bounds for the classes named there).
CoolingPreset cooling_preset(config::Cooling c) {
  switch (c) {
    case config::AIR:
      return {0.05, 600, 35};
    case config::IMMERSION:
      return {0.04, 400, 40};
    case config::COLD_PLATE:
    default:
      return {0.02, 300, 40};
  }
}

// An optional field that must be finite and > 0 when set.
void positive_if_set(Validator& v, const std::string& field, bool present, double value) {
  if (present && !(std::isfinite(value) && value > 0)) {
    v.error(field, "must be finite and > 0 (got " + std::to_string(value) + ")");
  }
}

void celsius_if_set(Validator& v, const std::string& field, bool present, double value) {
  if (present && !(value > -60 && value < 200)) v.error(field, "must be in (-60, 200) C");
}

}  // namespace

double HbmThermalParams::refresh_multiplier(double celsius) const {
  double m = 1.0;
  for (const auto& [above, mult] : refresh_steps) {
    if (celsius > above) m = mult;
  }
  return m;
}

void HbmThermalParams::validate(const config::HbmFast& hbm, Validator& hv, bool fast_level) {
  if (!hbm.has_thermal()) return;
  const config::HbmThermal& c = hbm.thermal();
  Validator v = hv.at("thermal");
  celsius_if_set(v, "coolant_c", c.has_coolant_c(), c.coolant_c());
  positive_if_set(v, "sink_k_per_w", c.has_sink_k_per_w(), c.sink_k_per_w());
  positive_if_set(v, "sink_j_per_k", c.has_sink_j_per_k(), c.sink_j_per_k());
  if (c.has_dram_layers() && !(c.dram_layers() >= 1 && c.dram_layers() <= 32)) {
    v.error("dram_layers", "must be in [1, 32]");
  }
  positive_if_set(v, "layer_j_per_k", c.has_layer_j_per_k(), c.layer_j_per_k());
  positive_if_set(v, "layer_k_per_w", c.has_layer_k_per_w(), c.layer_k_per_w());
  positive_if_set(v, "base_die_j_per_k", c.has_base_die_j_per_k(), c.base_die_j_per_k());
  positive_if_set(v, "top_k_per_w", c.has_top_k_per_w(), c.top_k_per_w());
  positive_if_set(v, "interposer_k_per_w", c.has_interposer_k_per_w(), c.interposer_k_per_w());
  positive_if_set(v, "accelerator_j_per_k", c.has_accelerator_j_per_k(), c.accelerator_j_per_k());
  positive_if_set(v, "accelerator_k_per_w", c.has_accelerator_k_per_w(), c.accelerator_k_per_w());
  energy_field(v, "accelerator_power_w", c.has_accelerator_power_w(), c.accelerator_power_w());
  energy_field(v, "initial_stack_power_w", c.has_initial_stack_power_w(),
               c.initial_stack_power_w());
  if (c.has_base_die_power_fraction() &&
      !(c.base_die_power_fraction() >= 0 && c.base_die_power_fraction() <= 1)) {
    v.error("base_die_power_fraction", "must be in [0, 1]");
  }
  // Steps from 1 ns to 1 s: finer is pointless for die time constants of ~1 ms, coarser would
  // make the behaviour lag by more than a stack's own time constant.
  const uint64_t step = c.has_step_ps() ? c.step_ps() : HbmThermalParams().step_ps;
  if (c.has_step_ps() && !(c.step_ps() >= 1000 && c.step_ps() <= 1'000'000'000'000)) {
    v.error("step_ps", "must be in [1000, 1e12] ps (1 ns to 1 s)");
  }
  if (c.has_throttle_above_c()) {
    celsius_if_set(v, "throttle_above_c", true, c.throttle_above_c());
    celsius_if_set(v, "throttle_release_c", c.has_throttle_release_c(), c.throttle_release_c());
    if (c.has_throttle_release_c() && !(c.throttle_release_c() < c.throttle_above_c())) {
      v.error("throttle_release_c", "must be below throttle_above_c (hysteresis)");
    }
    if (c.has_throttle_bandwidth_fraction() &&
        !(c.throttle_bandwidth_fraction() > 0 && c.throttle_bandwidth_fraction() <= 1)) {
      v.error("throttle_bandwidth_fraction", "must be in (0, 1]");
    }
  } else {
    if (c.has_throttle_release_c()) v.error("throttle_release_c", "needs throttle_above_c");
    if (c.has_throttle_bandwidth_fraction()) {
      v.error("throttle_bandwidth_fraction", "needs throttle_above_c");
    }
  }
  if (c.has_telemetry_period_ps() &&
      (c.telemetry_period_ps() == 0 || step == 0 || c.telemetry_period_ps() % step != 0 ||
       c.telemetry_period_ps() > (uint64_t{1} << 56))) {
    v.error("telemetry_period_ps",
            "must be a positive multiple of step_ps (" + std::to_string(step) + ")");
  }
  if (c.has_telemetry_delay_ps() && c.telemetry_delay_ps() > (uint64_t{1} << 56)) {
    v.error("telemetry_delay_ps", "must be at most 2^56 ps");
  }
  if (c.has_telemetry_delay_ps() && step > 0) {
    const uint64_t period =
        c.has_telemetry_period_ps() && c.telemetry_period_ps() > 0 ? c.telemetry_period_ps() : step;
    if (c.telemetry_delay_ps() / period > 65536) {
      v.error("telemetry_delay_ps", "must be at most 65536 telemetry periods");
    }
  }
  if (fast_level && !hbm.has_refresh_overhead_fraction()) {
    hv.error("refresh_overhead_fraction",
             "needed with a thermal model: the fast level must know refresh's share of the "
             "bandwidth when temperature raises the refresh rate; `tiersim calibrate` measures it");
  }
  if (fast_level && hbm.has_refresh_overhead_fraction()) {
    // The hottest refresh step must leave bandwidth.
    HbmThermalParams p;
    for (const auto& s : hbm.refresh_rate())
      p.refresh_steps.emplace_back(s.above_c(), s.multiplier());
    if (p.refresh_steps.empty()) p.refresh_steps = {{85.0, 2.0}, {95.0, 4.0}};
    double top = 1;
    for (const auto& s : p.refresh_steps)
      top = std::max(top, s.second);
    if (top * hbm.refresh_overhead_fraction() >= 1.0) {
      hv.error("refresh_rate", "the highest refresh multiplier would take all the bandwidth");
    }
  }
}

HbmThermalParams HbmThermalParams::from_config(const config::HbmFast& hbm) {
  HbmThermalParams p;
  const config::HbmThermal& c = hbm.thermal();
  p.stacks = hbm.stack_count();
  const CoolingPreset cp = cooling_preset(c.cooling());
  p.sink_k_per_w = c.has_sink_k_per_w() ? c.sink_k_per_w() : cp.sink_k_per_w;
  p.sink_j_per_k = c.has_sink_j_per_k() ? c.sink_j_per_k() : cp.sink_j_per_k;
  p.coolant_c = c.has_coolant_c() ? c.coolant_c() : cp.coolant_c;
  if (c.has_dram_layers()) p.dram_layers = c.dram_layers();
  if (c.has_layer_j_per_k()) p.layer_j_per_k = c.layer_j_per_k();
  if (c.has_layer_k_per_w()) p.layer_k_per_w = c.layer_k_per_w();
  if (c.has_base_die_j_per_k()) p.base_die_j_per_k = c.base_die_j_per_k();
  if (c.has_top_k_per_w()) p.top_k_per_w = c.top_k_per_w();
  if (c.has_interposer_k_per_w()) p.interposer_k_per_w = c.interposer_k_per_w();
  if (c.has_accelerator_j_per_k()) p.accelerator_j_per_k = c.accelerator_j_per_k();
  if (c.has_accelerator_k_per_w()) p.accelerator_k_per_w = c.accelerator_k_per_w();
  if (c.has_accelerator_power_w()) p.accelerator_power_w = c.accelerator_power_w();
  if (c.has_base_die_power_fraction()) p.base_die_power_fraction = c.base_die_power_fraction();
  p.has_initial_stack_power = c.has_initial_stack_power_w();
  p.initial_stack_power_w = c.initial_stack_power_w();
  if (c.has_step_ps()) p.step_ps = c.step_ps();
  p.telemetry_period_ps = c.has_telemetry_period_ps() ? c.telemetry_period_ps() : p.step_ps;
  p.telemetry_delay_ps = c.telemetry_delay_ps();
  for (const auto& s : hbm.refresh_rate())
    p.refresh_steps.emplace_back(s.above_c(), s.multiplier());
  // JEDEC ranges (docs/models/thermal.md): x1 up to 85 C, x2 above 85 C, x4 above 95 C.
  if (p.refresh_steps.empty()) p.refresh_steps = {{85.0, 2.0}, {95.0, 4.0}};
  std::sort(p.refresh_steps.begin(), p.refresh_steps.end());
  p.throttle = c.has_throttle_above_c();
  if (p.throttle) {
    p.throttle_above_c = c.throttle_above_c();
    p.throttle_release_c =
        c.has_throttle_release_c() ? c.throttle_release_c() : c.throttle_above_c() - 5.0;
    if (c.has_throttle_bandwidth_fraction()) {
      p.throttle_bandwidth_fraction = c.throttle_bandwidth_fraction();
    }
  }
  p.device_pj_per_bit = hbm.energy_pj_per_bit();
  p.host_pj_per_bit = hbm.phy_energy_pj_per_bit() + hbm.wire_energy_pj_per_bit();
  p.idle_power_w = hbm.idle_power_w();
  p.active_power_w = hbm.active_power_w();
  p.refresh_power_w = hbm.refresh_power_w();
  p.static_power_w = hbm.static_power_w();
  return p;
}

HbmThermalCore::HbmThermalCore(const HbmThermalParams& p)
    : p_(p),
      rc_(p.nodes()),
      t_(p.nodes(), p.coolant_c),
      power_(p.nodes(), 0.0),
      last_bytes_(p.stacks, 0.0),
      last_busy_(p.stacks, 0.0),
      mult_(p.stacks, 1.0),
      mult_s_(p.stacks, 0.0),
      throttled_acc_s_(p.stacks, 0.0),
      throttled_(p.stacks, 0),
      events_(p.stacks, 0),
      refresh_changes_(p.stacks, 0) {
  const uint32_t layers = p.dram_layers;
  for (uint32_t s = 0; s < p.stacks; ++s) {
    rc_.set_capacity(p.base_node(s), p.base_die_j_per_k);
    rc_.connect(p.base_node(s), p.die_node(s, 0), p.layer_k_per_w);
    rc_.connect(p.base_node(s), p.accelerator_node(), p.interposer_k_per_w);
    for (uint32_t k = 0; k < layers; ++k) {
      rc_.set_capacity(p.die_node(s, k), p.layer_j_per_k);
      if (k + 1 < layers) rc_.connect(p.die_node(s, k), p.die_node(s, k + 1), p.layer_k_per_w);
    }
    rc_.connect(p.die_node(s, layers - 1), p.sink_node(), p.top_k_per_w);
  }
  rc_.set_capacity(p.accelerator_node(), p.accelerator_j_per_k);
  rc_.connect(p.accelerator_node(), p.sink_node(), p.accelerator_k_per_w);
  rc_.set_capacity(p.sink_node(), p.sink_j_per_k);
  rc_.to_ambient(p.sink_node(), p.sink_k_per_w);
  rc_.set_ambient(p.coolant_c);
  rc_.prepare(ps_to_s(p.step_ps));

  // Initial state: steady state under the initial power; the background's refresh term follows
  // the temperature it leads to (a few fixed-point rounds settle the range).
  for (int round = 0; round < 4; ++round) {
    std::fill(power_.begin(), power_.end(), 0.0);
    for (uint32_t s = 0; s < p.stacks; ++s) {
      const double stat = p.static_power_w / p.stacks;
      power_[p.base_node(s)] += stat;
      if (p.has_initial_stack_power) {
        const double w = std::max(0.0, p.initial_stack_power_w - stat);
        power_[p.base_node(s)] += p.base_die_power_fraction * w;
        for (uint32_t k = 0; k < layers; ++k)
          power_[p.die_node(s, k)] += (1 - p.base_die_power_fraction) * w / layers;
      } else {
        const double w = p.idle_power_w + p.refresh_power_w * mult_[s];
        for (uint32_t k = 0; k < layers; ++k)
          power_[p.die_node(s, k)] += w / layers;
      }
    }
    power_[p.accelerator_node()] += p.accelerator_power_w;
    rc_.steady_state(power_.data(), t_.data());
    for (uint32_t s = 0; s < p.stacks; ++s)
      mult_[s] = p.refresh_multiplier(stack_max_c(s));
  }
  for (uint32_t s = 0; s < p.stacks; ++s) {
    max_c_ = std::max(max_c_, stack_max_c(s));
    if (p.throttle && stack_max_c(s) > p.throttle_above_c) {
      throttled_[s] = 1;
      ++events_[s];
    }
  }
  ring_ = static_cast<size_t>(p.telemetry_delay_ps / p.telemetry_period_ps) + 2;
  sample_ps_.assign(ring_, 0);
  sample_c_.assign(ring_ * p.stacks, 0.0);
  sample(0);
}

double HbmThermalCore::stack_max_c(uint32_t s) const {
  double m = t_[p_.base_node(s)];
  for (uint32_t k = 0; k < p_.dram_layers; ++k)
    m = std::max(m, t_[p_.die_node(s, k)]);
  return m;
}

void HbmThermalCore::step(TimePs now_ps, const double* stack_bytes, const double* stack_busy_s) {
  if (now_ps <= last_ps_) return;
  const double dt = ps_to_s(now_ps - last_ps_);
  const uint32_t layers = p_.dram_layers;
  const double f = p_.base_die_power_fraction;
  std::fill(power_.begin(), power_.end(), 0.0);
  double host_w = 0;
  for (uint32_t s = 0; s < p_.stacks; ++s) {
    const double bytes = stack_bytes[s] - last_bytes_[s];
    const double busy = std::clamp((stack_busy_s[s] - last_busy_[s]) / dt, 0.0, 1.0);
    last_bytes_[s] = stack_bytes[s];
    last_busy_[s] = stack_busy_s[s];
    const double access_w = bits_w(bytes, p_.device_pj_per_bit, dt);
    host_w += bits_w(bytes, p_.host_pj_per_bit, dt);
    const double dies_w = (1 - f) * access_w + p_.idle_power_w + p_.active_power_w * busy +
                          p_.refresh_power_w * mult_[s];
    power_[p_.base_node(s)] = f * access_w + p_.static_power_w / p_.stacks;
    for (uint32_t k = 0; k < layers; ++k)
      power_[p_.die_node(s, k)] = dies_w / layers;
  }
  power_[p_.accelerator_node()] = p_.accelerator_power_w + host_w;
  if (now_ps - last_ps_ == p_.step_ps) {
    rc_.step(power_.data(), t_.data());
  } else {
    rc_.advance(dt, power_.data(), t_.data());  // an irregular step (not on the shell's path)
  }
  last_ps_ = now_ps;
  update_states(dt);
  if (now_ps % p_.telemetry_period_ps == 0) sample(now_ps);
}

void HbmThermalCore::update_states(double dt_s) {
  for (uint32_t s = 0; s < p_.stacks; ++s) {
    // Account the step just integrated under the states that held during it.
    mult_s_[s] += mult_[s] * dt_s;
    if (throttled_[s]) throttled_acc_s_[s] += dt_s;
    const double hot = stack_max_c(s);
    max_c_ = std::max(max_c_, hot);
    const double m = p_.refresh_multiplier(hot);
    if (m != mult_[s]) {
      mult_[s] = m;
      ++refresh_changes_[s];
    }
    if (p_.throttle) {
      if (!throttled_[s] && hot > p_.throttle_above_c) {
        throttled_[s] = 1;
        ++events_[s];
      } else if (throttled_[s] && hot < p_.throttle_release_c) {
        throttled_[s] = 0;
      }
    }
  }
}

double HbmThermalCore::throttled_s(uint32_t s, TimePs now_ps) const {
  const double tail = now_ps > last_ps_ && throttled_[s] ? ps_to_s(now_ps - last_ps_) : 0.0;
  return throttled_acc_s_[s] + tail;
}

double HbmThermalCore::refresh_multiplier_stack_s(TimePs now_ps) const {
  const double tail = now_ps > last_ps_ ? ps_to_s(now_ps - last_ps_) : 0.0;
  double t = 0;
  for (uint32_t s = 0; s < p_.stacks; ++s)
    t += mult_s_[s] + mult_[s] * tail;
  return t;
}

void HbmThermalCore::sample(TimePs now_ps) {
  ring_head_ = ring_count_ == 0 ? 0 : (ring_head_ + 1) % ring_;
  ring_count_ = std::min(ring_count_ + 1, ring_);
  sample_ps_[ring_head_] = now_ps;
  for (uint32_t s = 0; s < p_.stacks; ++s)
    sample_c_[ring_head_ * p_.stacks + s] = stack_max_c(s);
}

void HbmThermalCore::keep_history(TimePs late_ps) {
  const size_t want =
      static_cast<size_t>((p_.telemetry_delay_ps + late_ps) / p_.telemetry_period_ps) + 2;
  if (want <= ring_) return;
  // Re-lay the samples taken so far (oldest first) into the larger ring.
  std::vector<TimePs> ps(want, 0);
  std::vector<double> c(want * p_.stacks, 0.0);
  for (size_t i = 0; i < ring_count_; ++i) {
    const size_t from = (ring_head_ + ring_ - (ring_count_ - 1 - i)) % ring_;
    ps[i] = sample_ps_[from];
    for (uint32_t s = 0; s < p_.stacks; ++s)
      c[i * p_.stacks + s] = sample_c_[from * p_.stacks + s];
  }
  ring_ = want;
  ring_head_ = ring_count_ == 0 ? 0 : ring_count_ - 1;
  sample_ps_ = std::move(ps);
  sample_c_ = std::move(c);
}

TemperatureReading HbmThermalCore::read(uint32_t sensor, TimePs now_ps) const {
  TemperatureReading r;
  if (sensor >= p_.stacks) return r;
  for (size_t i = 0; i < ring_count_; ++i) {
    const size_t slot = (ring_head_ + ring_ - i) % ring_;
    if (sample_ps_[slot] + p_.telemetry_delay_ps <= now_ps) {
      r.valid = true;
      r.celsius = sample_c_[slot * p_.stacks + sensor];
      r.sampled_ps = sample_ps_[slot];
      return r;
    }
  }
  return r;
}

}  // namespace tiersim
