// DRAM timing sets for the detailed-model tests, until the HBM presets move into configs/ with
// the detailed HBM component. Sources and grades as in the hardware presets.
#pragma once

#include "memory/dram_stack.h"

namespace tiersim::test {

// HBM2 at 2.0 Gb/s per pin (tCK 1 ns): JESD235 timings as shipped in DRAMSys'
// configs/memspec/HBM2.json (B). Pseudo-channel: 64 DQ, BL4 -> 32-byte accesses, 2 cycles.
inline DramStackSpec hbm2_2000() {
  DramStackSpec s;
  s.channels = 8;
  s.pseudo_channels = 2;
  s.org = DramOrganization{4, 4, 16384, 32, 32};  // 16 banks x 16 Ki rows x 1 KiB = 256 MiB/PC
  DramTiming& t = s.timing;
  t.tck_ps = 1000;
  t.burst_cycles = 2;
  t.cl = 17, t.cwl = 7, t.rcd_rd = 12, t.rcd_wr = 6, t.rp = 14, t.ras = 28, t.rc = 42;
  t.rrd_s = 4, t.rrd_l = 6, t.faw = 16, t.ccd_s = 2, t.ccd_l = 3, t.rtp = 5, t.wr = 14;
  t.wtr_s = 4, t.wtr_l = 9, t.rtw = 18, t.refi = 3900, t.rfc = 220, t.refi_pb = 244;
  t.rfc_pb = 96, t.rrefd = 8;
  return s;
}

// HBM3 at 6.4 Gb/s per pin (tCK 0.625 ns, 1.6 GHz): 16 channels x 2 pseudo-channels of 32 DQ,
// BL8 -> 32-byte accesses in 2 cycles, 819.2 GB/s per stack (JESD238, parameters.md s.6; A).
// Core timings: the HBM2 values above in ns converted to 1.6 GHz cycles, rounded up (C);
// tRFC 350 ns (Ramulator 2's HBM3 8 Gb table; C); tCCD_L = 2 x tCCD_S (C);
// read-to-write turnaround CL + BL + 2 - CWL.
inline DramStackSpec hbm3_6400() {
  DramStackSpec s;
  s.channels = 16;
  s.pseudo_channels = 2;
  s.org = DramOrganization{4, 4, 32768, 32, 32};  // 512 MiB per PC, 16 GiB per stack
  DramTiming& t = s.timing;
  t.tck_ps = 625;
  t.burst_cycles = 2;
  t.cl = 28, t.cwl = 12, t.rcd_rd = 20, t.rcd_wr = 10, t.rp = 23, t.ras = 45, t.rc = 68;
  t.rrd_s = 7, t.rrd_l = 10, t.faw = 26, t.ccd_s = 2, t.ccd_l = 4, t.rtp = 8, t.wr = 23;
  t.wtr_s = 7, t.wtr_l = 15, t.rtw = 28 + 2 + 2 - 12, t.refi = 6240, t.rfc = 560;
  t.refi_pb = 390, t.rfc_pb = 154, t.rrefd = 13;
  return s;
}

}  // namespace tiersim::test
