#include "accelerators/dma_engine.h"

#include "models/core/summary.h"

#include <algorithm>
#include <stdexcept>

#include "models/core/context.h"
#include "models/core/payload_pool.h"
#include "models/core/reference_paths.h"
#include "models/core/registry.h"

namespace tiersim {

void DmaParams::validate(const config::DmaEngine& c, Validator& v) {
  v.positive("bandwidth_bytes_per_s", c.has_bandwidth_bytes_per_s(), c.bandwidth_bytes_per_s());
  v.require("setup_latency_ps", c.has_setup_latency_ps());
  if (c.has_completion_timeout_ps()) {
    v.positive("completion_timeout_ps", true, double(c.completion_timeout_ps()));
  }
  if (c.has_channels() && v.positive("channels", true, double(c.channels())) && c.channels() > 64) {
    v.error("channels", "at most 64");
  }
  if (c.has_queue_depth() && c.queue_depth() > 65536) v.error("queue_depth", "at most 65536");
}

DmaParams DmaParams::from_config(const config::DmaEngine& c) {
  DmaParams p{c.bandwidth_bytes_per_s(), c.setup_latency_ps()};
  if (c.has_completion_timeout_ps()) p.completion_timeout_ps = c.completion_timeout_ps();
  if (c.has_priorities()) p.priorities = c.priorities();
  if (c.has_channels()) p.channels = c.channels();
  p.queue_depth = c.queue_depth();
  return p;
}

DmaEngine::DmaEngine(sc_core::sc_module_name name, const DmaParams& params, Context& ctx)
    : Component(name, ctx, "dma"),
      socket("socket"),
      params_(params),

      links_(ctx, basename()),
      transfers_(ctx.stats().counter(basename(), "transfers", "transfers completed", "count")),
      failed_(ctx.stats().counter(basename(), "transfers_failed",
                                  "transfers reported failed (device offline or link down past "
                                  "the completion timeout)",
                                  "count")),
      retried_(ctx.stats().counter(basename(), "transfers_retried",
                                   "transfer sides that waited for an offline device or a down "
                                   "link to come back",
                                   "count")),
      rerouted_(ctx.stats().counter(basename(), "transfers_rerouted",
                                    "transfer sides sent around a down link", "count")),
      bytes_(ctx.stats().counter(basename(), "bytes", "bytes moved", "bytes")),
      bytes_failed_(ctx.stats().counter(basename(), "bytes_failed",
                                        "bytes of transfers reported failed (not in bytes)",
                                        "bytes")),
      served_lost_(ctx.stats().vector(basename(), "served_bytes_lost",
                                      "bytes memories served for a side whose answer was lost: a "
                                      "response stalled past the timeout, a switch failing after "
                                      "the target served (a retry may be served again), the "
                                      "read of a copy whose write failed (not in bytes)",
                                      "bytes",
                                      [] {
                                        std::vector<std::string> l;
                                        for (int t = 0; t < kTiers; ++t) {
                                          l.push_back(std::string(tier_name(Tier(t))) + "_read");
                                          l.push_back(std::string(tier_name(Tier(t))) + "_written");
                                        }
                                        return l;
                                      }())),
      bytes_by_class_(ctx.stats().vector(
          basename(), "bytes_by_class", "bytes moved by object class", "bytes",
          {object_class_name(ObjectClass::kWeight), object_class_name(ObjectClass::kEmbedding),
           object_class_name(ObjectClass::kKvCache), object_class_name(ObjectClass::kActivation),
           object_class_name(ObjectClass::kDraftWeight)})),
      bytes_by_reason_(ctx.stats().vector(basename(), "bytes_by_reason",
                                          "bytes moved by reason (the movement intent's op)",
                                          "bytes",
                                          [] {
                                            std::vector<std::string> l;
                                            for (int i = 0; i < kMoveOps; ++i)
                                              l.push_back(move_op_name(MoveOp(i)));
                                            return l;
                                          }())),
      queue_wait_ps_(ctx.stats().counter(basename(), "queue_wait_ps",
                                         "time descriptors waited for a slot in a full channel "
                                         "queue",
                                         "ps")),
      bytes_by_path_(ctx.stats().vector(basename(), "bytes_by_path",
                                        "bytes moved by path: source tier to destination tier "
                                        "(none: the engine itself consumed them)",
                                        "bytes",
                                        [] {
                                          std::vector<std::string> l;
                                          for (int a = 0; a < kTiers; ++a)
                                            for (int b = 0; b < kTiers; ++b)
                                              l.push_back(std::string(tier_name(Tier(a))) + "_to_" +
                                                          tier_name(Tier(b)));
                                          return l;
                                        }())),
      latency_ns_(ctx.stats().histogram(basename(), "transfer_latency",
                                        "transfer latency from start to completion", "ns",
                                        Histogram::log2_edges(1, 1 << 24))) {
  for (uint32_t c = 0; c < std::max<uint32_t>(params_.channels, 1); ++c) {
    Channel ch;
    ch.server = PriorityServer(params_.bandwidth_bytes_per_s, 4096);
    ch.queue.assign(params_.queue_depth, 0);
    channels_.push_back(std::move(ch));
  }
}

bool DmaEngine::connect(Component& target, const LinkInfo& link) {
  if (target.target_socket() == nullptr) return false;
  const int index = static_cast<int>(links_.ports().size());
  socket.bind(*target.target_socket());
  links_.add(target, link, index);
  return true;
}

const DmaEngine::Target& DmaEngine::resolve(uint64_t address, uint64_t bytes, uint64_t* local) {
  // A copy's two sides alternate between two ranges (a tile's source, its staging buffer).
  for (const Resolved& r : resolved_) {
    if (r.range != nullptr && AddressMap::holds(*r.range, address, bytes)) {
      *local = r.range->local_base + (address - r.range->base);
      return *r.target;
    }
  }
  const auto decoded = ctx_const().address_map().decode(address, bytes);
  if (!decoded) throw std::logic_error(std::string(name()) + ": unmapped address range");
  *local = decoded->local_address;
  auto it = targets_.find(decoded->range);
  if (it == targets_.end()) {
    const std::string& memory_name = decoded->range->target;
    Component* memory = ctx().component(memory_name);
    const auto& candidates = links_.candidates(memory_name);
    if (memory == nullptr || candidates.empty()) {
      throw std::logic_error(std::string(name()) + ": no route to " + memory_name);
    }
    Target target{memory, offline_windows(ctx().config().system(), memory_name), &candidates};
    target.serves_direct = memory->serves_direct() && !reference_paths();
    LinkPorts::Port* first = candidates.front();
    if (target.offline.empty() && first->to == nullptr && first->neighbour == memory &&
        !reference_paths()) {
      target.wire = first;
    }
    it = targets_.emplace(decoded->range, std::move(target)).first;
  }
  resolved_[resolved_next_] = Resolved{decoded->range, &it->second};
  resolved_next_ ^= 1;
  return it->second;
}

uint32_t DmaEngine::level_of(const MovementIntent& intent) const {
  if (!params_.priorities) return 0;
  return intent.op == MoveOp::kDemandFetch || intent.op == MoveOp::kWriteBack ? 1 : 0;
}

bool DmaEngine::reachable(const Target& target, TimePs t, TimePs deadline) const {
  if (target.wire != nullptr) return true;
  if (!target.offline.empty()) {
    t = online_after(target.offline, t);
    if (t > deadline) return false;
  }
  return LinkPorts::choose(*target.candidates, t).up_ps <= deadline;
}

LinkPorts::Result DmaEngine::access(tlm::tlm_command cmd, const Target& target, uint64_t global,
                                    uint64_t local, uint64_t bytes, const MovementIntent& intent,
                                    TimePs start_ps, uint32_t level, uint64_t* served,
                                    const GatherPart* gather, uint32_t gather_parts) {
  *served = 0;
  const TimePs deadline = start_ps + params_.completion_timeout_ps;
  TimePs t = start_ps;
  LinkPorts::Choice c{target.wire, false, t};
  if (target.wire == nullptr) {
    // An offline device: wait while it comes back within the timeout, else report a failure.
    if (!target.offline.empty()) {
      const TimePs online = online_after(target.offline, t);
      if (online != t) {
        if (online > deadline) return {deadline, false};
        retried_.inc();
        t = online;
      }
    }
    c = LinkPorts::choose(*target.candidates, t);
    if (c.up_ps != t) {
      if (c.up_ps > deadline) return {deadline, false};
      retried_.inc();
    }
    if (c.rerouted) rerouted_.inc();
  }
  const bool write = cmd == tlm::TLM_WRITE_COMMAND;
  // What the target counts while the request crosses (b_transport runs to completion: nothing
  // else reaches the memory meanwhile).
  auto counted = [&] {
    return write ? target.memory->bytes_written() : target.memory->bytes_read();
  };
  const uint64_t before = counted();
  LinkPorts::Result r;
  const bool direct =
      target.serves_direct && c.port->to == nullptr && c.port->neighbour == target.memory;
  if (direct) {
    // An ideal wire to the memory itself: LinkPorts::forward's crossing, without the payload
    // (the request reaches the memory after the wire's latency, and the response comes back
    // after it; serve_direct's time is never before the request's arrival, which is not before
    // now, so the annotated delay's clamp at now never acts).
    const TimePs at = t + c.port->latency_ps;
    TimePs done = 0;
    const tlm::tlm_response_status status =
        target.memory->serve_direct(local, bytes, write, at, gather, gather_parts, &done);
    r = status == tlm::TLM_OK_RESPONSE ? LinkPorts::Result{done + c.port->latency_ps, true}
                                       : LinkPorts::Result{at, false};
    if (r.ok) {
      *served = counted() - before;
      return r;
    }
  }
  tlm::tlm_generic_payload* p = ctx().payloads().acquire();
  p->set_command(cmd);
  p->set_address(global);
  p->set_data_ptr(nullptr);  // timing-only payload
  p->set_data_length(static_cast<unsigned int>(bytes));
  p->set_streaming_width(static_cast<unsigned int>(bytes));
  p->set_byte_enable_ptr(nullptr);
  PayloadPool::intent(*p) = intent;
  PayloadPool::timing(*p).stall_limit_ps = params_.completion_timeout_ps;
  PayloadPool::timing(*p).deadline_ps = deadline;
  PayloadPool::timing(*p).gather = gather;
  PayloadPool::timing(*p).gather_parts = gather_parts;
  if (!direct) {
    r = links_.forward(*c.port, *socket[c.port->socket_index], *p, t, t, level, target.memory,
                       local);
  }
  // A failure beyond the first link (a switch with no way on), or the memory's refusal: try the
  // other ways there, from when the failure was reported, while the timeout allows.
  if (!r.ok) {
    for (LinkPorts::Port* alt : *target.candidates) {
      if (alt == c.port || r.done_ps > deadline || alt->up_after(r.done_ps) > deadline) continue;
      rerouted_.inc();
      p->set_address(global);
      p->set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      const TimePs at = alt->up_after(r.done_ps);
      r = links_.forward(*alt, *socket[alt->socket_index], *p, at, at, level, target.memory, local);
      if (r.ok) break;
    }
  }
  p->release();
  *served = counted() - before;
  return r;
}

void DmaEngine::count_lost(Tier tier, bool write, uint64_t served, uint64_t bytes, bool good) {
  const uint64_t used = good ? bytes : 0;
  if (served > used) {
    served_lost_.add(size_t(tier) * 2 + (write ? 1 : 0), static_cast<double>(served - used));
  }
}

TimePs DmaEngine::transfer(uint64_t src, uint64_t dst, uint64_t bytes, MovementIntent intent,
                           TimePs start_ps, bool* ok) {
  // Transfers larger than a TLM length (32 bits) are a caller error; tiles are MiB-sized.
  if (bytes == 0 || bytes > 0xffffffffULL) throw std::logic_error("dma: bad transfer size");
  uint64_t src_local = 0;
  const Target& from = resolve(src, bytes, &src_local);
  return copy(from, src, src_local, dst, bytes, intent, start_ps, ok, nullptr, 0);
}

TimePs DmaEngine::transfer_gather(const GatherRange* parts, uint32_t count, uint64_t dst,
                                  MovementIntent intent, TimePs start_ps, bool* ok) {
  if (count == 1) return transfer(parts[0].address, dst, parts[0].bytes, intent, start_ps, ok);
  if (count == 0) throw std::logic_error("dma: empty gather");
  // The ranges in address order (the payload's address is the lowest; see StreamTiming).
  uint64_t first_local = 0, bytes = 0;
  const Target& from = resolve(parts[0].address, parts[0].bytes, &first_local);
  gather_.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t local = 0;
    if (parts[i].bytes == 0 || &resolve(parts[i].address, parts[i].bytes, &local) != &from) {
      throw std::logic_error(std::string(name()) + ": a gather's ranges span memories");
    }
    gather_[i] = GatherPart{local, parts[i].bytes};
    bytes += parts[i].bytes;
  }
  std::sort(gather_.begin(), gather_.end(), [](const GatherPart& a, const GatherPart& b) {
    return a.offset_bytes < b.offset_bytes;
  });
  const uint64_t src_local = gather_[0].offset_bytes;
  for (uint32_t i = 0; i < count; ++i) {
    if (i > 0 && gather_[i].offset_bytes < gather_[i - 1].offset_bytes + gather_[i - 1].bytes) {
      throw std::logic_error(std::string(name()) + ": a gather's ranges overlap");
    }
    gather_[i].offset_bytes -= src_local;
  }
  if (bytes > 0xffffffffULL) throw std::logic_error("dma: bad transfer size");
  // One memory's ranges map linearly: the lowest range's global address follows the first's.
  const uint64_t src = parts[0].address - first_local + src_local;
  return copy(from, src, src_local, dst, bytes, intent, start_ps, ok, gather_.data(), count);
}

TimePs DmaEngine::copy(const Target& from, uint64_t src, uint64_t src_local, uint64_t dst,
                       uint64_t bytes, MovementIntent intent, TimePs start_ps, bool* ok,
                       const GatherPart* gather, uint32_t gather_parts) {
  uint64_t dst_local = 0;
  const Target& to = resolve(dst, bytes, &dst_local);
  intent.source = from.memory->tier();
  intent.destination = to.memory->tier();
  const uint32_t level = level_of(intent);
  uint32_t channel = 0;
  TimePs begin = start_ps + params_.setup_latency_ps;
  const TimePs engine_done = engine_reserve(begin, bytes, level, &channel, &begin);
  // A copy whose other end cannot be reached within the timeout (offline, or no link up) fails
  // before it reads or writes anything: no memory counts bytes of a copy that never lands.
  const TimePs deadline = begin + params_.completion_timeout_ps;
  if (!reachable(from, begin, deadline) || !reachable(to, begin, deadline)) {
    return finish(channel, std::max(engine_done, deadline), false, intent, bytes, start_ps, ok);
  }
  uint64_t read_served = 0, write_served = 0;
  const auto read = access(tlm::TLM_READ_COMMAND, from, src, src_local, bytes, intent, begin, level,
                           &read_served, gather, gather_parts);
  // A read that failed ends the copy: its data never arrives, so nothing is written.
  const auto write = read.ok ? access(tlm::TLM_WRITE_COMMAND, to, dst, dst_local, bytes, intent,
                                      begin, level, &write_served)
                             : LinkPorts::Result{read.done_ps, false};
  const bool good = read.ok && write.ok;
  count_lost(intent.source, false, read_served, bytes, good);
  count_lost(intent.destination, true, write_served, bytes, good);
  return finish(channel, std::max({engine_done, read.done_ps, write.done_ps}), good, intent, bytes,
                start_ps, ok);
}

TimePs DmaEngine::read(uint64_t src, uint64_t bytes, MovementIntent intent, TimePs start_ps,
                       bool* ok) {
  if (bytes == 0 || bytes > 0xffffffffULL) throw std::logic_error("dma: bad read size");
  uint64_t src_local = 0;
  const Target& from = resolve(src, bytes, &src_local);
  intent.source = from.memory->tier();
  const uint32_t level = level_of(intent);
  uint32_t channel = 0;
  TimePs begin = start_ps + params_.setup_latency_ps;
  const TimePs engine_done = engine_reserve(begin, bytes, level, &channel, &begin);
  uint64_t served = 0;
  const auto r =
      access(tlm::TLM_READ_COMMAND, from, src, src_local, bytes, intent, begin, level, &served);
  count_lost(intent.source, false, served, bytes, r.ok);
  return finish(channel, std::max(engine_done, r.done_ps), r.ok, intent, bytes, start_ps, ok);
}

TimePs DmaEngine::finish(uint32_t channel, TimePs done, bool good, const MovementIntent& intent,
                         uint64_t bytes, TimePs start_ps, bool* ok) {
  retire(channel, done);
  if (ok) *ok = good;
  if (!good) {
    failed_.inc();
    bytes_failed_.inc(bytes);
    return done;
  }
  transfers_.inc();
  count(intent, bytes);
  latency_ns_.record(static_cast<double>(done - start_ps) / kPsPerNs);
  return done;
}

TimePs DmaEngine::engine_reserve(TimePs begin, uint64_t bytes, uint32_t level, uint32_t* channel,
                                 TimePs* slot_start) {
  // Channel 0 serves what a consumer waits on when there are others for the bulk copies.
  uint32_t first = 0, last = static_cast<uint32_t>(channels_.size()) - 1;
  if (channels_.size() > 1 && params_.priorities) {
    if (level > 0) {
      last = 0;
    } else {
      first = 1;
    }
  }
  // The channel whose queue admits the descriptor first (ties: the lowest index).
  auto admit_at = [&](const Channel& c) {
    return c.queue.empty() ? begin : std::max(begin, c.queue[c.head]);
  };
  uint32_t best = first;
  for (uint32_t c = first + 1; c <= last; ++c) {
    if (admit_at(channels_[c]) < admit_at(channels_[best]) ||
        (admit_at(channels_[c]) == admit_at(channels_[best]) &&
         channels_[c].last_done < channels_[best].last_done)) {
      best = c;
    }
  }
  Channel& ch = channels_[best];
  const TimePs start = admit_at(ch);
  if (start > begin) queue_wait_ps_.inc(start - begin);
  *channel = best;
  *slot_start = start;
  return ch.server.reserve(start, bytes, level);
}

void DmaEngine::retire(uint32_t channel, TimePs done) {
  Channel& ch = channels_[channel];
  if (!ch.queue.empty()) {
    ch.queue[ch.head] = done;
    ch.head = (ch.head + 1) % ch.queue.size();
  }
  ch.last_done = std::max(ch.last_done, done);
  ++ch.completed;
}

void DmaEngine::count(const MovementIntent& intent, uint64_t bytes) {
  bytes_.inc(bytes);
  bytes_by_class_.add(static_cast<size_t>(intent.object_class), static_cast<double>(bytes));
  bytes_by_reason_.add(static_cast<size_t>(intent.op), static_cast<double>(bytes));
  bytes_by_path_.add(size_t(intent.source) * kTiers + size_t(intent.destination),
                     static_cast<double>(bytes));
}

void DmaEngine::summarize(std::vector<SummaryItem>& out, uint64_t tokens) const {
  const double per = tokens ? 1.0 / double(tokens) : 0.0;
  const std::string me = basename();
  for (int i = 0; i < kMoveOps; ++i) {
    const double b = bytes_by_reason_.value(i);
    if (b > 0) {
      out.push_back(
          {me + "_" + move_op_name(MoveOp(i)) + "_bytes_per_token", b * per, "bytes/token"});
    }
  }
  for (int a = 0; a < kTiers; ++a) {
    for (int c = 0; c < kTiers; ++c) {
      const double b = bytes_by_path_.value(size_t(a) * kTiers + c);
      if (b > 0) {
        out.push_back(
            {me + "_" + tier_name(Tier(a)) + "_to_" + tier_name(Tier(c)) + "_bytes_per_token",
             b * per, "bytes/token"});
      }
    }
  }
}

void DmaEngine::add_energy(TimePs now_ps, EnergyLedger& out) const {
  links_.add_energy(now_ps, out);
}

bool DmaEngine::has_energy() const {
  return links_.has_energy();
}

const LinkModel* DmaEngine::link_model(const std::string& link, bool leaving) const {
  for (const auto& port : links_.ports()) {
    if (port->link == link) return leaving ? port->to.get() : port->from.get();
  }
  return nullptr;
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
