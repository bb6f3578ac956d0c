// DMA engine: moves a range of bytes from one memory to another.
//
// What is modelled: a per-descriptor setup latency, the engine's own throughput (a bandwidth
// server), the source read and destination write as TLM transactions through the links the
// engine is connected by (each link adds its latency on the request and on the response), and
// address decoding through the system address map. Source and destination stream concurrently
// (cut-through): a transfer completes when the slower of source, destination and engine is done.
//
// Routing: each side goes to the memory the address map names, over the links on a shortest
// path (fabric/link_ports.h: possibly through switches); a link that is down sends it another
// way when there is one, else it waits for the link.
// Faults: a request to an offline device, or over a link down for longer than
// completion_timeout_ps, waits when the device or link is back within the timeout (counted as
// retried) and is otherwise reported failed at the timeout (counted as failed; the caller gets
// the failure time and ok = false). Every transfer is counted as completed or failed; bytes a
// memory served for a side whose answer was lost (a response stalled past the timeout, a switch
// failing after the target served, the read of a copy whose write failed) are counted apart
// (served_bytes_lost), never in bytes; a copy whose read fails writes nothing.
// Priorities (default on): demand fetches and write-backs go ahead of prefetches, evictions and
// other bulk copies on the engine and on the serial links it drives (strict priority,
// non-preemptive per 4 KiB on the engine and per packet or flit on a link).
// Fidelity: fast, loosely timed: transfer() is called from a SystemC process, returns the
// completion time at once, and reserves bandwidth from a start time that may lie ahead of the
// current time (annotated delay). Channels, descriptor queues and fences: docs/models/dma.md.
#pragma once

#include <tlm_utils/multi_passthrough_initiator_socket.h>

#include <array>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "configs/tiersim.pb.h"
#include "fabric/faults.h"
#include "fabric/link_ports.h"
#include "fabric/serial_link.h"
#include "models/config/errors.h"
#include "models/core/address_map.h"
#include "models/core/bandwidth_server.h"
#include "models/core/component.h"
#include "models/core/movement_intent.h"
#include "models/core/payload_pool.h"
#include "models/core/stats.h"

namespace tiersim {

struct DmaParams {
  double bandwidth_bytes_per_s;
  TimePs setup_latency_ps;
  TimePs completion_timeout_ps = 50'000'000;
  bool priorities = true;
  uint32_t channels = 1;
  uint32_t queue_depth = 0;  // 0: unbounded

  static void validate(const config::DmaEngine& c, Validator& v);
  static DmaParams from_config(const config::DmaEngine& c);
};

class DmaEngine : public Component {
 public:
  tlm_utils::multi_passthrough_initiator_socket<DmaEngine> socket;

  DmaEngine(sc_core::sc_module_name name, const DmaParams& params, Context& ctx);

  bool connect(Component& target, const LinkInfo& link) override;

  // Moves `bytes` from global address `src` to `dst`, starting no earlier than `start_ps`
  // (>= now). Returns the completion time. `intent` says why; its tiers are filled in here.
  // Both ranges must be mapped to memories this engine is linked to (the builder checks);
  // a target's error response is an internal error (std::logic_error).
  // `ok` (optional) is set false when the transfer failed (see Faults above).
  TimePs transfer(uint64_t src, uint64_t dst, uint64_t bytes, MovementIntent intent,
                  TimePs start_ps, bool* ok = nullptr);

  // One source range of a scatter-gather transfer (global address).
  struct GatherRange {
    uint64_t address = 0, bytes = 0;
  };
  // A scatter-gather transfer: one descriptor (one setup latency, one engine reservation) that
  // reads `count` ranges of one memory (each served by it as a request of its own, all from the
  // descriptor's start) and writes their total to `dst`, contiguous. Ranges in different
  // memories are a caller error (std::logic_error). One range: transfer().
  TimePs transfer_gather(const GatherRange* parts, uint32_t count, uint64_t dst,
                         MovementIntent intent, TimePs start_ps, bool* ok = nullptr);

  // Reads `bytes` at `src` for a consumer that is the engine itself (a host CPU's loads: no
  // destination write). Timing, faults and counters as transfer().
  TimePs read(uint64_t src, uint64_t bytes, MovementIntent intent, TimePs start_ps,
              bool* ok = nullptr);

  // When every descriptor submitted to `channel` so far is complete (a fence), and how many
  // it has completed (its completion counter).
  TimePs fence(uint32_t channel) const { return channels_.at(channel).last_done; }
  uint64_t channel_completed(uint32_t channel) const { return channels_.at(channel).completed; }
  uint32_t channels() const { return static_cast<uint32_t>(channels_.size()); }

  // The serial model of system link `link` from this engine: `leaving` its direction away from
  // the engine, else toward it (nullptr: no such link, or an ideal wire).
  const LinkModel* link_model(const std::string& link, bool leaving) const;

  uint64_t completed() const { return transfers_.value(); }
  uint64_t failed() const { return failed_.value(); }
  uint64_t retried() const { return retried_.value(); }
  uint64_t rerouted() const { return rerouted_.value(); }

  // Energy of the serial links this engine drives (both directions): SerDes and retimers per
  // bit moved, idle and laser power (fabric/link_ports.h).
  void add_energy(TimePs now_ps, EnergyLedger& out) const override;
  bool has_energy() const override;
  // Bytes this engine moved per token by reason and by path (source tier to destination tier),
  // each nonzero one as <engine>_<reason>_bytes_per_token and <engine>_<from>_to_<to>_...
  void summarize(std::vector<SummaryItem>& out, uint64_t tokens) const override;

 private:
  void count(const MovementIntent& intent, uint64_t bytes);
  // Retires a descriptor done at `done` on `channel` and counts it completed (good) or failed.
  TimePs finish(uint32_t channel, TimePs done, bool good, const MovementIntent& intent,
                uint64_t bytes, TimePs start_ps, bool* ok);
  struct Target {
    Component* memory;
    std::vector<FaultWindow> offline;
    const std::vector<LinkPorts::Port*>* candidates;  // first links toward it, best first
    // The memory serves requests without a payload (Component::serve_direct).
    bool serves_direct = false;
    // Its first link is an ideal wire to it and it has no offline windows: every request takes
    // that link at once (choose() would), and it is always reachable.
    LinkPorts::Port* wire = nullptr;
  };
  // The memory serving [address, address + bytes) and the target-local address.
  const Target& resolve(uint64_t address, uint64_t bytes, uint64_t* local);
  // Whether `target` is online and has a link up by `deadline`, from `t`.
  bool reachable(const Target& target, TimePs t, TimePs deadline) const;
  // A copy from `from` (its source range resolved: `src` global, `src_local` in the memory; a
  // scatter-gather read when gather_parts > 0) to `dst`: timing, faults and counters.
  TimePs copy(const Target& from, uint64_t src, uint64_t src_local, uint64_t dst, uint64_t bytes,
              MovementIntent intent, TimePs start_ps, bool* ok, const GatherPart* gather,
              uint32_t gather_parts);
  // Issues one transaction of one side; `served` gets the bytes the target memory counted for
  // it (0 when it never served it; twice the bytes when it served a retry again).
  LinkPorts::Result access(tlm::tlm_command cmd, const Target& target, uint64_t global,
                           uint64_t local, uint64_t bytes, const MovementIntent& intent,
                           TimePs start_ps, uint32_t level, uint64_t* served,
                           const GatherPart* gather = nullptr, uint32_t gather_parts = 0);
  // Counts what the memory of a side served beyond a completed transfer's bytes (all of it when
  // the transfer failed) in served_bytes_lost.
  void count_lost(Tier tier, bool write, uint64_t served, uint64_t bytes, bool good);
  // 1 for what a consumer waits on (demand fetches, write-backs), 0 for bulk copies.
  uint32_t level_of(const MovementIntent& intent) const;

  // A channel: its bandwidth, its descriptor queue (completion times of the descriptors in it,
  // oldest first) and counters.
  struct Channel {
    PriorityServer server;
    std::vector<TimePs> queue;  // ring of queue_depth completion times (empty: unbounded)
    size_t head = 0;
    TimePs last_done = 0;
    uint64_t completed = 0;
  };
  // Picks the channel for a descriptor of `level`, waits for a slot in its queue, and
  // reserves its bandwidth; returns the channel's completion time for the bytes and sets
  // `*slot_start` to when the descriptor entered service (>= begin).
  TimePs engine_reserve(TimePs begin, uint64_t bytes, uint32_t level, uint32_t* channel,
                        TimePs* slot_start);
  void retire(uint32_t channel, TimePs done);

  const DmaParams params_;
  std::vector<Channel> channels_;
  LinkPorts links_;
  std::unordered_map<const AddressRangeInfo*, Target> targets_;  // by address range
  // The last two ranges resolved and their targets (unordered_map nodes do not move).
  struct Resolved {
    const AddressRangeInfo* range = nullptr;
    const Target* target = nullptr;
  };
  std::array<Resolved, 2> resolved_{};
  uint32_t resolved_next_ = 0;
  Counter& transfers_;
  Counter& failed_;
  Counter& retried_;
  Counter& rerouted_;
  Counter& bytes_;
  Counter& bytes_failed_;
  Vector& served_lost_;  // by tier and direction: <tier>_read, <tier>_written
  Vector& bytes_by_class_;
  Vector& bytes_by_reason_;
  Counter& queue_wait_ps_;
  Vector& bytes_by_path_;
  Histogram& latency_ns_;
  std::vector<GatherPart> gather_;  // the gather in flight (reused: no allocation per call)
};

}  // namespace tiersim
