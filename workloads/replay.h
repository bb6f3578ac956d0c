// Replay of a recorded trace (`tiersim trace`; ReplayScenario in the schema): registers the
// recorded objects with their intents and feeds the recorded ops in order, open loop. Reads the
// file as it goes (one op message reused; no per-op allocation once the operand buffer has
// grown to the widest op).
#pragma once

#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/workload.h"

namespace tiersim {

// Reads a trace's header; reports problems through `v` (field `trace`).
std::optional<config::TraceHeader> read_trace_header(const std::string& path, Validator& v);
// Reads every op record of the trace at `path` and checks it against `h` and the bounds of a
// replay (known kinds and classes, finite FLOPs, operands inside their objects, steps in order
// and as many as the header says); reports the first problem with its record number (the header
// is record 1). False when there is one.
bool validate_trace_ops(const std::string& path, const config::TraceHeader& h, Validator& v);

class ReplayWorkload : public Workload {
 public:
  explicit ReplayWorkload(const std::string& path);

  void register_objects(ObjectTable& objects) override;
  bool next(Op& op) override;
  uint32_t total_steps() const override { return header_.total_steps(); }
  uint32_t prefill_steps() const override { return header_.prefill_steps(); }
  uint32_t tokens_per_step() const override { return step_tokens_; }
  uint32_t sequences_per_step() const override { return step_sequences_; }
  uint64_t max_activation_bytes() const override { return header_.max_activation_bytes(); }
  const config::TraceHeader& header() const { return header_; }
  const std::vector<config::WiredDirective>* residency_program() const override {
    return &program_;
  }

 private:
  std::string path_;
  std::ifstream file_;
  std::unique_ptr<google::protobuf::io::IstreamInputStream> stream_;
  config::TraceHeader header_;
  std::vector<config::WiredDirective> program_;  // the header's
  config::TraceOp op_;
  std::vector<Operand> operands_;
  uint32_t step_tokens_ = 0, step_sequences_ = 0;
  uint64_t objects_ = 0;
};

}  // namespace tiersim
