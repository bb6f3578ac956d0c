#include "models/core/payload_pool.h"

namespace tiersim {

PayloadPool::PayloadPool(size_t initial) {
  grow(initial);
}

PayloadPool::~PayloadPool() {
  // Payloads own their extensions (set_extension) and free them in their destructor.
  free_.clear();
  all_.clear();
}

void PayloadPool::grow(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    auto p = std::make_unique<tlm::tlm_generic_payload>(this);
    p->set_extension(new MovementIntent());
    p->set_extension(new StreamTiming());
    free_.push_back(p.get());
    all_.push_back(std::move(p));
  }
}

tlm::tlm_generic_payload* PayloadPool::acquire() {
  if (free_.empty()) {
    grow(all_.size());
    ++grown_;
  }
  tlm::tlm_generic_payload* p = free_.back();
  free_.pop_back();
  p->acquire();
  *p->get_extension<MovementIntent>() = MovementIntent();
  *p->get_extension<StreamTiming>() = StreamTiming();
  p->set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  return p;
}

void PayloadPool::free(tlm::tlm_generic_payload* p) {
  // tlm_generic_payload::release() calls free() when the count reaches 0; keep the extension.
  free_.push_back(p);
}

MovementIntent& PayloadPool::intent(tlm::tlm_generic_payload& p) {
  return *p.get_extension<MovementIntent>();
}

}  // namespace tiersim

namespace tiersim {
StreamTiming& PayloadPool::timing(tlm::tlm_generic_payload& p) {
  return *p.get_extension<StreamTiming>();
}
}  // namespace tiersim
