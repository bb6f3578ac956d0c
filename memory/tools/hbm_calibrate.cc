#include "memory/tools/hbm_calibrate.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>

#include "memory/hbm_device.h"

namespace tiersim {

double min_calibration_duration_us(const DramStackSpec& spec) {
  // The steady window starts at 20% of the run; by then the controller must have used up its
  // refresh postponement (max_postponed + 1 intervals), so refresh is paid in the window.
  const double interval_us = double(spec.timing.refi) * spec.timing.tck_ps * 1e-6;
  return spec.policy.refresh == RefreshMode::kNone
             ? 10.0
             : 5.0 * (spec.policy.max_postponed_refreshes + 1) * interval_us * 1.1;
}

HbmCalibration calibrate_hbm(const DramStackSpec& spec, double requested_us) {
  const double duration_us = std::max(requested_us, min_calibration_duration_us(spec));
  const uint64_t stream_bytes =
      static_cast<uint64_t>(spec.peak_bytes_per_s() * duration_us * 1e-6) & ~uint64_t{4095};
  using K = DramPattern::Kind;
  std::vector<DramPattern> set = {
      {"decode_tiles", K::kStream, 1.0, 2u << 20, 0, 4, 0,
       std::max<uint64_t>(stream_bytes & ~uint64_t((2u << 20) - 1), 8u << 20), 1},
      {"stream_read", K::kStream, 1.0, 4096, 0, 256, 0, stream_bytes, 1},
      {"mix_2to1", K::kStream, 2.0 / 3.0, 4096, 0, 256, 0, stream_bytes, 2},
      {"random_read", K::kRandom, 1.0, 64, 0, 1024, 0,
       std::max<uint64_t>(stream_bytes / 8, 1 << 20), 3},
      {"unloaded_read", K::kRandom, 1.0, 64, 0, 1, 0, 64 * 2000, 4},
  };
  HbmCalibration c;
  c.duration_us = duration_us;
  for (const auto& p : set)
    c.patterns.push_back({p, run_dram_pattern(spec, p)});
  c.efficiency_fraction = c.patterns[0].second.efficiency;
  c.latency_ps = static_cast<uint64_t>(std::llround(c.patterns.back().second.mean_latency_ps));
  // The same stream without refresh: refresh's share of the bandwidth.
  DramStackSpec no_refresh = spec;
  no_refresh.policy.refresh = RefreshMode::kNone;
  DramPattern stream_off = set[1];
  stream_off.name = "stream_no_refresh";
  const DramPatternResult off = run_dram_pattern(no_refresh, stream_off);
  c.patterns.push_back({stream_off, off});
  c.refresh_overhead_fraction =
      spec.policy.refresh == RefreshMode::kNone
          ? 0.0
          : std::max(0.0,
                     1.0 - c.patterns[1].second.bandwidth_bytes_per_s / off.bandwidth_bytes_per_s);
  return c;
}

FastPenalties derive_fast_penalties(const HbmCalibration& c, double peak_per_channel,
                                    uint64_t interleave_bytes) {
  auto eff = [&](const char* name) {
    for (const auto& [p, r] : c.patterns) {
      if (p.name == name) return r.efficiency;
    }
    return 0.0;
  };
  const double s = eff("stream_read"), r = eff("random_read"), m = eff("mix_2to1");
  FastPenalties f;
  const double ps_per_byte = 1e12 / peak_per_channel;
  if (s > 0 && r > 0 && r < s) {
    f.miss_penalty_ps = static_cast<uint64_t>(std::llround(64 * ps_per_byte * (1 / r - 1 / s)));
  }
  const double part = static_cast<double>(std::min<uint64_t>(4096, interleave_bytes));
  const double w = 1.0 / 3.0, switches = 2 * w * (1 - w);
  if (s > 0 && m > 0 && m < s) {
    f.turnaround_ps =
        static_cast<uint64_t>(std::llround(part * ps_per_byte * (1 / m - 1 / s) / switches));
  }
  return f;
}

void print_calibration(const HbmCalibration& c, const DramStackSpec& spec, std::ostream& os) {
  os << "bandwidth patterns ran " << std::fixed << std::setprecision(0) << c.duration_us
     << " us (at peak); steady window 20-70% of each run\n";
  os << "pattern         request  in flight  read   GB/s     of peak  row hits  mean ns   p99 ns\n";
  for (const auto& [p, r] : c.patterns) {
    os << std::left << std::setw(15) << p.name << " " << std::right << std::setw(7)
       << p.request_bytes << "  " << std::setw(9) << p.outstanding << "  " << std::setw(4)
       << std::fixed << std::setprecision(2) << p.read_fraction << "  " << std::setw(7)
       << std::setprecision(1) << r.bandwidth_bytes_per_s / 1e9 << "  " << std::setw(6)
       << std::setprecision(1) << 100 * r.efficiency << "%  " << std::setw(7)
       << std::setprecision(1) << 100 * r.row_hit_rate << "%  " << std::setw(7)
       << std::setprecision(1) << r.mean_latency_ps / 1e3 << "  " << std::setw(7)
       << r.p99_latency_ps / 1e3 << "\n";
  }
  os << "peak " << std::setprecision(1) << spec.peak_bytes_per_s() / 1e9 << " GB/s per stack\n"
     << std::defaultfloat;
}

CalibratedFastFields calibrated_fast_fields(const config::HbmFast& c, const HbmCalibration& cal) {
  const double peak_per_channel =
      c.pin_data_rate_mbps() * 1e6 * c.bus_width_bits() / 8.0 / c.channels_per_stack();
  const FastPenalties pen = derive_fast_penalties(cal, peak_per_channel, c.interleave_bytes());
  // The fast level adds a part's service (and a miss) to latency_ps: subtract them from the
  // measured unloaded latency so a lone 64-byte read takes what the detailed level says.
  const double lone_service_ps =
      64e12 / (peak_per_channel * cal.efficiency_fraction) + double(pen.miss_penalty_ps);
  return {cal.efficiency_fraction,
          static_cast<uint64_t>(std::max(0.0, double(cal.latency_ps) - lone_service_ps)),
          pen.miss_penalty_ps, pen.turnaround_ps, cal.refresh_overhead_fraction};
}

BandwidthMemoryParams device_calibrated_params(const config::HbmFast& c) {
  const CalibratedFastFields f = calibrated_fast_fields(
      c, calibrate_hbm(dram_spec_from_config(c.device()), kDefaultCalibrationUs));
  config::HbmFast fast = c;
  fast.set_efficiency_fraction(f.efficiency_fraction);
  fast.set_latency_ps(f.latency_ps);
  fast.set_miss_penalty_ps(f.miss_penalty_ps);
  fast.set_turnaround_ps(f.turnaround_ps);
  fast.set_refresh_overhead_fraction(f.refresh_overhead_fraction);
  return BandwidthMemoryParams::from_config(fast);
}

}  // namespace tiersim
