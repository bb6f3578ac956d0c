// On-package SRAM used as a scratchpad of staging buffers.
//
// What is modelled: a read port and a write port, each a bandwidth server, plus a fixed access
// latency; capacity bounds what the address map and staging buffers may use.
// Fidelity: fast. Banks, chiplet meshes, cache mode and wired residency arrive with the tiers
// issue. Requests reserved with a future start are served in reservation order.
#pragma once

#include <tlm_utils/multi_passthrough_target_socket.h>

#include "configs/tiersim.pb.h"
#include "models/bandwidth_server.h"
#include "models/component.h"
#include "models/config_error.h"
#include "models/stats.h"

namespace tiersim {

struct SramParams {
  uint64_t capacity_bytes;
  double read_bandwidth_bytes_per_s;
  double write_bandwidth_bytes_per_s;
  TimePs latency_ps;

  static void validate(const config::Sram& c, Validator& v);
  static SramParams from_config(const config::Sram& c);
};

class Sram : public Component {
 public:
  // Any number of initiators may bind (the id is the binding index).
  tlm_utils::multi_passthrough_target_socket<Sram> socket;

  Sram(sc_core::sc_module_name name, const SramParams& params, Context& ctx);

  Tier tier() const override { return Tier::kSram; }
  TargetSocket* target_socket() override { return &socket; }
  uint64_t bytes_read() const override { return bytes_read_.value(); }
  uint64_t bytes_written() const override { return bytes_written_.value(); }
  const SramParams& params() const { return params_; }

 private:
  void b_transport(int id, tlm::tlm_generic_payload& p, sc_core::sc_time& delay);

  const SramParams params_;
  BandwidthServer read_port_, write_port_;
  Counter& bytes_read_;
  Counter& bytes_written_;
};

}  // namespace tiersim
