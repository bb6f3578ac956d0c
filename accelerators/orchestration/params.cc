#include "accelerators/orchestration/params.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fabric/serial_link.h"
#include "fabric/topology.h"
#include "models/config/energy_checks.h"
#include "models/config/wired_checks.h"

namespace tiersim {

const config::Component* find_component(const config::Config& root, const std::string& name) {
  for (const auto& comp : root.system().components()) {
    if (comp.name() == name) return &comp;
  }
  return nullptr;
}

TimePs default_decision_latency_ps(config::ControllerPlacement placement) {
  switch (placement) {
    case config::DPU:
      return 3'000'000;
    case config::ON_ACCELERATOR:
      return 300'000;
    default:
      return 27'500'000;
  }
}

namespace {

// The accelerator's compute engine (its `dma` drives the accelerator's links, its
// weights_memory is the weights' home); the default instance when the config has none.
const config::ComputeEngine& accelerator_compute(const config::Config& root) {
  for (const auto& comp : root.system().components()) {
    if (comp.has_compute()) return comp.compute();
  }
  return config::ComputeEngine::default_instance();
}

// Reports under `v`.`field` each of `targets` (memory, what it is; empty memories skipped) that
// no path of system links leads to from `from`.
void unreachable_from(const config::Config& root, const std::string& from,
                      const std::vector<std::pair<std::string, std::string>>& targets, Validator& v,
                      const std::string& field) {
  Topology topology;
  for (const auto& l : root.system().links())
    topology.add_link(l.name(), l.from(), l.to());
  for (const auto& [memory, what] : targets) {
    if (memory.empty() || find_component(root, memory) == nullptr) continue;
    if (!topology.reachable(from, memory)) {
      v.error(field, "\"" + from + "\" has no path of links to " + what + " \"" + memory +
                         "\" in system.links");
    }
  }
}

// A controller's pcie_link and posted queue (HostLoopParts/DpuParts) under `pv` (the parts): a
// system link from the accelerator's DMA engine with a serial model, and something that
// crosses it.
void validate_pcie_link(const config::Config& root, const config::ControllerParts& parts,
                        Validator pv) {
  const bool host = parts.has_host_loop();
  if (!host && !parts.has_dpu()) return;
  const bool has_link = host ? parts.host_loop().has_pcie_link() : parts.dpu().has_pcie_link();
  const bool has_queue = host ? parts.host_loop().has_pcie_posted_queue_bytes()
                              : parts.dpu().has_pcie_posted_queue_bytes();
  const uint64_t queue =
      host ? parts.host_loop().pcie_posted_queue_bytes() : parts.dpu().pcie_posted_queue_bytes();
  Validator v = pv.at(host ? "host_loop" : "dpu");
  const uint32_t reads = host ? parts.host_loop().telemetry_reads() : parts.dpu().telemetry_reads();
  if (has_queue && !has_link) {
    v.error("pcie_posted_queue_bytes", "needs pcie_link (the link whose port holds the queue)");
  } else if (has_queue && (queue == 0 || queue > (uint64_t{1} << 30))) {
    v.error("pcie_posted_queue_bytes", "must be in [1, 1 GiB]");
  } else if (has_queue && reads == 0) {
    v.error("pcie_posted_queue_bytes",
            "bounds what a read's completion waits for: telemetry_reads is 0");
  }
  if (!has_link) return;
  const std::string& link = host ? parts.host_loop().pcie_link() : parts.dpu().pcie_link();
  if (!v.non_empty("pcie_link", true, link)) return;
  const config::Link* found = nullptr;
  for (const auto& l : root.system().links()) {
    if (l.name() == link) found = &l;
  }
  const std::string dma = accelerator_compute(root).dma();
  if (found == nullptr) {
    v.error("pcie_link", "no system link named \"" + link + "\"");
  } else if (!found->has_serial()) {
    v.error("pcie_link", "link \"" + link +
                             "\" has no serial model: an ideal wire orders nothing (give it a "
                             "serial section, or leave pcie_link unset)");
  } else if (found->from() != dma) {
    v.error("pcie_link", "link \"" + link + "\" runs from \"" + found->from() +
                             "\", not from the accelerator's DMA engine \"" + dma +
                             "\" (the compute engine's dma)");
  }
  const uint32_t crossings =
      host ? parts.host_loop().telemetry_reads() + parts.host_loop().doorbell_writes()
           : parts.dpu().telemetry_reads();
  if (crossings == 0) {
    v.error("pcie_link", host ? "nothing crosses it: telemetry_reads and doorbell_writes are 0"
                              : "nothing crosses it: telemetry_reads is 0");
  }
}

// What the orchestration's own controller is made of (controller_parts): its parts, and no
// figure set twice.
void validate_controller_parts(const config::Config& root, const config::Orchestration& c,
                               Validator& o) {
  if (!validate_parts(c.controller_parts(), o.at("controller_parts"))) return;
  validate_pcie_link(root, c.controller_parts(), o.at("controller_parts"));
  const auto& parts = c.controller_parts();
  // The figures come from the parts: none may also be set, and the placement and the
  // notification, when given, must be the parts'.
  const struct {
    bool set;
    const char* field;
  } figures[] = {{c.has_decision_latency_ps(), "decision_latency_ps"},
                 {c.has_decision_jitter(), "decision_jitter"},
                 {c.has_decision_servers(), "decision_servers"},
                 {c.has_decision_interval_ps(), "decision_interval_ps"},
                 {c.has_notification_latency_ps(), "notification_latency_ps"},
                 {c.has_controller_power_w(), "controller_power_w"},
                 {c.has_controller_idle_power_w(), "controller_idle_power_w"}};
  for (const auto& f : figures) {
    if (f.set) {
      o.error(f.field, std::string("given by controller_parts: set one or the other (an earlier "
                                   "file's value is cleared by --set policy.orchestration.") +
                           f.field + "=!clear)");
    }
  }
  const ControllerFigures derived = controller_figures(parts);
  if (c.controller() != config::CONTROLLER_PLACEMENT_UNSPECIFIED &&
      c.controller() != derived.controller) {
    o.error("controller", std::string("controller_parts describe a ") +
                              config::ControllerPlacement_Name(derived.controller) + " controller");
  }
  if (c.notification() != config::NOTIFICATION_UNSPECIFIED &&
      c.notification() != derived.notification) {
    o.error("notification", std::string("controller_parts notify by ") +
                                config::Notification_Name(derived.notification));
  }
}

// Whether the run configures mechanism `m` (so that a controller may own it).
bool mechanism_configured(const config::Config& root, const config::Orchestration& c,
                          config::ControlledMechanism m) {
  switch (m) {
    case config::LAYER_PREFETCH:
      return c.prefetch_layers() > 0;
    case config::PAGE_CACHE:
      return c.replacement() != config::REPLACEMENT_UNSPECIFIED;
    case config::OBJECT_CACHE:
      return c.has_object_cache();
    case config::CONTEXT_REGIONS:
      return c.has_context_regions();
    case config::KV_RESTORE:
      return c.kv_restore() == config::KV_RESTORE_ARBITRATE;
    case config::RESIDENCY_PROGRAM:
      // Written, emitted from the intents, or a trace's recorded one replayed.
      return c.wired().program_size() > 0 || c.wired().emit_from_intents() ||
             (root.workload().has_replay() && root.workload().replay().use_program());
    default:
      return false;
  }
}

// Further controllers (controllers): names, what each owns (configured, owned once), parts.
void validate_owned_controllers(const config::Config& root, const config::Orchestration& c,
                                Validator& o) {
  std::set<std::string> names;
  std::set<int> owned;
  for (int i = 0; i < c.controllers_size(); ++i) {
    const auto& oc = c.controllers(i);
    Validator cv = o.at("controllers[" + std::to_string(i) + "]");
    if (cv.non_empty("name", oc.has_name(), oc.name())) {
      const bool plain = std::all_of(oc.name().begin(), oc.name().end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
      });
      if (!plain || oc.name() == "primary") {
        cv.error("name",
                 "lower-case letters and digits only, not \"primary\" (got \"" + oc.name() + "\")");
      } else if (!names.insert(oc.name()).second) {
        cv.error("name", "\"" + oc.name() + "\" names two controllers");
      }
    }
    if (oc.owns_size() == 0) cv.error("owns", "required: the mechanisms this controller owns");
    for (int k = 0; k < oc.owns_size(); ++k) {
      const auto m = config::ControlledMechanism(oc.owns(k));
      const std::string field = "owns[" + std::to_string(k) + "]";
      if (m == config::CONTROLLED_MECHANISM_UNSPECIFIED) {
        cv.error(field, "a mechanism is required");
      } else if (!owned.insert(int(m)).second) {
        cv.error(field, std::string(config::ControlledMechanism_Name(m)) +
                            " is owned already (by this controller or another)");
      } else if (!mechanism_configured(root, c, m)) {
        cv.error(field, std::string(config::ControlledMechanism_Name(m)) +
                            " is not configured in this run (nothing to own)");
      }
    }
    if (oc.has_sharers()) {
      const uint32_t most = root.system().has_pod() ? root.system().pod().nodes() : 4096;
      if (oc.sharers() < 1 || oc.sharers() > most) {
        cv.error("sharers", "must be in [1, " + std::to_string(most) + "]" +
                                (root.system().has_pod() ? " (the pod's nodes)" : ""));
      }
    }
    if (oc.has_peer_load() && !(oc.peer_load() >= 0 && oc.peer_load() <= 1)) {
      cv.error("peer_load", "must be in [0, 1]");
    } else if (oc.has_peer_load() && oc.sharers() <= 1) {
      cv.error("peer_load", "the load of the other sharers: needs sharers above 1");
    }
    if (!oc.has_parts()) {
      cv.error("parts", "required: what the controller is made of (host_loop, dpu or engine)");
    } else {
      if (validate_parts(oc.parts(), cv.at("parts"))) {
        validate_pcie_link(root, oc.parts(), cv.at("parts"));
      }
    }
  }
}

// The fast memory, the resident share, where the controller runs and how it notifies, its DMA
// engine and descriptor signing.
void validate_controller(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (o.non_empty("fast_memory", c.has_fast_memory(), c.fast_memory())) {
    const config::Component* m = find_component(root, c.fast_memory());
    if (m == nullptr) {
      o.error("fast_memory", "no component named \"" + c.fast_memory() + "\"");
    } else if (!(m->has_hbm() || m->has_gddr() || m->has_ddr() || m->has_sram() || m->has_cxl())) {
      o.error("fast_memory", "\"" + c.fast_memory() + "\" is not a memory");
    }
  }
  if (!c.has_resident_fraction() || !(c.resident_fraction() >= 0 && c.resident_fraction() <= 1)) {
    o.error("resident_fraction", "required, in [0, 1]");
  }
  validate_owned_controllers(root, c, o);
  if (c.has_controller_parts()) {
    validate_controller_parts(root, c, o);
  } else {
    if (c.controller() == config::CONTROLLER_PLACEMENT_UNSPECIFIED) {
      o.error("controller", "required: HOST_CPU, DPU or ON_ACCELERATOR (or controller_parts)");
    }
    if (c.notification() == config::NOTIFICATION_UNSPECIFIED) {
      o.error("notification", "required: INTERRUPT, POLLING or DOORBELL (or controller_parts)");
    }
  }
  validate_jitter(c.decision_jitter(), o.at("decision_jitter"));
  if (c.has_decision_servers() && (c.decision_servers() < 1 || c.decision_servers() > 4096)) {
    o.error("decision_servers", "must be in [1, 4096]");
  }
  if (c.has_decision_interval_ps()) {
    const TimePs latency = c.has_decision_latency_ps()
                               ? c.decision_latency_ps()
                               : default_decision_latency_ps(c.controller());
    if (c.decision_interval_ps() == 0 || c.decision_interval_ps() > latency) {
      o.error("decision_interval_ps",
              "must be in [1, decision_latency_ps] (" + std::to_string(latency) + " ps)");
    }
  }
  energy_field(o, "controller_power_w", c.has_controller_power_w(), c.controller_power_w());
  if (c.has_controller_idle_power_w() &&
      energy_field(o, "controller_idle_power_w", true, c.controller_idle_power_w()) &&
      c.controller_idle_power_w() > c.controller_power_w()) {
    o.error("controller_idle_power_w", "lies above controller_power_w (the power while deciding)");
  }
  if (c.has_dma()) {
    const config::Component* d = find_component(root, c.dma());
    if (d == nullptr || !d->has_dma()) {
      o.error("dma", "no DMA engine named \"" + c.dma() + "\"");
    } else {
      // Its copies move between the weights' home, the fast memory, the middle tier and the
      // DPU's buffer: a path of links must lead to each.
      const std::string home = accelerator_compute(root).weights_memory();
      unreachable_from(root, c.dma(),
                       {{c.fast_memory(), "the fast memory"},
                        {home, "the weights' home"},
                        {c.second_tier().memory(), "the middle tier"},
                        {c.dpu_buffer().memory(), "the DPU buffer"}},
                       o, "dma");
    }
  }
  if (c.has_unsigned_fraction() && !(c.unsigned_fraction() >= 0 && c.unsigned_fraction() <= 1)) {
    o.error("unsigned_fraction", "must be in [0, 1]");
  }
  if ((c.has_verify_latency_ps() || c.has_unsigned_fraction()) && !c.signed_descriptors()) {
    o.error(c.has_verify_latency_ps() ? "verify_latency_ps" : "unsigned_fraction",
            "needs signed_descriptors: true");
  }
}

// Host attention: the CPU's load path, its rate and the memory it reads the KV from.
void validate_host_attention(const config::Config& root, const config::Orchestration& c,
                             Validator& o) {
  if (c.has_host_attention()) {
    const auto& h = c.host_attention();
    Validator hv = o.at("host_attention");
    if (hv.non_empty("cpu", h.has_cpu(), h.cpu())) {
      const config::Component* d = find_component(root, h.cpu());
      if (d == nullptr || !d->has_dma()) {
        hv.error("cpu", "no dma component named \"" + h.cpu() + "\" (the host CPU's load path)");
      }
    }
    hv.positive("flops_per_s", h.has_flops_per_s(), h.flops_per_s());
    if (hv.non_empty("memory", h.has_memory(), h.memory())) {
      const config::Component* m = find_component(root, h.memory());
      if (m == nullptr || !(m->has_ddr() || m->has_cxl() || m->has_hbm() || m->has_gddr())) {
        hv.error("memory", "\"" + h.memory() + "\" is not a host memory (ddr, cxl, hbm, gddr)");
      }
    }
    if (!c.has_kv_resident() || c.kv_resident()) {
      hv.error("", "needs kv_resident: false (the KV stays at home, next to the CPU)");
    }
  }
}

// The weights' middle tier.
void validate_second_tier(const config::Config& root, const config::Orchestration& c,
                          Validator& o) {
  if (c.has_second_tier()) {
    const auto& t = c.second_tier();
    Validator tv = o.at("second_tier");
    if (tv.non_empty("memory", t.has_memory(), t.memory())) {
      const config::Component* m = find_component(root, t.memory());
      if (m == nullptr) {
        tv.error("memory", "no component named \"" + t.memory() + "\"");
      } else if (!(m->has_hbm() || m->has_gddr() || m->has_ddr() || m->has_sram() || m->has_cxl() ||
                   m->has_nvme())) {
        tv.error("memory", "\"" + t.memory() + "\" is not a memory");
      }
    }
    const double resident = c.resident_fraction();
    if (!t.has_fraction() || !(t.fraction() >= 0 && t.fraction() <= 1 - resident + 1e-12)) {
      tv.error("fraction", "required, in [0, 1 - resident_fraction]");
    }
    if (c.replacement() != config::REPLACEMENT_UNSPECIFIED) {
      tv.error("", "not with a dynamic cache (replacement)");
    }
  }
}

// The dynamic page cache (a replacement policy over frames of the fast memory).
void validate_page_cache(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (c.replacement() != config::REPLACEMENT_UNSPECIFIED) {
    o.positive("cache_bytes", c.has_cache_bytes(), double(c.cache_bytes()));
    if (c.has_page_bytes()) o.positive("page_bytes", true, double(c.page_bytes()));
    if (c.prefetch_layers() > 0) {
      o.error("replacement", "a dynamic cache runs without prefetch_layers (set it to 0)");
    }
  } else if (c.has_cache_bytes() || c.has_page_bytes()) {
    o.error(c.has_cache_bytes() ? "cache_bytes" : "page_bytes", "needs a replacement policy");
  }
}

// Recompute-vs-transfer restore of the KV from hidden-state checkpoints.
void validate_kv_restore(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (c.kv_restore() == config::KV_RESTORE_RECOMPUTE ||
      c.kv_restore() == config::KV_RESTORE_ARBITRATE) {
    if (!c.has_kv_resident() || c.kv_resident()) {
      o.error("kv_restore", "needs kv_resident: false (the KV and its checkpoints at home)");
    }
    if (c.has_host_attention()) o.error("kv_restore", "not with host_attention");
    if (!root.workload().decode().hidden_state_checkpoints()) {
      o.error("kv_restore",
              "needs workload.decode.hidden_state_checkpoints: true (the hidden states to "
              "recompute from)");
    }
  }
}

// Context regions of a sparse-attention KV.
void validate_context_regions(const config::Config& root, const config::Orchestration& c,
                              Validator& o) {
  if (c.has_context_regions()) {
    const auto& r = c.context_regions();
    Validator rv = o.at("context_regions");
    const auto& w = root.workload();
    rv.require("budget_bytes", r.has_budget_bytes());
    if (!w.has_decode() || !w.decode().has_sparse_attention()) {
      rv.error("", "needs a decode workload with sparse_attention (its pages are the regions)");
    } else {
      if (w.decode().prefill()) rv.error("", "not with workload.decode.prefill");
      if (w.decode().has_speculative()) rv.error("", "not with speculative decoding");
    }
    if (!c.has_kv_resident() || c.kv_resident()) {
      rv.error("", "needs kv_resident: false (the KV's home holds the regions' backups)");
    }
    if (c.replacement() != config::REPLACEMENT_UNSPECIFIED) {
      rv.error("", "not with a dynamic cache (replacement)");
    }
    if (c.has_host_attention()) rv.error("", "not with host_attention");
    if (c.kv_restore() == config::KV_RESTORE_RECOMPUTE ||
        c.kv_restore() == config::KV_RESTORE_ARBITRATE) {
      rv.error("", "not with kv_restore");
    }
    if (r.has_ema_alpha() && !(r.ema_alpha() > 0 && r.ema_alpha() < 1)) {
      rv.error("ema_alpha", "must be in (0, 1)");
    }
    if (r.has_ema_alpha() && r.ranking() != config::REGION_SCORE) {
      rv.error("ema_alpha", "used by ranking: REGION_SCORE only");
    }
    if (r.has_veto_mass() && !(r.veto_mass() >= 0 && r.veto_mass() <= 1)) {
      rv.error("veto_mass", "must be in [0, 1]");
    }
    if (r.has_veto_mass() && r.veto_steps() == 0) {
      rv.error("veto_mass", "needs veto_steps > 0");
    }
    if (r.has_promote_pages()) {
      rv.positive("promote_pages", true, double(r.promote_pages()));
      if (r.lookahead_layers() == 0) rv.error("promote_pages", "needs lookahead_layers > 0");
    }
    if (r.has_compressed_budget_bytes()) {
      if (r.compressed_dtype() != config::DTYPE_UNSPECIFIED &&
          r.compressed_dtype() != config::INT8 && r.compressed_dtype() != config::FP8 &&
          r.compressed_dtype() != config::INT4) {
        rv.error("compressed_dtype", "INT8, FP8 or INT4 (default INT4)");
      }
      rv.non_negative("dequant_flops_per_element", r.has_dequant_flops_per_element(),
                      r.dequant_flops_per_element());
    } else if (r.compressed_dtype() != config::DTYPE_UNSPECIFIED ||
               r.has_dequant_flops_per_element()) {
      rv.error(r.has_dequant_flops_per_element() ? "dequant_flops_per_element" : "compressed_dtype",
               "needs compressed_budget_bytes");
    }
    if (r.lookahead_layers() > 0 && w.model().layers() > 0 &&
        r.lookahead_layers() >= w.model().layers()) {
      rv.error("lookahead_layers",
               "must be below the model's layers (" + std::to_string(w.model().layers()) + ")");
    }
  }
}

// The object cache: whole weight objects as extents.
void validate_object_cache(const config::Config& root, const config::Orchestration& c,
                           Validator& o) {
  if (c.has_object_cache()) {
    const auto& oc = c.object_cache();
    Validator cv = o.at("object_cache");
    cv.positive("bytes", oc.has_bytes(), double(oc.bytes()));
    auto refuse = [&](bool set, const std::string& what) {
      if (set) cv.error("", "not with " + what);
    };
    if (c.resident_fraction() != 0) cv.error("", "needs resident_fraction: 0 (whole objects move)");
    refuse(c.prefetch_layers() > 0, "prefetch_layers");
    refuse(c.replacement() != config::REPLACEMENT_UNSPECIFIED, "a page cache (replacement)");
    refuse(c.has_second_tier(), "second_tier");
    refuse(c.has_resident_precision(), "resident_precision");
    if (oc.has_prefetch_confidence() &&
        !(oc.prefetch_confidence() >= 0 && oc.prefetch_confidence() <= 1)) {
      cv.error("prefetch_confidence", "must be in [0, 1]");
    }
    const bool mode = oc.prefetch() != config::OBJECT_PREFETCH_UNSPECIFIED;
    if ((mode || oc.has_prefetch_confidence()) && oc.prefetch_layers() == 0) {
      cv.error(mode ? "prefetch" : "prefetch_confidence", "needs prefetch_layers > 0");
    }
  }
}

// The DPU's DDR buffer feeding the layer-ahead prefetch.
void validate_dpu_buffer(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (c.has_dpu_buffer()) {
    const auto& b = c.dpu_buffer();
    Validator bv = o.at("dpu_buffer");
    if (bv.non_empty("memory", b.has_memory(), b.memory())) {
      const config::Component* m = find_component(root, b.memory());
      if (m == nullptr || !(m->has_ddr() || m->has_sram() || m->has_hbm() || m->has_cxl())) {
        bv.error("memory", "no ddr, sram, hbm or cxl component named \"" + b.memory() + "\"");
      }
    }
    if (b.has_dma()) {
      const config::Component* d = find_component(root, b.dma());
      if (d == nullptr || !d->has_dma()) {
        bv.error("dma", "no DMA engine named \"" + b.dma() + "\"");
      } else {
        // It copies from the weights' home into the buffer.
        unreachable_from(root, b.dma(),
                         {{b.memory(), "the buffer"},
                          {accelerator_compute(root).weights_memory(), "the weights' home"}},
                         bv, "dma");
      }
    }
    if (c.prefetch_layers() == 0) bv.error("", "needs prefetch_layers > 0 (it feeds the prefetch)");
    if (!b.has_lookahead_layers() || b.lookahead_layers() <= c.prefetch_layers()) {
      bv.error("lookahead_layers",
               "required, above prefetch_layers (" + std::to_string(c.prefetch_layers()) + ")");
    } else if (root.workload().model().layers() > 0 &&
               b.lookahead_layers() > root.workload().model().layers()) {
      bv.error("lookahead_layers", "at most the model's layers (" +
                                       std::to_string(root.workload().model().layers()) + ")");
    }
    if (c.has_second_tier()) bv.error("", "not with second_tier");
  }
}

// The arbiter's first estimate of the home path's rate.
void validate_arbiter(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (c.has_arbiter_path_bytes_per_s()) {
    // Allowed with any kv_restore (a sweep over the modes keeps it), used by ARBITRATE only.
    o.positive("arbiter_path_bytes_per_s", true, c.arbiter_path_bytes_per_s());
  }
}

// Precision states of resident weights (or of the object cache's objects).
void check_precision(const config::ResidentPrecision& rp, Validator pv) {
  if (rp.dtype() != config::INT8 && rp.dtype() != config::FP8 && rp.dtype() != config::INT4) {
    pv.error("dtype", "required: INT8, FP8 or INT4");
  }
  pv.non_negative("dequant_flops_per_element", rp.has_dequant_flops_per_element(),
                  rp.dequant_flops_per_element());
  pv.non_negative("quality_budget", rp.has_quality_budget(), rp.quality_budget());
  for (int i = 0; i < rp.sensitivity_size(); ++i) {
    Validator sv = pv.at("sensitivity[" + std::to_string(i) + "]");
    const auto& e = rp.sensitivity(i);
    if (e.prefix().empty() && e.contains().empty()) {
      sv.error("prefix", "set prefix, contains or both (which objects it applies to)");
    }
    sv.non_negative("value", true, rp.sensitivity(i).value());
  }
}

// Which precision states apply, and that they have resident bytes to apply to.
void validate_precision(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (c.has_object_cache() && c.object_cache().has_precision()) {
    check_precision(c.object_cache().precision(), o.at("object_cache.precision"));
  }
  if (c.has_resident_precision()) {
    check_precision(c.resident_precision(), o.at("resident_precision"));
    if (c.resident_fraction() <= 0) {
      o.at("resident_precision")
          .error("", "needs resident_fraction > 0 (it sets the precision of the resident parts)");
    }
  }
}

// Wired residency: the memory objects are bound in and the quota.
void validate_wired(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (c.has_wired()) {
    const auto& w = c.wired();
    Validator wv = o.at("wired");
    if (wv.non_empty("memory", w.has_memory(), w.memory())) {
      const config::Component* m = find_component(root, w.memory());
      if (m == nullptr || !(m->has_sram() || m->has_hbm() || m->has_gddr())) {
        wv.error("memory", "no sram, hbm or gddr component named \"" + w.memory() + "\"");
      }
    }
    wv.require("quota_bytes", w.has_quota_bytes());  // 0 binds nothing: the baseline
    // The program's shape; what it names and whether it fits are checked against the objects
    // before the run (residency_program.h).
    for (int i = 0; i < w.program_size(); ++i) {
      const auto& d = w.program(i);
      Validator dv = wv.at("program[" + std::to_string(i) + "]");
      validate_wired_directive(d, dv);
    }
    // Per-tenant quotas: named tenants, each and their sum within the wired area.
    uint64_t quota_sum = 0;
    std::set<std::string> quota_tenants;
    for (int i = 0; i < w.tenant_quotas_size(); ++i) {
      const auto& q = w.tenant_quotas(i);
      Validator qv = wv.at("tenant_quotas[" + std::to_string(i) + "]");
      if (root.tenancy().tenants_size() == 0) {
        qv.error("", "per-tenant quotas need tenants (tenancy.tenants)");
        break;
      }
      if (tenant_index(root, q.tenant()) < 0) {
        qv.error("tenant", "no tenant named \"" + q.tenant() + "\"");
      } else if (!quota_tenants.insert(q.tenant()).second) {
        qv.error("tenant", "\"" + q.tenant() + "\" has a quota already");
      }
      if (q.has_quota_bytes() == q.has_quota_fraction()) {
        qv.error("quota_bytes", "set quota_bytes or quota_fraction (one of the two)");
      } else if (q.has_quota_fraction() && !(q.quota_fraction() >= 0 && q.quota_fraction() <= 1)) {
        qv.error("quota_fraction", "must be in [0, 1]");
      } else {
        quota_sum += wired_tenant_quota_bytes(q, w.quota_bytes());
      }
    }
    if (w.tenant_quotas_size() > 0 && quota_sum > w.quota_bytes()) {
      wv.error("tenant_quotas", "their sum (" + std::to_string(quota_sum) +
                                    " bytes) is more than quota_bytes, the wired area (" +
                                    std::to_string(w.quota_bytes()) + " bytes)");
    }
    for (int i = 0; i < w.program_size(); ++i) {
      const auto& d = w.program(i);
      Validator dv = wv.at("program[" + std::to_string(i) + "]");
      if (d.has_tenant() && w.tenant_quotas_size() == 0) {
        dv.error("tenant", "only with tenant_quotas");
      } else if (w.tenant_quotas_size() > 0 && d.has_tenant() &&
                 d.op() != config::WIRED_SET_QUOTA && tenant_index(root, d.tenant()) < 0) {
        dv.error("tenant", "no tenant named \"" + d.tenant() + "\"");
      } else if (d.op() == config::WIRED_SET_QUOTA && w.tenant_quotas_size() > 0) {
        if (!d.has_tenant()) {
          dv.error("tenant", "required with tenant_quotas: whose quota it sets");
        } else if (tenant_index(root, d.tenant()) < 0) {
          dv.error("tenant", "no tenant named \"" + d.tenant() + "\"");
        } else if (!quota_tenants.count(d.tenant())) {
          dv.error("tenant", "\"" + d.tenant() +
                                 "\" has no quota in tenant_quotas (a tenant not listed binds "
                                 "nothing)");
        } else if (d.quota_bytes() > w.quota_bytes()) {
          dv.error("quota_bytes", "more than quota_bytes, the wired area");
        }
      }
    }
    if (w.emit_from_intents() && w.program_size() > 0) {
      wv.error("emit_from_intents", "not with a program: the program is emitted");
    }
    // A replay's recorded program (workload.replay.use_program) is the run's program.
    const bool trace_program =
        root.workload().has_replay() && root.workload().replay().use_program();
    if (trace_program && (w.program_size() > 0 || w.emit_from_intents())) {
      wv.error(w.program_size() > 0 ? "program" : "emit_from_intents",
               "not with workload.replay.use_program: the trace's program is the run's");
    }
    const bool own = w.program_size() > 0 || w.emit_from_intents();
    // The field that switched the program on: the config's own, else the replay's.
    Validator pv = own ? wv : o.root("workload.replay");
    const char* field = w.program_size() > 0    ? "program"
                        : w.emit_from_intents() ? "emit_from_intents"
                                                : "use_program";
    if ((own || trace_program) &&
        (c.prefetch_layers() > 0 || c.replacement() != config::REPLACEMENT_UNSPECIFIED)) {
      // They would keep copying or caching what the program binds.
      pv.error(field, "not with layer prefetch (prefetch_layers) or a page cache (replacement)");
    }
    if ((own || trace_program) && (c.has_object_cache() || c.has_context_regions())) {
      pv.error(field, "not with an object cache or context regions");
    }
  }
}

// The controller's residency map.
void validate_residency_map(const config::Config& root, const config::Orchestration& c,
                            Validator& o) {
  if (c.has_residency_map()) {
    const auto& m = c.residency_map();
    Validator mv = o.at("residency_map");
    mv.positive("entries", m.has_entries(), double(m.entries()));
    if (m.has_entry_bits()) mv.positive("entry_bits", true, double(m.entry_bits()));
    mv.require("software_latency_ps", m.has_software_latency_ps());
    // Looked up by every decision about an object: useless (and so refused) without a
    // mechanism that decides during the run.
    bool decides = false;
    for (int m = config::ControlledMechanism_MIN; m <= config::ControlledMechanism_MAX; ++m)
      decides = decides || mechanism_configured(root, c, config::ControlledMechanism(m));
    if (!decides) {
      mv.error("",
               "needs a mechanism that takes decisions during the run (prefetch_layers, "
               "replacement, object_cache, context_regions, kv_restore ARBITRATE or a wired "
               "program): each looks its object up in the map");
    }
    // Kept in the tables of an engine that is the orchestration's own controller: it must fit.
    const auto& parts = c.controller_parts();
    if (parts.has_engine() && parts.engine().has_table_bytes() && m.has_entries()) {
      const uint64_t bits = m.has_entry_bits() ? m.entry_bits() : ResidencyMapParams{}.entry_bits;
      const uint64_t bytes = (uint64_t{m.entries()} * bits + 7) / 8;
      if (bytes > parts.engine().table_bytes()) {
        mv.error("entries", std::to_string(m.entries()) + " entries of " + std::to_string(bits) +
                                " bits (" + std::to_string(bytes) +
                                " bytes) do not fit the engine's tables "
                                "(controller_parts.engine.table_bytes: " +
                                std::to_string(parts.engine().table_bytes()) + " bytes)");
      }
    }
  }
}

// The confidence gate's parameters (replacement REPLACEMENT_CONFIDENCE).
void validate_confidence(const config::Config& root, const config::Orchestration& c, Validator& o) {
  if (c.has_confidence()) {
    const auto& g = c.confidence();
    Validator gv = o.at("confidence");
    if (c.replacement() != config::REPLACEMENT_CONFIDENCE) {
      gv.error("", "set only with replacement: REPLACEMENT_CONFIDENCE");
    }
    auto unit = [&](const char* field, bool has, double x) {
      if (has && !(x >= 0 && x <= 1)) gv.error(field, "must be in [0, 1]");
    };
    unit("admit_lb", g.has_admit_lb(), g.admit_lb());
    unit("evict_ub", g.has_evict_ub(), g.evict_ub());
    unit("intent_override", g.has_intent_override(), g.intent_override());
    gv.non_negative("z", g.has_z(), g.z());
    gv.non_negative("blend_eta", g.has_blend_eta(), g.blend_eta());
    if (g.has_epoch_pages()) gv.positive("epoch_pages", true, double(g.epoch_pages()));
    if (g.has_admit_lb() && g.has_evict_ub() && g.evict_ub() >= g.admit_lb()) {
      gv.error("evict_ub", "must be below admit_lb (hysteresis)");
    }
  }
}

}  // namespace

void OrchestrationParams::validate(const config::Config& root, Validator v) {
  const auto& c = root.policy().orchestration();
  Validator o = v.at("policy.orchestration");
  if (root.policy().placement() != config::ORCHESTRATED) {
    if (root.policy().has_orchestration()) {
      o.error("", "set only with policy.placement: ORCHESTRATED");
    }
    return;
  }
  if (!root.policy().has_orchestration()) {
    v.error("policy.orchestration", "required with placement ORCHESTRATED");
    return;
  }
  // Each section's checks, in a fixed order (so are the messages).
  for (auto* check :
       {validate_controller, validate_host_attention, validate_second_tier, validate_page_cache,
        validate_kv_restore, validate_context_regions, validate_object_cache, validate_dpu_buffer,
        validate_arbiter, validate_precision, validate_wired, validate_residency_map,
        validate_confidence}) {
    check(root, c, o);
  }
}

uint64_t wired_tenant_quota_bytes(const config::WiredTenantQuota& q, uint64_t area_bytes) {
  if (!q.has_quota_fraction()) return q.quota_bytes();
  return uint64_t(q.quota_fraction() * double(area_bytes)) / 4096 * 4096;
}

std::vector<std::string> tenant_names(const config::Config& root) {
  const auto& t = root.tenancy();
  std::vector<std::string> names{t.has_primary_name() ? t.primary_name() : "primary"};
  for (const auto& tenant : t.tenants())
    names.push_back(tenant.name());
  return names;
}

int tenant_index(const config::Config& root, const std::string& name) {
  const auto names = tenant_names(root);
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  return -1;
}

OrchestrationParams OrchestrationParams::from_config(const config::Config& root) {
  const config::Orchestration& c = root.policy().orchestration();
  OrchestrationParams p;
  p.fast_memory = c.fast_memory();
  p.dma = c.dma();
  p.resident_fraction = c.resident_fraction();
  p.kv_resident = c.has_kv_resident() ? c.kv_resident() : true;
  p.prefetch_layers = c.prefetch_layers();
  p.controller = c.controller();
  // Without explicit latencies, the controller's place and the notification kind give the
  // middle of their estimated ranges (C; docs/models/orchestration.md).
  const TimePs notify_default[] = {0, 10'000'000, 1'500'000, 300'000};  // interrupt, poll, bell
  p.decision_latency_ps = c.has_decision_latency_ps() ? c.decision_latency_ps()
                                                      : default_decision_latency_ps(c.controller());
  p.decision_servers = c.has_decision_servers() ? c.decision_servers() : 1;
  p.decision_interval_ps = c.decision_interval_ps();
  p.decision_jitter = c.decision_jitter();
  p.notification = c.notification();
  p.notification_latency_ps = c.has_notification_latency_ps() ? c.notification_latency_ps()
                                                              : notify_default[c.notification()];
  p.controller_power_w = c.controller_power_w();
  double idle_power_w =
      c.has_controller_idle_power_w() ? c.controller_idle_power_w() : c.controller_power_w();
  ControllerFigures own;  // the orchestration's own controller
  if (c.has_controller_parts()) {
    const ControllerFigures f = controller_figures(c.controller_parts());
    own = f;  // the area and tables; the rest is set from `p` below
    p.controller = f.controller;
    p.decision_latency_ps = f.decision_latency_ps;
    p.decision_jitter = f.decision_jitter;
    p.decision_servers = f.decision_servers;
    p.decision_interval_ps = f.decision_interval_ps;
    p.notification = f.notification;
    p.notification_latency_ps = f.notification_latency_ps;
    p.controller_power_w = f.power_w;
    idle_power_w = f.idle_power_w;
  }
  // The controllers: the orchestration's own first, then the owned ones.
  own.controller = p.controller;
  own.decision_latency_ps = p.decision_latency_ps;
  own.decision_jitter = p.decision_jitter;
  own.decision_servers = p.decision_servers;
  own.decision_interval_ps = p.decision_interval_ps;
  own.notification = p.notification;
  own.notification_latency_ps = p.notification_latency_ps;
  own.power_w = p.controller_power_w;
  own.idle_power_w = idle_power_w;
  p.controllers.assign(1, own);
  p.controller_names.assign(1, "primary");
  p.owner.fill(0);
  for (const auto& oc : c.controllers()) {
    p.controllers.push_back(controller_figures(oc.parts()));
    if (oc.sharers() > 1) {
      // Busy time then counts the peers' decisions (m x this one's): the active increment is
      // scaled by 1/m so that this accelerator pays for its own decisions' activity, and 1/sharers
      // of the idle power and of the area.
      ControllerFigures& f = p.controllers.back();
      const double peer_load = oc.has_peer_load() ? oc.peer_load() : 1.0;
      f.server_share = 1.0 + double(oc.sharers() - 1) * peer_load;
      const double idle_w = f.idle_power_w / oc.sharers();
      f.power_w = idle_w + (f.power_w - f.idle_power_w) / f.server_share;
      f.idle_power_w = idle_w;
      f.area_mm2 /= oc.sharers();
    }
    p.controller_names.push_back(oc.name());
    p.controller_power_w += p.controllers.back().power_w;
    for (int m : oc.owns())
      p.owner[size_t(m)] = uint32_t(p.controllers.size() - 1);
  }
  p.replacement = c.replacement();
  p.cache_bytes = c.cache_bytes();
  p.confidence = c.confidence();
  p.precision = c.resident_precision();
  p.wired_memory = c.wired().memory();
  p.wired_quota_bytes = c.wired().quota_bytes();
  p.wired_program.assign(c.wired().program().begin(), c.wired().program().end());
  p.wired_emit = c.wired().emit_from_intents();
  p.tenant_names = tiersim::tenant_names(root);
  p.tenant_arrival_ps.assign(1, 0);
  for (const auto& t : root.tenancy().tenants())
    p.tenant_arrival_ps.push_back(t.arrival_ps());
  if (c.wired().tenant_quotas_size() > 0) {
    p.wired_tenant_quota.assign(p.tenant_names.size(), 0);
    for (const auto& q : c.wired().tenant_quotas()) {
      p.wired_tenant_quota[tenant_index(root, q.tenant())] =
          wired_tenant_quota_bytes(q, c.wired().quota_bytes());
    }
  }
  p.kv_restore = c.kv_restore() == config::KV_RESTORE_UNSPECIFIED ? config::KV_RESTORE_TRANSFER
                                                                  : c.kv_restore();
  p.arbiter_path_bytes_per_s = c.arbiter_path_bytes_per_s();
  if (c.has_residency_map()) {
    const auto& m = c.residency_map();
    p.has_map = true;
    p.map.entries = m.entries();
    if (m.has_entry_bits()) p.map.entry_bits = m.entry_bits();
    if (m.has_lookup_latency_ps()) p.map.lookup_latency_ps = m.lookup_latency_ps();
    p.map.software_latency_ps = m.software_latency_ps();
  }
  p.page_bytes = c.page_bytes();
  p.signed_descriptors = c.signed_descriptors();
  p.verify_latency_ps = c.verify_latency_ps();
  p.unsigned_fraction = c.unsigned_fraction();
  if (c.has_second_tier()) {
    p.tier_memory = c.second_tier().memory();
    p.tier_fraction = c.second_tier().fraction();
  }
  if (c.has_host_attention()) {
    p.host_cpu = c.host_attention().cpu();
    p.host_memory = c.host_attention().memory();
    p.host_flops_per_s = c.host_attention().flops_per_s();
  }
  p.regions = c.has_context_regions();
  p.context_regions = c.context_regions();
  p.intent_per_phase = c.has_intent_per_phase() ? c.intent_per_phase() : true;
  if (c.has_dpu_buffer()) {
    p.buffer_memory = c.dpu_buffer().memory();
    p.buffer_dma = c.dpu_buffer().dma();
    p.buffer_lookahead = c.dpu_buffer().lookahead_layers();
  }
  p.object_cache = c.has_object_cache();
  p.objects = c.object_cache();
  // The object cache's precision states use the same guardrail (over whole objects).
  if (c.object_cache().has_precision()) p.precision = c.object_cache().precision();
  return p;
}
}  // namespace tiersim
