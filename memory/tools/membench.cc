#include "memory/tools/membench.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace tiersim {

Table membench_points(const DramStackSpec& spec, const DramPattern& base, bool closed_loop,
                      const std::vector<double>& loads, double duration_us) {
  const char* mode_name = closed_loop ? "closed" : "open";
  Table t;
  const size_t c_pattern = t.add_column("pattern", Table::Type::kStr);
  const size_t c_mode = t.add_column("mode", Table::Type::kStr);
  const size_t c_load = t.add_column("load", Table::Type::kF64);
  const size_t c_reads = t.add_column("read_fraction", Table::Type::kF64, "fraction");
  const size_t c_request = t.add_column("request_bytes", Table::Type::kU64, "bytes");
  const size_t c_bw = t.add_column("bandwidth_bytes_per_s", Table::Type::kF64, "bytes/s");
  const size_t c_eff = t.add_column("efficiency", Table::Type::kF64, "fraction");
  const size_t c_mean = t.add_column("mean_latency_ns", Table::Type::kF64, "ns");
  const size_t c_p99 = t.add_column("p99_latency_ns", Table::Type::kF64, "ns");
  const size_t c_hits = t.add_column("row_hit_rate", Table::Type::kF64, "fraction");
  std::printf("%-8s %-6s %8s %10s %7s %10s %10s %8s\n", "pattern", "mode", "load", "GB/s",
              "of peak", "mean ns", "p99 ns", "row hits");
  for (double load : loads) {
    DramPattern p = base;
    const double at_peak_bytes = spec.peak_bytes_per_s() * duration_us * 1e-6;
    if (closed_loop) {
      p.outstanding = static_cast<uint32_t>(load);
      if (p.outstanding == 0 || double(p.outstanding) != load) {
        throw std::invalid_argument("--points: closed-loop points are whole request counts");
      }
      p.total_bytes = std::max<uint64_t>(p.request_bytes * 2000, uint64_t(at_peak_bytes));
    } else {
      if (load >= 1.0) throw std::invalid_argument("--points: open-loop loads must be < 1");
      p.injection_bytes_per_s = load * spec.peak_bytes_per_s();
      p.total_bytes = std::max<uint64_t>(p.request_bytes * 2000, uint64_t(at_peak_bytes * load));
    }
    p.total_bytes -= p.total_bytes % p.request_bytes;
    const DramPatternResult r = run_dram_pattern(spec, p);
    t.columns[c_pattern].str.push_back(p.name);
    t.columns[c_mode].str.push_back(mode_name);
    t.columns[c_load].f64.push_back(load);
    t.columns[c_reads].f64.push_back(p.read_fraction);
    t.columns[c_request].u64.push_back(p.request_bytes);
    t.columns[c_bw].f64.push_back(r.bandwidth_bytes_per_s);
    t.columns[c_eff].f64.push_back(r.efficiency);
    t.columns[c_mean].f64.push_back(r.mean_latency_ps / 1e3);
    t.columns[c_p99].f64.push_back(r.p99_latency_ps / 1e3);
    t.columns[c_hits].f64.push_back(r.row_hit_rate);
    std::printf("%-8s %-6s %8g %10.1f %6.1f%% %10.1f %10.1f %7.1f%%\n", p.name.c_str(), mode_name,
                load, r.bandwidth_bytes_per_s / 1e9, 100 * r.efficiency, r.mean_latency_ps / 1e3,
                r.p99_latency_ps / 1e3, 100 * r.row_hit_rate);
  }
  return t;
}

}  // namespace tiersim
