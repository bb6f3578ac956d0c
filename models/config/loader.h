// Loading a run's configuration: several text-format files merged in order, then --set
// overrides, then validation. Every problem is reported with its file, line and field path
// (ConfigError); nothing is simulated with a config that has one.
//
// Merge rules (a later file over an earlier one):
// - singular scalars and enums: the later value wins, including an explicit zero;
// - singular messages: merged field by field;
// - repeated messages whose type has a `name` field: merged element by element by name, new
//   names appended in order;
// - other repeated fields: the later list replaces the earlier one.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"

namespace tiersim {

// Where each field of the resolved config was last set, keyed by canonical field path.
using LocationMap = std::map<std::string, SourceLocation>;

struct LoadedConfig {
  config::Config config;
  std::vector<std::string> files;
  std::vector<std::string> overrides;  // the --set arguments, as given
  LocationMap locations;

  // Location of `path`, or of its nearest ancestor that was set; empty when none was.
  SourceLocation locate(const std::string& path) const;
  // The resolved config in text format (stored in every result file).
  std::string resolved_text() const;
};

// Parses one text-format file. Syntax errors, unknown fields and bad enum values throw
// ConfigError naming file, line and the field path at the error.
config::Config parse_config_text(const std::string& text, const std::string& file_name,
                                 LocationMap* locations);

// Merges `src` into `dst` by the rules above.
void merge_config(google::protobuf::Message& dst, const google::protobuf::Message& src);

// Applies one override "field.path=value". Repeated fields are addressed by index
// (components[2]) or, for messages with a name, by name (components[hbm0]). A message-valued
// field takes a text-format value ({a: 1 b: 2}) merged into it; a repeated scalar takes a list
// ([1, 2]). Throws ConfigError located at "--set[index]".
void apply_override(config::Config& config, const std::string& assignment, int index,
                    LocationMap* locations);

// Canonical path of element `index` of repeated field `field` of `msg`: name[key].
std::string element_path(const google::protobuf::Message& msg,
                         const google::protobuf::FieldDescriptor* field, int index);

// What a command needs of a config: a whole run (system, workload, policy, run settings), or
// only the system (the device tools, calibrate and membench, which run no workload).
enum class ConfigScope { kRun, kSystem };

// Loads, merges, overrides and validates. Throws ConfigError with every issue found.
LoadedConfig load_config(const std::vector<std::string>& files,
                         const std::vector<std::string>& overrides,
                         ConfigScope scope = ConfigScope::kRun);

// Loads, merges and applies the overrides without validating the result: the structural
// problems only (unreadable files, syntax, unknown fields, overrides that do not apply).
LoadedConfig load_config_unchecked(const std::vector<std::string>& files,
                                   const std::vector<std::string>& overrides);

// Validates a resolved config; issues get their locations from `loaded.locations`.
void validate_config(const LoadedConfig& loaded, ConfigScope scope = ConfigScope::kRun);

}  // namespace tiersim
