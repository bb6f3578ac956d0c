// Online serving with continuous batching (see ServingScenario in the schema).
//
// Each step the scheduler (vLLM-style, at the step's start time) runs, in order:
// 1. the running requests, oldest admission first: a decode token each, or the next chunk of a
//    prefill (as much as the step's token budget has left). A request that needs KV blocks the
//    pool does not have preempts the most recently admitted running request (itself, if it is
//    the newest): RECOMPUTE drops its KV and queues it first to prefill prompt plus generated
//    tokens again; SWAP copies its KV to host memory (a swap_out op) and queues it to return;
// 2. swapped requests, oldest first, while blocks and sequence slots allow (swap_in ops);
// 3. waiting requests in arrival order, while slots, budget and blocks allow.
// (Disaggregated serving, config::Disaggregation: a prefill replica's requests leave at their
// first token; a decode replica admits a handed-off request with blocks for its prompt and the
// next token, pulls its KV and runs it from when the KV lands.)
// The step is then one forward pass over the scheduled sequences (ForwardPass: projections over
// every new token, attention per sequence over its own cache, the LM head over the positions that
// produce a token). With nothing to run, an idle op waits for the next arrival (behind a front
// end: for the front end to ring).
//
// KV: one pool object per layer (`layerL.kv_pool`) of fixed-size blocks; each running request
// holds a block table. A request's blocks come from right after its last block when free, else
// the lowest free block, so tables stay mostly contiguous until the pool fragments.
//
// An admission gate (models/core/admission_gate.h), when a controller sets one, is asked at
// every planning: without admit_new, steps 2 and 3 admit nothing (counted as deferred steps when
// requests wait); without run_prefill, running requests still in their prefill are skipped (their
// blocks stay held); a hold_until in the future makes the scheduler idle until then (backpressure)
// before it plans afresh; when the gate leaves nothing to run, the scheduler idles until its
// recheck time (or the next arrival, if sooner).
//
// Per request: arrival, first token (TTFT), each later token (TPOT = mean gap), completion,
// preemptions; written to /workload/requests and summarised (percentiles, throughput, goodput
// under the SLOs).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/config/errors.h"
#include "models/core/admission_gate.h"
#include "models/core/workload.h"
#include "workloads/forward_pass.h"
#include "workloads/moe_router.h"
#include "workloads/transformer.h"

namespace tiersim {

struct ServingRequest {
  TimePs arrival_ps = 0;
  uint32_t input_tokens = 0, output_tokens = 0;
};

// Requests from a CSV arrival trace (header arrival_ms,input_tokens,output_tokens); problems are
// reported at their line through `v` (field `arrival_trace`).
std::optional<std::vector<ServingRequest>> load_arrival_trace(const std::string& path,
                                                              Validator& v);
// The longest length a distribution can draw; its checks (the distribution's fields under `v`).
uint32_t max_length(const config::LengthDistribution& d);
void validate_length(const config::LengthDistribution& d, Validator v, bool present);
// Requests from the scenario's Poisson process and length distributions, drawn from `seed`;
// with closed_loop, the lengths only (arrival times are set as clients send them).
std::vector<ServingRequest> drawn_requests(const config::ServingScenario& s, uint64_t seed);

// A paged KV pool: per layer one object of `blocks` blocks; block tables per sequence slot.
class PagedKv : public KvLayout {
 public:
  PagedKv(uint64_t token_bytes, uint32_t block_tokens, uint32_t blocks, uint32_t slots);
  void register_layer(ObjectTable& t, uint32_t layer);

  uint32_t blocks() const { return static_cast<uint32_t>(free_.size()); }
  uint32_t free_blocks() const { return free_count_; }
  // Blocks held over blocks (0 for an empty pool).
  double used_fraction() const {
    return free_.empty() ? 0.0 : double(blocks() - free_count_) / double(blocks());
  }
  uint32_t blocks_for(uint64_t tokens) const {
    return static_cast<uint32_t>((tokens + block_tokens_ - 1) / block_tokens_);
  }
  uint32_t held(uint32_t slot) const { return static_cast<uint32_t>(tables_[slot].size()); }
  // Grows `slot`'s table to hold `tokens` tokens; false, with nothing taken, when short.
  bool reserve(uint32_t slot, uint64_t tokens);
  void release(uint32_t slot);
  // Maximal runs of consecutive blocks in `slot`'s table (1 = contiguous).
  uint32_t runs(uint32_t slot) const { return static_cast<uint32_t>(runs_[slot].size()); }

  void read(uint32_t layer, uint32_t seq, uint64_t from, uint64_t to,
            std::vector<Operand>& out) const override;
  void write(uint32_t layer, uint32_t seq, uint64_t at, uint64_t count,
             std::vector<Operand>& out) const override;

 private:
  void ranges(uint32_t layer, uint32_t slot, uint64_t from, uint64_t to, Access access,
              std::vector<Operand>& out) const;
  uint64_t token_bytes_;
  uint32_t block_tokens_;
  std::vector<uint8_t> free_;  // per block
  uint32_t free_count_;
  uint32_t cursor_ = 0;  // lowest possibly free block
  std::vector<std::vector<uint32_t>> tables_;
  // Per slot, its table's maximal runs of physically consecutive blocks, kept as the table
  // grows and cleared with it: a pass asks for every layer's ranges of every sequence, which
  // walk the runs, not the blocks.
  struct Run {
    uint32_t first;     // the run's first block in the table (logical)
    uint32_t physical;  // its block in the pool
    uint32_t blocks;
  };
  std::vector<std::vector<Run>> runs_;
  std::vector<uint32_t> first_;  // per layer: the pool object
};

class ServingFrontEnd;

struct ServingOptions {
  std::vector<ServingRequest> requests;  // sorted by arrival
  // Closed loop: the first `closed_loop_clients` requests arrive at 0, each later one when a
  // request completes (their arrival_ps is ignored). 0: open loop, arrivals as given.
  uint32_t closed_loop_clients = 0;
  uint32_t max_sequences = 0, max_step_tokens = 0, kv_block_tokens = 16;
  uint64_t kv_cache_bytes = 0;
  config::Preemption preemption = config::RECOMPUTE;
  double slo_ttft_ms = 0, slo_tpot_ms = 0;  // 0: no bound
};

class ServingWorkload : public Workload {
 public:
  ServingWorkload(const TransformerShape& shape, ServingOptions options,
                  std::unique_ptr<Router> router = nullptr);

  void register_objects(ObjectTable& objects) override;
  void begin_step(TimePs now_ps) override;
  bool next(Op& op) override;
  bool complete() const override;
  void set_start(TimePs start_ps) override;
  void end_step(TimePs now_ps) override;
  uint32_t total_steps() const override { return 0; }
  uint32_t tokens_per_step() const override { return step_tokens_; }
  uint32_t sequences_per_step() const override { return step_tokens_; }
  uint64_t max_activation_bytes() const override;
  void summarize(std::vector<SummaryItem>& summary) const override;
  void write_results(ResultSink& writer) const override;
  bool set_admission_gate(AdmissionGate* gate) override {
    gate_ = gate;
    return true;
  }
  // Only for a workload without an admission gate (validated).
  bool set_step_predictor(StepPredictor* predictor) override;
  bool requests_pending(TimePs now) const override;
  // Data-parallel serving: this workload is replica `replica` behind the front end `front_end`
  // (not owned; outlives the run; its requests are this workload's): it serves the requests
  // routed to it and records them in the front end. Called before the run.
  void set_front_end(ServingFrontEnd* front_end, uint32_t replica);

  static uint64_t footprint_bytes(const TransformerShape& s, const ServingOptions& o);
  static uint32_t pool_blocks(const TransformerShape& s, const ServingOptions& o);

  struct RequestRecord {
    TimePs first_token_ps = 0, last_token_ps = 0, finish_ps = 0;
    uint32_t generated = 0, preemptions = 0;
    bool done = false;
  };
  const std::vector<RequestRecord>& records() const;
  uint64_t preemptions() const { return preemptions_; }
  const PagedKv& kv() const { return kv_; }

 private:
  enum class State : uint8_t { kFuture, kWaiting, kRunning, kSwapped, kDone };
  static constexpr TimePs kNotSent = UINT64_MAX;
  struct Req {
    State state = State::kFuture;
    uint64_t kv_len = 0;          // tokens in the KV cache
    uint64_t prefill_target = 0;  // tokens to place before decoding (prompt, or more after
                                  // a recompute)
    uint32_t slot = 0;
    // Disaggregated decode: kNotSent while its KV is still at its prefill replica (pulled at
    // admission), then when the pull lands (it decodes from then on); 0 otherwise.
    TimePs kv_ready_ps = 0;
  };
  void plan(TimePs now);
  // The planned forward pass's features (run.fast_forward).
  StepFeatures features() const;
  // The step's bookkeeping once its pass is done at `now`: tokens, completions, the step count.
  void finish_step(TimePs now);
  void preempt(uint32_t r, TimePs now);
  bool admit(uint32_t r, uint64_t tokens);  // takes a slot and blocks for `tokens`
  uint64_t request_kv_bytes(uint64_t tokens) const;
  void push_host_op(OpKind kind, uint64_t bytes);
  // A wait until `until`: kIdle for the next arrival (an absolute time, after which the host's
  // loop runs once), kHold for a controller's backpressure or recheck (counted from when the
  // host has done its step work, as the controller's idle share is meant).
  void push_idle(TimePs now, TimePs until, OpKind kind);
  // When request r was sent (kNotSent: not yet), and the next arrival not yet taken (kNotSent:
  // none known).
  TimePs arrival(size_t r) const;
  TimePs next_arrival() const;
  std::vector<RequestRecord>& recs();

  const TransformerShape shape_;
  const ServingOptions o_;
  std::unique_ptr<Router> router_;
  ForwardPass pass_;
  PagedKv kv_;

  std::vector<Req> reqs_;
  std::vector<RequestRecord> records_;
  std::vector<TimePs> arrival_ps_;  // per request; kNotSent until a closed-loop client sends it
  size_t next_arrival_ = 0;
  size_t next_send_ = 0;  // closed loop: the next request a client sends
  std::deque<uint32_t> waiting_, swapped_;
  std::vector<uint32_t> running_;  // admission order
  std::vector<uint32_t> free_slots_;
  uint32_t done_ = 0;

  // The step being emitted.
  std::vector<Op> pre_ops_;  // swaps, or one idle op
  size_t pre_pos_ = 0;
  std::vector<PassSequence> plan_;
  std::vector<uint32_t> plan_req_;
  bool pass_started_ = false, step_open_ = false;
  uint32_t step_ = 0, step_tokens_ = 0;
  uint64_t next_id_ = 0;
  uint64_t preemptions_ = 0, swapped_bytes_ = 0;
  uint32_t peak_blocks_ = 0;
  uint64_t prefill_tokens_ = 0;

  ServingFrontEnd* front_end_ = nullptr;  // data-parallel serving: the router in front
  uint32_t replica_ = 0;
  // Disaggregated prefill: requests handed off whose KV this replica holds until their decode
  // replica has pulled it (the request and its slot).
  std::vector<std::pair<uint32_t, uint32_t>> handed_off_;

  // run.fast_forward: the predictor (none: every pass simulated).
  StepPredictor* predictor_ = nullptr;
  // Under a predictor, the planned pass's ops are made before the decision (their weight bytes
  // are a feature) and kept, operands copied, for next() to hand out when it is simulated; a
  // predicted pass is one kPredictedPass op in their place.
  std::vector<Op> pass_ops_;
  std::vector<Operand> pass_operands_;
  std::vector<size_t> pass_offsets_;
  size_t pass_pos_ = 0;
  bool pass_buffered_ = false;
  std::vector<uint8_t> weight_object_;  // per object id: a weight (read bytes count as weights)
  // Makes the planned pass's ops into pass_ops_; returns the weight bytes they read.
  uint64_t make_pass();

  // The admission gate (none: every step admits as above).
  AdmissionGate* gate_ = nullptr;
  TimePs pass_start_ps_ = 0;  // when the step being emitted was planned
  uint64_t deferred_steps_ = 0, prefill_paused_steps_ = 0, gate_waits_ = 0;
  TimePs held_ps_ = 0, gate_wait_ps_ = 0;
};

}  // namespace tiersim
