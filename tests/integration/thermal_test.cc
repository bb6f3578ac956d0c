// The HBM thermal model in whole runs (the binary as users run it): off by default, every
// thermal field moves the result, a hot stack refreshes faster and throttles at both levels,
// bad values exit 2 naming the field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

using Summary = std::map<std::string, double>;

const std::string kHbm = " --set system.components[hbm].hbm.thermal.";

std::string h100(bool thermal, const std::string& cooling = "cold_plate") {
  std::string s = test::preset("hardware/h100_sxm.textproto") + " ";
  if (thermal) {
    s += test::preset("hardware/fragments/h100_hbm_thermal_" + cooling + ".textproto") + " ";
  }
  return s + test::preset("models/llama3_8b.textproto") + " " +
         test::preset("studies/default.textproto");
}

// Runs `tiersim run ARGS` and returns the summary plus a few stats' last samples (empty on
// failure).
Summary run_args(const std::string& args) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_thermal_" + std::to_string(getpid()) + ".h5"))
          .string();
  auto r = test::run_cmd(test::tiersim_binary() + " run " + args + " --quiet --out " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  Summary s;
  if (r.code != 0) return s;
  ResultReader h(out);
  for (const auto& item : h.summary())
    s[item.name] = item.value;
  for (const char* stat :
       {"refresh_multiplier", "stack_temperature_c", "refreshes", "bytes_read"}) {
    const std::string path = std::string("/stats/hbm/") + stat;
    if (!h.exists(path)) continue;
    const std::vector<double> v = h.read_doubles(path);
    // The last sample's values (one per stack, or one): the series' last `width` values.
    const size_t width =
        std::string(stat) == "refreshes" || std::string(stat) == "bytes_read" ? 1 : 5;
    for (size_t i = 0; i < width && i < v.size(); ++i)
      s[std::string(stat) + "_" + std::to_string(i)] = v[v.size() - width + i];
  }
  fs::remove(out);
  return s;
}

// A decode run of `steps` steps.
Summary run(const std::string& files, const std::string& sets, int steps = 2) {
  return run_args(files + " --set workload.decode.decode_steps=" + std::to_string(steps) + sets);
}

double at(const Summary& m, const std::string& k) {
  return m.count(k) ? m.at(k) : NAN;
}

TEST(Thermal, OffByDefault) {
  const Summary s = run(h100(false), "");
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s.count("hbm_max_temperature_c"), 0u);
  // With the model, a cold plate keeps a decoding H100's stacks well below 85 C: refresh x1,
  // no throttling, the same decode time as without it.
  const Summary t = run(h100(true), "");
  ASSERT_FALSE(t.empty());
  EXPECT_GT(at(t, "hbm_max_temperature_c"), 50);
  EXPECT_LT(at(t, "hbm_max_temperature_c"), 85);
  EXPECT_EQ(at(t, "hbm_throttle_events"), 0);
  EXPECT_EQ(at(t, "sim_time_s"), at(s, "sim_time_s"));
  EXPECT_NEAR(at(t, "energy_j_static_dram_refresh"), at(s, "energy_j_static_dram_refresh"), 1e-12);
}

TEST(Thermal, EveryFieldChangesTheResult) {
  const std::string files = h100(true);
  const Summary base = run(files, "");
  ASSERT_FALSE(base.empty());
  auto differs = [&](const Summary& m) {
    for (const char* k : {"hbm_max_temperature_c", "hbm_end_temperature_c", "hbm_throttled_s",
                          "hbm_telemetry_error_max_c", "sim_time_s"}) {
      if (at(m, k) != at(base, k)) return true;
    }
    return false;
  };
  const std::vector<std::string> sets = {
      "cooling=AIR",
      "coolant_c=30",
      "sink_k_per_w=0.03",
      "sink_j_per_k=100",
      "dram_layers=12",
      "layer_j_per_k=0.05",
      "layer_k_per_w=0.2",
      "base_die_j_per_k=0.1",
      "top_k_per_w=0.5",
      "interposer_k_per_w=2",
      "accelerator_j_per_k=0.2",
      "accelerator_k_per_w=0.05",
      "accelerator_power_w=300",
      "base_die_power_fraction=0.6",
      "initial_stack_power_w=5",
      "step_ps=50000000",
      "telemetry_period_ps=1000000000",
      "telemetry_delay_ps=20000000000",  // 20 ms: no reading visible within the run
      "throttle_above_c=50" + kHbm + "throttle_release_c=45",
  };
  for (const auto& set : sets) {
    const Summary m = run(files, kHbm + set);
    ASSERT_FALSE(m.empty()) << set;
    EXPECT_TRUE(differs(m)) << set;
  }
  // Throttle fraction and release: a stack that starts hot (40 W of initial power) and cools
  // under decode; the limit sits between its start and end temperatures.
  const std::string hot = kHbm + "initial_stack_power_w=40";
  const Summary free_run = run(files, hot);
  ASSERT_FALSE(free_run.empty());
  const double start = at(free_run, "hbm_max_temperature_c");
  const double end = at(free_run, "hbm_end_temperature_c");
  ASSERT_GT(start - end, 1.0);
  const std::string limit = kHbm + "throttle_above_c=" + std::to_string(start - 0.2);
  const Summary held =
      run(files, hot + limit + kHbm + "throttle_release_c=" + std::to_string(end - 5));
  const Summary released =
      run(files, hot + limit + kHbm + "throttle_release_c=" + std::to_string(start - 0.5));
  ASSERT_FALSE(held.empty());
  ASSERT_FALSE(released.empty());
  EXPECT_EQ(at(held, "hbm_throttle_events"), 5);  // every stack from the start
  EXPECT_NEAR(at(held, "hbm_throttled_s"), 5 * at(held, "sim_time_s"), 1e-12);
  EXPECT_LT(at(released, "hbm_throttled_s"), at(held, "hbm_throttled_s"));
  EXPECT_GT(at(held, "sim_time_s"), at(free_run, "sim_time_s"));  // throttled decode is slower
  const Summary harder =
      run(files, hot + limit + kHbm + "throttle_release_c=" + std::to_string(end - 5) + kHbm +
                     "throttle_bandwidth_fraction=0.5");
  EXPECT_GT(at(harder, "sim_time_s"), at(held, "sim_time_s"));
}

TEST(Thermal, HotStackRefreshesFasterAndThrottles) {
  // Air cooling with a 55 C inlet: the stacks start above 95 C (x4 refresh), throttle, and
  // spend the run throttled; refresh energy follows the multiplier.
  const Summary hot = run(h100(true, "air"), kHbm + "coolant_c=55", 4);
  ASSERT_FALSE(hot.empty());
  EXPECT_GT(at(hot, "hbm_max_temperature_c"), 95);
  EXPECT_EQ(at(hot, "refresh_multiplier_0"), 4);
  EXPECT_GE(at(hot, "hbm_throttle_events"), 5);
  EXPECT_GT(at(hot, "hbm_throttled_s"), 0);
  const Summary cool = run(h100(true), "", 4);
  ASSERT_FALSE(cool.empty());
  EXPECT_EQ(at(cool, "refresh_multiplier_0"), 1);
  // Refresh x4 for the whole run: 4 x the x1 figure per second.
  EXPECT_NEAR(at(hot, "energy_j_static_dram_refresh") / at(hot, "sim_time_s"),
              4 * at(cool, "energy_j_static_dram_refresh") / at(cool, "sim_time_s"), 1e-9);
  EXPECT_GT(at(hot, "sim_time_s"), at(cool, "sim_time_s") * 1.3);
}

TEST(Thermal, DetailedLevelRefreshesByTemperature) {
  // The command-level stacks refresh x4 when hot: REF commands over the same simulated time
  // (the run stops at 100 us, the stacks never idle; each controller may postpone up to 8
  // refreshes while requests wait, which a run of a few refresh intervals would count).
  const std::string files = h100(true) + " " + test::preset("memory/hbm3_5234_h100.textproto");
  const std::string common =
      " --set run.fidelity=DETAILED --set run.max_sim_time_ps=100000000" + kHbm + "step_ps=5000000";
  const Summary cool = run(files, common, 1);
  const Summary hot = run(files, common + kHbm + "coolant_c=75", 1);
  ASSERT_FALSE(cool.empty());
  ASSERT_FALSE(hot.empty());
  EXPECT_EQ(at(cool, "refresh_multiplier_0"), 1);
  EXPECT_EQ(at(hot, "refresh_multiplier_0"), 4);
  const double ratio = at(hot, "refreshes_0") / at(cool, "refreshes_0");
  EXPECT_GT(ratio, 3.0) << at(hot, "refreshes_0") << " vs " << at(cool, "refreshes_0");
  EXPECT_LT(ratio, 5.0);
  // The hot stacks throttle to 0.75 of their peak issue rate (several accesses per device cycle:
  // an HBM3 stack takes 16 at peak): in the same time they read about 0.75 of what they read
  // unthrottled at the same refresh rate, not a fraction of it.
  auto capped = [&](const std::string& fraction) {
    return run(files,
               common + kHbm + "coolant_c=75" + kHbm + "throttle_bandwidth_fraction=" + fraction,
               1);
  };
  const Summary full = capped("1");
  ASSERT_FALSE(full.empty());
  const double read = at(hot, "bytes_read_0") / at(full, "bytes_read_0");
  std::printf("[ measured ] throttled / unthrottled bytes read in 100 us: %.4f\n", read);
  EXPECT_GT(read, 0.7);
  EXPECT_LT(read, 0.9);
  // At a 0.1 cap the stacks still move a tenth of their peak while throttled (the first 5 us
  // step runs unthrottled): the front end's rotation over the stacks loses them no slots.
  const Summary tenth = capped("0.1");
  ASSERT_FALSE(tenth.empty());
  const double read_tenth = at(tenth, "bytes_read_0") / at(full, "bytes_read_0");
  std::printf("[ measured ] at a 0.1 cap: %.4f\n", read_tenth);
  EXPECT_GT(read_tenth, 0.15);
  EXPECT_LT(read_tenth, 0.4);
}

TEST(Thermal, BadValuesExitTwoNamingTheField) {
  for (const auto& [set, field] : std::vector<std::pair<std::string, std::string>>{
           {"sink_k_per_w=-1", "thermal.sink_k_per_w"},
           {"dram_layers=0", "thermal.dram_layers"},
           {"step_ps=5", "thermal.step_ps"},
           {"telemetry_period_ps=150000000", "thermal.telemetry_period_ps"},
           {"throttle_release_c=96", "thermal.throttle_release_c"},
           {"base_die_power_fraction=2", "thermal.base_die_power_fraction"},
       }) {
    auto r = test::run_cmd(test::tiersim_binary() + " run " + h100(true) + kHbm + set +
                           " --quiet --out /dev/null");
    EXPECT_EQ(r.code, 2) << set;
    EXPECT_NE(r.err.find("system.components[hbm].hbm." + field), std::string::npos)
        << set << ": " << r.err;
  }
}

// Thermal-safe admission in a whole serving run: a hot stack (air at a 54 C inlet) under
// 20 requests/s. Without control every stack throttles; a predictive controller on the
// accelerator reading an on-package sensor (1 ms, 10 us late) idles the scheduler ahead of the
// limit instead: no throttling, the stacks stay below 95 C, and the arrival-bound throughput is
// unchanged within 1%.
std::string serving_hot() {
  return test::preset("hardware/h100_sxm.textproto") + " " +
         test::preset("hardware/fragments/h100_hbm_thermal_air.textproto") + " " +
         test::preset("models/llama3_8b.textproto") + " " +
         test::preset("studies/serving_llama3_8b.textproto") + kHbm + "coolant_c=54" + kHbm +
         "initial_stack_power_w=14" + kHbm + "telemetry_period_ps=1000000000" + kHbm +
         "telemetry_delay_ps=10000000" +
         " --set workload.serving.poisson.rate_per_s=20 --set workload.serving.poisson.requests=30";
}

Summary run_serving(const std::string& files, const std::string& sets) {
  return run_args(files + sets);
}

TEST(ThermalAdmission, BackpressureKeepsAHotStackBelowItsThrottle) {
  const Summary naive = run_serving(serving_hot(), "");
  const Summary gated =
      run_serving(serving_hot(),
                  " --set 'policy.thermal_admission={memory:\"hbm\" mode:THERMAL_PREDICTIVE "
                  "controller:ON_ACCELERATOR drain_above_c:93 cool_above_c:93.5 recover_below_c:92 "
                  "backpressure_only:true cool_idle_fraction:0.15 cool_min_ps:10000000000 "
                  "recover_min_ps:10000000000 horizon_ps:20000000000}'");
  ASSERT_FALSE(naive.empty());
  ASSERT_FALSE(gated.empty());
  EXPECT_GE(at(naive, "hbm_throttle_events"), 5);
  EXPECT_GT(at(naive, "hbm_throttled_s"), 5);
  EXPECT_EQ(naive.count("thermal_admission_cool_s"), 0u);  // no gate, no keys
  EXPECT_EQ(at(gated, "hbm_throttle_events"), 0);
  EXPECT_LT(at(gated, "hbm_max_temperature_c"), 95);
  EXPECT_GT(at(gated, "thermal_admission_cool_s"), 1);
  EXPECT_GT(at(gated, "admission_held_s"), 0.1);
  EXPECT_EQ(at(gated, "admission_deferred_steps"), 0);  // backpressure only
  EXPECT_NEAR(at(gated, "output_tokens_per_s") / at(naive, "output_tokens_per_s"), 1.0, 0.01);
  // The states' times add up to the run.
  double states = 0;
  for (const char* st : {"normal", "drain", "cool", "recover"})
    states += at(gated, std::string("thermal_admission_") + st + "_s");
  EXPECT_NEAR(states, at(gated, "sim_time_s"), 1e-6);
}

TEST(ThermalAdmission, TraceOfAGatedServingRun) {
  // The trace recorder forwards the controller's gate to the serving workload (it once did not:
  // exit 1).
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_gate_trace_" + std::to_string(getpid()) + ".trace"))
          .string();
  auto r = test::run_cmd(test::tiersim_binary() + " trace " + serving_hot() +
                         " --set workload.serving.poisson.requests=3"
                         " --set 'policy.thermal_admission={memory:\"hbm\"}' --quiet --out " +
                         out);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out));
  fs::remove(out);
}

TEST(ThermalAdmission, BadSettingsExitTwoNamingTheField) {
  const std::string serving = serving_hot();
  const std::string decode = h100(true);
  for (const auto& [files, set, field] : std::vector<std::array<std::string, 3>>{
           {decode, "{memory:\"hbm\"}", "policy.thermal_admission"},
           {serving, "{memory:\"sram\"}", "policy.thermal_admission.memory"},
           {serving, "{memory:\"nope\"}", "policy.thermal_admission.memory"},
           {serving, "{memory:\"hbm\" recover_below_c:86}",
            "policy.thermal_admission.recover_below_c"},
           {serving, "{memory:\"hbm\" cool_above_c:80}", "policy.thermal_admission.cool_above_c"},
           {serving, "{memory:\"hbm\" min_sequences:0}", "policy.thermal_admission.min_sequences"},
           {serving, "{memory:\"hbm\" cool_idle_fraction:0.99}",
            "policy.thermal_admission.cool_idle_fraction"},
           {serving, "{memory:\"hbm\" horizon_ps:1000}", "policy.thermal_admission.horizon_ps"},
           {serving, "{memory:\"hbm\" min_sequences:65}", "policy.thermal_admission.min_sequences"},
           {serving, "{memory:\"hbm\" decision_latency_ps:100000000000000}",
            "policy.thermal_admission.decision_latency_ps"},
       }) {
    auto r = test::run_cmd(test::tiersim_binary() + " run " + files +
                           " --set 'policy.thermal_admission=" + set + "' --quiet --out /dev/null");
    EXPECT_EQ(r.code, 2) << set;
    EXPECT_NE(r.err.find(field), std::string::npos) << set << ": " << r.err;
  }
}

}  // namespace
}  // namespace tiersim
