// Sweeps and studies on a Slurm cluster: a job array whose tasks run groups of points
// (`tiersim sweep run-task`), then a collect job that depends on the whole array (afterany)
// and builds the table (a study's also its report). The settings are kept in DIR/slurm.textproto;
// `--resubmit-failed DIR` submits again only the array tasks with a point that has no complete
// result, the same way unless told otherwise.
#pragma once

#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/run/sweep.h"

namespace tiersim {

// Consumes args[i] and its value when args[i] is a Slurm option (--partition, --time, --mem,
// --cpus, --account, --qos, --sbatch-extra (repeatable), --array-limit, --points-per-task);
// returns whether it did. A malformed value is std::invalid_argument.
bool take_slurm_option(const std::vector<std::string>& args, size_t& i, config::SlurmSettings& s);

// Help text for the options above.
extern const char* const kSlurmOptionsHelp;

// A string as one single-quoted shell word.
std::string shell_quote(const std::string& s);

// What the jobs run: `tiersim sweep run-task DIR` per task, then `tiersim <kind> collect DIR`.
struct SlurmTarget {
  std::string kind;  // "sweep" or "study"
  std::string name;  // the job name's suffix (spec name; characters sbatch would split are _)
};

// Writes DIR/<kind>.sbatch (the array; `tasks` empty: every task) and DIR/collect.sbatch,
// stores the settings and, unless no_submit, submits the array and then the collect job with
// --dependency=afterany:<array job>. Job ids are appended to DIR/slurm/jobs.txt.
void submit_to_slurm(const SlurmTarget& target, const SweepPlan& plan, const std::string& dir,
                     const config::SlurmSettings& settings, const std::vector<uint32_t>& tasks,
                     bool no_submit);

// The array tasks (points_per_task points each) holding a point without a complete result
// file, failed or never run; points refused as invalid configs are not retried.
std::vector<uint32_t> tasks_to_resubmit(const SweepPlan& plan, const std::string& dir,
                                        uint32_t points_per_task);

// `--resubmit-failed DIR`: the stored settings, with `overrides` (options given now) on top;
// submits only tasks_to_resubmit, refused while an array job of DIR is still queued. Returns
// how many tasks it submitted.
size_t resubmit_failed(const SlurmTarget& target, const SweepPlan& plan, const std::string& dir,
                       const config::SlurmSettings& overrides, bool no_submit);

}  // namespace tiersim
