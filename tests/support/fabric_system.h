// A host-side test system for component tests of the fabric and the DMA engine: a DMA engine, a
// fast SRAM as the other end of every transfer, the local DDR5 and CXL expander presets, plus a
// test's links, switches and memories; a driver that calls a test's step from an SC_METHOD in a
// forked child, and helpers to read what the step printed.
#pragma once

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "accelerators/dma_engine.h"
#include "fabric/serial_link.h"
#include "models/config/loader.h"
#include "models/core/context.h"
#include "models/run/simulation.h"
#include "tests/support/fork_sim.h"
#include "tests/support/paths.h"

namespace tiersim {
namespace test {

inline constexpr uint64_t kSram = 0, kLocal = 1ULL << 40, kCxl = 2ULL << 40;

inline std::string file_text(const std::string& rel) {
  std::ifstream in(test::preset(rel));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A link's text with a serial preset from configs/links/.
inline std::string link(const std::string& name, const std::string& from, const std::string& to,
                        const std::string& serial = "") {
  std::string s =
      "links { name: \"" + name + "\" from: \"" + from + "\" to: \"" + to + "\" latency_ps: 0";
  if (!serial.empty()) s += " serial { " + file_text("links/" + serial + ".textproto") + "\n}";
  return s + " }\n";
}

inline std::string sw(const std::string& name) {
  std::string t = file_text("switches/cxl_switch_gen5.textproto");
  const std::string from = "name: \"cxl_switch\"";
  t.replace(t.find(from), from.size(), "name: \"" + name + "\"");
  return t;
}

// The host-side test system: a DMA engine, a fast SRAM as the other end of every transfer,
// the local DDR5 preset and the CXL expander preset, plus `extra` (links, switches, faults).
inline config::Config host_system(const std::string& extra,
                                  const std::vector<std::string>& fragments) {
  config::Config cfg;
  const std::string base =
      "system {\n"
      "  components { name: \"dma\" dma { bandwidth_bytes_per_s: 1e13 setup_latency_ps: 0 } }\n"
      "  components { name: \"dma2\" dma { bandwidth_bytes_per_s: 1e13 setup_latency_ps: 0 } }\n"
      // Idle: binds every memory's socket, whichever links a test uses.
      "  components { name: \"idle\" dma { bandwidth_bytes_per_s: 1e13 setup_latency_ps: 0 } }\n" +
      link("idle_ddr", "idle", "host_ddr") + link("idle_cxl", "idle", "cxl_mem") +
      "  components { name: \"sram\" sram { capacity_bytes: 1073741824 read_bandwidth_bytes_per_s:"
      " 1e14 write_bandwidth_bytes_per_s: 1e14 latency_ps: 0 } }\n" +
      link("dma_sram", "dma", "sram") + link("dma2_sram", "dma2", "sram") +
      "  address_map { name: \"sram\" target: \"sram\" base_bytes: 0 size_bytes: 1073741824 }\n"
      "  address_map { name: \"local\" target: \"host_ddr\" base_bytes: " +
      std::to_string(kLocal) +
      " size_bytes: 68719476736 }\n"
      "  address_map { name: \"cxl\" target: \"cxl_mem\" base_bytes: " +
      std::to_string(kCxl) + " size_bytes: 68719476736 }\n" + extra + "}\n";
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(base, &cfg)) << base;
  for (const auto& f : std::vector<std::string>{"memory/ddr5_4800_8ch.textproto",
                                                "memory/cxl_type3_gen5_x8.textproto"}) {
    config::Config part;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(file_text(f), &part)) << f;
    merge_config(cfg, part);
  }
  for (const auto& text : fragments) {
    config::Config part;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &part)) << text;
    merge_config(cfg, part);
  }
  return cfg;
}

// Calls `step` from an SC_METHOD, first at time 0 and then at the time it returns, until it
// returns LinkModel::kNever (transfers are loosely timed: they reserve from their start times
// and return completion times at once).
class Driver : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Driver);
  Driver(sc_core::sc_module_name name, std::function<TimePs()> step)
      : sc_module(name), step_(std::move(step)) {
    SC_METHOD(run);
  }

 private:
  void run() {
    const TimePs next = step_();
    if (next != LinkModel::kNever) next_trigger(to_sc_time(std::max(next, now_ps()) - now_ps()));
  }
  std::function<TimePs()> step_;
};

// Elaborates `cfg` in a child process and returns what `step` printed; `step` runs as Driver's.
inline std::string simulate_steps(const config::Config& cfg,
                                  std::function<TimePs(Context&, std::ostream&)> step) {
  const std::string out = test::run_forked([&] {
    sc_core::sc_set_time_resolution(1, sc_core::SC_PS);
    Context ctx(cfg, 1);
    auto components = build_system(cfg, ctx);
    for (auto& c : components)
      c->prepare();
    std::ostringstream os;
    Driver d("driver", [&] { return step(ctx, os); });
    sc_core::sc_start();
    return os.str();
  });
  if (out.rfind("EXCEPTION", 0) == 0) ADD_FAILURE() << out;
  return out;
}

// As simulate_steps with one step at time 0.
inline std::string simulate(const config::Config& cfg,
                            std::function<void(Context&, std::ostream&)> body) {
  return simulate_steps(cfg, [&](Context& ctx, std::ostream& os) {
    body(ctx, os);
    return LinkModel::kNever;
  });
}

inline std::map<std::string, double> parse(const std::string& out) {
  std::map<std::string, double> m;
  std::istringstream in(out);
  std::string k;
  double v;
  while (in >> k >> v)
    m[k] = v;
  return m;
}

inline DmaEngine& dma(Context& ctx, const std::string& name = "dma") {
  return *dynamic_cast<DmaEngine*>(ctx.component(name));
}

inline MovementIntent intent(MoveOp op = MoveOp::kDemandFetch) {
  MovementIntent i;
  i.op = op;
  return i;
}

// Idle 64-byte read time from `base` over the system's route.
inline TimePs read64(Context& ctx, uint64_t base) {
  return dma(ctx).transfer(base, kSram, 64, intent(), 0);
}

}  // namespace test
}  // namespace tiersim
