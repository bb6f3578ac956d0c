// Wired residency as a program in whole runs (policy.orchestration.wired.program): every
// directive exercised with the bytes it moves derived by hand, the grace of a soft pin, and
// illegal programs refused before the run with the directive's field path.
#include <fstream>

#include "tests/integration/orchestration_support.h"
#include "tests/support/xorshift.h"

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// Llama-3.2-1B on H100 with the 2 GiB HRM beside its HBM (the wired-residency study), `steps`
// decode steps, batch 1; `wired` replaces policy.orchestration.wired.
std::map<std::string, double> run_1b(uint32_t steps, const std::string& wired,
                                     std::string* err = nullptr) {
  return run_presets(
      {"hardware/h100_sxm", "memory/hrm_sram_4x4", "hardware/fragments/h100_with_hrm",
       "models/llama3_2_1b", "software/cuda_events_per_kernel", "studies/wired_hrm_llama3_2_1b"},
      " --set workload.decode.decode_steps=" + std::to_string(steps) +
          " --set 'policy.orchestration.wired={memory:\"hrm\" " + wired + "}'",
      err);
}

// One decoder layer of Llama-3.2-1B (hidden 2048, 32 query and 8 KV heads of 64, MLP 8192,
// BF16): the fused QKV projection 2048 x 3072, the output 2048 x 2048, gate and up 2048 x
// 16384, down 8192 x 2048, two RMSNorm weights of 2048 (4 KiB each): 121,643,008 bytes, every
// object a multiple of 4 KiB. Each is read whole once per step.
constexpr double kLayer =
    2.0 * (2048.0 * 3072 + 2048.0 * 2048 + 2048.0 * 16384 + 8192.0 * 2048 + 2 * 2048);

// The program, step by step (quota 256 MiB = 2.2 layers):
//   0  BIND layer15.*                     wired: L15            (model load: no copy)
//   1  SOFT_PIN layer14.*                 wired: L15 L14        (copied in: 1 layer)
//   2  BIND layer13.*                     wired: L15 L13        (needs room: L14 reclaimed,
//                                                                grace 0; copied in: 1 layer)
//   3  UNPIN layer13.*, SET_QUOTA 128 MiB wired: L15            (L13 reclaimed by the quota)
//   4  RELEASE layer15.*                  wired: nothing
//   5  BIND layer15.*                     wired: L15            (copied in again: 1 layer)
// Layers 13-15 run last in a step, long after the step's decisions and copies (~100 us), so
// each step reads exactly the layers listed from the HRM: 1 + 2 + 2 + 1 + 0 + 1 = 7 layers over
// 6 tokens, 3 layers copied in; HBM reads fall by the wired reads and rise by the copies' reads.
TEST(ResidencyProgram, EveryDirectiveMovesTheBytesDerivedByHand) {
  const std::string program =
      "quota_bytes:268435456"
      " program{op:WIRED_BIND step:0 objects:\"layer15.*\"}"
      " program{op:WIRED_SOFT_PIN step:1 objects:\"layer14.*\"}"
      " program{op:WIRED_BIND step:2 objects:\"layer13.*\"}"
      " program{op:WIRED_UNPIN step:3 objects:\"layer13.*\"}"
      " program{op:WIRED_SET_QUOTA step:3 quota_bytes:134217728}"
      " program{op:WIRED_RELEASE step:4 objects:\"layer15.*\"}"
      " program{op:WIRED_BIND step:5 objects:\"layer15.*\"}";
  const auto r = run_1b(6, program);
  const auto none = run_1b(6, "quota_bytes:0");
  ASSERT_FALSE(r.count("exit") || none.count("exit"));
  const double tokens = 6;
  std::cout << "program: wired " << r.at("wired_bytes_per_token") / 1e6 << " MB/token, copied in "
            << r.at("wired_program_bind_bytes_per_token") / 1e6 << " MB/token, HBM "
            << none.at("hbm_bytes_per_token") / 1e9 << " -> " << r.at("hbm_bytes_per_token") / 1e9
            << " GB/token, TPOT " << none.at("tpot_ms_mean") << " -> " << r.at("tpot_ms_mean")
            << " ms\n";
  EXPECT_DOUBLE_EQ(r.at("wired_bytes_per_token") * tokens, 7 * kLayer);
  EXPECT_DOUBLE_EQ(r.at("wired_program_bind_bytes_per_token") * tokens, 3 * kLayer);
  EXPECT_DOUBLE_EQ(r.at("dma_promote_bytes_per_token") * tokens, 3 * kLayer);
  EXPECT_NEAR(none.at("hbm_bytes_per_token") - r.at("hbm_bytes_per_token"),
              (7 * kLayer - 3 * kLayer) / tokens, 1.0);
  // 6 objects per layer: 4 layers bound (24), one released (6), two reclaimed (12).
  EXPECT_EQ(r.at("wired_program_binds"), 24);
  EXPECT_EQ(r.at("wired_program_releases"), 6);
  EXPECT_EQ(r.at("wired_program_reclaims"), 12);
  // Run-time directives are off-path decisions of the controller, one per object (and one for
  // the quota); step 0's are the model load's.
  EXPECT_EQ(r.at("decisions_residency_program_bind"), 18);
  EXPECT_EQ(r.at("decisions_residency_program_release"), 12);  // RELEASE and UNPIN
  EXPECT_EQ(r.at("decisions_residency_program_quota"), 1);
  EXPECT_EQ(r.at("controller_decisions_critical"), 0);
  // The peak, by hand: layers 15 and 14 and, before layer 14's room is reclaimed for layer 13's
  // gate/up, layer 13's norms, QKV and output projection.
  EXPECT_DOUBLE_EQ(r.at("wired_program_peak_bytes"),
                   2 * kLayer + 2.0 * (2048.0 * 3072 + 2048.0 * 2048 + 2 * 2048));
  EXPECT_LT(r.at("tpot_ms_mean"), none.at("tpot_ms_mean"));
}

// A reclaimed soft pin stays readable for its grace, and the room it held is not reused before.
// Quota 256 MiB: layers 15 and 14 leave 25.15 MB, so layer 13's norms, QKV and output projection
// (20,979,712 bytes) bind at step 1 without reclaiming; its gate/up and down need layer 14's
// room. With a grace beyond the run layer 14 is read from the HRM in every step and those two
// copies are never issued; with no grace they take its room at step 1.
TEST(ResidencyProgram, ASoftPinKeepsItsRoomForItsGrace) {
  auto with = [](uint64_t grace_ps) {
    return run_1b(3,
                  "quota_bytes:268435456"
                  " program{op:WIRED_BIND step:0 objects:\"layer15.*\"}"
                  " program{op:WIRED_SOFT_PIN step:0 objects:\"layer14.*\" grace_ps:" +
                      std::to_string(grace_ps) +
                      "}"
                      " program{op:WIRED_BIND step:1 objects:\"layer13.*\"}");
  };
  const auto long_grace = with(1'000'000'000'000ULL), no_grace = with(0);
  ASSERT_FALSE(long_grace.count("exit") || no_grace.count("exit"));
  const double tokens = 3;
  const double small = 2.0 * (2048.0 * 3072 + 2048.0 * 2048 + 2 * 2048);
  // Long grace: L15 and L14 in all 3 steps, L13's small objects in steps 1 and 2.
  EXPECT_DOUBLE_EQ(long_grace.at("wired_bytes_per_token") * tokens, 6 * kLayer + 2 * small);
  EXPECT_DOUBLE_EQ(long_grace.at("wired_program_bind_bytes_per_token") * tokens, small);
  // No grace: L15 x 3, L14 in step 0, L13 in steps 1 and 2; L13 copied once.
  EXPECT_DOUBLE_EQ(no_grace.at("wired_bytes_per_token") * tokens, 6 * kLayer);
  EXPECT_DOUBLE_EQ(no_grace.at("wired_program_bind_bytes_per_token") * tokens, kLayer);
  EXPECT_EQ(long_grace.at("wired_program_reclaims"), 6);
  EXPECT_EQ(no_grace.at("wired_program_reclaims"), 6);
}

// Room freed by a reclaimed soft pin is not reused before its grace ends, whichever directive
// reuses it: a SET_QUOTA of 0 at step 1 reclaims layer 14 (grace beyond the run), the quota comes
// back at step 2 and layer 13 is bound into the same room, so its copy waits past the run and
// layer 14 is read from the HRM in all 4 steps. A bind released before its copy was issued
// copies nothing, and a re-bind of an object whose copy is still queued copies it once.
TEST(ResidencyProgram, RoomAndQueuedCopiesFollowTheGraceAndTheReleases) {
  const auto grace = run_1b(4,
                            "quota_bytes:134217728"
                            " program{op:WIRED_SOFT_PIN step:0 objects:\"layer14.*\""
                            " grace_ps:1000000000000}"
                            " program{op:WIRED_SET_QUOTA step:1 quota_bytes:0}"
                            " program{op:WIRED_SET_QUOTA step:2 quota_bytes:134217728}"
                            " program{op:WIRED_BIND step:2 objects:\"layer13.*\"}");
  ASSERT_FALSE(grace.count("exit"));
  EXPECT_DOUBLE_EQ(grace.at("wired_bytes_per_token") * 4, 4 * kLayer);
  EXPECT_EQ(grace.at("wired_program_bind_bytes_per_token"), 0);
  EXPECT_EQ(grace.at("wired_program_reclaims"), 6);

  // Layer 14 soft-pinned with a 2.5 ms grace (a step takes ~1.8 ms); binding layer 13's QKV at
  // step 1 reclaims layer 14's norm and QKV, and its copy waits 2.5 ms for that room, into step 2.
  const double qkv = 2.0 * 2048 * 3072;
  const std::string pin =
      "quota_bytes:134217728"
      " program{op:WIRED_SOFT_PIN step:0 objects:\"layer14.*\" grace_ps:2500000000}"
      " program{op:WIRED_BIND step:1 objects:\"layer13.qkv\"}";
  const auto copied = run_1b(3, pin);
  // Released at step 2's start, before the grace ended: the queued copy is cancelled.
  const auto cancelled =
      run_1b(3, pin + " program{op:WIRED_RELEASE step:2 objects:\"layer13.qkv\"}");
  // Bound, released and bound again while the first copy still waits: copied once.
  const auto rebound = run_1b(3, pin +
                                     " program{op:WIRED_RELEASE step:1 objects:\"layer13.qkv\"}"
                                     " program{op:WIRED_BIND step:1 objects:\"layer13.qkv\"}");
  for (const auto* m : {&copied, &cancelled, &rebound})
    ASSERT_FALSE(m->count("exit"));
  EXPECT_DOUBLE_EQ(copied.at("wired_program_bind_bytes_per_token") * 3, qkv);
  EXPECT_EQ(copied.at("wired_program_reclaims"), 2);
  EXPECT_EQ(cancelled.at("wired_program_bind_bytes_per_token"), 0);
  EXPECT_DOUBLE_EQ(rebound.at("wired_program_bind_bytes_per_token") * 3, qkv);
}

// Random programs over the last four layers: each is either refused before the run (exit 2,
// naming a directive) or runs, never above the largest quota it sets, and reads from the wired
// memory at most what the pinned layers could serve; the same program runs the same, bit for bit.
TEST(ResidencyProgram, RandomProgramsAreRefusedOrKeepTheirInvariants) {
  test::XorShift next(0x9e3779b97f4a7c15ULL);
  const char* ops[] = {"WIRED_BIND", "WIRED_SOFT_PIN", "WIRED_UNPIN", "WIRED_RELEASE",
                       "WIRED_SET_QUOTA"};
  const char* parts[] = {"*", "qkv", "out", "gate_up", "down"};
  const uint64_t quotas[] = {67108864, 134217728, 268435456, 536870912};
  int ran = 0, refused = 0;
  for (int trial = 0; trial < 80; ++trial) {
    uint64_t quota = quotas[next(4)], largest = quota;
    std::string program = "quota_bytes:" + std::to_string(quota);
    const uint32_t directives = 1 + next(6);
    for (uint32_t k = 0; k < directives; ++k) {
      const uint32_t pick = next(8);  // binds and soft pins more often than the rest
      const uint32_t op = pick < 3 ? 0 : pick < 5 ? 1 : pick - 3;
      program += std::string(" program{op:") + ops[op] + " step:" + std::to_string(next(4));
      if (op == 4) {
        const uint64_t q = quotas[next(4)];
        largest = std::max(largest, q);
        program += " quota_bytes:" + std::to_string(q);
      } else {
        program += std::string(" objects:\"layer") + std::to_string(12 + next(4)) + "." +
                   parts[next(5)] + "\"";
        if (op == 1) program += " grace_ps:" + std::to_string(uint64_t(next(3)) * 500'000'000);
      }
      program += "}";
    }
    std::string err;
    const auto r = run_1b(4, program, &err);
    const double code = r.count("exit") ? r.at("exit") : 0;
    ASSERT_TRUE(code == 0 || code == 2) << program << ": " << err;
    if (code == 2) {
      ++refused;
      EXPECT_NE(err.find("policy.orchestration.wired.program["), std::string::npos) << err;
      continue;
    }
    ++ran;
    EXPECT_LE(r.at("wired_program_peak_bytes"), double(largest)) << program;
    EXPECT_LE(r.at("wired_bytes_per_token"), 4 * kLayer) << program;
    if (trial % 8 == 0) {
      const auto again = run_1b(4, program);
      EXPECT_EQ(again.at("tpot_ms_mean"), r.at("tpot_ms_mean")) << program;
      EXPECT_EQ(again.at("wired_bytes_per_token"), r.at("wired_bytes_per_token")) << program;
    }
  }
  std::cout << "random programs: " << ran << " ran, " << refused << " refused\n";
  EXPECT_GT(ran, 5);
  EXPECT_GT(refused, 5);
}

// The compiler view: the program emitted from the intents. With one phase (dense decode) it is
// the arbiter's choice bound at model load: the same bytes from the wired memory and from HBM,
// no run-time decision. With a prefill phase before decode (Mixtral cut to 2 layers, batch 4:
// the prefill uses every expert, a decode step a routed few) it binds the prefill's choice at
// load and rebinds at the decode phase's start (decisions then); with intents not restated per
// phase it is the arbiter's again.
TEST(ResidencyProgram, EmittedFromIntentsFollowsThePhases) {
  const std::string emit = " --set policy.orchestration.wired.emit_from_intents=true";
  auto dense = [](const std::string& extra) {
    return run_presets(
        {"hardware/h100_sxm", "memory/hrm_sram_4x4", "hardware/fragments/h100_with_hrm",
         "models/llama3_2_1b", "software/cuda_events_per_kernel", "studies/wired_hrm_llama3_2_1b"},
        " --set workload.decode.decode_steps=4" + extra);
  };
  const auto arbiter = dense(""), emitted = dense(emit);
  ASSERT_FALSE(arbiter.count("exit") || emitted.count("exit"));
  EXPECT_EQ(emitted.at("wired_bytes_per_token"), arbiter.at("wired_bytes_per_token"));
  EXPECT_EQ(emitted.at("hbm_bytes_per_token"), arbiter.at("hbm_bytes_per_token"));
  EXPECT_EQ(emitted.at("wired_program_binds"), arbiter.at("wired_objects"));
  EXPECT_EQ(emitted.at("controller_decisions"), 0);
  EXPECT_NEAR(emitted.at("tpot_ms_mean"), arbiter.at("tpot_ms_mean"),
              0.005 * arbiter.at("tpot_ms_mean"));  // the HRM addresses differ

  auto moe = [](const std::string& extra) {
    return run_presets(
        {"hardware/h100_sxm", "memory/hrm_sram_4x4", "hardware/fragments/h100_with_hrm",
         "models/mixtral_8x7b", "software/cuda_events_per_kernel", "studies/wired_hrm_llama3_2_1b"},
        " --set workload.model.layers=2 --set workload.decode.decode_steps=4"
        " --set workload.decode.prefill=true --set workload.decode.batch_size=4"
        " --set workload.routing={synthetic{zipf_exponent:1.0}}" +
            extra);
  };
  const auto moe_arbiter = moe(""), moe_emitted = moe(emit);
  const auto load_only = moe(emit + " --set policy.orchestration.intent_per_phase=false");
  ASSERT_FALSE(moe_arbiter.count("exit") || moe_emitted.count("exit") || load_only.count("exit"));
  std::cout << "MoE: wired MB/token arbiter " << moe_arbiter.at("wired_bytes_per_token") / 1e6
            << ", emitted per phase " << moe_emitted.at("wired_bytes_per_token") / 1e6 << " ("
            << moe_emitted.at("decisions_residency_program_bind") << " bind and "
            << moe_emitted.at("decisions_residency_program_release")
            << " release decisions at the decode phase, "
            << moe_emitted.at("wired_program_bind_bytes_per_token") / 1e6
            << " MB/token copied in)\n";
  EXPECT_GT(moe_emitted.at("decisions_residency_program_bind") +
                moe_emitted.at("decisions_residency_program_release"),
            0);
  EXPECT_GT(moe_emitted.at("wired_program_bind_bytes_per_token"), 0);
  EXPECT_NE(moe_emitted.at("wired_bytes_per_token"), moe_arbiter.at("wired_bytes_per_token"));
  EXPECT_EQ(load_only.at("controller_decisions"), 0);
  EXPECT_EQ(load_only.at("wired_bytes_per_token"), moe_arbiter.at("wired_bytes_per_token"));
}

// Illegal programs exit 2 before the run, naming the directive.
TEST(ResidencyProgram, IllegalProgramsAreRefusedWithTheDirective) {
  const std::string d = "policy.orchestration.wired.program[";
  const std::vector<std::pair<std::string, std::string>> cases = {
      // More than the quota, nothing reclaimable.
      {"quota_bytes:104857600 program{op:WIRED_BIND step:0 objects:\"layer0.*\"}",
       d + "0].objects"},
      // Releasing what is not bound; unpinning what is not pinned.
      {"quota_bytes:1073741824 program{op:WIRED_RELEASE step:1 objects:\"layer3.qkv\"}",
       d + "0].objects"},
      {"quota_bytes:1073741824 program{op:WIRED_UNPIN step:1 objects:\"layer3.qkv\"}",
       d + "0].objects"},
      // Binding twice.
      {"quota_bytes:1073741824 program{op:WIRED_BIND step:0 objects:\"layer3.qkv\"}"
       " program{op:WIRED_BIND step:1 objects:\"layer3.*\"}",
       d + "1].objects"},
      // Names nothing; a KV cache is not bindable.
      {"quota_bytes:1073741824 program{op:WIRED_BIND step:0 objects:\"nosuch*\"}",
       d + "0].objects[0]"},
      {"quota_bytes:1073741824 program{op:WIRED_BIND step:0 objects:\"layer0.kv*\"}",
       d + "0].objects[0]"},
      // An object larger than the quota.
      {"quota_bytes:1048576 program{op:WIRED_BIND step:0 objects:\"layer0.gate_up\"}",
       d + "0].objects"},
      // Beyond the run; a quota below the hard pins.
      {"quota_bytes:1073741824 program{op:WIRED_BIND step:99 objects:\"layer0.*\"}", d + "0].step"},
      {"quota_bytes:1073741824 program{op:WIRED_BIND step:0 objects:\"layer0.*\"}"
       " program{op:WIRED_SET_QUOTA step:1 quota_bytes:1048576}",
       d + "1].quota_bytes"},
      // Shapes: no op, grace without SOFT_PIN, objects with SET_QUOTA, a '*' inside a name.
      {"quota_bytes:1 program{step:0 objects:\"layer0.*\"}", d + "0].op"},
      {"quota_bytes:1 program{op:WIRED_BIND step:0 objects:\"layer0.*\" grace_ps:5}",
       d + "0].grace_ps"},
      {"quota_bytes:1 program{op:WIRED_SET_QUOTA step:0 quota_bytes:5 objects:\"a\"}",
       d + "0].objects"},
      {"quota_bytes:1 program{op:WIRED_BIND step:0 objects:\"layer*.qkv\"}", d + "0].objects[0]"},
      // A quota above the wired memory's room (2 GiB).
      {"quota_bytes:4294967296 program{op:WIRED_BIND step:0 objects:\"layer0.*\"}",
       "policy.orchestration.wired.quota_bytes"},
      // A program and its emission from the intents at once.
      {"quota_bytes:1 emit_from_intents:true program{op:WIRED_BIND step:0 objects:\"a\"}",
       "policy.orchestration.wired.emit_from_intents"},
  };
  for (const auto& [program, field] : cases) {
    std::string err;
    const auto r = run_1b(4, program, &err);
    EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2) << program;
    EXPECT_NE(err.find(field), std::string::npos) << program << ": " << err;
  }
  // Not with layer prefetch (it would keep copying what the program binds).
  {
    std::string err;
    const auto r = run_presets(
        {"hardware/h100_sxm", "memory/hrm_sram_4x4", "hardware/fragments/h100_with_hrm",
         "models/llama3_2_1b", "software/cuda_events_per_kernel", "studies/wired_hrm_llama3_2_1b"},
        " --set policy.orchestration.prefetch_layers=1 --set "
        "policy.orchestration.resident_fraction=0.5"
        " --set 'policy.orchestration.wired={memory:\"hrm\" quota_bytes:1"
        " program{op:WIRED_BIND step:0 objects:\"layer0.*\"}}'",
        &err);
    EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
    EXPECT_NE(err.find("policy.orchestration.wired.program"), std::string::npos) << err;
  }
  // The checks that share a field say which rule was broken.
  const std::vector<std::pair<std::string, std::string>> messages = {
      {"quota_bytes:104857600 program{op:WIRED_BIND step:0 objects:\"layer0.*\"}",
       "held by pins that cannot be reclaimed"},
      // Within the quota, but the free room is in pieces: two 8 MiB holes around a 12 MiB pin.
      {"quota_bytes:29360128 program{op:WIRED_BIND step:0 objects:[\"layer0.out\", "
       "\"layer0.qkv\", \"layer1.out\"]} program{op:WIRED_RELEASE step:1 objects:[\"layer0.out\", "
       "\"layer1.out\"]} program{op:WIRED_BIND step:1 objects:\"layer1.qkv\"}",
       "needs more contiguous room than the wired area has free"},
      {"quota_bytes:1073741824 program{op:WIRED_RELEASE step:1 objects:\"layer3.qkv\"}",
       "is not bound"},
      {"quota_bytes:1073741824 program{op:WIRED_UNPIN step:1 objects:\"layer3.qkv\"}",
       "is not pinned"},
      {"quota_bytes:1073741824 program{op:WIRED_BIND step:0 objects:\"layer3.qkv\"}"
       " program{op:WIRED_BIND step:1 objects:\"layer3.*\"}",
       "is already bound"},
      {"quota_bytes:1048576 program{op:WIRED_BIND step:0 objects:\"layer0.gate_up\"}",
       "does not fit the quota"},
      {"quota_bytes:1073741824 program{op:WIRED_BIND step:0 objects:\"nosuch*\"}",
       "names no weight"},
      {"quota_bytes:1 program{op:WIRED_BIND step:0 objects:\"layer*.qkv\"}",
       "a non-empty prefix ending in one '*'"},
  };
  for (const auto& [program, message] : messages) {
    std::string err;
    run_1b(4, program, &err);
    EXPECT_NE(err.find(message), std::string::npos) << program << ": " << err;
  }
}

// In a config file the refusal names the file and the directive's line.
TEST(ResidencyProgram, RefusalNamesTheFileAndLine) {
  const std::string path =
      (fs::temp_directory_path() / ("tiersim_program_" + std::to_string(getpid()) + ".textproto"))
          .string();
  {
    std::ofstream f(path);
    f << "policy {\n  orchestration {\n    wired {\n      memory: \"hrm\"\n"
         "      quota_bytes: 1073741824\n"
         "      program { op: WIRED_BIND step: 0 objects: \"layer1.*\" }\n"
         "      program { op: WIRED_RELEASE step: 1 objects: \"layer2.qkv\" }\n"
         "    }\n  }\n}\n";
  }
  std::string err;
  const auto r = run_presets(
      {"hardware/h100_sxm", "memory/hrm_sram_4x4", "hardware/fragments/h100_with_hrm",
       "models/llama3_2_1b", "software/cuda_events_per_kernel", "studies/wired_hrm_llama3_2_1b"},
      path, &err);
  fs::remove(path);
  EXPECT_EQ(r.count("exit") ? r.at("exit") : 0, 2);
  EXPECT_NE(err.find(path + ":7"), std::string::npos) << err;
  EXPECT_NE(err.find("program[1].objects"), std::string::npos) << err;
}

}  // namespace
}  // namespace tiersim

namespace tiersim {
namespace {

using namespace orchestration_test;  // NOLINT: the shared run helpers

// A serving run has no step count: a directive's step depends on how long the run lasts. Checked
// before the run in step order; at run time a step never reached is counted, not refused. Six
// requests of 8 tokens (14 steps): layer15 bound at load, layer14 at step 3 (one layer copied in),
// and a RELEASE at step 100000 that never comes (layer15's 6 objects).
TEST(ResidencyProgram, ServingProgramsCountTheEffectsTheRunNeverReached) {
  const auto r = run_presets(
      {"hardware/h100_sxm", "memory/hrm_sram_4x4", "hardware/fragments/h100_with_hrm",
       "software/cuda_events_per_kernel", "models/llama3_2_1b", "studies/serving_llama3_8b"},
      " --set 'workload.serving.poisson={rate_per_s: 100 requests: 6}'"
      " --set 'workload.serving.output_tokens={fixed: 8}'"
      " --set 'policy={placement: ORCHESTRATED orchestration {fast_memory: \"hbm\""
      " resident_fraction: 1 controller: ON_ACCELERATOR notification: DOORBELL"
      " wired {memory: \"hrm\" quota_bytes: 268435456"
      " program{op:WIRED_BIND step:0 objects:\"layer15.*\"}"
      " program{op:WIRED_BIND step:3 objects:\"layer14.*\"}"
      " program{op:WIRED_RELEASE step:100000 objects:\"layer15.*\"}}}}'");
  ASSERT_FALSE(r.count("exit"));
  EXPECT_EQ(r.at("wired_program_binds"), 12);
  EXPECT_EQ(r.at("wired_program_releases"), 0);
  EXPECT_EQ(r.at("wired_program_effects_unreached"), 6);
  EXPECT_NEAR(r.at("wired_program_bind_bytes_per_token") * r.at("tokens_generated"), kLayer, 1);
}

}  // namespace
}  // namespace tiersim
