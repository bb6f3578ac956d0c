#include "fabric/switch.h"

#include <algorithm>
#include <set>

#include "models/config/energy_checks.h"
#include "models/config/pool_share.h"
#include "models/core/context.h"
#include "models/core/payload_pool.h"
#include "models/core/registry.h"

namespace tiersim {

namespace {
// MoveOp order (models/core/movement_intent.h) against the config's MoveReason values.
constexpr config::MoveReason kReasonOfOp[kMoveOps] = {
    config::MOVE_DEMAND_FETCH, config::MOVE_PREFETCH, config::MOVE_WRITE_BACK,
    config::MOVE_EVICT,        config::MOVE_PROMOTE,  config::MOVE_DEMOTE,
    config::MOVE_RECOMPUTE,    config::MOVE_COMPACT};
}  // namespace

void SwitchParams::validate(const config::Switch& c, Validator& v) {
  v.positive("ports", c.has_ports(), c.ports());
  v.require("latency_ps", c.has_latency_ps());
  if (c.has_crossbar_bytes_per_s()) {
    v.positive("crossbar_bytes_per_s", true, c.crossbar_bytes_per_s());
  }
  std::set<int> reasons;
  std::set<std::string> names;
  for (int i = 0; i < c.virtual_channels_size(); ++i) {
    const auto& vc = c.virtual_channels(i);
    Validator vv =
        v.at("virtual_channels[" + (vc.name().empty() ? std::to_string(i) : vc.name()) + "]");
    if (vv.non_empty("name", vc.has_name(), vc.name()) && !names.insert(vc.name()).second) {
      vv.error("name", "duplicate virtual channel name");
    }
    if (vv.require("priority", vc.has_priority()) && vc.priority() >= LinkModel::kPriorities) {
      vv.error("priority", "must be below " + std::to_string(LinkModel::kPriorities));
    }
    if (vc.reasons_size() == 0) vv.error("reasons", "a virtual channel needs at least one reason");
    for (int r : vc.reasons()) {
      if (r == config::MOVE_REASON_UNSPECIFIED) vv.error("reasons", "MOVE_REASON_UNSPECIFIED");
      if (!reasons.insert(r).second) {
        vv.error("reasons", std::string(config::MoveReason_Name(r)) +
                                " is already in another virtual channel");
      }
    }
  }
  if (c.virtual_channels_size() > 0) {
    for (config::MoveReason r : kReasonOfOp) {
      if (!reasons.count(r)) {
        v.error("virtual_channels", std::string(config::MoveReason_Name(r)) +
                                        " traffic has no virtual channel (list every reason)");
      }
    }
  }
  energy_field(v, "energy_pj_per_bit", c.has_energy_pj_per_bit(), c.energy_pj_per_bit());
  energy_field(v, "static_power_w", c.has_static_power_w(), c.static_power_w());
}

SwitchParams SwitchParams::from_config(const config::Switch& c) {
  SwitchParams p;
  p.ports = c.ports();
  p.latency_ps = c.latency_ps();
  p.crossbar_bytes_per_s = c.crossbar_bytes_per_s();
  if (c.virtual_channels_size() == 0) {
    p.vc_names = {"all"};
    p.vc_priority = {0};
    p.vc_of_op.fill(0);
    return p;
  }
  for (int i = 0; i < c.virtual_channels_size(); ++i) {
    const auto& vc = c.virtual_channels(i);
    p.vc_names.push_back(vc.name());
    p.vc_priority.push_back(vc.priority());
    for (int r : vc.reasons()) {
      for (size_t op = 0; op < 7; ++op) {
        if (kReasonOfOp[op] == r) p.vc_of_op[op] = static_cast<uint32_t>(i);
      }
    }
  }
  return p;
}

Switch::Switch(sc_core::sc_module_name name, const SwitchParams& params, Context& ctx)
    : Component(name, ctx, "switch"),
      in("in"),
      out("out"),
      params_(params),
      links_(ctx, basename()),
      crossbar_(params.crossbar_bytes_per_s > 0 ? params.crossbar_bytes_per_s : 1.0),
      requests_(ctx.stats().counter(basename(), "requests", "requests switched", "count")),
      bytes_(ctx.stats().counter(basename(), "bytes", "data bytes switched", "bytes")),
      rerouted_(
          ctx.stats().counter(basename(), "rerouted", "requests sent around a down link", "count")),
      failed_(ctx.stats().counter(basename(), "failed",
                                  "requests failed: no port toward the target ever up again",
                                  "count")),
      bytes_by_vc_(ctx.stats().vector(basename(), "bytes_by_vc", "data bytes per virtual channel",
                                      "bytes", params.vc_names)) {
  in.register_b_transport(this, &Switch::b_transport);
  for (const auto& vc : params_.vc_names) {
    crossing_ns_.push_back(&ctx.stats().histogram(
        basename(), "crossing_" + vc,
        "time from a request's arrival to its response leaving the switch, channel " + vc, "ns",
        Histogram::log2_edges(1, 1 << 24)));
  }
}

bool Switch::connect(Component& target, const LinkInfo& link) {
  if (target.target_socket() == nullptr) return false;
  const int index = static_cast<int>(links_.ports().size());
  out.bind(*target.target_socket());
  links_.add(target, link, index);
  return true;
}

void Switch::b_transport(int, tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
  const TimePs now = now_ps();
  const TimePs arrived = now + to_ps(delay);  // a write's last byte, or a read's request
  const uint64_t bytes = p.get_data_length();
  const auto decoded = ctx().address_map().decode(p.get_address(), bytes);
  if (!decoded) {
    p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }
  auto route = routes_.find(decoded->range);
  if (route == routes_.end()) {
    const std::string& name = decoded->range->target;
    route = routes_.emplace(decoded->range, Route{ctx().component(name), &links_.candidates(name)})
                .first;
  }
  const Component* target = route->second.target;
  const MovementIntent& intent = PayloadPool::intent(p);
  const uint32_t vc = params_.vc_of_op[static_cast<size_t>(intent.op)];
  const uint32_t level = params_.vc_priority[vc];
  const LinkPorts::Choice c = LinkPorts::choose(*route->second.candidates, arrived);
  // No port toward the target is up again before the initiator's deadline: fail now rather
  // than wait (an initiator without a timeout waits for the port, however long).
  if (c.port == nullptr || c.up_ps == LinkModel::kNever ||
      (c.up_ps > arrived && c.up_ps > PayloadPool::timing(p).deadline_ps)) {
    failed_.inc();
    p.set_response_status(c.port == nullptr ? tlm::TLM_ADDRESS_ERROR_RESPONSE
                                            : tlm::TLM_GENERIC_ERROR_RESPONSE);
    return;
  }
  if (c.rerouted) rerouted_.inc();
  requests_.inc();
  // Through the crossbar: the header after the cut-through latency, the data behind it.
  const StreamTiming& st = PayloadPool::timing(p);
  const TimePs first_in = p.is_write() && st.first_byte_ps ? st.first_byte_ps : arrived;
  TimePs first_out = first_in + params_.latency_ps;
  TimePs last_out = arrived + params_.latency_ps;
  if (params_.crossbar_bytes_per_s > 0 && p.is_write()) {
    last_out = std::max(last_out, crossbar_.reserve(first_out, bytes));
  }
  LinkPorts::Result r = links_.forward(*c.port, *out[c.port->socket_index], p, first_out, last_out,
                                       level, target, decoded->local_address);
  if (!r.ok) {
    failed_.inc();
    if (p.is_response_ok()) p.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
    delay = to_sc_time(std::max(r.done_ps, now) - now);
    return;
  }
  // The response crosses back: a read's data streams through the crossbar.
  TimePs back = r.done_ps + params_.latency_ps;
  if (params_.crossbar_bytes_per_s > 0 && p.is_read()) {
    back =
        std::max(back, crossbar_.reserve(arrived + params_.latency_ps, bytes) + params_.latency_ps);
  }
  bytes_.inc(bytes);
  bytes_by_vc_.add(vc, static_cast<double>(bytes));
  crossing_ns_[vc]->record(static_cast<double>(back - arrived) / kPsPerNs);
  delay = to_sc_time(back - now);
  p.set_response_status(tlm::TLM_OK_RESPONSE);
}

void Switch::add_energy(TimePs now_ps, EnergyLedger& out) const {
  Component::add_energy(now_ps, out);
  links_.add_energy(now_ps, out);
}

bool Switch::has_energy() const {
  return Component::has_energy() || links_.has_energy();
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "switch",
    "packet switch routing requests by address: cut-through latency, crossbar bandwidth, "
    "virtual channels with strict priority on the links it drives (FAST only)",
    [](const config::Config& root, const config::Component& c, Validator& v) {
      SwitchParams::validate(c.switch_(), v);
      int links = 0;
      for (const auto& l : root.system().links()) {
        links += (l.from() == c.name()) + (l.to() == c.name());
      }
      if (c.switch_().ports() > 0 && links > static_cast<int>(c.switch_().ports())) {
        v.error("ports", std::to_string(links) + " links use this switch, more than its " +
                             std::to_string(c.switch_().ports()) + " ports");
      }
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      // In front of a pod memory node: this accelerator's share (models/config/pool_share.h).
      SwitchParams p = SwitchParams::from_config(c.switch_());
      const PoolShare share = pool_share_of_switch(ctx.config(), c.name());
      p.crossbar_bytes_per_s /= share.load_multiplier;
      return with_energy(std::make_unique<Switch>(c.name().c_str(), p, ctx),
                         c.switch_().energy_pj_per_bit(),
                         c.switch_().static_power_w() / share.sharers, EnergyPart::kSwitchCore,
                         EnergyPart::kSwitchBase);
    },
    nullptr});
}  // namespace

}  // namespace tiersim
