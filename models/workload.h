// The interface between workloads/ and the rest: an op stream over registered objects.
#pragma once

#include <cstdint>
#include <vector>

#include "models/hdf5_file.h"
#include "models/objects.h"
#include "models/op.h"

namespace tiersim {

class Workload {
 public:
  virtual ~Workload() = default;
  // Registers every object the op stream will touch; called once, before placement.
  virtual void register_objects(ObjectTable& objects) = 0;
  // Fills `op` with the next op in program order; returns false when the workload is complete.
  // Must not allocate.
  virtual bool next(Op& op) = 0;
  virtual uint32_t total_steps() const = 0;
  virtual uint32_t tokens_per_step() const = 0;
  // The largest on-chip activation footprint of any op (read plus write), for SRAM sizing.
  virtual uint64_t max_activation_bytes() const = 0;
  // Workload-specific results (such as MoE expert load), read after the run: summary metrics
  // and datasets under the result file's /workload group.
  virtual void summarize(std::vector<SummaryItem>& /*summary*/) const {}
  virtual void write_results(ResultWriter& /*writer*/) const {}
};

}  // namespace tiersim
