#include "models/config/energy_checks.h"

#include <cmath>
#include <sstream>

namespace tiersim {

bool energy_field(Validator& v, const std::string& field, bool present, double value) {
  if (!present || (std::isfinite(value) && value >= 0)) return true;
  std::ostringstream os;
  os << "must be finite and zero or positive (got " << value << ")";
  v.error(field, os.str());
  return false;
}

}  // namespace tiersim
