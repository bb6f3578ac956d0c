// Registries of component kinds and workload kinds, keyed by the config's oneof case name.
// Each kind registers itself from its own .cc file with a static Registrar; after static
// initialisation the registries are immutable and reached through function-local accessors.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
// Validator is models/config/errors.h (config sits above core: only declared here).

namespace tiersim {

class Component;
class Context;
class Validator;
class Workload;

struct ComponentKind {
  std::string config_name;  // the Component.kind oneof field name
  std::string description;  // one line, for `tiersim list`
  // Checks the component's own fields and its references into `root`.
  std::function<void(const config::Config& root, const config::Component& c, Validator& v)>
      validate;
  std::function<std::unique_ptr<Component>(const config::Component& c, Context& ctx)> create;
  // Optional: derives the fast level's parameters of a (valid) component from its detailed
  // description. Returns the text-format fields to set in the component's kind message and
  // writes a human-readable table of what was measured to `report`. Throws ConfigError when
  // the component lacks what calibration needs. Empty when the kind cannot be calibrated.
  std::function<std::string(const config::Component& c, double duration_us, std::ostream& report)>
      calibrate;
  // Whether the kind has a DETAILED level. run.fidelity applies to kinds with both levels;
  // a component that asks for DETAILED explicitly must be of such a kind.
  bool detailed_level = false;
};

struct WorkloadKind {
  std::string config_name;  // the Workload.scenario oneof field name
  std::string description;
  std::function<void(const config::Config& root, Validator& v)> validate;
  // Bytes the workload needs in its home memory at its peak (valid configs only).
  std::function<uint64_t(const config::Config& root)> footprint_bytes;
  std::function<std::unique_ptr<Workload>(const config::Config& root)> create;
};

const std::vector<ComponentKind>& component_kinds();
const ComponentKind* find_component_kind(const std::string& config_name);
const std::vector<WorkloadKind>& workload_kinds();
const WorkloadKind* find_workload_kind(const std::string& config_name);

// The oneof case name of a component ("hbm", "sram", ...), or "" when none is set.
std::string component_kind_name(const config::Component& c);
std::string workload_kind_name(const config::Workload& w);

// A CLI subcommand contributed by a module (e.g. `membench` from memory/). `run` gets the
// arguments after the command name and returns the exit code; it may throw ConfigError (exit 2)
// or std::invalid_argument (bad arguments, exit 2).
struct CommandKind {
  std::string name;
  std::string usage;  // one or more lines for --help, each starting with two spaces
  std::function<int(const std::vector<std::string>& args)> run;
};
const std::vector<CommandKind>& command_kinds();
const CommandKind* find_command_kind(const std::string& name);
struct CommandRegistrar {
  explicit CommandRegistrar(CommandKind kind);
};

// Checks of system sections that fabric/ models (a link's serial-link parameters, the fault
// windows): config validation sits below fabric/ in the layering, so fabric/ contributes them
// here and validation calls them where it reaches those sections. Each is set once, during
// static initialisation; an unset check is skipped.
struct FabricChecks {
  std::function<void(const config::SerialLink& serial, Validator& v)> serial_link;
  std::function<void(const config::System& sys, Validator& v)> faults;
};
const FabricChecks& fabric_checks();
struct FabricChecksRegistrar {
  FabricChecksRegistrar(decltype(FabricChecks::serial_link) serial_link,
                        decltype(FabricChecks::faults) faults);
};

struct ComponentRegistrar {
  explicit ComponentRegistrar(ComponentKind kind);
};
struct WorkloadRegistrar {
  explicit WorkloadRegistrar(WorkloadKind kind);
};

}  // namespace tiersim
