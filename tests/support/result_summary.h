// A result file's /summary as a map from item name to value (integration tests).
#pragma once

#include <map>
#include <string>

#include "models/run/result_file.h"

namespace tiersim::test {

inline std::map<std::string, double> summary_of(const std::string& file) {
  std::map<std::string, double> m;
  for (const auto& s : ResultReader(file).summary())
    m[s.name] = s.value;
  return m;
}

}  // namespace tiersim::test
