#include "models/trace.h"

#include <google/protobuf/util/delimited_message_util.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

namespace tiersim {

void op_to_trace(const Op& op, config::TraceOp& out) {
  out.Clear();
  out.set_kind(static_cast<uint32_t>(op.kind));
  out.set_step(op.step.valid() ? op.step.value() : 0);
  out.set_layer(op.layer.valid() ? int64_t{op.layer.value()} : -1);
  out.set_op_class(static_cast<uint32_t>(op.op_class));
  out.set_flops(op.flops);
  out.set_compute_dtype(op.compute_dtype);
  out.set_rows(op.rows);
  out.set_collective_bytes(op.collective_bytes);
  out.set_host_bytes(op.host_bytes);
  out.set_delay_ps(op.delay_ps);
  out.set_activation_read_bytes(op.activation_read_bytes);
  out.set_activation_write_bytes(op.activation_write_bytes);
  out.set_per_operand_compute(op.per_operand_compute);
  out.set_last_of_step(op.last_of_step);
  for (uint16_t i = 0; i < op.operand_count; ++i) {
    const Operand& o = op.operand(i);
    auto* t = out.add_operands();
    t->set_object(o.object.value());
    t->set_offset_bytes(o.offset_bytes);
    t->set_bytes(o.bytes);
    t->set_write(o.access == Access::kWrite);
    t->set_rows(o.rows);
    t->set_flops(o.flops);
  }
}

void op_from_trace(const config::TraceOp& t, Op& op, std::vector<Operand>& storage) {
  op = Op();
  op.kind = static_cast<OpKind>(t.kind());
  op.step = StepIndex(t.step());
  op.layer = t.layer() < 0 ? LayerId() : LayerId(static_cast<uint32_t>(t.layer()));
  op.op_class = static_cast<OpClass>(t.op_class());
  op.flops = t.flops();
  op.compute_dtype = t.compute_dtype();
  op.rows = t.rows();
  op.collective_bytes = t.collective_bytes();
  op.host_bytes = t.host_bytes();
  op.delay_ps = t.delay_ps();
  op.activation_read_bytes = t.activation_read_bytes();
  op.activation_write_bytes = t.activation_write_bytes();
  op.per_operand_compute = t.per_operand_compute();
  op.last_of_step = t.last_of_step();
  const int n = t.operands_size();
  auto convert = [&](const config::TraceOperand& o) {
    return Operand{ObjectId(o.object()),
                   o.offset_bytes(),
                   o.bytes(),
                   o.write() ? Access::kWrite : Access::kRead,
                   o.rows(),
                   o.flops()};
  };
  if (n <= static_cast<int>(Op::kMaxOperands)) {
    for (int i = 0; i < n; ++i)
      op.add_operand(convert(t.operands(i)));
    return;
  }
  storage.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    storage[static_cast<size_t>(i)] = convert(t.operands(i));
  op.set_operands(storage.data(), static_cast<uint16_t>(n));
}

TraceRecorder::TraceRecorder(Workload& inner, std::string path, std::string config_text,
                             config::Dtype compute_dtype)
    : inner_(inner),
      path_(std::move(path)),
      temp_path_(path_ + ".tmp." + std::to_string(getpid())),
      config_text_(std::move(config_text)),
      compute_dtype_(compute_dtype),
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
  h.set_max_activation_bytes(inner_.max_activation_bytes());
  h.set_compute_dtype(compute_dtype_);
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
  write(h);
}

void TraceRecorder::flush_pending() {
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
