// Temperature telemetry as a controller sees it: what a movement controller (accelerators/
// orchestration) may read about a component's temperatures, with the sampling period and the
// delay of the path it reads through (a DCGM-like host reading: hundreds of ms; an on-package
// sensor read by a hardware controller: microseconds). Plain C++; the provider (memory/
// hbm_thermal.h) registers itself in the Context under its component's name.
//
// Contract: read(sensor, now) returns the newest sample whose sample time + delay <= now, or an
// invalid reading before the first sample becomes visible. Samples are taken at multiples of
// period_ps(); a reader at exactly a sample's visible time may still see the previous sample if
// the provider has not yet processed that time (SystemC evaluation order). A reader that reads
// late (a controller acting on what it read its decision latency earlier) calls
// keep_history(late) before the simulation starts, so that read(sensor, now - late) still finds
// the sample it would have seen.
#pragma once

#include <cstdint>

#include "models/core/time.h"

namespace tiersim {

struct TemperatureReading {
  bool valid = false;
  double celsius = 0;     // the sensor's value (an HBM stack: its hottest die)
  TimePs sampled_ps = 0;  // when the value was true
};

class ThermalTelemetry {
 public:
  virtual ~ThermalTelemetry() = default;
  virtual uint32_t sensor_count() const = 0;  // an hbm component: one per stack
  virtual TemperatureReading read(uint32_t sensor, TimePs now_ps) const = 0;
  virtual TimePs period_ps() const = 0;
  virtual TimePs delay_ps() const = 0;
  // Keeps enough samples for reads up to `late_ps` behind the newest time (before the first
  // simulated step; the largest request wins).
  virtual void keep_history(TimePs late_ps) = 0;
};

}  // namespace tiersim
