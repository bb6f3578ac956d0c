// Sweeps: expand a SweepSpec into points, run each point as its own `tiersim run` process (a
// local pool, or Slurm array tasks), and collect every point's summary into one table.
//
// A sweep directory holds `sweep.textproto` (the spec with absolute base paths: the plan; a
// resume or collect re-expands it), `points/pNNNNN.h5` (each point's result file, written
// atomically, so its presence means the point is complete), `points/pNNNNN.err` (the stderr
// of a failed point), `summary.h5` (/summary table) and `summary.csv`.
#pragma once

#include <string>
#include <vector>

#include "configs/tiersim.pb.h"

namespace tiersim {

struct SweepPoint {
  uint32_t index = 0;
  uint32_t replicate = 0;
  std::vector<std::string> values;  // one per axis, as given to --set
  bool has_seed = false;
  uint64_t seed = 0;
  std::vector<std::string> sets;  // every override of this point, in order
};

// The most runs one sweep or study may plan (variants times axes' points times seeds).
inline constexpr uint64_t kMaxSweepPoints = 1000000;

struct SweepPlan {
  config::SweepSpec spec;  // base paths absolute
  std::vector<std::string> axis_names;
  std::vector<SweepPoint> points;
};

// Parses a text-format spec file into `msg`; syntax problems are ConfigErrors at their lines.
void parse_spec_file(const std::string& path, google::protobuf::Message& msg);
// Makes `paths` absolute relative to the spec file's directory.
void resolve_spec_paths(const std::string& spec_path,
                        google::protobuf::RepeatedPtrField<std::string>& paths);

// Makes the fragment files of `values` absolute relative to the spec file's directory:
// "path=@FILE" and "path+=@FILE" when `assignments` (set lists), "@FILE" otherwise (axis values).
void resolve_fragment_refs(const std::string& spec_path,
                           google::protobuf::RepeatedPtrField<std::string>& values,
                           bool assignments);

// Parses and checks a spec file; problems are ConfigErrors at the file's lines and fields.
// `extra_sets` (the command line's --set, @FILE relative to the working directory) are appended
// to the spec's own `set` list, so the stored plan holds them.
SweepPlan load_sweep(const std::string& path, const std::vector<std::string>& extra_sets = {});
// Appends command-line overrides to a spec's set list (std::invalid_argument without "=").
void append_command_line_sets(const std::vector<std::string>& sets,
                              google::protobuf::RepeatedPtrField<std::string>& dst);
// Takes "--set VALUE" at args[i] (advancing i); false when args[i] is something else.
bool take_set_option(const std::vector<std::string>& args, size_t& i,
                     std::vector<std::string>& sets);
// Applies the overrides of probe points (the first point of every pair of values of two axes)
// to the merged base files, before anything runs: an override that cannot apply at any probe
// that reaches it (an unknown field, a value that does not parse, an element that does not
// exist) is a ConfigError located at `where` (exit 2), not a plan whose every point is
// invalid. One that applies at some probes is left to the points, as are values that parse but
// fail validation (a model that does not fit): those points are recorded invalid.
void check_plan_overrides(const SweepPlan& plan, const std::string& where);
// Expands a checked spec (base paths already absolute).
SweepPlan expand_sweep(const config::SweepSpec& spec, const std::string& where);

std::string point_file(const std::string& dir, uint32_t index, const char* ext);

// Runs the points whose result files are missing, at most `jobs` at a time; returns the
// number of points that failed. `binary` is the tiersim executable.
uint32_t run_points(const SweepPlan& plan, const std::string& dir, const std::string& binary,
                    const std::vector<uint32_t>& points, unsigned jobs, bool progress);

struct CollectOutcome {
  uint32_t ok = 0, failed = 0, invalid = 0, missing = 0;
};
// Builds DIR/summary.h5 and DIR/summary.csv from the point files.
CollectOutcome collect_sweep(const SweepPlan& plan, const std::string& dir);

// Directory set-up shared by sweeps and studies: creates DIR/points and stores `plan_text` in
// DIR/`plan_file`; a directory holding a different plan is refused (std::invalid_argument).
void prepare_plan_dir(const std::string& dir, const std::string& plan_file,
                      const std::string& plan_text);
// The tiersim executable running now.
std::string self_binary();

}  // namespace tiersim
