#include "models/run/trace.h"

#include <google/protobuf/util/delimited_message_util.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

namespace tiersim {

TraceRecorder::TraceRecorder(Workload& inner, std::string path, std::string config_text,
                             config::Dtype compute_dtype, config::Dtype gemm_dtype)
    : inner_(inner),
      path_(std::move(path)),
      temp_path_(path_ + ".tmp." + std::to_string(getpid())),
      config_text_(std::move(config_text)),
      compute_dtype_(compute_dtype),
      gemm_dtype_(gemm_dtype),
      out_(temp_path_, std::ios::binary | std::ios::trunc) {
  if (!out_) throw std::runtime_error("cannot write trace file " + temp_path_);
}

TraceRecorder::~TraceRecorder() {
  if (!committed_) {
    out_.close();
    std::remove(temp_path_.c_str());
  }
}

void TraceRecorder::write(const google::protobuf::MessageLite& m) {
  if (!google::protobuf::util::SerializeDelimitedToOstream(m, &out_)) {
    throw std::runtime_error("cannot write trace file " + temp_path_);
  }
}

void TraceRecorder::register_objects(ObjectTable& objects) {
  inner_.register_objects(objects);
  config::TraceHeader h;
  h.set_version(kTraceVersion);
  h.set_config(config_text_);
  h.set_total_steps(inner_.total_steps());
  h.set_prefill_steps(inner_.prefill_steps());
  h.set_max_activation_bytes(inner_.max_activation_bytes());
  h.set_compute_dtype(compute_dtype_);
  h.set_gemm_dtype(gemm_dtype_);
  for (const auto& o : objects.all()) {
    auto* t = h.add_objects();
    t->set_name(o.name);
    t->set_object_class(static_cast<uint32_t>(o.cls));
    t->set_size_bytes(o.size_bytes);
    t->set_layer(o.layer.valid() ? int64_t{o.layer.value()} : -1);
    auto* i = t->mutable_intent();
    i->set_first_step(o.intent.first_step);
    i->set_last_step(o.intent.last_step == ObjectIntent::kUntilEnd ? -1
                                                                   : int64_t{o.intent.last_step});
    i->set_uses_per_step(o.intent.uses_per_step);
    i->set_confidence(o.intent.confidence);
  }
  // Written before the first op: the movement controller hands its residency program over
  // while the system is prepared.
  header_ = std::move(h);
  header_pending_ = true;
}

void TraceRecorder::record_residency_program(const std::vector<config::WiredDirective>& program,
                                             uint64_t quota_bytes) {
  inner_.record_residency_program(program, quota_bytes);
  header_.set_has_program(true);
  header_.set_program_quota_bytes(quota_bytes);
  header_.clear_program();
  for (const auto& d : program)
    *header_.add_program() = d;
}

void TraceRecorder::flush_header() {
  if (!header_pending_) return;
  write(header_);
  header_pending_ = false;
}

void TraceRecorder::flush_pending() {
  flush_header();
  if (!has_pending_) return;
  write(pending_);
  has_pending_ = false;
  ++ops_;
}

bool TraceRecorder::next(Op& op) {
  flush_pending();
  if (!inner_.next(op)) return false;
  op_to_trace(op, pending_);
  has_pending_ = true;
  return true;
}

void TraceRecorder::end_step(TimePs now_ps) {
  inner_.end_step(now_ps);
  // The step's token counts are known now (serving counts them at the step's end).
  if (has_pending_ && pending_.last_of_step()) {
    pending_.set_step_tokens(inner_.tokens_per_step());
    pending_.set_step_sequences(inner_.sequences_per_step());
  }
  flush_pending();
}

void TraceRecorder::commit() {
  flush_pending();
  out_.close();
  if (!out_ || std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw std::runtime_error("cannot write trace file " + path_);
  }
  committed_ = true;
}

}  // namespace tiersim
