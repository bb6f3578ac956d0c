#include "models/core/context.h"

#include "models/core/component.h"

namespace tiersim {

Rng Context::rng_for(const std::string& user) const {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : user) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Rng(seed_ ^ h);
}

void Context::add_component(Component* c) {
  components_[std::string(c->basename())] = c;
}

Component* Context::component(const std::string& name) const {
  auto it = components_.find(name);
  return it == components_.end() ? nullptr : it->second;
}

}  // namespace tiersim
