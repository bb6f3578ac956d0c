// Component tests of the bandwidth memory (the fast hbm level), the SRAM and the MemoryTarget
// base with a tester initiator: each test elaborates in a forked child and returns completion
// times for the parent to check by hand formulas.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <tlm_utils/simple_initiator_socket.h>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <vector>

#include "memory/bandwidth_memory.h"
#include "memory/memory_target.h"
#include "memory/sram.h"
#include "models/core/context.h"
#include "models/core/payload_pool.h"
#include "tests/support/fork_sim.h"
#include "tests/support/paths.h"

namespace tiersim {
namespace {

struct Request {
  tlm::tlm_command cmd;
  uint64_t address, bytes;
  TimePs issue_ps;   // when the initiator calls b_transport
  TimePs offset_ps;  // annotated delay passed in
};

// A timing-only payload for `r`.
void set_request(tlm::tlm_generic_payload& p, const Request& r) {
  p.set_command(r.cmd);
  p.set_address(r.address);
  p.set_data_length(static_cast<unsigned>(r.bytes));
  p.set_data_ptr(nullptr);
}

// Issues its requests from one SC_METHOD at their issue times and records completion times.
class Tester : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<Tester> socket;
  SC_HAS_PROCESS(Tester);
  Tester(sc_core::sc_module_name name, std::vector<Request> reqs)
      : sc_module(name), socket("socket"), reqs_(std::move(reqs)) {
    SC_METHOD(issue);
  }
  std::vector<long long> done_ps;  // -1: error response

 private:
  void issue() {
    while (next_ < reqs_.size() && reqs_[next_].issue_ps <= now_ps()) {
      const Request& r = reqs_[next_++];
      tlm::tlm_generic_payload p;
      set_request(p, r);
      sc_core::sc_time delay = to_sc_time(r.offset_ps);
      socket->b_transport(p, delay);
      done_ps.push_back(p.is_response_ok() ? static_cast<long long>(now_ps() + to_ps(delay)) : -1);
    }
    if (next_ < reqs_.size()) next_trigger(to_sc_time(reqs_[next_].issue_ps - now_ps()));
  }
  std::vector<Request> reqs_;
  size_t next_ = 0;
};

std::string join(const std::vector<long long>& v) {
  std::ostringstream os;
  for (auto x : v)
    os << x << " ";
  return os.str();
}

const BandwidthMemoryParams kHbm{5, 1024, 6400, 1 << 20, 0.5, 100000, 256};  // 409.6 GB/s per stack

std::string run_hbm(std::vector<Request> reqs) {
  return test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    config::Config cfg;
    Context ctx(cfg, 1);
    BandwidthMemory hbm("hbm", kHbm, ctx);
    Tester t("tester", reqs);
    t.socket.bind(hbm.socket);
    sc_core::sc_start();
    return join(t.done_ps) + "| " + std::to_string(hbm.bytes_read()) + " " +
           std::to_string(hbm.bytes_written());
  });
}

TEST(BandwidthMemory, SingleRequestSplitsAcrossStacksPlusLatency) {
  // 1 MiB = 4096 chunks of 256 B over 5 stacks: stack 0 gets 820 chunks, the others 819.
  const std::string out = run_hbm({{tlm::TLM_READ_COMMAND, 0, 1 << 20, 0, 0}});
  const TimePs busiest = transfer_time_ps(820 * 256, 409.6e9);
  EXPECT_EQ(out, std::to_string(busiest + 100000) + " | 1048576 0");
}

TEST(BandwidthMemory, ConcurrentRequestsQueuePerStack) {
  // Two requests at t=0 on disjoint stacks-sets do not interfere; a third on the same stack
  // waits behind the first.
  const std::string out = run_hbm({
      {tlm::TLM_READ_COMMAND, 0, 256, 0, 0},     // stack 0
      {tlm::TLM_WRITE_COMMAND, 256, 256, 0, 0},  // stack 1
      {tlm::TLM_READ_COMMAND, 1280, 256, 0, 0},  // chunk 5: stack 0 again
  });
  const TimePs one = transfer_time_ps(256, 409.6e9);
  EXPECT_EQ(out, std::to_string(one + 100000) + " " + std::to_string(one + 100000) + " " +
                     std::to_string(2 * one + 100000) + " | 512 256");
}

TEST(BandwidthMemory, AnnotatedDelayStartsLaterAndIdleGapsAreNotBilled) {
  const std::string out = run_hbm(
      {{tlm::TLM_READ_COMMAND, 0, 256, 0, 0}, {tlm::TLM_READ_COMMAND, 0, 256, 1000, 5000000}});
  const TimePs one = transfer_time_ps(256, 409.6e9);
  EXPECT_EQ(out, std::to_string(one + 100000) + " " +
                     std::to_string(1000 + 5000000 + one + 100000) + " | 512 0");
}

TEST(BandwidthMemory, ChannelServersGiveSmallRequestsAChannelsBandwidth) {
  // 2 stacks x 4 channels at 409.6 GB/s effective per stack (819.2 x 0.5): 102.4 GB/s per
  // channel server. A 256-byte
  // request occupies one channel; eight of them at t=0 land on eight different servers.
  BandwidthMemoryParams p = kHbm;
  p.stack_count = 2;
  p.channels_per_stack = 4;
  std::vector<Request> reqs;
  for (uint64_t i = 0; i < 9; ++i)
    reqs.push_back({tlm::TLM_READ_COMMAND, 256 * i, 256, 0, 0});
  const std::string out = test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    config::Config cfg;
    Context ctx(cfg, 1);
    BandwidthMemory hbm("hbm", p, ctx);
    Tester t("tester", reqs);
    t.socket.bind(hbm.socket);
    sc_core::sc_start();
    return join(t.done_ps);
  });
  const TimePs per_channel = transfer_time_ps(256, 409.6e9 / 4);
  std::string want;
  for (int i = 0; i < 8; ++i)
    want += std::to_string(per_channel + 100000) + " ";
  want += std::to_string(2 * per_channel + 100000) + " ";  // the ninth queues behind the first
  EXPECT_EQ(out, want);
}

TEST(BandwidthMemory, OutOfRangeIsAnAddressError) {
  const std::string out = run_hbm({{tlm::TLM_READ_COMMAND, 5ull << 20, 64, 0, 0},
                                   {tlm::TLM_READ_COMMAND, (5ull << 20) - 32, 64, 0, 0}});
  EXPECT_EQ(out, "-1 -1 | 0 0");
}

// A model of fixed timing: a request is done 1000 ps plus one ps per byte after its start.
class FixedMemory : public MemoryTarget {
 public:
  FixedMemory(sc_core::sc_module_name name, Context& ctx)
      : MemoryTarget(name, ctx, "fixed", Tier::kDdr, 4096, {"requests", "requests served", true}) {
    ctx.stats().counter(basename(), "own", "the model's own stat", "count");
    register_latency("request_latency", "latency", Histogram::log2_edges(1, 1 << 10));
  }
  int served = 0;

 protected:
  TimePs serve(uint64_t, uint64_t bytes, bool, TimePs start_ps) override {
    ++served;
    return start_ps + 1000 + bytes;
  }
};

TEST(MemoryTarget, ChecksTheRangeCountsAndAnnotatesTheDelay) {
  const std::string out = test::run_forked([] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    config::Config cfg;
    Context ctx(cfg, 1);
    FixedMemory m("m", ctx);
    Tester t("tester", {{tlm::TLM_READ_COMMAND, 0, 100, 0, 0},
                        {tlm::TLM_WRITE_COMMAND, 4000, 96, 50, 500},
                        {tlm::TLM_READ_COMMAND, 4000, 97, 0, 0},
                        {tlm::TLM_READ_COMMAND, 0, 0, 0, 0}});
    t.socket.bind(m.socket);
    sc_core::sc_start();
    std::string stats;
    for (const auto& s : ctx.stats().all())
      stats += s->name() + " ";
    const auto* lat = static_cast<const Histogram*>(ctx.stats().find("m.request_latency"));
    const auto* req = static_cast<const Counter*>(ctx.stats().find("m.requests"));
    return join(t.done_ps) + "| " + std::to_string(m.served) + " " + std::to_string(req->value()) +
           " " + std::to_string(m.bytes_read()) + " " + std::to_string(m.bytes_written()) + " " +
           std::to_string(lat->count()) + " " + std::to_string(lat->max()) + " | " + stats +
           std::to_string(static_cast<int>(m.tier()));
  });
  // The write starts at 50 + 500 and takes 1096 ps; the out-of-range and empty requests get an
  // error and reach neither the model nor the counts.
  EXPECT_EQ(out,
            "1100 1646 -1 -1 | 2 2 100 96 2 1.100000 | m.requests m.bytes_read m.bytes_written "
            "m.own m.request_latency " +
                std::to_string(static_cast<int>(Tier::kDdr)));
}

// Issues one scatter-gather read (StreamTiming's list) at time 0 and records its answer.
class GatherTester : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<GatherTester> socket;
  SC_HAS_PROCESS(GatherTester);
  GatherTester(sc_core::sc_module_name name, uint64_t address, std::vector<GatherPart> parts)
      : sc_module(name), socket("socket"), address_(address), parts_(std::move(parts)) {
    SC_METHOD(issue);
  }
  long long done_ps = -2;

 private:
  void issue() {
    tlm::tlm_generic_payload p;
    StreamTiming timing;
    timing.gather = parts_.data();
    timing.gather_parts = static_cast<uint32_t>(parts_.size());
    p.set_extension(&timing);
    uint64_t total = 0;
    for (const auto& g : parts_)
      total += g.bytes;
    p.set_command(tlm::TLM_READ_COMMAND);
    p.set_address(address_);
    p.set_data_length(static_cast<unsigned>(total));
    p.set_data_ptr(nullptr);
    sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
    socket->b_transport(p, delay);
    done_ps = p.is_response_ok() ? static_cast<long long>(to_ps(delay)) : -1;
    p.clear_extension(&timing);
  }
  uint64_t address_;
  std::vector<GatherPart> parts_;
};

std::string run_gather(uint64_t address, std::vector<GatherPart> parts) {
  return test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    config::Config cfg;
    Context ctx(cfg, 1);
    FixedMemory m("m", ctx);
    GatherTester t("tester", address, parts);
    t.socket.bind(m.socket);
    sc_core::sc_start();
    const auto* req = static_cast<const Counter*>(ctx.stats().find("m.requests"));
    const auto* lat = static_cast<const Histogram*>(ctx.stats().find("m.request_latency"));
    return std::to_string(t.done_ps) + " | " + std::to_string(m.served) + " " +
           std::to_string(req->value()) + " " + std::to_string(m.bytes_read()) + " " +
           std::to_string(lat->count());
  });
}

TEST(MemoryTarget, ServesEachRangeOfAGatherFromItsStart) {
  // Ranges at 1000 (100 B), 200 (300 B, the payload's address) and 3000 (50 B), in that order:
  // each is a request of its own from time 0 (1000 + bytes ps), the answer the latest
  // (1300 ps); every range's bytes counted.
  EXPECT_EQ(run_gather(200, {{800, 100}, {0, 300}, {2800, 50}}), "1300 | 3 3 450 3");
  // Near the end of the memory (4096 B): ranges up to its last byte are served.
  EXPECT_EQ(run_gather(3000, {{0, 100}, {996, 100}}), "1100 | 2 2 200 2");
  // A range beyond the capacity, or of no bytes: an address error, nothing served.
  EXPECT_EQ(run_gather(3000, {{0, 100}, {1000, 100}}), "-1 | 0 0 0 0");
  EXPECT_EQ(run_gather(1000, {{0, 100}, {200, 0}}), "-1 | 0 0 0 0");
}

// Everything a memory's service leaves behind: completion times, then its stats' values.
std::string served_state(Context& ctx, const std::vector<long long>& done) {
  std::ostringstream os;
  os << join(done) << "|";
  std::vector<double> v;
  for (const auto& s : ctx.stats().all()) {
    v.clear();
    s->values(0, v);
    os << " " << s->name();
    for (double x : v)
      os << " " << std::setprecision(17) << x;
  }
  return os.str();
}

struct Initiator : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<Initiator> socket;
  explicit Initiator(sc_core::sc_module_name name) : sc_module(name), socket("socket") {}
};

TEST(MemoryTarget, DirectServiceIsTheSocketsService) {
  // The same random requests (reads and writes of 1 B to 3 MiB, gathers, out-of-range and empty
  // ones, starts ahead of now and behind the stream, some inside the memory's offline windows)
  // reach one fast-level HBM through its socket, issued as the kernel's clock advances, and an
  // identical one through serve_direct: the same answers (the socket's is now + the annotated
  // delay) and the same stats, bit for bit.
  std::vector<Request> reqs;
  std::vector<std::vector<GatherPart>> gathers;
  uint64_t x = 12345;
  auto next = [&x](uint64_t n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (x >> 33) % n;
  };
  for (int i = 0; i < 600; ++i) {
    const bool write = next(3) == 0;
    uint64_t bytes = next(4) == 0 ? 1 + next(4096) : 1 + next(3u << 20);
    if (next(50) == 0) bytes = 0;
    uint64_t address = next(5u << 20);
    if (next(40) == 0) address = (5u << 20) - bytes / 2;  // crosses the end
    reqs.push_back({write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND, address, bytes,
                    uint64_t(i) * 2'000'000, next(4) == 0 ? 0 : next(20'000'000) * uint64_t(i)});
    gathers.emplace_back();
    if (!write && next(8) == 0) {
      // A gather of up to four ranges inside the memory, from `address`.
      const uint64_t n = 1 + next(4);
      uint64_t offset = 0, total = 0;
      for (uint64_t k = 0; k < n; ++k) {
        const uint64_t b = 1 + next(65536);
        gathers.back().push_back({offset, b});
        offset += b + next(8192);
        total += b;
      }
      reqs.back().address = next((5u << 20) - offset);
      reqs.back().bytes = total;
    }
  }
  const BandwidthMemoryParams params{5, 1024, 6400, 1 << 20, 0.5, 100000, 256};
  config::Config cfg;
  for (const auto& [from_ps, for_ps] :
       {std::pair<TimePs, TimePs>{300'000'000, 100'000'000}, {2'000'000'000, 500'000'000}}) {
    config::Fault& f = *cfg.mutable_system()->add_faults();
    f.set_name("out" + std::to_string(from_ps));
    f.set_start_ps(from_ps);
    f.set_duration_ps(for_ps);
    f.set_device_offline("hbm");
  }
  const std::string via_socket = test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    Context ctx(cfg, 1);
    BandwidthMemory hbm("hbm", params, ctx);
    Initiator initiator("initiator");
    initiator.socket.bind(hbm.socket);
    sc_core::sc_start(sc_core::SC_ZERO_TIME);  // binding complete
    auto& socket = initiator.socket;
    std::vector<long long> done;
    for (size_t i = 0; i < reqs.size(); ++i) {
      const Request& r = reqs[i];
      sc_core::sc_start(to_sc_time(r.issue_ps - now_ps()));  // the kernel's clock at its issue
      tlm::tlm_generic_payload p;
      StreamTiming timing;
      timing.gather = gathers[i].data();
      timing.gather_parts = static_cast<uint32_t>(gathers[i].size());
      p.set_extension(&timing);
      set_request(p, r);
      sc_core::sc_time delay = to_sc_time(r.offset_ps);
      socket->b_transport(p, delay);
      done.push_back(p.is_response_ok() ? static_cast<long long>(now_ps() + to_ps(delay)) : -1);
      p.clear_extension(&timing);
    }
    return served_state(ctx, done);
  });
  const std::string direct = test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    Context ctx(cfg, 1);
    BandwidthMemory hbm("hbm", params, ctx);
    Component& c = hbm;
    EXPECT_TRUE(c.serves_direct());
    std::vector<long long> done;
    for (size_t i = 0; i < reqs.size(); ++i) {
      const Request& r = reqs[i];
      TimePs d = 0;
      const auto status = c.serve_direct(r.address, r.bytes, r.cmd == tlm::TLM_WRITE_COMMAND,
                                         r.issue_ps + r.offset_ps, gathers[i].data(),
                                         static_cast<uint32_t>(gathers[i].size()), &d);
      done.push_back(status == tlm::TLM_OK_RESPONSE ? static_cast<long long>(d) : -1);
    }
    return served_state(ctx, done);
  });
  EXPECT_EQ(via_socket, direct);
  // The draw made every kind of request: answered, refused (out of range, empty, offline),
  // gathers.
  EXPECT_NE(direct.find("-1 "), std::string::npos);
  EXPECT_NE(direct.find("hbm.request_latency"), std::string::npos);
  EXPECT_NE(direct.find("hbm.requests_refused"), std::string::npos);
  EXPECT_EQ(direct.find("hbm.requests_refused 0 "), std::string::npos);
  EXPECT_GT(std::count_if(gathers.begin(), gathers.end(), [](const auto& g) { return !g.empty(); }),
            30);
}

TEST(Sram, ReadAndWritePortsAreIndependent) {
  const std::string out = test::run_forked([] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    config::Config cfg;
    Context ctx(cfg, 1);
    Sram sram("sram", SramParams{1 << 20, 1e12, 0.5e12, 2000, {}}, ctx);
    Tester t("tester", {{tlm::TLM_READ_COMMAND, 0, 1000, 0, 0},
                        {tlm::TLM_WRITE_COMMAND, 0, 1000, 0, 0},
                        {tlm::TLM_READ_COMMAND, 0, 1000, 0, 0}});
    t.socket.bind(sram.socket);
    sc_core::sc_start();
    return join(t.done_ps);
  });
  // Read: 1000 B at 1 B/ps = 1000 ps; write at 0.5 B/ps = 2000 ps; second read queues.
  EXPECT_EQ(out, "3000 4000 4000 ");
}

// Regions, banks and a chiplet mesh, from a config.
std::string run_sram(const std::string& text, std::vector<Request> reqs) {
  return test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    config::Sram c;
    if (!google::protobuf::TextFormat::ParseFromString(text, &c)) return std::string("PARSE");
    std::vector<ConfigIssue> issues;
    Validator v(issues);
    SramParams::validate(c, v);
    if (!issues.empty()) return "INVALID " + issues[0].format();
    config::Config cfg;
    Context ctx(cfg, 1);
    Sram sram("sram", SramParams::from_config(c), ctx);
    Tester t("tester", reqs);
    t.socket.bind(sram.socket);
    sc_core::sc_start();
    return join(t.done_ps);
  });
}

// Two regions of 4 KiB: "near" (4 banks, 256 B interleave, 4 B/ps in all: 1 B/ps per bank,
// latency 1 ns) on the home chiplet, and "far" (one bank, 8 B/ps, latency 1 ns) on chiplet 3
// of a 2-wide mesh: 2 hops of 5 ns each way, its mesh port 0.5 B/ps.
const char* kRegions =
    "capacity_bytes: 8192 "
    "regions { name: 'near' capacity_bytes: 4096 banks: 4 bank_interleave_bytes: 256 "
    "  read_bandwidth_bytes_per_s: 4e12 write_bandwidth_bytes_per_s: 4e12 latency_ps: 1000 } "
    "regions { name: 'far' capacity_bytes: 4096 chiplet: 3 "
    "  read_bandwidth_bytes_per_s: 8e12 write_bandwidth_bytes_per_s: 8e12 latency_ps: 1000 } "
    "mesh { columns: 2 home_chiplet: 0 hop_latency_ps: 5000 link_bytes_per_s: 0.5e12 }";

TEST(Sram, BanksServeTheirInterleavedPartsInParallel) {
  // 1 KiB over four banks: 256 ps; 256 B on one bank: 256 ps; two reads on different banks in
  // parallel; two on the same bank queue.
  EXPECT_EQ(run_sram(kRegions, {{tlm::TLM_READ_COMMAND, 0, 1024, 0, 0}}), "1256 ");
  EXPECT_EQ(run_sram(kRegions, {{tlm::TLM_READ_COMMAND, 0, 256, 0, 0},
                                {tlm::TLM_READ_COMMAND, 256, 256, 0, 0}}),
            "1256 1256 ");
  EXPECT_EQ(run_sram(kRegions, {{tlm::TLM_READ_COMMAND, 0, 256, 0, 0},
                                {tlm::TLM_READ_COMMAND, 1024, 256, 0, 0}}),
            "1256 1512 ");
}

TEST(Sram, RemoteRegionPaysMeshHopsAndItsPort) {
  // 1000 B from "far": hops 2 x 5 ns each way, the bank 125 ps, the mesh port 2000 ps (the
  // bottleneck), latency 1 ns: 2000 + 1000 + 20000.
  EXPECT_EQ(run_sram(kRegions, {{tlm::TLM_READ_COMMAND, 4096, 1000, 0, 0}}), "23000 ");
  // A request over both regions: the near part (1000 B over 4 banks: 250 ps + 1 ns) and the far
  // part (1000 B: 23 ns) in parallel.
  EXPECT_EQ(run_sram(kRegions, {{tlm::TLM_READ_COMMAND, 3096, 2000, 0, 0}}), "23000 ");
}

// The HRM preset (configs/memory/hrm_sram_4x4): one read of all 2 GiB from chiplet 0. The home
// chiplet's four regions stream 128 MiB each at 9.375 TB/s (14.3 us); each remote chiplet's
// 512 MiB crosses its 12 TB/s mesh port (44.7 us), the farthest two hops away: the read ends
// after the port time, the bank latency and 2 x 2 hops of 20 ns.
TEST(Sram, HrmPresetStreamsAtItsMeshPorts) {
  const std::string path = test::preset("memory/hrm_sram_4x4.textproto");
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path << " (TIERSIM_SOURCE_DIR)";
  std::stringstream ss;
  ss << in.rdbuf();
  config::Config cfg;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(ss.str(), &cfg));
  ASSERT_GT(cfg.system().components_size(), 0) << path;
  std::string text;
  google::protobuf::TextFormat::PrintToString(cfg.system().components(0).sram(), &text);
  const std::string out = run_sram(text, {{tlm::TLM_READ_COMMAND, 0, 2147483648ULL, 0, 0}});
  const TimePs port = 4 * transfer_time_ps(128ULL << 20, 12e12);  // four regions queue on it
  EXPECT_EQ(out, std::to_string(port + 5000 + 2 * 2 * 20000) + " ");
}

TEST(Sram, RegionConfigsAreChecked) {
  EXPECT_NE(run_sram("capacity_bytes: 100 regions { name: 'a' capacity_bytes: 64 "
                     "read_bandwidth_bytes_per_s: 1 write_bandwidth_bytes_per_s: 1 latency_ps: 0 }",
                     {})
                .find("must equal the sum of the regions' capacities (64)"),
            std::string::npos);
  EXPECT_NE(run_sram("capacity_bytes: 64 latency_ps: 5 regions { name: 'a' capacity_bytes: 64 "
                     "read_bandwidth_bytes_per_s: 1 write_bandwidth_bytes_per_s: 1 latency_ps: 0 }",
                     {})
                .find("latency_ps: set per region"),
            std::string::npos);
  EXPECT_NE(run_sram("capacity_bytes: 64 regions { name: 'a' capacity_bytes: 64 chiplet: 2 "
                     "read_bandwidth_bytes_per_s: 1 write_bandwidth_bytes_per_s: 1 latency_ps: 0 }",
                     {})
                .find("mesh: regions on other chiplets need a mesh"),
            std::string::npos);
}

}  // namespace
}  // namespace tiersim
