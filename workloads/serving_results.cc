// Serving results: the request figures (TTFT, TPOT, E2E, goodput under the SLOs) over every
// request and this replica's own, the KV transfers of disaggregated serving, and the
// /workload/requests table. The scheduler is in serving.cc.
#include <algorithm>

#include "models/core/summary.h"
#include "workloads/serving.h"
#include "workloads/serving_front_end.h"

namespace tiersim {

namespace {

// The request figures of a serving run over the requests `keep` accepts.
struct RequestFigures {
  std::vector<double> ttft, tpot, e2e;
  double gaps_ms = 0;  // every gap between two tokens of one request, summed
  uint64_t gaps = 0;
  size_t met = 0;
  uint64_t output = 0;
  double span_s = 0;  // the first kept request's arrival to the last kept one's finish
};

template <typename Keep>
RequestFigures request_figures(const std::vector<ServingWorkload::RequestRecord>& records,
                               const std::vector<TimePs>& arrivals, double slo_ttft_ms,
                               double slo_tpot_ms, Keep keep) {
  RequestFigures f;
  TimePs first_arrival = UINT64_MAX, last_finish = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!keep(i)) continue;
    first_arrival = std::min(first_arrival, arrivals[i]);
    const ServingWorkload::RequestRecord& r = records[i];
    f.output += r.generated;
    if (!r.done) continue;
    const double t = ps_to_ms(r.first_token_ps - arrivals[i]);
    const double p =
        r.generated > 1 ? ps_to_ms(r.last_token_ps - r.first_token_ps) / (r.generated - 1) : 0.0;
    f.ttft.push_back(t);
    if (r.generated > 1) {
      f.tpot.push_back(p);
      f.gaps_ms += ps_to_ms(r.last_token_ps - r.first_token_ps);
      f.gaps += r.generated - 1;
    }
    f.e2e.push_back(ps_to_ms(r.finish_ps - arrivals[i]));
    last_finish = std::max(last_finish, r.finish_ps);
    const bool ok = (slo_ttft_ms <= 0 || t <= slo_ttft_ms) &&
                    (slo_tpot_ms <= 0 || r.generated <= 1 || p <= slo_tpot_ms);
    f.met += ok;
  }
  f.span_s = first_arrival != UINT64_MAX && last_finish > first_arrival
                 ? ps_to_s(last_finish - first_arrival)
                 : 0.0;
  return f;
}

double mean_of(const std::vector<double>& v) {
  double t = 0;
  for (double x : v)
    t += x;
  return v.empty() ? 0.0 : t / double(v.size());
}

}  // namespace

void ServingWorkload::summarize(std::vector<SummaryItem>& summary) const {
  // With a front end, every request's (the pod's figures), then this replica's own.
  const std::vector<TimePs>& arrivals =
      front_end_ != nullptr ? front_end_->arrivals() : arrival_ps_;
  // (A closed-loop request not sent by the run's end is not done and its arrival is kNotSent:
  // it adds nothing.)
  const RequestFigures all = request_figures(records(), arrivals, o_.slo_ttft_ms, o_.slo_tpot_ms,
                                             [](size_t) { return true; });
  const std::vector<double>&ttft = all.ttft, &tpot = all.tpot, &e2e = all.e2e;
  const double span_s = all.span_s, gaps_ms = all.gaps_ms;
  const uint64_t gaps = all.gaps, output = all.output;
  const size_t met = all.met;
  summary.push_back({"requests_completed", double(e2e.size()), "requests"});
  summary.push_back({"ttft_ms_p50", percentile(ttft, 50), "ms"});
  summary.push_back({"ttft_ms_p99", percentile(ttft, 99), "ms"});
  summary.push_back({"request_tpot_ms_p50", percentile(tpot, 50), "ms"});
  summary.push_back({"request_tpot_ms_p99", percentile(tpot, 99), "ms"});
  // Means as serving benchmarks report them: TTFT and TPOT averaged over requests (each
  // request's TPOT its own mean gap), ITL over every gap between tokens of a request.
  summary.push_back({"ttft_ms_mean", mean_of(ttft), "ms"});
  summary.push_back({"request_tpot_ms_mean", mean_of(tpot), "ms"});
  summary.push_back({"itl_ms_mean", gaps ? gaps_ms / double(gaps) : 0.0, "ms"});
  summary.push_back({"e2e_ms_p50", percentile(e2e, 50), "ms"});
  summary.push_back({"e2e_ms_p99", percentile(e2e, 99), "ms"});
  summary.push_back(
      {"output_tokens_per_s", span_s > 0 ? double(output) / span_s : 0.0, "tokens/s"});
  summary.push_back({"requests_per_s", span_s > 0 ? double(e2e.size()) / span_s : 0.0, "req/s"});
  summary.push_back(
      {"slo_attainment", e2e.empty() ? 0.0 : double(met) / double(e2e.size()), "fraction"});
  summary.push_back({"goodput_requests_per_s", span_s > 0 ? double(met) / span_s : 0.0, "req/s"});
  summary.push_back({"preemptions", double(preemptions_), "count"});
  summary.push_back({"swapped_bytes", double(swapped_bytes_), "bytes"});
  summary.push_back(
      {"kv_pool_bytes",
       double(kv_.blocks()) * o_.kv_block_tokens * double(shape_.kv_bytes_per_token()), "bytes"});
  summary.push_back({"kv_pool_peak_fraction",
                     kv_.blocks() ? double(peak_blocks_) / double(kv_.blocks()) : 0.0, "fraction"});
  summary.push_back({"prefill_tokens", double(prefill_tokens_), "tokens"});
  if (gate_ != nullptr) {
    summary.push_back({"admission_deferred_steps", double(deferred_steps_), "count"});
    summary.push_back({"admission_prefill_paused_steps", double(prefill_paused_steps_), "count"});
    summary.push_back({"admission_held_s", ps_to_s(held_ps_), "s"});
    summary.push_back({"admission_gate_waits", double(gate_waits_), "count"});
    summary.push_back({"admission_gate_wait_s", ps_to_s(gate_wait_ps_), "s"});
  }
  if (front_end_ != nullptr && front_end_->disaggregated()) {
    // The pod's KV transfers (every replica reports the same).
    std::vector<double> transfer_ms, handoff_ms;
    for (size_t i = 0; i < records().size(); ++i) {
      if (const TimePs t = front_end_->transfer_ps(static_cast<uint32_t>(i)); t > 0) {
        transfer_ms.push_back(ps_to_ms(t));
        handoff_ms.push_back(ps_to_ms(front_end_->handoff_ps(static_cast<uint32_t>(i))));
      }
    }
    summary.push_back({"pd_prefill_replicas", double(front_end_->prefill_replicas()), "replicas"});
    summary.push_back({"pd_kv_transfers", double(front_end_->transfers()), "count"});
    summary.push_back({"pd_kv_transfer_bytes", double(front_end_->transfer_bytes()), "bytes"});
    summary.push_back({"pd_kv_transfer_ms_mean", mean_of(transfer_ms), "ms"});
    summary.push_back({"pd_kv_transfer_ms_p99", percentile(transfer_ms, 99), "ms"});
    summary.push_back({"pd_handoff_ms_mean", mean_of(handoff_ms), "ms"});
    summary.push_back({"pd_handoff_ms_p99", percentile(handoff_ms, 99), "ms"});
    summary.push_back({"pd_kv_transfer_energy_j", front_end_->transfer_energy_j(), "J"});
  }
  if (front_end_ != nullptr) {
    // The requests it served: routed to it, or (disaggregated) prefilled or decoded by it.
    const RequestFigures own =
        request_figures(records(), arrivals, o_.slo_ttft_ms, o_.slo_tpot_ms, [&](size_t i) {
          const auto r = static_cast<uint32_t>(i);
          return front_end_->replica_of(r) == replica_ ||
                 front_end_->prefill_replica_of(r) == replica_;
        });
    summary.push_back(
        {"replica_requests_routed", double(front_end_->routed_to(replica_)), "requests"});
    summary.push_back({"replica_requests_completed", double(own.e2e.size()), "requests"});
    summary.push_back({"replica_ttft_ms_p50", percentile(own.ttft, 50), "ms"});
    summary.push_back({"replica_ttft_ms_p99", percentile(own.ttft, 99), "ms"});
    summary.push_back({"replica_request_tpot_ms_mean", mean_of(own.tpot), "ms"});
    summary.push_back({"replica_output_tokens", double(own.output), "tokens"});
  }
  pass_.summarize_moe(summary);
}

void ServingWorkload::write_results(ResultSink& w) const {
  Table t;
  const size_t c_arr = t.add_column("arrival_ps", Table::Type::kU64, "ps");
  const size_t c_in = t.add_column("input_tokens", Table::Type::kU64);
  const size_t c_out = t.add_column("output_tokens", Table::Type::kU64);
  const size_t c_gen = t.add_column("generated_tokens", Table::Type::kU64);
  const size_t c_first = t.add_column("first_token_ps", Table::Type::kU64, "ps");
  const size_t c_fin = t.add_column("finish_ps", Table::Type::kU64, "ps");
  const size_t c_ttft = t.add_column("ttft_ms", Table::Type::kF64, "ms");
  const size_t c_tpot = t.add_column("tpot_ms", Table::Type::kF64, "ms");
  const size_t c_pre = t.add_column("preemptions", Table::Type::kU64);
  // 0 for a closed-loop request no client had sent when the run stopped (its arrival_ps is 0).
  const size_t c_sent = t.add_column("sent", Table::Type::kU64);
  // Data-parallel serving: the replica each request was routed to (every request's row).
  const size_t c_replica =
      front_end_ != nullptr ? t.add_column("replica", Table::Type::kU64) : SIZE_MAX;
  // Disaggregated: the replica that prefilled it (`replica` is the one that decoded it, once
  // handed off) and its KV transfer's time (0: none).
  const bool pd = front_end_ != nullptr && front_end_->disaggregated();
  const size_t c_prefill = pd ? t.add_column("prefill_replica", Table::Type::kU64) : SIZE_MAX;
  const size_t c_transfer = pd ? t.add_column("kv_transfer_ms", Table::Type::kF64, "ms") : SIZE_MAX;
  const size_t c_handoff = pd ? t.add_column("handoff_ms", Table::Type::kF64, "ms") : SIZE_MAX;
  for (size_t i = 0; i < records().size(); ++i) {
    const RequestRecord& r = records()[i];
    const ServingRequest& q = o_.requests[i];
    const bool sent = arrival(i) != kNotSent;
    t.columns[c_sent].u64.push_back(sent ? 1 : 0);
    t.columns[c_arr].u64.push_back(sent ? arrival(i) : 0);
    t.columns[c_in].u64.push_back(q.input_tokens);
    t.columns[c_out].u64.push_back(q.output_tokens);
    t.columns[c_gen].u64.push_back(r.generated);
    t.columns[c_first].u64.push_back(r.first_token_ps);
    t.columns[c_fin].u64.push_back(r.finish_ps);
    t.columns[c_ttft].f64.push_back(r.generated ? ps_to_ms(r.first_token_ps - arrival(i)) : -1);
    t.columns[c_tpot].f64.push_back(
        r.generated > 1 ? ps_to_ms(r.last_token_ps - r.first_token_ps) / (r.generated - 1) : -1);
    t.columns[c_pre].u64.push_back(r.preemptions);
    if (c_replica != SIZE_MAX) {
      const uint32_t d = front_end_->replica_of(static_cast<uint32_t>(i));
      t.columns[c_replica].u64.push_back(d == ServingFrontEnd::kUnrouted ? UINT64_MAX : d);
    }
    if (pd) {
      const uint32_t p = front_end_->prefill_replica_of(static_cast<uint32_t>(i));
      t.columns[c_prefill].u64.push_back(p == ServingFrontEnd::kUnrouted ? UINT64_MAX : p);
      t.columns[c_transfer].f64.push_back(
          ps_to_ms(front_end_->transfer_ps(static_cast<uint32_t>(i))));
      t.columns[c_handoff].f64.push_back(
          ps_to_ms(front_end_->handoff_ps(static_cast<uint32_t>(i))));
    }
  }
  w.write_table("/workload/requests", t);
}

}  // namespace tiersim
