// Configuration problems: each names where it came from (file and line, or the --set argument)
// and the field path, and the CLI turns them into exit code 2 before any simulation starts.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace tiersim {

struct SourceLocation {
  std::string file;  // a config file, or "--set" for a command-line override
  int line = 0;      // 1-based line in `file`, or the 1-based index of the --set argument;
                     // 0 when unknown
};

struct ConfigIssue {
  ConfigIssue(SourceLocation where_, std::string path_, std::string message_)
      : where(std::move(where_)), path(std::move(path_)), message(std::move(message_)) {}

  SourceLocation where;
  std::string path;  // field path, e.g. system.components[hbm0].hbm.latency_ps
  std::string message;

  // "file:line: path: message", "--set[k]: path: message" or "file: path: message".
  std::string format() const;
};

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<ConfigIssue> issues);
  const std::vector<ConfigIssue>& issues() const { return issues_; }

 private:
  static std::string join(const std::vector<ConfigIssue>& issues);
  std::vector<ConfigIssue> issues_;
};

// Collects semantic problems during validation. Paths are relative to a prefix, so a component's
// validator can be written without knowing where the component sits in the config.
class Validator {
 public:
  explicit Validator(std::vector<ConfigIssue>& sink, std::string prefix = "")
      : sink_(&sink), prefix_(std::move(prefix)) {}

  // A validator whose paths are prefixed by this one's path plus `sub`.
  Validator at(const std::string& sub) const;
  // A validator into the same sink at an absolute path (for cross-section checks).
  Validator root(std::string path) const { return Validator(*sink_, std::move(path)); }
  std::string path(const std::string& field) const;

  void error(const std::string& field, const std::string& message);
  // A problem inside a file the config names (a trace): reported at that file and line.
  void error_at(SourceLocation where, const std::string& field, const std::string& message);

  // Convenience checks; each reports and returns false on failure.
  bool require(const std::string& field, bool present);
  bool positive(const std::string& field, bool present, double value);
  bool at_least(const std::string& field, bool present, double value, double min);
  bool fraction(const std::string& field, bool present, double value);  // (0, 1]
  // An optional field that must be zero or positive when set (true when absent).
  bool non_negative(const std::string& field, bool present, double value);
  bool non_empty(const std::string& field, bool present, const std::string& value);

 private:
  std::vector<ConfigIssue>* sink_;
  std::string prefix_;
};

}  // namespace tiersim
