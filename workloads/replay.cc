#include "workloads/replay.h"

#include <google/protobuf/util/delimited_message_util.h>

#include <fstream>
#include <stdexcept>

#include "models/config/wired_checks.h"
#include "models/core/input_file.h"
#include "models/core/registry.h"
#include "models/core/time.h"
#include "workloads/trace_format.h"

namespace tiersim {

std::optional<config::TraceHeader> read_trace_header(const std::string& path, Validator& v) {
  if (const std::string problem = input_file_problem(path); !problem.empty()) {
    v.error("trace", "cannot read trace \"" + path + "\": " + problem);
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  google::protobuf::io::IstreamInputStream stream(&in);
  config::TraceHeader h;
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&h, &stream, &clean_eof)) {
    v.error("trace", "\"" + path + "\" is not a tiersim trace (no header)");
    return std::nullopt;
  }
  if (h.version() < kOldestTraceVersion || h.version() > kTraceVersion) {
    v.error("trace", "\"" + path + "\" is trace version " + std::to_string(h.version()) +
                         "; this tiersim reads versions " + std::to_string(kOldestTraceVersion) +
                         " to " + std::to_string(kTraceVersion));
    return std::nullopt;
  }
  for (int i = 0; i < h.objects_size(); ++i) {
    if (h.objects(i).object_class() > static_cast<uint32_t>(ObjectClass::kDraftWeight)) {
      v.error("trace", "\"" + path + "\": object " + h.objects(i).name() + " has an unknown class");
      return std::nullopt;
    }
  }
  return h;
}

namespace {

// Bounds on what a trace may ask for: past them a replay would crawl, overflow or allocate
// without bound. Generous against any recorded run (a 1T-parameter model's largest op is about
// 1e16 FLOPs; a 1M-token step is an extreme batch).
constexpr double kMaxTraceFlops = 1e24;
constexpr uint64_t kMaxTraceBytes = uint64_t{1} << 50;  // 1 PiB: an object, an operand, a move
constexpr uint32_t kMaxTraceCount = uint32_t{1} << 24;  // objects, steps, rows, tokens, layers
constexpr int kMaxTraceOperands = 4096;
constexpr uint64_t kMaxTraceDelayPs = uint64_t{1} << 56;

bool bad_flops(double f) {
  return !(f >= 0 && f <= kMaxTraceFlops);
}

// The first problem of op record `t` (with `objects` of the header), or "".
std::string op_problem(const config::TraceOp& t, const config::TraceHeader& h) {
  if (t.kind() > static_cast<uint32_t>(OpKind::kHold)) {
    return "unknown op kind " + std::to_string(t.kind());
  }
  if (t.op_class() > static_cast<uint32_t>(OpClass::kHostTransfer)) {
    return "unknown op class " + std::to_string(t.op_class());
  }
  if (bad_flops(t.flops())) return "FLOPs must be finite, >= 0 and <= 1e24";
  if (!config::Dtype_IsValid(t.compute_dtype())) return "unknown compute dtype";
  if (!(t.kv_elements_per_byte() >= 0 && t.kv_elements_per_byte() <= 2)) {
    return "KV elements per byte must lie in [0, 2]";
  }
  if (t.layer() < -1 || t.layer() >= kMaxTraceCount) return "layer out of range";
  if (t.rows() > kMaxTraceCount) return "rows out of range";
  if (t.step_tokens() > kMaxTraceCount || t.step_sequences() > kMaxTraceCount) {
    return "step tokens or sequences out of range";
  }
  if (t.collective_bytes() > kMaxTraceBytes || t.host_bytes() > kMaxTraceBytes ||
      t.activation_read_bytes() > kMaxTraceBytes || t.activation_write_bytes() > kMaxTraceBytes) {
    return "a byte count past 1 PiB";
  }
  if (t.delay_ps() > kMaxTraceDelayPs) return "delay past 2^56 ps";
  if (t.operands_size() > kMaxTraceOperands) return "more than 4096 operands";
  for (const auto& o : t.operands()) {
    if (o.object() >= static_cast<uint32_t>(h.objects_size())) {
      return "operand names object " + std::to_string(o.object()) + " of " +
             std::to_string(h.objects_size());
    }
    const uint64_t size = h.objects(static_cast<int>(o.object())).size_bytes();
    if (o.bytes() > size || o.offset_bytes() > size - o.bytes()) {
      return "operand bytes " + std::to_string(o.offset_bytes()) + "+" + std::to_string(o.bytes()) +
             " outside object " + h.objects(static_cast<int>(o.object())).name() + " of " +
             std::to_string(size) + " bytes";
    }
    if (o.rows() > kMaxTraceCount) return "operand rows out of range";
    if (bad_flops(o.flops())) return "operand FLOPs must be finite, >= 0 and <= 1e24";
  }
  return "";
}

}  // namespace

bool validate_trace_ops(const std::string& path, const config::TraceHeader& h, Validator& v) {
  auto fail = [&](uint64_t record, const std::string& why) {
    v.error("trace", "\"" + path + "\" record " + std::to_string(record) + ": " + why);
    return false;
  };
  if (h.objects_size() > static_cast<int>(kMaxTraceCount)) return fail(1, "too many objects");
  for (const auto& o : h.objects()) {
    if (o.size_bytes() > kMaxTraceBytes || o.layer() < -1 || o.layer() >= kMaxTraceCount ||
        !(o.intent().uses_per_step() >= 0 && o.intent().uses_per_step() <= kMaxTraceCount) ||
        !(o.intent().confidence() >= 0 && o.intent().confidence() <= 1)) {
      return fail(1, "object " + o.name() + " has a size, layer or intent out of range");
    }
  }
  if (h.total_steps() > kMaxTraceCount) return fail(1, "total_steps out of range");
  if (h.total_steps() > 0 && h.prefill_steps() > h.total_steps()) {
    return fail(1, "more prefill steps than steps");
  }
  // The residency program's shape (what it names and whether it fits: before the run).
  for (int i = 0; i < h.program_size(); ++i) {
    std::vector<ConfigIssue> issues;
    Validator dv(issues, "program[" + std::to_string(i) + "]");
    validate_wired_directive(h.program(i), dv);
    if (h.program(i).has_tenant()) dv.error("tenant", "a trace records one workload");
    if (!issues.empty()) return fail(1, issues.front().path + ": " + issues.front().message);
  }
  if (h.max_activation_bytes() > kMaxTraceBytes) return fail(1, "max_activation_bytes past 1 PiB");
  std::ifstream in(path, std::ios::binary);
  google::protobuf::io::IstreamInputStream stream(&in);
  config::TraceHeader skip;
  bool clean_eof = false;
  google::protobuf::util::ParseDelimitedFromZeroCopyStream(&skip, &stream, &clean_eof);
  config::TraceOp t;
  uint64_t record = 1, steps = 0;
  uint32_t step = 0;
  bool any = false;
  while (true) {
    t.Clear();
    ++record;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&t, &stream, &clean_eof)) {
      if (clean_eof) break;
      return fail(record, "truncated or corrupt");
    }
    if (const std::string why = op_problem(t, h); !why.empty()) return fail(record, why);
    if (any && t.step() < step) return fail(record, "steps go backwards");
    if (h.total_steps() > 0 && t.step() >= h.total_steps()) {
      return fail(record, "step " + std::to_string(t.step()) + " past the header's " +
                              std::to_string(h.total_steps()) + " steps");
    }
    step = t.step();
    any = true;
    if (t.last_of_step()) ++steps;
  }
  if (h.total_steps() > 0 && steps != h.total_steps()) {
    return fail(record, "the trace ends after " + std::to_string(steps) + " of its " +
                            std::to_string(h.total_steps()) + " steps (cut short?)");
  }
  return true;
}

ReplayWorkload::ReplayWorkload(const std::string& path)
    : path_(path), file_(path, std::ios::binary) {
  if (!file_) throw std::runtime_error("cannot open trace " + path);
  stream_ = std::make_unique<google::protobuf::io::IstreamInputStream>(&file_);
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&header_, stream_.get(),
                                                                &clean_eof)) {
    throw std::runtime_error("trace " + path + " has no header");
  }
  program_.assign(header_.program().begin(), header_.program().end());
}

void ReplayWorkload::register_objects(ObjectTable& t) {
  for (const auto& o : header_.objects()) {
    ObjectIntent intent;
    intent.first_step = o.intent().first_step();
    intent.last_step = o.intent().last_step() < 0 ? ObjectIntent::kUntilEnd
                                                  : static_cast<uint32_t>(o.intent().last_step());
    intent.uses_per_step = o.intent().uses_per_step();
    intent.confidence = o.intent().confidence();
    t.add(o.name(), static_cast<ObjectClass>(o.object_class()), o.size_bytes(),
          o.layer() < 0 ? LayerId() : LayerId(static_cast<uint32_t>(o.layer())), intent);
  }
  objects_ = t.size();
}

bool ReplayWorkload::next(Op& op) {
  bool clean_eof = false;
  op_.Clear();  // parsing merges into the message (keeps its storage)
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&op_, stream_.get(), &clean_eof)) {
    if (clean_eof) return false;
    raise_run_input_error("trace " + path_ +
                          " is truncated or corrupt (changed since validation?)");
  }
  if (const std::string why = op_problem(op_, header_); !why.empty()) {
    raise_run_input_error("trace " + path_ + ": " + why + " (changed since validation?)");
  }
  op_from_trace(op_, op, operands_);
  if (op.last_of_step) {
    step_tokens_ = op_.step_tokens();
    step_sequences_ = op_.step_sequences();
  }
  return true;
}

namespace {

void validate_replay(const config::Config& root, Validator& v) {
  const auto& w = root.workload();
  for (const char* f : {"model", "parallelism", "routing"}) {
    const bool set = (f[0] == 'm' && w.has_model()) || (f[0] == 'p' && w.has_parallelism()) ||
                     (f[0] == 'r' && w.has_routing());
    if (set) v.at("workload").error(f, "a replay takes its workload from the trace; remove this");
  }
  Validator rv = v.at("workload.replay");
  if (!rv.non_empty("trace", w.replay().has_trace(), w.replay().trace())) return;
  auto header = read_trace_header(w.replay().trace(), rv);
  if (!header || !validate_trace_ops(w.replay().trace(), *header, rv)) return;
  if (w.replay().use_program()) {
    const auto& wired = root.policy().orchestration().wired();
    if (!header->has_program()) {
      rv.error("use_program", "\"" + w.replay().trace() +
                                  "\" carries no residency program (its run had no wired "
                                  "program or emit_from_intents, or it is older than trace "
                                  "version 3)");
    } else if (!root.policy().orchestration().has_wired()) {
      rv.error("use_program",
               "needs policy.orchestration.wired (memory, quota_bytes) to run the program in");
    } else if (wired.quota_bytes() != header->program_quota_bytes()) {
      // The directives without a SET_QUOTA depend on the quota they were made for.
      v.root("policy.orchestration.wired")
          .error("quota_bytes", "the trace's program was made for a quota of " +
                                    std::to_string(header->program_quota_bytes()) +
                                    " bytes (workload.replay.use_program): give the same");
    }
  }
  // Every compute engine must support the recorded ops' dtypes.
  for (const auto& c : root.system().components()) {
    if (!c.has_compute()) continue;
    for (const config::Dtype d : {header->compute_dtype(), header->gemm_dtype()}) {
      if (d == config::DTYPE_UNSPECIFIED) continue;
      bool found = false;
      for (const auto& p : c.compute().peak())
        found |= p.dtype() == d;
      if (!found) {
        v.root("system.components[" + c.name() + "].compute")
            .error("peak", "no peak FLOP/s for the trace's compute dtype " + config::Dtype_Name(d));
      }
    }
  }
}

uint64_t replay_footprint(const config::Config& root) {
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  auto header = read_trace_header(root.workload().replay().trace(), v);
  uint64_t bytes = 0;
  if (header) {
    for (const auto& o : header->objects())
      bytes += o.size_bytes();
  }
  return bytes;
}

const WorkloadRegistrar kRegistrar(WorkloadKind{
    "replay", "replay of a recorded op and object trace (tiersim trace), open loop",
    validate_replay, replay_footprint, [](const config::Config& root) -> std::unique_ptr<Workload> {
      return std::make_unique<ReplayWorkload>(root.workload().replay().trace());
    }});

}  // namespace

}  // namespace tiersim
