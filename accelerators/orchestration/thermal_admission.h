// Thermal-safe admission as a movement controller: reads an hbm component's temperature
// telemetry (models/core/thermal_telemetry.h) through its controller's latency and gates the
// serving scheduler (models/core/admission_gate.h) with the state machine of
// accelerators/policies/thermal_gate.h. Config: policy.thermal_admission.
//
// Fidelity: the controller acts, at each step's planning, on the hottest stack's reading as it
// stood decision_latency_ps earlier (the sensor path's own period and delay are the hbm's
// telemetry settings); decisions cost no queueing and no jitter; backpressure idles the
// scheduler after a step for cool_idle_fraction / (1 - cool_idle_fraction) of that step's time.
#pragma once

#include <string>
#include <vector>

#include "accelerators/orchestration/params.h"
#include "accelerators/policies/thermal_gate.h"
#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/admission_gate.h"
#include "models/core/context.h"
#include "models/core/summary.h"
#include "models/core/thermal_telemetry.h"

namespace tiersim {

struct ThermalAdmissionParams {
  std::string memory;
  config::ControllerPlacement controller = config::HOST_CPU;
  TimePs decision_latency_ps = 0;
  ThermalGateParams gate;

  static void validate(const config::Config& root, Validator v);
  static ThermalAdmissionParams from_config(const config::ThermalAdmission& c);
};

class ThermalAdmission : public AdmissionGate {
 public:
  // Registers its stats under `group`; the memory's telemetry must be registered in `ctx`.
  ThermalAdmission(const ThermalAdmissionParams& p, Context& ctx, const std::string& group);

  AdmissionDecision decide(TimePs now_ps) override;
  void step_done(TimePs start_ps, TimePs end_ps) override;

  // thermal_admission_{normal,drain,cool,recover}_s, _cool_entries, _drain_entries, _decisions.
  void summarize(std::vector<SummaryItem>& out, TimePs now_ps) const;
  const ThermalGate& gate() const { return gate_; }

 private:
  ThermalAdmissionParams p_;
  ThermalTelemetry* telemetry_;
  ThermalGate gate_;
  TimePs hold_until_ps_ = 0;  // backpressure after the last step (COOL)
  Counter& decisions_;
  Scalar& state_;
  Scalar& signal_c_;
};

}  // namespace tiersim
