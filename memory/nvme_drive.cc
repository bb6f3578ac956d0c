#include "memory/nvme_drive.h"

#include <algorithm>
#include <stdexcept>

#include "models/config/energy_checks.h"
#include "models/core/context.h"
#include "models/core/payload_pool.h"
#include "models/core/registry.h"

namespace tiersim {

NvmeDrive::NvmeDrive(sc_core::sc_module_name name, const config::Nvme& c, Context& ctx)
    : MemoryTarget(name, ctx, "nvme", Tier::kNvme, c.capacity_bytes(),
                   {"commands", "NVMe commands", /*per_request=*/false}),
      bounce("bounce"),
      model_(NvmeParams::from_config(c)),
      bounce_memory_(c.bounce_memory()),
      bounce_bytes_(c.has_bounce_buffer_bytes() ? c.bounce_buffer_bytes() : 64ULL << 20),
      bounce_bytes_moved_(ctx.stats().counter(basename(), "bounce_bytes",
                                              "bytes staged through the bounce memory (each once)",
                                              "bytes")) {
  register_latency("request_latency", "request latency from arrival to its last byte",
                   Histogram::log2_edges(1, 1 << 30));
  if (!bounce_memory_.empty()) {
    bounce_offline_ = offline_windows(ctx.config().system(), bounce_memory_);
  }
  if (!bounce_offline_.empty()) {
    allow_refusals();
    bounce_waits_ = &ctx.stats().counter(
        basename(), "bounce_offline_waits",
        "command copies that waited for the bounce memory to come back online", "count");
    bounce_unread_ = &ctx.stats().counter(
        basename(), "bounce_bytes_unread",
        "bytes written into the bounce memory and never read back (it went offline for good)",
        "bytes");
  }
}

void NvmeDrive::prepare() {
  if (bounce_memory_.empty()) return;
  Component* memory = ctx().component(bounce_memory_);
  if (memory == nullptr || memory->target_socket() == nullptr) {
    throw std::logic_error(std::string(name()) + ": bounce memory missing");
  }
  bounce.bind(*memory->target_socket());
  const auto global = ctx().address_map().allocate(bounce_memory_, bounce_bytes_, 4096);
  if (!global) {
    throw ConfigError(
        {ConfigIssue{{},
                     "system.components[" + std::string(basename()) + "].nvme.bounce_buffer_bytes",
                     "no room for the bounce area in \"" + bounce_memory_ + "\""}});
  }
  bounce_base_ = ctx().address_map().decode(*global, bounce_bytes_)->local_address;
}

TimePs NvmeDrive::stage(uint64_t bytes, TimePs ready) {
  TimePs t = ready;
  for (tlm::tlm_command cmd : {tlm::TLM_WRITE_COMMAND, tlm::TLM_READ_COMMAND}) {
    if (!bounce_offline_.empty()) {
      // The bounce memory is offline: wait for it, or give the request up when it never comes
      // back (the command's data written into it is then lost).
      const TimePs back = online_after(bounce_offline_, t);
      if (back == FaultWindow::kNever) {
        if (cmd == tlm::TLM_READ_COMMAND) bounce_unread_->inc(bytes);
        return kRefused;
      }
      if (back != t) bounce_waits_->inc();
      t = back;
    }
    if (bounce_next_ + bytes > bounce_bytes_) bounce_next_ = 0;
    tlm::tlm_generic_payload* p = ctx().payloads().acquire();
    p->set_command(cmd);
    p->set_address(bounce_base_ + bounce_next_);
    p->set_data_ptr(nullptr);
    p->set_data_length(static_cast<unsigned int>(bytes));
    p->set_streaming_width(static_cast<unsigned int>(bytes));
    const TimePs now = now_ps();
    sc_core::sc_time delay = to_sc_time(t - now);
    bounce[0]->b_transport(*p, delay);
    const bool ok = p->is_response_ok();
    p->release();
    if (!ok) throw std::logic_error(std::string(name()) + ": bounce memory refused a copy");
    t = now + to_ps(delay);
  }
  bounce_next_ += bytes;
  bounce_bytes_moved_.inc(bytes);
  return t;
}

TimePs NvmeDrive::serve(uint64_t, uint64_t bytes, bool write, TimePs start_ps) {
  const uint64_t before = model_.commands();
  TimePs done = start_ps;
  commands_.clear();
  if (!write) {
    done = model_.read(start_ps, bytes, &commands_);
    if (!bounce_memory_.empty()) {
      done = start_ps;
      for (const auto& [ready, n] : commands_) {
        const TimePs staged = stage(n, ready);
        if (staged == kRefused) {
          done = kRefused;
          break;
        }
        done = std::max(done, staged);
      }
    }
  } else if (bounce_memory_.empty()) {
    done = model_.write(start_ps, bytes);
  } else {
    // Staged command by command, each written to the drive when its copy is done.
    const uint64_t chunk = model_.params().max_transfer_bytes;
    for (uint64_t off = 0; off < bytes; off += chunk) {
      const uint64_t n = std::min(chunk, bytes - off);
      const TimePs staged = stage(n, start_ps);
      if (staged == kRefused) {
        done = kRefused;
        break;
      }
      done = std::max(done, model_.write(staged, n));
    }
  }
  count().inc(model_.commands() - before);
  return done;
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "nvme",
    "NVMe SSD: queue slots, dispatch IOPS, media latency and bandwidth per direction; direct or "
    "bounce-buffer path through a host memory (FAST only)",
    [](const config::Config& root, const config::Component& c, Validator& v) {
      NvmeParams::validate(c.nvme(), v);
      v.positive("capacity_bytes", c.nvme().has_capacity_bytes(),
                 double(c.nvme().capacity_bytes()));
      energy_field(v, "static_power_w", c.nvme().has_static_power_w(), c.nvme().static_power_w());
      if (c.nvme().has_bounce_buffer_bytes()) {
        v.positive("bounce_buffer_bytes", true, double(c.nvme().bounce_buffer_bytes()));
      }
      if (c.nvme().has_bounce_buffer_bytes() && !c.nvme().has_bounce_memory()) {
        v.error("bounce_buffer_bytes", "needs bounce_memory");
      }
      if (c.nvme().has_bounce_memory()) {
        const config::Component* m = nullptr;
        for (const auto& other : root.system().components()) {
          if (other.name() == c.nvme().bounce_memory()) m = &other;
        }
        if (m == nullptr) {
          v.error("bounce_memory", "no component named \"" + c.nvme().bounce_memory() + "\"");
        } else if (!(m->has_ddr() || m->has_hbm() || m->has_gddr() || m->has_cxl())) {
          v.error("bounce_memory", "\"" + c.nvme().bounce_memory() +
                                       "\" is not a DRAM memory (ddr, hbm, gddr or cxl)");
        } else if (c.nvme().has_bounce_buffer_bytes() &&
                   c.nvme().bounce_buffer_bytes() < c.nvme().max_transfer_bytes()) {
          v.error("bounce_buffer_bytes", "smaller than one command (max_transfer_bytes)");
        }
      }
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      return with_energy(std::make_unique<NvmeDrive>(c.name().c_str(), c.nvme(), ctx),
                         c.nvme().energy_pj_per_bit(), c.nvme().static_power_w(),
                         EnergyPart::kStorageMedia, EnergyPart::kDeviceStatic);
    },
    nullptr});
}  // namespace

}  // namespace tiersim
