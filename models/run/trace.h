// `tiersim trace`: a recorder that wraps a run's workload and writes every object and op it
// produces in the format of workloads/trace_format.h (which a replay reads back).
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/core/workload.h"
#include "workloads/trace_format.h"

namespace tiersim {

// Wraps `inner`, forwarding every call, and writes the stream to a temporary file that commit()
// renames onto `path` (an interrupted run leaves no file that looks complete).
class TraceRecorder : public Workload {
 public:
  TraceRecorder(Workload& inner, std::string path, std::string config_text,
                config::Dtype compute_dtype, config::Dtype gemm_dtype);
  ~TraceRecorder() override;

  void register_objects(ObjectTable& objects) override;
  bool next(Op& op) override;
  void begin_step(TimePs now_ps) override { inner_.begin_step(now_ps); }
  void end_step(TimePs now_ps) override;
  uint32_t total_steps() const override { return inner_.total_steps(); }
  uint32_t tokens_per_step() const override { return inner_.tokens_per_step(); }
  uint32_t sequences_per_step() const override { return inner_.sequences_per_step(); }
  uint64_t max_activation_bytes() const override { return inner_.max_activation_bytes(); }
  void summarize(std::vector<SummaryItem>& s) const override { inner_.summarize(s); }
  void write_results(ResultSink& w) const override { inner_.write_results(w); }
  bool set_admission_gate(AdmissionGate* g) override { return inner_.set_admission_gate(g); }
  const std::vector<config::WiredDirective>* residency_program() const override {
    return inner_.residency_program();
  }
  // Kept in the header (written before the first op).
  void record_residency_program(const std::vector<config::WiredDirective>& program,
                                uint64_t quota_bytes) override;
  uint32_t prefill_steps() const override { return inner_.prefill_steps(); }
  bool complete() const override { return inner_.complete(); }
  void set_start(TimePs start_ps) override { inner_.set_start(start_ps); }

  // Writes what is pending and moves the file onto its final path.
  void commit();
  uint64_t ops_written() const { return ops_; }

 private:
  void write(const google::protobuf::MessageLite& m);
  void flush_pending();
  void flush_header();

  Workload& inner_;
  std::string path_, temp_path_, config_text_;
  config::Dtype compute_dtype_, gemm_dtype_;
  std::ofstream out_;
  config::TraceOp pending_;
  bool has_pending_ = false, committed_ = false;
  config::TraceHeader header_;
  bool header_pending_ = false;
  uint64_t ops_ = 0;
};

}  // namespace tiersim
