#include "memory/dram_controller.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tiersim {

double refresh_rate_multiplier(double temperature_c) {
  if (temperature_c > 95.0) return 4.0;
  return temperature_c > 85.0 ? 2.0 : 1.0;
}

const char* dram_command_name(DramCommandKind k) {
  switch (k) {
    case DramCommandKind::kAct:
      return "ACT";
    case DramCommandKind::kPre:
      return "PRE";
    case DramCommandKind::kPreAll:
      return "PREA";
    case DramCommandKind::kRd:
      return "RD";
    case DramCommandKind::kWr:
      return "WR";
    case DramCommandKind::kRdA:
      return "RDA";
    case DramCommandKind::kWrA:
      return "WRA";
    case DramCommandKind::kRefAb:
      return "REFab";
    case DramCommandKind::kRefPb:
      return "REFpb";
  }
  return "?";
}

PseudoChannelController::PseudoChannelController(const DramOrganization& org,
                                                 const DramTiming& timing,
                                                 const ControllerPolicy& policy)
    : org_(org),
      t_(timing),
      policy_(policy),
      banks_(org.banks()),
      open_row_(org.banks(), kClosed),
      groups_(org.bank_groups) {
  if (org.banks() > 0xffff) {
    throw std::invalid_argument("dram: more than 65535 banks per pseudo channel");
  }
  for (Queue* q : {&reads_, &writes_}) {
    q->hits.assign(org.banks(), 0);
    q->count.assign(org.banks(), 0);
  }
  bank_can_.assign(org.banks(), kNone);
  group_of_.resize(org.banks());
  for (uint32_t b = 0; b < org.banks(); ++b)
    group_of_[b] = b / org.banks_per_group;
  // The live entries and the room `head` leaves before them (under max(64, a queue's length)).
  reads_.reqs.reserve(2 * size_t{policy.read_queue} + 64);
  reads_.keys.reserve(2 * size_t{policy.read_queue} + 64);
  writes_.reqs.reserve(2 * size_t{policy.write_queue} + 64);
  writes_.keys.reserve(2 * size_t{policy.write_queue} + 64);
  if (policy_.refresh == RefreshMode::kAllBank) next_refresh_due_ = t_.refi;
  if (policy_.refresh == RefreshMode::kPerBank) next_refresh_due_ = t_.refi_pb;
}

void PseudoChannelController::set_refresh_multiplier(double m) {
  refresh_multiplier_ = m;
}

bool PseudoChannelController::can_accept(bool write) const {
  return write ? writes_.size() < policy_.write_queue : reads_.size() < policy_.read_queue;
}

void PseudoChannelController::Queue::remove(size_t index) {
  const auto at = static_cast<std::ptrdiff_t>(index);
  const auto first = static_cast<std::ptrdiff_t>(head);
  if (index - head < keys.size() - 1 - index) {
    // Closer to the oldest: shift the older entries up by one.
    std::move_backward(keys.begin() + first, keys.begin() + at, keys.begin() + at + 1);
    std::move_backward(reqs.begin() + first, reqs.begin() + at, reqs.begin() + at + 1);
    ++head;
  } else {
    keys.erase(keys.begin() + at);
    reqs.erase(reqs.begin() + at);
  }
  if (head == keys.size()) {
    keys.clear();
    reqs.clear();
    head = 0;
  } else if (head >= 64 && head >= size()) {
    keys.erase(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(head));
    reqs.erase(reqs.begin(), reqs.begin() + static_cast<std::ptrdiff_t>(head));
    head = 0;
  }
}

void PseudoChannelController::enqueue(const DramRequest& r) {
  Queue& q = r.write ? writes_ : reads_;
  const uint32_t bank = flat(r);
  q.push(r, key_of(bank, r.row));
  ++q.count[bank];
  if (open_row_[bank] == r.row) ++q.hits[bank];
}

void PseudoChannelController::log(DramCommandKind k, uint64_t c, uint32_t bank, uint32_t row) {
  if (log_ != nullptr) log_->push_back(DramCommand{k, c, bank, row});
}

void PseudoChannelController::open_row(uint32_t bank, uint32_t row) {
  open_row_[bank] = row;
  const uint64_t want = key_of(bank, row);
  for (Queue* q : {&reads_, &writes_}) {
    uint32_t n = 0;
    for (size_t i = q->head; i < q->keys.size(); ++i)
      n += q->keys[i] == want ? 1 : 0;
    q->hits[bank] = n;
  }
}

void PseudoChannelController::close_row(uint32_t bank) {
  open_row_[bank] = kClosed;
  reads_.hits[bank] = 0;
  writes_.hits[bank] = 0;
}

bool PseudoChannelController::blocked_by_refresh(uint32_t bank) const {
  // While a refresh is due, no new row is opened in the banks it needs.
  if (pending_refreshes_ == 0) return false;
  const bool urgent = pending_refreshes_ > policy_.max_postponed_refreshes;
  if (policy_.refresh == RefreshMode::kAllBank) return urgent;
  return bank == refresh_bank_;
}

void PseudoChannelController::issue_act(DramRequest& r, uint64_t key, uint64_t c) {
  const uint32_t bank = key_bank(key);
  Bank& b = banks_[bank];
  open_row(bank, r.row);
  r.needed_act = true;
  b.next_rd = std::max(b.next_rd, c + t_.rcd_rd);
  b.next_wr = std::max(b.next_wr, c + t_.rcd_wr);
  b.next_pre = std::max(b.next_pre, c + t_.ras);
  b.next_act = std::max(b.next_act, c + t_.rc);
  Group& g = groups_[group_of_[bank]];
  g.next_act = std::max(g.next_act, c + t_.rrd_l);
  next_act_ = std::max(next_act_, c + t_.rrd_s);
  faw_[faw_head_] = c;
  faw_head_ = (faw_head_ + 1) % 4;
  ++acts_issued_;
  ++stats_.acts;
  log(DramCommandKind::kAct, c, bank, r.row);
}

void PseudoChannelController::issue_pre(uint32_t bank, uint64_t c) {
  Bank& b = banks_[bank];
  const uint32_t row = static_cast<uint32_t>(open_row_[bank]);
  close_row(bank);
  b.next_act = std::max(b.next_act, c + t_.rp);
  ++stats_.pres;
  log(DramCommandKind::kPre, c, bank, row);
}

void PseudoChannelController::issue_cas(size_t index, Queue& q, uint64_t c,
                                        std::vector<DramCompletion>& done) {
  const DramRequest r = q.reqs[index];
  const uint64_t key = q.keys[index];
  q.remove(index);
  const uint32_t bank = key_bank(key);
  --q.hits[bank];  // a CAS serves a row hit
  --q.count[bank];
  Bank& b = banks_[bank];
  Group& g = groups_[group_of_[bank]];
  bool auto_pre = false;
  if (policy_.page == PagePolicy::kClosed) {
    auto_pre = true;
  } else if (policy_.page == PagePolicy::kAdaptive) {
    // Close the row unless another queued request hits it (this one has left the queue).
    auto_pre = !row_has_hits(bank, reads_) && !row_has_hits(bank, writes_);
  }
  uint64_t data_end;
  if (!r.write) {
    next_rd_ = std::max(next_rd_, c + t_.ccd_s);
    g.next_rd = std::max(g.next_rd, c + t_.ccd_l);
    next_wr_ = std::max(next_wr_, c + t_.rtw);
    b.next_pre = std::max(b.next_pre, c + t_.rtp);
    data_end = c + t_.cl + t_.burst_cycles;
    ++stats_.reads;
  } else {
    const uint64_t write_end = c + t_.cwl + t_.burst_cycles;
    next_wr_ = std::max(next_wr_, c + t_.ccd_s);
    g.next_wr = std::max(g.next_wr, c + t_.ccd_l);
    next_rd_ = std::max(next_rd_, write_end + t_.wtr_s);
    g.next_rd = std::max(g.next_rd, write_end + t_.wtr_l);
    b.next_pre = std::max(b.next_pre, write_end + t_.wr);
    data_end = write_end;
    ++stats_.writes;
  }
  stats_.data_cycles += t_.burst_cycles;
  if (r.needed_pre) {
    ++stats_.row_conflicts;
  } else if (r.needed_act) {
    ++stats_.row_misses;
  } else {
    ++stats_.row_hits;
  }
  const DramCommandKind kind = r.write ? (auto_pre ? DramCommandKind::kWrA : DramCommandKind::kWr)
                                       : (auto_pre ? DramCommandKind::kRdA : DramCommandKind::kRd);
  log(kind, c, bank, r.row);
  if (auto_pre) {
    // The internal precharge starts when tRAS/tRTP/tWR allow; the bank may open again tRP later.
    const uint64_t pre_at = b.next_pre;
    close_row(bank);
    b.next_act = std::max(b.next_act, pre_at + t_.rp);
    ++stats_.pres;
  }
  done.push_back(DramCompletion{r.id, r.write, r.arrival_cycle, data_end});
}

void PseudoChannelController::accrue_refresh(uint64_t c) {
  if (policy_.refresh == RefreshMode::kNone) return;
  const uint32_t base = policy_.refresh == RefreshMode::kAllBank ? t_.refi : t_.refi_pb;
  const uint64_t interval =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::floor(base / refresh_multiplier_)));
  while (c >= next_refresh_due_) {
    ++pending_refreshes_;
    ++stats_.refreshes_due;
    next_refresh_due_ += interval;
  }
  stats_.postponed_max = std::max<uint64_t>(stats_.postponed_max, pending_refreshes_);
}

// Earliest cycle the refresh machinery can issue its next command (kNever if none pending).
uint64_t PseudoChannelController::refresh_ready(uint64_t c) const {
  if (pending_refreshes_ == 0) return kNever;
  const bool idle = reads_.empty() && writes_.empty();
  if (policy_.refresh == RefreshMode::kAllBank) {
    if (!idle && pending_refreshes_ <= policy_.max_postponed_refreshes) return kNever;
    // PREA when any bank is open (after every open bank's tRAS/tRTP/tWR), else REFab once every
    // bank may be activated again (tRP after the PREA, tRC after the last ACT).
    bool any_open = false;
    uint64_t pre_ready = c, ref_ready = c;
    for (size_t i = 0; i < banks_.size(); ++i) {
      if (open_row_[i] != kClosed) {
        any_open = true;
        pre_ready = std::max(pre_ready, banks_[i].next_pre);
      } else {
        ref_ready = std::max(ref_ready, banks_[i].next_act);
      }
    }
    return any_open ? pre_ready : ref_ready;
  }
  const Bank& b = banks_[refresh_bank_];
  const bool open = open_row_[refresh_bank_] != kClosed;
  return std::max({c, open ? b.next_pre : b.next_act, next_refpb_});
}

bool PseudoChannelController::try_refresh(uint64_t c, bool* row_bus_used) {
  if (refresh_ready(c) > c) return false;
  if (policy_.refresh == RefreshMode::kAllBank) {
    bool any_open = false;
    for (const uint64_t open : open_row_)
      any_open |= open != kClosed;
    if (any_open) {
      for (size_t i = 0; i < banks_.size(); ++i) {
        if (open_row_[i] != kClosed) {
          close_row(static_cast<uint32_t>(i));
          banks_[i].next_act = std::max(banks_[i].next_act, c + t_.rp);
          ++stats_.pres;
        }
      }
      log(DramCommandKind::kPreAll, c, 0, 0);
    } else {
      for (auto& b : banks_)
        b.next_act = std::max(b.next_act, c + t_.rfc);
      --pending_refreshes_;
      ++stats_.refreshes;
      log(DramCommandKind::kRefAb, c, 0, 0);
    }
    *row_bus_used = true;
    return true;
  }
  Bank& b = banks_[refresh_bank_];
  if (open_row_[refresh_bank_] != kClosed) {
    issue_pre(refresh_bank_, c);
  } else {
    b.next_act = std::max(b.next_act, c + t_.rfc_pb);
    next_act_ = std::max(next_act_, c + t_.rrefd);
    next_refpb_ = c + t_.rrefd;
    log(DramCommandKind::kRefPb, c, refresh_bank_, 0);
    --pending_refreshes_;
    ++stats_.refreshes_pb;
    refresh_bank_ = (refresh_bank_ + 1) % org_.banks();
  }
  *row_bus_used = true;
  return true;
}

uint64_t PseudoChannelController::advance(uint64_t c, std::vector<DramCompletion>& done) {
  accrue_refresh(c);

  // Write drain: start at the high watermark (or when no reads wait), stop at the low one.
  if (draining_ && (writes_.size() <= policy_.write_low_watermark && !reads_.empty())) {
    draining_ = false;
  }
  if (writes_.empty()) draining_ = false;
  if (!draining_ &&
      (writes_.size() >= policy_.write_high_watermark || (reads_.empty() && !writes_.empty()))) {
    draining_ = true;
  }
  Queue& q = draining_ ? writes_ : reads_;
  const bool fcfs = policy_.scheduler == SchedulerKind::kFcfs;
  // The entries the scheduler may serve: all live ones (FR-FCFS) or the oldest (FCFS).
  const size_t scan = q.empty() ? 0 : fcfs ? q.head + 1 : q.keys.size();  // an end index

  // Row bus: refresh first when it is due, then ACT/PRE for the oldest request that needs one.
  // The bus is busy while an earlier command (this pseudo channel's or a sibling's) holds it.
  // Whether a request can take a row command now depends only on its bank (and, in an open
  // bank, on whether it misses the open row): the banks are judged first, then the oldest
  // request of a bank that can act is found in the queue, as a request-by-request scan would.
  const bool row_taken = buses_->row_free > c;
  bool row_used = row_taken;
  uint64_t row_cycles = 1;
  if (!row_used) try_refresh(c, &row_used);
  const uint64_t channel_act = std::max(next_act_, faw_bound());
  // Column bus: the oldest row hit whose CAS is legal now (FR-FCFS), or the head (FCFS). No CAS
  // of the active kind can issue before the channel-level constraint (which no row command
  // changes), so the CAS is not looked for then. Legality again depends on the bank only.
  const uint64_t channel_cas = draining_ ? next_wr_ : next_rd_;
  const bool q_writes = &q == &writes_;
  const bool want_row = !row_used && scan > 0;
  const bool want_cas = channel_cas <= c && buses_->column_free <= c && scan > 0;
  bool any_row = false, any_cas = false;
  if (want_row || want_cas) {
    // One pass over the banks for both buses (a row command issued below changes only its own
    // bank, whose CAS flag is then cleared).
    // Branch-free per bank (the conditions are data-dependent under random traffic).
    const bool act_ok = want_row && channel_act <= c;
    const bool refresh_pending = pending_refreshes_ > 0;
    const uint32_t banks = static_cast<uint32_t>(banks_.size());
    for (uint32_t b = 0; b < banks; ++b) {
      if (q.count[b] == 0) {  // (well predicted: streams leave most banks empty, random none)
        bank_can_[b] = kNone;
        continue;
      }
      const Bank& bank = banks_[b];
      const Group& group = groups_[group_of_[b]];
      const bool closed = open_row_[b] == kClosed;
      const uint32_t hits = q.hits[b];  // 0 when closed
      bool can_act = act_ok & closed & (bank.next_act <= c) & (group.next_act <= c);
      if (can_act && refresh_pending && blocked_by_refresh(b)) can_act = false;
      const bool can_pre = want_row & !closed & (bank.next_pre <= c) & (fcfs | (hits == 0));
      // (cas_bank_group() spelled out: this loop is the controller's hottest)
      const uint64_t cas_at =
          q_writes ? std::max(bank.next_wr, group.next_wr) : std::max(bank.next_rd, group.next_rd);
      const bool can_cas = want_cas & (hits > 0) & (cas_at <= c);
      const uint8_t can = static_cast<uint8_t>((can_act ? kCanAct : 0) | (can_pre ? kCanPre : 0) |
                                               (can_cas ? kCanCas : 0));
      bank_can_[b] = can;
      any_row |= (can & kRowMask) != 0;
      any_cas |= can_cas;
    }
  }
  for (size_t i = q.head; any_row && i < scan; ++i) {
    const uint64_t key = q.keys[i];
    const uint32_t bank = key_bank(key);
    const uint8_t can = bank_can_[bank] & kRowMask;
    if (can == kCanAct) {
      issue_act(q.reqs[i], key, c);
      row_used = true;
      row_cycles = SharedCommandBuses::kActRowCycles;
      // The bank was closed, so it had no CAS flag; with tRCD = 0 its hits may take the column
      // bus in this same cycle, as a scan after the ACT would find.
      const bool cas_now = want_cas && q.hits[bank] > 0 && cas_bank_group(bank, q_writes) <= c;
      bank_can_[bank] = cas_now ? kCanCas : kNone;
      any_cas |= cas_now;
      break;
    }
    if (can == kCanPre && key_row(key) != open_row_[bank]) {
      q.reqs[i].needed_pre = true;
      issue_pre(bank, c);
      row_used = true;
      bank_can_[bank] = kNone;
      break;
    }
  }
  if (row_used && !row_taken) buses_->row_free = c + row_cycles;

  for (size_t i = q.head; any_cas && i < scan; ++i) {
    const uint64_t key = q.keys[i];
    const uint32_t bank = key_bank(key);
    if ((bank_can_[bank] & kCanCas) != 0 && key_row(key) == open_row_[bank]) {
      issue_cas(i, q, c, done);
      buses_->column_free = c + 1;
      break;
    }
  }

  // The next cycle anything can happen.
  uint64_t next = kNever;
  if (policy_.refresh != RefreshMode::kNone) next = std::max(next_refresh_due_, c + 1);
  if (pending_refreshes_ > 0) {
    const uint64_t rr = refresh_ready(c + 1);
    if (rr != kNever) next = std::min(next, std::max(rr, buses_->row_free));
  }
  // After a possible mode switch, both queues may be served next; consider both: each request
  // at the earliest cycle its next command is legal (c + 1 at the soonest). Every request of a
  // bank that needs the same command is legal at the same cycle, so FR-FCFS (which may serve
  // any request) takes the least over the banks; FCFS only the head.
  const auto at_least = [&](uint64_t at) { next = std::min(next, std::max(at, c + 1)); };
  const auto consider_key = [&](uint64_t key, bool writes) {
    const uint32_t bank = key_bank(key);
    switch (need(key)) {
      case Need::kCas:
        at_least(std::max(cas_ready_bank(bank, writes), buses_->column_free));
        break;
      case Need::kAct:
        // Blocked by a refresh: it becomes possible after the refresh, which is in `next`.
        if (!blocked_by_refresh(bank)) at_least(std::max(act_ready_bank(bank), buses_->row_free));
        break;
      default:
        at_least(std::max(banks_[bank].next_pre, buses_->row_free));
        break;
    }
  };
  const auto consider = [&](const Queue& queue, bool writes) {
    if (queue.empty()) return;
    if (fcfs) {
      consider_key(queue.keys[queue.head], writes);
      return;
    }
    // The channel-level parts of every bank's bound, once.
    const uint64_t act_common = std::max({next_act_, faw_bound(), buses_->row_free});
    const uint64_t cas_common = std::max(writes ? next_wr_ : next_rd_, buses_->column_free);
    const uint64_t pre_common = buses_->row_free;
    const bool refresh_blocks = pending_refreshes_ > 0;
    const uint32_t banks = static_cast<uint32_t>(banks_.size());
    // Branch-free per bank: each command kind's cycle, or kNever when the bank has no request
    // that needs it (a blocked ACT becomes possible after the refresh, which is in `next`).
    uint64_t least = kNever;
    for (uint32_t b = 0; b < banks && least > c + 1 && next > c + 1; ++b) {  // c + 1: the soonest
      const uint32_t n = queue.count[b];
      if (n == 0) continue;
      const uint32_t hits = queue.hits[b];  // 0 when closed
      const bool closed = open_row_[b] == kClosed;
      bool act = closed;
      if (act && refresh_blocks && blocked_by_refresh(b)) act = false;
      // (act_bank_group() and cas_bank_group() spelled out, as in the pass above)
      const Bank& bank = banks_[b];
      const Group& group = groups_[group_of_[b]];
      const uint64_t at_act = act ? std::max({bank.next_act, group.next_act, act_common}) : kNever;
      const uint64_t at_cas = hits > 0
                                  ? (writes ? std::max({bank.next_wr, group.next_wr, cas_common})
                                            : std::max({bank.next_rd, group.next_rd, cas_common}))
                                  : kNever;
      const uint64_t at_pre = (!closed & (n > hits)) ? std::max(bank.next_pre, pre_common) : kNever;
      least = std::min({least, at_act, at_cas, at_pre});
    }
    if (least != kNever) at_least(least);
  };
  consider(reads_, false);
  consider(writes_, true);
  return next;
}

}  // namespace tiersim
