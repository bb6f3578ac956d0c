#include "models/core/summary.h"

#include <algorithm>
#include <cmath>

namespace tiersim {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

size_t Table::Column::size() const {
  switch (type) {
    case Type::kU64:
      return u64.size();
    case Type::kI64:
      return i64.size();
    case Type::kF64:
      return f64.size();
    case Type::kStr:
      return str.size();
  }
  return 0;
}

size_t Table::add_column(std::string name, Type type, std::string unit) {
  columns.push_back(Column{std::move(name), type, std::move(unit), {}, {}, {}, {}});
  return columns.size() - 1;
}

const Table::Column* Table::find(const std::string& name) const {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace tiersim
