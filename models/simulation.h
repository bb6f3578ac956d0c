// One run: build the system from a validated config, simulate, and write the result file.
// SystemC allows one elaboration per process, so this is called at most once per process.
#pragma once

#include <string>
#include <vector>

#include "models/config_loader.h"
#include "models/hdf5_file.h"

namespace tiersim {

struct RunOptions {
  std::string out_path;    // the result file; written atomically
  std::string trace_path;  // the op and object trace (`tiersim trace`); written atomically
  bool progress = false;   // print a progress line on stderr
};

struct RunOutcome {
  std::vector<SummaryItem> summary;
  std::string stopped_by;  // "complete" or "max_sim_time"
};

// Throws ConfigError for problems found while building (located through `loaded`), and other
// exceptions for internal errors.
RunOutcome run_simulation(const LoadedConfig& loaded, const RunOptions& options);

// Summary helpers shared with tests and tools.
double percentile(std::vector<double> values, double p);  // linear interpolation, p in [0,100]
void print_summary(const std::vector<SummaryItem>& items, std::ostream& os);

}  // namespace tiersim
