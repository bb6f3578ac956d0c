// Every hardware preset with every model preset: runs where the model fits, and a clear
// capacity error (exit 2) where it does not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  auto r = test::run_cmd(cmd);
  if (c.fits) {
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, testing::HasSubstr("decode_steps"));
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
