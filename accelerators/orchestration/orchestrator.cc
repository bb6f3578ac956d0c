#include "accelerators/orchestration/orchestrator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "accelerators/dma_engine.h"
#include "fabric/serial_link.h"
#include "models/core/context.h"
#include "models/core/dtype.h"
#include "models/core/summary.h"
#include "models/core/workload.h"

namespace tiersim {

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
  auto find = [&](const std::string& name) -> const config::Component* {
    for (const auto& comp : root.system().components()) {
      if (comp.name() == name) return &comp;
    }
    return nullptr;
  };
  if (o.non_empty("fast_memory", c.has_fast_memory(), c.fast_memory())) {
    const config::Component* m = find(c.fast_memory());
    if (m == nullptr) {
      o.error("fast_memory", "no component named \"" + c.fast_memory() + "\"");
    } else if (!(m->has_hbm() || m->has_gddr() || m->has_ddr() || m->has_sram() || m->has_cxl())) {
      o.error("fast_memory", "\"" + c.fast_memory() + "\" is not a memory");
    }
  }
  if (!c.has_resident_fraction() || !(c.resident_fraction() >= 0 && c.resident_fraction() <= 1)) {
    o.error("resident_fraction", "required, in [0, 1]");
  }
  if (c.controller() == config::CONTROLLER_PLACEMENT_UNSPECIFIED) {
    o.error("controller", "required: HOST_CPU, DPU or ON_ACCELERATOR");
  }
  if (c.notification() == config::NOTIFICATION_UNSPECIFIED) {
    o.error("notification", "required: INTERRUPT, POLLING or DOORBELL");
  }
  validate_jitter(c.decision_jitter(), o.at("decision_jitter"));
  if (c.has_dma()) {
    const config::Component* d = find(c.dma());
    if (d == nullptr || !d->has_dma()) o.error("dma", "no DMA engine named \"" + c.dma() + "\"");
  }
  if (c.has_unsigned_fraction() && !(c.unsigned_fraction() >= 0 && c.unsigned_fraction() <= 1)) {
    o.error("unsigned_fraction", "must be in [0, 1]");
  }
  if ((c.has_verify_latency_ps() || c.has_unsigned_fraction()) && !c.signed_descriptors()) {
    o.error(c.has_verify_latency_ps() ? "verify_latency_ps" : "unsigned_fraction",
            "needs signed_descriptors: true");
  }
  if (c.has_host_attention()) {
    const auto& h = c.host_attention();
    Validator hv = o.at("host_attention");
    if (hv.non_empty("cpu", h.has_cpu(), h.cpu())) {
      const config::Component* d = find(h.cpu());
      if (d == nullptr || !d->has_dma()) {
        hv.error("cpu", "no dma component named \"" + h.cpu() + "\" (the host CPU's load path)");
      }
    }
    hv.positive("flops_per_s", h.has_flops_per_s(), h.flops_per_s());
    if (hv.non_empty("memory", h.has_memory(), h.memory())) {
      const config::Component* m = find(h.memory());
      if (m == nullptr || !(m->has_ddr() || m->has_cxl() || m->has_hbm() || m->has_gddr())) {
        hv.error("memory", "\"" + h.memory() + "\" is not a host memory (ddr, cxl, hbm, gddr)");
      }
    }
    if (!c.has_kv_resident() || c.kv_resident()) {
      hv.error("", "needs kv_resident: false (the KV stays at home, next to the CPU)");
    }
  }
  if (c.has_second_tier()) {
    const auto& t = c.second_tier();
    Validator tv = o.at("second_tier");
    if (tv.non_empty("memory", t.has_memory(), t.memory())) {
      const config::Component* m = find(t.memory());
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
  if (c.replacement() != config::REPLACEMENT_UNSPECIFIED) {
    o.positive("cache_bytes", c.has_cache_bytes(), double(c.cache_bytes()));
    if (c.has_page_bytes()) o.positive("page_bytes", true, double(c.page_bytes()));
    if (c.prefetch_layers() > 0) {
      o.error("replacement", "a dynamic cache runs without prefetch_layers (set it to 0)");
    }
  } else if (c.has_cache_bytes() || c.has_page_bytes()) {
    o.error(c.has_cache_bytes() ? "cache_bytes" : "page_bytes", "needs a replacement policy");
  }
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
    refuse(c.has_context_regions(), "context_regions");
    if (oc.has_prefetch_confidence() &&
        !(oc.prefetch_confidence() >= 0 && oc.prefetch_confidence() <= 1)) {
      cv.error("prefetch_confidence", "must be in [0, 1]");
    }
    const bool mode = oc.prefetch() != config::OBJECT_PREFETCH_UNSPECIFIED;
    if ((mode || oc.has_prefetch_confidence()) && oc.prefetch_layers() == 0) {
      cv.error(mode ? "prefetch" : "prefetch_confidence", "needs prefetch_layers > 0");
    }
  }
  if (c.has_dpu_buffer()) {
    const auto& b = c.dpu_buffer();
    Validator bv = o.at("dpu_buffer");
    if (bv.non_empty("memory", b.has_memory(), b.memory())) {
      const config::Component* m = find(b.memory());
      if (m == nullptr || !(m->has_ddr() || m->has_sram() || m->has_hbm() || m->has_cxl())) {
        bv.error("memory", "no ddr, sram, hbm or cxl component named \"" + b.memory() + "\"");
      }
    }
    if (b.has_dma()) {
      const config::Component* d = find(b.dma());
      if (d == nullptr || !d->has_dma()) bv.error("dma", "no DMA engine named \"" + b.dma() + "\"");
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
  if (c.has_arbiter_path_bytes_per_s()) {
    // Allowed with any kv_restore (a sweep over the modes keeps it), used by ARBITRATE only.
    o.positive("arbiter_path_bytes_per_s", true, c.arbiter_path_bytes_per_s());
  }
  auto check_precision = [](const config::ResidentPrecision& rp, Validator pv) {
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
  };
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
  if (c.has_wired()) {
    const auto& w = c.wired();
    Validator wv = o.at("wired");
    if (wv.non_empty("memory", w.has_memory(), w.memory())) {
      const config::Component* m = find(w.memory());
      if (m == nullptr || !(m->has_sram() || m->has_hbm() || m->has_gddr())) {
        wv.error("memory", "no sram, hbm or gddr component named \"" + w.memory() + "\"");
      }
    }
    wv.positive("quota_bytes", w.has_quota_bytes(), double(w.quota_bytes()));
  }
  if (c.has_residency_map()) {
    const auto& m = c.residency_map();
    Validator mv = o.at("residency_map");
    mv.positive("entries", m.has_entries(), double(m.entries()));
    if (m.has_entry_bits()) mv.positive("entry_bits", true, double(m.entry_bits()));
    mv.require("software_latency_ps", m.has_software_latency_ps());
    if (c.prefetch_layers() == 0) {
      mv.error("", "needs prefetch_layers > 0 (the map is looked up for each copy decision)");
    }
  }
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

OrchestrationParams OrchestrationParams::from_config(const config::Orchestration& c) {
  OrchestrationParams p;
  p.fast_memory = c.fast_memory();
  p.dma = c.dma();
  p.resident_fraction = c.resident_fraction();
  p.kv_resident = c.has_kv_resident() ? c.kv_resident() : true;
  p.prefetch_layers = c.prefetch_layers();
  p.controller = c.controller();
  // Without explicit latencies, the controller's place and the notification kind give the
  // middle of their ranges (mechanisms.md s.3.3 and s.3.5; C).
  const TimePs decision_default[] = {0, 27'500'000, 3'000'000, 300'000};  // host, DPU, accel
  const TimePs notify_default[] = {0, 10'000'000, 1'500'000, 300'000};    // interrupt, poll, bell
  p.decision_latency_ps =
      c.has_decision_latency_ps() ? c.decision_latency_ps() : decision_default[c.controller()];
  p.decision_jitter = c.decision_jitter();
  p.notification = c.notification();
  p.notification_latency_ps = c.has_notification_latency_ps() ? c.notification_latency_ps()
                                                              : notify_default[c.notification()];
  p.replacement = c.replacement();
  p.cache_bytes = c.cache_bytes();
  p.confidence = c.confidence();
  p.precision = c.resident_precision();
  p.wired_memory = c.wired().memory();
  p.wired_quota_bytes = c.wired().quota_bytes();
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

Orchestrator::Orchestrator(sc_core::sc_module_name name, const OrchestrationParams& p, Context& ctx)
    : sc_core::sc_module(name),
      p_(p),
      ctx_(ctx),
      owner_(basename()),
      rng_(ctx.rng_for(std::string(basename()) + ".decisions")),
      decisions_(
          ctx.stats().counter("orchestrator", "decisions", "prefetch decisions taken", "count")),
      prefetch_bytes_(ctx.stats().counter("orchestrator", "prefetch_bytes",
                                          "bytes copied home -> fast memory ahead of use",
                                          "bytes")),
      demand_bytes_(ctx.stats().counter("orchestrator", "demand_bytes",
                                        "bytes streamed from home on demand (not prefetched)",
                                        "bytes")),
      resident_bytes_read_(ctx.stats().counter("orchestrator", "resident_bytes",
                                               "bytes read from the resident part", "bytes")),
      staged_bytes_read_(ctx.stats().counter("orchestrator", "staged_bytes",
                                             "bytes read from staged prefetches", "bytes")),
      data_stall_ps_(ctx.stats().counter("orchestrator", "data_stall_ps",
                                         "exposed stall: tiles waiting for a prefetch copy to land",
                                         "ps")),
      notify_stall_ps_(ctx.stats().counter(
          "orchestrator", "notification_stall_ps",
          "exposed stall: tiles waiting for the completion notification", "ps")),
      late_tiles_(ctx.stats().counter("orchestrator", "late_tiles",
                                      "staged tiles the consumer reached before they were ready",
                                      "count")),
      staged_tiles_(ctx.stats().counter("orchestrator", "staged_tiles",
                                        "tiles read from staged prefetches", "count")),
      decision_to_ready_ns_(ctx.stats().histogram(
          "orchestrator", "trigger_to_ready", "from a prefetch's trigger to its data being usable",
          "ns", Histogram::log2_edges(1, 1 << 30))),
      rejected_(ctx.stats().counter("orchestrator", "descriptors_rejected",
                                    "copy descriptors rejected at the fabric (unsigned)", "count")),
      cache_hits_(ctx.stats().counter("orchestrator", "cache_hits",
                                      "tiles read from the dynamic cache", "count")),
      cache_misses_(ctx.stats().counter("orchestrator", "cache_misses",
                                        "tiles of cached objects read from home", "count")),
      admission_bytes_(ctx.stats().counter("orchestrator", "admission_bytes",
                                           "bytes copied into cache frames after a miss",
                                           "bytes")) {
  SC_METHOD(run);
  sensitive << wake_;
  dont_initialize();
  if (p_.has_map) map_ = std::make_unique<ResidencyMap>(p_.map);
  path_rate_ = p_.arbiter_path_bytes_per_s;
}

bool Orchestrator::restore_by_recompute(const ObjectInfo& kv, uint64_t kv_bytes,
                                        uint64_t hidden_bytes, double recompute_flops_per_s) {
  const double flops = double(kv_bytes) * kv.recompute_flops_per_byte;
  bool recompute = p_.kv_restore == config::KV_RESTORE_RECOMPUTE;
  if (p_.kv_restore == config::KV_RESTORE_ARBITRATE && path_rate_ > 0) {
    // The engine streams: an operand's reads and its arithmetic overlap, the slower bounds.
    const double transfer_s = double(kv_bytes) / path_rate_;
    const double recompute_s =
        std::max(double(hidden_bytes) / path_rate_, flops / recompute_flops_per_s);
    recompute = recompute_s < transfer_s;
  }
  if (recompute) {
    kv_recomputed_bytes_ += kv_bytes;
    hidden_bytes_read_ += hidden_bytes;
    recompute_flops_ += flops;
  } else {
    kv_transferred_bytes_ += kv_bytes;
  }
  return recompute;
}

void Orchestrator::observe_home_rate(uint64_t bytes, TimePs busy_ps) {
  if (busy_ps == 0 || bytes < (1u << 20)) return;  // too short to say
  const double rate = double(bytes) / (double(busy_ps) * 1e-12);
  path_rate_ = path_rate_ > 0 ? 0.5 * path_rate_ + 0.5 * rate : rate;
}

TimePs Orchestrator::decide(TimePs trigger, TimePs extra) {
  const TimePs decided = std::max(trigger, controller_free_) + extra + p_.decision_latency_ps +
                         draw_jitter(p_.decision_jitter, rng_);
  controller_free_ = decided;
  decisions_.inc();
  return decided;
}

TimePs Orchestrator::copy(DmaEngine& dma, uint64_t src, uint64_t dst, uint64_t bytes,
                          const MovementIntent& intent, TimePs start) {
  // Copies of more than a TLM length go in pieces; landed when the last piece has.
  TimePs landed = start;
  for (uint64_t off = 0; off < bytes;) {
    const uint64_t n = std::min<uint64_t>(bytes - off, 1ULL << 30);
    landed = std::max(landed, dma.transfer(src + off, dst + off, n, intent, start));
    off += n;
  }
  return landed;
}

void Orchestrator::run() {
  issue_due(now_ps());
}

void Orchestrator::issue_due(TimePs now) {
  if (regions_) {
    const TimePs next = issue_region_copies(now);
    if (next != 0) wake_.notify(to_sc_time(next - now));
  }
  if (extents_) {
    const TimePs next = issue_object_copies(now);
    if (next != 0) wake_.notify(to_sc_time(next - now));
  }
  if (!bslot_base_.empty()) {
    const TimePs next = issue_buffer_copies(now);
    if (next != 0) wake_.notify(to_sc_time(next - now));
  }
  while (queue_head_ < queue_.size()) {
    const ObjectId id = queue_[queue_head_];
    Staged& st = staged_.at(id.value());
    if (st.decided_ps > now) {
      wake_.notify(to_sc_time(st.decided_ps - now));
      return;
    }
    // From the DPU's buffer when this layer's stage-1 copy of the object was issued there; the
    // copy is issued once that one landed (in decision order: later copies wait behind it).
    const Buffered* from_buffer = nullptr;
    if (!bslot_base_.empty()) {
      auto b = buffered_.find(id.value());
      if (b != buffered_.end() && b->second.issued &&
          bslot_generation_[(b->second.generation - 1) % bslot_base_.size()] ==
              b->second.generation) {
        from_buffer = &b->second;
        if (from_buffer->landed_ps > now) {
          st.decided_ps = from_buffer->landed_ps;
          wake_.notify(to_sc_time(st.decided_ps - now));
          return;
        }
      } else if (b != buffered_.end()) {
        buffered_.erase(b);  // a stage-1 copy not issued by now is cancelled: read home
      }
    }
    ++queue_head_;
    const ObjectInfo& o = ctx_.objects().get(id);
    const Split& s = split_.at(id.value());
    const uint64_t bytes = o.size_bytes - s.resident_bytes;
    MovementIntent intent;
    intent.object = id;
    intent.object_class = o.cls;
    intent.op = MoveOp::kPrefetch;
    intent.layer = o.layer;
    if (!bslot_base_.empty())
      (from_buffer ? buffer_sourced_bytes_ : buffer_bypassed_bytes_) += bytes;
    if (from_buffer) {
      const TimePs done = copy(*dma_, from_buffer->address, st.address, bytes, intent, now);
      buffered_.erase(id.value());  // consumed
      prefetch_bytes_.inc(bytes);
      if (map_) map_->complete(id.value(), true);
      st.issued = true;
      st.landed_ps = done;
      st.ready_ps = done + p_.notification_latency_ps;
      decision_to_ready_ns_.record(double(st.ready_ps - st.trigger_ps) / kPsPerNs);
      continue;
    }
    // The middle tier's part, then the home part; copies of more than a TLM length go in
    // pieces.
    TimePs landed = now;
    for (uint64_t off = 0; off < bytes;) {
      const uint64_t at = s.resident_bytes + off;  // offset in the object
      const uint64_t end = at < s.tier_end ? s.tier_end : o.size_bytes;
      const uint64_t n = std::min<uint64_t>(end - at, 1ULL << 30);
      const uint64_t src =
          at < s.tier_end ? s.tier_address + (at - s.resident_bytes) : o.address + at;
      landed = std::max(landed, dma_->transfer(src, st.address + off, n, intent, now));
      off += n;
    }
    prefetch_bytes_.inc(bytes);
    if (map_) map_->complete(id.value(), true);
    st.issued = true;
    st.landed_ps = landed;
    st.ready_ps = landed + p_.notification_latency_ps;
    decision_to_ready_ns_.record(double(st.ready_ps - st.trigger_ps) / kPsPerNs);
  }
  queue_.clear();
  queue_head_ = 0;
}

void Orchestrator::prepare(const std::string& default_dma, uint64_t tile_bytes) {
  dma_ = dynamic_cast<DmaEngine*>(ctx_.component(p_.dma.empty() ? default_dma : p_.dma));
  if (dma_ == nullptr) throw std::logic_error(owner_ + ": orchestrator DMA engine missing");
  const std::string at = "policy.orchestration";
  auto& map = ctx_.address_map();
  for (const auto& o : ctx_.objects().all()) {
    for (const auto& ph : o.intent.phases)
      if (ph.first_step > 0) phase_starts_.insert(ph.first_step);
  }
  auto place = [&](uint64_t bytes, const std::string& what) {
    auto a = map.allocate(p_.fast_memory, std::max<uint64_t>(bytes, 1), 4096);
    if (!a) {
      throw ConfigError({ConfigIssue{
          {},
          at + ".fast_memory",
          "\"" + p_.fast_memory + "\" has no room for " + what + " (" + std::to_string(bytes) +
              " bytes; " +
              std::to_string(map.capacity(p_.fast_memory) - map.allocated(p_.fast_memory)) +
              " left)"}});
    }
    return *a;
  };
  // Wired residency first: the arbiter's choice of whole objects is bound in the wired memory.
  if (!p_.wired_memory.empty()) {
    std::vector<WiredCandidate> candidates;
    std::vector<ObjectId> ids;
    for (size_t i = 0; i < ctx_.objects().size(); ++i) {
      const ObjectInfo& o = ctx_.objects().get(ObjectId(static_cast<uint32_t>(i)));
      if (o.cls != ObjectClass::kWeight && o.cls != ObjectClass::kEmbedding &&
          o.cls != ObjectClass::kDraftWeight) {
        continue;
      }
      WiredCandidate c;
      c.name = o.name;
      c.bytes = (o.size_bytes + 4095) / 4096 * 4096;
      c.reuse_per_step = o.intent.uses_per_step;
      c.bytes_saved_per_reuse = double(o.size_bytes);
      c.bind_cost_bytes = o.size_bytes;
      candidates.push_back(c);
      ids.push_back(ObjectId(static_cast<uint32_t>(i)));
    }
    const uint64_t room = map.capacity(p_.wired_memory) - map.allocated(p_.wired_memory);
    const WiredChoice choice = choose_wired(candidates, std::min(p_.wired_quota_bytes, room));
    for (size_t k : choice.chosen) {
      ObjectInfo& o = ctx_.objects().get_mutable(ids[k]);
      auto a = map.allocate(p_.wired_memory, o.size_bytes, 4096);
      if (!a) continue;  // the quota is within the room: cannot happen
      o.address = *a;
      o.home = p_.wired_memory;
      wired_.insert(ids[k].value());
      wired_bytes_ += o.size_bytes;
    }
    wired_saved_per_step_ = choice.saved_bytes_per_step;
  }
  // Decoder layers: the largest valid layer id + 1; weights outside the layers (final norm, LM
  // head) form one more, virtual, layer at the end of each step.
  for (const auto& o : ctx_.objects().all()) {
    if (o.layer.valid()) layers_ = std::max(layers_, o.layer.value() + 1);
  }
  layer_objects_.assign(layers_ + 1, {});
  std::vector<uint64_t> layer_home(layers_ + 1, 0);
  // Precision states: which weights' resident parts are lowered (guardrail: ascending
  // sensitivity while the quality proxy stays within budget).
  std::unordered_set<uint32_t> lowered;
  double scale = 1.0;
  if (p_.precision.dtype() != config::DTYPE_UNSPECIFIED) {
    const double low = dtype_bits(p_.precision.dtype());
    const double full = dtype_bits(ctx_.config().workload().model().weight_dtype());
    scale = std::min(1.0, low / full);
    dequant_flops_per_byte_ =
        (p_.precision.has_dequant_flops_per_element() ? p_.precision.dequant_flops_per_element()
                                                      : 2.0) /
        (full / 8.0);
    const double err = std::pow(2.0, -low);
    struct Candidate {
      double sensitivity;
      uint32_t id;
      uint64_t bytes;
    };
    std::vector<Candidate> candidates;
    double total = 0;
    for (size_t i = 0; i < ctx_.objects().size(); ++i) {
      const ObjectInfo& o = ctx_.objects().get(ObjectId(static_cast<uint32_t>(i)));
      if (o.cls != ObjectClass::kWeight || wired_.count(uint32_t(i))) continue;
      double sens = 1.0;
      for (const auto& sp : p_.precision.sensitivity()) {
        if (o.name.rfind(sp.prefix(), 0) == 0 && o.name.find(sp.contains()) != std::string::npos) {
          sens = sp.value();
        }
      }
      // Byte shares: the resident parts, or (object cache) whole objects.
      const double resident = p_.object_cache
                                  ? double(o.size_bytes)
                                  : std::min(1.0, p_.resident_fraction) * double(o.size_bytes);
      candidates.push_back({sens, uint32_t(i), uint64_t(resident)});
      total += resident;
    }
    std::stable_sort(
        candidates.begin(), candidates.end(),
        [](const Candidate& a, const Candidate& b) { return a.sensitivity < b.sensitivity; });
    const bool limited = p_.precision.has_quality_budget();
    for (const auto& c : candidates) {
      const double dq = total > 0 ? c.sensitivity * err * double(c.bytes) / total : 0.0;
      if (limited && quality_proxy_ + dq > p_.precision.quality_budget() + 1e-15) {
        ++precision_vetoes_;
        continue;
      }
      quality_proxy_ += dq;
      lowered.insert(c.id);
    }
    lowered_objects_ = lowered.size();
    if (p_.object_cache) {
      // Each lowered object's low-precision copy at home (next to the full one).
      low_scale_ = scale;
      for (uint32_t id : lowered) {
        ObjectInfo& o = ctx_.objects().get_mutable(ObjectId(id));
        const uint64_t stored = static_cast<uint64_t>(std::ceil(double(o.size_bytes) * scale));
        auto a = map.allocate(o.home, stored, 4096);
        if (!a) {
          throw ConfigError({ConfigIssue{
              {},
              at + ".object_cache.precision",
              "\"" + o.home + "\" has no room for the low-precision copy of " + o.name}});
        }
        low_copy_[id] = *a;
      }
    }
  }
  for (size_t i = 0; i < ctx_.objects().size(); ++i) {
    const ObjectId id(static_cast<uint32_t>(i));
    ObjectInfo& o = ctx_.objects().get_mutable(id);
    const bool kv = o.cls == ObjectClass::kKvCache;
    if (wired_.count(id.value())) continue;
    if (o.cls != ObjectClass::kWeight) {
      // Embedding tables, draft weights and (with kv_resident) KV caches move to the fast
      // memory whole; activations are the engine's.
      if (kv && !p_.kv_resident) continue;
      if (o.cls == ObjectClass::kActivation) continue;
      o.address = place(o.size_bytes, o.name);
      o.home = p_.fast_memory;
      continue;
    }
    // Weights: the first resident_fraction (in whole 4 KiB pages) stays in the fast memory.
    uint64_t resident =
        static_cast<uint64_t>(std::floor(double(o.size_bytes) * p_.resident_fraction));
    resident = resident / 4096 * 4096;
    if (p_.resident_fraction >= 1.0) resident = o.size_bytes;
    const bool low = lowered.count(id.value()) != 0;
    if (resident >= o.size_bytes && !low) {
      o.address = place(o.size_bytes, o.name);
      o.home = p_.fast_memory;
      resident_stored_bytes_ += o.size_bytes;
      continue;
    }
    Split s;
    s.resident_bytes = resident;
    s.tier_end = resident;
    s.scale = low ? scale : 1.0;
    const uint64_t stored = static_cast<uint64_t>(std::ceil(double(resident) * s.scale));
    if (resident > 0) s.resident_address = place(stored, o.name);
    resident_stored_bytes_ += resident > 0 ? stored : 0;
    if (resident >= o.size_bytes) {  // wholly resident, lowered: no home part to prefetch
      split_[id.value()] = s;
      continue;
    }
    if (!p_.tier_memory.empty()) {
      uint64_t tier =
          static_cast<uint64_t>(std::floor(double(o.size_bytes) * p_.tier_fraction)) / 4096 * 4096;
      if (p_.resident_fraction + p_.tier_fraction >= 1.0) tier = o.size_bytes;
      tier = std::min(tier, o.size_bytes - resident);
      if (tier > 0) {
        auto a = map.allocate(p_.tier_memory, tier, 4096);
        if (!a) {
          throw ConfigError({ConfigIssue{
              {},
              at + ".second_tier.memory",
              "\"" + p_.tier_memory + "\" has no room for " + o.name + " (" + std::to_string(tier) +
                  " bytes; " +
                  std::to_string(map.capacity(p_.tier_memory) - map.allocated(p_.tier_memory)) +
                  " left)"}});
        }
        s.tier_address = *a;
        s.tier_end = resident + tier;
      }
    }
    split_[id.value()] = s;
    const uint32_t layer = o.layer.valid() ? o.layer.value() : layers_;
    layer_objects_[layer].push_back(id);
    layer_home[layer] += o.size_bytes - resident;
  }
  // The dynamic cache's frames.
  if (p_.replacement != config::REPLACEMENT_UNSPECIFIED) {
    page_bytes_ = p_.page_bytes ? p_.page_bytes : tile_bytes;
    const uint64_t frames = p_.cache_bytes / page_bytes_;
    const uint64_t base = place(frames * page_bytes_, "the cache frames");
    for (uint64_t f = frames; f-- > 0;)
      free_frames_.push_back(base + f * page_bytes_);
    PolicyParams pp;
    pp.frames = static_cast<uint32_t>(frames);
    pp.page_bytes = page_bytes_;
    const auto& g = p_.confidence;
    if (g.has_admit_lb()) pp.admit_lb = g.admit_lb();
    if (g.has_evict_ub()) pp.evict_ub = g.evict_ub();
    if (g.has_z()) pp.z = g.z();
    if (g.has_epoch_pages()) pp.epoch_accesses = g.epoch_pages();
    pp.budget_migration_bytes = g.budget_bytes_per_epoch();
    pp.budget_faults = g.budget_faults_per_epoch();
    pp.blend_eta = g.blend_eta();
    const PolicyKind kinds[] = {PolicyKind::kStream,     PolicyKind::kLru,
                                PolicyKind::kLfu,        PolicyKind::kArc,
                                PolicyKind::kBelady,     PolicyKind::kRegret,
                                PolicyKind::kConfidence, PolicyKind::kPredictedRegret};
    // BELADY bypasses everything until it knows the future (the first step).
    policy_ = make_policy(
        p_.replacement == config::REPLACEMENT_BELADY ? PolicyKind::kStream : kinds[p_.replacement],
        pp);
  }
  if (p_.regions) prepare_regions(place);
  if (p_.object_cache) {
    const uint64_t bytes = p_.objects.bytes() / 4096 * 4096;
    extent_base_ = place(bytes, "the object cache");
    extents_ = std::make_unique<ExtentAllocator>(bytes, 4096);
    compaction_left_ = p_.objects.compaction_bytes_per_step();
  }
  // The staging area: k + 1 slots of the largest layer's home bytes.
  if (p_.prefetch_layers > 0) {
    for (uint64_t b : layer_home)
      slot_bytes_ = std::max(slot_bytes_, (b + 4095) / 4096 * 4096);
    for (uint32_t i = 0; i <= p_.prefetch_layers && slot_bytes_ > 0; ++i) {
      slot_base_.push_back(place(slot_bytes_, "the prefetch staging area"));
      slot_generation_.push_back(0);
    }
    if (!p_.buffer_memory.empty() && slot_bytes_ > 0) {
      buffer_dma_ =
          p_.buffer_dma.empty() ? dma_ : dynamic_cast<DmaEngine*>(ctx_.component(p_.buffer_dma));
      if (buffer_dma_ == nullptr) throw std::logic_error(owner_ + ": DPU DMA engine missing");
      for (uint32_t i = 0; i <= p_.buffer_lookahead; ++i) {
        auto a = map.allocate(p_.buffer_memory, slot_bytes_, 4096);
        if (!a) {
          throw ConfigError(
              {ConfigIssue{{},
                           at + ".dpu_buffer.memory",
                           "\"" + p_.buffer_memory + "\" has no room for " +
                               std::to_string(p_.buffer_lookahead + 1) + " slots of " +
                               std::to_string(slot_bytes_) + " bytes"}});
        }
        bslot_base_.push_back(*a);
        bslot_generation_.push_back(0);
      }
    }
  }
}

void Orchestrator::on_op_start(const Op& op, TimePs now) {
  if (regions_ && op.kind == OpKind::kAttention) regions_on_attention(op, now);
  if (extents_) {
    // The previous op's references end: its extents may move again.
    for (ExtentAllocator::Handle h : op_refs_)
      extents_->release(h);
    op_refs_.clear();
    ++op_serial_;
    // Prefetch with lookahead: the first op of each layer (the final norm and LM head are the
    // virtual last layer) triggers layer + k.
    const uint32_t k = p_.objects.prefetch_layers();
    const bool head =
        !op.layer.valid() && (op.kind == OpKind::kEmbedding || op.kind == OpKind::kEmbeddingNorm);
    const uint32_t layer = op.layer.valid() ? op.layer.value() : layers_;
    if (k > 0 && !head && layer != last_object_layer_) {
      last_object_layer_ = layer;
      prefetch_objects((layer + k) % (layers_ + 1), layer + k > layers_, now);
    }
  }
  if (p_.prefetch_layers == 0 || slot_base_.empty()) return;
  // Ops outside the decoder layers: the embedding starts a step (no trigger); the final norm and
  // LM head are the virtual last layer.
  uint32_t layer = layers_;
  if (op.layer.valid()) {
    layer = op.layer.value();
  } else if (op.kind == OpKind::kEmbedding || op.kind == OpKind::kEmbeddingNorm) {
    return;
  }
  if (layer == last_layer_) return;
  last_layer_ = layer;
  // The virtual last layer (final norm, LM head) counts as layer `layers_`; targets wrap into
  // the next step.
  prefetch_layer((layer + p_.prefetch_layers) % (layers_ + 1), now);
  if (!bslot_base_.empty()) buffer_layer((layer + p_.buffer_lookahead) % (layers_ + 1), now);
}

void Orchestrator::prefetch_layer(uint32_t layer, TimePs trigger) {
  if (layer_objects_[layer].empty()) return;
  const size_t slot = generation_ % slot_base_.size();
  const uint64_t generation = ++generation_;
  slot_generation_[slot] = generation;
  uint64_t offset = 0;
  for (ObjectId id : layer_objects_[layer]) {
    const ObjectInfo& o = ctx_.objects().get(id);
    const Split& s = split_.at(id.value());
    const uint64_t bytes = o.size_bytes - s.resident_bytes;
    // One decision per object's copy (a descriptor), serialised on the controller; with a
    // residency map it first looks the object up (a miss takes the software path).
    const TimePs lookup = map_ ? map_->lookup(id.value(), Tier::kHbm) : 0;
    const TimePs decided = decide(trigger, lookup);
    const uint64_t dst = slot_base_[slot] + offset;
    offset += (bytes + 4095) / 4096 * 4096;
    if (p_.signed_descriptors && p_.unsigned_fraction > 0 &&
        rng_.uniform() < p_.unsigned_fraction) {
      rejected_.inc();  // not copied: its data will be read from home on demand
      auto old = staged_.find(id.value());
      if (old != staged_.end() && old->second.issued && !old->second.used) {
        unused_prefetch_bytes_ += old->second.bytes;
      }
      staged_.erase(id.value());
      continue;
    }
    auto old = staged_.find(id.value());
    if (old != staged_.end() && old->second.issued && !old->second.used) {
      unused_prefetch_bytes_ += old->second.bytes;
    }
    Staged st;
    st.address = dst;
    st.bytes = bytes;
    st.decided_ps = decided + (p_.signed_descriptors ? p_.verify_latency_ps : 0);
    st.generation = generation;
    st.trigger_ps = trigger;
    staged_[id.value()] = st;
    queue_.push_back(id);
  }
  issue_due(trigger);
}

void Orchestrator::buffer_layer(uint32_t layer, TimePs trigger) {
  if (layer_objects_[layer].empty()) return;
  const size_t slot = bgeneration_ % bslot_base_.size();
  const uint64_t generation = ++bgeneration_;
  bslot_generation_[slot] = generation;
  uint64_t offset = 0;
  for (ObjectId id : layer_objects_[layer]) {
    const ObjectInfo& o = ctx_.objects().get(id);
    const uint64_t bytes = o.size_bytes - split_.at(id.value()).resident_bytes;
    // One decision per object's copy into the buffer, on the same controller.
    const TimePs decided = decide(trigger);
    Buffered b;
    b.address = bslot_base_[slot] + offset;
    b.decided_ps = decided;
    b.generation = generation;
    offset += (bytes + 4095) / 4096 * 4096;
    buffered_[id.value()] = b;
    bqueue_.push_back({id.value(), generation});
  }
  issue_due(trigger);
}

TimePs Orchestrator::issue_buffer_copies(TimePs now) {
  while (bhead_ < bqueue_.size()) {
    const auto [id, generation] = bqueue_[bhead_];
    auto b = buffered_.find(id);
    if (b == buffered_.end() || b->second.issued || b->second.generation != generation) {
      // Consumed, or superseded by a later round's decision (queued after this one).
      ++bhead_;
      continue;
    }
    if (b->second.decided_ps > now) return b->second.decided_ps;
    ++bhead_;
    const ObjectInfo& o = ctx_.objects().get(ObjectId(id));
    const Split& s = split_.at(id);
    const uint64_t bytes = o.size_bytes - s.resident_bytes;
    MovementIntent intent;
    intent.object = ObjectId(id);
    intent.object_class = o.cls;
    intent.op = MoveOp::kPrefetch;
    intent.layer = o.layer;
    const TimePs landed =
        copy(*buffer_dma_, o.address + s.resident_bytes, b->second.address, bytes, intent, now);
    b->second.issued = true;
    b->second.landed_ps = landed;
    buffer_bytes_ += bytes;
  }
  bqueue_.clear();
  bhead_ = 0;
  return 0;
}

std::pair<double, double> Orchestrator::intent_at(const ObjectInfo& o, uint32_t step) const {
  if (!p_.intent_per_phase) return {o.intent.uses_per_step, o.intent.confidence};
  return o.intent.at(step);
}

void Orchestrator::on_step_start(uint32_t step) {
  step_ = step;
  // A phase begins: the page cache re-ingests the intents (as pages are next visited).
  if (p_.intent_per_phase && phase_starts_.count(step)) intent_given_.clear();
  if (extents_) {
    compaction_left_ = p_.objects.compaction_bytes_per_step();
    // Prefetched objects nobody read within their step lose their protection.
    for (auto it = protected_.begin(); it != protected_.end();) {
      if (it->second > step) {
        ++it;
        continue;
      }
      CachedObject& c = cached_.at(it->first);
      if (c.resident) extents_->release(c.handle);
      c.prefetched = false;
      it = protected_.erase(it);
    }
  }
  if (p_.replacement != config::REPLACEMENT_BELADY || step != 1 || !policy_) return;
  // Decode steps read the same weight pages in the same order: the future is the first step's
  // sequence, repeated for the steps left.
  const uint32_t steps = ctx_.workload()->total_steps();
  std::vector<PageKey> future;
  for (uint32_t s = 1; s < std::max<uint32_t>(steps, 2); ++s)
    future.insert(future.end(), first_step_pages_.begin(), first_step_pages_.end());
  PolicyParams pp = policy_->params();
  policy_ = make_policy(PolicyKind::kBelady, pp);
  policy_->set_future(future);
  accesses_ = 0;
}

Orchestrator::Source Orchestrator::cache_lookup(ObjectId object, const ObjectInfo& o,
                                                uint64_t offset, uint64_t max_bytes, TimePs now) {
  Source src;
  const uint64_t page = offset / page_bytes_;
  const uint64_t in_page = offset - page * page_bytes_;
  src.bytes = std::min(max_bytes, page_bytes_ - in_page);
  src.ready_ps = src.landed_ps = now;
  const PageKey key = (PageKey(object.value()) << 32) | page;
  // One access per page visit: the first tile of each page (tiles and pages align by default).
  if (in_page == 0) {
    const PolicyKind kind = policy_->kind();
    if ((kind == PolicyKind::kConfidence || kind == PolicyKind::kPredictedRegret) &&
        intent_given_.insert(object.value()).second) {
      // The object's declared intent for each of its pages (see ConfidenceGate and
      // REPLACEMENT_PREDICTED_REGRET).
      const auto& g = p_.confidence;
      PageIntent in;
      const auto [uses, confidence] = intent_at(o, step_);
      in.mu = g.has_intent_override() ? g.intent_override() : std::clamp(confidence, 0.0, 1.0);
      // Use in a step as a Bernoulli trial: its standard deviation (0 for dense weights).
      in.sigma = std::sqrt(in.mu * (1.0 - in.mu));
      in.group = static_cast<uint32_t>(o.cls);
      const Component* home = ctx_.component(o.home);
      const Tier tier = home ? home->tier() : Tier::kHbm;
      const double ladder[] = {1.0, 0.1, 1.0, 10.0, 30.0, 10000.0};  // none, SRAM, HBM, DDR, ...
      in.stall_penalty = ladder[static_cast<int>(tier)];
      in.remaining_accesses = std::max(1.0, uses) * double(ctx_.workload()->total_steps() - step_);
      const uint64_t pages = (o.size_bytes + page_bytes_ - 1) / page_bytes_;
      for (uint64_t pg = 0; pg < pages; ++pg)
        policy_->set_intent((PageKey(object.value()) << 32) | pg, in);
    }
    if (step_ == 0) first_step_pages_.push_back(key);
    page_stream_.push_back(key);
    const AccessOutcome r = policy_->access(key, accesses_++);
    if (r.victim) {
      free_frames_.push_back(frame_of_.at(*r.victim));
      frame_of_.erase(*r.victim);
      evicted_at_[*r.victim] = page_stream_.size();
    }
    if (r.admitted) {
      frame_of_[key] = free_frames_.back();
      free_frames_.pop_back();
      auto e = evicted_at_.find(key);
      if (e != evicted_at_.end() && page_stream_.size() - e->second <= 64) ++oscillations_;
    }
    (r.hit ? cache_hits_ : cache_misses_).inc();
    if (r.hit) {
      src.address = frame_of_.at(key);
      src.path = Path::kResident;
      return src;
    }
    src.address = o.address + offset;
    src.path = Path::kDemand;
    if (r.admitted) src.admit_address = frame_of_.at(key);
    return src;
  }
  // A tile that starts inside a page (pages larger than tiles, or an operand not aligned to
  // pages) follows the page's first visit: from the frame when the page is resident (its copy
  // is not modelled separately), else from home.
  auto f = frame_of_.find(key);
  if (f != frame_of_.end() && policy_->resident(key)) {
    src.address = f->second + in_page;
    src.path = Path::kResident;
    return src;
  }
  src.address = o.address + offset;
  src.path = Path::kDemand;
  return src;
}

Orchestrator::Source Orchestrator::locate(ObjectId object, uint64_t offset, uint64_t max_bytes,
                                          TimePs now) {
  const ObjectInfo& o = ctx_.objects().get(object);
  Source src;
  if (regions_ && o.cls == ObjectClass::kKvCache) {
    auto r = region_obj_.find(object.value());
    if (r != region_obj_.end()) return region_lookup(object, o, r->second, offset, max_bytes, now);
  }
  auto it = split_.find(object.value());
  if (it == split_.end()) {  // wholly in one place (home, relocated or wired)
    src.address = o.address + offset;
    src.bytes = max_bytes;
    src.ready_ps = src.landed_ps = now;
    src.path = o.home == p_.fast_memory ? Path::kResident : Path::kDemand;
    if (!wired_.empty() && wired_.count(object.value())) src.path = Path::kWired;
    return src;
  }
  const Split& s = it->second;
  if (offset < s.resident_bytes) {
    src.address = s.resident_address + static_cast<uint64_t>(double(offset) * s.scale);
    src.bytes = std::min(max_bytes, s.resident_bytes - offset);
    src.ready_ps = src.landed_ps = now;
    src.path = Path::kResident;
    if (s.scale < 1.0) {
      src.scale = s.scale;
      src.dequant_flops_per_byte = dequant_flops_per_byte_;
    }
    return src;
  }
  if (policy_) return cache_lookup(object, o, offset, max_bytes, now);
  if (extents_ && o.cls == ObjectClass::kWeight) {
    return object_lookup(object, o, offset, max_bytes, now);
  }
  src.bytes = max_bytes;
  issue_due(now);
  auto st = staged_.find(object.value());
  if (st != staged_.end()) {
    const size_t slot = (st->second.generation - 1) % slot_base_.size();
    if (slot_generation_[slot] == st->second.generation) {
      src.address = st->second.address + (offset - s.resident_bytes);
      src.path = Path::kStaged;
      st->second.used = true;
      if (!st->second.issued) {
        src.pending = true;
        src.ready_ps = src.landed_ps = st->second.decided_ps;
        return src;
      }
      src.landed_ps = std::max(now, st->second.landed_ps);
      src.ready_ps = std::max(now, st->second.ready_ps);
      return src;
    }
  }
  if (offset < s.tier_end) {  // in the middle tier, up to its end
    src.address = s.tier_address + (offset - s.resident_bytes);
    src.bytes = std::min(max_bytes, s.tier_end - offset);
  } else {
    src.address = o.address + offset;
  }
  src.ready_ps = src.landed_ps = now;
  src.path = Path::kDemand;
  return src;
}

void Orchestrator::record(const Source& s, uint64_t logical, TimePs now, TimePs start) {
  // `now` is when the consumer first wanted the tile. Bytes count as stored (a lower-precision
  // copy moves fewer than the tile's logical bytes).
  const uint64_t bytes = s.scale < 1.0
                             ? std::max<uint64_t>(1, uint64_t(std::ceil(double(logical) * s.scale)))
                             : logical;
  switch (s.path) {
    case Path::kResident:
      resident_bytes_read_.inc(bytes);
      break;
    case Path::kStaged:
      staged_bytes_read_.inc(bytes);
      staged_tiles_.inc();
      if (start > now) {
        late_tiles_.inc();
        // Exposed stall: the union of the intervals in which some tile waits for a prefetch
        // (tiles issued together wait together: counted once). Requests arrive in time order.
        const TimePs from = std::max(now, stall_counted_until_);
        if (start > from) {
          const TimePs data = s.landed_ps > from ? std::min(s.landed_ps, start) - from : 0;
          data_stall_ps_.inc(data);
          notify_stall_ps_.inc(start - from - data);
          stall_counted_until_ = start;
        }
      }
      break;
    case Path::kDemand:
      demand_bytes_.inc(bytes);
      ++demand_misses_;
      break;
    case Path::kWired:
      wired_bytes_read_ += bytes;
      break;
  }
}

// ---- Context regions ------------------------------------------------------------------------

void Orchestrator::prepare_regions(
    const std::function<uint64_t(uint64_t, const std::string&)>& place) {
  const auto& cr = p_.context_regions;
  const auto& d = ctx_.config().workload().decode();
  const auto& sa = d.sparse_attention();
  std::vector<ObjectId> kv;
  for (size_t i = 0; i < ctx_.objects().size(); ++i) {
    const ObjectInfo& o = ctx_.objects().get(ObjectId(static_cast<uint32_t>(i)));
    if (o.cls == ObjectClass::kKvCache && o.kv_block_tokens > 0 && o.layer.valid() &&
        o.sequence != UINT32_MAX) {
      kv.push_back(ObjectId(static_cast<uint32_t>(i)));
    }
  }
  if (kv.empty()) throw std::logic_error(owner_ + ": context regions without paged KV objects");
  const ObjectInfo& first = ctx_.objects().get(kv.front());
  block_tokens_ = first.kv_block_tokens;
  region_bytes_ = uint64_t{block_tokens_} * first.token_bytes;
  sink_pages_ = static_cast<uint32_t>((sa.sink_tokens() + block_tokens_ - 1) / block_tokens_);
  window_tokens_ = sa.window_tokens();
  // The window's pages: from (cached - window) / B up to the page the new token lands in.
  ring_pages_ = (window_tokens_ + block_tokens_ - 1) / block_tokens_ + 2;
  RegionPolicyParams rp;
  rp.frames = static_cast<uint32_t>(
      std::min<uint64_t>(cr.budget_bytes() / region_bytes_, std::numeric_limits<uint32_t>::max()));
  rp.score = cr.ranking() == config::REGION_SCORE;
  if (cr.has_ema_alpha()) rp.alpha = cr.ema_alpha();
  rp.backup = cr.has_backup() ? cr.backup() : true;
  rp.veto_steps = cr.veto_steps();
  rp.veto_mass = cr.veto_mass();
  rp.mass_per_region = 1.0 / double(std::max<uint32_t>(1, sa.top_k_pages()));
  if (cr.compressed_budget_bytes() > 0) {
    const config::Dtype dt =
        cr.compressed_dtype() == config::DTYPE_UNSPECIFIED ? config::INT4 : cr.compressed_dtype();
    const double bits = dtype_bits(dt);
    const config::Dtype kv = ctx_.config().workload().model().kv_dtype();
    const double full = dtype_bits(kv == config::DTYPE_UNSPECIFIED ? config::BF16 : kv);
    cscale_ = std::min(1.0, bits / full);
    cerr_ = std::pow(2.0, -bits);
    cregion_bytes_ = (uint64_t(std::ceil(double(region_bytes_) * cscale_)) + 63) / 64 * 64;
    cdequant_per_byte_ =
        (cr.has_dequant_flops_per_element() ? cr.dequant_flops_per_element() : 2.0) / (full / 8.0);
    rp.compressed_frames = static_cast<uint32_t>(std::min<uint64_t>(
        cr.compressed_budget_bytes() / cregion_bytes_, std::numeric_limits<uint32_t>::max()));
  }
  regions_ = std::make_unique<RegionPool>(rp);
  if (rp.frames > 0) {
    pool_base_ = place(uint64_t{rp.frames} * region_bytes_, "the context-region pool");
  }
  if (rp.compressed_frames > 0) {
    cpool_base_ = place(uint64_t{rp.compressed_frames} * cregion_bytes_,
                        "the compressed context-region tier");
  }
  const uint64_t context = d.context_tokens();
  const uint64_t initial_end =
      context >= window_tokens_ ? (context - window_tokens_) / block_tokens_ : 0;
  uint32_t layers = 0;
  for (ObjectId id : kv)
    layers = std::max(layers, ctx_.objects().get(id).layer.value() + 1);
  kv_of_.assign(layers, {});
  for (ObjectId id : kv) {
    const ObjectInfo& o = ctx_.objects().get(id);
    RegionObject ro;
    ro.layer = o.layer.value();
    ro.seq = o.sequence;
    ro.window_end = ro.initial_end = initial_end;
    ro.pinned = place(uint64_t{sink_pages_ + ring_pages_} * region_bytes_,
                      o.name + "'s sink and window pages");
    ro.digests = place(o.size_bytes - o.kv_tokens * o.token_bytes, o.name + "'s page digests");
    auto& row = kv_of_[ro.layer];
    if (row.size() <= ro.seq) row.resize(ro.seq + 1);
    row[ro.seq] = id;
    region_obj_[id.value()] = ro;
  }
  // The initial pool: each sequence's most recent middle regions, its fair share of the frames
  // (round robin over the objects so that a remainder spreads).
  bool placed = true;
  for (uint64_t back = 1; placed && regions_->free_frames() > 0; ++back) {
    placed = false;
    for (ObjectId id : kv) {
      if (regions_->free_frames() == 0) break;
      const RegionObject& ro = region_obj_.at(id.value());
      if (ro.initial_end < back + sink_pages_) continue;
      const uint64_t page = ro.initial_end - back;
      placed |= regions_->place((RegionKey(id.value()) << 32) | page);
    }
  }
  if (!rp.backup) {
    // Without backups the middle regions that did not fit are gone from the start.
    uint64_t middle = 0;
    for (ObjectId id : kv) {
      const RegionObject& ro = region_obj_.at(id.value());
      middle += ro.initial_end > sink_pages_ ? ro.initial_end - sink_pages_ : 0;
    }
    regions_->count_lost(middle -
                         std::min(middle, uint64_t{regions_->frames() - regions_->free_frames()}));
  }
}

RegionPool::Region& Orchestrator::region(RegionKey key) {
  // First sight of a region: pages that existed at the start and did not fit the initial pool
  // are at home with a backup, or lost without one.
  const RegionObject& ro = region_obj_.at(static_cast<uint32_t>(key >> 32));
  const uint64_t page = key & 0xffffffffULL;
  const bool backup = regions_->params().backup;
  return regions_->get(
      key, !backup && page < ro.initial_end ? RegionPool::State::kLost : RegionPool::State::kHome);
}

uint64_t Orchestrator::pinned_address(const RegionObject& ro, uint64_t page) const {
  const uint64_t slot = page < sink_pages_ ? page : sink_pages_ + page % ring_pages_;
  return ro.pinned + slot * region_bytes_;
}

uint64_t Orchestrator::kv_shadow(ObjectId object, uint64_t offset) const {
  if (!regions_) return 0;
  auto it = region_obj_.find(object.value());
  if (it == region_obj_.end()) return 0;
  const ObjectInfo& o = ctx_.objects().get(object);
  const uint64_t tokens = o.kv_tokens * o.token_bytes;
  if (offset >= tokens) return it->second.digests + (offset - tokens);
  const uint64_t page = offset / region_bytes_;
  return pinned_address(it->second, page) + (offset - page * region_bytes_);
}

void Orchestrator::regions_on_attention(const Op& op, TimePs now) {
  const auto& cr = p_.context_regions;
  // 1. Each sequence's window moves to its new token (the op's KV write): pages that leave it
  // enter the pool if they outrank its lowest region (copied from the window ring), else stay
  // at home (their backup was written with each token) or, without backups, are lost.
  for (uint16_t i = 0; i < op.operand_count; ++i) {
    const Operand& w = op.operand(i);
    if (w.access != Access::kWrite) continue;
    auto it = region_obj_.find(w.object.value());
    if (it == region_obj_.end()) continue;
    RegionObject& ro = it->second;
    const ObjectInfo& o = ctx_.objects().get(w.object);
    if (w.offset_bytes >= o.kv_tokens * o.token_bytes) continue;  // a digest
    const uint64_t cached = w.offset_bytes / o.token_bytes;
    const uint64_t end = cached >= window_tokens_ ? (cached - window_tokens_) / block_tokens_ : 0;
    for (uint64_t page = ro.window_end; page < end; ++page) {
      if (page < sink_pages_) continue;
      const RegionKey key = (RegionKey(w.object.value()) << 32) | page;
      region(key);
      if (auto frame = regions_->admit(key, step_, true)) {
        MovementIntent intent;
        intent.object = w.object;
        intent.object_class = o.cls;
        intent.op = MoveOp::kPromote;
        intent.layer = o.layer;
        const TimePs landed =
            dma_->transfer(pinned_address(ro, page), pool_base_ + uint64_t{*frame} * region_bytes_,
                           region_bytes_, intent, now);
        RegionPool::Region& r = region(key);
        r.landed_ps = r.ready_ps = landed;
        region_exit_bytes_ += region_bytes_;
      } else if (!regions_->params().backup) {
        regions_->lose(key);
      }
    }
    ro.window_end = std::max(ro.window_end, end);
  }
  drain_compressed(now);
  // 2. Speculative promotion: the regions this layer attends, for the same sequence
  // lookahead_layers layers on (the next step's layers past the last).
  if (cr.lookahead_layers() == 0 || !op.layer.valid()) return;
  const uint32_t layers = static_cast<uint32_t>(kv_of_.size());
  const uint32_t target_layer = (op.layer.value() + cr.lookahead_layers()) % layers;
  const size_t limit = cr.has_promote_pages() ? cr.promote_pages() : SIZE_MAX;
  // Per sequence: the candidates, ranked by their source region's rank in this layer (its
  // score, or its recency), the top promote_pages promoted in one decision.
  auto flush = [&] {
    if (region_ranked_.empty()) return;
    if (region_ranked_.size() > limit) {
      std::stable_sort(region_ranked_.begin(), region_ranked_.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      region_ranked_.resize(limit);
    }
    region_scratch_.clear();
    for (const auto& [rank, key] : region_ranked_)
      region_scratch_.push_back(key);
    region_ranked_.clear();
    queue_region_copies(region_scratch_, true, now);
  };
  region_ranked_.clear();
  uint32_t current = UINT32_MAX;
  for (uint16_t i = 0; i < op.operand_count; ++i) {
    const Operand& rd = op.operand(i);
    if (rd.access != Access::kRead || rd.bytes == 0) continue;
    auto it = region_obj_.find(rd.object.value());
    if (it == region_obj_.end()) continue;
    const RegionObject& ro = it->second;
    if (ro.seq != current) {
      flush();
      current = ro.seq;
    }
    if (ro.seq >= kv_of_[target_layer].size()) continue;
    const ObjectId target = kv_of_[target_layer][ro.seq];
    const RegionObject& to = region_obj_.at(target.value());
    const uint64_t last = (rd.offset_bytes + rd.bytes - 1) / region_bytes_;
    for (uint64_t page = rd.offset_bytes / region_bytes_; page <= last; ++page) {
      if (page < sink_pages_ || page >= to.window_end) continue;  // pinned there
      const RegionKey key = (RegionKey(target.value()) << 32) | page;
      if (region(key).state != RegionPool::State::kHome) continue;  // there, or lost
      const auto* src = regions_->find((RegionKey(rd.object.value()) << 32) | page);
      region_ranked_.emplace_back(src ? src->rank : 0.0, key);
    }
  }
  flush();
}

void Orchestrator::queue_region_copies(const std::vector<RegionKey>& keys, bool speculative,
                                       TimePs now) {
  // One decision (a descriptor chain) for the regions of one sequence that are at home.
  bool any = false;
  for (RegionKey key : keys)
    any |= region(key).state == RegionPool::State::kHome;
  if (!any) return;
  const TimePs decided = decide(now);
  for (RegionKey key : keys) {
    if (region(key).state != RegionPool::State::kHome) continue;
    if (!regions_->admit(key, step_, false)) continue;  // vetoed: every candidate locked
    RegionPool::Region& r = region(key);
    r.speculative = true;  // copied ahead of its use, not read yet
    r.issued = false;
    r.decided_ps = decided;
    // Not demoted before its use (the next step at the latest).
    regions_->protect(key, step_ + 2, step_);
    region_queue_.push_back({decided, key, speculative});
    ++(speculative ? region_promotions_ : region_skip_copyups_);
  }
  drain_compressed(now);
  issue_due(now);
}

TimePs Orchestrator::issue_region_copies(TimePs now) {
  while (region_head_ < region_queue_.size()) {
    const RegionCopy c = region_queue_[region_head_];
    if (c.decided_ps > now) return c.decided_ps;
    ++region_head_;
    RegionPool::Region& r = region(c.key);
    if (r.state != RegionPool::State::kPool || r.issued) continue;
    const ObjectId id(static_cast<uint32_t>(c.key >> 32));
    const uint64_t page = c.key & 0xffffffffULL;
    const ObjectInfo& o = ctx_.objects().get(id);
    const uint64_t at = page * region_bytes_;
    const uint64_t bytes = std::min(region_bytes_, o.kv_tokens * o.token_bytes - at);
    MovementIntent intent;
    intent.object = id;
    intent.object_class = o.cls;
    intent.op = MoveOp::kPrefetch;
    intent.layer = o.layer;
    const TimePs landed = dma_->transfer(
        o.address + at, pool_base_ + uint64_t{r.frame} * region_bytes_, bytes, intent, now);
    r.issued = true;
    r.landed_ps = landed;
    r.ready_ps = landed + p_.notification_latency_ps;
    prefetch_bytes_.inc(bytes);
    if (c.speculative) region_promotion_bytes_ += bytes;
    decision_to_ready_ns_.record(double(r.ready_ps - c.decided_ps) / kPsPerNs);
  }
  region_queue_.clear();
  region_head_ = 0;
  return 0;
}

void Orchestrator::drain_compressed(TimePs now) {
  for (const auto& [key, frame] : regions_->take_compressed()) {
    const RegionPool::Region& r = region(key);
    const ObjectId id(static_cast<uint32_t>(key >> 32));
    MovementIntent intent;
    intent.object = id;
    intent.object_class = ObjectClass::kKvCache;
    intent.op = MoveOp::kDemote;
    // The quantising copy, timed as the compressed bytes moved (the full region's read in the
    // same memory is not charged separately).
    dma_->transfer(pool_base_ + uint64_t{frame} * region_bytes_,
                   cpool_base_ + uint64_t{r.cframe} * cregion_bytes_, cregion_bytes_, intent, now);
  }
}

Orchestrator::Source Orchestrator::region_lookup(ObjectId object, const ObjectInfo& o,
                                                 const RegionObject& ro, uint64_t offset,
                                                 uint64_t max_bytes, TimePs now) {
  Source src;
  src.ready_ps = src.landed_ps = now;
  src.path = Path::kResident;
  const uint64_t tokens = o.kv_tokens * o.token_bytes;
  if (offset >= tokens) {  // page digests: always in the fast memory
    src.address = ro.digests + (offset - tokens);
    src.bytes = std::min(max_bytes, o.size_bytes - offset);
    return src;
  }
  const uint64_t page = offset / region_bytes_;
  const uint64_t in_page = offset - page * region_bytes_;
  src.bytes = std::min({max_bytes, region_bytes_ - in_page, tokens - offset});
  const RegionKey key = (RegionKey(object.value()) << 32) | page;
  const bool head = in_page == 0;
  if (page < sink_pages_ || page >= ro.window_end) {  // sink or window: pinned
    src.address = pinned_address(ro, page) + in_page;
    if (head) regions_->attend(key, step_);
    return src;
  }
  if (!head && key == skipping_) {
    src.skip = true;
    return src;
  }
  if (!head && key == admitting_) {
    RegionPool::Region& r = region(key);
    src.address = o.address + offset;
    src.path = Path::kDemand;
    if (r.state == RegionPool::State::kPool) {
      src.admit_address = pool_base_ + uint64_t{r.frame} * region_bytes_ + in_page;
    }
    return src;
  }
  RegionPool::Region& r = region(key);
  const bool first = head && r.last_step != step_;
  const bool promoted = r.speculative;
  if (first) ++region_visits_;
  switch (r.state) {
    case RegionPool::State::kPool:
      if (first) {
        ++region_hits_;
        if (promoted) ++region_promoted_used_;
        regions_->attend(key, step_);
      }
      src.address = pool_base_ + uint64_t{r.frame} * region_bytes_ + in_page;
      if (!r.issued) {
        src.pending = true;
        src.path = Path::kStaged;
        src.ready_ps = src.landed_ps = r.decided_ps;
        return src;
      }
      src.landed_ps = std::max(now, r.landed_ps);
      src.ready_ps = std::max(now, r.ready_ps);
      if (promoted || src.ready_ps > now) src.path = Path::kStaged;
      return src;
    case RegionPool::State::kCompressed:
      // Attention mode COMPRESSED: read the quantised copy, dequantise it.
      if (first) {
        ++region_compressed_reads_;
        regions_->attend(key, step_);
      }
      src.address =
          cpool_base_ + uint64_t{r.cframe} * cregion_bytes_ + uint64_t(double(in_page) * cscale_);
      src.scale = cscale_;
      src.dequant_flops_per_byte = cdequant_per_byte_;
      return src;
    case RegionPool::State::kLost:
      if (first) ++region_skipped_;
      skipping_ = key;
      src.skip = true;
      return src;
    case RegionPool::State::kHome:
      break;
  }
  if (p_.context_regions.late() == config::LATE_REGION_SKIP) {
    // Attention goes on without it; it is copied up for the next step.
    if (first) {
      ++region_skipped_;
      regions_->attend(key, step_);
      queue_region_copies({key}, false, now);  // counted there when admitted
    }
    skipping_ = key;
    src.skip = true;
    return src;
  }
  // STALL: read from home now; admitted, each landed tile is copied into its frame.
  src.address = o.address + offset;
  src.path = Path::kDemand;
  if (first) {
    regions_->attend(key, step_);
    if (auto frame = regions_->admit(key, step_, false)) {
      drain_compressed(now);
      ++region_copyups_;
      admitting_ = key;
      src.admit_address = pool_base_ + uint64_t{*frame} * region_bytes_;
    }
  }
  return src;
}

// ---- Object cache -----------------------------------------------------------------------------

std::pair<uint64_t, uint64_t> Orchestrator::object_key(const CachedObject& c) const {
  // Lowest first out: LRU by last use; LFU by uses, then last use.
  if (p_.objects.eviction() == config::OBJECT_LFU) return {c.uses, c.last_use};
  return {c.last_use, 0};
}

bool Orchestrator::admit_object(uint32_t object, uint64_t bytes, TimePs now) {
  if (bytes > extents_->capacity()) return false;
  const Fit fit = p_.objects.fit() == config::EXTENT_BEST_FIT ? Fit::kBest : Fit::kFirst;
  CachedObject& c = cached_[object];
  bool sampled = false;
  while (true) {
    if (!sampled) {
      // External fragmentation as the admission finds it.
      const FragmentationMetrics m = extents_->metrics();
      fragmentation_sum_ += m.external;
      fragmentation_max_ = std::max(fragmentation_max_, m.external);
      ++fragmentation_samples_;
      sampled = true;
    }
    if (auto h = extents_->allocate(bytes, fit)) {
      c.handle = *h;
      holder_[*h] = object;
      return true;
    }
    const FragmentationMetrics m = extents_->metrics();
    if (m.free_bytes >= bytes) {
      // Enough free bytes, no extent large enough: targeted compaction within the step's
      // budget (the fewest bytes that open an extent large enough). Extents the running op
      // references stay (the allocator never moves a referenced extent).
      ++fragmentation_failures_;
      if (compaction_left_ > 0) {
        const auto moves = extents_->make_room(bytes, compaction_left_);
        if (!moves.empty()) ++compactions_;
        for (const auto& mv : moves) {
          compaction_left_ -= std::min(compaction_left_, mv.bytes);
          compaction_bytes_ += mv.bytes;
          MovementIntent intent;
          intent.object = ObjectId(holder_.at(mv.handle));
          intent.object_class = ObjectClass::kWeight;
          intent.op = MoveOp::kCompact;
          CachedObject& moved = cached_.at(holder_.at(mv.handle));
          const TimePs landed = dma_->transfer(extent_base_ + mv.from, extent_base_ + mv.to,
                                               mv.bytes, intent, std::max(now, moved.ready_ps));
          moved.landed_ps = moved.ready_ps = landed;
        }
        if (!moves.empty()) continue;
      }
    }
    // Evict the lowest-ranked object nothing references.
    auto victim = object_order_.begin();
    while (victim != object_order_.end() &&
           extents_->references(cached_.at(victim->second).handle) > 0) {
      ++victim;
    }
    if (victim == object_order_.end()) return false;
    CachedObject& v = cached_.at(victim->second);
    object_order_.erase(victim);
    holder_.erase(v.handle);
    extents_->free(v.handle);
    v.resident = false;
    ++object_evictions_;
  }
}

Orchestrator::Source Orchestrator::object_lookup(ObjectId object, const ObjectInfo& o,
                                                 uint64_t offset, uint64_t max_bytes, TimePs now) {
  Source src;
  src.bytes = max_bytes;
  src.ready_ps = src.landed_ps = now;
  // A lowered object: its low-precision copy at home and in the cache (bytes scaled).
  auto low = low_copy_.find(object.value());
  const bool lowered = low != low_copy_.end();
  const double scale = lowered ? low_scale_ : 1.0;
  const uint64_t stored_offset = lowered ? uint64_t(double(offset) * scale) : offset;
  const uint64_t home = lowered ? low->second + stored_offset : o.address + offset;
  if (lowered) {
    src.scale = scale;
    src.dequant_flops_per_byte = dequant_flops_per_byte_;
  }
  CachedObject& c = cached_[object.value()];
  if (c.visit_op != op_serial_) {
    // The object's first read in this op: one visit.
    c.visit_op = op_serial_;
    c.last_step = step_;
    ++object_visits_;
    if (c.resident) {
      ++object_hits_;
      object_order_.erase({c.order_key, object.value()});
      if (c.prefetched) {
        // A prefetch used: its protection passes to this op's reference.
        ++object_prefetch_used_;
        c.prefetched = false;
        c.staged_op = op_serial_;
        protected_.erase(object.value());
        extents_->release(c.handle);
      }
    } else if (admit_object(object.value(), uint64_t(std::ceil(double(o.size_bytes) * scale)),
                            now)) {
      c.resident = true;
      c.fill_op = op_serial_;
      c.landed_ps = c.ready_ps = 0;
      c.issued = true;
      c.prefetched = false;
      ++object_admissions_;
    } else {
      ++object_bypasses_;
    }
    if (c.resident) {
      ++c.uses;
      c.last_use = ++object_clock_;
      c.order_key = object_key(c);
      object_order_.insert({c.order_key, object.value()});
      extents_->acquire(c.handle);
      op_refs_.push_back(c.handle);
    }
  }
  if (!c.resident) {
    src.address = home;
    src.path = Path::kDemand;
    return src;
  }
  const uint64_t at = extent_base_ + extents_->offset(c.handle) + stored_offset;
  if (c.fill_op == op_serial_) {
    // Being admitted: read from home, each landed tile copied into the extent.
    src.address = home;
    src.path = Path::kDemand;
    src.admit_address = at;
    return src;
  }
  src.address = at;
  src.path = c.staged_op == op_serial_ ? Path::kStaged : Path::kResident;
  if (!c.issued) {  // a prefetch decided, not issued yet: ask again then
    src.pending = true;
    src.ready_ps = src.landed_ps = c.decided_ps;
    return src;
  }
  // Ready after its prefetch landed and was notified, or after a compaction move.
  src.landed_ps = std::max(now, c.landed_ps);
  src.ready_ps = std::max(now, c.ready_ps);
  return src;
}

void Orchestrator::prefetch_objects(uint32_t layer, bool next_step, TimePs trigger) {
  const uint32_t target_step = step_ + (next_step ? 1 : 0);
  const bool all = p_.objects.prefetch() == config::OBJECT_PREFETCH_ALL;
  for (ObjectId id : layer_objects_[layer]) {
    const ObjectInfo& o = ctx_.objects().get(id);
    CachedObject& c = cached_[id.value()];
    if (c.resident) continue;
    // Activation-aware: used every step by intent, or read at the layer's previous visit.
    const double sure =
        p_.objects.has_prefetch_confidence() ? p_.objects.prefetch_confidence() : 1.0;
    const bool predicted = all || intent_at(o, target_step).second >= sure ||
                           (c.last_step != UINT32_MAX && c.last_step + 1 == target_step);
    if (!predicted) continue;
    const auto low = low_copy_.find(id.value());
    const double scale = low != low_copy_.end() ? low_scale_ : 1.0;
    // One decision per object's copy, serialised on the controller.
    const TimePs decided = decide(trigger);
    if (!admit_object(id.value(), uint64_t(std::ceil(double(o.size_bytes) * scale)), trigger)) {
      continue;
    }
    c.resident = true;
    c.fill_op = 0;
    c.issued = false;
    c.prefetched = true;
    c.decided_ps = decided;
    c.landed_ps = c.ready_ps = 0;
    c.last_use = ++object_clock_;
    c.order_key = object_key(c);
    object_order_.insert({c.order_key, id.value()});
    extents_->acquire(c.handle);  // protected until read, or the target step has passed
    protected_[id.value()] = target_step + 1;
    object_queue_.push_back({decided, id.value()});
    ++object_prefetches_;
    ++object_admissions_;
  }
  issue_due(trigger);
}

TimePs Orchestrator::issue_object_copies(TimePs now) {
  while (object_head_ < object_queue_.size()) {
    const auto [decided, id] = object_queue_[object_head_];
    if (decided > now) return decided;
    ++object_head_;
    CachedObject& c = cached_.at(id);
    if (!c.resident || c.issued) continue;
    const ObjectInfo& o = ctx_.objects().get(ObjectId(id));
    const auto low = low_copy_.find(id);
    const bool lowered = low != low_copy_.end();
    const uint64_t bytes =
        lowered ? uint64_t(std::ceil(double(o.size_bytes) * low_scale_)) : o.size_bytes;
    const uint64_t src = lowered ? low->second : o.address;
    const uint64_t dst = extent_base_ + extents_->offset(c.handle);
    MovementIntent intent;
    intent.object = ObjectId(id);
    intent.object_class = o.cls;
    intent.op = MoveOp::kPrefetch;
    intent.layer = o.layer;
    const TimePs landed = copy(*dma_, src, dst, bytes, intent, now);
    c.issued = true;
    c.landed_ps = landed;
    c.ready_ps = landed + p_.notification_latency_ps;
    prefetch_bytes_.inc(bytes);
    object_prefetch_bytes_ += bytes;
    decision_to_ready_ns_.record(double(c.ready_ps - decided) / kPsPerNs);
  }
  object_queue_.clear();
  object_head_ = 0;
  return 0;
}

void Orchestrator::summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {
  const double per = tokens ? 1.0 / double(tokens) : 0.0;
  const double staged = double(staged_tiles_.value());
  out.push_back({"stall_us_per_token",
                 double(data_stall_ps_.value() + notify_stall_ps_.value()) * per / 1e6,
                 "us/token"});
  out.push_back(
      {"stall_data_us_per_token", double(data_stall_ps_.value()) * per / 1e6, "us/token"});
  out.push_back({"stall_notification_us_per_token", double(notify_stall_ps_.value()) * per / 1e6,
                 "us/token"});
  out.push_back(
      {"prefetch_late_fraction", staged ? double(late_tiles_.value()) / staged : 0.0, "fraction"});
  const double home_reads = double(staged_bytes_read_.value() + demand_bytes_.value());
  out.push_back({"prefetch_coverage",
                 home_reads > 0 ? double(staged_bytes_read_.value()) / home_reads : 0.0,
                 "fraction"});
  out.push_back({"prefetch_bytes_per_token", double(prefetch_bytes_.value()) * per, "bytes/token"});
  // Accuracy: the share of copied bytes read before their slot was reused (copies still
  // unread at the end, such as the next step's first layers, count as unused).
  uint64_t unused = unused_prefetch_bytes_;
  for (const auto& [id, st] : staged_) {
    if (st.issued && !st.used) unused += st.bytes;
  }
  const uint64_t region_ahead = region_promotions_ + region_skip_copyups_;
  if (regions_ && region_ahead > region_promoted_used_) {
    unused += (region_ahead - region_promoted_used_) * region_bytes_;
  }
  const double copied = double(prefetch_bytes_.value());
  out.push_back(
      {"prefetch_accuracy", copied > 0 ? 1.0 - double(unused) / copied : 0.0, "fraction"});
  out.push_back({"demand_misses", double(demand_misses_), "count"});
  out.push_back({"demand_bytes_per_token", double(demand_bytes_.value()) * per, "bytes/token"});
  out.push_back(
      {"resident_bytes_per_token", double(resident_bytes_read_.value()) * per, "bytes/token"});
  out.push_back({"controller_decisions", double(decisions_.value()), "count"});
  if (p_.precision.dtype() != config::DTYPE_UNSPECIFIED) {
    out.push_back({"lowered_objects", double(lowered_objects_), "count"});
    out.push_back({"precision_vetoes", double(precision_vetoes_), "count"});
    out.push_back({"quality_proxy", quality_proxy_, "proxy"});
    out.push_back({"resident_stored_bytes", double(resident_stored_bytes_), "bytes"});
  }
  if (!p_.wired_memory.empty()) {
    out.push_back({"wired_objects", double(wired_.size()), "count"});
    out.push_back({"wired_bytes", double(wired_bytes_), "bytes"});
    out.push_back({"wired_bytes_per_token", double(wired_bytes_read_) * per, "bytes/token"});
    out.push_back({"wired_saved_bytes_per_step_planned", wired_saved_per_step_, "bytes/step"});
  }
  if (p_.kv_restore != config::KV_RESTORE_TRANSFER) {
    const double restored = double(kv_recomputed_bytes_ + kv_transferred_bytes_);
    out.push_back({"kv_recompute_fraction",
                   restored > 0 ? double(kv_recomputed_bytes_) / restored : 0.0, "fraction"});
    out.push_back(
        {"hidden_state_bytes_per_token", double(hidden_bytes_read_) * per, "bytes/token"});
    out.push_back({"recompute_gflop_per_token", recompute_flops_ * per / 1e9, "GFLOP/token"});
  }
  if (regions_) {
    const auto& c = regions_->counters();
    const double visits = double(region_visits_);
    out.push_back({"region_pool_frames", double(regions_->frames()), "frames"});
    out.push_back({"region_visits", visits, "count"});
    out.push_back(
        {"region_hit_rate", visits > 0 ? double(region_hits_) / visits : 0.0, "fraction"});
    // Recall: the share of selected middle regions attended (not skipped); the attention-mass
    // recall under the proxy that the selected pages share the middle's mass equally.
    out.push_back(
        {"region_recall", visits > 0 ? 1.0 - double(region_skipped_) / visits : 1.0, "fraction"});
    out.push_back({"region_skipped", double(region_skipped_), "count"});
    out.push_back({"region_copyups", double(region_copyups_ + region_skip_copyups_), "count"});
    out.push_back({"region_promotions", double(region_promotions_), "count"});
    out.push_back(
        {"region_promotion_bytes_per_token", double(region_promotion_bytes_) * per, "bytes/token"});
    out.push_back({"region_ahead_accuracy",
                   region_ahead > 0 ? double(region_promoted_used_) / double(region_ahead) : 0.0,
                   "fraction"});
    out.push_back({"region_demotions", double(c.demotions), "count"});
    out.push_back({"region_repromotions", double(c.repromotions), "count"});
    out.push_back({"region_lost", double(c.lost), "count"});
    out.push_back({"region_vetoes", double(c.vetoes), "count"});
    out.push_back({"region_refused", double(c.refused), "count"});
    out.push_back({"region_exits_declined", double(c.declined), "count"});
    out.push_back(
        {"region_window_exit_bytes_per_token", double(region_exit_bytes_) * per, "bytes/token"});
    if (regions_->params().compressed_frames > 0) {
      out.push_back(
          {"region_compressed_frames", double(regions_->params().compressed_frames), "frames"});
      out.push_back({"region_compressions", double(c.compressions), "count"});
      out.push_back({"region_compressed_reads", double(region_compressed_reads_), "count"});
      // Quality proxy: the relative quantisation step of the compressed regions attended,
      // weighted by their share of the attended regions (each 1 / k of the middle's mass).
      out.push_back({"region_quality_proxy",
                     visits > 0 ? cerr_ * double(region_compressed_reads_) / visits : 0.0,
                     "proxy"});
    }
  }
  if (extents_) {
    const double visits = double(object_visits_);
    const FragmentationMetrics m = extents_->metrics();
    out.push_back({"object_cache_visits", visits, "count"});
    out.push_back(
        {"object_cache_hit_rate", visits > 0 ? double(object_hits_) / visits : 0.0, "fraction"});
    out.push_back({"object_cache_admissions", double(object_admissions_), "count"});
    out.push_back({"object_cache_evictions", double(object_evictions_), "count"});
    out.push_back({"object_cache_bypasses", double(object_bypasses_), "count"});
    out.push_back(
        {"admission_bytes_per_token", double(admission_bytes_.value()) * per, "bytes/token"});
    out.push_back(
        {"fragmentation_mean",
         fragmentation_samples_ ? fragmentation_sum_ / double(fragmentation_samples_) : 0.0,
         "fraction"});
    out.push_back({"fragmentation_max", fragmentation_max_, "fraction"});
    out.push_back({"fragmentation_end", m.external, "fraction"});
    out.push_back({"largest_free_extent_end", double(m.largest_free_extent), "bytes"});
    out.push_back({"fragmentation_failures", double(fragmentation_failures_), "count"});
    out.push_back({"compactions", double(compactions_), "count"});
    out.push_back({"compaction_bytes_per_token", double(compaction_bytes_) * per, "bytes/token"});
    if (p_.objects.prefetch_layers() > 0) {
      out.push_back({"object_prefetches", double(object_prefetches_), "count"});
      out.push_back(
          {"object_prefetch_bytes_per_token", double(object_prefetch_bytes_) * per, "bytes/token"});
      out.push_back(
          {"object_prefetch_accuracy",
           object_prefetches_ ? double(object_prefetch_used_) / double(object_prefetches_) : 0.0,
           "fraction"});
    }
  }
  if (!bslot_base_.empty()) {
    out.push_back({"dpu_buffer_bytes_per_token", double(buffer_bytes_) * per, "bytes/token"});
    const double staged2 = double(buffer_sourced_bytes_ + buffer_bypassed_bytes_);
    out.push_back({"dpu_buffer_sourced_fraction",
                   staged2 > 0 ? double(buffer_sourced_bytes_) / staged2 : 0.0, "fraction"});
  }
  out.push_back({"staging_bytes", double(slot_bytes_ * slot_base_.size()), "bytes"});
  if (map_) {
    out.push_back({"residency_map_hits", double(map_->hits()), "count"});
    out.push_back({"residency_map_misses", double(map_->misses()), "count"});
    out.push_back({"residency_map_occupancy", double(map_->occupancy()), "entries"});
    out.push_back({"residency_map_sram_bytes", double(map_->sram_bytes()), "bytes"});
  }
  if (p_.signed_descriptors) {
    out.push_back({"descriptors_rejected", double(rejected_.value()), "count"});
  }
  if (policy_) {
    const double visits = double(cache_hits_.value() + cache_misses_.value());
    out.push_back(
        {"cache_hit_rate", visits ? double(cache_hits_.value()) / visits : 0.0, "fraction"});
    out.push_back(
        {"admission_bytes_per_token", double(admission_bytes_.value()) * per, "bytes/token"});
    out.push_back({"cache_oscillations", double(oscillations_), "count"});
    if (policy_->kind() == PolicyKind::kConfidence) {
      out.push_back({"budget_fallback_epochs", double(policy_->fallback_epochs()), "count"});
      out.push_back(
          {"max_epoch_migration_bytes", double(policy_->max_epoch_migration_bytes()), "bytes"});
    }
    // The offline bound on this very page stream: the oracle (MIN with bypass) with the same
    // frames; the policy's extra fetches from home beyond it, per token.
    auto oracle = make_policy(PolicyKind::kBelady, policy_->params());
    const PolicyStats bound = run_policy(*oracle, page_stream_);
    out.push_back(
        {"extra_bytes_vs_oracle_per_token",
         (double(cache_misses_.value()) - double(bound.misses)) * double(page_bytes_) * per,
         "bytes/token"});
  }
}

}  // namespace tiersim
