// One pseudo-channel's memory controller and its DRAM banks at command level (the detailed
// level of the HBM model). Plain C++: the SystemC shell calls advance() only at the cycles it
// returns, so idle cycles are never visited.
//
// What is modelled: read and write queues; FR-FCFS (row hits first, then the oldest) or FCFS
// scheduling; open, closed and adaptive page policies (auto-precharge); write drain between
// high and low watermarks; per-bank, per-bank-group and per-channel timing (tRCD, tRP, tRAS,
// tRC, tRRD_S/L, tFAW, tCCD_S/L, tRTP, tWR, tWTR_S/L, read-to-write turnaround, CL, CWL, burst);
// all-bank refresh (PREA then REFab, up to `max_postponed_refreshes` postponed while requests
// wait, pulled in when idle) or per-bank refresh (round robin, tRFCpb, tRREFD); a refresh-rate
// multiplier for temperature. One row command (ACT/PRE/PREA/REF) and one column command
// (RD/WR) may issue per cycle (HBM's separate row and column command buses), an ACT holding the
// row bus for two cycles; in pseudo-channel mode the two pseudo channels of a channel share
// those buses (JESD235 HBM2, JESD238 HBM3: the command carries the pseudo-channel bit), so a
// sibling's command takes the bus for its cycles.
//
// Left out: power-down and self-refresh, stack IDs as separate ranks, RFM, ECC, data.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "memory/dram_spec.h"

namespace tiersim {

struct DramRequest {
  uint64_t id = 0;
  bool write = false;
  uint32_t bank_group = 0, bank = 0;  // bank within its group
  uint32_t row = 0, column = 0;
  uint64_t arrival_cycle = 0;
  // Set by the controller: which commands this request needed (row-hit accounting at its CAS).
  bool needed_act = false, needed_pre = false;
};

struct DramCompletion {
  uint64_t id;
  bool write;
  uint64_t arrival_cycle;
  uint64_t done_cycle;  // last data beat (may lie after the cycle that produced it)
};

enum class DramCommandKind : uint8_t { kAct, kPre, kPreAll, kRd, kWr, kRdA, kWrA, kRefAb, kRefPb };
const char* dram_command_name(DramCommandKind k);

struct DramCommand {
  DramCommandKind kind;
  uint64_t cycle;
  uint32_t bank;  // flat bank index (bank_group * banks_per_group + bank); 0 for all-bank
  uint32_t row;
};

// The row and column command buses of one channel, shared by its pseudo channels: the first
// cycle each is free. An ACT holds the row bus for two cycles (its row address takes two
// clocks on HBM's row command pins, JESD235 / JESD238), PRE, PREA and REF for one; a RD or WR
// holds the column bus for one.
struct SharedCommandBuses {
  static constexpr uint64_t kActRowCycles = 2;
  uint64_t row_free = 0, column_free = 0;
};

struct DramControllerStats {
  uint64_t acts = 0, pres = 0, reads = 0, writes = 0, refreshes = 0, refreshes_pb = 0;
  uint64_t row_hits = 0, row_misses = 0, row_conflicts = 0;  // at the first command per request
  uint64_t data_cycles = 0;                                  // cycles the data bus carried bursts
  uint64_t postponed_max = 0;
  uint64_t refreshes_due = 0;  // refresh intervals elapsed (issued + still postponed)
};

class PseudoChannelController {
 public:
  static constexpr uint64_t kNever = UINT64_MAX;

  PseudoChannelController(const DramOrganization& org, const DramTiming& timing,
                          const ControllerPolicy& policy);

  bool can_accept(bool write) const;
  // Queues a request; its arrival_cycle must not lie after the next advance() cycle.
  void enqueue(const DramRequest& r);
  // Issues what is legal at `cycle` (non-decreasing between calls) and appends the requests it
  // completes to `done`. Returns the next cycle at which a call can do something (kNever when
  // there is nothing to do and refresh is off). Does not allocate once `done` has capacity.
  uint64_t advance(uint64_t cycle, std::vector<DramCompletion>& done);

  // Multiplies the refresh rate (tREFI and tREFIpb are divided by it); from the next interval.
  void set_refresh_multiplier(double m);
  // Shares the command buses with the channel's other pseudo channels (nullptr: its own). The
  // controllers sharing them are advanced one after the other within a cycle; the first takes
  // a bus it uses.
  void share_command_buses(SharedCommandBuses* buses) {
    buses_ = buses != nullptr ? buses : &own_buses_;
  }
  // Appends every issued command to `log` (nullptr: off). For tests and tracing.
  void record_commands(std::vector<DramCommand>* log) { log_ = log; }

  const DramControllerStats& stats() const { return stats_; }
  size_t queued() const { return reads_.size() + writes_.size(); }
  bool draining_writes() const { return draining_; }

 private:
  // Timing state of one bank; whether it is open and which row is in open_row_.
  struct Bank {
    uint64_t next_act = 0, next_pre = 0, next_rd = 0, next_wr = 0;
  };
  struct Group {
    uint64_t next_act = 0, next_rd = 0, next_wr = 0;
  };
  enum class Need : uint8_t { kCas, kAct, kPre };
  static constexpr uint64_t kClosed = UINT64_MAX;  // open_row_ of a closed bank

  // A queued request's scheduling key, kept beside the queue so that the scheduler's scans read
  // 8 bytes per request: the flat bank (bits 0-15) and the row (32-63); equal keys are hits on
  // the same row.
  static uint64_t key_of(uint32_t bank, uint32_t row) { return (uint64_t{row} << 32) | bank; }
  static uint32_t key_bank(uint64_t k) { return static_cast<uint32_t>(k & 0xffff); }
  static uint32_t key_row(uint64_t k) { return static_cast<uint32_t>(k >> 32); }
  // A queue in arrival order: the requests and their keys, index for index, and per bank how
  // many of them hit its open row (kept as requests come and go and rows open and close). The
  // live entries are [head, end): a served request is closed up from whichever side is shorter
  // (the oldest, which streams serve first, just moves `head`), and the entries move back to
  // the front once `head` has passed a queue's length.
  struct Queue {
    std::vector<DramRequest> reqs;
    std::vector<uint64_t> keys;
    std::vector<uint32_t> hits;   // per bank: requests that hit its open row
    std::vector<uint32_t> count;  // per bank: requests
    size_t head = 0;
    size_t size() const { return keys.size() - head; }
    bool empty() const { return keys.size() == head; }
    void push(const DramRequest& r, uint64_t key) {
      reqs.push_back(r);
      keys.push_back(key);
    }
    void remove(size_t index);
  };

  uint32_t flat(const DramRequest& r) const { return r.bank_group * org_.banks_per_group + r.bank; }
  Need need(uint64_t key) const {
    const uint64_t open = open_row_[key_bank(key)];
    if (open == kClosed) return Need::kAct;
    return open == key_row(key) ? Need::kCas : Need::kPre;
  }
  // The earliest cycle a CAS (of the given direction) or an ACT to `bank` is legal by the bank's
  // and its group's constraints, and by the channel's too.
  uint64_t cas_bank_group(uint32_t bank, bool write) const {
    const Bank& b = banks_[bank];
    const Group& g = groups_[group_of_[bank]];
    return write ? std::max(b.next_wr, g.next_wr) : std::max(b.next_rd, g.next_rd);
  }
  uint64_t act_bank_group(uint32_t bank) const {
    return std::max(banks_[bank].next_act, groups_[group_of_[bank]].next_act);
  }
  uint64_t cas_ready_bank(uint32_t bank, bool write) const {
    return std::max(cas_bank_group(bank, write), write ? next_wr_ : next_rd_);
  }
  uint64_t act_ready_bank(uint32_t bank) const {
    return std::max({act_bank_group(bank), next_act_, faw_bound()});
  }
  // The oldest of the last four ACTs bounds the next one by tFAW (0 before the fifth).
  uint64_t faw_bound() const { return acts_issued_ >= 4 ? faw_[faw_head_] + t_.faw : 0; }
  // Whether a request in `q` hits `bank`'s open row.
  bool row_has_hits(uint32_t bank, const Queue& q) const { return q.hits[bank] > 0; }
  // Opens `row` in `bank` (recounting the queues' hits on it) or closes the bank.
  void open_row(uint32_t bank, uint32_t row);
  void close_row(uint32_t bank);
  bool blocked_by_refresh(uint32_t bank) const;

  void issue_act(DramRequest& r, uint64_t key, uint64_t c);
  void issue_pre(uint32_t bank, uint64_t c);
  void issue_cas(size_t index, Queue& q, uint64_t c, std::vector<DramCompletion>& done);
  bool try_refresh(uint64_t c, bool* row_bus_used);
  void accrue_refresh(uint64_t c);
  uint64_t refresh_ready(uint64_t c) const;
  void log(DramCommandKind k, uint64_t c, uint32_t bank, uint32_t row);

  const DramOrganization org_;
  const DramTiming t_;
  const ControllerPolicy policy_;
  std::vector<Bank> banks_;
  std::vector<uint64_t> open_row_;  // per bank: the open row, or kClosed
  std::vector<uint32_t> group_of_;  // per bank: its bank group
  // Scratch of advance(): per bank, which command its requests can take this cycle.
  static constexpr uint8_t kNone = 0, kCanAct = 1, kCanPre = 2, kRowMask = 3, kCanCas = 4;
  std::vector<uint8_t> bank_can_;
  std::vector<Group> groups_;
  Queue reads_, writes_;                               // arrival order; capacity reserved
  uint64_t next_act_ = 0, next_rd_ = 0, next_wr_ = 0;  // channel level
  std::array<uint64_t, 4> faw_{};                      // cycles of the last four ACTs (ring)
  uint32_t faw_head_ = 0;
  uint64_t acts_issued_ = 0;  // tFAW applies from the fifth ACT on
  bool draining_ = false;

  // Refresh.
  double refresh_multiplier_ = 1.0;
  uint64_t next_refresh_due_ = 0;
  uint32_t pending_refreshes_ = 0;
  uint32_t refresh_bank_ = 0;  // per-bank round robin
  uint64_t next_refpb_ = 0;    // tRREFD between per-bank refreshes

  DramControllerStats stats_;
  std::vector<DramCommand>* log_ = nullptr;
  SharedCommandBuses own_buses_;
  SharedCommandBuses* buses_ = &own_buses_;
};

}  // namespace tiersim
