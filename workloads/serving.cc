#include "workloads/serving.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "models/core/registry.h"
#include "workloads/serving_front_end.h"

namespace tiersim {

// ---------------------------------------------------------------------------------------------
// Paged KV

PagedKv::PagedKv(uint64_t token_bytes, uint32_t block_tokens, uint32_t blocks, uint32_t slots)
    : token_bytes_(token_bytes),
      block_tokens_(block_tokens),
      free_(blocks, 1),
      free_count_(blocks),
      tables_(slots),
      runs_(slots) {}

void PagedKv::register_layer(ObjectTable& t, uint32_t layer) {
  if (first_.size() <= layer) first_.resize(layer + 1, 0);
  first_[layer] = t.add("layer" + std::to_string(layer) + ".kv_pool", ObjectClass::kKvCache,
                        uint64_t{blocks()} * block_tokens_ * token_bytes_, LayerId(layer),
                        ObjectIntent{0, ObjectIntent::kUntilEnd, 1.0, 1.0, {}})
                      .value();
}

bool PagedKv::reserve(uint32_t slot, uint64_t tokens) {
  auto& table = tables_[slot];
  const uint32_t need = blocks_for(tokens);
  if (need <= table.size()) return true;
  if (need - table.size() > free_count_) return false;
  while (table.size() < need) {
    uint32_t b = UINT32_MAX;
    // Grow in place when the next block is free; else the lowest free block.
    if (!table.empty() && table.back() + 1 < free_.size() && free_[table.back() + 1]) {
      b = table.back() + 1;
    } else {
      while (!free_[cursor_])
        ++cursor_;
      b = cursor_;
    }
    free_[b] = 0;
    --free_count_;
    auto& runs = runs_[slot];
    if (!table.empty() && b == table.back() + 1) {
      ++runs.back().blocks;
    } else {
      runs.push_back(Run{static_cast<uint32_t>(table.size()), b, 1});
    }
    table.push_back(b);
  }
  return true;
}

void PagedKv::release(uint32_t slot) {
  for (uint32_t b : tables_[slot]) {
    free_[b] = 1;
    cursor_ = std::min(cursor_, b);
  }
  free_count_ += static_cast<uint32_t>(tables_[slot].size());
  tables_[slot].clear();
  runs_[slot].clear();
}

void PagedKv::ranges(uint32_t layer, uint32_t slot, uint64_t from, uint64_t to, Access access,
                     std::vector<Operand>& out) const {
  if (from >= to) return;
  const auto& runs = runs_[slot];
  const ObjectId object(first_[layer]);
  // The run holding `from`'s block: the last that starts at or before it.
  const uint64_t first_block = from / block_tokens_;
  auto it = std::upper_bound(runs.begin(), runs.end(), first_block,
                             [](uint64_t b, const Run& r) { return b < r.first; });
  --it;
  uint64_t t = from;
  while (t < to) {
    // The run of physically consecutive blocks covering [t, end).
    const uint64_t begin = uint64_t{it->first} * block_tokens_;
    const uint64_t start = uint64_t{it->physical} * block_tokens_ + (t - begin);
    const uint64_t end = std::min(to, uint64_t{it->first + it->blocks} * block_tokens_);
    out.push_back(Operand{object, start * token_bytes_, (end - t) * token_bytes_, access});
    t = end;
    ++it;
  }
}

void PagedKv::read(uint32_t layer, uint32_t seq, uint64_t from, uint64_t to,
                   std::vector<Operand>& out) const {
  ranges(layer, seq, from, to, Access::kRead, out);
}

void PagedKv::write(uint32_t layer, uint32_t seq, uint64_t at, uint64_t count,
                    std::vector<Operand>& out) const {
  ranges(layer, seq, at, at + count, Access::kWrite, out);
}

// ---------------------------------------------------------------------------------------------
// Serving

uint32_t ServingWorkload::pool_blocks(const TransformerShape& s, const ServingOptions& o) {
  const uint64_t block_bytes = uint64_t{o.kv_block_tokens} * s.kv_bytes_per_token();
  return static_cast<uint32_t>(std::min<uint64_t>(o.kv_cache_bytes / block_bytes, UINT32_MAX));
}

uint64_t ServingWorkload::footprint_bytes(const TransformerShape& s, const ServingOptions& o) {
  return s.total_weight_bytes() +
         uint64_t{pool_blocks(s, o)} * o.kv_block_tokens * s.kv_bytes_per_token();
}

ServingWorkload::ServingWorkload(const TransformerShape& shape, ServingOptions options,
                                 std::unique_ptr<Router> router)
    : shape_(shape),
      o_(std::move(options)),
      router_(std::move(router)),
      pass_(shape, o_.max_sequences, router_.get(), std::nullopt, 0),
      kv_(shape.kv_bytes_per_token_per_layer(), o_.kv_block_tokens, pool_blocks(shape, o_),
          o_.max_sequences) {
  pass_.set_kv(&kv_);
  reqs_.resize(o_.requests.size());
  records_.resize(o_.requests.size());
  arrival_ps_.resize(o_.requests.size());
  for (size_t i = 0; i < reqs_.size(); ++i) {
    reqs_[i].prefill_target = o_.requests[i].input_tokens;
    // Closed loop: every client sends its first request at 0; the rest wait for a completion.
    arrival_ps_[i] = o_.closed_loop_clients == 0  ? o_.requests[i].arrival_ps
                     : i < o_.closed_loop_clients ? TimePs{0}
                                                  : kNotSent;
  }
  next_send_ = std::min<size_t>(o_.closed_loop_clients, reqs_.size());
  for (uint32_t s = o_.max_sequences; s-- > 0;)
    free_slots_.push_back(s);
  plan_.reserve(o_.max_sequences);
  plan_req_.reserve(o_.max_sequences);
  running_.reserve(o_.max_sequences);
}

void ServingWorkload::register_objects(ObjectTable& t) {
  // Intents: one pass per step while requests run; the steps are not known in advance.
  const WeightUse use{ObjectIntent::kUntilEnd, 1.0, router_.get(), o_.max_step_tokens};
  pass_.objects().register_weights(t, shape_, "", ObjectClass::kWeight, use,
                                   [&](uint32_t l) { kv_.register_layer(t, l); });
  weight_object_.assign(t.size(), 0);
  for (size_t i = 0; i < t.size(); ++i)
    weight_object_[i] = t.get(ObjectId(i)).cls == ObjectClass::kWeight;
}

uint64_t ServingWorkload::max_activation_bytes() const {
  return pass_.max_activation_bytes(
      o_.max_step_tokens, std::min(o_.max_sequences, o_.max_step_tokens), o_.max_sequences);
}

uint64_t ServingWorkload::request_kv_bytes(uint64_t tokens) const {
  return tokens * shape_.kv_bytes_per_token();
}

void ServingWorkload::push_host_op(OpKind kind, uint64_t bytes) {
  Op op;
  op.kind = kind;
  op.op_class = OpClass::kHostTransfer;
  op.host_bytes = bytes;
  op.step = StepIndex(step_);
  pre_ops_.push_back(op);
}

bool ServingWorkload::admit(uint32_t r, uint64_t tokens) {
  if (free_slots_.empty()) return false;
  const uint32_t slot = free_slots_.back();
  if (!kv_.reserve(slot, tokens)) return false;
  free_slots_.pop_back();
  reqs_[r].slot = slot;
  reqs_[r].state = State::kRunning;
  running_.push_back(r);
  return true;
}

void ServingWorkload::preempt(uint32_t r, TimePs now) {
  Req& q = reqs_[r];
  // A request whose KV is still on its way has none here to swap: it recomputes (the pull in
  // flight still lands and frees the prefill side's copy).
  const bool pulling = q.kv_ready_ps > now;
  q.kv_ready_ps = 0;
  ++preemptions_;
  ++recs()[r].preemptions;
  kv_.release(q.slot);
  free_slots_.push_back(q.slot);
  running_.erase(std::find(running_.begin(), running_.end(), r));
  if (o_.preemption == config::SWAP && q.kv_len > 0 && !pulling) {
    // Its KV goes to host memory and comes back before it resumes.
    push_host_op(OpKind::kSwapOut, request_kv_bytes(q.kv_len));
    swapped_bytes_ += request_kv_bytes(q.kv_len);
    q.state = State::kSwapped;
    swapped_.push_back(r);
    return;
  }
  // Recompute: prefill the prompt and every generated token again, then sample the next.
  q.state = State::kWaiting;
  q.prefill_target = uint64_t{o_.requests[r].input_tokens} + recs()[r].generated;
  q.kv_len = 0;
  waiting_.push_front(r);
}

void ServingWorkload::plan(TimePs now) {
  pre_ops_.clear();
  pre_pos_ = 0;
  plan_.clear();
  plan_req_.clear();
  if (front_end_ != nullptr) {
    front_end_->route_due(now);
    // Disaggregated prefill: the KV of requests handed off is freed once pulled.
    front_end_->released(replica_, now);
    for (size_t i = 0; i < handed_off_.size();) {
      if (front_end_->kv_release_ps(handed_off_[i].first) > now) {
        ++i;
        continue;
      }
      kv_.release(handed_off_[i].second);
      free_slots_.push_back(handed_off_[i].second);
      handed_off_[i] = handed_off_.back();
      handed_off_.pop_back();
    }
    uint32_t r = 0;
    while (front_end_->take(replica_, now, &r)) {
      Req& q = reqs_[r];
      q.state = State::kWaiting;
      if (front_end_->prefilled(r)) {
        // Its prompt's KV is at its prefill replica: pulled when admitted, then it decodes
        // from its first token on.
        q.kv_len = o_.requests[r].input_tokens;
        q.prefill_target = q.kv_len;
        q.kv_ready_ps = kNotSent;
      }
      waiting_.push_back(r);
    }
  } else {
    while (next_arrival_ < reqs_.size() && arrival_ps_[next_arrival_] <= now) {
      reqs_[next_arrival_].state = State::kWaiting;
      waiting_.push_back(static_cast<uint32_t>(next_arrival_++));
    }
  }
  AdmissionDecision gate;
  if (gate_ != nullptr) {
    gate = gate_->decide(now);
    if (gate.hold_until_ps > now && (!running_.empty() || !waiting_.empty() || !swapped_.empty())) {
      // Backpressure: idle until the controller lets the next step start.
      held_ps_ += gate.hold_until_ps - now;
      push_idle(now, gate.hold_until_ps, OpKind::kHold);
      return;
    }
  }
  uint64_t budget = o_.max_step_tokens;
  bool preempted = false;
  auto schedule = [&](uint32_t r, uint64_t want) {
    const Req& q = reqs_[r];
    const bool finishes_prefill = q.kv_len + want >= q.prefill_target;
    plan_.push_back(
        PassSequence{q.slot, q.kv_len, static_cast<uint32_t>(want), finishes_prefill ? 1u : 0u});
    plan_req_.push_back(r);
    budget -= want;
  };
  // 1. Running requests, oldest admission first.
  bool paused = false;
  // With prefills paused, the progress guarantee lets the oldest prefills run only as far as the
  // decoding requests fall short of min_sequences.
  size_t guaranteed = 0;
  if (!gate.run_prefill) {
    for (uint32_t r : running_)
      guaranteed += reqs_[r].kv_len >= reqs_[r].prefill_target;
  }
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    const uint32_t r = running_[i];
    Req& q = reqs_[r];
    if (q.kv_ready_ps > now) {  // its KV is still on its way: it keeps its blocks and waits
      ++i;
      continue;
    }
    if (!gate.run_prefill && q.kv_len < q.prefill_target && guaranteed++ >= gate.min_sequences) {
      paused = true;  // the controller paused prefills: this one keeps its blocks and waits
      ++i;
      continue;
    }
    const uint64_t want =
        q.kv_len < q.prefill_target ? std::min<uint64_t>(q.prefill_target - q.kv_len, budget) : 1;
    bool self_preempted = false;
    while (!kv_.reserve(q.slot, q.kv_len + want)) {
      const uint32_t victim = running_.back();
      preempt(victim, now);
      preempted = true;
      if (victim == r) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;  // r was the newest: nothing after it is running
    schedule(r, want);
    ++i;
  }
  // 2. Swapped requests return (not in a step that had to preempt).
  prefill_paused_steps_ += paused;
  auto may_admit = [&] { return gate.admit_new || plan_.size() < gate.min_sequences; };
  while (may_admit() && !preempted && !swapped_.empty() && budget > 0) {
    const uint32_t r = swapped_.front();
    Req& q = reqs_[r];
    const uint64_t want =
        q.kv_len < q.prefill_target ? std::min<uint64_t>(q.prefill_target - q.kv_len, budget) : 1;
    if (!admit(r, q.kv_len + want)) break;
    swapped_.pop_front();
    push_host_op(OpKind::kSwapIn, request_kv_bytes(q.kv_len));
    schedule(r, want);
  }
  // 3. Waiting requests in arrival order (recomputed ones first).
  while (may_admit() && !preempted && swapped_.empty() && !waiting_.empty() && budget > 0) {
    const uint32_t r = waiting_.front();
    Req& q = reqs_[r];
    // (A request handed off prefilled waits to decode: one token.)
    const uint64_t want =
        q.kv_len < q.prefill_target ? std::min<uint64_t>(q.prefill_target - q.kv_len, budget) : 1;
    if (!admit(r, q.kv_len + want)) break;
    waiting_.pop_front();
    if (q.kv_ready_ps == kNotSent) {
      // Handed off: its blocks are reserved, its KV is pulled now; it runs once it lands.
      q.kv_ready_ps = front_end_->pull(r, now);
      if (q.kv_ready_ps > now) continue;
    }
    schedule(r, want);
  }
  // Requests the gate kept out (the progress guarantee may have let the oldest in).
  const bool deferred = !gate.admit_new && !preempted && (!waiting_.empty() || !swapped_.empty());
  deferred_steps_ += deferred;
  peak_blocks_ = std::max(peak_blocks_, kv_.blocks() - kv_.free_blocks());
  if (front_end_ != nullptr) {
    front_end_->note_kv_usage(replica_, now, kv_.used_fraction());
    if (plan_.empty() && pre_ops_.empty() &&
        (front_end_->more_may_come(replica_) || front_end_->pending(replica_)) &&
        running_.empty() && waiting_.empty() && swapped_.empty()) {
      // Nothing to run until the front end delivers a request here: the wait ends then (the
      // replica's wake), so its length is open.
      push_idle(now, kMaxSimTimePs, OpKind::kIdle);
      return;
    }
    if (plan_.empty() && pre_ops_.empty() &&
        ((running_.empty() && !handed_off_.empty() && (!waiting_.empty() || !swapped_.empty())) ||
         (!running_.empty() && std::all_of(running_.begin(), running_.end(), [&](uint32_t r) {
           return reqs_[r].kv_ready_ps > now;
         })))) {
      // Disaggregated: a prefill replica's waiting requests do not fit beside the KV it holds
      // for hand-offs, or every request a decode replica runs waits for its KV to land; the
      // wait ends when the front end rings (KV freed or landed, or a delivery).
      push_idle(now, kMaxSimTimePs, OpKind::kIdle);
      return;
    }
  } else if (plan_.empty() && pre_ops_.empty() && next_arrival_ < reqs_.size() &&
             running_.empty() && waiting_.empty() && swapped_.empty()) {
    // Nothing to run until the next request arrives (a closed loop always has one in flight).
    if (arrival_ps_[next_arrival_] == kNotSent) {
      throw std::logic_error("ServingWorkload: closed loop with no request in flight");
    }
    push_idle(now, arrival_ps_[next_arrival_], OpKind::kIdle);
    return;
  }
  if (plan_.empty() && pre_ops_.empty() && gate_ != nullptr && (paused || deferred)) {
    // The controller's decision leaves nothing to run: ask again at its recheck time (or when
    // the next request arrives, if sooner).
    TimePs until = std::max(gate.recheck_ps, now + 1);
    if (const TimePs next = next_arrival(); next != kNotSent) {
      until = std::min(until, std::max(next, now + 1));
    }
    ++gate_waits_;
    gate_wait_ps_ += until - now;
    push_idle(now, until, OpKind::kHold);
    return;
  }
  step_open_ = !plan_.empty() || !pre_ops_.empty();
  pass_started_ = false;
  pass_start_ps_ = now;
}

void ServingWorkload::push_idle(TimePs now, TimePs until, OpKind kind) {
  Op idle;
  idle.kind = kind;
  idle.op_class = OpClass::kWait;
  idle.delay_ps = until - now;
  idle.step = StepIndex(step_);
  pre_ops_.push_back(idle);
  step_open_ = true;
  pass_started_ = false;
}

void ServingWorkload::begin_step(TimePs now_ps) {
  plan(now_ps);
  if (predictor_ == nullptr || !pre_ops_.empty() || plan_.empty()) return;
  // Under a predictor the pass's ops are made either way, so its draws (MoE routing) follow
  // the full run; a pass it predicts is one op of its predicted length.
  StepFeatures f = features();
  f.x[5] = double(make_pass());
  TimePs duration = 0;
  if (predictor_->simulate(step_, f, now_ps, &duration)) {
    pass_buffered_ = true;  // next() hands out the ops made
    pass_pos_ = 0;
    return;
  }
  Op op;
  op.kind = OpKind::kPredictedPass;
  op.op_class = OpClass::kWait;
  op.delay_ps = duration;
  op.step = StepIndex(step_);
  op.id = OpId(next_id_++);
  op.last_of_step = true;
  pass_ops_.assign(1, op);
  pass_buffered_ = true;
  pass_pos_ = 0;
}

uint64_t ServingWorkload::make_pass() {
  pass_.begin(plan_.data(), static_cast<uint32_t>(plan_.size()), step_);
  pass_ops_.clear();
  pass_operands_.clear();
  pass_offsets_.clear();
  uint64_t weight_bytes = 0;
  Op op;
  do {
    if (!pass_.next(op, OpId(next_id_))) throw std::logic_error("ServingWorkload: empty pass");
    ++next_id_;
    // An op's operands may live in a list the pass reuses: copied.
    pass_offsets_.push_back(pass_operands_.size());
    for (uint16_t i = 0; i < op.operand_count; ++i) {
      const Operand& o = op.operand(i);
      pass_operands_.push_back(o);
      if (o.access == Access::kRead && o.object.value() < weight_object_.size() &&
          weight_object_[o.object.value()]) {
        weight_bytes += o.bytes;
      }
    }
    pass_ops_.push_back(op);
  } while (!pass_.done());
  pass_ops_.back().last_of_step = true;
  for (size_t k = 0; k < pass_ops_.size(); ++k) {
    pass_ops_[k].set_operands(pass_operands_.data() + pass_offsets_[k], pass_ops_[k].operand_count);
  }
  return weight_bytes;
}

StepFeatures ServingWorkload::features() const {
  StepFeatures f;
  for (const PassSequence& p : plan_) {
    const double queries = p.queries, context = double(p.cached) + p.queries;
    f.x[0] += queries;
    f.x[1] += p.sampled;
    f.x[2] += context;
    f.x[3] += kv_.runs(p.seq);
    f.x[4] += queries * (double(p.cached) + (queries + 1) / 2);
  }
  return f;
}

bool ServingWorkload::set_step_predictor(StepPredictor* predictor) {
  if (gate_ != nullptr) {
    throw std::logic_error("ServingWorkload: step prediction with an admission gate");
  }
  predictor_ = predictor;
  return true;
}

TimePs ServingWorkload::arrival(size_t r) const {
  return front_end_ != nullptr ? front_end_->arrival_ps(static_cast<uint32_t>(r)) : arrival_ps_[r];
}

TimePs ServingWorkload::next_arrival() const {
  if (front_end_ != nullptr) return front_end_->next_arrival_ps();
  return next_arrival_ < reqs_.size() ? arrival_ps_[next_arrival_] : kNotSent;
}

std::vector<ServingWorkload::RequestRecord>& ServingWorkload::recs() {
  return front_end_ != nullptr ? front_end_->records() : records_;
}

const std::vector<ServingWorkload::RequestRecord>& ServingWorkload::records() const {
  return front_end_ != nullptr ? front_end_->records() : records_;
}

bool ServingWorkload::complete() const {
  if (front_end_ == nullptr) return done_ == reqs_.size();
  return !front_end_->more_may_come(replica_) && !front_end_->pending(replica_) &&
         running_.empty() && waiting_.empty() && swapped_.empty();
}

bool ServingWorkload::requests_pending(TimePs now) const {
  // A delivery, KV held for hand-offs freed or pulled KV landed, or nothing more to come (the
  // replica is done).
  return front_end_ != nullptr &&
         (front_end_->delivered(replica_, now) || front_end_->release_due(replica_, now) ||
          front_end_->pull_due(replica_, now) || complete());
}

void ServingWorkload::set_front_end(ServingFrontEnd* front_end, uint32_t replica) {
  if (front_end->requests() != reqs_.size() || replica >= front_end->replicas()) {
    throw std::logic_error("ServingWorkload: a front end for other requests");
  }
  front_end_ = front_end;
  replica_ = replica;
}

bool ServingWorkload::next(Op& op) {
  if (!step_open_) {
    if (complete()) return false;
    throw std::logic_error("ServingWorkload: requests remain but nothing can be scheduled");
  }
  const bool idle = !pre_ops_.empty() && pre_ops_[0].op_class == OpClass::kWait;
  if (pre_pos_ < pre_ops_.size()) {
    op = pre_ops_[pre_pos_++];
    op.id = OpId(next_id_++);
    if (idle || (pre_pos_ == pre_ops_.size() && plan_.empty())) {
      step_open_ = false;
      if (!idle) op.last_of_step = true;  // swaps only
    }
    return true;
  }
  if (pass_buffered_) {
    op = pass_ops_[pass_pos_++];
    if (pass_pos_ == pass_ops_.size()) {
      pass_buffered_ = false;
      step_open_ = false;
    }
    return true;
  }
  if (!pass_started_) {
    pass_.begin(plan_.data(), static_cast<uint32_t>(plan_.size()), step_);
    pass_started_ = true;
  }
  if (!pass_.next(op, OpId(next_id_))) throw std::logic_error("ServingWorkload: empty pass");
  ++next_id_;
  if (pass_.done()) {
    op.last_of_step = true;
    step_open_ = false;
  }
  return true;
}

void ServingWorkload::set_start(TimePs start_ps) {
  for (auto& a : arrival_ps_)
    if (a != kNotSent) a += start_ps;
}

void ServingWorkload::end_step(TimePs now_ps) {
  finish_step(now_ps);
}

void ServingWorkload::finish_step(TimePs now_ps) {
  step_tokens_ = 0;
  if (gate_ != nullptr && !plan_.empty()) gate_->step_done(pass_start_ps_, now_ps);
  for (size_t i = 0; i < plan_.size(); ++i) {
    const uint32_t r = plan_req_[i];
    Req& q = reqs_[r];
    RequestRecord& rec = recs()[r];
    if (q.kv_len < q.prefill_target) prefill_tokens_ += plan_[i].queries;
    q.kv_len += plan_[i].queries;
    if (plan_[i].sampled == 0) continue;
    ++step_tokens_;
    if (rec.generated == 0) rec.first_token_ps = now_ps;
    rec.last_token_ps = now_ps;
    if (++rec.generated < o_.requests[r].output_tokens) {
      if (front_end_ != nullptr && front_end_->prefill_only(replica_)) {
        // Disaggregated: the prefilled request leaves for a decode replica; its blocks (its
        // prompt's KV) are held until the decode replica has pulled them.
        front_end_->hand_off(r, now_ps, request_kv_bytes(q.kv_len));
        handed_off_.emplace_back(r, q.slot);
        q.state = State::kDone;
        running_.erase(std::find(running_.begin(), running_.end(), r));
      }
      continue;
    }
    rec.done = true;
    rec.finish_ps = now_ps;
    q.state = State::kDone;
    kv_.release(q.slot);
    free_slots_.push_back(q.slot);
    running_.erase(std::find(running_.begin(), running_.end(), r));
    ++done_;
    if (front_end_ != nullptr) {
      front_end_->completed(r, now_ps);  // (a closed loop's next request is routed now)
    } else if (o_.closed_loop_clients > 0 && next_send_ < reqs_.size()) {
      // Closed loop: the client whose request completed sends the next one now.
      arrival_ps_[next_send_++] = now_ps;
    }
  }
  if (front_end_ != nullptr) {
    front_end_->note_kv_usage(replica_, now_ps, kv_.used_fraction());
  }
  plan_.clear();
  plan_req_.clear();
  ++step_;
}

// ---------------------------------------------------------------------------------------------
// Registration

namespace {

// The capacity mapped for the first compute engine's weights memory (0: none mapped).
uint64_t weights_memory_capacity(const config::Config& root) {
  for (const auto& c : root.system().components()) {
    if (!c.has_compute()) continue;
    uint64_t capacity = 0;
    for (const auto& r : root.system().address_map())
      if (r.target() == c.compute().weights_memory()) capacity += r.size_bytes();
    return capacity;
  }
  return 0;
}

// The KV pool per rank: kv_cache_bytes, or what a fraction leaves of the weights memory after
// this rank's weights and the reserve (see ServingScenario). Negative when nothing is left.
// Callers needing kv_cache_bytes exactly (past 2^53) read the field itself.
double kv_pool_bytes(const config::Config& root, const TransformerShape& shape) {
  const auto& s = root.workload().serving();
  if (s.has_kv_cache_bytes()) return static_cast<double>(s.kv_cache_bytes());
  const double capacity = static_cast<double>(weights_memory_capacity(root));
  const double weights = static_cast<double>(shape.total_weight_bytes());
  const double reserved = static_cast<double>(s.kv_cache_reserved_bytes());
  const double pool = s.has_kv_cache_memory_fraction()
                          ? s.kv_cache_memory_fraction() * capacity - weights - reserved
                          : s.kv_cache_free_fraction() * (capacity - weights - reserved);
  return std::floor(pool);
}

// Exactly one way to size the pool; a fraction in (0, 1]; the reserve only with a fraction.
bool validate_pool_sizing(const config::ServingScenario& s, config::PlacementPolicy placement,
                          Validator& sv) {
  const int ways = int(s.has_kv_cache_bytes()) + int(s.has_kv_cache_memory_fraction()) +
                   int(s.has_kv_cache_free_fraction());
  if (ways == 0) {
    sv.error("kv_cache_bytes",
             "required field is not set (or size the pool with kv_cache_memory_fraction or "
             "kv_cache_free_fraction)");
    return false;
  }
  if (ways > 1) {
    sv.error(s.has_kv_cache_free_fraction() ? "kv_cache_free_fraction" : "kv_cache_memory_fraction",
             "set only one of kv_cache_bytes, kv_cache_memory_fraction and kv_cache_free_fraction");
    return false;
  }
  if (s.has_kv_cache_reserved_bytes() && s.has_kv_cache_bytes()) {
    sv.error("kv_cache_reserved_bytes",
             "only meaningful with kv_cache_memory_fraction or kv_cache_free_fraction");
    return false;
  }
  if (s.has_kv_cache_bytes()) {
    return sv.positive("kv_cache_bytes", true, static_cast<double>(s.kv_cache_bytes()));
  }
  if (placement != config::STREAM_ALL) {
    // Orchestrated runs keep part of the weights elsewhere and stage objects in the fast memory,
    // so "capacity minus weights" is not what a serving stack would have left.
    sv.error(s.has_kv_cache_free_fraction() ? "kv_cache_free_fraction" : "kv_cache_memory_fraction",
             "sizes the pool from the weights memory minus every weight, which holds only with "
             "policy.placement: STREAM_ALL; give kv_cache_bytes instead");
    return false;
  }
  return s.has_kv_cache_memory_fraction()
             ? sv.fraction("kv_cache_memory_fraction", true, s.kv_cache_memory_fraction())
             : sv.fraction("kv_cache_free_fraction", true, s.kv_cache_free_fraction());
}

void validate_serving(const config::Config& root, Validator& v) {
  const auto& w = root.workload();
  TransformerShape::validate_workload_model(root, v);
  const auto& s = w.serving();
  Validator sv = v.at("workload.serving");
  uint64_t max_request = 0;  // input plus output can pass 2^32
  switch (s.arrivals_case()) {
    case config::ServingScenario::kPoisson: {
      Validator av = sv.at("poisson");
      av.positive("rate_per_s", s.poisson().has_rate_per_s(), s.poisson().rate_per_s());
      av.positive("requests", s.poisson().has_requests(), s.poisson().requests());
      break;
    }
    case config::ServingScenario::kClosedLoop: {
      Validator cv = sv.at("closed_loop");
      const auto& c = s.closed_loop();
      cv.positive("clients", c.has_clients(), c.clients());
      if (cv.positive("requests", c.has_requests(), c.requests()) && c.clients() > c.requests()) {
        cv.error("requests", "fewer requests (" + std::to_string(c.requests()) +
                                 ") than clients (" + std::to_string(c.clients()) +
                                 "): some clients would send nothing");
      }
      break;
    }
    case config::ServingScenario::kArrivalTrace: {
      for (const char* f : {"input_tokens", "output_tokens"}) {
        if ((f[0] == 'i' && s.has_input_tokens()) || (f[0] == 'o' && s.has_output_tokens())) {
          sv.error(f, "the arrival trace gives every request's lengths; remove this");
        }
      }
      auto reqs = load_arrival_trace(s.arrival_trace(), sv);
      if (reqs) {
        for (const auto& r : *reqs)
          max_request = std::max(max_request, uint64_t{r.input_tokens} + r.output_tokens);
      }
      break;
    }
    default:
      sv.error("",
               "needs arrivals: poisson { rate_per_s requests }, closed_loop { clients requests } "
               "or arrival_trace: \"...\"");
  }
  if (s.has_poisson() || s.has_closed_loop()) {
    // Lengths drawn from distributions (an arrival trace gives its own).
    validate_length(s.input_tokens(), sv.at("input_tokens"), s.has_input_tokens());
    validate_length(s.output_tokens(), sv.at("output_tokens"), s.has_output_tokens());
    max_request = uint64_t{max_length(s.input_tokens())} + max_length(s.output_tokens());
  }
  sv.positive("max_sequences", s.has_max_sequences(), s.max_sequences());
  sv.positive("max_step_tokens", s.has_max_step_tokens(), s.max_step_tokens());
  const bool kv_ok = validate_pool_sizing(s, root.policy().placement(), sv);
  const bool block_ok =
      !s.has_kv_block_tokens() || sv.positive("kv_block_tokens", true, s.kv_block_tokens());
  if (s.preemption() == config::PREEMPTION_UNSPECIFIED) {
    sv.error("preemption", "required field is not set (RECOMPUTE or SWAP)");
  } else if (s.preemption() == config::SWAP) {
    const auto& h = root.system().host_link();
    if (!root.system().has_host_link()) {
      v.root("system").error("host_link", "required by workload.serving.preemption: SWAP");
    } else {
      Validator hv = v.root("system.host_link");
      hv.positive("to_host_bytes_per_s", h.has_to_host_bytes_per_s(), h.to_host_bytes_per_s());
      hv.positive("from_host_bytes_per_s", h.has_from_host_bytes_per_s(),
                  h.from_host_bytes_per_s());
      hv.require("latency_ps", h.has_latency_ps());
    }
  }
  if (s.has_slo()) {
    Validator lv = sv.at("slo");
    if (s.slo().has_ttft_ms()) lv.positive("ttft_ms", true, s.slo().ttft_ms());
    if (s.slo().has_tpot_ms()) lv.positive("tpot_ms", true, s.slo().tpot_ms());
  }
  if (w.model().has_moe()) {
    if (!w.routing().has_synthetic()) {
      v.at("workload.routing")
          .error("", "serving needs routing { synthetic { ... } } (a trace routes fixed batches)");
    }
  } else if (w.has_routing()) {
    v.at("workload.routing").error("", "the model has no moe section; remove routing");
  }
  // The pool a fraction leaves, and every request must fit in it on its own, or it could never
  // finish.
  if (kv_ok && block_ok && w.has_model()) {
    std::vector<ConfigIssue> scratch;
    Validator quiet(scratch);
    TransformerShape::validate(w.model(), quiet);
    TransformerShape::validate_parallelism(w.model(), w.parallelism(), quiet);
    if (scratch.empty()) {
      const TransformerShape shape = TransformerShape::from_config(w.model(), w.parallelism());
      const double pool = kv_pool_bytes(root, shape);
      const std::string sizing = s.has_kv_cache_bytes()             ? "kv_cache_bytes"
                                 : s.has_kv_cache_memory_fraction() ? "kv_cache_memory_fraction"
                                                                    : "kv_cache_free_fraction";
      const uint32_t block = s.has_kv_block_tokens() ? s.kv_block_tokens() : 16;
      if (!s.has_kv_cache_bytes() && pool < double(uint64_t{block} * shape.kv_bytes_per_token())) {
        sv.error(sizing, "leaves no KV pool: " + std::to_string(weights_memory_capacity(root)) +
                             " bytes of weights memory, " +
                             std::to_string(shape.total_weight_bytes()) + " of weights per rank, " +
                             std::to_string(s.kv_cache_reserved_bytes()) + " reserved");
      } else if (max_request > 0 && s.max_step_tokens() > 0) {
        const uint64_t pool_u64 =
            s.has_kv_cache_bytes() ? s.kv_cache_bytes() : static_cast<uint64_t>(pool);
        const uint64_t pool_tokens =
            pool_u64 / (uint64_t{block} * shape.kv_bytes_per_token()) * block;
        if (max_request > pool_tokens) {
          sv.error(sizing, "holds " + std::to_string(pool_tokens) +
                               " tokens, but a request can need " + std::to_string(max_request) +
                               " (input plus output): it could never finish");
        }
      }
    }
  }
}

ServingOptions options_from_config(const config::Config& root) {
  const auto& s = root.workload().serving();
  ServingOptions o;
  if (s.has_poisson() || s.has_closed_loop()) {
    o.requests = drawn_requests(s, root.run().seed());
    if (s.has_closed_loop()) o.closed_loop_clients = s.closed_loop().clients();
  } else {
    std::vector<ConfigIssue> issues;
    Validator v(issues, "workload.serving");
    auto reqs = load_arrival_trace(s.arrival_trace(), v);
    if (!reqs) throw ConfigError(issues);  // the file changed since validation
    o.requests = std::move(*reqs);
  }
  o.max_sequences = s.max_sequences();
  o.max_step_tokens = s.max_step_tokens();
  o.kv_block_tokens = s.has_kv_block_tokens() ? s.kv_block_tokens() : 16;
  o.kv_cache_bytes =
      s.has_kv_cache_bytes()
          ? s.kv_cache_bytes()
          : static_cast<uint64_t>(kv_pool_bytes(root, TransformerShape::of_workload(root)));
  o.preemption = s.preemption();
  o.slo_ttft_ms = s.slo().ttft_ms();
  o.slo_tpot_ms = s.slo().tpot_ms();
  return o;
}

std::unique_ptr<Router> make_serving_router(const config::Config& root) {
  const auto& m = root.workload().model();
  if (!m.has_moe()) return nullptr;
  const auto& r = root.workload().routing().synthetic();
  SyntheticRouterParams p;
  p.experts = m.moe().experts();
  p.top_k = m.moe().experts_per_token();
  p.moe_layers = m.layers() - m.moe().first_moe_layer();
  p.batch = root.workload().serving().max_step_tokens();
  p.zipf = r.zipf_exponent();
  p.stickiness = r.stickiness();
  p.phase_steps = r.phase_steps();
  p.seed = root.run().seed();
  return std::make_unique<SyntheticRouter>(p);
}

}  // namespace

std::unique_ptr<ServingFrontEnd> make_serving_front_end(const config::Config& root) {
  ServingOptions o = options_from_config(root);
  const uint32_t replicas = std::max(1u, root.workload().parallelism().data_parallel());
  const auto& s = root.workload().serving();
  auto f = std::make_unique<ServingFrontEnd>(std::move(o.requests), o.closed_loop_clients, replicas,
                                             s.replica_routing(), root.run().seed(),
                                             s.router_latency_ps(), s.router_load_interval_ps());
  if (s.has_disaggregation()) {
    const auto& d = s.disaggregation();
    f->set_disaggregation(d.prefill_replicas(), d.decode_routing(), d.kv_transfer_latency_ps());
  }
  return f;
}

namespace {

const WorkloadRegistrar kRegistrar(WorkloadKind{
    "serving",
    "online serving: arrivals, continuous batching with chunked prefill, a paged KV pool with "
    "preemption",
    validate_serving,
    [](const config::Config& root) {
      return ServingWorkload::footprint_bytes(TransformerShape::of_workload(root),
                                              options_from_config(root));
    },
    [](const config::Config& root) -> std::unique_ptr<Workload> {
      return std::make_unique<ServingWorkload>(TransformerShape::of_workload(root),
                                               options_from_config(root),
                                               make_serving_router(root));
    }});

}  // namespace

}  // namespace tiersim
