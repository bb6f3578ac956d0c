// The run driver's parts (models/run/ only): placement at home, the summary, the result file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/config/loader.h"
#include "models/core/records.h"
#include "models/core/summary.h"
#include "models/core/time.h"

namespace tiersim {

class Component;
class Context;
struct Extrapolation;

// A ConfigError whose unlocated issues get their file and line from `loaded`.
ConfigError located(const LoadedConfig& loaded, std::vector<ConfigIssue> issues);

// Every object at home in the compute engine's weights memory (STREAM_ALL; a movement
// controller moves them later). Throws a located ConfigError when they do not fit.
void place_at_home(const LoadedConfig& loaded, Context& ctx);

// Runs the kernel until the workload stops it, or to `limit_ps` (run.max_sim_time_ps; 0: to the
// 2^62 ps bound). An input error raised inside a process comes out as RunInputError.
void run_kernel(uint64_t limit_ps);
// After run_kernel: reaching the 2^62 ps bound without a limit, the workload not done and no
// wall-time stop, is an input error (a run that needs 53 simulated days crawls), never a result.
void check_time_bound(bool done, uint64_t limit_ps, bool wall_hit);

// Time per output token of a step: its latency over the tokens each sequence gained.
double step_tpot_ms(const TokenRecord& t);

// The headline metrics, then each component's items, then the workload's. With `ff` (a
// fast-forwarded run, whose ctx.records() already hold every step on the extrapolated timeline)
// the headline, bytes and energy cover the skipped steps too; `end_ps` is the simulated end.
std::vector<SummaryItem> summarise_run(Context& ctx,
                                       const std::vector<std::unique_ptr<Component>>& components,
                                       TimePs end_ps, double wall_s,
                                       const Extrapolation* ff = nullptr);

// Every rank simulated: one node's own results, written under /nodes/<node>/: its summary (its
// own steps, bytes and energy), its stats and its steps. Identical nodes simulated as one class
// share their class's.
struct NodeResult {
  uint32_t node = 0;
  Context* ctx = nullptr;
  std::vector<SummaryItem> summary;
  std::vector<TokenRecord> tokens;
};

// Writes the whole result file under a temporary name, then renames it onto `path`.
void write_results(const std::string& path, const LoadedConfig& loaded, Context& ctx,
                   const std::vector<SummaryItem>& summary, double wall_s,
                   const std::string& stopped_by, const std::vector<NodeResult>& nodes = {});

}  // namespace tiersim
