// One run: build the system from a validated config, simulate, and write the result file.
// SystemC allows one elaboration per process, so this is called at most once per process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/config/loader.h"
#include "models/run/result_file.h"

namespace tiersim {
class Component;
class Context;
}  // namespace tiersim

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
// The same with every rank simulated (workload.parallelism.simulate_ranks: SIMULATE_EVERY_RANK);
// run_simulation calls it.
RunOutcome run_every_rank(const LoadedConfig& loaded, const RunOptions& options);

// Builds the system's components in config order, its address map and link topology, and
// connects the links (the run's builder; component tests use it too). Throws ConfigError
// (unlocated) when a link's initiator cannot drive it. Components are added to `ctx`.
std::vector<std::unique_ptr<Component>> build_system(const config::Config& cfg, Context& ctx);

// Summary helpers shared with tests and tools.
void print_summary(const std::vector<SummaryItem>& items, std::ostream& os);

}  // namespace tiersim
