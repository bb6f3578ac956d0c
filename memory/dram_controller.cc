#include "memory/dram_controller.h"

#include <algorithm>
#include <cmath>

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
    : org_(org), t_(timing), policy_(policy), banks_(org.banks()), groups_(org.bank_groups) {
  reads_.reserve(policy.read_queue);
  writes_.reserve(policy.write_queue);
  if (policy_.refresh == RefreshMode::kAllBank) next_refresh_due_ = t_.refi;
  if (policy_.refresh == RefreshMode::kPerBank) next_refresh_due_ = t_.refi_pb;
}

void PseudoChannelController::set_refresh_multiplier(double m) {
  refresh_multiplier_ = m;
}

bool PseudoChannelController::can_accept(bool write) const {
  return write ? writes_.size() < policy_.write_queue : reads_.size() < policy_.read_queue;
}

void PseudoChannelController::enqueue(const DramRequest& r) {
  (r.write ? writes_ : reads_).push_back(r);
}

void PseudoChannelController::log(DramCommandKind k, uint64_t c, uint32_t bank, uint32_t row) {
  if (log_ != nullptr) log_->push_back(DramCommand{k, c, bank, row});
}

PseudoChannelController::Need PseudoChannelController::need(const DramRequest& r) const {
  const Bank& b = banks_[flat(r)];
  if (!b.open) return Need::kAct;
  return b.row == r.row ? Need::kCas : Need::kPre;
}

uint64_t PseudoChannelController::cas_ready(const DramRequest& r) const {
  const Bank& b = banks_[flat(r)];
  const Group& g = groups_[r.bank_group];
  return r.write ? std::max({b.next_wr, g.next_wr, next_wr_})
                 : std::max({b.next_rd, g.next_rd, next_rd_});
}

uint64_t PseudoChannelController::act_ready(const DramRequest& r) const {
  const Bank& b = banks_[flat(r)];
  // The oldest of the last four ACTs bounds the next one by tFAW.
  const uint64_t faw = acts_issued_ >= 4 ? faw_[faw_head_] + t_.faw : 0;
  return std::max({b.next_act, groups_[r.bank_group].next_act, next_act_, faw});
}

bool PseudoChannelController::row_has_other_hits(const DramRequest& r,
                                                 const std::vector<DramRequest>& q) const {
  const uint32_t bank = flat(r);
  const uint32_t row = banks_[bank].row;
  for (const auto& o : q) {
    if (&o != &r && flat(o) == bank && o.row == row) return true;
  }
  return false;
}

bool PseudoChannelController::blocked_by_refresh(uint32_t bank) const {
  // While a refresh is due, no new row is opened in the banks it needs.
  if (pending_refreshes_ == 0) return false;
  const bool urgent = pending_refreshes_ > policy_.max_postponed_refreshes;
  if (policy_.refresh == RefreshMode::kAllBank) return urgent;
  return bank == refresh_bank_;
}

void PseudoChannelController::issue_act(const DramRequest& r, uint64_t c) {
  const uint32_t bank = flat(r);
  Bank& b = banks_[bank];
  b.open = true;
  b.row = r.row;
  b.next_rd = std::max(b.next_rd, c + t_.rcd_rd);
  b.next_wr = std::max(b.next_wr, c + t_.rcd_wr);
  b.next_pre = std::max(b.next_pre, c + t_.ras);
  b.next_act = std::max(b.next_act, c + t_.rc);
  Group& g = groups_[r.bank_group];
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
  b.open = false;
  b.next_act = std::max(b.next_act, c + t_.rp);
  ++stats_.pres;
  log(DramCommandKind::kPre, c, bank, b.row);
}

void PseudoChannelController::issue_cas(size_t index, std::vector<DramRequest>& q, uint64_t c,
                                        std::vector<DramCompletion>& done) {
  const DramRequest r = q[index];
  q.erase(q.begin() + static_cast<std::ptrdiff_t>(index));
  const uint32_t bank = flat(r);
  Bank& b = banks_[bank];
  Group& g = groups_[r.bank_group];
  bool auto_pre = false;
  if (policy_.page == PagePolicy::kClosed) {
    auto_pre = true;
  } else if (policy_.page == PagePolicy::kAdaptive) {
    auto_pre = !row_has_other_hits(r, reads_) && !row_has_other_hits(r, writes_);
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
    b.open = false;
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
    for (const auto& b : banks_) {
      if (b.open) {
        any_open = true;
        pre_ready = std::max(pre_ready, b.next_pre);
      } else {
        ref_ready = std::max(ref_ready, b.next_act);
      }
    }
    return any_open ? pre_ready : ref_ready;
  }
  const Bank& b = banks_[refresh_bank_];
  return std::max({c, b.open ? b.next_pre : b.next_act, next_refpb_});
}

bool PseudoChannelController::try_refresh(uint64_t c, bool* row_bus_used) {
  if (refresh_ready(c) > c) return false;
  if (policy_.refresh == RefreshMode::kAllBank) {
    bool any_open = false;
    for (const auto& b : banks_)
      any_open |= b.open;
    if (any_open) {
      for (auto& b : banks_) {
        if (b.open) {
          b.open = false;
          b.next_act = std::max(b.next_act, c + t_.rp);
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
  if (b.open) {
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
  std::vector<DramRequest>& q = draining_ ? writes_ : reads_;
  const bool fcfs = policy_.scheduler == SchedulerKind::kFcfs;
  const size_t scan = fcfs ? std::min<size_t>(q.size(), 1) : q.size();

  // Row bus: refresh first when it is due, then ACT/PRE for the oldest request that needs one.
  // The bus is busy while an earlier command (this pseudo channel's or a sibling's) holds it.
  const bool row_taken = buses_->row_free > c;
  bool row_used = row_taken;
  uint64_t row_cycles = 1;
  if (!row_used) try_refresh(c, &row_used);
  for (size_t i = 0; i < scan && !row_used; ++i) {
    DramRequest& r = q[i];
    const uint32_t bank = flat(r);
    const Need n = need(r);
    if (n == Need::kAct && !blocked_by_refresh(bank) && act_ready(r) <= c) {
      r.needed_act = true;
      issue_act(r, c);
      row_used = true;
      row_cycles = SharedCommandBuses::kActRowCycles;
    } else if (n == Need::kPre && banks_[bank].next_pre <= c &&
               (fcfs || !row_has_other_hits(r, q))) {
      r.needed_pre = true;
      issue_pre(bank, c);
      row_used = true;
    }
  }

  if (row_used && !row_taken) buses_->row_free = c + row_cycles;

  // Column bus: the oldest row hit whose CAS is legal now (FR-FCFS), or the head (FCFS). No CAS
  // of the active kind can issue before the channel-level constraint, so skip the scan then.
  const uint64_t channel_cas = draining_ ? next_wr_ : next_rd_;
  const bool column_free = buses_->column_free <= c;
  for (size_t i = 0; i < scan && channel_cas <= c && column_free; ++i) {
    const DramRequest& r = q[i];
    if (need(r) == Need::kCas && cas_ready(r) <= c) {
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
  // After a possible mode switch, both queues may be served next; consider both.
  const auto consider = [&](const std::vector<DramRequest>& queue) {
    const size_t n = fcfs ? std::min<size_t>(queue.size(), 1) : queue.size();
    for (size_t i = 0; i < n && next > c + 1; ++i) {  // c + 1 is the earliest possible
      const DramRequest& r = queue[i];
      uint64_t at;
      switch (need(r)) {
        case Need::kCas:
          at = std::max(cas_ready(r), buses_->column_free);
          break;
        case Need::kAct:
          at = std::max(act_ready(r), buses_->row_free);
          // Blocked by a refresh: it becomes possible after the refresh, which is in `next`.
          if (blocked_by_refresh(flat(r))) continue;
          break;
        default:
          at = std::max(banks_[flat(r)].next_pre, buses_->row_free);
          break;
      }
      next = std::min(next, std::max(at, c + 1));
    }
  };
  consider(reads_);
  consider(writes_);
  return next;
}

}  // namespace tiersim
