// DRAM organisation and timing of one pseudo-channel, in command-clock cycles (tCK), plus the
// controller policies. Plain C++; the detailed HBM model and its tests build on it.
//
// Conventions: every timing is the minimum number of cycles between two commands (or from a
// command to its data) as named in JEDEC HBM specifications (JESD235 HBM2, JESD238 HBM3):
// `burst_cycles` is the data-bus occupancy of one access (BL / 2 for double data rate on CK,
// BL / 4 for HBM3's quad-rate data), `access_bytes` the bytes one RD/WR moves.
#pragma once

#include <cstdint>
#include <string>

namespace tiersim {

// No defaults: every value comes from a preset (tests/support/dram_presets.h today; the
// config schema with the detailed HBM component).
struct DramOrganization {
  uint32_t bank_groups = 0;
  uint32_t banks_per_group = 0;
  uint32_t rows = 0;
  uint32_t columns = 0;       // accesses per row (row size = columns x access_bytes)
  uint32_t access_bytes = 0;  // bytes per RD/WR (pseudo-channel width x burst length)
  uint32_t banks() const { return bank_groups * banks_per_group; }
  uint64_t bytes() const { return uint64_t{banks()} * rows * columns * access_bytes; }
};

struct DramTiming {
  uint64_t tck_ps = 0;
  uint32_t burst_cycles = 0;
  uint32_t cl = 0, cwl = 0;          // read / write latency to data
  uint32_t rcd_rd = 0, rcd_wr = 0;   // ACT to RD / WR
  uint32_t rp = 0, ras = 0, rc = 0;  // PRE to ACT, ACT to PRE, ACT to ACT (same bank)
  uint32_t rrd_s = 0, rrd_l = 0;     // ACT to ACT, other / same bank group
  uint32_t faw = 0;                  // window of four ACTs
  uint32_t ccd_s = 0, ccd_l = 0;     // CAS to CAS, other / same bank group
  uint32_t rtp = 0;                  // RD to PRE
  uint32_t wr = 0;                   // end of write data to PRE
  uint32_t wtr_s = 0, wtr_l = 0;     // end of write data to RD, other / same bank group
  uint32_t rtw = 0;                  // RD to WR (bus turnaround)
  uint32_t refi = 0, rfc = 0;        // all-bank refresh interval and duration
  uint32_t refi_pb = 0, rfc_pb = 0;  // per-bank refresh interval (per channel) and duration
  uint32_t rrefd = 0;                // REFpb to ACT or REFpb of another bank
};

enum class SchedulerKind : uint8_t { kFrFcfs, kFcfs };
enum class PagePolicy : uint8_t {
  kOpen,      // rows stay open until a conflict or refresh needs the bank
  kClosed,    // every access auto-precharges
  kAdaptive,  // auto-precharge when no queued request hits the same row
};
enum class RefreshMode : uint8_t { kNone, kAllBank, kPerBank };

struct ControllerPolicy {
  SchedulerKind scheduler = SchedulerKind::kFrFcfs;
  PagePolicy page = PagePolicy::kOpen;
  RefreshMode refresh = RefreshMode::kAllBank;
  uint32_t read_queue = 64, write_queue = 64;
  uint32_t write_high_watermark = 48, write_low_watermark = 16;
  uint32_t max_postponed_refreshes = 8;  // JEDEC allows up to 8 REFab to be postponed
};

// Refresh-rate multiplier for a temperature, JEDEC's ranges (docs/models/thermal.md): x1 at or
// below 85 C, x2 above 85 C (tREFI halves), x4 above 95 C (tREFI quarters). A component's
// `refresh_rate` table replaces it.
double refresh_rate_multiplier(double temperature_c);

}  // namespace tiersim
