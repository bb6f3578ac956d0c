#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "models/config/loader.h"
#include "tests/support/paths.h"

namespace tiersim {
namespace {

using google::protobuf::util::MessageDifferencer;
namespace fs = std::filesystem;

std::vector<std::string> base_files() {
  return {test::preset("hardware/h100_sxm.textproto"), test::preset("models/llama3_8b.textproto"),
          test::preset("studies/default.textproto")};
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto p = fs::temp_directory_path() /
                 ("tiersim_cfg_" + std::to_string(getpid()) + "_" + name + ".textproto");
  std::ofstream(p) << text;
  return p.string();
}

// Every issue of a ConfigError thrown by `f`, formatted, one per line.
template <typename F>
std::string all_issues(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// The first issue of a ConfigError thrown by `f`, formatted.
template <typename F>
std::string first_issue(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.issues().at(0).format();
  }
  return "(no error)";
}

TEST(ConfigParse, UnknownFieldNamesFileLinePathAndSuggestion) {
  const std::string text =
      "system {\n"
      "  components {\n"
      "    name: \"hbm\"\n"
      "    hbm { stack_cont: 5 }\n"
      "  }\n"
      "}\n";
  EXPECT_EQ(first_issue([&] { parse_config_text(text, "f.textproto", nullptr); }),
            "f.textproto:4: system.components[hbm].hbm.stack_cont: unknown field \"stack_cont\" in "
            "HbmFast (did you mean \"stack_count\"?)");
}

TEST(ConfigParse, BadEnumPointsAtTheField) {
  const std::string text =
      "run {\n"
      "  seed: 1\n"
      "  fidelity: FASTER\n"
      "  op_records: OP_RECORDS_ALL\n"
      "}\n";
  EXPECT_EQ(first_issue([&] { parse_config_text(text, "r.textproto", nullptr); }),
            "r.textproto:3: run.fidelity: unknown enum value \"FASTER\"; expected one of FAST, "
            "DETAILED");
}

TEST(ConfigParse, SyntaxErrorHasLine) {
  const std::string msg =
      first_issue([&] { parse_config_text("run {\n  seed: 1\n", "s.textproto", nullptr); });
  EXPECT_EQ(msg.rfind("s.textproto:", 0), 0u) << msg;
}

TEST(ConfigParse, LocationsOfEveryField) {
  LocationMap loc;
  parse_config_text(
      "system {\n  components {\n    name: \"a\"\n    sram { latency_ps: 3 }\n  }\n}\n", "x", &loc);
  EXPECT_EQ(loc.at("system.components[a].sram.latency_ps").line, 4);
  EXPECT_EQ(loc.at("system.components[a].name").line, 3);
  EXPECT_EQ(loc.at("system").line, 1);
}

TEST(ConfigMerge, ScalarsIncludingZeroOverride) {
  config::Config a = parse_config_text("run { seed: 5 max_sim_time_ps: 100 }", "a", nullptr);
  config::Config b = parse_config_text("run { seed: 0 }", "b", nullptr);
  merge_config(a, b);
  EXPECT_EQ(a.run().seed(), 0u);
  EXPECT_TRUE(a.run().has_seed());
  EXPECT_EQ(a.run().max_sim_time_ps(), 100u);
}

TEST(ConfigMerge, NamedElementsMergeByNameOthersReplace) {
  config::Config a = parse_config_text(
      "system { components { name: \"h\" hbm { stack_count: 5 latency_ps: 1 } }"
      "         components { name: \"s\" sram { latency_ps: 2 } }"
      "         components { name: \"c\" compute { peak { dtype: BF16 flops_per_s: 1 } "
      "peak { dtype: FP8 flops_per_s: 2 } } } }",
      "a", nullptr);
  config::Config b = parse_config_text(
      "system { components { name: \"h\" hbm { stack_count: 6 } }"
      "         components { name: \"new\" sram { latency_ps: 9 } }"
      "         components { name: \"c\" compute { peak { dtype: FP32 flops_per_s: 3 } } } }",
      "b", nullptr);
  merge_config(a, b);
  const auto& comps = a.system().components();
  ASSERT_EQ(comps.size(), 4);
  EXPECT_EQ(comps[0].hbm().stack_count(), 6u);
  EXPECT_EQ(comps[0].hbm().latency_ps(), 1u);  // kept from the earlier file
  EXPECT_EQ(comps[1].name(), "s");
  EXPECT_EQ(comps[2].name(), "c");
  ASSERT_EQ(comps[2].compute().peak_size(), 1);  // unnamed list replaced
  EXPECT_EQ(comps[2].compute().peak(0).dtype(), config::FP32);
  EXPECT_EQ(comps[3].name(), "new");
}

TEST(ConfigMerge, OneofSwitchesKind) {
  config::Config a = parse_config_text(
      "system { components { name: \"m\" hbm { stack_count: 5 } } }", "a", nullptr);
  config::Config b = parse_config_text(
      "system { components { name: \"m\" sram { latency_ps: 1 } } }", "b", nullptr);
  merge_config(a, b);
  EXPECT_FALSE(a.system().components(0).has_hbm());
  EXPECT_TRUE(a.system().components(0).has_sram());
}

TEST(ConfigOverride, ScalarsEnumsListsMessagesByNameAndIndex) {
  LoadedConfig l = load_config(base_files(), {});
  config::Config& c = l.config;
  apply_override(c, "workload.decode.batch_size=8", 1, &l.locations);
  apply_override(c, "system.components[hbm].hbm.efficiency_fraction=0.5", 2, &l.locations);
  apply_override(c, "system.components[3].compute.tile_bytes=4e6", 3, &l.locations);
  apply_override(c, "run.fidelity=FAST", 4, &l.locations);
  apply_override(c, "system.components[compute].compute.peak[0]={dtype: FP8 flops_per_s: 7}", 5,
                 &l.locations);
  apply_override(c, "workload.model.name=\"my model\"", 6, &l.locations);
  apply_override(c, "run={seed: 99}", 7, &l.locations);
  EXPECT_EQ(c.workload().decode().batch_size(), 8u);
  EXPECT_DOUBLE_EQ(c.system().components(0).hbm().efficiency_fraction(), 0.5);
  EXPECT_EQ(c.system().components(3).compute().tile_bytes(), 4000000u);
  EXPECT_EQ(c.system().components(3).compute().peak(0).dtype(), config::FP8);
  EXPECT_EQ(c.workload().model().name(), "my model");
  EXPECT_EQ(c.run().seed(), 99u);
  EXPECT_EQ(c.run().stats_interval_ps(), 1000000000u);  // message values merge
  EXPECT_EQ(l.locate("system.components[hbm].hbm.efficiency_fraction").file, "--set");
  EXPECT_EQ(l.locate("system.components[hbm].hbm.efficiency_fraction").line, 2);
  EXPECT_EQ(l.locate("run.seed").line, 7);
  // !clear removes a field or a whole section.
  apply_override(c, "run.stats_interval_ps=!clear", 8, &l.locations);
  EXPECT_FALSE(c.run().has_stats_interval_ps());
  apply_override(c, "workload.decode=!clear", 9, &l.locations);
  EXPECT_FALSE(c.workload().has_decode());
}

TEST(ConfigOverride, BadPathsAndValuesAreLocatedAtTheArgument) {
  config::Config c = load_config(base_files(), {}).config;
  auto err = [&](const std::string& a) {
    return first_issue([&] { apply_override(c, a, 3, nullptr); });
  };
  EXPECT_EQ(err("workload.decod.batch_size=1"),
            "--set[3]: workload.decod: unknown field \"decod\" in Workload (did you mean "
            "\"decode\"?)");
  EXPECT_EQ(err("system.components[nope].hbm.stack_count=1"),
            "--set[3]: system.components[nope]: no element named \"nope\" (have: hbm, sram, dma, "
            "compute)");
  EXPECT_EQ(err("system.components[9].name=x"),
            "--set[3]: system.components[9]: index out of range (components has 4 elements)");
  EXPECT_EQ(err("workload.decode.batch_size=-1"),
            "--set[3]: workload.decode.batch_size: expected a non-negative integer, got \"-1\"");
  EXPECT_EQ(err("workload.decode.batch_size=5000000000"),
            "--set[3]: workload.decode.batch_size: value 5000000000 is out of range for uint32");
  EXPECT_EQ(err("run.fidelity=SLOW"),
            "--set[3]: run.fidelity: unknown enum value \"SLOW\"; expected one of FAST, DETAILED");
  EXPECT_EQ(err("run.seed"), "--set[3]: run.seed: expected field.path=value");
  EXPECT_EQ(err("workload.decode="),
            "--set[3]: workload.decode: empty value: give fields to merge ({...}), or !clear to "
            "remove the section");
  EXPECT_EQ(err("run.seed.x=1"), "--set[3]: run.seed: \"seed\" has no fields");
}

TEST(ConfigLoad, PresetsResolveAndResolvedTextRoundTrips) {
  LoadedConfig l = load_config(base_files(), {"workload.decode.decode_steps=3"});
  EXPECT_EQ(l.config.workload().decode().decode_steps(), 3u);
  config::Config again = parse_config_text(l.resolved_text(), "resolved", nullptr);
  EXPECT_TRUE(MessageDifferencer::Equals(again, l.config));
  EXPECT_EQ(l.locate("system.components[hbm].hbm.latency_ps").file, base_files()[0]);
}

TEST(ConfigValidate, SemanticErrorsAreLocatedInTheFileThatSetThem) {
  const std::string bad = write_temp("bad", "workload { decode { batch_size: 0 } }\n");
  auto files = base_files();
  files.push_back(bad);
  EXPECT_EQ(first_issue([&] { load_config(files, {}); }),
            bad + ":1: workload.decode.batch_size: must be > 0 (got 0)");
  fs::remove(bad);
}

TEST(ConfigValidate, DanglingReferencesOverlapsAndCapacity) {
  auto f = base_files();
  EXPECT_THAT(
      all_issues([&] { load_config(f, {"system.links[dma_hbm].to=ghost"}); }),
      testing::HasSubstr("--set[1]: system.links[dma_hbm].to: no component named \"ghost\""));
  EXPECT_EQ(first_issue([&] { load_config(f, {"system.address_map[sram].base_bytes=4096"}); }),
            "--set[1]: system.address_map[sram].base_bytes: overlaps address range \"hbm\"");
  EXPECT_EQ(first_issue([&] { load_config(f, {"system.components[compute].compute.sram=dma"}); }),
            "--set[1]: system.components[compute].compute.sram: \"dma\" is a dma, expected a sram");
  const std::string msg = first_issue([&] { load_config(f, {"workload.decode.batch_size=4096"}); });
  EXPECT_NE(msg.find("workload: needs"), std::string::npos) << msg;
  // The device was set nowhere: the issue is located at the hbm component in the hardware file.
  EXPECT_EQ(first_issue([&] { load_config(f, {"run.fidelity=DETAILED"}); }),
            f[0] +
                ":9: system.components[hbm].hbm.device: detailed fidelity needs the "
                "command-level device; merge a preset from configs/memory/");
  EXPECT_EQ(first_issue([&] { load_config(f, {"system.components[sram].fidelity=DETAILED"}); }),
            "--set[1]: system.components[sram].fidelity: \"sram\" has no detailed level (only "
            "FAST)");
}

// The kernel models' inputs: a GEMM dtype the device has no peak for, an INT4 GEMM, a negative
// KV conversion cost.
TEST(ConfigValidate, GemmDtypeAndKernelCosts) {
  auto f = base_files();
  EXPECT_EQ(first_issue([&] { load_config(f, {"workload.model.gemm_dtype=INT4"}); }),
            "--set[1]: workload.model.gemm_dtype: INT4 GEMMs are not supported (INT4 weights "
            "compute in a wider dtype)");
  f[0] = test::preset("hardware/a100_80gb.textproto");
  EXPECT_THAT(all_issues([&] { load_config(f, {"workload.model.gemm_dtype=FP8"}); }),
              testing::HasSubstr("no peak FLOP/s for the workload's gemm dtype FP8"));
  EXPECT_EQ(first_issue([&] { load_config(f, {"software.kv_dequant_flops_per_element=-1"}); }),
            "--set[1]: software.kv_dequant_flops_per_element: must lie in [0, 1e6]");
  // FP8 GEMMs over BF16 weights (the default model's) would re-quantise every weight per step.
  f[0] = test::preset("hardware/h100_sxm.textproto");
  EXPECT_THAT(all_issues([&] { load_config(f, {"workload.model.gemm_dtype=FP8"}); }),
              testing::HasSubstr("workload.model.gemm_dtype: FP8 GEMMs over BF16 weights"));
  // So would FP8 activations without a gemm_dtype: the GEMMs would compute in FP8.
  EXPECT_THAT(all_issues([&] { load_config(f, {"workload.model.activation_dtype=FP8"}); }),
              testing::HasSubstr("workload.model.activation_dtype: FP8 activations make the "
                                 "GEMMs compute in FP8 over BF16 weights"));
  // Async host scheduling cannot run ahead of a speculative step's verification.
  f[0] = test::preset("hardware/h100_sxm.textproto");
  EXPECT_THAT(
      all_issues([&] {
        load_config(f, {"software.overlap_host_step=true",
                        "workload.decode.speculative={draft_tokens: 4 acceptance_rate: 0.7 "
                        "draft {}}"});
      }),
      testing::HasSubstr("software.overlap_host_step: cannot overlap the host's step work with "
                         "speculative decoding"));
  // A speculative draft's dtypes need a peak too.
  f[0] = test::preset("hardware/a100_80gb.textproto");
  EXPECT_THAT(
      all_issues(
          [&] { load_config(f, {"workload.decode.speculative.draft.activation_dtype=FP8"}); }),
      testing::HasSubstr("no peak FLOP/s for the workload's draft model's activation dtype FP8"));
}

TEST(ConfigValidate, MissingRequiredFieldNamesTheInputs) {
  const std::string empty = write_temp("empty", "");
  const std::string msg = first_issue([&] { load_config({empty}, {}); });
  EXPECT_NE(msg.find("system.components: the system has no components"), std::string::npos) << msg;
  fs::remove(empty);
}

}  // namespace
}  // namespace tiersim
