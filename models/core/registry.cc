#include "models/core/registry.h"

#include <algorithm>

namespace tiersim {

// Function-local static: filled during static initialisation only.
static std::vector<CommandKind>& command_storage() {
  static std::vector<CommandKind> kinds;
  return kinds;
}

namespace {
std::vector<ComponentKind>& component_storage() {
  static std::vector<ComponentKind> kinds;
  return kinds;
}
std::vector<WorkloadKind>& workload_storage() {
  static std::vector<WorkloadKind> kinds;
  return kinds;
}
template <typename T>
void insert_sorted(std::vector<T>& v, T kind) {
  auto it = std::lower_bound(v.begin(), v.end(), kind.config_name,
                             [](const T& k, const std::string& n) { return k.config_name < n; });
  v.insert(it, std::move(kind));
}
}  // namespace

ComponentRegistrar::ComponentRegistrar(ComponentKind kind) {
  insert_sorted(component_storage(), std::move(kind));
}
WorkloadRegistrar::WorkloadRegistrar(WorkloadKind kind) {
  insert_sorted(workload_storage(), std::move(kind));
}

const std::vector<ComponentKind>& component_kinds() {
  return component_storage();
}
const std::vector<WorkloadKind>& workload_kinds() {
  return workload_storage();
}

const ComponentKind* find_component_kind(const std::string& name) {
  for (const auto& k : component_storage()) {
    if (k.config_name == name) return &k;
  }
  return nullptr;
}

const WorkloadKind* find_workload_kind(const std::string& name) {
  for (const auto& k : workload_storage()) {
    if (k.config_name == name) return &k;
  }
  return nullptr;
}

std::string component_kind_name(const config::Component& c) {
  const auto* oneof = c.GetDescriptor()->FindOneofByName("kind");
  const auto* field = c.GetReflection()->GetOneofFieldDescriptor(c, oneof);
  return field ? field->name() : "";
}

std::string workload_kind_name(const config::Workload& w) {
  const auto* oneof = w.GetDescriptor()->FindOneofByName("scenario");
  const auto* field = w.GetReflection()->GetOneofFieldDescriptor(w, oneof);
  return field ? field->name() : "";
}

}  // namespace tiersim

namespace tiersim {

namespace {
FabricChecks& fabric_checks_storage() {
  static FabricChecks checks;
  return checks;
}
}  // namespace

const FabricChecks& fabric_checks() {
  return fabric_checks_storage();
}

FabricChecksRegistrar::FabricChecksRegistrar(decltype(FabricChecks::serial_link) serial_link,
                                             decltype(FabricChecks::faults) faults) {
  fabric_checks_storage() = FabricChecks{std::move(serial_link), std::move(faults)};
}

CommandRegistrar::CommandRegistrar(CommandKind kind) {
  command_storage().push_back(std::move(kind));
}

const std::vector<CommandKind>& command_kinds() {
  return command_storage();
}

const CommandKind* find_command_kind(const std::string& name) {
  for (const auto& k : command_storage()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

}  // namespace tiersim
