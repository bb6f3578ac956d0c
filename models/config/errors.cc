#include "models/config/errors.h"

#include <sstream>

namespace tiersim {

std::string ConfigIssue::format() const {
  std::ostringstream os;
  if (where.file == "--set") {
    os << "--set[" << where.line << "]: ";
  } else if (!where.file.empty()) {
    os << where.file;
    if (where.line > 0) os << ":" << where.line;
    os << ": ";
  }
  // Paths and messages may quote names of any length from the input: keep each line readable.
  auto readable = [](const std::string& s, size_t max) {
    return s.size() <= max ? s
                           : s.substr(0, max) + "...(" + std::to_string(s.size()) + " characters)";
  };
  if (!path.empty()) os << readable(path, 240) << ": ";
  os << readable(message, 960);
  return os.str();
}

ConfigError::ConfigError(std::vector<ConfigIssue> issues)
    : std::runtime_error(join(issues)), issues_(std::move(issues)) {}

std::string ConfigError::join(const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (const auto& i : issues) {
    if (!out.empty()) out += "\n";
    out += i.format();
  }
  return out;
}

Validator Validator::at(const std::string& sub) const {
  return Validator(*sink_, path(sub));
}

std::string Validator::path(const std::string& field) const {
  if (prefix_.empty()) return field;
  if (field.empty()) return prefix_;
  return prefix_ + "." + field;
}

void Validator::error(const std::string& field, const std::string& message) {
  sink_->push_back(ConfigIssue{{}, path(field), message});
}

void Validator::error_at(SourceLocation where, const std::string& field,
                         const std::string& message) {
  sink_->push_back(ConfigIssue{std::move(where), path(field), message});
}

bool Validator::require(const std::string& field, bool present) {
  if (!present) error(field, "required field is not set");
  return present;
}

bool Validator::positive(const std::string& field, bool present, double value) {
  if (!require(field, present)) return false;
  if (!(value > 0)) {
    std::ostringstream os;
    os << "must be > 0 (got " << value << ")";
    error(field, os.str());
    return false;
  }
  return true;
}

bool Validator::at_least(const std::string& field, bool present, double value, double min) {
  if (!require(field, present)) return false;
  if (!(value >= min)) {
    std::ostringstream os;
    os << "must be >= " << min << " (got " << value << ")";
    error(field, os.str());
    return false;
  }
  return true;
}

bool Validator::non_negative(const std::string& field, bool present, double value) {
  if (!present || value >= 0) return true;
  std::ostringstream os;
  os << "must be zero or positive (got " << value << ")";
  error(field, os.str());
  return false;
}

bool Validator::fraction(const std::string& field, bool present, double value) {
  if (!require(field, present)) return false;
  if (!(value > 0 && value <= 1)) {
    std::ostringstream os;
    os << "must be in (0, 1] (got " << value << ")";
    error(field, os.str());
    return false;
  }
  return true;
}

bool Validator::non_empty(const std::string& field, bool present, const std::string& value) {
  if (!require(field, present)) return false;
  if (value.empty()) {
    error(field, "must not be empty");
    return false;
  }
  return true;
}

}  // namespace tiersim
