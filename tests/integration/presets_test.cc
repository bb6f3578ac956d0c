// Every hardware preset with every model preset: runs where the model fits, and a clear
// capacity error (exit 2) where it does not. A run that fits is a bandwidth-bound batch-1
// decode: 4 steps of one token; each step reads every dense weight object once (HBM bytes per
// token at least their bytes, at most every object's), at a rate below the preset's peak and
// above half of it (the vendor's peak memory bandwidth, below).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

struct Case {
  const char* hardware;
  const char* model;
  bool fits;
};

class Presets : public testing::TestWithParam<Case> {};

// Peak memory bandwidth by the vendors' datasheets (bytes/s): A100 80GB SXM 2,039 GB/s, H100 SXM
// 3.35 TB/s, H200 4.8 TB/s, T4 320 GB/s.
double peak_bytes_per_s(const std::string& hardware) {
  const std::map<std::string, double> peak = {
      {"a100_80gb", 2.039e12}, {"h100_sxm", 3.35e12}, {"h200", 4.8e12}, {"t4", 320e9}};
  return peak.at(hardware);
}

TEST_P(Presets, RunOrRejectCleanly) {
  const Case c = GetParam();
  const std::string cmd =
      test::tiersim_binary() + " run " +
      test::preset(std::string("hardware/") + c.hardware + ".textproto") + " " +
      test::preset(std::string("models/") + c.model + ".textproto") + " " +
      test::preset("studies/default.textproto") + " --set workload.decode.decode_steps=4" +
      (std::string(c.model).find("mixtral") == 0 || std::string(c.model).find("deepseek") == 0
           ? " --set workload.routing.synthetic.zipf_exponent=1"
           : "") +
      // Turing has no BF16: FP16 everywhere.
      (std::string(c.hardware) == "t4" ? " --set workload.model.weight_dtype=FP16"
                                         " --set workload.model.kv_dtype=FP16"
                                         " --set workload.model.activation_dtype=FP16"
                                       : "");
  const std::string out = "/tmp/tiersim_presets_" + std::to_string(getpid()) + ".h5";
  auto r = test::run_cmd(cmd + " --quiet --out " + out);
  if (c.fits) {
    ASSERT_EQ(r.code, 0) << r.err;
    ResultReader h(out);
    std::map<std::string, double> s;
    for (const auto& item : h.summary())
      s[item.name] = item.value;
    const Table objects = h.read_table("/objects");
    const auto* cls = objects.find("class");
    const auto* size = objects.find("size_bytes");
    const auto* confidence = objects.find("confidence");
    double weights = 0, all = 0;  // weights every step reads (dense; a MoE's experts are routed)
    for (size_t i = 0; i < objects.rows(); ++i) {
      all += double(size->u64[i]);
      if (cls->str[i] == "weight" && confidence->f64[i] >= 1.0) weights += double(size->u64[i]);
    }
    std::remove(out.c_str());
    EXPECT_EQ(s.at("decode_steps"), 4);
    EXPECT_EQ(s.at("tokens_generated"), 4);
    EXPECT_GE(s.at("hbm_bytes_per_token"), weights);
    EXPECT_LE(s.at("hbm_bytes_per_token"), all);
    const double peak = peak_bytes_per_s(c.hardware);
    EXPECT_LE(s.at("hbm_achieved_bytes_per_s"), peak);
    EXPECT_GT(s.at("hbm_achieved_bytes_per_s"), 0.5 * peak);
    // Bandwidth bound: the step time is the bytes at the achieved rate (within 10%).
    EXPECT_NEAR(s.at("tpot_ms_mean"),
                s.at("hbm_bytes_per_token") / s.at("hbm_achieved_bytes_per_s") * 1e3,
                0.1 * s.at("tpot_ms_mean"));
  } else {
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, testing::HasSubstr("workload: needs"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, Presets,
    testing::Values(Case{"a100_80gb", "llama2_7b", true}, Case{"a100_80gb", "llama3_8b", true},
                    Case{"a100_80gb", "llama2_70b", false}, Case{"a100_80gb", "llama3_70b", false},
                    Case{"h100_sxm", "llama2_7b", true}, Case{"h100_sxm", "llama3_8b", true},
                    Case{"h100_sxm", "llama2_70b", false}, Case{"h100_sxm", "llama3_70b", false},
                    Case{"h200", "llama2_7b", true}, Case{"h200", "llama3_8b", true},
                    Case{"h200", "llama2_70b", true}, Case{"h200", "llama3_70b", true},
                    Case{"h200", "llama2_13b", true}, Case{"h200", "gptj_6b", true},
                    Case{"h200", "opt_6_7b", true}, Case{"h200", "opt_30b", true},
                    Case{"h200", "llama3_405b", false}, Case{"h200", "gpt3_175b", false},
                    Case{"h200", "opt_175b", false}, Case{"h200", "bloom_176b", false},
                    Case{"h200", "mixtral_8x7b", true}, Case{"h200", "mixtral_8x22b", false},
                    Case{"h200", "deepseek_v3", false}, Case{"t4", "llama2_7b", true},
                    Case{"t4", "gptj_6b", true}, Case{"t4", "llama2_13b", false}),
    [](const testing::TestParamInfo<Case>& i) {
      return std::string(i.param.hardware) + "_" + i.param.model;
    });

}  // namespace
}  // namespace tiersim
