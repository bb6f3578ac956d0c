#include <gtest/gtest.h>

#include <vector>

#include "memory/bandwidth_memory_core.h"
#include "memory/interleave.h"
#include "models/core/address_map.h"
#include "models/core/bandwidth_server.h"
#include "models/core/rng.h"
#include "models/run/simulation.h"
#include "tests/support/hbm_fast_params.h"

namespace tiersim {
namespace {

TEST(Interleave, MatchesByteByByteCount) {
  // Compare the closed form with a chunk-walking reference on many ranges.
  Rng rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const uint64_t granule = uint64_t{1} << rng.below(6);  // 1..32
    const uint32_t ways = 1 + static_cast<uint32_t>(rng.below(7));
    const uint64_t addr = rng.below(500);
    const uint64_t bytes = rng.below(700);
    std::vector<uint64_t> got(ways, 0), want(ways, 0);
    interleave_split(addr, bytes, granule, ways, got.data());
    for (uint64_t a = addr; a < addr + bytes; ++a)
      ++want[(a / granule) % ways];
    ASSERT_EQ(got, want) << "addr " << addr << " bytes " << bytes << " granule " << granule
                         << " ways " << ways;
  }
}

TEST(BandwidthServer, BusyUntilQueueing) {
  BandwidthServer s(1e12);  // 1 byte per ps
  EXPECT_EQ(s.reserve(0, 1000), 1000u);
  EXPECT_EQ(s.reserve(500, 1000), 2000u);  // queued behind the first
  EXPECT_EQ(s.reserve(5000, 10), 5010u);   // idle gap, then served
  EXPECT_EQ(s.busy_ps(), 2010u);
  EXPECT_EQ(s.bytes(), 2010u);
  EXPECT_EQ(transfer_time_ps(3, 2e12), 2u);  // 1.5 ps rounds up
}

// Late reservations (loosely timed: call order is not start order) fill an idle gap the server
// left when one fits, and queue at the end otherwise; in-order use is plain busy-until.
TEST(BandwidthServer, LateReservationsFillIdleGaps) {
  BandwidthServer s(1e12);  // 1 byte per ps
  EXPECT_EQ(s.reserve(0, 100), 100u);
  EXPECT_EQ(s.reserve(1000, 100), 1100u);  // idle [100, 1000): remembered
  EXPECT_EQ(s.reserve(200, 300), 500u);    // fits in the gap: not behind the work at 1000
  EXPECT_EQ(s.reserve(400, 600), 1700u);   // [500, 1000) is 500 long: queues at the end
  EXPECT_EQ(s.reserve(500, 500), 1000u);   // exactly the rest of the gap
  EXPECT_EQ(s.reserve(0, 10), 110u);       // the first gap's remainder, [100, 200)
  EXPECT_EQ(s.reserve(0, 200), 1900u);     // [110, 200) is too short: the end
  EXPECT_EQ(s.busy_ps(), 100u + 100 + 300 + 600 + 500 + 10 + 200);
  EXPECT_EQ(s.bytes(), 1810u);
}

TEST(AddressMap, DecodeAllocateAndLocalOffsets) {
  AddressMap m;
  m.add("hi", "hbm", 1000, 100);
  m.add("lo", "hbm", 0, 500);
  m.add("s", "sram", 4096, 64);
  EXPECT_EQ(m.capacity("hbm"), 600u);
  auto d = m.decode(1010, 10);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->range->name, "hi");
  EXPECT_EQ(d->local_address, 10u);  // "hi" is listed first: local [0, 100)
  d = m.decode(20, 5);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->local_address, 120u);  // "lo" follows "hi" in local space
  EXPECT_FALSE(m.decode(1095, 10));   // crosses the end of "hi"
  EXPECT_FALSE(m.decode(700, 1));     // unmapped
  EXPECT_EQ(m.allocate("sram", 30, 16).value_or(0), 4096u);
  EXPECT_EQ(m.allocate("sram", 30, 16).value_or(0), 4128u);  // aligned up from 4126
  EXPECT_FALSE(m.allocate("sram", 8, 16));                   // 4160 is the end
  EXPECT_EQ(m.allocated("sram"), 62u);
}

TEST(HbmParams, PeakBandwidthFromPins) {
  // Pin rate x 1024 / 8: HBM3 819.2 GB/s, HBM3E 9.2 Gb/s 1177.6 GB/s, HBM2E 3.2 Gb/s 409.6 GB/s.
  BandwidthMemoryParams p{1, 1024, 6400, 1, 1.0, 0, 256, 1, 1.0, 0.0};
  EXPECT_DOUBLE_EQ(p.peak_bytes_per_s_per_stack(), 819.2e9);
  p.pin_data_rate_mbps = 9200;
  EXPECT_DOUBLE_EQ(p.peak_bytes_per_s_per_stack(), 1177.6e9);
  p.pin_data_rate_mbps = 3200;
  p.efficiency_fraction = 0.5;
  p.stack_count = 4;
  EXPECT_DOUBLE_EQ(p.peak_bytes_per_s_per_stack(), 409.6e9);
  EXPECT_DOUBLE_EQ(p.effective_bytes_per_s(), 409.6e9 * 0.5 * 4);
}

TEST(HbmParams, TemperatureScalesTheRefreshShareOfBandwidth) {
  config::HbmFast c;
  c.set_stack_count(1);
  c.set_bus_width_bits(1024);
  c.set_pin_data_rate_mbps(6400);
  c.set_capacity_bytes_per_stack(1);
  c.set_efficiency_fraction(0.88);
  c.set_latency_ps(1);
  c.set_interleave_bytes(256);
  c.set_channels_per_stack(32);
  c.set_miss_penalty_ps(0);
  c.set_turnaround_ps(0);
  c.set_refresh_overhead_fraction(0.12);
  EXPECT_DOUBLE_EQ(BandwidthMemoryParams::from_config(c).effective_bytes_per_s(), 819.2e9 * 0.88);
  c.set_temperature_c(95);  // JEDEC default: x2 above 85 C
  EXPECT_DOUBLE_EQ(BandwidthMemoryParams::from_config(c).effective_bytes_per_s(),
                   819.2e9 * 0.88 * (1 - 0.24) / (1 - 0.12));
  auto* step = c.add_refresh_rate();  // a custom table: x4 above 90 C
  step->set_above_c(90);
  step->set_multiplier(4);
  EXPECT_DOUBLE_EQ(BandwidthMemoryParams::refresh_multiplier_for(c), 4.0);
  c.set_temperature_c(89);
  EXPECT_DOUBLE_EQ(BandwidthMemoryParams::refresh_multiplier_for(c), 1.0);
  // Hot without the refresh share: the fast level cannot honour it, so it is an error.
  c.set_temperature_c(99);
  c.clear_refresh_overhead_fraction();
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  BandwidthMemoryParams::validate(c, v);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "refresh_overhead_fraction");
}

TEST(HbmParams, StackTemperaturesSlowOnlyTheHotStack) {
  config::HbmFast c;
  c.set_stack_count(2);
  c.set_bus_width_bits(1024);
  c.set_pin_data_rate_mbps(6400);
  c.set_capacity_bytes_per_stack(1 << 20);
  c.set_efficiency_fraction(0.88);
  c.set_latency_ps(0);
  c.set_interleave_bytes(256);
  c.set_channels_per_stack(1);
  c.set_miss_penalty_ps(0);
  c.set_turnaround_ps(0);
  c.set_refresh_overhead_fraction(0.12);
  c.add_stack_temperature_c(70);
  c.add_stack_temperature_c(95);
  const BandwidthMemoryParams p = BandwidthMemoryParams::from_config(c);
  EXPECT_DOUBLE_EQ(p.stack_rate(0), 819.2e9 * 0.88);
  EXPECT_DOUBLE_EQ(p.stack_rate(1), 819.2e9 * 0.88 * (1 - 0.24) / (1 - 0.12));
  // Chunk 0 lands on stack 0, chunk 1 on stack 1: the hot one takes longer.
  BandwidthMemoryCore core(p);
  const TimePs cool = core.serve(0, 256, false, 0);
  const TimePs hot = core.serve(256, 256, false, 0);
  EXPECT_EQ(cool, transfer_time_ps(256, p.stack_rate(0)));
  EXPECT_EQ(hot, transfer_time_ps(256, p.stack_rate(1)));
  EXPECT_GT(hot, cool);
  // One temperature per stack, or none.
  c.add_stack_temperature_c(80);
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  BandwidthMemoryParams::validate(c, v);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].path, "stack_temperature_c");
}

// Cores for the streaming fast path's tests (HBM3-like stacks of 256-byte granules).
BandwidthMemoryParams stream_params(uint32_t stacks, uint32_t channels, TimePs miss = 7003,
                                    TimePs turn = 4630) {
  return test::hbm3_fast_params(stacks, channels, miss, turn);
}

void expect_same_state(BandwidthMemoryCore& fast, BandwidthMemoryCore& slow, const char* where) {
  // The bound the stream's entry relies on holds on both cores.
  for (const BandwidthMemoryCore* core : {&fast, &slow}) {
    for (uint32_t u = 0; u < core->params().servers(); ++u) {
      ASSERT_LE(core->server_busy_until(u), core->busy_until_bound()) << where << " server " << u;
    }
  }
  ASSERT_EQ(fast.busy_ps(), slow.busy_ps()) << where;
  ASSERT_EQ(fast.misses(), slow.misses()) << where;
  ASSERT_EQ(fast.parts(), slow.parts()) << where;
  ASSERT_EQ(fast.turnarounds(), slow.turnarounds()) << where;
  for (uint32_t u = 0; u < fast.params().servers(); ++u) {
    ASSERT_EQ(fast.server_bytes(u), slow.server_bytes(u)) << where << " server " << u;
    ASSERT_EQ(fast.server_busy_ps(u), slow.server_busy_ps(u)) << where << " server " << u;
  }
}

// Re-rates stack `stack` of both cores alike.
void rerate_both(BandwidthMemoryCore& fast, BandwidthMemoryCore& slow, uint32_t stack, double m,
                 double f) {
  fast.set_stack_rate(stack, m, f);
  slow.set_stack_rate(stack, m, f);
}

// The streaming fast path is exact: a core with it and one without serve random streams (bulk
// runs continued, skipped forward by whole and partial granules, jumping far or back, small
// requests, writes, idle gaps, requests arriving before earlier ones finish, a rate change)
// with the same completion time for every request and the same counters at the end.
TEST(BandwidthMemoryCore, StreamingFastPathIsExact) {
  for (uint32_t channels : {1u, 3u, 32u}) {
    const BandwidthMemoryParams p = stream_params(5, channels);
    BandwidthMemoryCore fast(p), slow(p, false);
    Rng rng(channels);
    const uint64_t period = uint64_t{p.servers()} * 256;
    uint64_t addr = 0;
    TimePs now = 0, last_done = 0;
    for (int i = 0; i < 20000; ++i) {
      const uint64_t kind = rng.below(100);
      uint64_t bytes = period * (1 + rng.below(8)) + rng.below(3) * rng.below(period);
      if (kind < 55) {
        // continue the stream
      } else if (kind < 65) {
        addr += 256 * (1 + rng.below(p.servers()));  // skip whole granules
      } else if (kind < 70) {
        addr += 1 + rng.below(period);  // skip a partial amount
      } else if (kind < 78) {
        addr = rng.below(uint64_t{64} << 30);  // jump
      } else if (kind < 82) {
        addr = addr > period ? addr - rng.below(2 * period) : addr;  // back a little
      } else if (kind < 92) {
        bytes = 1 + rng.below(period);  // small
      }
      const bool write = rng.below(10) == 0;
      // Mostly before the previous request finishes (queued), sometimes after (idle gaps).
      const uint64_t r = rng.below(10);
      if (r < 7) {
        now += rng.below(1000);
      } else if (r < 8) {
        now += rng.below(1 + (last_done > now ? last_done - now : 1000));
      } else if (r < 9) {
        now = last_done + rng.below(2000000);
      }
      if (i % 5000 == 4999) rerate_both(fast, slow, i % 5, 1.0 + (i % 3), 0.8);
      // Now and then a request that starts earlier than the last one (loosely-timed callers
      // reserve in call order): it may fill an idle gap left behind.
      const TimePs start =
          rng.below(20) == 0 ? now - std::min<TimePs>(now, rng.below(3000000)) : now;
      const TimePs a = fast.serve(addr, bytes, write, start);
      const TimePs b = slow.serve(addr, bytes, write, start);
      ASSERT_EQ(a, b) << "request " << i << " channels " << channels;
      last_done = a;
      addr += bytes;
      if (i % 997 == 0) {
        ASSERT_EQ(fast.busy_ps(), slow.busy_ps()) << "request " << i;
      }
    }
    expect_same_state(fast, slow, "end");
    // The fast path carried a real share of the requests (the test exercises it).
    EXPECT_GT(fast.streamed_requests(), 2000u) << "channels " << channels;
    EXPECT_EQ(slow.streamed_requests(), 0u);
  }
}

// Granule-aligned streams (aligned forward skips of 1..n granules incl. the cyclic wrap, j = n,
// aligned backward skips), n = 1 and powers of two, all stacks re-rated to one common rate now
// and then (the fast path resumes at the new rate) or one stack alone (non-uniform), counters
// read mid-stream, starts exactly at the latest busy-until.
TEST(BandwidthMemoryCore, StreamingFastPathAlignedSkipsAndRerates) {
  for (auto sc : std::vector<std::pair<uint32_t, uint32_t>>{
           {1, 1}, {1, 2}, {2, 4}, {5, 1}, {5, 3}, {4, 32}}) {
    const BandwidthMemoryParams p = stream_params(sc.first, sc.second);
    BandwidthMemoryCore fast(p), slow(p, false);
    const uint32_t n = p.servers();
    const uint64_t g = 256, period = uint64_t{n} * g;
    Rng rng(1000 + n);
    uint64_t addr = 0;
    TimePs now = 0, last_done = 0;
    for (int i = 0; i < 20000; ++i) {
      const uint64_t kind = rng.below(100);
      uint64_t bytes = period * (1 + rng.below(4)) + g * rng.below(n);  // whole granules
      if (kind < 40) {
      } else if (kind < 70) {
        addr += g * (1 + rng.below(n));  // aligned skip of 1..n granules
      } else if (kind < 75) {
        addr += g * (n + rng.below(3 * n));  // far forward
      } else if (kind < 82) {
        addr = addr >= 2 * period ? addr - g * rng.below(2 * n) : addr;  // aligned back
      } else if (kind < 85) {
        bytes += 1 + rng.below(g - 1);  // unaligned end
      } else if (kind < 88) {
        addr = g * rng.below(uint64_t{1} << 20);  // aligned jump
      }
      const bool write = rng.below(8) == 0;
      const uint64_t r = rng.below(10);
      TimePs start = now;
      if (r < 6) {
        now += rng.below(1000);
        start = now;
      } else if (r < 8 && last_done > p.latency_ps) {
        start = last_done - p.latency_ps;  // exactly the latest busy-until
        now = std::max(now, start);
      } else if (r < 9) {
        now = last_done + rng.below(2000000);
        start = now;
      }
      if (i % 1500 == 1499) {
        const double m = 1.0 + (i / 1500) % 3, f = 0.5 + 0.1 * ((i / 1500) % 4);
        const bool all = (i / 1500) % 2 == 0;
        for (uint32_t s = 0; s < p.stack_count; ++s) {
          if (!all && s != 0) continue;
          rerate_both(fast, slow, s, m, f);
        }
      }
      const TimePs a = fast.serve(addr, bytes, write, start);
      const TimePs b = slow.serve(addr, bytes, write, start);
      ASSERT_EQ(a, b) << "request " << i << " servers " << n;
      last_done = std::max(last_done, a);
      addr += bytes;
      if (i % 613 == 0) expect_same_state(fast, slow, "mid-stream");
    }
    expect_same_state(fast, slow, "end");
    EXPECT_GT(fast.streamed_requests(), 5000u) << "servers " << n;
  }
}

// Kernels of streamed tiles after launch gaps: each kernel's first tile finds every server idle
// (each leaves its gap; the stream goes on without a write-back), the rest queue behind it.
// Tiles continue the stream, skip a few granules forward (some servers miss), jump (all miss),
// start or end inside a granule, and now and then write (turnarounds). Between kernels: a
// request that starts earlier, inside or before the gaps of one of the last ten launches (so
// that it fills, or does not fit, the gaps the idle tiles left, whose begins and ring slots must
// be the servers' own: rings hold eight), a small append, a re-rating of one stack or all, or a
// read of the counters. Every completion and counter equals the core's without the fast path.
TEST(BandwidthMemoryCore, StreamingFastPathThroughIdleGaps) {
  for (auto sc : std::vector<std::pair<uint32_t, uint32_t>>{{1, 1}, {2, 3}, {5, 32}, {4, 8}}) {
    const BandwidthMemoryParams p = stream_params(sc.first, sc.second);
    BandwidthMemoryCore fast(p), slow(p, false);
    const uint64_t n = p.servers(), g = p.interleave_bytes, period = n * g;
    Rng rng(4242 + n);
    uint64_t addr = 0;
    TimePs now = 0, last_done = 0;
    std::vector<TimePs> kernel_starts;
    int served = 0;
    auto serve_both = [&](uint64_t a, uint64_t bytes, bool write, TimePs start) {
      const TimePs x = fast.serve(a, bytes, write, start);
      const TimePs y = slow.serve(a, bytes, write, start);
      ASSERT_EQ(x, y) << "servers " << n << " request " << served;
      ++served;
      last_done = std::max(last_done, x);
    };
    for (int kernel = 0; kernel < 1500; ++kernel) {
      // The launch gap: every server idle (a few kernels start exactly at the last busy-until).
      now = rng.below(8) == 0 && last_done > p.latency_ps ? last_done - p.latency_ps
                                                          : last_done + 1 + rng.below(400000);
      kernel_starts.push_back(now);
      const uint64_t where = rng.below(6);
      if (where == 0) {
        addr = g * rng.below(uint64_t{1} << 22);  // another tensor: every server misses
      } else if (where == 1) {
        addr += g * (1 + rng.below(n));  // a few granules on: the servers that owned them miss
      } else if (where == 2) {
        addr += 1 + rng.below(g - 1);  // into a granule (declined: the per-server path)
      }
      const int tiles = 1 + static_cast<int>(rng.below(12));
      for (int t = 0; t < tiles; ++t) {
        uint64_t bytes = period * (1 + rng.below(3));
        if (rng.below(4) == 0) bytes += g * rng.below(n);
        if (rng.below(6) == 0) bytes += 1 + rng.below(g - 1);  // a partial tail granule
        serve_both(addr, bytes, rng.below(10) == 0, now);
        if (HasFatalFailure()) return;
        addr += bytes;
        now += rng.below(200);  // queued behind the kernel's first tile
      }
      const uint64_t r = rng.below(12);
      if (r < 2 && kernel_starts.size() > 2) {
        // An earlier start, around this launch or one of the nine before: inside its gaps or before
        // their begins.
        const size_t back = 1 + rng.below(std::min<size_t>(kernel_starts.size() - 1, 10));
        const TimePs at =
            kernel_starts[kernel_starts.size() - std::min(back, kernel_starts.size())];
        const TimePs start = at - std::min<TimePs>(at, 1 + rng.below(r == 0 ? 300000 : 3000000));
        const uint64_t bytes = rng.below(2) ? 1 + rng.below(2 * g) : period + rng.below(period);
        serve_both(g * rng.below(uint64_t{1} << 22), bytes, rng.below(2) == 0, start);
      } else if (r == 2) {
        serve_both(addr + g * rng.below(4), 1 + rng.below(3 * g), true, now);  // a small append
      } else if (r == 3) {
        expect_same_state(fast, slow, "between kernels");
      } else if (r == 4 && rng.below(10) == 0) {
        const double m = 1.0 + rng.below(3), f = 0.5 + 0.1 * rng.below(5);
        const bool all = rng.below(2) == 0;
        for (uint32_t st = 0; st < p.stack_count; ++st) {
          if (all || st == 0) rerate_both(fast, slow, st, m, f);
        }
      }
      if (HasFatalFailure()) return;
    }
    expect_same_state(fast, slow, "end");
    // The kernels' first tiles streamed (the test exercises the idle entry).
    EXPECT_GT(fast.idle_streamed_requests(), 120u) << "servers " << n;
    EXPECT_EQ(slow.streamed_requests(), 0u);
  }
}

// Broad fuzz: random geometry (g 32..512 B, 1..30 servers), zero or random penalties and
// latency, unaligned and aligned skips both ways, starts at or 1-2 ps before the latest
// busy-until, earlier starts (gap fills), idle gaps, re-rating of one or all stacks.
TEST(BandwidthMemoryCore, StreamingFastPathFuzz) {
  uint64_t idle_streamed = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Rng cfg(seed * 7919);
    config::HbmFast c;
    c.set_stack_count(1 + cfg.below(5));
    c.set_bus_width_bits(1024);
    c.set_pin_data_rate_mbps(1000 + cfg.below(6000));
    c.set_capacity_bytes_per_stack(uint64_t{16} << 30);
    c.set_efficiency_fraction(0.9);
    c.set_latency_ps(cfg.below(500000));
    const uint64_t g = uint64_t{32} << cfg.below(5);
    c.set_interleave_bytes(g);
    c.set_channels_per_stack(1 + cfg.below(6));
    c.set_miss_penalty_ps(cfg.below(3) == 0 ? 0 : cfg.below(20000));
    c.set_turnaround_ps(cfg.below(3) == 0 ? 0 : cfg.below(20000));
    c.set_refresh_overhead_fraction(0.12);
    const BandwidthMemoryParams p = BandwidthMemoryParams::from_config(c);
    BandwidthMemoryCore fast(p), slow(p, false);
    const uint64_t n = p.servers(), period = n * g;
    Rng rng(seed);
    uint64_t addr = 0;
    TimePs now = 0, last_done = 0;
    for (int i = 0; i < 4000; ++i) {
      const uint64_t kind = rng.below(100);
      uint64_t bytes =
          period * (1 + rng.below(3)) + (rng.below(2) ? rng.below(period) : g * rng.below(n));
      if (kind < 40) {
      } else if (kind < 55) {
        addr += g * (1 + rng.below(2 * n));
      } else if (kind < 62) {
        addr += 1 + rng.below(2 * period);
      } else if (kind < 70) {
        addr = rng.below(2) ? g * rng.below(1 << 16) : rng.below(uint64_t{1} << 26);
      } else if (kind < 78) {
        const uint64_t back = rng.below(2) ? g * rng.below(2 * n + 1) : rng.below(2 * period + 1);
        addr = addr >= back ? addr - back : addr;
      } else if (kind < 86) {
        bytes = 1 + rng.below(period + g);
      } else if (kind < 90) {
        addr -= addr % g;
      }
      const bool write = rng.below(6) == 0;
      const uint64_t r = rng.below(12);
      TimePs start = now;
      if (r < 6) {
        now += rng.below(2000);
        start = now;
      } else if (r < 8 && last_done > p.latency_ps) {
        start = last_done - p.latency_ps - std::min<TimePs>(rng.below(3), last_done - p.latency_ps);
        now = std::max(now, start);
      } else if (r < 9) {
        now = last_done + rng.below(200000);
        start = now;
      } else if (r < 10) {
        start = now - std::min<TimePs>(now, rng.below(3000000));
      }
      if (rng.below(700) == 0) {
        const double m = 1.0 + rng.below(3), f = 0.3 + 0.1 * rng.below(7);
        const bool all = rng.below(2);
        for (uint32_t s = 0; s < p.stack_count; ++s) {
          if (!all && s != rng.below(p.stack_count)) continue;
          rerate_both(fast, slow, s, m, f);
        }
      }
      const TimePs a = fast.serve(addr, bytes, write, start);
      const TimePs b = slow.serve(addr, bytes, write, start);
      ASSERT_EQ(a, b) << "seed " << seed << " request " << i;
      last_done = std::max(last_done, a);
      addr += bytes;
      if (rng.below(500) == 0) expect_same_state(fast, slow, "mid");
    }
    expect_same_state(fast, slow, "end");
    idle_streamed += fast.idle_streamed_requests();
  }
  EXPECT_GT(idle_streamed, 1000u);  // the fuzz reaches requests served idle within the stream
}

// The core's definition, written plainly (each server's queue and gap ring are a
// BandwidthServer's, tested on its own): a request splits into its interleave granules, server
// u = granule % servers takes every granule of the request that falls on it as one part (its
// first granule's channel-local address), which misses when that address does not continue the
// server's previous part and turns around when the direction changes; the request completes
// when its last part does, plus the latency. The core with its fast path off (whose per-server
// loop converts each part size once per request) must agree on every request, whatever the
// mix: small requests, bulk ones on idle, busy or partly busy servers, earlier starts that fill
// gaps, writes, one stack re-rated (servers at different rates) or all.
TEST(BandwidthMemoryCore, PerServerPathIsTheDefinition) {
  for (auto sc : std::vector<std::pair<uint32_t, uint32_t>>{{1, 1}, {2, 3}, {5, 32}}) {
    const BandwidthMemoryParams p = stream_params(sc.first, sc.second);
    BandwidthMemoryCore core(p, false);
    const uint64_t n = p.servers(), g = p.interleave_bytes;
    std::vector<BandwidthServer> ref(n);
    std::vector<uint64_t> next_local(n, UINT64_MAX);
    std::vector<int> last_write(n, -1);
    for (uint64_t u = 0; u < n; ++u)
      ref[u].set_rate(p.effective_bytes_per_s_per_channel(u % p.stack_count));
    Rng rng(77 + n);
    uint64_t addr = 0;
    TimePs now = 0, last_done = 0;
    std::vector<uint64_t> part(n), local(n);
    uint64_t parts = 0, misses = 0, turnarounds = 0;
    for (int i = 0; i < 6000; ++i) {
      const uint64_t kind = rng.below(10);
      const uint64_t bytes = kind < 4   ? rng.below(n * g)  // small, now and then empty
                             : kind < 8 ? n * g * (1 + rng.below(3)) + rng.below(n * g)
                                        : 1 + rng.below(4 * g);
      if (rng.below(3) == 0) addr = rng.below(uint64_t{1} << 30);
      const bool write = rng.below(5) == 0;
      const uint64_t r = rng.below(8);
      if (r < 3) {
        now = last_done + rng.below(100000);  // idle
      } else if (r < 6) {
        now += rng.below(20000);  // queued or partly
      }
      const TimePs start = r == 7 ? now - std::min<TimePs>(now, rng.below(2000000)) : now;
      if (rng.below(800) == 0) {
        const uint32_t s = static_cast<uint32_t>(rng.below(p.stack_count));
        const double m = 1.0 + rng.below(3), f = 0.4 + 0.1 * rng.below(6);
        core.set_stack_rate(s, m, f);
        for (uint64_t u = s; u < n; u += p.stack_count)
          ref[u].set_rate(p.stack_rate_at(m) * f / p.channels_per_stack);
      }
      std::fill(part.begin(), part.end(), 0);
      for (uint64_t a = addr; a < addr + bytes;) {
        const uint64_t k = a / g, u = k % n, take = std::min(addr + bytes, (k + 1) * g) - a;
        if (part[u] == 0) local[u] = (k / n) * g + a % g;
        part[u] += take;
        a += take;
      }
      TimePs expect = start;
      for (uint64_t u = 0; u < n; ++u) {
        if (part[u] == 0) continue;
        ++parts;
        TimePs extra = 0;
        if (local[u] != next_local[u]) {
          extra += p.miss_penalty_ps;
          ++misses;
        }
        if (last_write[u] >= 0 && last_write[u] != int(write)) {
          extra += p.turnaround_ps;
          ++turnarounds;
        }
        next_local[u] = local[u] + part[u];
        last_write[u] = write;
        expect = std::max(expect, ref[u].reserve_with_overhead(start, part[u], extra));
      }
      expect += p.latency_ps;
      const TimePs got = core.serve(addr, bytes, write, start);
      ASSERT_EQ(got, expect) << "servers " << n << " request " << i;
      ASSERT_EQ(core.parts(), parts) << "request " << i;
      ASSERT_EQ(core.misses(), misses) << "request " << i;
      ASSERT_EQ(core.turnarounds(), turnarounds) << "request " << i;
      last_done = std::max(last_done, got);
      addr += bytes;
    }
    for (uint64_t u = 0; u < n; ++u) {
      ASSERT_EQ(core.server_bytes(u), ref[u].bytes()) << u;
      ASSERT_EQ(core.server_busy_ps(u), ref[u].busy_ps()) << u;
    }
  }
}

// A part past the 2^62 ps limit raises the run-input error exactly where the server's own
// conversion of that part would: a whole granule takes too long on these servers (about 1e-5
// bytes/s each), one byte does not, and an empty request converts nothing.
TEST(BandwidthMemoryCore, OnlyPartsTakenAreConverted) {
  config::HbmFast c;
  c.set_stack_count(1);
  c.set_bus_width_bits(1024);
  c.set_pin_data_rate_mbps(1.7e-13);
  c.set_capacity_bytes_per_stack(uint64_t{16} << 30);
  c.set_efficiency_fraction(0.9);
  c.set_latency_ps(500000);
  c.set_interleave_bytes(256);
  c.set_channels_per_stack(2);
  c.set_refresh_overhead_fraction(0.12);
  const BandwidthMemoryParams p = BandwidthMemoryParams::from_config(c);
  for (bool fast_path : {false, true}) {
    BandwidthMemoryCore core(p, fast_path);
    EXPECT_EQ(core.serve(0, 0, false, 0), p.latency_ps);
    const TimePs one = transfer_time_ps(1, p.effective_bytes_per_s_per_channel(0));
    EXPECT_EQ(core.serve(0, 1, false, 0), one + p.miss_penalty_ps + p.latency_ps);
    EXPECT_EQ(core.parts(), 1u);
    EXPECT_THROW(core.serve(512, 256, false, 0), RunInputError);
    EXPECT_EQ(core.parts(), 2u);  // counted before its conversion raised, as a server does
  }
}

// Near the 2^62 ps limit the fast path declines and the per-server path raises the error.
TEST(BandwidthMemoryCore, StreamingFastPathLeavesTheTimeLimitToTheSlowPath) {
  const TimePs big = (TimePs{1} << 61) + 1;
  const BandwidthMemoryParams p = stream_params(2, 1, /*miss=*/big, /*turn=*/0);
  BandwidthMemoryCore fast(p), slow(p, false);
  const uint64_t period = 2 * 256;
  EXPECT_EQ(fast.serve(0, period, false, 0), slow.serve(0, period, false, 0));  // enters stream
  bool slow_threw = false, fast_threw = false;
  try {
    slow.serve(uint64_t{1} << 20, period, false, 0);
  } catch (const RunInputError&) {
    slow_threw = true;
  }
  try {
    fast.serve(uint64_t{1} << 20, period, false, 0);
  } catch (const RunInputError&) {
    fast_threw = true;
  }
  EXPECT_TRUE(slow_threw);
  EXPECT_EQ(fast_threw, slow_threw);
}

TEST(Summary, PercentileInterpolatesLikeNumpy) {
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({5}, 99), 5);
  EXPECT_DOUBLE_EQ(percentile({0, 10}, 99), 9.9);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
}

TEST(Rng, DeterministicAndUnbiasedBelow) {
  Rng a(42), b(42);
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(a.next_u64(), b.next_u64());
  Rng r(1);
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 30000; ++i)
    ++counts[r.below(3)];
  for (int c : counts)
    EXPECT_NEAR(c, 10000, 500);
  const double u = r.uniform();
  EXPECT_GE(u, 0.0);
  EXPECT_LT(u, 1.0);
}

}  // namespace
}  // namespace tiersim
