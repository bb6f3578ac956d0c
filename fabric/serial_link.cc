#include "fabric/serial_link.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/config/energy_checks.h"

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
  return phy_latency_ps + fec_latency_ps + TimePs{retimers} * retimer_latency_ps +
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
  if (c.has_reach_m() && v.positive("reach_m", true, c.reach_m()) && c.has_length_m() &&
      c.length_m() > c.reach_m()) {
    v.error("length_m", "is beyond the medium's reach_m (" + std::to_string(c.reach_m()) +
                            " m): use a medium that reaches that far");
  }
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
  validate_jitter(c.jitter(), v.at("jitter"));
  energy_field(v, "energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
  energy_field(v, "retimer_energy_pj_per_bit", c.has_retimer_energy_pj_per_bit(),
               c.retimer_energy_pj_per_bit());
  energy_field(v, "laser_power_w", c.has_laser_power_w(), c.laser_power_w());
  energy_field(v, "port_cost_usd", c.has_port_cost_usd(), c.port_cost_usd());
  if (c.retimers() > 0 && !c.has_retimer_latency_ps()) {
    v.error("retimer_latency_ps", "needed with retimers");
  }
  if (c.has_message_bytes()) v.positive("message_bytes", true, c.message_bytes());
  if (c.has_max_request_bytes()) {
    v.positive("max_request_bytes", true, c.max_request_bytes());
  }
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
  p.retimer_energy_pj_per_bit = c.retimer_energy_pj_per_bit();
  p.laser_power_w = c.laser_power_w();
  p.port_cost_usd = c.port_cost_usd();
  p.retimers = c.retimers();
  p.retimer_latency_ps = c.retimer_latency_ps();
  p.message_bytes = c.has_message_bytes() ? c.message_bytes() : 16;
  p.max_request_bytes = c.max_request_bytes();
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
  return tiersim::draw_jitter(p_.jitter, rng_);
}

void validate_jitter(const config::Jitter& j, Validator v) {
  if (j.has_uniform() && j.uniform().min_ps() > j.uniform().max_ps()) {
    v.at("uniform").error("max_ps", "below min_ps");
  }
  if (j.has_normal() && !(j.normal().sd_ps() >= 0 && j.normal().mean_ps() >= 0)) {
    v.at("normal").error("sd_ps", "mean and sd must be zero or positive");
  }
}

TimePs draw_jitter(const config::Jitter& j, Rng& rng) {
  switch (j.kind_case()) {
    case config::Jitter::kFixedPs:
      return j.fixed_ps();
    case config::Jitter::kUniform:
      return j.uniform().min_ps() + rng.below(j.uniform().max_ps() - j.uniform().min_ps() + 1);
    case config::Jitter::kNormal: {
      // Box-Muller (the library's normal distribution is not portable), truncated at zero.
      const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
      return static_cast<TimePs>(std::max(0.0, j.normal().mean_ps() + j.normal().sd_ps() * z));
    }
    default:
      return 0;
  }
}

void LinkModel::add_outage(TimePs start_ps, TimePs end_ps, double rate_fraction) {
  outages_.push_back({start_ps, end_ps, rate_fraction});
  std::sort(outages_.begin(), outages_.end(),
            [](const Outage& a, const Outage& b) { return a.start_ps < b.start_ps; });
}

bool LinkModel::down_at(TimePs t) const {
  for (const auto& o : outages_) {
    if (o.rate_fraction <= 0 && o.start_ps <= t && t < o.end_ps) return true;
  }
  return false;
}

TimePs LinkModel::up_after(TimePs t) const {
  // Outages may chain: follow them until a moment no outage covers.
  bool moved = true;
  while (moved && t != kNever) {
    moved = false;
    for (const auto& o : outages_) {
      if (o.rate_fraction <= 0 && o.start_ps <= t && t < o.end_ps) {
        t = o.end_ps;
        moved = true;
      }
    }
  }
  return t;
}

TimePs LinkModel::transmit(TimePs t, TimePs left) {
  while (true) {
    // Retrains that ended at or before `t` happened while the link idled: no wait.
    while (next_retrain_ps_ != UINT64_MAX && next_retrain_ps_ + p_.retrain_duration_ps <= t) {
      ++retrains_;
      next_retrain_ps_ += p_.retrain_duration_ps + next_retrain_gap();
    }
    if (left == 0) return t;
    // The rate at `t` and the next moment it changes.
    double rate = 1.0;
    TimePs change = next_retrain_ps_;
    bool retraining = false;
    if (next_retrain_ps_ != UINT64_MAX && next_retrain_ps_ <= t) {
      rate = 0;
      retraining = true;
      change = next_retrain_ps_ + p_.retrain_duration_ps;
    }
    for (const auto& o : outages_) {
      if (o.end_ps <= t) continue;
      if (o.start_ps > t) {
        change = std::min(change, o.start_ps);
        continue;
      }
      rate = std::min(rate, o.rate_fraction);
      change = std::min(change, o.end_ps);
    }
    if (rate <= 0) {
      if (change == kNever) return kNever;
      (retraining ? retrain_wait_ps_ : outage_wait_ps_) += change - t;
      if (!retraining) down_wait_ps_ += change - t;
      t = change;
      continue;
    }
    TimePs need = left;
    if (rate < 1) {
      const double ps = std::ceil(double(left) / rate);
      if (!(ps <= double(kMaxSimTimePs))) {
        char msg[200];
        std::snprintf(msg, sizeof(msg),
                      "a link degraded to %.3g of its rate would take %.3g s of simulated time "
                      "for one transfer, past the 2^62 ps limit",
                      rate, ps / kPsPerS);
        raise_run_input_error(msg);
      }
      need = static_cast<TimePs>(ps);
    }
    if (change == kNever || t + need <= change) return add_time_ps(t, need, "a link transfer");
    const TimePs done = static_cast<TimePs>(double(change - t) * rate);
    left -= std::min(left, done);
    if (rate < 1) outage_wait_ps_ += (change - t) - std::min(change - t, done);
    t = change;
  }
}

TimePs LinkModel::send(TimePs start_ps, uint64_t bytes, TimePs data_last_ps, uint32_t level,
                       bool is_message) {
  if (level >= kLevels) level = kLevels - 1;
  TimePs begin = std::max(start_ps, busy_[level]);
  // Non-preemptive priority: lower-level work on the wire finishes its packet first.
  if (level > 0 && busy_[0] > begin) {
    const uint64_t unit = p_.flit_bytes ? p_.flit_bytes : kPacketBytes;
    begin += std::min(busy_[0] - begin, serialise_ps(unit));
  }
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
  // Streaming: hold the link for this transfer's serialisation only, ending no earlier than
  // one unit after its last input byte.
  const uint64_t first_unit =
      std::min<uint64_t>(wire, p_.flit_bytes ? p_.flit_bytes : kPacketBytes);
  if (data_last_ps > begin) {
    const TimePs ready = data_last_ps + serialise_ps(first_unit);
    if (ready > begin + busy) begin = ready - busy;
  }
  TimePs sent = transmit(begin, busy);
  if (sent == kNever) return kNever;
  last_first_ps_ = begin + serialise_ps(first_unit) + p_.fixed_latency_ps();
  if (data_last_ps > begin) sent = std::max(sent, data_last_ps + serialise_ps(first_unit));
  last_sent_ps_ = sent;
  busy_[level] = sent;
  for (uint32_t k = 0; k < level; ++k)
    busy_[k] = std::max(busy_[k], begin) + busy;
  replays_ += replays;
  if (is_message) {
    ++messages_;
  } else {
    ++transfers_;
    bytes_ += bytes;
    data_sent_ps_ = std::max(data_sent_ps_, sent);
  }
  return sent + p_.fixed_latency_ps() + replays * p_.retransmit_latency_ps + draw_jitter();
}

TimePs LinkModel::packet_start_ps(TimePs t) const {
  // At most the packet on the wire; nothing queued holds it back.
  TimePs begin = t;
  if (busy_[0] > begin) {
    const uint64_t unit = p_.flit_bytes ? p_.flit_bytes : kPacketBytes;
    begin += std::min(busy_[0] - begin, serialise_ps(unit));
  }
  return down_at(begin) ? up_after(begin) : begin;
}

}  // namespace tiersim
