#include "fabric/faults.h"

#include <algorithm>
#include <set>

#include "fabric/serial_link.h"
#include "models/config/node_overrides.h"
#include "models/core/registry.h"

namespace tiersim {

void validate_faults(const config::System& sys, Validator v) {
  std::set<std::string> serial_links, links, components, memories;
  for (const auto& l : sys.links()) {
    links.insert(l.name());
    if (l.has_serial()) serial_links.insert(l.name());
  }
  for (const auto& c : sys.components()) {
    components.insert(c.name());
    if (c.has_hbm() || c.has_gddr() || c.has_ddr() || c.has_sram() || c.has_cxl() || c.has_nvme()) {
      memories.insert(c.name());
    }
  }
  for (int i = 0; i < sys.faults_size(); ++i) {
    const auto& f = sys.faults(i);
    Validator fv = v.at("system.faults[" + (f.name().empty() ? std::to_string(i) : f.name()) + "]");
    fv.require("start_ps", f.has_start_ps());
    if (f.has_duration_ps() && f.start_ps() + f.duration_ps() < f.start_ps()) {
      fv.error("duration_ps", "start_ps + duration_ps overflows");
    }
    // A target may name one node of a pod ("node[3].hbm"): its own component or link (which
    // nodes exist is checked with the ranks simulated).
    // A malformed qualifier is reported once; its name is not looked up.
    bool malformed = false;
    auto plain = [&](const std::string& field, const std::string& target) {
      uint32_t node = 0;
      std::string name;
      if (node_qualified(target, &node, &name, &malformed)) {
        if (!sys.has_pod()) {
          fv.error(field, "\"" + target + "\" names a node of a pod, and there is no system.pod");
        }
        return name;
      }
      if (malformed) fv.error(field, "\"" + target + "\": a node is named node[K].NAME");
      return target;
    };
    auto check_link = [&](const std::string& field, const std::string& target) {
      const std::string name = plain(field, target);
      if (malformed) return;
      if (!links.count(name)) {
        fv.error(field, "no link named \"" + name + "\"");
      } else if (!serial_links.count(name)) {
        fv.error(field,
                 "link \"" + name + "\" has no serial model; faults apply to links with `serial`");
      }
    };
    switch (f.kind_case()) {
      case config::Fault::kLinkDown:
        check_link("link_down", f.link_down());
        break;
      case config::Fault::kLinkDegraded:
        check_link("link_degraded.link", f.link_degraded().link());
        if (!(f.link_degraded().bandwidth_fraction() > 0 &&
              f.link_degraded().bandwidth_fraction() <= 1)) {
          fv.error("link_degraded.bandwidth_fraction", "must be in (0, 1] (link_down for 0)");
        }
        break;
      case config::Fault::kDeviceOffline: {
        const std::string name = plain("device_offline", f.device_offline());
        if (malformed) break;
        if (!components.count(name)) {
          fv.error("device_offline", "no component named \"" + name + "\"");
        } else if (!memories.count(name)) {
          // Only memories refuse requests: any other component would silently stay online.
          fv.error("device_offline", "\"" + name +
                                         "\" is not a memory; device_offline applies to hbm, "
                                         "gddr, ddr, sram, cxl and nvme components");
        }
        break;
      }
      default:
        fv.error("", "fault has no kind; set link_down, link_degraded or device_offline");
    }
  }
}

void apply_link_faults(const config::System& sys, const std::string& link, LinkModel* to,
                       LinkModel* from) {
  for (const auto& f : sys.faults()) {
    double fraction = -1;
    if (f.has_link_down() && f.link_down() == link) fraction = 0;
    if (f.has_link_degraded() && f.link_degraded().link() == link) {
      fraction = f.link_degraded().bandwidth_fraction();
    }
    if (fraction < 0) continue;
    for (LinkModel* m : {to, from}) {
      if (m) m->add_outage(f.start_ps(), fault_window_end(f), fraction);
    }
  }
}

// Config validation reaches the serial-link parameters and the fault windows through these.
const FabricChecksRegistrar kFabricChecks([](const config::SerialLink& serial,
                                             Validator& v) { LinkParams::validate(serial, v); },
                                          [](const config::System& sys, Validator& v) {
                                            validate_faults(sys, v);
                                          });

}  // namespace tiersim
