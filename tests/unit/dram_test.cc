// The command-level DRAM core: address mapping, JEDEC timing legality (an independent checker
// replays every issued command), unloaded latency, streaming efficiency, refresh tax,
// temperature, scheduling and page policies, and the stack-level mapping regression.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>

#include "memory/dram_stack.h"
#include "memory/hbm_device.h"
#include "models/core/rng.h"
#include "tests/support/dram_presets.h"
#include "tests/support/dram_stream.h"

namespace tiersim {
namespace {

// --- an independent timing checker ---------------------------------------------------------

// Replays a command log and reports the first violated constraint ("" when all hold).
std::string check_legality(const std::vector<DramCommand>& log, const DramOrganization& org,
                           const DramTiming& t) {
  constexpr int64_t kLong = -(int64_t{1} << 40);
  struct BankState {
    bool open = false;
    uint32_t row = 0;
    int64_t act = kLong, pre = kLong, rd = kLong, wr_end = kLong, ref_end = kLong;
  };
  std::vector<BankState> bank(org.banks());
  std::vector<int64_t> bg_act(org.bank_groups, kLong), bg_rd(org.bank_groups, kLong),
      bg_wr(org.bank_groups, kLong), bg_wr_end(org.bank_groups, kLong);
  int64_t ch_act = kLong, ch_rd = kLong, ch_wr = kLong, ch_wr_end = kLong, ch_refpb = kLong;
  std::deque<int64_t> acts;  // last four ACT cycles
  std::vector<std::pair<int64_t, int64_t>> bursts;
  auto fail = [&](const DramCommand& c, const std::string& why) {
    return std::string(dram_command_name(c.kind)) + " at " + std::to_string(c.cycle) + " bank " +
           std::to_string(c.bank) + ": " + why;
  };
  auto auto_pre = [&](BankState& b, int64_t at) {
    b.open = false;
    b.pre = at;
  };
  for (const auto& c : log) {
    const int64_t cy = static_cast<int64_t>(c.cycle);
    const uint32_t g = c.bank / org.banks_per_group;
    BankState& b = bank[c.bank];
    switch (c.kind) {
      case DramCommandKind::kAct:
        if (b.open) return fail(c, "bank already open");
        if (cy < b.pre + t.rp) return fail(c, "tRP");
        if (cy < b.act + t.rc) return fail(c, "tRC");
        if (cy < bg_act[g] + t.rrd_l) return fail(c, "tRRD_L");
        if (cy < ch_act + t.rrd_s) return fail(c, "tRRD_S");
        if (acts.size() == 4 && cy < acts.front() + t.faw) return fail(c, "tFAW");
        if (cy < b.ref_end) return fail(c, "refresh not finished");
        if (cy < ch_refpb + t.rrefd) return fail(c, "tRREFD");
        b.open = true;
        b.row = c.row;
        b.act = bg_act[g] = ch_act = cy;
        acts.push_back(cy);
        if (acts.size() > 4) acts.pop_front();
        break;
      case DramCommandKind::kPre:
        if (!b.open) return fail(c, "bank not open");
        if (cy < b.act + t.ras) return fail(c, "tRAS");
        if (cy < b.rd + t.rtp) return fail(c, "tRTP");
        if (cy < b.wr_end + t.wr) return fail(c, "tWR");
        b.open = false;
        b.pre = cy;
        break;
      case DramCommandKind::kPreAll:
        for (auto& bb : bank) {
          if (!bb.open) continue;
          if (cy < bb.act + t.ras || cy < bb.rd + t.rtp || cy < bb.wr_end + t.wr) {
            return fail(c, "PREA before a bank's tRAS/tRTP/tWR");
          }
          bb.open = false;
          bb.pre = cy;
        }
        break;
      case DramCommandKind::kRd:
      case DramCommandKind::kRdA: {
        if (!b.open || b.row != c.row) return fail(c, "row not open");
        if (cy < b.act + t.rcd_rd) return fail(c, "tRCD_RD");
        if (cy < bg_rd[g] + t.ccd_l || cy < bg_wr[g] + t.ccd_l) {
          if (cy < bg_rd[g] + t.ccd_l) return fail(c, "tCCD_L");
        }
        if (cy < ch_rd + t.ccd_s) return fail(c, "tCCD_S");
        if (cy < bg_wr_end[g] + t.wtr_l) return fail(c, "tWTR_L");
        if (cy < ch_wr_end + t.wtr_s) return fail(c, "tWTR_S");
        b.rd = bg_rd[g] = ch_rd = cy;
        bursts.push_back({cy + t.cl, cy + t.cl + t.burst_cycles});
        if (c.kind == DramCommandKind::kRdA) {
          auto_pre(b, std::max({cy + int64_t{t.rtp}, b.act + t.ras, b.wr_end + t.wr}));
        }
        break;
      }
      case DramCommandKind::kWr:
      case DramCommandKind::kWrA: {
        if (!b.open || b.row != c.row) return fail(c, "row not open");
        if (cy < b.act + t.rcd_wr) return fail(c, "tRCD_WR");
        if (cy < bg_wr[g] + t.ccd_l) return fail(c, "tCCD_L (write)");
        if (cy < ch_wr + t.ccd_s) return fail(c, "tCCD_S (write)");
        if (cy < ch_rd + t.rtw) return fail(c, "read-to-write turnaround");
        const int64_t end = cy + t.cwl + t.burst_cycles;
        bg_wr[g] = ch_wr = cy;
        b.wr_end = bg_wr_end[g] = ch_wr_end = end;
        bursts.push_back({cy + t.cwl, end});
        if (c.kind == DramCommandKind::kWrA) {
          auto_pre(b, std::max({end + int64_t{t.wr}, b.act + t.ras, b.rd + t.rtp}));
        }
        break;
      }
      case DramCommandKind::kRefAb:
        for (auto& bb : bank) {
          if (bb.open) return fail(c, "REFab with a bank open");
          if (cy < bb.pre + t.rp) return fail(c, "REFab before tRP");
          if (cy < bb.act + t.rc) return fail(c, "REFab before tRC");
          if (cy < bb.ref_end) return fail(c, "REFab during a refresh");
          bb.ref_end = cy + t.rfc;
        }
        break;
      case DramCommandKind::kRefPb:
        if (b.open) return fail(c, "REFpb with the bank open");
        if (cy < b.pre + t.rp || cy < b.act + t.rc) return fail(c, "REFpb before tRP/tRC");
        if (cy < ch_refpb + t.rrefd) return fail(c, "tRREFD between REFpb");
        b.ref_end = cy + t.rfc_pb;
        ch_refpb = cy;
        break;
    }
  }
  std::sort(bursts.begin(), bursts.end());
  for (size_t i = 1; i < bursts.size(); ++i) {
    if (bursts[i].first < bursts[i - 1].second) {
      return "data bus conflict at cycle " + std::to_string(bursts[i].first);
    }
  }
  return "";
}

// --- a driver for one pseudo-channel --------------------------------------------------------

struct PcRun {
  std::vector<DramCompletion> done;
  std::vector<DramCommand> log;
  uint64_t end_cycle = 0;
  DramControllerStats stats;
};

// Feeds `reqs` (arrival cycles non-decreasing) into one controller, in order, waiting when its
// queue is full; runs until every request completes (or `until` is reached). `returns`, when
// given, gets every value advance() returned.
PcRun run_pc(const DramStackSpec& spec, std::vector<DramRequest> reqs, double refresh_mult = 1,
             uint64_t until = PseudoChannelController::kNever,
             std::vector<uint64_t>* returns = nullptr) {
  PseudoChannelController pc(spec.org, spec.timing, spec.policy);
  pc.set_refresh_multiplier(refresh_mult);
  PcRun out;
  pc.record_commands(&out.log);
  out.done.reserve(reqs.size());
  size_t next_req = 0;
  uint64_t cycle = 0;
  while (out.done.size() < reqs.size() && cycle < until) {
    while (next_req < reqs.size() && reqs[next_req].arrival_cycle <= cycle &&
           pc.can_accept(reqs[next_req].write)) {
      pc.enqueue(reqs[next_req++]);
    }
    uint64_t next = pc.advance(cycle, out.done);
    if (returns != nullptr) returns->push_back(next);
    if (next_req < reqs.size() && pc.can_accept(reqs[next_req].write)) {
      next = std::min(next, std::max(cycle + 1, reqs[next_req].arrival_cycle));
    }
    if (next == PseudoChannelController::kNever) break;
    cycle = next;
  }
  out.end_cycle = 0;
  for (const auto& d : out.done)
    out.end_cycle = std::max(out.end_cycle, d.done_cycle);
  out.stats = pc.stats();
  return out;
}

// A sequential stream inside one pseudo-channel: columns of a row, alternating bank groups
// (as the default mapping produces), then the next bank, then the next row.
std::vector<DramRequest> stream(const DramOrganization& org, size_t n, bool write = false) {
  std::vector<DramRequest> v;
  for (size_t i = 0; i < n; ++i) {
    DramRequest r;
    r.id = i;
    r.write = write;
    r.bank_group = static_cast<uint32_t>(i % org.bank_groups);
    const size_t k = i / org.bank_groups;
    r.column = static_cast<uint32_t>(k % org.columns);
    r.bank = static_cast<uint32_t>((k / org.columns) % org.banks_per_group);
    r.row = static_cast<uint32_t>((k / org.columns / org.banks_per_group) % org.rows);
    v.push_back(r);
  }
  return v;
}

std::vector<DramRequest> random_requests(const DramOrganization& org, size_t n, double writes,
                                         uint64_t seed, uint32_t rows = 8) {
  Rng rng(seed);
  std::vector<DramRequest> v;
  uint64_t cycle = 0;
  for (size_t i = 0; i < n; ++i) {
    DramRequest r;
    r.id = i;
    r.write = rng.uniform() < writes;
    r.bank_group = static_cast<uint32_t>(rng.below(org.bank_groups));
    r.bank = static_cast<uint32_t>(rng.below(org.banks_per_group));
    r.row = static_cast<uint32_t>(rng.below(rows));  // few rows: hits and conflicts both occur
    r.column = static_cast<uint32_t>(rng.below(org.columns));
    cycle += rng.below(4);
    r.arrival_cycle = cycle;
    v.push_back(r);
  }
  return v;
}

double bus_utilisation(const PcRun& r, const DramTiming& t) {
  return static_cast<double>(r.stats.data_cycles) / static_cast<double>(r.end_cycle);
}

// --- mapping ---------------------------------------------------------------------------------

TEST(DramMapping, ParseErrors) {
  DramAddressMapping m;
  const DramCounts c{16, 2, 4, 4, 32768, 32, 32};
  EXPECT_EQ(DramAddressMapping::parse("RoBaCoBgPcCh", c, &m), "");
  EXPECT_NE(DramAddressMapping::parse("RoBaCoBgPc", c, &m), "");
  EXPECT_EQ(DramAddressMapping::parse("RoBaCoBgPcXx", c, &m),
            "unknown field \"Xx\" in \"RoBaCoBgPcXx\" (use Ch Pc Bg Ba Ro Co)");
  EXPECT_EQ(DramAddressMapping::parse("RoRoCoBgPcCh", c, &m),
            "field Ro appears twice in \"RoRoCoBgPcCh\"");
  DramCounts odd = c;
  odd.rows = 3000;
  EXPECT_EQ(DramAddressMapping::parse("RoBaCoBgPcCh", odd, &m),
            "the count of Ro (3000) is not a power of two");
}

TEST(DramMapping, DefaultSpreadsAStreamAndChannelOnTopDoesNot) {
  const DramCounts c{16, 2, 4, 4, 32768, 32, 32};
  DramAddressMapping def, bad;
  ASSERT_EQ(DramAddressMapping::parse(DramAddressMapping::kDefaultOrder, c, &def), "");
  ASSERT_EQ(DramAddressMapping::parse("ChPcRoBaBgCo", c, &bad), "");
  EXPECT_EQ(def.capacity_bytes(), 16ull << 30);
  std::map<uint32_t, int> per_pc_def, per_pc_bad;
  for (uint64_t a = 0; a < (1 << 20); a += 32) {
    ++per_pc_def[def.controller_index(def.decode(a))];
    ++per_pc_bad[bad.controller_index(bad.decode(a))];
  }
  EXPECT_EQ(per_pc_def.size(), 32u);
  for (const auto& [pc, n] : per_pc_def)
    EXPECT_EQ(n, (1 << 20) / 32 / 32) << pc;
  EXPECT_EQ(per_pc_bad.size(), 1u);
  // Round trip of one address through the fields.
  const DramCoordinates d = def.decode((5ull << 5) | (1ull << 9) | (3ull << 10));
  EXPECT_EQ(d.channel, 5u);
  EXPECT_EQ(d.pseudo_channel, 1u);
  EXPECT_EQ(d.bank_group, 3u);
}

// --- one pseudo-channel ----------------------------------------------------------------------

TEST(DramController, UnloadedReadLatencyIsRcdPlusClPlusBurst) {
  for (const auto& spec : {test::hbm2_2000(), test::hbm3_6400()}) {
    DramStackSpec s = spec;
    s.policy.refresh = RefreshMode::kNone;
    DramRequest a;
    a.id = 1;
    DramRequest b = a;  // same row, arrives after a completes: a row hit
    b.id = 2;
    b.column = 1;
    b.arrival_cycle = 1000;
    PcRun r = run_pc(s, {a, b});
    ASSERT_EQ(r.done.size(), 2u);
    const auto& t = s.timing;
    EXPECT_EQ(r.done[0].done_cycle, uint64_t{t.rcd_rd} + t.cl + t.burst_cycles);
    EXPECT_EQ(r.done[1].done_cycle - 1000, uint64_t{t.cl} + t.burst_cycles);
    EXPECT_EQ(r.stats.row_misses, 1u);
    EXPECT_EQ(r.stats.row_hits, 1u);
  }
}

// Scheduler, page and refresh variants that random traffic is run under.
struct Variant {
  SchedulerKind sched;
  PagePolicy page;
  RefreshMode refresh;
};
const Variant kVariants[] = {
    {SchedulerKind::kFrFcfs, PagePolicy::kOpen, RefreshMode::kAllBank},
    {SchedulerKind::kFrFcfs, PagePolicy::kAdaptive, RefreshMode::kAllBank},
    {SchedulerKind::kFrFcfs, PagePolicy::kClosed, RefreshMode::kPerBank},
    {SchedulerKind::kFcfs, PagePolicy::kOpen, RefreshMode::kPerBank},
    {SchedulerKind::kFcfs, PagePolicy::kAdaptive, RefreshMode::kAllBank},
};

TEST(DramController, RandomTrafficObeysEveryTimingConstraint) {
  for (const auto& spec : {test::hbm2_2000(), test::hbm3_6400()}) {
    for (const auto& v : kVariants) {
      DramStackSpec s = spec;
      s.policy.scheduler = v.sched;
      s.policy.page = v.page;
      s.policy.refresh = v.refresh;
      PcRun r = run_pc(s, random_requests(s.org, 20000, 0.33, 7));
      ASSERT_EQ(r.done.size(), 20000u);
      EXPECT_EQ(check_legality(r.log, s.org, s.timing), "")
          << "scheduler " << int(v.sched) << " page " << int(v.page) << " refresh "
          << int(v.refresh);
      EXPECT_GT(r.stats.refreshes + r.stats.refreshes_pb, 0u);
    }
  }
}

// The controller's decisions bit for bit: a digest of every command (kind, cycle, bank, row) and
// every completion (id, done cycle) of random mixed traffic under each scheduler, page and
// refresh variant on HBM2 and HBM3, and of a whole HBM3 stack (shared command buses) under a
// stream and under random reads. A change to the controller that is meant to be a pure speed-up
// must leave every digest as it is; one that changes timing on purpose updates them, saying why.
uint64_t fnv(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t digest(const PcRun& r) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& c : r.log) {
    h = fnv(h, static_cast<uint64_t>(c.kind));
    h = fnv(h, c.cycle);
    h = fnv(h, c.bank);
    h = fnv(h, c.row);
  }
  for (const auto& d : r.done) {
    h = fnv(h, d.id);
    h = fnv(h, d.done_cycle);
  }
  return h;
}

// A whole stack fed as the speed benchmark feeds it: submit until refused, advance, repeat.
uint64_t stack_digest(const DramStackSpec& spec, bool random, uint64_t n) {
  DramStack stack(spec);
  std::vector<DramCompletion> done;
  Rng rng(3);
  uint64_t issued = 0, completed = 0, cycle = 0;
  uint64_t h = 1469598103934665603ULL;
  uint64_t addr = random ? rng.below(spec.capacity_bytes() / 32) * 32 : 0;
  while (completed < n) {
    while (issued < n && stack.submit(addr, (issued % 5) == 4, issued, cycle)) {
      ++issued;
      addr = random ? rng.below(spec.capacity_bytes() / 32) * 32 : issued * 32;
    }
    done.clear();
    uint64_t next = stack.advance(cycle, done);
    for (const auto& d : done) {
      h = fnv(h, d.id);
      h = fnv(h, d.done_cycle);
    }
    completed += done.size();
    if (issued < n) next = std::min(next, cycle + 1);
    cycle = next;
  }
  return fnv(h, cycle);
}

TEST(DramController, DecisionsAreUnchangedBitForBit) {
  std::vector<uint64_t> got;
  for (const auto& spec : {test::hbm2_2000(), test::hbm3_6400()}) {
    for (const auto& v : kVariants) {
      DramStackSpec s = spec;
      s.policy.scheduler = v.sched;
      s.policy.page = v.page;
      s.policy.refresh = v.refresh;
      got.push_back(digest(run_pc(s, random_requests(s.org, 20000, 0.33, 11))));
    }
  }
  got.push_back(stack_digest(test::hbm3_6400(), false, 200000));
  got.push_back(stack_digest(test::hbm3_6400(), true, 100000));
  const std::vector<uint64_t> want = {
      7710870951615861141ULL, 169964328269379830ULL,   9295622516389458184ULL,
      2387286091482380129ULL, 18275465177562827572ULL, 5059876872951317561ULL,
      7212441343261538225ULL, 14323004973647867740ULL, 2416010157968375951ULL,
      7101175342748935726ULL, 17235838999764508912ULL, 8620505024356757755ULL};
  std::string printed;
  for (uint64_t g : got)
    printed += std::to_string(g) + "ULL, ";
  EXPECT_EQ(got, want) << printed;
}

// Edge cases of the controller's decisions, bit for bit: tRCD = 0 (a CAS in the ACT's cycle),
// refresh off (advance() may return kNever), FCFS with closed pages, a doubled refresh rate,
// tiny queues and watermarks, no postponed refresh, and two pseudo channels on shared command
// buses; every value advance() returns is hashed with the commands and completions.
uint64_t shared_digest(const DramStackSpec& spec, uint64_t n) {
  SharedCommandBuses buses;
  PseudoChannelController pc0(spec.org, spec.timing, spec.policy),
      pc1(spec.org, spec.timing, spec.policy);
  PseudoChannelController* pcs[2] = {&pc0, &pc1};
  std::vector<DramCommand> logs[2];
  std::vector<DramRequest> reqs[2] = {random_requests(spec.org, n, 0.3, 21, 16),
                                      random_requests(spec.org, n, 0.3, 22, 16)};
  std::vector<DramCompletion> done[2];
  size_t next_req[2] = {0, 0};
  uint64_t next[2] = {0, 0};
  uint64_t h = 1469598103934665603ULL;
  for (int k = 0; k < 2; ++k) {
    pcs[k]->share_command_buses(&buses);
    pcs[k]->record_commands(&logs[k]);
  }
  uint64_t cycle = 0;
  while (done[0].size() < n || done[1].size() < n) {
    uint64_t wake = PseudoChannelController::kNever;
    for (uint64_t j = 0; j < 2; ++j) {
      const size_t k = (j + cycle) % 2;
      while (next_req[k] < reqs[k].size() && reqs[k][next_req[k]].arrival_cycle <= cycle &&
             pcs[k]->can_accept(reqs[k][next_req[k]].write)) {
        pcs[k]->enqueue(reqs[k][next_req[k]++]);
        next[k] = std::min(next[k], cycle);
      }
      if (next[k] <= cycle) {
        next[k] = pcs[k]->advance(cycle, done[k]);
        h = fnv(h, next[k]);
      }
      wake = std::min(wake, next[k]);
      if (next_req[k] < reqs[k].size()) {
        wake = std::min(wake, std::max(cycle + 1, reqs[k][next_req[k]].arrival_cycle));
      }
    }
    if (wake == PseudoChannelController::kNever) break;
    cycle = wake;
  }
  for (int k = 0; k < 2; ++k) {
    PcRun r;
    r.log = logs[k];
    r.done = done[k];
    h = fnv(h, digest(r));
  }
  return h;
}

// One controller, as run_pc drives it, hashing every value advance() returns too.
uint64_t returns_digest(const DramStackSpec& spec, const std::vector<DramRequest>& reqs,
                        double refresh_mult) {
  std::vector<uint64_t> returns;
  const PcRun out = run_pc(spec, reqs, refresh_mult, PseudoChannelController::kNever, &returns);
  uint64_t h = 1469598103934665603ULL;
  for (const uint64_t r : returns)
    h = fnv(h, r);
  return fnv(h, digest(out));
}

TEST(DramController, DecisionsAreUnchangedOnEdgeCases) {
  std::vector<uint64_t> got;
  const DramStackSpec base = test::hbm3_6400();
  for (const PagePolicy page : {PagePolicy::kOpen, PagePolicy::kAdaptive, PagePolicy::kClosed}) {
    for (const SchedulerKind sched : {SchedulerKind::kFrFcfs, SchedulerKind::kFcfs}) {
      DramStackSpec s = base;
      s.policy.page = page;
      s.policy.scheduler = sched;
      DramStackSpec zero_rcd = s;
      zero_rcd.timing.rcd_rd = 0;
      zero_rcd.timing.rcd_wr = 0;
      got.push_back(returns_digest(zero_rcd, random_requests(s.org, 6000, 0.33, 31), 1.0));
      DramStackSpec no_refresh = s;
      no_refresh.policy.refresh = RefreshMode::kNone;
      got.push_back(returns_digest(no_refresh, random_requests(s.org, 6000, 0.33, 32), 1.0));
      DramStackSpec tiny = s;
      tiny.policy.read_queue = 4;
      tiny.policy.write_queue = 4;
      tiny.policy.write_high_watermark = 3;
      tiny.policy.write_low_watermark = 1;
      tiny.policy.max_postponed_refreshes = 0;
      got.push_back(returns_digest(tiny, random_requests(s.org, 6000, 0.5, 33), 2.0));
      DramStackSpec per_bank = s;
      per_bank.policy.refresh = RefreshMode::kPerBank;
      got.push_back(returns_digest(per_bank, random_requests(s.org, 6000, 0.33, 34, 4), 4.0));
      got.push_back(shared_digest(s, 3000));
    }
  }
  const std::vector<uint64_t> want = {
      13334839427701614182ULL, 2655640981406809997ULL,  17110596028765920301ULL,
      3579606343196765233ULL,  5006235623970121078ULL,  2737430448805466518ULL,
      6609256080969394620ULL,  9233939766436647170ULL,  11797428656311618978ULL,
      6990867941981711863ULL,  16229792297394023347ULL, 13467654455785162113ULL,
      10124636195694833951ULL, 1732660016246934416ULL,  9764664080021271756ULL,
      5844380354536980314ULL,  10502702692056198748ULL, 9932685317402113230ULL,
      16294952073874707023ULL, 15273102786459804719ULL, 7326767969180431018ULL,
      13718444810855090358ULL, 6161208775481910142ULL,  11989232674597299440ULL,
      8962296817179176802ULL,  15531508897477516882ULL, 17998231294226764622ULL,
      5775173590205190047ULL,  10702875971352361232ULL, 13442694960483647975ULL};
  std::string printed;
  for (uint64_t g : got)
    printed += std::to_string(g) + "ULL, ";
  EXPECT_EQ(got, want) << printed;
}

// Two pseudo channels on one channel's command buses (as DramStack wires them): random mixed
// traffic in both, advanced in the stack's alternating order. The merged logs never put two
// commands on a bus at once (an ACT holds the row bus for two cycles, every other row command
// for one, a RD or WR the column bus for one); each pseudo channel's own log stays legal; and
// neither starves: both finish within 10% of each other.
TEST(DramController, PseudoChannelsShareTheCommandBuses) {
  const DramStackSpec spec = test::hbm2_2000();
  SharedCommandBuses buses;
  PseudoChannelController pc0(spec.org, spec.timing, spec.policy),
      pc1(spec.org, spec.timing, spec.policy);
  PseudoChannelController* pcs[2] = {&pc0, &pc1};
  std::vector<DramCommand> logs[2];
  std::vector<DramRequest> reqs[2] = {random_requests(spec.org, 3000, 0.3, 5, 64),
                                      random_requests(spec.org, 3000, 0.3, 6, 64)};
  std::vector<DramCompletion> done[2];
  size_t next_req[2] = {0, 0};
  uint64_t next[2] = {0, 0}, end[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    pcs[k]->share_command_buses(&buses);
    pcs[k]->record_commands(&logs[k]);
  }
  uint64_t cycle = 0;
  while (done[0].size() < 3000 || done[1].size() < 3000) {
    uint64_t wake = PseudoChannelController::kNever;
    for (uint64_t j = 0; j < 2; ++j) {
      const size_t k = (j + cycle) % 2;
      while (next_req[k] < reqs[k].size() && reqs[k][next_req[k]].arrival_cycle <= cycle &&
             pcs[k]->can_accept(reqs[k][next_req[k]].write)) {
        pcs[k]->enqueue(reqs[k][next_req[k]++]);
        next[k] = std::min(next[k], cycle);
      }
      if (next[k] <= cycle) next[k] = pcs[k]->advance(cycle, done[k]);
      wake = std::min(wake, next[k]);
      if (next_req[k] < reqs[k].size()) {
        wake = std::min(wake, std::max(cycle + 1, reqs[k][next_req[k]].arrival_cycle));
      }
    }
    ASSERT_NE(wake, PseudoChannelController::kNever);
    cycle = wake;
  }
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(check_legality(logs[k], spec.org, spec.timing), "") << k;
    for (const auto& d : done[k])
      end[k] = std::max(end[k], d.done_cycle);
  }
  std::vector<DramCommand> merged(logs[0]);
  merged.insert(merged.end(), logs[1].begin(), logs[1].end());
  std::stable_sort(merged.begin(), merged.end(),
                   [](const DramCommand& a, const DramCommand& b) { return a.cycle < b.cycle; });
  uint64_t row_free = 0, column_free = 0, acts = 0;
  for (const auto& c : merged) {
    const bool column = c.kind == DramCommandKind::kRd || c.kind == DramCommandKind::kWr ||
                        c.kind == DramCommandKind::kRdA || c.kind == DramCommandKind::kWrA;
    if (column) {
      ASSERT_GE(c.cycle, column_free) << dram_command_name(c.kind) << " at " << c.cycle;
      column_free = c.cycle + 1;
    } else {
      ASSERT_GE(c.cycle, row_free) << dram_command_name(c.kind) << " at " << c.cycle;
      row_free = c.cycle + (c.kind == DramCommandKind::kAct ? 2 : 1);
      acts += c.kind == DramCommandKind::kAct;
    }
  }
  EXPECT_GT(acts, 1000u);  // the row bus was busy enough to matter
  EXPECT_NEAR(double(end[0]), double(end[1]), 0.1 * double(std::max(end[0], end[1])));
}

TEST(DramController, StreamingReadsNearPeakWithoutRefresh) {
  DramStackSpec s = test::hbm3_6400();
  s.policy.refresh = RefreshMode::kNone;
  PcRun r = run_pc(s, stream(s.org, 200000));
  EXPECT_GT(bus_utilisation(r, s.timing), 0.97);
  EXPECT_EQ(check_legality(r.log, s.org, s.timing), "");
  EXPECT_GT(r.stats.row_hits, 190000u);
}

TEST(DramController, RefreshTaxMatchesRfcOverRefi) {
  for (const auto& spec : {test::hbm2_2000(), test::hbm3_6400()}) {
    DramStackSpec off = spec, on = spec;
    off.policy.refresh = RefreshMode::kNone;
    on.policy.refresh = RefreshMode::kAllBank;
    const auto reqs = stream(spec.org, 400000);
    const double u_off = bus_utilisation(run_pc(off, reqs), spec.timing);
    PcRun r_on = run_pc(on, reqs);
    const double u_on = bus_utilisation(r_on, spec.timing);
    const double tax = 1 - u_on / u_off;
    const double predicted = double(spec.timing.rfc) / spec.timing.refi;
    std::printf("[ measured ] refresh tax %.4f, tRFC/tREFI %.4f (tCK %llu ps)\n", tax, predicted,
                static_cast<unsigned long long>(spec.timing.tck_ps));
    EXPECT_NEAR(tax, predicted, 0.01) << "measured " << tax << " predicted " << predicted;
    EXPECT_EQ(check_legality(r_on.log, spec.org, spec.timing), "");
  }
}

TEST(DramController, AboveEightyFiveCelsiusRefreshDoublesAndTaxFollows) {
  DramStackSpec s = test::hbm3_6400();
  const auto reqs = stream(s.org, 400000);
  PcRun cool = run_pc(s, reqs, refresh_rate_multiplier(85.0));
  PcRun hot = run_pc(s, reqs, refresh_rate_multiplier(95.0));
  // Refresh intervals elapsed: one per tREFI at 85 C, two above; at most the postponing limit
  // may still be outstanding when the stream ends (the last data beat may follow the last
  // controller activation by a few cycles, hence +-1).
  EXPECT_NEAR(double(cool.stats.refreshes_due), double(cool.end_cycle / s.timing.refi), 1.0);
  EXPECT_NEAR(double(hot.stats.refreshes_due), double(hot.end_cycle / (s.timing.refi / 2)), 1.0);
  EXPECT_GE(cool.stats.refreshes + s.policy.max_postponed_refreshes, cool.stats.refreshes_due);
  EXPECT_GE(hot.stats.refreshes + s.policy.max_postponed_refreshes, hot.stats.refreshes_due);
  EXPECT_NEAR(
      double(hot.stats.refreshes) / hot.end_cycle / (double(cool.stats.refreshes) / cool.end_cycle),
      2.0, 0.12);
  DramStackSpec off = s;
  off.policy.refresh = RefreshMode::kNone;
  const double u_off = bus_utilisation(run_pc(off, reqs), s.timing);
  const double hot_tax = 1 - bus_utilisation(hot, s.timing) / u_off;
  EXPECT_NEAR(hot_tax, 2.0 * s.timing.rfc / s.timing.refi, 0.015);
  EXPECT_EQ(check_legality(hot.log, s.org, s.timing), "");
}

TEST(DramController, ClosedPageCostsAStreamItsRowHits) {
  DramStackSpec open = test::hbm3_6400(), closed = open;
  open.policy.refresh = closed.policy.refresh = RefreshMode::kNone;
  closed.policy.page = PagePolicy::kClosed;
  const auto reqs = stream(open.org, 40000);
  PcRun a = run_pc(open, reqs), b = run_pc(closed, reqs);
  EXPECT_EQ(b.stats.acts, reqs.size());  // every access opens its row again
  EXPECT_LT(a.stats.acts, reqs.size() / 16);
  EXPECT_GT(b.end_cycle, a.end_cycle);
  EXPECT_EQ(check_legality(b.log, closed.org, closed.timing), "");
}

TEST(DramController, ShallowQueuesLimitRandomThroughput) {
  DramStackSpec deep = test::hbm3_6400(), shallow = deep;
  deep.policy.refresh = shallow.policy.refresh = RefreshMode::kNone;
  shallow.policy.read_queue = 2;
  const auto reqs = random_requests(deep.org, 20000, 0.0, 13, 64);
  auto all_at_zero = reqs;
  for (auto& r : all_at_zero)
    r.arrival_cycle = 0;
  PcRun a = run_pc(deep, all_at_zero), b = run_pc(shallow, all_at_zero);
  EXPECT_GT(b.end_cycle, a.end_cycle * 1.2);  // fewer banks busy at once
}

TEST(DramController, FrFcfsBeatsFcfsOnRowLocality) {
  DramStackSpec s = test::hbm3_6400();
  s.policy.refresh = RefreshMode::kNone;
  const auto reqs = random_requests(s.org, 20000, 0.0, 3, /*rows=*/2);
  DramStackSpec fcfs = s;
  fcfs.policy.scheduler = SchedulerKind::kFcfs;
  PcRun a = run_pc(s, reqs), b = run_pc(fcfs, reqs);
  EXPECT_GT(a.stats.row_hits, b.stats.row_hits);
  EXPECT_LT(a.end_cycle, b.end_cycle);
}

TEST(DramController, WritesDrainBetweenWatermarksAndAllComplete) {
  DramStackSpec s = test::hbm3_6400();
  auto reqs = random_requests(s.org, 30000, 1.0 / 3, 11, 64);
  PcRun r = run_pc(s, reqs);
  ASSERT_EQ(r.done.size(), reqs.size());
  EXPECT_EQ(r.stats.writes + r.stats.reads, reqs.size());
  EXPECT_EQ(check_legality(r.log, s.org, s.timing), "");
  // Reads and writes are not interleaved one by one: turnarounds are far fewer than writes.
  size_t switches = 0;
  bool last_write = false;
  for (const auto& c : r.log) {
    const bool is_cas = c.kind == DramCommandKind::kRd || c.kind == DramCommandKind::kRdA ||
                        c.kind == DramCommandKind::kWr || c.kind == DramCommandKind::kWrA;
    if (!is_cas) continue;
    const bool w = c.kind == DramCommandKind::kWr || c.kind == DramCommandKind::kWrA;
    switches += w != last_write;
    last_write = w;
  }
  EXPECT_LT(switches, r.stats.writes / 4);
}

// --- one stack -------------------------------------------------------------------------------

double stack_stream_bandwidth(const DramStackSpec& spec, uint64_t bytes) {
  return test::stream_bandwidth(spec, bytes);
}

TEST(DramStack, Hbm3StreamingReachesEightyFiveToNinetyFivePercentOfPeak) {
  DramStackSpec s = test::hbm3_6400();
  EXPECT_DOUBLE_EQ(s.peak_bytes_per_s(), 819.2e9);
  const double with_refresh = stack_stream_bandwidth(s, 160ull << 20);  // 200 us
  EXPECT_GE(with_refresh / 819.2e9, 0.85);
  EXPECT_LE(with_refresh / 819.2e9, 0.95);
  DramStackSpec off = s;
  off.policy.refresh = RefreshMode::kNone;
  const double without = stack_stream_bandwidth(off, 32ull << 20);
  std::printf("[ measured ] HBM3 stream: %.1f GB/s with refresh (%.1f%%), %.1f GB/s without\n",
              with_refresh / 1e9, 100 * with_refresh / 819.2e9, without / 1e9);
  EXPECT_GE(without / 819.2e9, 0.97);
}

TEST(DramStack, MappingThatKeepsAStreamInOnePseudoChannelGetsOnlyItsShare) {
  DramStackSpec s = test::hbm3_6400();
  s.policy.refresh = RefreshMode::kNone;
  DramStackSpec bad = s;
  bad.mapping = "ChPcRoBaBgCo";
  const double good_bw = stack_stream_bandwidth(s, 8ull << 20);
  const double bad_bw = stack_stream_bandwidth(bad, 8ull << 20);
  std::printf("[ measured ] default mapping %.1f GB/s, one-pseudo-channel mapping %.1f GB/s\n",
              good_bw / 1e9, bad_bw / 1e9);
  EXPECT_LE(bad_bw, 819.2e9 / 32 * 1.01);
  EXPECT_GE(good_bw, 0.9 * 819.2e9);
}

TEST(DramStack, BadMappingStringIsRejected) {
  DramStackSpec s = test::hbm3_6400();
  s.mapping = "RoBaCo";
  EXPECT_THROW(DramStack{s}, std::invalid_argument);
}

}  // namespace
}  // namespace tiersim

namespace tiersim {
namespace {

const char* const kPresets[] = {"hbm2_2000",       "hbm2e_3200",     "hbm2e_3600",
                                "hbm3_6400",       "hbm3e_9200_8h",  "hbm3e_9200_12h",
                                "hbm3e_9600_8h",   "hbm3e_9600_12h", "hbm4_8000",
                                "hbm2e_3186_a100", "hbm3_5234_h100", "hbm3e_6250_h200"};

TEST(HbmPresets, ValidAndPeakMatchesPinArithmetic) {
  for (const char* name : kPresets) {
    const config::Config c = test::load_memory_preset(name);
    const config::HbmFast& h = c.system().components(0).hbm();
    std::vector<ConfigIssue> issues;
    Validator v(issues);
    validate_hbm_device(h.device(), h, v);
    EXPECT_TRUE(issues.empty()) << name << ": " << (issues.empty() ? "" : issues[0].format());
    const DramStackSpec s = dram_spec_from_config(h.device());
    const double pins = h.pin_data_rate_mbps() * 1e6 * h.bus_width_bits() / 8;
    EXPECT_NEAR(s.peak_bytes_per_s(), pins, pins * 0.001) << name;
    EXPECT_GE(s.capacity_bytes(), h.capacity_bytes_per_stack()) << name;
  }
  // Pin rate x 1024 / 8: HBM3 819.2, HBM3E 9.2 Gb/s 1177.6, HBM2E 3.2 Gb/s 409.6 GB/s per stack.
  EXPECT_DOUBLE_EQ(test::load_device("hbm3_6400").peak_bytes_per_s(), 819.2e9);
  EXPECT_NEAR(test::load_device("hbm3e_9200_8h").peak_bytes_per_s(), 1177.6e9, 1177.6e9 * 0.02);
  EXPECT_DOUBLE_EQ(test::load_device("hbm2e_3200").peak_bytes_per_s(), 409.6e9);
  EXPECT_DOUBLE_EQ(test::load_device("hbm4_8000").peak_bytes_per_s(), 2048e9);
}

// The controller keys a bank in 16 bits: an organisation with more banks per pseudo channel is
// refused by validation, not when the system is built.
TEST(HbmPresets, MoreThan65535BanksPerPseudoChannelAreRefused) {
  config::Config c = test::load_memory_preset("hbm3_6400");
  config::HbmFast& h = *c.mutable_system()->mutable_components(0)->mutable_hbm();
  h.mutable_device()->mutable_organization()->set_bank_groups(256);
  h.mutable_device()->mutable_organization()->set_banks_per_group(256);
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  validate_hbm_device(h.device(), h, v);
  ASSERT_FALSE(issues.empty());
  EXPECT_NE(issues[0].format().find("65535"), std::string::npos) << issues[0].format();
}

TEST(HbmPresets, UnloadedReadLatencyIsFrontEndPlusCommandSequence) {
  for (const char* name : kPresets) {
    DramStackSpec s = test::load_device(name);
    DramStack stack(s);
    std::vector<DramCompletion> done;
    ASSERT_TRUE(stack.submit(0, false, 1, 0));
    uint64_t cycle = 0;
    while (done.empty())
      cycle = stack.advance(cycle, done);
    const auto& t = s.timing;
    EXPECT_EQ(stack.latency_ps(done[0]),
              s.frontend_latency_ps + (uint64_t{t.rcd_rd} + t.cl + t.burst_cycles) * t.tck_ps)
        << name;
  }
}

TEST(HbmPresets, EveryPresetIsTimingLegalUnderMixedTraffic) {
  for (const char* name : kPresets) {
    DramStackSpec s = test::load_device(name);
    s.policy.page = PagePolicy::kAdaptive;
    PcRun r = run_pc(s, random_requests(s.org, 6000, 0.33, 5));
    ASSERT_EQ(r.done.size(), 6000u) << name;
    EXPECT_EQ(check_legality(r.log, s.org, s.timing), "") << name;
  }
}

}  // namespace
}  // namespace tiersim
