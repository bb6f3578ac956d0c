#include "models/serial_link.h"

#include <algorithm>
#include <cmath>

namespace tiersim {

namespace {
constexpr uint64_t kPacketBytes = 256;  // replay unit of a link without flits
}  // namespace

double LinkParams::data_bytes_per_s() const {
  const double payload = flit_bytes ? double(flit_payload_bytes) / double(flit_bytes) : 1.0;
  return wire_bytes_per_s() * payload * link_layer_efficiency;
}

uint64_t LinkParams::wire_bytes(uint64_t bytes) const {
  if (flit_bytes == 0) return bytes;
  return (bytes + flit_payload_bytes - 1) / flit_payload_bytes * flit_bytes;
}

TimePs LinkParams::fixed_latency_ps() const {
  return phy_latency_ps + fec_latency_ps +
         static_cast<TimePs>(std::llround(length_m * propagation_ps_per_m));
}

void LinkParams::validate(const config::SerialLink& c, Validator& v) {
  v.positive("lanes", c.has_lanes(), c.lanes());
  v.positive("lane_rate_gbps", c.has_lane_rate_gbps(), c.lane_rate_gbps());
  if (c.has_encoding_efficiency()) {
    v.fraction("encoding_efficiency", true, c.encoding_efficiency());
  }
  if (c.has_flit_bytes() != c.has_flit_payload_bytes()) {
    v.error(c.has_flit_bytes() ? "flit_payload_bytes" : "flit_bytes",
            "flit mode needs both flit_bytes and flit_payload_bytes");
  } else if (c.has_flit_bytes() && v.positive("flit_bytes", true, c.flit_bytes()) &&
             v.positive("flit_payload_bytes", true, c.flit_payload_bytes()) &&
             c.flit_payload_bytes() > c.flit_bytes()) {
    v.error("flit_payload_bytes", "exceeds flit_bytes");
  }
  if (c.has_link_layer_efficiency()) {
    v.fraction("link_layer_efficiency", true, c.link_layer_efficiency());
  }
  v.non_negative("length_m", c.has_length_m(), c.length_m());
  if (c.has_propagation_ps_per_m() && !(c.propagation_ps_per_m() > 0)) {
    v.error("propagation_ps_per_m", "must be positive");
  }
  if (c.has_bit_error_rate() && !(c.bit_error_rate() >= 0 && c.bit_error_rate() <= 1e-3)) {
    v.error("bit_error_rate", "must be in [0, 1e-3] (a post-FEC rate)");
  }
  if (c.bit_error_rate() > 0 && !c.has_retransmit_latency_ps()) {
    v.error("retransmit_latency_ps", "needed with a bit_error_rate (the replay round trip)");
  }
  if (c.has_retrain_rate_per_s()) {
    if (!(c.retrain_rate_per_s() >= 0 && c.retrain_rate_per_s() <= 1e6)) {
      v.error("retrain_rate_per_s", "must be in [0, 1e6]");
    } else if (c.retrain_rate_per_s() > 0 && !c.has_retrain_duration_ps()) {
      v.error("retrain_duration_ps", "needed with a retrain_rate_per_s");
    }
  }
  const auto& j = c.jitter();
  if (j.has_uniform() && j.uniform().min_ps() > j.uniform().max_ps()) {
    v.at("jitter.uniform").error("max_ps", "below min_ps");
  }
  if (j.has_normal() && !(j.normal().sd_ps() >= 0 && j.normal().mean_ps() >= 0)) {
    v.at("jitter.normal").error("sd_ps", "mean and sd must be zero or positive");
  }
  v.non_negative("energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  v.non_negative("static_power_w", c.has_static_power_w(), c.static_power_w());
}

LinkParams LinkParams::from_config(const config::SerialLink& c) {
  LinkParams p;
  p.lanes = c.lanes();
  p.lane_rate_gbps = c.lane_rate_gbps();
  p.encoding_efficiency = c.has_encoding_efficiency() ? c.encoding_efficiency() : 1.0;
  p.flit_bytes = c.flit_bytes();
  p.flit_payload_bytes = c.flit_payload_bytes();
  p.link_layer_efficiency = c.has_link_layer_efficiency() ? c.link_layer_efficiency() : 1.0;
  p.length_m = c.length_m();
  p.propagation_ps_per_m = c.has_propagation_ps_per_m() ? c.propagation_ps_per_m() : 4900.0;
  p.phy_latency_ps = c.phy_latency_ps();
  p.fec_latency_ps = c.fec_latency_ps();
  p.jitter = c.jitter();
  p.bit_error_rate = c.bit_error_rate();
  p.retransmit_latency_ps = c.retransmit_latency_ps();
  p.retrain_rate_per_s = c.retrain_rate_per_s();
  p.retrain_duration_ps = c.retrain_duration_ps();
  p.energy_pj_per_bit = c.energy_pj_per_bit();
  p.static_power_w = c.static_power_w();
  return p;
}

LinkModel::LinkModel(const LinkParams& p, uint64_t seed) : p_(p), rng_(seed ^ 0x6c696e6bULL) {
  unit_bits_ = 8 * (p_.flit_bytes ? p_.flit_bytes : kPacketBytes);
  unit_error_ = p_.bit_error_rate > 0
                    ? -std::expm1(double(unit_bits_) * std::log1p(-p_.bit_error_rate))
                    : 0.0;
  next_retrain_ps_ = p_.retrain_rate_per_s > 0 ? next_retrain_gap() : UINT64_MAX;
}

TimePs LinkModel::serialise_ps(uint64_t wire_bytes) const {
  return static_cast<TimePs>(
      std::llround(double(wire_bytes) / (p_.wire_bytes_per_s() * p_.link_layer_efficiency) * 1e12));
}

TimePs LinkModel::next_retrain_gap() {
  // Exponential gap of a Poisson process (at least 1 ps).
  const double gap_s = -std::log(1.0 - rng_.uniform()) / p_.retrain_rate_per_s;
  return std::max<TimePs>(1, static_cast<TimePs>(gap_s * 1e12));
}

TimePs LinkModel::draw_jitter() {
  const auto& j = p_.jitter;
  switch (j.kind_case()) {
    case config::Jitter::kFixedPs:
      return j.fixed_ps();
    case config::Jitter::kUniform:
      return j.uniform().min_ps() + rng_.below(j.uniform().max_ps() - j.uniform().min_ps() + 1);
    case config::Jitter::kNormal: {
      // Box-Muller (the library's normal distribution is not portable), truncated at zero.
      const double u1 = 1.0 - rng_.uniform(), u2 = rng_.uniform();
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
      return static_cast<TimePs>(std::max(0.0, j.normal().mean_ps() + j.normal().sd_ps() * z));
    }
    default:
      return 0;
  }
}

TimePs LinkModel::transmit(TimePs begin, TimePs busy) {
  TimePs t = begin;
  TimePs left = busy;
  while (true) {
    // Retrains that ended before `t` happened while the link idled: no wait.
    while (next_retrain_ps_ != UINT64_MAX && next_retrain_ps_ + p_.retrain_duration_ps <= t) {
      ++retrains_;
      next_retrain_ps_ += p_.retrain_duration_ps + next_retrain_gap();
    }
    if (next_retrain_ps_ == UINT64_MAX || t + left <= next_retrain_ps_) return t + left;
    // Transmission runs up to the retrain, then waits for it to end.
    if (next_retrain_ps_ > t) {
      left -= next_retrain_ps_ - t;
      t = next_retrain_ps_;
    }
    const TimePs resume = next_retrain_ps_ + p_.retrain_duration_ps;
    retrain_wait_ps_ += resume - t;
    t = resume;
    ++retrains_;
    next_retrain_ps_ = resume + next_retrain_gap();
    if (left == 0) return t;
  }
}

TimePs LinkModel::transfer(TimePs start_ps, uint64_t bytes) {
  const TimePs begin = std::max(start_ps, busy_until_);
  const uint64_t wire = p_.wire_bytes(bytes);
  TimePs busy = serialise_ps(wire);
  // Replays: the positions of the units hit by an error, by geometric skips (a few draws even
  // for a large transfer at a low error rate).
  uint64_t replays = 0;
  if (unit_error_ > 0) {
    const uint64_t unit_bytes = unit_bits_ / 8;
    const uint64_t units = (wire + unit_bytes - 1) / unit_bytes;
    const double log_keep = std::log1p(-unit_error_);
    uint64_t at = 0;
    while (true) {
      const double skip = std::floor(std::log(1.0 - rng_.uniform()) / log_keep);
      if (!(skip < double(units - at))) break;
      at += static_cast<uint64_t>(skip) + 1;
      ++replays;
      if (at >= units) break;
    }
    busy += replays * serialise_ps(unit_bytes);
  }
  const TimePs sent = transmit(begin, busy);
  busy_until_ = sent;
  ++transfers_;
  bytes_ += bytes;
  replays_ += replays;
  return sent + p_.fixed_latency_ps() + replays * p_.retransmit_latency_ps + draw_jitter();
}

}  // namespace tiersim
