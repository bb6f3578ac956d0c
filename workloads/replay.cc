#include "workloads/replay.h"

#include <google/protobuf/util/delimited_message_util.h>

#include <stdexcept>

#include "models/core/input_file.h"
#include "models/core/registry.h"
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
  if (h.version() != kTraceVersion) {
    v.error("trace", "\"" + path + "\" is trace version " + std::to_string(h.version()) +
                         "; this tiersim reads version " + std::to_string(kTraceVersion));
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

ReplayWorkload::ReplayWorkload(const std::string& path)
    : path_(path), file_(path, std::ios::binary) {
  if (!file_) throw std::runtime_error("cannot open trace " + path);
  stream_ = std::make_unique<google::protobuf::io::IstreamInputStream>(&file_);
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&header_, stream_.get(),
                                                                &clean_eof)) {
    throw std::runtime_error("trace " + path + " has no header");
  }
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
    throw std::runtime_error("trace " + path_ + " is truncated or corrupt");
  }
  for (const auto& o : op_.operands()) {
    if (o.object() >= objects_) {
      throw std::runtime_error("trace " + path_ + " names object " + std::to_string(o.object()) +
                               " beyond its " + std::to_string(objects_) + " objects");
    }
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
  if (!header) return;
  // Every compute engine must support the recorded ops' dtype.
  for (const auto& c : root.system().components()) {
    if (!c.has_compute()) continue;
    bool found = false;
    for (const auto& p : c.compute().peak())
      found |= p.dtype() == header->compute_dtype();
    if (!found) {
      v.root("system.components[" + c.name() + "].compute")
          .error("peak", "no peak FLOP/s for the trace's compute dtype " +
                             config::Dtype_Name(header->compute_dtype()));
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
