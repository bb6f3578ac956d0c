// One serial-link direction (electrical or optical), plain C++: the timing and energy core that
// initiators apply to the links they transfer over (system.links[].serial) and that link and
// switch components will use. A transfer of n bytes:
// - waits for the link to be free (first come, first served) and for any retrain in progress;
// - serialises its wire bytes at lanes x lane rate x encoding efficiency (flit mode: whole flits,
//   flit_bytes on the wire per flit_payload_bytes of data) / link-layer efficiency;
// - each flit (or 256-byte packet without flits) is hit by a bit error with probability
//   1 - (1 - BER)^bits and is replayed: retransmit latency plus its serialisation again;
// - a retrain event (Poisson, retrain_rate_per_s) takes the link down for retrain_duration_ps:
//   serialisation stops and resumes after it;
// - the last byte then arrives after the fixed PHY and FEC latency, the propagation over
//   length_m, and a jitter draw.
// Fidelity: fast (bandwidth server with latency); no credit flow control, no lane-level skew.
// Deterministic: every draw comes from the link's own seeded stream.
#pragma once

#include <cstdint>

#include "configs/tiersim.pb.h"
#include "models/config_error.h"
#include "models/rng.h"
#include "models/time.h"

namespace tiersim {

struct LinkParams {
  uint32_t lanes = 1;
  double lane_rate_gbps = 0;
  double encoding_efficiency = 1;
  uint32_t flit_bytes = 0, flit_payload_bytes = 0;  // 0: byte stream
  double link_layer_efficiency = 1;
  double length_m = 0, propagation_ps_per_m = 4900;
  TimePs phy_latency_ps = 0, fec_latency_ps = 0;
  config::Jitter jitter;
  double bit_error_rate = 0;
  TimePs retransmit_latency_ps = 0;
  double retrain_rate_per_s = 0;
  TimePs retrain_duration_ps = 0;
  double energy_pj_per_bit = 0, static_power_w = 0;

  // Raw bytes per second on the wire, and data bytes per second after encoding, flits and the
  // link layer.
  double wire_bytes_per_s() const {
    return lanes * lane_rate_gbps * 1e9 / 8.0 * encoding_efficiency;
  }
  double data_bytes_per_s() const;
  // Wire bytes for `bytes` of data (whole flits in flit mode).
  uint64_t wire_bytes(uint64_t bytes) const;
  // Fixed latency of every transfer: PHY, FEC and propagation (no jitter).
  TimePs fixed_latency_ps() const;

  static void validate(const config::SerialLink& c, Validator& v);
  static LinkParams from_config(const config::SerialLink& c);
};

class LinkModel {
 public:
  LinkModel(const LinkParams& p, uint64_t seed);

  // Sends `bytes` offered at `start_ps`; returns when the last byte has arrived.
  TimePs transfer(TimePs start_ps, uint64_t bytes);

  const LinkParams& params() const { return p_; }
  uint64_t transfers() const { return transfers_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t replays() const { return replays_; }
  uint64_t retrains() const { return retrains_; }
  TimePs retrain_wait_ps() const { return retrain_wait_ps_; }
  double energy_j() const { return double(bytes_) * 8.0 * p_.energy_pj_per_bit * 1e-12; }

 private:
  TimePs serialise_ps(uint64_t wire_bytes) const;
  TimePs draw_jitter();
  TimePs next_retrain_gap();
  // Runs the link from `begin` for `busy` ps of transmission, pausing for retrains.
  TimePs transmit(TimePs begin, TimePs busy);

  LinkParams p_;
  Rng rng_;
  TimePs busy_until_ = 0;
  TimePs next_retrain_ps_ = 0;  // start of the next retrain (UINT64_MAX: none)
  uint64_t unit_bits_ = 0;      // bits per replay unit (a flit or a 256-byte packet)
  double unit_error_ = 0;       // probability a unit needs a replay
  uint64_t transfers_ = 0, bytes_ = 0, replays_ = 0, retrains_ = 0;
  TimePs retrain_wait_ps_ = 0;
};

}  // namespace tiersim
