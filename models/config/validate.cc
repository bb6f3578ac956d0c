// Validation of a resolved config: structure of the system (names, kinds, links, address map),
// each component kind's own checks, the workload, policy and run options, and cross-checks
// (the workload fits its home memory). All issues are collected, then located and thrown.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include <functional>

#include "models/config/loader.h"
#include "models/config/node_overrides.h"
#include "models/core/registry.h"
#include "models/core/time.h"

namespace tiersim {

namespace {

std::string gb(uint64_t bytes) {
  std::ostringstream os;
  os.precision(4);
  os << static_cast<double>(bytes) / 1e9 << " GB";
  return os.str();
}

// Kinds that serve addresses (may appear as address-map targets).
bool is_memory_kind(const std::string& kind) {
  return kind == "hbm" || kind == "gddr" || kind == "ddr" || kind == "sram" || kind == "cxl" ||
         kind == "nvme";
}

// Kinds that forward requests: they may be link targets and drive links of their own.
bool is_forwarding_kind(const std::string& kind) {
  return kind == "switch";
}

uint64_t memory_capacity(const config::Component& c) {
  if (c.has_hbm()) return c.hbm().capacity_bytes_per_stack() * c.hbm().stack_count();
  if (c.has_gddr()) return c.gddr().capacity_bytes_per_device() * c.gddr().device_count();
  if (c.has_ddr()) return c.ddr().capacity_bytes_per_channel() * c.ddr().channels();
  if (c.has_sram()) return c.sram().capacity_bytes();
  if (c.has_cxl()) return c.cxl().media().capacity_bytes_per_channel() * c.cxl().media().channels();
  if (c.has_nvme()) return c.nvme().capacity_bytes();
  return 0;
}

using ByName = std::map<std::string, const config::Component*>;

// Components: named uniquely, each of one implemented kind, checked by its kind.
ByName validate_components(const config::Config& cfg, Validator& v) {
  const auto& sys = cfg.system();
  ByName by_name;
  if (sys.components_size() == 0) v.error("system.components", "the system has no components");
  for (int i = 0; i < sys.components_size(); ++i) {
    const auto& c = sys.components(i);
    const std::string at =
        "system.components[" + (c.name().empty() ? std::to_string(i) : c.name()) + "]";
    Validator cv = v.at(at);
    if (!cv.non_empty("name", c.has_name(), c.name())) continue;
    if (by_name.count(c.name())) cv.error("name", "duplicate component name");
    by_name[c.name()] = &c;
    const std::string kind = component_kind_name(c);
    if (kind.empty()) {
      std::string kinds;
      for (const auto& k : component_kinds())
        kinds += (kinds.empty() ? "" : ", ") + k.config_name;
      cv.error("", "component has no kind; set one of: " + kinds);
      continue;
    }
    const ComponentKind* k = find_component_kind(kind);
    if (k == nullptr) {
      cv.error(kind, "component kind \"" + kind + "\" is not implemented");
      continue;
    }
    if (c.has_fidelity() && c.fidelity() == config::DETAILED && !k->detailed_level) {
      cv.error("fidelity", "\"" + kind + "\" has no detailed level (only FAST)");
    }
    Validator kv = cv.at(kind);
    k->validate(cfg, c, kv);
  }

  return by_name;
}

// Links: named uniquely, between components, to memories or switches, serial models driven by
// DMA engines or switches, at most one per pair, and no cycle.
void validate_links(const config::System& sys, const ByName& by_name, Validator& v) {
  std::set<std::string> link_names;
  std::set<std::pair<std::string, std::string>> link_pairs;
  for (int i = 0; i < sys.links_size(); ++i) {
    const auto& l = sys.links(i);
    Validator lv = v.at("system.links[" + (l.name().empty() ? std::to_string(i) : l.name()) + "]");
    if (lv.non_empty("name", l.has_name(), l.name()) && !link_names.insert(l.name()).second) {
      lv.error("name", "duplicate link name");
    }
    for (const char* end : {"from", "to"}) {
      const std::string& ref = std::string(end) == "from" ? l.from() : l.to();
      const bool has = std::string(end) == "from" ? l.has_from() : l.has_to();
      if (lv.non_empty(end, has, ref) && !by_name.count(ref)) {
        lv.error(end, "no component named \"" + ref + "\"");
      }
    }
    if (by_name.count(l.to()) && !is_memory_kind(component_kind_name(*by_name.at(l.to()))) &&
        !is_forwarding_kind(component_kind_name(*by_name.at(l.to())))) {
      lv.error("to", "\"" + l.to() + "\" is not a memory or a switch and cannot be a link target");
    }
    lv.require("latency_ps", l.has_latency_ps());
    if (l.has_serial()) {
      Validator sv = lv.at("serial");
      if (fabric_checks().serial_link) fabric_checks().serial_link(l.serial(), sv);
      const std::string from_kind =
          by_name.count(l.from()) ? component_kind_name(*by_name.at(l.from())) : "";
      if (!from_kind.empty() && from_kind != "dma" && !is_forwarding_kind(from_kind)) {
        sv.error("", "only DMA engines and switches drive a serial link model (\"" + l.from() +
                         "\" is a " + from_kind + ")");
      }
    }
    if (!link_pairs.insert({l.from(), l.to()}).second) {
      lv.error("", "a second link from \"" + l.from() + "\" to \"" + l.to() + "\"");
    }
  }

  // Requests follow links from initiators toward memories: the link graph has no cycle (so
  // every route, including detours around a down link, ends).
  {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& l : sys.links())
      out[l.from()].push_back(l.to());
    std::map<std::string, int> state;  // 1 on the stack, 2 done
    std::string cycle_at;
    std::function<bool(const std::string&)> visit = [&](const std::string& n) {
      state[n] = 1;
      for (const auto& m : out[n]) {
        if (state[m] == 1 || (state[m] == 0 && visit(m))) {
          if (cycle_at.empty()) cycle_at = n;
          return true;
        }
      }
      state[n] = 2;
      return false;
    };
    for (const auto& l : sys.links()) {
      if (state[l.from()] == 0 && visit(l.from())) break;
    }
    if (!cycle_at.empty()) {
      v.error("system.links", "the links form a cycle through \"" + cycle_at +
                                  "\" (requests flow from initiators toward memories)");
    }
  }
  if (fabric_checks().faults) fabric_checks().faults(sys, v);
}

// The address map: targets exist and are memories, ranges do not overlap, sizes fit. Returns
// the bytes mapped per memory.
std::map<std::string, uint64_t> validate_address_map(const config::System& sys,
                                                     const ByName& by_name, Validator& v) {
  // Address map: targets exist and are memories, ranges do not overlap, sizes fit.
  std::map<std::string, uint64_t> mapped;
  std::vector<std::pair<uint64_t, std::pair<uint64_t, std::string>>> spans;
  for (int i = 0; i < sys.address_map_size(); ++i) {
    const auto& r = sys.address_map(i);
    const std::string at =
        "system.address_map[" + (r.name().empty() ? std::to_string(i) : r.name()) + "]";
    Validator rv = v.at(at);
    rv.non_empty("name", r.has_name(), r.name());
    if (!rv.non_empty("target", r.has_target(), r.target())) continue;
    auto it = by_name.find(r.target());
    if (it == by_name.end()) {
      rv.error("target", "no component named \"" + r.target() + "\"");
      continue;
    }
    if (!is_memory_kind(component_kind_name(*it->second))) {
      rv.error("target", "\"" + r.target() + "\" is not a memory");
      continue;
    }
    rv.require("base_bytes", r.has_base_bytes());
    if (!rv.positive("size_bytes", r.has_size_bytes(), static_cast<double>(r.size_bytes()))) {
      continue;
    }
    if (r.base_bytes() + r.size_bytes() < r.base_bytes()) {
      rv.error("size_bytes", "range wraps around the 64-bit address space");
      continue;
    }
    mapped[r.target()] += r.size_bytes();
    if (mapped[r.target()] > memory_capacity(*it->second)) {
      rv.error("size_bytes", "ranges mapped to \"" + r.target() + "\" total " +
                                 gb(mapped[r.target()]) + ", more than its capacity of " +
                                 gb(memory_capacity(*it->second)));
    }
    for (const auto& s : spans) {
      const uint64_t b = s.first, e = s.first + s.second.first;
      if (r.base_bytes() < e && b < r.base_bytes() + r.size_bytes()) {
        rv.error("base_bytes", "overlaps address range \"" + s.second.second + "\"");
      }
    }
    spans.push_back({r.base_bytes(), {r.size_bytes(), r.name()}});
  }
  return mapped;
}

void validate_system(const config::Config& cfg, Validator v) {
  const auto& sys = cfg.system();
  const ByName by_name = validate_components(cfg, v);
  validate_links(sys, by_name, v);
  const std::map<std::string, uint64_t> mapped = validate_address_map(sys, by_name, v);
  // Every memory and switch is reached by a link; every memory has a range.
  std::set<std::string> linked;
  for (const auto& l : sys.links())
    linked.insert(l.to());
  for (const auto& [name, c] : by_name) {
    const std::string kind = component_kind_name(*c);
    if ((is_memory_kind(kind) || is_forwarding_kind(kind)) && !linked.count(name)) {
      v.error("system.components[" + name + "]",
              "no link leads to \"" + name + "\" (add one to system.links)");
    }
  }
  for (const auto& [name, c] : by_name) {
    if (is_memory_kind(component_kind_name(*c)) && !mapped.count(name)) {
      v.error("system.components[" + name + "]",
              "memory \"" + name + "\" has no range in system.address_map");
    }
  }
}

void validate_run(const config::Config& cfg, Validator v) {
  const auto& run = cfg.run();
  v.require("run.seed", run.has_seed());
  if (run.fidelity() == config::FIDELITY_UNSPECIFIED) {
    v.error("run.fidelity", "required field is not set (FAST or DETAILED)");
  }
  if (run.op_records() == config::OP_RECORDS_UNSPECIFIED) {
    v.error("run.op_records",
            "required field is not set (OP_RECORDS_ALL, OP_RECORDS_FIRST_STEP or "
            "OP_RECORDS_NONE)");
  }
  v.require("run.max_sim_time_ps", run.has_max_sim_time_ps());
  v.require("run.stats_interval_ps", run.has_stats_interval_ps());
  if (run.has_max_wall_time_s() && run.max_wall_time_s() < 0) {
    v.error("run.max_wall_time_s", "must be 0 (no limit) or positive");
  }
  if (run.has_detailed_sampling()) {
    const auto& ds = run.detailed_sampling();
    const std::string p = "run.detailed_sampling";
    if (v.require(p + ".window_requests", ds.has_window_requests()) && ds.window_requests() == 0) {
      v.error(p + ".window_requests", "must be at least 1");
    }
    if (v.require(p + ".period_requests", ds.has_period_requests()) &&
        uint64_t{ds.period_requests()} <
            uint64_t{ds.window_requests()} + uint64_t{ds.warmup_requests()}) {
      v.error(p + ".period_requests",
              "must be at least warmup_requests + window_requests (" +
                  std::to_string(uint64_t{ds.window_requests()} + ds.warmup_requests()) + ")");
    }
    bool detailed = false;
    for (const auto& c : cfg.system().components()) {
      const config::Fidelity f = c.has_fidelity() ? c.fidelity() : run.fidelity();
      detailed = detailed || (c.has_hbm() && f == config::DETAILED);
    }
    if (!detailed) {
      v.error(p, "no hbm component runs at DETAILED, so nothing would be sampled");
    }
  }
  if (run.has_fast_forward()) {
    const auto& ff = run.fast_forward();
    const std::string p = "run.fast_forward";
    if (v.require(p + ".every_steps", ff.has_every_steps()) && ff.every_steps() == 0) {
      v.error(p + ".every_steps", "must be at least 1 (1: every step simulated)");
    }
    const bool serving = cfg.workload().has_serving();
    if (serving && ff.has_warmup_steps() && ff.warmup_steps() < 8) {
      v.error(p + ".warmup_steps",
              "a serving run's passes are predicted from the simulated ones: simulate at least "
              "the first 8 (default 32)");
    } else if (ff.has_warmup_steps() && ff.warmup_steps() == 0) {
      v.error(p + ".warmup_steps", "must be at least 1 (the first step is always simulated)");
    }
    // The interpolation assumes a step's cost changes smoothly with its index: nothing whose
    // state evolves with simulated time or with the steps' accesses.
    auto refuse = [&](const std::string& path, const std::string& what) {
      v.error(path, what +
                        " changes from step to step in ways the skipped steps would miss; "
                        "remove run.fast_forward or " +
                        what);
    };
    if (ff.has_neighbour_radius()) {
      if (!serving) {
        v.error(p + ".neighbour_radius", "applies to a serving workload's predicted passes only");
      } else {
        v.positive(p + ".neighbour_radius", true, ff.neighbour_radius());
      }
    }
    if (!cfg.workload().has_decode() && !serving) {
      v.error(p,
              "fast-forward needs a decode workload (a static batch whose steps repeat) or a "
              "serving workload (whose passes it predicts)");
    }
    if (serving && cfg.policy().has_thermal_admission()) {
      refuse("policy.thermal_admission", "a thermal admission gate");
    }
    if (cfg.tenancy().tenants_size() > 0) refuse("tenancy.tenants", "tenancy");
    if (cfg.policy().placement() == config::ORCHESTRATED) {
      refuse("policy.placement", "a movement controller (ORCHESTRATED placement)");
    }
    if (run.stats_interval_ps() > 0) {
      v.error("run.stats_interval_ps",
              "a stats time series would have a gap for every skipped step; set 0 with "
              "run.fast_forward");
    }
    if (run.max_sim_time_ps() > 0 && !serving) {
      v.error("run.max_sim_time_ps",
              "a simulated-time limit would stop the simulated steps' clock, not the run's "
              "(the skipped steps' time is added after the run); set 0 with run.fast_forward");
    }
    if (cfg.system().faults_size() > 0) refuse("system.faults", "a fault schedule");
    for (int i = 0; i < cfg.system().components_size(); ++i) {
      const auto& c = cfg.system().components(i);
      if (c.has_hbm() && c.hbm().has_thermal()) {
        refuse("system.components[" + (c.name().empty() ? std::to_string(i) : c.name()) +
                   "].hbm.thermal",
               "an hbm thermal model");
      }
    }
  }
  if (cfg.policy().placement() == config::PLACEMENT_POLICY_UNSPECIFIED) {
    v.error("policy.placement", "required field is not set (STREAM_ALL or ORCHESTRATED)");
  }
}

// The bound on a time of the config (a latency, an interval): past it, sums of times could pass
// the simulation's 2^62 ps. (DRAM timings in cycles are bounded by the device's validation.)
constexpr uint64_t kMaxConfigTimePs = uint64_t{1} << 56;

// Reports, at its canonical path, every non-finite floating-point value under `msg` (a text file
// may say inf or nan; no physical constant of a config is infinite) and every time past the
// bound above.
void check_numbers(const google::protobuf::Message& msg, const std::string& prefix, Validator& v) {
  namespace pb = google::protobuf;
  const pb::Reflection* r = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(msg, &fields);
  for (const auto* f : fields) {
    const std::string base = prefix.empty() ? "" : prefix + ".";
    const int n = f->is_repeated() ? r->FieldSize(msg, f) : 1;
    for (int i = 0; i < n; ++i) {
      const std::string path =
          base + (f->is_repeated() ? element_path(msg, f, i) : std::string(f->name()));
      double value = 0;
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_DOUBLE:
          value = f->is_repeated() ? r->GetRepeatedDouble(msg, f, i) : r->GetDouble(msg, f);
          break;
        case pb::FieldDescriptor::CPPTYPE_FLOAT:
          value = f->is_repeated() ? r->GetRepeatedFloat(msg, f, i) : r->GetFloat(msg, f);
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT64:
        case pb::FieldDescriptor::CPPTYPE_UINT32: {
          const uint64_t u =
              f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64
                  ? (f->is_repeated() ? r->GetRepeatedUInt64(msg, f, i) : r->GetUInt64(msg, f))
                  : (f->is_repeated() ? r->GetRepeatedUInt32(msg, f, i) : r->GetUInt32(msg, f));
          const std::string& name = f->name();
          const bool is_ps = name.size() > 3 && name.compare(name.size() - 3, 3, "_ps") == 0;
          if (is_ps && name == "max_sim_time_ps" && u > kMaxSimTimePs) {
            v.root(path).error("", "at most 2^62 ps (about 53 days), got " + std::to_string(u));
          } else if (is_ps && name != "max_sim_time_ps" && u > kMaxConfigTimePs) {
            v.root(path).error("", "at most 2^56 ps (about 20 hours), got " + std::to_string(u));
          }
          continue;
        }
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          check_numbers(f->is_repeated() ? r->GetRepeatedMessage(msg, f, i) : r->GetMessage(msg, f),
                        path, v);
          continue;
        default:
          continue;
      }
      if (!std::isfinite(value)) {
        v.root(path).error("", "expected a finite number, got " + std::to_string(value));
      }
    }
  }
}

// Tenants (tenancy): names and scheduling fields; each tenant's workload as its own config (the
// system's checks against it, the engine's dtypes, the primary's tensor-parallel degree); and the
// policy parts that follow one workload's steps, which do not run with tenants yet.
void validate_tenancy(const config::Config& cfg, Validator v) {
  const auto& t = cfg.tenancy();
  Validator tv = v.at("tenancy");
  if (t.tenants_size() == 0) {
    if (t.has_primary_name() || t.has_primary_priority() || t.has_primary_share() ||
        t.end() != config::TENANCY_END_UNSPECIFIED) {
      tv.error("", "has no effect without tenants (tenancy.tenants)");
    }
    return;
  }
  // Names appear in summary items (tenant_<name>_<item>): no '_', so that no two tenants'
  // items can collide.
  auto good_name = [](const std::string& n) {
    if (n.empty()) return false;
    for (char ch : n) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') return false;
    }
    return true;
  };
  const std::string primary = t.has_primary_name() ? t.primary_name() : "primary";
  if (t.has_primary_name() && !good_name(primary)) {
    tv.error("primary_name", "letters, digits and '-' only, not empty");
  }
  // Tenants are transformer workloads: decode or serving.
  auto scenario_ok = [](const config::Workload& w) { return w.has_decode() || w.has_serving(); };
  if (!scenario_ok(cfg.workload()) && !workload_kind_name(cfg.workload()).empty()) {
    v.at("workload")
        .error(workload_kind_name(cfg.workload()),
               "not with tenancy: tenants run decode or serving workloads");
  }
  if (t.has_primary_share()) tv.positive("primary_share", true, t.primary_share());
  const uint32_t tp = std::max<uint32_t>(1, cfg.workload().parallelism().tensor_parallel());
  std::set<std::string> names{primary};
  const auto* field = t.GetDescriptor()->FindFieldByName("tenants");
  for (int i = 0; i < t.tenants_size(); ++i) {
    const config::Tenant& ten = t.tenants(i);
    Validator ev = tv.at(element_path(t, field, i));
    if (ten.base_size() > 0) {
      ev.error("base",
               "resolved when the config files load: name base files in a config file, "
               "not with --set");
    }
    if (!good_name(ten.name())) {
      ev.error("name", "required: letters, digits and '-' only");
    } else if (!names.insert(ten.name()).second) {
      ev.error("name",
               "\"" + ten.name() + "\" names another tenant (the primary is \"" + primary + "\")");
    }
    if (ten.has_share()) ev.positive("share", true, ten.share());
    const std::string wk = workload_kind_name(ten.workload());
    const WorkloadKind* kind = wk.empty() ? nullptr : find_workload_kind(wk);
    if (kind == nullptr) {
      ev.error("workload", "no workload scenario (decode or serving)");
      continue;
    }
    if (!scenario_ok(ten.workload())) {
      ev.error("workload." + wk, "not with tenancy: tenants run decode or serving workloads");
      continue;
    }
    config::Config own = cfg;
    own.clear_tenancy();
    *own.mutable_workload() = ten.workload();
    kind->validate(own, ev);
    const uint32_t own_tp = std::max<uint32_t>(1, ten.workload().parallelism().tensor_parallel());
    if (own_tp != tp) {
      ev.error("workload.parallelism.tensor_parallel",
               "must equal the primary's (" + std::to_string(tp) +
                   "): the engine has one collective model");
    }
    if (ten.workload().parallelism().expert_parallel() > 1) {
      ev.error("workload.parallelism.expert_parallel",
               "not with tenancy (one workload spans the ranks)");
    }
    if (ten.workload().parallelism().pipeline_parallel() > 1 ||
        ten.workload().parallelism().has_pipeline_micro_batches()) {
      ev.error(ten.workload().parallelism().pipeline_parallel() > 1
                   ? "workload.parallelism.pipeline_parallel"
                   : "workload.parallelism.pipeline_micro_batches",
               "not with tenancy (a pipeline spans the ranks)");
    }
    {
      const auto& ts = ten.workload().serving();
      const char* field =
          ten.workload().parallelism().data_parallel() > 1 ? "workload.parallelism.data_parallel"
          : ts.replica_routing() != config::REPLICA_ROUTING_UNSPECIFIED
              ? "workload.serving.replica_routing"
          : ts.has_router_latency_ps()       ? "workload.serving.router_latency_ps"
          : ts.has_router_load_interval_ps() ? "workload.serving.router_load_interval_ps"
          : ts.has_disaggregation()          ? "workload.serving.disaggregation"
                                             : nullptr;
      if (field != nullptr) ev.error(field, "not with tenancy (replicas span the pod's nodes)");
    }
    // The engine computes in the tenant's dtypes.
    const auto& w = ten.workload();
    std::vector<std::pair<config::Dtype, std::string>> dtypes;
    dtypes.push_back({w.model().activation_dtype(), "workload.model.activation_dtype"});
    if (w.model().gemm_dtype() != config::INT4) {
      dtypes.push_back({w.model().gemm_dtype(), "workload.model.gemm_dtype"});
    }
    if (w.decode().has_speculative()) {
      const auto& draft = w.decode().speculative().draft();
      dtypes.push_back(
          {draft.activation_dtype(), "workload.decode.speculative.draft.activation_dtype"});
      if (draft.gemm_dtype() != config::INT4) {
        dtypes.push_back({draft.gemm_dtype(), "workload.decode.speculative.draft.gemm_dtype"});
      }
      if (cfg.software().overlap_host_step()) {
        ev.error("workload.decode.speculative",
                 "software.overlap_host_step cannot overlap the host's step work with "
                 "speculative decoding (the next step depends on which drafted tokens a step "
                 "accepts)");
      }
    }
    for (const auto& c : cfg.system().components()) {
      if (!c.has_compute()) continue;
      std::set<int> peaks;
      for (const auto& p : c.compute().peak())
        peaks.insert(p.dtype());
      for (const auto& [d, path] : dtypes) {
        if (d != config::DTYPE_UNSPECIFIED && !peaks.count(d)) {
          ev.error(path, "\"" + c.name() + "\" has no peak FLOP/s for " + config::Dtype_Name(d));
        }
      }
    }
  }
  // Policy parts whose state follows one workload's steps.
  const auto& pol = cfg.policy();
  auto refuse = [&](const std::string& path, const std::string& what) {
    v.root(path).error("", what +
                               " does not run with tenancy yet (its state follows one "
                               "workload's steps)");
  };
  if (pol.has_thermal_admission()) refuse("policy.thermal_admission", "thermal admission");
  if (pol.placement() == config::ORCHESTRATED) {
    const auto& o = pol.orchestration();
    const std::string op = "policy.orchestration.";
    if (o.prefetch_layers() > 0) refuse(op + "prefetch_layers", "layer-ahead prefetch");
    if (o.replacement() != config::REPLACEMENT_UNSPECIFIED)
      refuse(op + "replacement", "a page cache");
    if (o.has_context_regions()) refuse(op + "context_regions", "context regions");
    if (o.object_cache().prefetch_layers() > 0) {
      refuse(op + "object_cache.prefetch_layers", "an object cache's prefetch");
    }
    if (o.kv_restore() != config::KV_RESTORE_UNSPECIFIED &&
        o.kv_restore() != config::KV_RESTORE_TRANSFER) {
      refuse(op + "kv_restore", "recompute-vs-transfer");
    }
    if (o.has_resident_precision()) refuse(op + "resident_precision", "resident precision");
    if (o.has_dpu_buffer()) refuse(op + "dpu_buffer", "a DPU buffer");
    if (o.wired().emit_from_intents()) {
      refuse(op + "wired.emit_from_intents", "a program emitted from intents");
    }
  }
}

// The workload scenario, and the home memory's capacity for it (`issues`: the sink `v` writes
// to, so the capacity check runs only on an otherwise valid config).
void validate_workload(const config::Config& cfg, std::vector<ConfigIssue>& issues, Validator& v) {
  const std::string wk = workload_kind_name(cfg.workload());
  const WorkloadKind* kind = wk.empty() ? nullptr : find_workload_kind(wk);
  if (kind == nullptr) {
    std::string kinds;
    for (const auto& k : workload_kinds())
      kinds += (kinds.empty() ? "" : ", ") + k.config_name;
    v.error("workload", wk.empty() ? "no workload scenario; set one of: " + kinds
                                   : "workload scenario \"" + wk + "\" is not implemented");
  } else {
    const size_t before = issues.size();
    kind->validate(cfg, v);
    // Capacity: only meaningful when the system and workload are otherwise valid.
    if (issues.size() == before && issues.empty()) {
      for (const auto& c : cfg.system().components()) {
        if (!c.has_compute()) continue;
        const std::string& home = c.compute().weights_memory();
        uint64_t capacity = 0;
        for (const auto& r : cfg.system().address_map()) {
          if (r.target() == home) capacity += r.size_bytes();
        }
        uint64_t need = kind->footprint_bytes(cfg);
        for (const auto& ten : cfg.tenancy().tenants()) {
          config::Config own = cfg;
          own.clear_tenancy();
          *own.mutable_workload() = ten.workload();
          need += find_workload_kind(workload_kind_name(ten.workload()))->footprint_bytes(own);
        }
        if (need > capacity) {
          v.error("workload", "needs " + gb(need) + " (weights and peak KV cache" +
                                  (cfg.tenancy().tenants_size() > 0 ? ", every tenant's" : "") +
                                  ") in \"" + home + "\", which has " + gb(capacity) + " mapped");
        }
      }
    }
  }
}

// Every-rank simulation and the node overrides (models/config/node_overrides.h).
void validate_ranks(const config::Config& cfg, Validator v) {
  const bool every = simulates_every_rank(cfg);
  const auto& par = cfg.workload().parallelism();
  const std::string p = "workload.parallelism.simulate_ranks";
  // Data-parallel replicas of several tensor-parallel ranks (simulated as one).
  const bool replica_ranks = par.data_parallel() > 1 && par.tensor_parallel() > 1;
  if (every) {
    if (!cfg.system().has_pod()) v.error(p, "every rank simulated needs system.pod");
    if (par.tensor_parallel() < 2 && par.expert_parallel() < 2 && par.pipeline_parallel() < 2 &&
        par.data_parallel() < 2) {
      v.error(p,
              "every rank simulated needs tensor_parallel, expert_parallel, pipeline_parallel or "
              "data_parallel > 1 (the ranks it simulates)");
    }
    if (par.data_parallel() > 1) {
      if (!cfg.workload().has_serving()) {
        v.error("workload.parallelism.data_parallel",
                "data-parallel replicas serve requests: a serving workload");
      }
    } else if (!cfg.workload().has_decode()) {
      v.error(p, "every rank simulated runs a decode workload (or serving with data_parallel)");
    }
    if (cfg.tenancy().tenants_size() > 0) v.error(p, "every rank simulated runs without tenancy");
    if (cfg.run().has_fast_forward() && par.data_parallel() < 2) {
      v.error(p,
              "every rank simulated runs without run.fast_forward (but for data-parallel "
              "serving replicas)");
    }
    if (cfg.run().stats_interval_ps() > 0) {
      v.error("run.stats_interval_ps", "every rank simulated samples stats only at the end (0)");
    }
    if (cfg.policy().placement() == config::ORCHESTRATED) {
      v.error(p, "every rank simulated runs STREAM_ALL placement (not yet a movement controller)");
    }
    if (cfg.system().pod().memory_nodes_size() > 0) {
      v.error(p, "every rank simulated runs without pod memory nodes (not yet)");
    }
  }
  if (par.data_parallel() > 1 && !every) {
    v.error("workload.parallelism.data_parallel",
            "replicas run with every rank simulated (simulate_ranks: SIMULATE_EVERY_RANK)");
  }
  if (replica_ranks && par.has_merge_identical_ranks() && !par.merge_identical_ranks()) {
    v.error("workload.parallelism.merge_identical_ranks",
            "a replica's tensor-parallel ranks are simulated as one: leave it unset or true");
  }
  {
    const auto& s = cfg.workload().serving();
    const std::pair<bool, const char*> router_fields[] = {
        {s.replica_routing() != config::REPLICA_ROUTING_UNSPECIFIED, "replica_routing"},
        {s.has_router_latency_ps(), "router_latency_ps"},
        {s.has_router_load_interval_ps(), "router_load_interval_ps"},
        {s.has_disaggregation(), "disaggregation"}};
    for (const auto& [set, field] : router_fields) {
      if (set && par.data_parallel() < 2) {
        v.error(std::string("workload.serving.") + field,
                "needs workload.parallelism.data_parallel > 1");
      }
    }
    if (s.router_latency_ps() > kMaxSimTimePs / 4) {
      v.error("workload.serving.router_latency_ps", "at most 2^60 ps");
    }
    if (s.router_load_interval_ps() > kMaxSimTimePs / 4) {
      v.error("workload.serving.router_load_interval_ps", "at most 2^60 ps");
    } else if (s.has_router_load_interval_ps() && par.data_parallel() > 1 &&
               s.replica_routing() != config::ROUTE_LEAST_KV_USAGE &&
               s.disaggregation().decode_routing() != config::ROUTE_LEAST_KV_USAGE) {
      v.error("workload.serving.router_load_interval_ps",
              "only ROUTE_LEAST_KV_USAGE routes on the KV use it refreshes (outstanding requests "
              "are the front end's own count)");
    }
    if (s.has_disaggregation() && par.data_parallel() > 1) {
      const auto& d = s.disaggregation();
      const std::string dp = "workload.serving.disaggregation.";
      if (!d.has_prefill_replicas()) {
        v.error(dp + "prefill_replicas", "required: how many of the replicas only prefill");
      } else if (d.prefill_replicas() < 1 || d.prefill_replicas() >= par.data_parallel()) {
        v.error(dp + "prefill_replicas", "must lie in [1, data_parallel - 1] (" +
                                             std::to_string(par.data_parallel() - 1) +
                                             "): some replicas prefill, the others decode");
      }
      if (d.kv_transfer_latency_ps() > kMaxSimTimePs / 4) {
        v.error(dp + "kv_transfer_latency_ps", "at most 2^60 ps");
      }
      if (!(cfg.system().scale_up().rank_bandwidth_bytes_per_s() > 0)) {
        // The KV crosses the pod: a rank injects at this rate.
        v.error("system.scale_up.rank_bandwidth_bytes_per_s",
                "required with workload.serving.disaggregation (each rank's injection rate into "
                "the pod, which the KV transfers cross)");
      }
    }
  }
  if (par.data_parallel() > 1 && cfg.policy().has_thermal_admission()) {
    // Each replica would have its own gate, and the summary reports one replica's figures.
    v.error("policy.thermal_admission", "not with data-parallel replicas (not yet)");
  }
  if (par.pipeline_parallel() > 1 && !every) {
    v.error("workload.parallelism.pipeline_parallel",
            "pipeline stages run with every rank simulated (simulate_ranks: SIMULATE_EVERY_RANK)");
  }
  if (const std::string why = ranks_never_identical(cfg); every && replica_ranks && !why.empty() &&
                                                          par.expert_parallel() < 2 &&
                                                          par.pipeline_parallel() < 2) {
    // (Only random jitter is left to make ranks differ: replicas of expert ranks or stages are
    // refused with data_parallel.)
    v.error("software.kernel_jitter",
            why +
                ", but a data-parallel replica's tensor-parallel ranks are simulated as one: "
                "use a fixed jitter (or none), or tensor_parallel 1");
  } else if (const std::string why = ranks_never_identical(cfg); every && !why.empty() &&
                                                                 par.has_merge_identical_ranks() &&
                                                                 par.merge_identical_ranks()) {
    v.error("workload.parallelism.merge_identical_ranks", why + ": leave it unset or false");
  }
  if (!every && par.has_merge_identical_ranks()) {
    v.error("workload.parallelism.merge_identical_ranks",
            "applies only with simulate_ranks: SIMULATE_EVERY_RANK");
  }
  // Faults naming one node: every rank simulated, a node among them; a data-parallel replica's
  // ranks (simulated as one) alike.
  for (int i = 0; i < cfg.system().faults_size(); ++i) {
    const auto& f = cfg.system().faults(i);
    const std::string* target = fault_target(f);
    uint32_t node = 0;
    std::string name;
    if (target == nullptr || !node_qualified(*target, &node, &name)) continue;
    const std::string at =
        "system.faults[" + (f.name().empty() ? std::to_string(i) : f.name()) + "]";
    const char* field = f.has_link_down()       ? "link_down"
                        : f.has_link_degraded() ? "link_degraded.link"
                                                : "device_offline";
    if (!every) {
      v.root(at).error(field, "a fault on one node (\"" + *target +
                                  "\") needs every rank simulated (workload.parallelism."
                                  "simulate_ranks: SIMULATE_EVERY_RANK)");
    } else if (node >= simulated_ranks(cfg)) {
      v.root(at).error(field, "node " + std::to_string(node) +
                                  " is not one of the simulated ranks node[0 .. " +
                                  std::to_string(simulated_ranks(cfg) - 1) + "]");
    } else if (replica_ranks) {
      const uint32_t tp = par.tensor_parallel(), first = node / tp * tp;
      const config::Config own = node_config(cfg, node);
      for (uint32_t m = first; m < first + tp; ++m) {
        if (m != node && !same_node_config(node_config(cfg, m), own)) {
          v.root(at).error(field, "node " + std::to_string(node) + " is in replica " +
                                      std::to_string(node / tp) +
                                      ", whose ranks are simulated as one: give node " +
                                      std::to_string(m) + " the same fault");
          break;
        }
      }
    }
  }
  const auto& overrides = cfg.system().pod().node_overrides();
  if (overrides.empty()) return;
  if (!every) {
    v.error("system.pod.node_overrides",
            "node overrides need every rank simulated (workload.parallelism.simulate_ranks: "
            "SIMULATE_EVERY_RANK)");
    return;
  }
  const uint32_t ranks = simulated_ranks(cfg);
  std::set<std::string> names;
  std::map<uint32_t, std::string> owner;
  for (int i = 0; i < overrides.size(); ++i) {
    const auto& o = overrides[i];
    const std::string at =
        "system.pod.node_overrides[" + (o.name().empty() ? std::to_string(i) : o.name()) + "]";
    Validator ov = v.root(at);
    if (!ov.non_empty("name", o.has_name(), o.name())) continue;
    if (!names.insert(o.name()).second) ov.error("name", "duplicate override name");
    if (o.nodes().empty()) ov.error("nodes", "names no node");
    for (uint32_t n : o.nodes()) {
      if (n >= ranks) {
        ov.error("nodes", "node " + std::to_string(n) +
                              " is not one of the simulated ranks node[0 .. " +
                              std::to_string(ranks - 1) + "]");
      } else if (!owner.emplace(n, o.name()).second && owner[n] != o.name()) {
        ov.error("nodes",
                 "node " + std::to_string(n) + " is also in override \"" + owner[n] + "\"");
      }
    }
    if (const uint32_t dp = par.data_parallel(), tp = std::max(1u, par.tensor_parallel());
        dp > 1 && tp > 1) {
      // A replica's ranks are simulated as one: an override covers whole replicas.
      for (uint32_t n : o.nodes()) {
        const uint32_t first = n / tp * tp;
        for (uint32_t m = first; m < first + tp && n < ranks; ++m) {
          if (std::find(o.nodes().begin(), o.nodes().end(), m) == o.nodes().end()) {
            ov.error("nodes", "node " + std::to_string(n) + " is in replica " +
                                  std::to_string(n / tp) + " (node[" + std::to_string(first) +
                                  " .. " + std::to_string(first + tp - 1) +
                                  "]), whose ranks are simulated as one: name all of them "
                                  "(missing node " +
                                  std::to_string(m) + ")");
            break;
          }
        }
      }
    }
    for (int j = 0; j < o.system().faults_size(); ++j) {
      const auto& f = o.system().faults(j);
      const std::string* target = fault_target(f);
      uint32_t k = 0;
      std::string plain;
      if (target != nullptr && node_qualified(*target, &k, &plain)) {
        ov.error("system.faults[" + (f.name().empty() ? std::to_string(j) : f.name()) + "]",
                 "an override's faults strike its own nodes: name the component or link alone (\"" +
                     plain + "\"), or put the fault in system.faults");
      }
    }
    if (o.system().has_pod() || o.system().has_scale_up() || o.system().has_name()) {
      ov.error("system", "an override may not set pod, scale_up or name (the pod is shared)");
    }
  }
  // Each overridden node's config, checked as a config of its own (its system, run settings,
  // workload and capacity); what the template's own checks report is not repeated.
  std::vector<ConfigIssue> template_issues;
  {
    Validator tv(template_issues);
    validate_system(cfg, tv);
    validate_run(cfg, tv);
    validate_workload(cfg, template_issues, tv);
  }
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& i : template_issues)
    seen.emplace(i.path, i.message);
  for (const auto& o : overrides) {
    if (o.name().empty() || o.nodes().empty() || o.nodes(0) >= ranks) continue;
    const config::Config node = node_config(cfg, o.nodes(0));
    std::vector<ConfigIssue> node_issues;
    Validator nv(node_issues);
    validate_system(node, nv);
    validate_run(node, nv);
    validate_workload(node, node_issues, nv);
    for (auto& issue : node_issues) {
      // The override's own kernel_jitter stands for the node's software.kernel_jitter (reported
      // even when the template's has the same fault).
      const std::string jitter = "software.kernel_jitter";
      const bool own_jitter =
          o.has_kernel_jitter() && issue.path.compare(0, jitter.size(), jitter) == 0;
      if (!own_jitter && seen.count({issue.path, issue.message})) continue;
      const std::string path =
          own_jitter ? issue.path.substr(std::string("software.").size()) : issue.path;
      v.root("system.pod.node_overrides[" + o.name() + "]").error(path, issue.message);
    }
  }
}

}  // namespace

void validate_config(const LoadedConfig& loaded, ConfigScope scope) {
  const config::Config& cfg = loaded.config;
  std::vector<ConfigIssue> issues;
  Validator v(issues);
  check_numbers(cfg, "", v);
  if (!issues.empty()) {
    // Later checks compare these values; report the non-finite ones alone.
    for (auto& i : issues)
      if (i.where.file.empty()) i.where = loaded.locate(i.path);
    throw ConfigError(issues);
  }
  validate_system(cfg, v);
  if (scope == ConfigScope::kSystem) {
    if (issues.empty()) return;
    for (auto& i : issues)
      if (i.where.file.empty()) i.where = loaded.locate(i.path);
    throw ConfigError(issues);
  }
  validate_run(cfg, v);
  validate_tenancy(cfg, v);
  validate_ranks(cfg, v);
  validate_workload(cfg, issues, v);

  if (issues.empty()) return;
  for (auto& i : issues)
    if (i.where.file.empty()) i.where = loaded.locate(i.path);
  throw ConfigError(issues);
}

}  // namespace tiersim
