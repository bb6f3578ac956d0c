#include "accelerators/dma_engine.h"

#include <algorithm>
#include <stdexcept>

#include "models/context.h"
#include "models/payload_pool.h"
#include "models/registry.h"

namespace tiersim {

void DmaParams::validate(const config::DmaEngine& c, Validator& v) {
  v.positive("bandwidth_bytes_per_s", c.has_bandwidth_bytes_per_s(), c.bandwidth_bytes_per_s());
  v.require("setup_latency_ps", c.has_setup_latency_ps());
}

DmaParams DmaParams::from_config(const config::DmaEngine& c) {
  return DmaParams{c.bandwidth_bytes_per_s(), c.setup_latency_ps()};
}

DmaEngine::DmaEngine(sc_core::sc_module_name name, const DmaParams& params, Context& ctx)
    : Component(name, ctx, "dma"),
      socket("socket"),
      params_(params),
      engine_(params.bandwidth_bytes_per_s),
      transfers_(ctx.stats().counter(basename(), "transfers", "transfers completed", "count")),
      bytes_(ctx.stats().counter(basename(), "bytes", "bytes moved", "bytes")),
      bytes_by_class_(ctx.stats().vector(
          basename(), "bytes_by_class", "bytes moved by object class", "bytes",
          {object_class_name(ObjectClass::kWeight), object_class_name(ObjectClass::kEmbedding),
           object_class_name(ObjectClass::kKvCache), object_class_name(ObjectClass::kActivation),
           object_class_name(ObjectClass::kDraftWeight)})),
      latency_ns_(ctx.stats().histogram(basename(), "transfer_latency",
                                        "transfer latency from start to completion", "ns",
                                        Histogram::log2_edges(1, 1 << 24))) {}

bool DmaEngine::connect(Component& target, const LinkInfo& link) {
  if (target.target_socket() == nullptr) return false;
  const int index = static_cast<int>(ports_.size());
  socket.bind(*target.target_socket());
  Port port{index, link.latency_ps, &target, nullptr, nullptr};
  if (link.serial != nullptr) {
    // Independent seeded streams per link direction (jitter, replays, retrains).
    const LinkParams p = LinkParams::from_config(*link.serial);
    port.to_target = std::make_unique<LinkModel>(p, ctx().rng_for(link.name + ".to").next_u64());
    port.from_target =
        std::make_unique<LinkModel>(p, ctx().rng_for(link.name + ".from").next_u64());
  }
  ports_[std::string(target.basename())] = std::move(port);
  return true;
}

const DmaEngine::Port& DmaEngine::resolve(uint64_t address, uint64_t bytes, uint64_t* local) const {
  const auto decoded = ctx_const().address_map().decode(address, bytes);
  if (!decoded) throw std::logic_error(std::string(name()) + ": unmapped address range");
  auto it = ports_.find(decoded->range->target);
  if (it == ports_.end()) {
    throw std::logic_error(std::string(name()) + ": no link to " + decoded->range->target);
  }
  *local = decoded->local_address;
  return it->second;
}

TimePs DmaEngine::access(tlm::tlm_command cmd, const Port& port, uint64_t local, uint64_t bytes,
                         const MovementIntent& intent, TimePs start_ps) {
  // Over a serial link, written data crosses it before the memory sees it, and read data
  // crosses it after the memory served it.
  if (port.to_target && cmd == tlm::TLM_WRITE_COMMAND) {
    start_ps = port.to_target->transfer(start_ps, bytes);
  }
  tlm::tlm_generic_payload* p = ctx().payloads().acquire();
  p->set_command(cmd);
  p->set_address(local);
  p->set_data_ptr(nullptr);  // timing-only payload
  p->set_data_length(static_cast<unsigned int>(bytes));
  p->set_streaming_width(static_cast<unsigned int>(bytes));
  p->set_byte_enable_ptr(nullptr);
  PayloadPool::intent(*p) = intent;
  const TimePs now = now_ps();
  sc_core::sc_time delay = to_sc_time(start_ps + port.link_latency_ps - now);
  socket[port.socket_index]->b_transport(*p, delay);
  const bool ok = p->is_response_ok();
  p->release();
  if (!ok) throw std::logic_error(std::string(name()) + ": target rejected a transfer");
  const TimePs served = now + to_ps(delay) + port.link_latency_ps;
  if (port.from_target && cmd == tlm::TLM_READ_COMMAND) {
    return port.from_target->transfer(served, bytes);
  }
  return served;
}

TimePs DmaEngine::transfer(uint64_t src, uint64_t dst, uint64_t bytes, MovementIntent intent,
                           TimePs start_ps) {
  // Transfers larger than a TLM length (32 bits) are a caller error; tiles are MiB-sized.
  if (bytes == 0 || bytes > 0xffffffffULL) throw std::logic_error("dma: bad transfer size");
  uint64_t src_local = 0, dst_local = 0;
  const Port& from = resolve(src, bytes, &src_local);
  const Port& to = resolve(dst, bytes, &dst_local);
  intent.source = from.target->tier();
  intent.destination = to.target->tier();
  const TimePs begin = start_ps + params_.setup_latency_ps;
  const TimePs engine_done = engine_.reserve(begin, bytes);
  const TimePs read_done = access(tlm::TLM_READ_COMMAND, from, src_local, bytes, intent, begin);
  const TimePs write_done = access(tlm::TLM_WRITE_COMMAND, to, dst_local, bytes, intent, begin);
  const TimePs done = std::max({engine_done, read_done, write_done});
  transfers_.inc();
  bytes_.inc(bytes);
  bytes_by_class_.add(static_cast<size_t>(intent.object_class), static_cast<double>(bytes));
  latency_ns_.record(static_cast<double>(done - start_ps) / kPsPerNs);
  return done;
}

double DmaEngine::dynamic_energy_j() const {
  double j = 0;
  for (const auto& [name, port] : ports_) {
    if (port.to_target) j += port.to_target->energy_j() + port.from_target->energy_j();
  }
  return j;
}

double DmaEngine::static_power_w() const {
  double w = 0;
  for (const auto& [name, port] : ports_) {
    if (port.to_target) w += 2 * port.to_target->params().static_power_w;
  }
  return w;
}

bool DmaEngine::has_energy() const {
  for (const auto& [name, port] : ports_) {
    if (port.to_target && (port.to_target->params().energy_pj_per_bit > 0 ||
                           port.to_target->params().static_power_w > 0)) {
      return true;
    }
  }
  return false;
}

namespace {
const ComponentRegistrar kRegistrar(ComponentKind{
    "dma", "DMA engine moving byte ranges between memories (setup latency, own bandwidth)",
    [](const config::Config&, const config::Component& c, Validator& v) {
      DmaParams::validate(c.dma(), v);
    },
    [](const config::Component& c, Context& ctx) -> std::unique_ptr<Component> {
      return std::make_unique<DmaEngine>(c.name().c_str(), DmaParams::from_config(c.dma()), ctx);
    },
    nullptr});
}  // namespace

}  // namespace tiersim
