#include "workloads/trace_format.h"

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
  out.set_quantize_input(op.quantize_input);
  out.set_kv_elements_per_byte(op.kv_elements_per_byte);
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
  op.quantize_input = t.quantize_input();
  op.kv_elements_per_byte = t.kv_elements_per_byte();
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

}  // namespace tiersim
