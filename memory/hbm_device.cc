#include "memory/hbm_device.h"

#include <cmath>
#include <sstream>

namespace tiersim {

namespace {
constexpr uint32_t kMaxTimingCycles = uint32_t{1} << 20;
constexpr uint64_t kMaxTckPs = 1000000;
}  // namespace

namespace {
std::string gbps(double v) {
  std::ostringstream os;
  os.precision(5);
  os << v / 1e9 << " GB/s";
  return os.str();
}
}  // namespace

void validate_hbm_device(const config::HbmDevice& d, const config::HbmFast& stack, Validator& v) {
  v.non_empty("name", d.has_name(), d.name());
  const auto& o = d.organization();
  Validator ov = v.at("organization");
  bool org_ok = true;
  org_ok &= ov.positive("channels", o.has_channels(), o.channels());
  org_ok &= ov.positive("pseudo_channels", o.has_pseudo_channels(), o.pseudo_channels());
  org_ok &= ov.positive("bank_groups", o.has_bank_groups(), o.bank_groups());
  org_ok &= ov.positive("banks_per_group", o.has_banks_per_group(), o.banks_per_group());
  if (org_ok && uint64_t{o.bank_groups()} * o.banks_per_group() > 0xffff) {
    // The controller's scheduler keys a bank in 16 bits.
    ov.error("banks_per_group",
             "at most 65535 banks per pseudo channel (bank_groups x "
             "banks_per_group), got " +
                 std::to_string(uint64_t{o.bank_groups()} * o.banks_per_group()));
    org_ok = false;
  }
  org_ok &= ov.positive("rows", o.has_rows(), o.rows());
  org_ok &= ov.positive("columns", o.has_columns(), o.columns());
  org_ok &= ov.positive("access_bytes", o.has_access_bytes(), o.access_bytes());

  const auto& t = d.timing();
  Validator tv = v.at("timing");
  bool timing_ok = tv.positive("tck_ps", t.has_tck_ps(), static_cast<double>(t.tck_ps()));
  if (t.tck_ps() > kMaxTckPs) {
    tv.error("tck_ps", "a clock period of at most 1 us, got " + std::to_string(t.tck_ps()));
    timing_ok = false;
  }
  // Every other timing must be set; zero is legal for none of them but cwl/rtw-like margins.
  // Each is bounded: timings of millions of cycles would make one request step through billions.
  const auto* desc = config::HbmTiming::descriptor();
  const auto* refl = t.GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (f->name() == "tck_ps") continue;
    if (f->name() != "burst_cycles" && !refl->HasField(t, f)) {
      tv.error(f->name(), "required field is not set");
      timing_ok = false;
    } else if (refl->GetUInt32(t, f) > kMaxTimingCycles) {
      tv.error(f->name(), "at most " + std::to_string(kMaxTimingCycles) + " cycles, got " +
                              std::to_string(refl->GetUInt32(t, f)));
      timing_ok = false;
    }
  }
  timing_ok &= tv.positive("burst_cycles", t.has_burst_cycles(), t.burst_cycles());
  if (timing_ok) {
    if (t.ccd_s() < t.burst_cycles()) tv.error("ccd_s", "must be >= burst_cycles (data bus)");
    if (t.ccd_l() < t.ccd_s()) tv.error("ccd_l", "must be >= ccd_s");
    if (t.rc() < t.ras() + t.rp()) tv.error("rc", "must be >= ras + rp");
    if (t.refi() <= t.rfc()) tv.error("refi", "must exceed rfc");
    if (t.refi_pb() == 0) tv.error("refi_pb", "must be > 0");
  }

  const auto& c = d.controller();
  Validator cv = v.at("controller");
  if (c.scheduler() == config::DRAM_SCHEDULER_UNSPECIFIED) {
    cv.error("scheduler", "required field is not set (FR_FCFS or FCFS)");
  }
  if (c.page_policy() == config::PAGE_POLICY_UNSPECIFIED) {
    cv.error("page_policy", "required field is not set (OPEN_PAGE, CLOSED_PAGE, ADAPTIVE_PAGE)");
  }
  if (c.refresh() == config::REFRESH_UNSPECIFIED) {
    cv.error("refresh",
             "required field is not set (REFRESH_ALL_BANK, REFRESH_PER_BANK, "
             "REFRESH_OFF)");
  }
  const bool rq = cv.positive("read_queue", c.has_read_queue(), c.read_queue());
  const bool wq = cv.positive("write_queue", c.has_write_queue(), c.write_queue());
  const bool hi =
      cv.positive("write_high_watermark", c.has_write_high_watermark(), c.write_high_watermark());
  const bool lo = cv.require("write_low_watermark", c.has_write_low_watermark());
  if (wq && hi && c.write_high_watermark() > c.write_queue()) {
    cv.error("write_high_watermark", "must be <= write_queue");
  }
  if (hi && lo && c.write_low_watermark() >= c.write_high_watermark()) {
    cv.error("write_low_watermark", "must be < write_high_watermark");
  }
  (void)rq;
  cv.require("max_postponed_refreshes", c.has_max_postponed_refreshes());
  cv.require("frontend_latency_ps", c.has_frontend_latency_ps());
  if (cv.non_empty("address_mapping", c.has_address_mapping(), c.address_mapping()) && org_ok) {
    DramAddressMapping m;
    const DramCounts counts{o.channels(), o.pseudo_channels(), o.bank_groups(), o.banks_per_group(),
                            o.rows(),     o.columns(),         o.access_bytes()};
    const std::string err = DramAddressMapping::parse(c.address_mapping(), counts, &m);
    if (!err.empty()) cv.error("address_mapping", err);
  }

  // Consistency with the stack's pins and capacity.
  if (org_ok && timing_ok && stack.has_pin_data_rate_mbps() && stack.has_bus_width_bits()) {
    const DramStackSpec spec = dram_spec_from_config(d);
    const double pins = stack.pin_data_rate_mbps() * 1e6 * stack.bus_width_bits() / 8.0;
    if (std::fabs(spec.peak_bytes_per_s() - pins) > 0.005 * pins) {
      v.error("", "device peak " + gbps(spec.peak_bytes_per_s()) +
                      " (channels x pseudo_channels x access_bytes / (burst_cycles x tck_ps)) "
                      "differs from the stack's pin bandwidth " +
                      gbps(pins));
    }
    if (stack.has_capacity_bytes_per_stack() &&
        spec.capacity_bytes() < stack.capacity_bytes_per_stack()) {
      v.error("organization", "holds " + std::to_string(spec.capacity_bytes()) +
                                  " bytes, less than capacity_bytes_per_stack");
    }
  }
}

DramStackSpec dram_spec_from_config(const config::HbmDevice& d) {
  DramStackSpec s;
  const auto& o = d.organization();
  s.channels = o.channels();
  s.pseudo_channels = o.pseudo_channels();
  s.org = DramOrganization{o.bank_groups(), o.banks_per_group(), o.rows(), o.columns(),
                           o.access_bytes()};
  const auto& t = d.timing();
  DramTiming& x = s.timing;
  x.tck_ps = t.tck_ps(), x.burst_cycles = t.burst_cycles(), x.cl = t.cl(), x.cwl = t.cwl();
  x.rcd_rd = t.rcd_rd(), x.rcd_wr = t.rcd_wr(), x.rp = t.rp(), x.ras = t.ras(), x.rc = t.rc();
  x.rrd_s = t.rrd_s(), x.rrd_l = t.rrd_l(), x.faw = t.faw(), x.ccd_s = t.ccd_s();
  x.ccd_l = t.ccd_l(), x.rtp = t.rtp(), x.wr = t.wr(), x.wtr_s = t.wtr_s(), x.wtr_l = t.wtr_l();
  x.rtw = t.rtw(), x.refi = t.refi(), x.rfc = t.rfc(), x.refi_pb = t.refi_pb();
  x.rfc_pb = t.rfc_pb(), x.rrefd = t.rrefd();
  const auto& c = d.controller();
  ControllerPolicy& p = s.policy;
  p.scheduler = c.scheduler() == config::FCFS ? SchedulerKind::kFcfs : SchedulerKind::kFrFcfs;
  p.page = c.page_policy() == config::CLOSED_PAGE     ? PagePolicy::kClosed
           : c.page_policy() == config::ADAPTIVE_PAGE ? PagePolicy::kAdaptive
                                                      : PagePolicy::kOpen;
  p.refresh = c.refresh() == config::REFRESH_OFF        ? RefreshMode::kNone
              : c.refresh() == config::REFRESH_PER_BANK ? RefreshMode::kPerBank
                                                        : RefreshMode::kAllBank;
  p.read_queue = c.read_queue(), p.write_queue = c.write_queue();
  p.write_high_watermark = c.write_high_watermark();
  p.write_low_watermark = c.write_low_watermark();
  p.max_postponed_refreshes = c.max_postponed_refreshes();
  s.mapping = c.address_mapping();
  s.frontend_latency_ps = c.frontend_latency_ps();
  return s;
}

}  // namespace tiersim
