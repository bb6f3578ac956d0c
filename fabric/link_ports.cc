#include "fabric/link_ports.h"

#include <algorithm>
#include <stdexcept>

#include "fabric/faults.h"
#include "fabric/topology.h"
#include "models/config/pool_share.h"
#include "models/core/context.h"
#include "models/core/payload_pool.h"

namespace tiersim {

void LinkPorts::add(Component& neighbour, const LinkInfo& link, int socket_index) {
  auto port = std::make_unique<Port>();
  port->socket_index = socket_index;
  port->link = link.name;
  port->latency_ps = link.latency_ps;
  port->neighbour = &neighbour;
  if (link.serial != nullptr) {
    // Independent seeded streams per link direction (jitter, replays, retrains).
    LinkParams p = LinkParams::from_config(*link.serial);
    // A pod memory node's shared link: every sharer's traffic crosses it, so this accelerator
    // has 1/m of its rate, and pays 1/sharers of its standing power (models/config/pool_share.h).
    const PoolShare share = pool_share_of_link(ctx_.config(), link.name);
    if (share.shared()) {
      p.lane_rate_gbps /= share.load_multiplier;
      p.static_power_w /= share.sharers;
      p.laser_power_w /= share.sharers;
    }
    port->to = std::make_unique<LinkModel>(p, ctx_.rng_for(link.name + ".to").next_u64());
    port->from = std::make_unique<LinkModel>(p, ctx_.rng_for(link.name + ".from").next_u64());
    apply_link_faults(ctx_.config().system(), link.name, port->to.get(), port->from.get());
  }
  if (frozen_) throw std::logic_error(owner_ + ": a link added after routing started");
  ports_.push_back(std::move(port));
}

const std::vector<LinkPorts::Port*>& LinkPorts::candidates(const std::string& target) {
  auto it = routes_.find(target);
  if (it == routes_.end()) {
    std::vector<Port*> found;
    for (size_t e : ctx_.topology().next_links(owner_, target)) {
      for (auto& p : ports_) {
        if (p->link == ctx_.topology().links()[e].name) found.push_back(p.get());
      }
    }
    it = routes_.emplace(target, std::move(found)).first;
    frozen_ = true;
  }
  return it->second;
}

LinkPorts::Choice LinkPorts::choose(const std::vector<Port*>& candidates, TimePs t) {
  Choice c;
  if (candidates.empty()) return c;
  c.up_ps = LinkModel::kNever;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const TimePs up = candidates[i]->up_after(t);
    if (up == t) return Choice{candidates[i], i > 0, t};
    if (up < c.up_ps) {
      c.port = candidates[i];
      c.up_ps = up;
      c.rerouted = i > 0;
    }
  }
  if (c.port == nullptr) c.port = candidates.front();  // none ever comes back
  return c;
}

LinkPorts::Result LinkPorts::forward(Port& port, tlm::tlm_fw_transport_if<>& next,
                                     tlm::tlm_generic_payload& p, TimePs first_ps, TimePs last_ps,
                                     uint32_t level, const Component* target, uint64_t local) {
  const bool write = p.is_write();
  const uint64_t bytes = p.get_data_length();
  const TimePs stall_limit = PayloadPool::timing(p).stall_limit_ps;
  // The request (with a write's data) at the neighbour.
  TimePs first_at = first_ps, last_at = last_ps;
  if (port.to) {
    const TimePs down_before = port.to->down_wait_ps();
    if (write) {
      last_at = port.to->transfer(first_ps, bytes, last_ps, level);
      first_at = port.to->last_first_arrival_ps();
    } else {
      // One request per max_request_bytes (of each range of a scatter-gather read): the target
      // starts on the first; the data cannot all be back before the last has arrived.
      uint64_t requests = 0;
      const StreamTiming& g = PayloadPool::timing(p);
      if (g.gather_parts > 0) {
        for (uint32_t i = 0; i < g.gather_parts; ++i)
          requests += port.to->params().messages_for(g.gather[i].bytes);
      } else {
        requests = port.to->params().messages_for(bytes);
      }
      last_at = port.to->message(last_ps, requests, level);
      first_at = port.to->last_first_arrival_ps();
    }
    if (last_at == LinkModel::kNever) return {last_ps, false};  // down for good mid-transfer
    // Stalled by an outage past the initiator's timeout: failed when the stall reached it,
    // before the target saw the request.
    const TimePs stalled = port.to->down_wait_ps() - down_before;
    if (stalled > stall_limit) return {last_at - (stalled - stall_limit), false};
  }
  first_at += port.latency_ps;
  last_at += port.latency_ps;

  const uint64_t global = p.get_address();
  const bool last_hop = target == port.neighbour;
  if (last_hop) p.set_address(local);
  StreamTiming& st = PayloadPool::timing(p);
  const TimePs saved_first = st.first_byte_ps;
  st.first_byte_ps = write ? std::min(first_at, last_at) : 0;
  const TimePs now = now_ps();
  sc_core::sc_time delay = to_sc_time((write ? last_at : first_at) - now);
  next.b_transport(p, delay);
  p.set_address(global);
  st.first_byte_ps = saved_first;
  TimePs served = now + to_ps(delay);
  if (!p.is_response_ok()) return {served, false};
  if (!write) served = std::max(served, last_at);

  // The response back: a read's data streams behind the target, a write's completion.
  TimePs back = served;
  if (port.from) {
    const TimePs down_before = port.from->down_wait_ps();
    back = write ? port.from->message(served, port.from->params().messages_for(bytes), level)
                 : port.from->transfer(first_at, bytes, served, level);
    if (back == LinkModel::kNever) return {served, false};
    // The response stalled past the timeout: the target served the request, the answer is lost.
    const TimePs stalled = port.from->down_wait_ps() - down_before;
    if (stalled > stall_limit) return {back - (stalled - stall_limit) + port.latency_ps, false};
  }
  return {back + port.latency_ps, true};
}

void LinkPorts::add_energy(TimePs now_ps, EnergyLedger& out) const {
  const double t = ps_to_s(now_ps);
  for (const auto& port : ports_) {
    if (!port->to) continue;
    const LinkParams& lp = port->to->params();
    out.add(EnergyPart::kLinkSerdes, port->to->energy_j() + port->from->energy_j());
    out.add(EnergyPart::kLinkRetimers,
            port->to->retimer_energy_j() + port->from->retimer_energy_j());
    out.add(EnergyPart::kLinkIdle, 2 * lp.static_power_w * t);
    out.add(EnergyPart::kLaser, 2 * lp.laser_power_w * t);
  }
}

bool LinkPorts::has_energy() const {
  for (const auto& port : ports_) {
    if (port->to &&
        (port->to->params().energy_pj_per_bit > 0 || port->to->params().static_power_w > 0 ||
         port->to->params().retimer_energy_pj_per_bit > 0 ||
         port->to->params().laser_power_w > 0)) {
      return true;
    }
  }
  return false;
}

}  // namespace tiersim
