#include "memory/dram_stack.h"

#include <algorithm>
#include <stdexcept>

namespace tiersim {

DramStack::DramStack(const DramStackSpec& spec) : spec_(spec) {
  const DramCounts counts{
      spec.channels, spec.pseudo_channels, spec.org.bank_groups, spec.org.banks_per_group,
      spec.org.rows, spec.org.columns,     spec.org.access_bytes};
  const std::string error = DramAddressMapping::parse(spec.mapping, counts, &mapping_);
  if (!error.empty()) throw std::invalid_argument("address mapping: " + error);
  const uint32_t n = spec.channels * spec.pseudo_channels;
  for (uint32_t i = 0; i < n; ++i) {
    controllers_.push_back(
        std::make_unique<PseudoChannelController>(spec.org, spec.timing, spec.policy));
  }
  next_.assign(n, 0);
  if (spec.pseudo_channels > 1) {
    buses_.resize(spec.channels);
    for (uint32_t i = 0; i < n; ++i)
      controllers_[i]->share_command_buses(&buses_[i / spec.pseudo_channels]);
  }
}

bool DramStack::submit(uint64_t address, bool write, uint64_t id, uint64_t cycle) {
  const DramCoordinates d = mapping_.decode(address);
  const uint32_t i = mapping_.controller_index(d);
  PseudoChannelController& c = *controllers_[i];
  if (!c.can_accept(write)) return false;
  DramRequest r;
  r.id = id;
  r.write = write;
  r.bank_group = d.bank_group;
  r.bank = d.bank;
  r.row = d.row;
  r.column = d.column;
  r.arrival_cycle = cycle;
  c.enqueue(r);
  next_[i] = std::min(next_[i], cycle);  // it may act on the new request right away
  return true;
}

uint64_t DramStack::advance(uint64_t cycle, std::vector<DramCompletion>& done) {
  uint64_t next = kNever;
  const uint32_t pcs = spec_.pseudo_channels;
  for (uint32_t ch = 0; ch < spec_.channels; ++ch) {
    for (uint32_t k = 0; k < pcs; ++k) {
      // Round robin over the cycles: which pseudo channel has the shared command buses first.
      const size_t i = size_t{ch} * pcs + (k + cycle) % pcs;
      if (next_[i] <= cycle) next_[i] = controllers_[i]->advance(cycle, done);
      next = std::min(next, next_[i]);
    }
  }
  return next;
}

void DramStack::set_refresh_multiplier(double m) {
  for (auto& c : controllers_)
    c->set_refresh_multiplier(m);
}

DramControllerStats DramStack::total_stats() const {
  DramControllerStats t;
  for (const auto& c : controllers_) {
    const auto& s = c->stats();
    t.acts += s.acts;
    t.pres += s.pres;
    t.reads += s.reads;
    t.writes += s.writes;
    t.refreshes += s.refreshes;
    t.refreshes_pb += s.refreshes_pb;
    t.row_hits += s.row_hits;
    t.row_misses += s.row_misses;
    t.row_conflicts += s.row_conflicts;
    t.data_cycles += s.data_cycles;
    t.postponed_max = std::max(t.postponed_max, s.postponed_max);
  }
  return t;
}

}  // namespace tiersim
