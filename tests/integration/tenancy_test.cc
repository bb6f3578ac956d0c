// Tenants sharing one accelerator (config tenancy) in whole runs: the interleaving of steps derived
// by hand from each tenant's steps alone, shares, priorities and arrivals, per-tenant records and
// results, objects named per tenant, and bad tenancy refused with the field path.
#include <cmath>
#include <fstream>

#include "tests/integration/orchestration_support.h"
#include "tests/support/xorshift.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

std::string decode_1b(uint32_t steps) {
  return test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
         test::preset("models/llama3_2_1b.textproto") + " " +
         test::preset("studies/default.textproto") +
         " --set workload.decode.decode_steps=" + std::to_string(steps) + " --quiet";
}

// A tenancy file: one more tenant running Llama-3.2-1B decode (batch 1, 1024-token context, as
// the primary of decode_1b), `extra` inside its Tenant message, `outer` inside Tenancy.
std::string tenancy_file(const std::string& name, uint32_t steps, const std::string& extra,
                         const std::string& outer = "") {
  static int files = 0;
  const std::string path =
      (fs::temp_directory_path() /
       ("tiersim_tenancy_" + std::to_string(getpid()) + "_" + std::to_string(++files) + ".txt"))
          .string();
  std::ofstream(path) << "tenancy {\n  " << outer << "\n  tenants {\n    name: \"" << name
                      << "\"\n    base: \"" << test::preset("models/llama3_2_1b.textproto")
                      << "\"\n    workload { decode { batch_size: 1 context_tokens: 1024 "
                         "decode_steps: "
                      << steps << " } }\n    " << extra << "\n  }\n}\n";
  return path;
}

// Runs `cmd`, returning the summary and the step records of /tenants/<name>/tokens (or /tokens).
struct TenantRun {
  std::map<std::string, double> s;
  std::map<std::string, std::vector<double>> starts, ends;  // by tenant ("" for /tokens)
};
TenantRun run_with_records(const std::string& cmd, const std::vector<std::string>& tenants) {
  const std::string out =
      (fs::temp_directory_path() / ("tiersim_tenancy_" + std::to_string(getpid()) + ".h5"))
          .string();
  auto r = test::run_cmd(cmd + " --out " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  TenantRun run;
  if (r.code != 0) return run;
  ResultReader h(out);
  for (const auto& item : h.summary())
    run.s[item.name] = item.value;
  auto read = [&](const std::string& path, const std::string& key) {
    const Table t = h.read_table(path);
    for (const auto& c : t.columns) {
      if (c.name == "start_ps") run.starts[key].assign(c.u64.begin(), c.u64.end());
      if (c.name == "end_ps") run.ends[key].assign(c.u64.begin(), c.u64.end());
    }
  };
  read("/tokens", "");
  for (const auto& t : tenants)
    read("/tenants/" + t + "/tokens", t);
  fs::remove(out);
  return run;
}

// `tiersim run` on H100 with the 2 GiB HRM beside HBM and Llama-3.2-1B (the wired-residency
// study's system).
std::string hrm_run() {
  return test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
         test::preset("memory/hrm_sram_4x4.textproto") + " " +
         test::preset("hardware/fragments/h100_with_hrm.textproto") + " " +
         test::preset("models/llama3_2_1b.textproto") + " " +
         test::preset("studies/wired_hrm_llama3_2_1b.textproto");
}

// One Llama-3.2-1B decoder layer's weights (QKV, output, gate/up, down, two norms; BF16):
// 121,643,008 bytes.
constexpr double kLayerBytes =
    2.0 * (2048.0 * 3072 + 2048.0 * 2048 + 2048.0 * 16384 + 8192.0 * 2048 + 2 * 2048);

std::vector<double> durations(const TenantRun& r, const std::string& key) {
  std::vector<double> d;
  for (size_t i = 0; i < r.ends.at(key).size(); ++i)
    d.push_back(r.ends.at(key)[i] - r.starts.at(key)[i]);
  return d;
}

// Two identical tenants of equal priority and share alternate, the primary first: each step of
// one waits for a step of the other, so the primary's k-th time per token (k >= 1) is the other's
// step k-1 plus its own step k, each as long as alone (STREAM_ALL: no state carries between
// steps; the FAST HBM's timing state moves a step by ~10 ns, hence the tolerance). The run ends
// with the primary's last step, before the other's (TENANCY_END_WITH_PRIMARY), or after it
// (TENANCY_END_ALL).
TEST(Tenancy, IdenticalTenantsAlternateAndEachWaitsForTheOther) {
  const uint32_t n = 8;
  const TenantRun alone = run_with_records(decode_1b(n), {});
  const std::string file = tenancy_file("twin", n, "");
  const TenantRun both = run_with_records(decode_1b(n) + " " + file, {"primary", "twin"});
  const TenantRun all = run_with_records(
      decode_1b(n) + " " + file + " --set tenancy.end=TENANCY_END_ALL", {"primary", "twin"});
  ASSERT_FALSE(alone.s.empty() || both.s.empty() || all.s.empty());
  const std::vector<double> t = durations(alone, "");
  ASSERT_EQ(t.size(), n);
  double expected_ms = t[0];
  for (size_t k = 1; k < n; ++k)
    expected_ms += t[k - 1] + t[k];
  expected_ms /= n * 1e9;
  double sum_ps = 0;
  for (double d : t)
    sum_ps += d;
  std::cout << "alone " << alone.s.at("tpot_ms_mean") << " ms, together "
            << both.s.at("tpot_ms_mean") << " ms (by hand " << expected_ms << ")\n";
  EXPECT_NEAR(both.s.at("tpot_ms_mean"), expected_ms, 1e-4 * expected_ms);
  EXPECT_DOUBLE_EQ(both.s.at("tpot_ms_mean"), both.s.at("tenant_primary_tpot_ms_mean"));
  EXPECT_NEAR(both.s.at("tenant_twin_tpot_ms_mean"), 2 * alone.s.at("tpot_ms_mean"),
              1e-4 * alone.s.at("tpot_ms_mean"));
  // The run's steps alternate, the primary first; each tenant's own records chain up.
  ASSERT_EQ(both.ends.at("primary").size(), n);
  ASSERT_EQ(both.ends.at("twin").size(), n - 1);
  for (size_t k = 0; k + 1 < n; ++k) {
    EXPECT_LT(both.ends.at("primary")[k], both.ends.at("twin")[k]);
    EXPECT_EQ(both.starts.at("twin")[k], k == 0 ? 0 : both.ends.at("twin")[k - 1]);
  }
  EXPECT_EQ(both.s.at("decode_steps"), n);
  EXPECT_EQ(both.s.at("tenant_twin_steps"), n - 1);
  EXPECT_EQ(both.s.at("tenant_twin_completed"), 0);
  EXPECT_EQ(both.s.at("tokens_generated_all_tenants"), 2 * n - 1);
  EXPECT_NEAR(both.s.at("sim_time_s"), (2 * sum_ps - t[n - 1]) / 1e12, 1e-4 * sum_ps / 1e12);
  EXPECT_NEAR(both.s.at("tenant_primary_engine_share") + both.s.at("tenant_twin_engine_share"), 1,
              1e-12);
  // Per-token figures of the system count every tenant's tokens: the same bytes per token.
  EXPECT_NEAR(both.s.at("hbm_bytes_per_token"), alone.s.at("hbm_bytes_per_token"),
              1e-3 * alone.s.at("hbm_bytes_per_token"));
  EXPECT_EQ(all.s.at("tenant_twin_steps"), n);
  EXPECT_EQ(all.s.at("tenant_twin_completed"), 1);
  EXPECT_NEAR(all.s.at("sim_time_s"), 2 * sum_ps / 1e12, 1e-4 * sum_ps / 1e12);
  // Deterministic: the same config gives the same summary, item by item.
  const TenantRun again = run_with_records(decode_1b(n) + " " + file, {});
  for (const auto& [k, v] : both.s) {
    if (k != "wall_time_s") {
      EXPECT_EQ(again.s.at(k), v) << k;
    }
  }
  fs::remove(file);
}

// Shares divide the engine's time among tenants of equal priority that always have work: 3:1.
TEST(Tenancy, SharesDivideTheEngineTime) {
  const std::string file = tenancy_file("minor", 64, "share: 1", "primary_share: 3");
  const auto s = summary_of(decode_1b(24) + " " + file);
  ASSERT_FALSE(s.count("exit"));
  // 24 primary steps take three quarters of the engine: the other gets 8 (one step of slack).
  EXPECT_NEAR(s.at("tenant_minor_steps"), 8, 1);
  EXPECT_NEAR(s.at("tenant_primary_engine_share"), 0.75, 0.75 / 24);
  fs::remove(file);
}

// A higher priority goes first at every step boundary while it has work: the other tenant's 4
// steps all run before the primary's first, which waits for them.
TEST(Tenancy, PriorityGoesFirst) {
  const uint32_t n = 6;
  const TenantRun alone = run_with_records(decode_1b(n), {});
  const std::string file = tenancy_file("urgent", 4, "priority: 1");
  const TenantRun r = run_with_records(decode_1b(n) + " " + file, {"primary", "urgent"});
  ASSERT_FALSE(r.s.empty() || alone.s.empty());
  const std::vector<double> t = durations(alone, "");
  EXPECT_EQ(r.s.at("tenant_urgent_completed"), 1);
  EXPECT_EQ(r.starts.at("primary").front(), 0);  // ready at the run's start
  EXPECT_LT(r.ends.at("urgent").back(), r.ends.at("primary").front());
  // Its first step waited for four steps as long as its own first ones.
  const double first = r.ends.at("primary")[0] - r.starts.at("primary")[0];
  EXPECT_NEAR(first, t[0] + t[0] + t[1] + t[2] + t[3], 1e-4 * first);
  fs::remove(file);
}

// A tenant arriving later starts no earlier; until then the primary runs as alone; from then on,
// it starts from the primary's engine time (no credit for its absence: the two alternate).
TEST(Tenancy, ArrivalStartsATenantLater) {
  const uint32_t n = 12;
  const TenantRun alone = run_with_records(decode_1b(n), {});
  ASSERT_FALSE(alone.s.empty());
  const double arrival = alone.ends.at("")[3] + 1;  // just after the primary's 4th step
  const std::string file =
      tenancy_file("late", 64, "arrival_ps: " + std::to_string(uint64_t(arrival)));
  const TenantRun r = run_with_records(decode_1b(n) + " " + file, {"primary", "late"});
  ASSERT_FALSE(r.s.empty());
  for (size_t k = 0; k < 4; ++k)
    EXPECT_EQ(r.ends.at("primary")[k], alone.ends.at("")[k]) << k;
  EXPECT_GE(r.starts.at("late")[0], arrival);
  // After the arrival the steps alternate (within one of each other): no burst of catching up.
  const double late_steps = r.s.at("tenant_late_steps");
  EXPECT_NEAR(late_steps, n - 4, 1.5);
  fs::remove(file);
}

// A serving primary with priority over a batch decode tenant that always has work: the batch runs
// only while the serving scheduler waits for requests, and a request waits for at most the batch
// step under way (no preemption inside a step).
TEST(Tenancy, ServingOverABatchJob) {
  const std::string serving = test::tiersim_binary() + " run " +
                              test::preset("hardware/h100_sxm.textproto") + " " +
                              test::preset("models/llama3_8b.textproto") + " " +
                              test::preset("studies/serving_llama3_8b.textproto") +
                              " --set workload.serving.poisson.requests=12 --quiet";
  const auto alone = summary_of(serving);
  const std::string file =
      tenancy_file("batch", 100000, "", "primary_name: \"serving\" primary_priority: 1");
  std::string err;
  const auto both =
      summary_of(serving + " " + file +
                     " --set 'tenancy.tenants[batch].workload.decode.batch_size=8'"
                     " --set 'tenancy.tenants[batch].workload.decode.context_tokens=512'"
                     " --set 'tenancy.tenants[batch].workload.decode.decode_steps=4000'",
                 &err);
  ASSERT_FALSE(alone.count("exit")) << err;
  ASSERT_FALSE(both.count("exit")) << err;
  const auto batch_alone = summary_of(decode_1b(8) +
                                      " --set workload.decode.batch_size=8"
                                      " --set workload.decode.context_tokens=512");
  const double batch_step_ms = batch_alone.at("tpot_ms_p99");
  std::cout << "serving TTFT p99 " << alone.at("ttft_ms_p99") << " -> " << both.at("ttft_ms_p99")
            << " ms, TPOT " << alone.at("tpot_ms_mean") << " -> " << both.at("tpot_ms_mean")
            << " ms; batch engine share " << both.at("tenant_batch_engine_share") << ", "
            << both.at("tenant_batch_steps") << " steps\n";
  EXPECT_GT(both.at("tenant_batch_steps"), 0);
  EXPECT_EQ(both.at("tenant_serving_completed"), 1);
  EXPECT_EQ(both.at("tenant_batch_completed"), 0);
  // The batch fills the serving tenant's idle time, no more.
  EXPECT_LE(both.at("tenant_serving_engine_share") + both.at("tenant_batch_engine_share"),
            1 + 1e-9);
  // Each of its steps waits for at most one batch step: TPOT grows by less than one batch step.
  EXPECT_LE(both.at("tpot_ms_mean"), alone.at("tpot_ms_mean") + batch_step_ms);
  EXPECT_GE(both.at("tpot_ms_mean"), alone.at("tpot_ms_mean") * 0.99);
  EXPECT_LE(both.at("ttft_ms_p99"), alone.at("ttft_ms_p99") + 2 * batch_step_ms + 1);
  fs::remove(file);
}

// Bad tenancy is refused before the run (exit 2) with the field path, each tenant's workload
// checked as its own config.
TEST(Tenancy, BadTenancyIsRefusedWithTheFieldPath) {
  const std::string file = tenancy_file("other", 4, "");
  const std::string t = " --set 'tenancy.tenants[other].";
  const std::string hrm = " " + test::preset("memory/hrm_sram_4x4.textproto") + " " +
                          test::preset("hardware/fragments/h100_with_hrm.textproto");
  expect_refused(
      [&](const std::string& set, std::string* err) {
        return summary_of(decode_1b(4) + " " + file + set, err);
      },
      {
          {t + "name=primary'", "tenancy.tenants"},
          {t + "name=a_b'", "letters, digits and '-' only"},
          {t + "base=[\"x.textproto\"]'", "tenancy.tenants[other].base: resolved when"},
          {t + "workload.gemm={m:64 k:64 n:64 dtype:BF16}'",
           "tenancy.tenants[other].workload.gemm: not with tenancy"},
          {t + "share=0'", "tenancy.tenants[other].share"},
          {t + "workload.decode.batch_size=0'",
           "tenancy.tenants[other].workload.decode.batch_size"},
          {t + "workload.model.activation_dtype=INT4'",
           "tenancy.tenants[other].workload.model.activation_dtype"},
          {t + "workload.parallelism.tensor_parallel=2'",
           "tenancy.tenants[other].workload.parallelism.tensor_parallel"},
          {t + "workload.parallelism.expert_parallel=8'",
           "tenancy.tenants[other].workload.parallelism.expert_parallel: not with tenancy"},
          {t + "workload.parallelism.pipeline_parallel=2'",
           "tenancy.tenants[other].workload.parallelism.pipeline_parallel: not with tenancy"},
          {t + "workload.parallelism.data_parallel=2'",
           "tenancy.tenants[other].workload.parallelism.data_parallel: not with tenancy"},
          {" --set tenancy.primary_name=a/b", "tenancy.primary_name"},
          {" --set tenancy.primary_share=-1", "tenancy.primary_share"},
          {t + "workload.decode.batch_size=64'" + t + "workload.decode.context_tokens=100000'",
           "every tenant's"},
          {" --set policy.thermal_admission.memory=hbm", "policy.thermal_admission"},
          {" --set policy.placement=ORCHESTRATED --set policy.orchestration.fast_memory=hbm"
           " --set policy.orchestration.resident_fraction=1 --set "
           "policy.orchestration.controller=ON_ACCELERATOR --set "
           "policy.orchestration.notification=DOORBELL --set "
           "policy.orchestration.prefetch_layers=1",
           "policy.orchestration.prefetch_layers"},
      });
  // Tenancy without tenants does nothing: refused.
  std::string err;
  auto r = summary_of(decode_1b(4) + " --set tenancy.primary_priority=2", &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find("tenancy: has no effect without tenants"), std::string::npos) << err;
  // A base file that sets more than a workload, and one that cannot be read.
  const std::string bad_base =
      tenancy_file("other", 4, "base: \"" + test::preset("hardware/h100_sxm.textproto") + "\"");
  r = summary_of(decode_1b(4) + " " + bad_base, &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find("tenancy.tenants[other].base[1]: a tenant's base file may set only"),
            std::string::npos)
      << err;
  const std::string missing = tenancy_file("other", 4, "base: \"no_such_model.textproto\"");
  r = summary_of(decode_1b(4) + " " + missing, &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find("tenancy.tenants[other].base[1]: cannot read"), std::string::npos) << err;
  // A field of the base file is located in it.
  const std::string bad_model =
      (fs::temp_directory_path() / "tiersim_tenancy_bad_model.textproto").string();
  std::ofstream(bad_model) << "workload {\n  model {\n    layers: 0\n  }\n}\n";
  const std::string with_bad = tenancy_file("other", 4, "base: \"" + bad_model + "\"");
  r = summary_of(decode_1b(4) + " " + with_bad, &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find(bad_model + ":3: tenancy.tenants[other].workload.model.layers"),
            std::string::npos)
      << err;
  // Two tenants of one name in one file would merge: refused at the file.
  const std::string dup = (fs::temp_directory_path() / "tiersim_tenancy_dup.textproto").string();
  std::ofstream(dup) << "tenancy {\n  tenants { name: \"x\" }\n  tenants { name: \"x\" }\n}\n";
  r = summary_of(decode_1b(4) + " " + dup, &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find(dup + ":3: tenancy.tenants[x].name: two tenants named"), std::string::npos)
      << err;
  fs::remove(dup);
  // A trace records one workload.
  const auto tr = test::run_cmd(test::tiersim_binary() + " trace " +
                                test::preset("hardware/h100_sxm.textproto") + " " +
                                test::preset("models/llama3_2_1b.textproto") + " " +
                                test::preset("studies/default.textproto") + " " + file + " --out " +
                                (fs::temp_directory_path() / "tiersim_tenancy.trace").string());
  EXPECT_EQ(tr.code, 2);
  EXPECT_NE(tr.err.find("tenancy.tenants: a trace records one workload"), std::string::npos)
      << tr.err;
  for (const auto& f : {file, bad_base, missing, with_bad, bad_model})
    fs::remove(f);
}

// A tenant's objects carry its name: a residency program binds the other tenant's last layer by
// name, and only that tenant's steps read it from the wired memory (one layer per its step).
TEST(Tenancy, ObjectsAreNamedPerTenantAndWiredByName) {
  const std::string file = tenancy_file("other", 4, "");
  const std::string cmd =
      hrm_run() + " " + file +
      " --set workload.decode.decode_steps=4 --set workload.decode.context_tokens=1024 --quiet"
      " --set tenancy.end=TENANCY_END_ALL"
      " --set 'policy.orchestration.wired={memory:\"hrm\" quota_bytes:268435456"
      " program{op:WIRED_BIND step:0 objects:\"other/layer15.*\"}}'";
  const auto s = summary_of(cmd);
  ASSERT_FALSE(s.count("exit"));
  // Llama-3.2-1B's layer: 121,643,008 bytes, read once per step of its tenant (4 steps) over
  // 8 tokens of both tenants (each runs to its end).
  const double layer = kLayerBytes;
  EXPECT_EQ(s.at("tokens_generated_all_tenants"), 8);
  EXPECT_DOUBLE_EQ(s.at("wired_bytes_per_token") * 8, 4 * layer);
  // The primary's own layer 15 is not wired: a program naming it without the prefix would be.
  const auto own =
      summary_of(cmd.substr(0, cmd.find(" --set 'policy")) +
                 " --set 'policy.orchestration.wired={memory:\"hrm\" quota_bytes:268435456"
                 " program{op:WIRED_BIND step:0 objects:\"layer15.*\"}}'");
  ASSERT_FALSE(own.count("exit"));
  EXPECT_DOUBLE_EQ(own.at("wired_bytes_per_token") * 8, 4 * layer);
  EXPECT_GT(own.at("tpot_ms_mean"), 0);
  EXPECT_LT(own.at("tenant_primary_tpot_ms_mean"), s.at("tenant_primary_tpot_ms_mean"));
  fs::remove(file);
}

// Two Llama-3.2-1B decode tenants with the 2 GiB HRM beside HBM (the wired-residency study's
// system); `wired` replaces policy.orchestration.wired. Both run to their end (4 steps each).
std::map<std::string, double> run_hrm(const std::string& file, const std::string& wired,
                                      std::string* err = nullptr) {
  return summary_of(hrm_run() + " " + file +
                        " --set workload.decode.decode_steps=4 --set tenancy.end=TENANCY_END_ALL"
                        " --quiet --set 'policy.orchestration.wired={memory:\"hrm\" " +
                        wired + "}'",
                    err);
}

// Per-tenant quotas split the arbiter: each tenant's choice among its own objects within its
// quota. Every wired object is read whole once per step of its tenant, so the bytes read from
// the wired memory are each tenant's bound bytes times its steps, plus the tied embedding's
// gathered rows when it is bound.
TEST(Tenancy, PerTenantQuotasSplitTheArbiter) {
  const std::string file = tenancy_file("co", 4, "");
  const uint64_t gib = 1ULL << 30;
  const auto shared = run_hrm(file, "quota_bytes:" + std::to_string(gib));
  const auto split = run_hrm(
      file, "quota_bytes:" + std::to_string(gib) +
                " tenant_quotas{tenant:\"primary\" quota_bytes:" + std::to_string(gib * 3 / 4) +
                "} tenant_quotas{tenant:\"co\" quota_bytes:" + std::to_string(gib / 4) + "}");
  const auto only = run_hrm(
      file, "quota_bytes:" + std::to_string(gib) +
                " tenant_quotas{tenant:\"primary\" quota_bytes:" + std::to_string(gib) + "}");
  ASSERT_FALSE(shared.count("exit") || split.count("exit") || only.count("exit"));
  // The same quotas as fractions of the area.
  const auto fractions = run_hrm(file, "quota_bytes:" + std::to_string(gib) +
                                           " tenant_quotas{tenant:\"primary\" quota_fraction:0.75}"
                                           " tenant_quotas{tenant:\"co\" quota_fraction:0.25}");
  ASSERT_FALSE(fractions.count("exit"));
  EXPECT_EQ(fractions.at("wired_bytes_tenant_primary"), split.at("wired_bytes_tenant_primary"));
  EXPECT_EQ(fractions.at("wired_bytes_tenant_co"), split.at("wired_bytes_tenant_co"));
  for (const auto* r : {&split, &only}) {
    const double p = r->at("wired_bytes_tenant_primary"), c = r->at("wired_bytes_tenant_co");
    EXPECT_DOUBLE_EQ(p + c, r->at("wired_bytes"));
    // On top: the tied embedding's row gather (one 4 KiB row per token) when it is bound.
    const double extra = r->at("wired_bytes_per_token") * r->at("tokens_generated_all_tenants") -
                         (p * r->at("tenant_primary_steps") + c * r->at("tenant_co_steps"));
    EXPECT_GE(extra, 0);
    EXPECT_LE(extra, 2 * 4 * 4096.0);
    EXPECT_EQ(std::fmod(extra, 4 * 4096.0), 0);
  }
  EXPECT_LE(split.at("wired_bytes_tenant_primary"), gib * 3 / 4);
  EXPECT_LE(split.at("wired_bytes_tenant_co"), gib / 4);
  EXPECT_GT(split.at("wired_bytes_tenant_co"), 0);
  EXPECT_EQ(only.at("wired_bytes_tenant_co"), 0);
  EXPECT_GT(only.at("wired_bytes_tenant_primary"), gib * 0.9);
  // One quota over both tenants: the same bytes, ranked together. Both tenants' weights score
  // alike (read once per step) and ties go in object order, the primary's first: the other
  // tenant gets only what is left of ties at its own objects' sizes (its 33 norm vectors).
  EXPECT_NEAR(shared.at("wired_bytes"), only.at("wired_bytes"), 0.1 * gib);
  EXPECT_EQ(shared.at("wired_bytes_tenant_co"), 33 * 4096);
  std::cout << "wired GB: shared " << shared.at("wired_bytes") / 1e9 << ", split "
            << split.at("wired_bytes_tenant_primary") / 1e9 << " + "
            << split.at("wired_bytes_tenant_co") / 1e9 << "; primary TPOT shared "
            << shared.at("tpot_ms_mean") << ", split " << split.at("tpot_ms_mean")
            << ", primary only " << only.at("tpot_ms_mean") << " ms\n";
  fs::remove(file);
}

// Random programs over both tenants' last four layers under per-tenant quotas, each directive in
// its tenant's own steps (0 to 3, run-time decisions and copies from step 1; soft pins with
// grace; per-tenant SET_QUOTA): each is refused before the run, naming a directive, or runs with
// every tenant's wired bytes within the largest quota it was given (its part of the area: a
// tenant never takes another's room) and reads from the wired memory at most what the pinned
// layers could serve; the same program runs the same.
TEST(Tenancy, RandomMultiTenantProgramsKeepPerTenantQuotas) {
  const std::string file = tenancy_file("co", 4, "");
  test::XorShift next(0x2545f4914f6cdd1dULL);
  const char* ops[] = {"WIRED_BIND", "WIRED_SOFT_PIN", "WIRED_UNPIN", "WIRED_RELEASE",
                       "WIRED_SET_QUOTA"};
  const char* tenants[] = {"primary", "co"};
  const char* parts[] = {"*", "qkv", "out", "gate_up", "down"};
  const uint64_t quotas[] = {67108864, 134217728, 268435456};
  const uint64_t area = 536870912;  // 512 MiB: the largest two quotas
  int ran = 0, refused = 0;
  for (int trial = 0; trial < 60; ++trial) {
    uint64_t q[2] = {quotas[next(3)], quotas[next(3)]};
    uint64_t largest[2] = {q[0], q[1]};
    std::string program = "quota_bytes:" + std::to_string(area);
    for (int t = 0; t < 2; ++t) {
      program += std::string(" tenant_quotas{tenant:\"") + tenants[t] +
                 "\" quota_bytes:" + std::to_string(q[t]) + "}";
    }
    const uint32_t directives = 1 + next(7);
    for (uint32_t k = 0; k < directives; ++k) {
      const uint32_t pick = next(8);
      const uint32_t op = pick < 3 ? 0 : pick < 5 ? 1 : pick - 3;
      const uint32_t t = next(2);
      program += std::string(" program{op:") + ops[op] + " step:" + std::to_string(next(4)) +
                 " tenant:\"" + tenants[t] + "\"";
      if (op == 4) {
        const uint64_t nq = quotas[next(3)];
        largest[t] = std::max(largest[t], nq);
        program += " quota_bytes:" + std::to_string(nq);
      } else {
        program += std::string(" objects:\"") + (t == 1 ? "co/" : "") + "layer" +
                   std::to_string(12 + next(4)) + "." + parts[next(5)] + "\"";
        if (op == 1) program += " grace_ps:" + std::to_string(uint64_t(next(3)) * 500'000'000);
      }
      program += "}";
    }
    std::string err;
    const auto r = run_hrm(file, program, &err);
    const double code = r.count("exit") ? r.at("exit") : 0;
    ASSERT_TRUE(code == 0 || code == 2) << program << ": " << err;
    if (code == 2) {
      ++refused;
      EXPECT_NE(err.find("policy.orchestration.wired.program["), std::string::npos) << err;
      continue;
    }
    ++ran;
    EXPECT_LE(r.at("wired_program_peak_bytes_tenant_primary"), double(largest[0])) << program;
    EXPECT_LE(r.at("wired_program_peak_bytes_tenant_co"), double(largest[1])) << program;
    EXPECT_LE(r.at("wired_program_peak_bytes"), double(area)) << program;
    EXPECT_LE(r.at("wired_bytes_per_token") * r.at("tokens_generated_all_tenants"),
              2 * 4 * 4 * kLayerBytes)
        << program;
    if (trial % 8 == 0) {
      const auto again = run_hrm(file, program);
      EXPECT_EQ(again.at("tpot_ms_mean"), r.at("tpot_ms_mean")) << program;
      EXPECT_EQ(again.at("wired_bytes_per_token"), r.at("wired_bytes_per_token")) << program;
    }
  }
  std::cout << "random multi-tenant programs: " << ran << " ran, " << refused << " refused\n";
  EXPECT_GT(ran, 5);
  EXPECT_GT(refused, 3);
  fs::remove(file);
}

// Per-tenant quotas are refused where they cannot apply, naming the field.
TEST(Tenancy, BadPerTenantQuotasAreRefused) {
  const std::string file = tenancy_file("co", 4, "");
  const std::string q = "quota_bytes:268435456 ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {q + "tenant_quotas{tenant:\"nobody\" quota_bytes:1}",
       "wired.tenant_quotas[0].tenant: no tenant named \"nobody\""},
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:1} tenant_quotas{tenant:\"co\" quota_bytes:1}",
       "wired.tenant_quotas[1].tenant"},
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:268435456} tenant_quotas{tenant:\"primary\" "
           "quota_bytes:4096}",
       "wired.tenant_quotas: their sum"},
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:4096} program{op:WIRED_SET_QUOTA step:0 "
           "quota_bytes:4096}",
       "wired.program[0].tenant: required"},
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:4096 quota_fraction:0.5}",
       "wired.tenant_quotas[0].quota_bytes: set quota_bytes or quota_fraction"},
      {q + "tenant_quotas{tenant:\"co\"}", "wired.tenant_quotas[0].quota_bytes: set"},
      {q + "tenant_quotas{tenant:\"co\" quota_fraction:1.5}",
       "wired.tenant_quotas[0].quota_fraction: must be in [0, 1]"},
      {q + "program{op:WIRED_SET_QUOTA step:0 quota_bytes:4096 tenant:\"co\"}",
       "wired.program[0].tenant: only with tenant_quotas"},
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:134217728} program{op:WIRED_BIND step:0 "
           "objects:\"co/layer1*\" tenant:\"co\"}",
       "tenant co's quota"},
      // A directive naming another tenant's objects.
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:134217728} program{op:WIRED_BIND step:0 "
           "objects:\"co/layer15.*\"}",
       "names co/layer15.attn_norm, tenant co's, but the directive is tenant primary's"},
      // A step beyond the tenant's own steps.
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:134217728} program{op:WIRED_BIND step:4 "
           "objects:\"co/layer15.*\" tenant:\"co\"}",
       "wired.program[0].step: step 4 is beyond tenant co's 4 steps"},
      {q + "tenant_quotas{tenant:\"co\" quota_bytes:134217728} program{op:WIRED_BIND step:0 "
           "objects:\"layer1.*\"}",
       "tenant primary's quota"},
      // A SET_QUOTA for a tenant not given a quota: it binds nothing.
      {q + "tenant_quotas{tenant:\"primary\" quota_bytes:134217728} program{op:WIRED_SET_QUOTA "
           "step:0 tenant:\"co\" quota_bytes:134217728}",
       "wired.program[0].tenant: \"co\" has no quota in tenant_quotas"},
      // An area beyond the wired memory's room, divided by the arbiter: refused, not cut.
      {"quota_bytes:4294967296 tenant_quotas{tenant:\"primary\" quota_fraction:0.5} "
       "tenant_quotas{tenant:\"co\" quota_fraction:0.5}",
       "wired.quota_bytes: a wired area of 4294967296 bytes divided by tenant_quotas"},
      // A quota raised past what the area can give: each tenant's part is its largest quota.
      {"quota_bytes:201326592 tenant_quotas{tenant:\"primary\" quota_bytes:134217728} "
       "tenant_quotas{tenant:\"co\" quota_bytes:67108864} "
       "program{op:WIRED_SOFT_PIN step:0 objects:\"layer15.*\"} "
       "program{op:WIRED_SET_QUOTA step:2 tenant:\"co\" quota_bytes:134217728} "
       "program{op:WIRED_BIND step:2 objects:\"co/layer15.*\" tenant:\"co\"}",
       "wired.tenant_quotas: the tenants' largest quotas (268435456 bytes with tenant co's)"},
  };
  for (const auto& [wired, field] : cases) {
    std::string err;
    const auto r = run_hrm(file, wired, &err);
    EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2) << wired;
    EXPECT_NE(err.find(field), std::string::npos) << wired << ": " << err;
  }
  std::string err;
  const auto r = summary_of(decode_1b(2) +
                                " --set policy.placement=ORCHESTRATED"
                                " --set 'policy.orchestration={fast_memory:\"hbm\" "
                                "resident_fraction:1 controller:ON_ACCELERATOR "
                                "notification:DOORBELL wired{memory:\"hbm\" "
                                "quota_bytes:4096 tenant_quotas{tenant:\"primary\" "
                                "quota_bytes:4096}}}'",
                            &err);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find("per-tenant quotas need tenants"), std::string::npos) << err;
  fs::remove(file);
}

// A serving Llama-3-8B primary idle between sparse requests (2 per second) and a batch decode
// tenant arriving in one of its idle gaps: the batch fills the gaps from the serving tenant's
// virtual clock, with no burst of back-to-back steps on its return, so each request still waits
// for at most the batch step under way.
TEST(Tenancy, ATenantArrivingInAnIdleGapGetsNoBurst) {
  const std::string serving =
      test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
      test::preset("models/llama3_8b.textproto") + " " +
      test::preset("studies/serving_llama3_8b.textproto") +
      " --set workload.serving.poisson.requests=10 --set workload.serving.poisson.rate_per_s=2"
      " --quiet";
  const auto alone = summary_of(serving);
  const std::string file =
      tenancy_file("batch", 4000, "arrival_ps: 2500000000000", "primary_name: \"serving\"");
  const auto both =
      summary_of(serving + " " + file +
                 " --set 'tenancy.tenants[batch].workload.decode.batch_size=8'"
                 " --set 'tenancy.tenants[batch].workload.decode.context_tokens=512'");
  ASSERT_FALSE(alone.count("exit") || both.count("exit"));
  std::cout << "serving TTFT p99 alone " << alone.at("ttft_ms_p99") << " ms, with the batch "
            << both.at("ttft_ms_p99") << " ms (" << both.at("tenant_batch_steps")
            << " batch steps)\n";
  EXPECT_GT(both.at("tenant_batch_steps"), 100);
  // A Llama-3.2-1B batch-8 step is under 2 ms; a prefill waits for at most one, then shares.
  EXPECT_LT(both.at("ttft_ms_p99"), 2 * alone.at("ttft_ms_p99"));
  fs::remove(file);
}

// A serving tenant's requests arrive from its own arrival: the same requests, later, with the
// same time to first token.
TEST(Tenancy, AServingTenantsRequestsCountFromItsArrival) {
  const std::string srv =
      "tenancy { end: TENANCY_END_ALL tenants { name: \"srv\" base: \"" +
      test::preset("models/llama3_2_1b.textproto") +
      "\" workload { serving { poisson { rate_per_s: 50 requests: 6 } input_tokens { uniform { "
      "min: 128 max: 512 } } output_tokens { lognormal { median: 16 sigma: 0.6 min: 8 max: 32 } } "
      "max_sequences: 16 max_step_tokens: 1024 kv_cache_bytes: 2000000000 kv_block_tokens: 16 "
      "preemption: RECOMPUTE } } } }";
  const std::string file =
      (fs::temp_directory_path() / ("tiersim_tenancy_srv_" + std::to_string(getpid()) + ".txt"))
          .string();
  std::ofstream(file) << srv;
  const auto early = summary_of(decode_1b(4) + " " + file);
  const auto late = summary_of(decode_1b(4) + " " + file +
                               " --set 'tenancy.tenants[srv].arrival_ps=500000000000'");
  ASSERT_FALSE(early.count("exit") || late.count("exit"));
  EXPECT_EQ(late.at("tenant_srv_tokens_generated"), early.at("tenant_srv_tokens_generated"));
  EXPECT_LT(late.at("tenant_srv_ttft_ms_p99"), 2 * early.at("tenant_srv_ttft_ms_p99") + 5);
  EXPECT_GT(late.at("sim_time_s"), 0.5);
  fs::remove(file);
}

// The co-runner thrashes a shared LRU cache that holds the primary alone: Llama-3.2-1B cut to 4
// layers (486 MB of layer weights) for both tenants, a 768 MiB LRU object cache in the HRM. Alone,
// every object read after the first step hits (7 of 8 steps: 0.875); beside the other tenant's
// equal stream (972 MB cycling through 768 MiB) almost nothing does. Wiring the primary's objects
// under its own quota (512 MiB, with a 256 MiB cache for the rest) keeps its reads on chip.
TEST(Tenancy, ACoRunnerEmptiesAnLruCacheThatHoldsThePrimaryAlone) {
  const std::string file = tenancy_file("co", 8, "", "end: TENANCY_END_ALL") +
                           " --set 'tenancy.tenants[co].workload.model.layers=4'";
  const std::string cmd =
      hrm_run() +
      " --set workload.model.layers=4 --set workload.decode.decode_steps=8 --quiet"
      " --set policy.orchestration.fast_memory=hrm --set policy.orchestration.resident_fraction=0"
      " --set policy.orchestration.kv_resident=false";
  const std::string lru =
      " --set policy.orchestration.wired=!clear"
      " --set 'policy.orchestration.object_cache={bytes:805306368}'";
  const auto alone = summary_of(cmd + lru);
  const auto shared = summary_of(cmd + " " + file + lru);
  const auto wired =
      summary_of(cmd + " " + file +
                 " --set 'policy.orchestration.object_cache={bytes:268435456}'"
                 " --set 'policy.orchestration.wired={memory:\"hrm\" quota_bytes:536870912"
                 " tenant_quotas{tenant:\"primary\" quota_fraction:1}}'");
  ASSERT_FALSE(alone.count("exit") || shared.count("exit") || wired.count("exit"));
  std::cout << "LRU hit rate alone " << alone.at("object_cache_hit_rate")
            << ", beside the co-runner " << shared.at("object_cache_hit_rate")
            << "; primary TPOT together: LRU " << shared.at("tpot_ms_mean")
            << " ms, its own wired quota " << wired.at("tpot_ms_mean") << " ms\n";
  EXPECT_DOUBLE_EQ(alone.at("object_cache_hit_rate"), 7.0 / 8);
  EXPECT_LT(shared.at("object_cache_hit_rate"), 0.1);
  // Every one of the primary's weight objects is wired (its 4 layers, 24 objects, and the tied
  // embedding), and read from the HRM once per step.
  EXPECT_EQ(wired.at("wired_bytes_tenant_co"), 0);
  EXPECT_GT(wired.at("wired_bytes_tenant_primary"), 4 * kLayerBytes);
  EXPECT_LT(wired.at("tpot_ms_mean"), shared.at("tpot_ms_mean"));
  fs::remove(file.substr(0, file.find(' ')));
}

// Directives in a tenant's own steps: the other tenant BINDs its layer 15 at its step 0 and
// RELEASEs it at its step 2, so its steps 0 and 1 read that layer (121,643,008 bytes) from the
// wired memory: 2 layers over the run, by hand. Present from the start, its step 0 is model
// load (bound in place, nothing copied); arriving after the primary's second step, its step 0 is
// decided at its arrival and the layer copied in once (it lands long before layer 15 is read,
// last in the step). The primary's steps are untouched.
TEST(Tenancy, DirectivesRunInATenantsOwnStepsFromItsArrival) {
  const std::string file = tenancy_file("co", 4, "");
  const std::string program =
      "quota_bytes:268435456 tenant_quotas{tenant:\"co\" quota_bytes:268435456}"
      " program{op:WIRED_BIND step:0 tenant:\"co\" objects:\"co/layer15.*\"}"
      " program{op:WIRED_RELEASE step:2 tenant:\"co\" objects:\"co/layer15.*\"}";
  const double layer = kLayerBytes;
  const auto at_start = run_hrm(file, program);
  const auto alone = run_hrm(file, "quota_bytes:0");
  ASSERT_FALSE(at_start.count("exit") || alone.count("exit"));
  const double tokens = at_start.at("tokens_generated_all_tenants");
  EXPECT_EQ(tokens, 8);
  EXPECT_DOUBLE_EQ(at_start.at("wired_bytes_per_token") * tokens, 2 * layer);
  EXPECT_EQ(at_start.at("wired_program_bind_bytes_per_token"), 0);
  EXPECT_EQ(at_start.at("decisions_residency_program_bind"), 0);     // model load
  EXPECT_EQ(at_start.at("decisions_residency_program_release"), 6);  // its step 2
  EXPECT_EQ(at_start.at("wired_program_peak_bytes_tenant_co"), layer);
  // Arriving after the primary's second step (the primary's steps take about 1.7 ms each).
  const std::string late_file = tenancy_file("co", 4, "arrival_ps: 3500000000");
  const auto late = run_hrm(late_file, program);
  ASSERT_FALSE(late.count("exit"));
  EXPECT_DOUBLE_EQ(late.at("wired_bytes_per_token") * tokens, 2 * layer);
  EXPECT_DOUBLE_EQ(late.at("wired_program_bind_bytes_per_token") * tokens, layer);
  EXPECT_DOUBLE_EQ(late.at("dma_promote_bytes_per_token") * tokens, layer);
  EXPECT_EQ(late.at("decisions_residency_program_bind"), 6);
  EXPECT_EQ(late.at("decisions_residency_program_release"), 6);
  // The primary reads everything from HBM as with nothing wired.
  EXPECT_NEAR(late.at("tenant_primary_engine_ms_per_step"),
              alone.at("tenant_primary_engine_ms_per_step"), 1e-5);  // HBM timing state: ns
  fs::remove(file);
  fs::remove(late_file);
}

}  // namespace
}  // namespace tiersim
