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
// - retimers on the channel add retimer_latency_ps each, one way;
// - streaming: a stage that receives data still arriving (a read response behind a memory, a
//   write behind an upstream link) cannot finish before the last input byte plus one flit
//   (cut-through pipelining, not store-and-forward per transfer); it holds the link only for
//   its own serialisation, as late as that bound allows;
// - priority levels (a switch's virtual channels): strict priority, higher first, non-
//   preemptive: a transfer waits for earlier work of its own or higher levels plus at most one
//   packet of lower-level work already on the wire; its service pushes back lower levels;
// - scheduled outages (fault injection): the link carries nothing (factor 0) or serialises at a
//   fraction of its rate during an interval; transfers in flight wait, as for a retrain.
// Fidelity: fast (bandwidth server with latency); no credit flow control, no lane-level skew.
// Retrains and outages are applied in call order (a transfer reserved later with an earlier
// start sees the retrains its predecessors drew). Deterministic: every draw comes from the
// link's own seeded stream.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/rng.h"
#include "models/core/time.h"

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
  double retimer_energy_pj_per_bit = 0;  // per data bit, per retimer
  double laser_power_w = 0;              // optics: per direction, always on
  uint32_t retimers = 0;
  TimePs retimer_latency_ps = 0;
  uint32_t message_bytes = 16;
  uint32_t max_request_bytes = 0;  // 0: one message per transfer
  double port_cost_usd = 0;        // reported only (pods): the medium at one end

  // Request messages (or completions) for a transfer of `bytes`.
  uint64_t messages_for(uint64_t bytes) const {
    return max_request_bytes ? (bytes + max_request_bytes - 1) / max_request_bytes : 1;
  }

  // Raw bytes per second on the wire, and data bytes per second after encoding, flits and the
  // link layer.
  double wire_bytes_per_s() const {
    return lanes * lane_rate_gbps * 1e9 / 8.0 * encoding_efficiency;
  }
  double data_bytes_per_s() const;
  // Wire bytes for `bytes` of data (whole flits in flit mode).
  uint64_t wire_bytes(uint64_t bytes) const;
  // Fixed latency of every transfer: PHY, FEC, retimers and propagation (no jitter).
  TimePs fixed_latency_ps() const;

  static void validate(const config::SerialLink& c, Validator& v);
  static LinkParams from_config(const config::SerialLink& c);
};

// A draw of `j` (fixed, uniform, or normal truncated at zero) from `rng`; its validation.
TimePs draw_jitter(const config::Jitter& j, Rng& rng);
void validate_jitter(const config::Jitter& j, Validator v);

class LinkModel {
 public:
  static constexpr uint32_t kPriorities = 8;            // virtual-channel priorities 0..7
  static constexpr uint32_t kLevels = 2 * kPriorities;  // data and messages of each priority
  static constexpr TimePs kNever = UINT64_MAX;

  LinkModel(const LinkParams& p, uint64_t seed);

  // Sends `bytes` offered at `start_ps` at `priority` (< kPriorities); the last input byte is
  // available at `data_last_ps` (<= start_ps: all of it is there). Returns when the last byte
  // has arrived, or kNever when an outage without end stops it.
  TimePs transfer(TimePs start_ps, uint64_t bytes, TimePs data_last_ps = 0, uint32_t priority = 0) {
    return send(start_ps, bytes, data_last_ps, 2 * std::min(priority, kPriorities - 1), false);
  }
  // `count` messages without data (requests or completions), message_bytes each, packed into
  // flits; counted in message_count(), not in transfers() or bytes(). Messages travel in header
  // slots between data packets: they wait for messages of their priority and for data and
  // messages of higher priorities, and at most one packet of anything else; their
  // serialisation pushes queued data of their priority back.
  TimePs message(TimePs start_ps, uint64_t count = 1, uint32_t priority = 0) {
    messages_ += count - 1;
    return send(start_ps, count * p_.message_bytes, 0, 2 * std::min(priority, kPriorities - 1) + 1,
                true);
  }

  // Fault injection: during [start_ps, end_ps) the link serialises at `rate_fraction` of its
  // rate (0: down). end_ps kNever: until the end of the run.
  void add_outage(TimePs start_ps, TimePs end_ps, double rate_fraction);
  // Whether a scheduled outage (rate 0) covers `t`, and when the link is up again (kNever: not
  // before the end of the run).
  bool down_at(TimePs t) const;
  TimePs up_after(TimePs t) const;

  const LinkParams& params() const { return p_; }
  // The time `bytes` of data take on the wire at full rate (encoding, flits, link layer).
  TimePs serialisation_ps(uint64_t bytes) const { return serialise_ps(p_.wire_bytes(bytes)); }
  uint64_t transfers() const { return transfers_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t replays() const { return replays_; }
  uint64_t retrains() const { return retrains_; }
  TimePs retrain_wait_ps() const { return retrain_wait_ps_; }
  TimePs outage_wait_ps() const { return outage_wait_ps_; }
  // Of that, the time spent waiting while the link was down (rate 0), not merely degraded.
  TimePs down_wait_ps() const { return down_wait_ps_; }
  uint64_t message_count() const { return messages_; }
  // When the first byte of the latest transfer or message arrived (no jitter).
  TimePs last_first_arrival_ps() const { return last_first_ps_; }
  // When the latest transfer's last byte left (its serialisation, replays included, ended).
  TimePs last_sent_ps() const { return last_sent_ps_; }
  // When all work accepted so far is done on the wire.
  TimePs busy_until_ps() const { return busy_[0]; }
  // When every data transfer accepted so far (of any priority) has left, messages aside: what a
  // packet that may not pass data waits for (a PCIe completion behind posted writes). Each
  // transfer's own end: a lower-priority transfer pushed back by later higher-priority work
  // (busy_until_ps() counts that) is taken as ending where it was placed.
  TimePs data_sent_ps() const { return data_sent_ps_; }
  // When a packet that may pass everything queued (a PCIe request passing completions, on a
  // direction that carries no other requests), offered at `t`, would start: after at most the
  // packet on the wire, and any scheduled outage (kNever: the link is not up again). Nothing is
  // reserved. Priorities do not hold it back: a PCIe link with one virtual channel interleaves
  // packets.
  TimePs packet_start_ps(TimePs t) const;
  // Dynamic energy so far: data bits moved through the SerDes and through each retimer.
  double energy_j() const { return double(bytes_) * 8.0 * p_.energy_pj_per_bit * 1e-12; }
  double retimer_energy_j() const {
    return double(bytes_) * 8.0 * p_.retimer_energy_pj_per_bit * p_.retimers * 1e-12;
  }

 private:
  TimePs send(TimePs start_ps, uint64_t bytes, TimePs data_last_ps, uint32_t level,
              bool is_message);
  TimePs serialise_ps(uint64_t wire_bytes) const;
  TimePs draw_jitter();
  TimePs next_retrain_gap();
  // Runs the link from `begin` for `busy` ps of transmission at full rate, pausing for retrains
  // and outages and slowing during degradations. kNever: an outage without end.
  TimePs transmit(TimePs begin, TimePs busy);

  struct Outage {
    TimePs start_ps, end_ps;
    double rate_fraction;
  };
  LinkParams p_;
  Rng rng_;
  TimePs busy_[kLevels] = {};  // when work of level >= l accepted so far is done
  std::vector<Outage> outages_;
  uint64_t messages_ = 0;
  TimePs last_first_ps_ = 0, last_sent_ps_ = 0;
  TimePs outage_wait_ps_ = 0;
  TimePs down_wait_ps_ = 0;
  TimePs data_sent_ps_ = 0;     // the latest data transfer's serialisation ended
  TimePs next_retrain_ps_ = 0;  // start of the next retrain (UINT64_MAX: none)
  uint64_t unit_bits_ = 0;      // bits per replay unit (a flit or a 256-byte packet)
  double unit_error_ = 0;       // probability a unit needs a replay
  uint64_t transfers_ = 0, bytes_ = 0, replays_ = 0, retrains_ = 0;
  TimePs retrain_wait_ps_ = 0;
};

}  // namespace tiersim
