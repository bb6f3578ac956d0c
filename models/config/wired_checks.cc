#include "models/config/wired_checks.h"

#include <string>

namespace tiersim {

void validate_wired_directive(const config::WiredDirective& d, Validator& v) {
  if (d.op() == config::WIRED_OP_UNSPECIFIED || !config::WiredOp_IsValid(d.op())) {
    v.error("op", "required: BIND, SOFT_PIN, UNPIN, RELEASE or SET_QUOTA");
  } else if (d.op() == config::WIRED_SET_QUOTA) {
    v.require("quota_bytes", d.has_quota_bytes());
    if (d.objects_size() > 0) v.error("objects", "not with SET_QUOTA");
  } else {
    if (d.objects_size() == 0) v.error("objects", "required: object names or prefixes*");
    if (d.has_quota_bytes()) v.error("quota_bytes", "only with SET_QUOTA");
  }
  if (d.has_grace_ps() && d.op() != config::WIRED_SOFT_PIN) {
    v.error("grace_ps", "only with SOFT_PIN");
  }
  for (int k = 0; k < d.objects_size(); ++k) {
    const std::string& n = d.objects(k);
    if (n.empty() || n == "*" || n.find('*') < n.size() - 1) {
      v.error("objects[" + std::to_string(k) + "]",
              "an object name, or a non-empty prefix ending in one '*'");
    }
  }
}

}  // namespace tiersim
