#include "fabric/pod.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "models/config/energy_checks.h"

namespace tiersim {

namespace {

constexpr uint32_t kMaxNodes = 65536;

std::string metres(double m) {
  std::ostringstream os;
  os.precision(4);
  os << m << " m";
  return os.str();
}

uint64_t key(uint32_t from, uint32_t to) {
  return (uint64_t{from} << 32) | to;
}

// Flow level takes the expectation of what the serial-link model draws per transfer:
// - replays: a unit (a flit, or a 256-byte packet) hit by a bit error costs its serialisation
//   and the retransmit latency again, so the rate falls by 1 + q (1 + retransmit / unit time);
// - retrains: the link is down retrain_rate x retrain_duration of the time;
// - request headers: with max_request_bytes, a message_bytes header per that much data;
// - jitter: its mean adds to the latency.
double flow_capacity_bytes_per_s(const LinkParams& p) {
  double c = p.data_bytes_per_s();
  if (p.bit_error_rate > 0) {
    const double unit_bytes = p.flit_bytes ? p.flit_bytes : 256.0;
    const double q = -std::expm1(8.0 * unit_bytes * std::log1p(-p.bit_error_rate));
    const double unit_s = unit_bytes / p.wire_bytes_per_s();
    c /= 1.0 + q * (1.0 + double(p.retransmit_latency_ps) * 1e-12 / unit_s);
  }
  c *= 1.0 - p.retrain_rate_per_s * double(p.retrain_duration_ps) * 1e-12;
  if (p.max_request_bytes > 0) {
    c *= double(p.max_request_bytes) / double(p.max_request_bytes + p.message_bytes);
  }
  return c;
}

TimePs mean_jitter_ps(const config::Jitter& j) {
  switch (j.kind_case()) {
    case config::Jitter::kFixedPs:
      return j.fixed_ps();
    case config::Jitter::kUniform:
      return (j.uniform().min_ps() + j.uniform().max_ps()) / 2;
    case config::Jitter::kNormal:
      return static_cast<TimePs>(std::llround(std::max(0.0, j.normal().mean_ps())));
    default:
      return 0;
  }
}

}  // namespace

std::string Pod::vertex_name(uint32_t v) const {
  if (v < nodes_) return "node[" + std::to_string(v) + "]";
  if (is_scale_out_switch(v)) {
    if (scale_out_topology_ == config::POD_SCALE_OUT_SINGLE_SWITCH) return "scale_out_switch";
    return "rail[" + std::to_string(v - (nodes_ + switches_ - scale_out_switches_)) + "]";
  }
  const uint32_t s = v - nodes_;
  if (topology_ == config::POD_LEAF_SPINE) {
    const uint32_t leaves = nodes_ / nodes_per_leaf_;
    return s < leaves ? "leaf[" + std::to_string(s) + "]"
                      : "spine[" + std::to_string(s - leaves) + "]";
  }
  return "switch[" + std::to_string(s) + "]";
}

uint32_t Pod::rack_of(uint32_t vertex) const {
  return vertex_rack_[vertex];
}

uint32_t Pod::add_link(uint32_t from, uint32_t to, const LinkParams& medium, LinkKind kind,
                       double rack_pitch_m, Validator* v, const char* field, double reach_m) {
  PodLink l;
  l.from = from;
  l.to = to;
  l.spine = kind == LinkKind::kSpine;
  l.nic = kind == LinkKind::kNic;
  if (from >= nodes_) {
    const bool out = is_scale_out_switch(from);
    l.switch_latency_ps = out ? scale_out_latency_ps_ : switch_latency_ps_;
    l.contended_efficiency = out ? scale_out_contended_efficiency_ : contended_port_efficiency_;
  }
  const double racks_apart = std::fabs(double(rack_of(from)) - double(rack_of(to)));
  l.length_m = medium.length_m + racks_apart * rack_pitch_m;
  l.params = medium;
  l.params.length_m = l.length_m;
  l.latency_ps =
      l.params.fixed_latency_ps() + mean_jitter_ps(l.params.jitter) + l.switch_latency_ps;
  l.capacity_bytes_per_s = flow_capacity_bytes_per_s(l.params);
  bool& reported = l.spine ? spine_reach_reported_
                   : l.nic ? nic_reach_reported_
                           : node_reach_reported_;
  if (reach_m > 0 && l.length_m > reach_m * (1 + 1e-12) && !reported) {
    // One report per medium is enough: the first hop too long names the problem.
    const std::string msg = "the hop " + vertex_name(from) + " -> " + vertex_name(to) + " is " +
                            metres(l.length_m) + " (" + metres(medium.length_m) +
                            " of cable plus " + std::to_string(int(racks_apart)) +
                            " rack pitches), beyond the medium's reach_m " + metres(reach_m) +
                            ": use a medium that reaches that far (optics), more nodes per "
                            "rack, or a topology with shorter hops";
    reported = true;
    if (v == nullptr) throw std::invalid_argument(msg);
    v->error(std::string(field) + ".reach_m", msg);
  }
  links_.push_back(l);
  by_ends_.emplace(key(from, to), uint32_t(links_.size() - 1));
  return uint32_t(links_.size() - 1);
}

uint32_t Pod::find(uint32_t from, uint32_t to) const {
  const auto it = by_ends_.find(key(from, to));
  if (it == by_ends_.end()) throw std::logic_error("Pod: no link between adjacent vertices");
  return it->second;
}

bool Pod::validate(const config::Pod& p, Validator& v) {
  // A local sink, so the layout is checked only once the fields themselves are valid.
  std::vector<ConfigIssue> scratch;
  Validator pv(scratch, v.path(""));
  if (pv.require("nodes", p.has_nodes())) {
    if (p.nodes() < 2 || p.nodes() > kMaxNodes) {
      pv.error("nodes", "must be in [2, " + std::to_string(kMaxNodes) + "]");
    }
  }
  const config::PodTopology t = p.topology();
  if (t == config::POD_TOPOLOGY_UNSPECIFIED || !config::PodTopology_IsValid(t)) {
    pv.error("topology",
             "required: POD_SINGLE_SWITCH, POD_LEAF_SPINE, POD_RING, POD_TORUS_2D, POD_TORUS_3D "
             "or POD_FULLY_CONNECTED");
  }
  const bool switched = t == config::POD_SINGLE_SWITCH || t == config::POD_LEAF_SPINE;
  const bool torus = t == config::POD_TORUS_2D || t == config::POD_TORUS_3D;
  // A link that retrains all the time never carries anything.
  auto always_down = [&](const char* field, const config::SerialLink& l) {
    if (l.retrain_rate_per_s() * double(l.retrain_duration_ps()) * 1e-12 >= 1.0) {
      pv.at(field).error("retrain_rate_per_s",
                         "x retrain_duration_ps leaves the link down all the time");
    }
  };
  if (pv.require("node_link", p.has_node_link())) {
    Validator lv = pv.at("node_link");
    LinkParams::validate(p.node_link(), lv);
    always_down("node_link", p.node_link());
  }
  if (t == config::POD_LEAF_SPINE) {
    if (pv.require("spine_link", p.has_spine_link())) {
      Validator lv = pv.at("spine_link");
      LinkParams::validate(p.spine_link(), lv);
      always_down("spine_link", p.spine_link());
    }
    if (pv.require("nodes_per_leaf", p.has_nodes_per_leaf()) &&
        pv.positive("nodes_per_leaf", true, p.nodes_per_leaf()) && p.has_nodes() &&
        p.nodes() % p.nodes_per_leaf() != 0) {
      pv.error("nodes_per_leaf", "must divide nodes (" + std::to_string(p.nodes()) + ")");
    }
    if (pv.require("spines", p.has_spines())) pv.positive("spines", true, p.spines());
  } else {
    for (const char* f : {"spine_link", "nodes_per_leaf", "spines"}) {
      const bool set = std::string(f) == "spine_link"       ? p.has_spine_link()
                       : std::string(f) == "nodes_per_leaf" ? p.has_nodes_per_leaf()
                                                            : p.has_spines();
      if (set) pv.error(f, "only a POD_LEAF_SPINE pod has leaves and spines");
    }
  }
  if (torus) {
    const int want = t == config::POD_TORUS_2D ? 2 : 3;
    if (p.torus_dims_size() != want) {
      pv.error("torus_dims", "needs " + std::to_string(want) + " sizes");
    } else {
      uint64_t product = 1;
      bool ok = true;
      for (int i = 0; i < want; ++i) {
        if (p.torus_dims(i) < 2 || p.torus_dims(i) > kMaxNodes) {
          pv.error("torus_dims[" + std::to_string(i) + "]",
                   "must be in [2, " + std::to_string(kMaxNodes) + "]");
          ok = false;
        } else {
          product *= p.torus_dims(i);  // at most 65536^3: no overflow
        }
      }
      if (ok && p.has_nodes() && product != p.nodes()) {
        pv.error("torus_dims", "the sizes' product (" + std::to_string(product) +
                                   ") must equal nodes (" + std::to_string(p.nodes()) + ")");
      }
    }
  } else if (p.torus_dims_size() > 0) {
    pv.error("torus_dims", "only a POD_TORUS_2D or POD_TORUS_3D pod has dimensions");
  }
  if (switched) {
    Validator sv = pv.at("switch");
    sv.require("latency_ps", p.switch_().has_latency_ps());
    if (p.switch_().has_radix()) sv.positive("radix", true, p.switch_().radix());
    if (p.switch_().has_static_power_w() && !(p.switch_().static_power_w() >= 0)) {
      sv.error("static_power_w", "must be zero or positive");
    }
    if (p.switch_().in_network_reduction() && t != config::POD_SINGLE_SWITCH) {
      sv.error("in_network_reduction",
               "in-switch collectives are modelled on a POD_SINGLE_SWITCH pod only");
    }
    energy_field(sv, "cost_usd", p.switch_().has_cost_usd(), p.switch_().cost_usd());
    if (p.switch_().has_contended_port_efficiency()) {
      const double e = p.switch_().contended_port_efficiency();
      if (!(e > 0 && e <= 1)) sv.error("contended_port_efficiency", "must be in (0, 1]");
    }
    if (p.switch_().has_reduction_bytes_per_s()) {
      if (!p.switch_().in_network_reduction()) {
        sv.error("reduction_bytes_per_s", "needs in_network_reduction: true");
      } else {
        sv.positive("reduction_bytes_per_s", true, p.switch_().reduction_bytes_per_s());
      }
    }
  } else if (p.has_switch_()) {
    pv.error("switch", "a ring, torus or fully connected pod has no switches");
  }
  if (p.has_scale_out()) {
    const config::PodScaleOut& so = p.scale_out();
    Validator ov = pv.at("scale_out");
    if (t != config::POD_SINGLE_SWITCH) {
      pv.error("scale_out",
               "a scale-out network joins POD_SINGLE_SWITCH domains only (one scale-up switch "
               "per domain)");
    }
    if (ov.require("domain_nodes", so.has_domain_nodes()) && p.has_nodes()) {
      if (so.domain_nodes() < 2 || so.domain_nodes() > p.nodes()) {
        ov.error("domain_nodes", "must be in [2, nodes] (nodes: " + std::to_string(p.nodes()) +
                                     "): a domain of one node has no scale-up switch");
      } else if (p.nodes() % so.domain_nodes() != 0) {
        ov.error("domain_nodes", "must divide nodes (" + std::to_string(p.nodes()) + ")");
      }
    }
    if (so.topology() == config::POD_SCALE_OUT_TOPOLOGY_UNSPECIFIED ||
        !config::PodScaleOutTopology_IsValid(so.topology())) {
      ov.error("topology", "required: POD_SCALE_OUT_SINGLE_SWITCH or POD_SCALE_OUT_RAILS");
    }
    if (ov.require("nic_link", so.has_nic_link())) {
      Validator lv = ov.at("nic_link");
      LinkParams::validate(so.nic_link(), lv);
      if (so.nic_link().retrain_rate_per_s() * double(so.nic_link().retrain_duration_ps()) *
              1e-12 >=
          1.0) {
        lv.error("retrain_rate_per_s", "x retrain_duration_ps leaves the link down all the time");
      }
    }
    Validator sv = ov.at("switch");
    sv.require("latency_ps", so.switch_().has_latency_ps());
    if (so.switch_().has_radix()) sv.positive("radix", true, so.switch_().radix());
    if (so.switch_().has_static_power_w() && !(so.switch_().static_power_w() >= 0)) {
      sv.error("static_power_w", "must be zero or positive");
    }
    energy_field(sv, "cost_usd", so.switch_().has_cost_usd(), so.switch_().cost_usd());
    if (so.switch_().has_contended_port_efficiency()) {
      const double e = so.switch_().contended_port_efficiency();
      if (!(e > 0 && e <= 1)) sv.error("contended_port_efficiency", "must be in (0, 1]");
    }
    if (so.switch_().in_network_reduction() || so.switch_().has_reduction_bytes_per_s()) {
      sv.error(
          so.switch_().in_network_reduction() ? "in_network_reduction" : "reduction_bytes_per_s",
          "in-switch collectives are modelled on the scale-up switches only");
    }
  }
  const auto& lay = p.layout();
  if (lay.has_nodes_per_rack())
    pv.at("layout").positive("nodes_per_rack", true, lay.nodes_per_rack());
  if (lay.has_rack_pitch_m()) pv.at("layout").positive("rack_pitch_m", true, lay.rack_pitch_m());
  if (p.has_nodes() && lay.nodes_per_rack() > 0 && lay.nodes_per_rack() < p.nodes() &&
      !lay.has_rack_pitch_m()) {
    pv.at("layout").error("rack_pitch_m", "needed with more than one rack");
  }
  if (p.has_chunk_bytes() && p.chunk_bytes() < 1) pv.error("chunk_bytes", "must be >= 1");
  if (p.has_max_chunks() && (p.max_chunks() < 1 || p.max_chunks() > 1024)) {
    pv.error("max_chunks", "must be in [1, 1024]");
  }
  if (p.has_rate_tolerance() && !(p.rate_tolerance() >= 0 && p.rate_tolerance() <= 0.1)) {
    pv.error("rate_tolerance", "must be in [0, 0.1]");
  }
  if (p.has_packet_bytes()) {
    if (p.level() != config::POD_SERIAL_LINK) {
      pv.error("packet_bytes", "only with level: POD_SERIAL_LINK");
    } else if (p.packet_bytes() < 64 || p.packet_bytes() > (uint64_t{1} << 30)) {
      pv.error("packet_bytes", "must be in [64, 2^30]");
    }
  }
  if (p.level() == config::POD_SERIAL_LINK && p.has_rate_tolerance() && p.rate_tolerance() > 0) {
    pv.error("rate_tolerance", "is the flow level's; the serial-link level has no rates");
  }
  if (scratch.empty()) {
    // Links the topology needs (one direction each), bounded so validation never runs out of
    // memory building them.
    const uint64_t n = p.nodes();
    uint64_t links = 0;
    switch (t) {
      case config::POD_SINGLE_SWITCH:
        links = p.has_scale_out() ? 4 * n : 2 * n;
        break;
      case config::POD_RING:
        links = 2 * n;
        break;
      case config::POD_LEAF_SPINE:
        links = 2 * n + 2 * (n / p.nodes_per_leaf()) * p.spines();
        break;
      case config::POD_TORUS_2D:
      case config::POD_TORUS_3D:
        links = 2 * n * uint64_t(p.torus_dims_size());
        break;
      case config::POD_FULLY_CONNECTED:
        links = n * (n - 1);
        break;
      default:
        break;
    }
    constexpr uint64_t kMaxLinks = 1u << 22;
    if (links > kMaxLinks) {
      pv.error(t == config::POD_LEAF_SPINE ? "spines" : "nodes",
               "the topology needs " + std::to_string(links) + " links, more than the " +
                   std::to_string(kMaxLinks) + " a pod may have");
    }
  }
  if (scratch.empty()) {
    // The layout: reach of every hop, radix of every switch.
    build(p, 1.0, &pv);
  }
  for (auto& i : scratch)
    v.root(i.path).error("", i.message);
  return scratch.empty();
}

Pod Pod::from_config(const config::Pod& p, double injection_bytes_per_s) {
  if (!(injection_bytes_per_s > 0)) throw std::invalid_argument("Pod: injection rate must be > 0");
  return build(p, injection_bytes_per_s, nullptr);
}

Pod Pod::build(const config::Pod& p, double injection_bytes_per_s, Validator* v) {
  Pod pod;
  pod.nodes_ = p.nodes();
  pod.topology_ = p.topology();
  if (p.has_chunk_bytes()) pod.chunk_bytes_ = p.chunk_bytes();
  if (p.has_max_chunks()) pod.max_chunks_ = p.max_chunks();
  pod.rate_tolerance_ = p.rate_tolerance();
  if (p.level() == config::POD_SERIAL_LINK) {
    pod.packet_bytes_ = p.has_packet_bytes() ? p.packet_bytes() : 1024;
  }
  pod.switch_latency_ps_ = p.switch_().latency_ps();
  pod.contended_port_efficiency_ =
      p.switch_().has_contended_port_efficiency() ? p.switch_().contended_port_efficiency() : 1.0;
  pod.injection_bytes_per_s_ = injection_bytes_per_s;
  const uint32_t n = pod.nodes_;
  pod.domain_nodes_ = n;
  if (p.has_scale_out()) {
    const config::PodScaleOut& so = p.scale_out();
    pod.domain_nodes_ = so.domain_nodes();
    pod.scale_out_topology_ = so.topology();
    pod.scale_out_switches_ = so.topology() == config::POD_SCALE_OUT_RAILS ? so.domain_nodes() : 1;
    pod.scale_out_latency_ps_ = so.switch_().latency_ps();
    pod.scale_out_contended_efficiency_ = so.switch_().has_contended_port_efficiency()
                                              ? so.switch_().contended_port_efficiency()
                                              : 1.0;
    pod.scale_out_switch_power_w_ = so.switch_().static_power_w();
    pod.scale_out_switch_cost_usd_ = so.switch_().cost_usd();
  }
  pod.nodes_per_rack_ = p.layout().has_nodes_per_rack() ? p.layout().nodes_per_rack() : n;
  const uint32_t racks = (n + pod.nodes_per_rack_ - 1) / pod.nodes_per_rack_;
  const double pitch = p.layout().rack_pitch_m();
  const uint32_t middle = (racks - 1) / 2;
  const LinkParams node_link = LinkParams::from_config(p.node_link());
  const double node_reach = p.node_link().reach_m();
  pod.switch_static_power_w_ = p.switch_().static_power_w();
  pod.switch_cost_usd_ = p.switch_().cost_usd();
  for (uint32_t i = 0; i < n; ++i)
    pod.vertex_rack_.push_back(i / pod.nodes_per_rack_);

  std::vector<uint32_t> ports;  // links per switch (one direction)
  switch (pod.topology_) {
    case config::POD_SINGLE_SWITCH: {
      // One switch per domain (one domain without a scale-out network): a lone switch stands
      // in the middle rack, a domain's in the rack of its first node.
      const uint32_t domains = n / pod.domain_nodes_;
      pod.switches_ = domains + pod.scale_out_switches_;
      for (uint32_t d = 0; d < domains; ++d) {
        pod.vertex_rack_.push_back(domains == 1 ? middle
                                                : d * pod.domain_nodes_ / pod.nodes_per_rack_);
      }
      pod.vertex_rack_.insert(pod.vertex_rack_.end(), pod.scale_out_switches_, middle);
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t sw = n + pod.domain_of(i);
        pod.up_.push_back(
            pod.add_link(i, sw, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach));
        pod.down_.push_back(
            pod.add_link(sw, i, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach));
      }
      ports.assign(domains, pod.domain_nodes_);
      if (pod.scale_out()) {
        const LinkParams nic = LinkParams::from_config(p.scale_out().nic_link());
        const double reach = p.scale_out().nic_link().reach_m();
        const bool rails = pod.scale_out_topology_ == config::POD_SCALE_OUT_RAILS;
        for (uint32_t i = 0; i < n; ++i) {
          const uint32_t sw = n + domains + (rails ? i % pod.domain_nodes_ : 0);
          pod.nic_up_.push_back(
              pod.add_link(i, sw, nic, LinkKind::kNic, pitch, v, "scale_out.nic_link", reach));
          pod.nic_down_.push_back(
              pod.add_link(sw, i, nic, LinkKind::kNic, pitch, v, "scale_out.nic_link", reach));
        }
      }
      if (p.switch_().in_network_reduction()) {
        pod.reduce_bytes_per_s_ = p.switch_().has_reduction_bytes_per_s()
                                      ? p.switch_().reduction_bytes_per_s()
                                      : node_link.data_bytes_per_s();
      }
      break;
    }
    case config::POD_LEAF_SPINE: {
      pod.nodes_per_leaf_ = p.nodes_per_leaf();
      pod.spines_ = p.spines();
      const uint32_t leaves = n / pod.nodes_per_leaf_;
      pod.switches_ = leaves + pod.spines_;
      for (uint32_t l = 0; l < leaves; ++l)
        pod.vertex_rack_.push_back(l * pod.nodes_per_leaf_ / pod.nodes_per_rack_);
      for (uint32_t s = 0; s < pod.spines_; ++s)
        pod.vertex_rack_.push_back(middle);
      const LinkParams spine_link = LinkParams::from_config(p.spine_link());
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t leaf = n + i / pod.nodes_per_leaf_;
        pod.add_link(i, leaf, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach);
        pod.add_link(leaf, i, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach);
      }
      for (uint32_t l = 0; l < leaves; ++l) {
        for (uint32_t s = 0; s < pod.spines_; ++s) {
          const uint32_t spine = n + leaves + s;
          pod.add_link(n + l, spine, spine_link, LinkKind::kSpine, pitch, v, "spine_link",
                       p.spine_link().reach_m());
          pod.add_link(spine, n + l, spine_link, LinkKind::kSpine, pitch, v, "spine_link",
                       p.spine_link().reach_m());
        }
      }
      ports.assign(leaves, pod.nodes_per_leaf_ + pod.spines_);
      ports.insert(ports.end(), pod.spines_, leaves);
      break;
    }
    case config::POD_RING: {
      const uint32_t pairs = n == 2 ? 1 : n;
      for (uint32_t i = 0; i < pairs; ++i) {
        const uint32_t j = (i + 1) % n;
        pod.add_link(i, j, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach);
        pod.add_link(j, i, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach);
      }
      break;
    }
    case config::POD_TORUS_2D:
    case config::POD_TORUS_3D: {
      pod.dims_.assign(p.torus_dims().begin(), p.torus_dims().end());
      uint32_t stride = 1;
      for (uint32_t d = 0; d < pod.dims_.size(); ++d) {
        const uint32_t size = pod.dims_[d];
        for (uint32_t i = 0; i < n; ++i) {
          const uint32_t c = (i / stride) % size;
          if (size == 2 && c == 1) continue;  // one neighbour pair in a dimension of 2
          const uint32_t j = i - c * stride + ((c + 1) % size) * stride;
          pod.add_link(i, j, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach);
          pod.add_link(j, i, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach);
        }
        stride *= size;
      }
      break;
    }
    case config::POD_FULLY_CONNECTED: {
      for (uint32_t i = 0; i < n; ++i) {
        for (uint32_t j = 0; j < n; ++j) {
          if (i != j)
            pod.add_link(i, j, node_link, LinkKind::kNode, pitch, v, "node_link", node_reach);
        }
      }
      break;
    }
    default:
      throw std::invalid_argument("Pod: no topology");
  }
  // Every switch within its radix; one report per kind of switch.
  auto check_radix = [&](uint32_t first, uint32_t count, uint32_t needs, uint32_t radix,
                         const char* field) {
    for (uint32_t s = 0; s < count; ++s) {
      const uint32_t need = needs ? needs : ports[s];
      if (need <= radix) continue;
      const std::string msg = pod.vertex_name(first + s) + " needs " + std::to_string(need) +
                              " ports, more than its radix " + std::to_string(radix) +
                              (needs ? ": a rail takes a port per domain and the one switch a "
                                       "port per node: use switches of a higher radix"
                                     : ": use a topology with more switches (POD_LEAF_SPINE)");
      if (v == nullptr) throw std::invalid_argument(msg);
      v->error(field, msg);
      return;
    }
  };
  if (p.switch_().has_radix()) {
    check_radix(n, uint32_t(ports.size()), 0, p.switch_().radix(), "switch.radix");
  }
  if (pod.scale_out() && p.scale_out().switch_().has_radix()) {
    // Rails: one port per domain; one switch: one per node.
    const uint32_t needs =
        pod.scale_out_topology_ == config::POD_SCALE_OUT_RAILS ? n / pod.domain_nodes_ : n;
    check_radix(n + pod.switches_ - pod.scale_out_switches_, pod.scale_out_switches_, needs,
                p.scale_out().switch_().radix(), "scale_out.switch.radix");
  }
  return pod;
}

double Pod::cost_usd() const {
  double c = switch_cost_usd_ * (switches_ - scale_out_switches_) +
             scale_out_switch_cost_usd_ * scale_out_switches_;
  for (const PodLink& l : links_)
    c += l.params.port_cost_usd;
  return c;
}

FlowNetwork Pod::network() const {
  FlowNetwork net;
  for (const PodLink& l : links_) {
    const uint32_t id = net.add_link(
        l.capacity_bytes_per_s, l.latency_ps,
        l.params.energy_pj_per_bit + l.params.retimer_energy_pj_per_bit * l.params.retimers);
    // A switch's output port.
    if (l.contended_efficiency < 1) net.set_contended_efficiency(id, l.contended_efficiency);
    if (packet_bytes_ > 0) {
      // Each link's own draws, the same in every run.
      net.set_link_model(id, l.params,
                         0x706f645f6c696e6bULL ^ (uint64_t{id} * 0x9e3779b97f4a7c15ULL),
                         l.switch_latency_ps);
    }
  }
  net.set_rate_tolerance(rate_tolerance_);
  net.set_packet_level(packet_bytes_);
  for (uint32_t i = 0; i < nodes_; ++i)
    net.add_link(injection_bytes_per_s_, 0, 0);
  if (reduce_bytes_per_s_ > 0) {
    for (uint32_t i = 0; i < nodes_; ++i)
      net.add_link(reduce_bytes_per_s_, 0, 0);
  }
  return net;
}

void Pod::route(uint32_t a, uint32_t b, std::vector<uint32_t>& out) const {
  const uint32_t n = nodes_;
  // The NIC reads the node's memory itself (over PCIe): a route out of the domain does not
  // cross the collective engine's injection link.
  const bool by_nic = scale_out() && domain_of(a) != domain_of(b);
  if (!by_nic) out.push_back(injection_link(a));
  switch (topology_) {
    case config::POD_SINGLE_SWITCH: {
      if (domain_of(a) == domain_of(b)) {
        out.push_back(up_[a]);
        out.push_back(down_[b]);
        return;
      }
      out.push_back(nic_up_[a]);
      const uint32_t ra = a % domain_nodes_, rb = b % domain_nodes_;
      if (scale_out_topology_ == config::POD_SCALE_OUT_SINGLE_SWITCH || ra == rb) {
        out.push_back(nic_down_[b]);
        return;
      }
      // Rails: to the node of a's local rank in b's domain, which forwards it.
      const uint32_t proxy = b - rb + ra;
      out.push_back(nic_down_[proxy]);
      out.push_back(up_[proxy]);
      out.push_back(down_[b]);
      return;
    }
    case config::POD_LEAF_SPINE: {
      const uint32_t la = n + a / nodes_per_leaf_, lb = n + b / nodes_per_leaf_;
      out.push_back(find(a, la));
      if (la != lb) {
        const uint32_t spine = n + n / nodes_per_leaf_ + (a + b) % spines_;
        out.push_back(find(la, spine));
        out.push_back(find(spine, lb));
      }
      out.push_back(find(lb, b));
      return;
    }
    case config::POD_RING: {
      const uint32_t fwd = (b + n - a) % n;
      const bool forward = fwd <= n - fwd;
      for (uint32_t at = a; at != b;) {
        const uint32_t next = forward ? (at + 1) % n : (at + n - 1) % n;
        out.push_back(find(at, next));
        at = next;
      }
      return;
    }
    case config::POD_TORUS_2D:
    case config::POD_TORUS_3D: {
      uint32_t at = a, stride = 1;
      for (const uint32_t size : dims_) {
        const uint32_t from = (at / stride) % size, to = (b / stride) % size;
        const uint32_t fwd = (to + size - from) % size;
        const bool forward = fwd <= size - fwd;
        for (uint32_t c = from; c != to;) {
          const uint32_t nc = forward ? (c + 1) % size : (c + size - 1) % size;
          const uint32_t next = at - c * stride + nc * stride;
          out.push_back(find(at, next));
          at = next;
          c = nc;
        }
        stride *= size;
      }
      return;
    }
    case config::POD_FULLY_CONNECTED:
      out.push_back(find(a, b));
      return;
    default:
      throw std::logic_error("Pod: no topology");
  }
}

double Pod::link_idle_power_w() const {
  double w = 0;
  for (const PodLink& l : links_)
    w += l.params.static_power_w;
  return w;
}

double Pod::laser_power_w() const {
  double w = 0;
  for (const PodLink& l : links_)
    w += l.params.laser_power_w;
  return w;
}

}  // namespace tiersim
