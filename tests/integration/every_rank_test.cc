// Every rank simulated (workload.parallelism.simulate_ranks: SIMULATE_EVERY_RANK) through the
// binary: identical ranks reproduce the symmetric shortcut exactly; one slow node sets the pod's
// pace (exactly the shortcut with every node that slow, as each collective waits for it) while
// the others wait at the collectives; expert-parallel ranks each run their own experts and agree
// with the shortcut's estimate of the slowest; bad configs exit 2 with the field path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "models/run/result_file.h"
#include "tests/support/paths.h"
#include "tests/support/result_summary.h"
#include "tests/support/run_cmd.h"

namespace tiersim {
namespace {

namespace fs = std::filesystem;

using test::summary_of;

class EveryRank : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tiersim_every_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    // Llama-3-70B TP8 on the HGX H100 board, batch 8, 2k context, 3 steps.
    base_ = test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
            test::preset("pods/hgx_h100_nvswitch.textproto") + " " +
            test::preset("models/llama3_70b.textproto") + " " +
            test::preset("software/cuda_events_per_kernel.textproto") + " " +
            test::preset("studies/speed_70b_tp8.textproto") +
            " --set workload.decode.decode_steps=3 --set workload.decode.batch_size=8 --quiet";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::map<std::string, double> go(const std::string& name, const std::string& sets) {
    const std::string out = (dir_ / (name + ".h5")).string();
    const auto r = test::run_cmd(base_ + sets + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? summary_of(out) : std::map<std::string, double>{};
  }
  // A run of `files` plus `sets` into `name`.h5 (its path), expected to succeed.
  std::string run_files(const std::string& files, const std::string& name,
                        const std::string& sets) {
    const std::string out = (dir_ / (name + ".h5")).string();
    const auto r = test::run_cmd(test::tiersim_binary() + " run " + files + sets + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    return out;
  }
  fs::path dir_;
  std::string base_;
  const std::string every_ = " --set workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK";
  // Two pipeline stages on the HGX board's pod.
  const std::string staged_ = " " + test::preset("pods/hgx_h100_nvswitch.textproto") + every_ +
                              " --set workload.parallelism.pipeline_parallel=2";
  const std::string slow3_ =
      " --set 'system.pod.node_overrides[+]=name: \"slow3\" nodes: 3 system { components { name: "
      "\"hbm\" hbm { efficiency_fraction: 0.45 } } }'";
};

TEST_F(EveryRank, IdenticalRanksReproduceTheShortcutExactly) {
  const auto one = go("one", "");
  const auto every = go("every", every_);
  // Each rank a system of its own, not merged with its identical peers: the same, exactly.
  const auto apart =
      go("apart", every_ + " --set workload.parallelism.merge_identical_ranks=false");
  ASSERT_FALSE(every.empty());
  ASSERT_FALSE(apart.empty());
  EXPECT_EQ(every.at("ranks_simulated"), 8);
  EXPECT_EQ(every.at("rank_classes"), 1);
  EXPECT_EQ(apart.at("rank_classes"), 8);
  for (const auto& [name, value] : apart) {
    if (name == "wall_time_s" || name == "rank_classes") continue;
    EXPECT_EQ(every.at(name), value) << name;
  }
  for (const auto& [name, value] : one) {
    if (name == "wall_time_s") continue;
    ASSERT_TRUE(every.count(name)) << name;
    EXPECT_EQ(every.at(name), value) << name;
  }
  const ResultReader file((dir_ / "every.h5").string());
  for (int r = 0; r < 8; ++r) {
    const std::string p = "node" + std::to_string(r) + "_";
    EXPECT_EQ(every.at(p + "step_ms_mean"), one.at("tpot_ms_mean")) << r;
    EXPECT_EQ(every.at(p + "rendezvous_wait_ms_per_step"), 0) << r;
    // One class: every node's own results are the class's, and equal the shortcut's.
    for (const auto& item : file.summary("/nodes/" + std::to_string(r) + "/summary")) {
      if (item.name.find("wall_time") != std::string::npos) continue;
      ASSERT_TRUE(one.count(item.name)) << item.name;
      EXPECT_EQ(item.value, one.at(item.name)) << r << " " << item.name;
    }
  }
}

TEST_F(EveryRank, OneSlowNodeSetsThePodsPace) {
  const auto fast = go("fast", "");
  const auto all_slow =
      go("all_slow", " --set system.components[hbm].hbm.efficiency_fraction=0.45");
  const auto one_slow = go("one_slow", every_ + slow3_);
  const auto one_slow_apart =
      go("one_slow_apart",
         every_ + slow3_ + " --set workload.parallelism.merge_identical_ranks=false");
  ASSERT_FALSE(one_slow.empty());
  ASSERT_FALSE(one_slow_apart.empty());
  // Two classes (node 3, the others) against eight systems: the same results.
  EXPECT_EQ(one_slow.at("rank_classes"), 2);
  for (const auto& [name, value] : one_slow_apart) {
    if (name == "wall_time_s" || name == "rank_classes") continue;
    EXPECT_EQ(one_slow.at(name), value) << name;
  }
  EXPECT_GT(all_slow.at("tpot_ms_mean"), 1.3 * fast.at("tpot_ms_mean"));
  // Each segment between collectives streams from HBM: node 3 arrives last at every one, so the
  // pod steps at its pace, exactly.
  EXPECT_EQ(one_slow.at("tpot_ms_mean"), all_slow.at("tpot_ms_mean"));
  EXPECT_EQ(one_slow.at("node3_rendezvous_wait_ms_per_step"), 0);
  // The others wait for it: about the slow node's step less their own.
  for (int r : {0, 1, 2, 4, 5, 6, 7}) {
    const double wait = one_slow.at("node" + std::to_string(r) + "_rendezvous_wait_ms_per_step");
    EXPECT_GT(wait, 0.8 * (all_slow.at("tpot_ms_mean") - fast.at("tpot_ms_mean"))) << r;
    EXPECT_LT(wait, all_slow.at("tpot_ms_mean") - fast.at("tpot_ms_mean") + 0.01) << r;
  }
}

// Kernel jitter (software.kernel_jitter): each node draws its own stream, so with every rank
// simulated each collective waits for the node that drew the most since the last one. Fixed
// jitter is the same everywhere: every rank equals the shortcut. Uniform jitter of the same
// mean costs one rank its mean; eight ranks the mean of the largest of eight sums at each
// collective (about 6 kernels between the all-reduces of a layer: sum sd 1.41 x the mean per
// kernel, and the largest of eight normals sits 1.42 sd above the mean: about 1.33 x).
TEST_F(EveryRank, KernelJitterMakesStragglers) {
  const std::string fixed = " --set software.kernel_jitter.fixed_ps=5000000";
  const std::string uniform = " --set software.kernel_jitter.uniform.max_ps=10000000";
  const auto none = go("j_none", "");
  const auto fixed_one = go("j_fixed_one", fixed);
  const auto fixed_every = go("j_fixed_every", every_ + fixed);
  const auto uniform_one = go("j_uniform_one", uniform);
  const auto uniform_every = go("j_uniform_every", every_ + uniform);
  const auto again = go("j_again", every_ + uniform);
  const auto seed2 = go("j_seed2", every_ + uniform + " --set run.seed=2");
  ASSERT_FALSE(uniform_every.empty());
  ASSERT_FALSE(seed2.empty());
  const double base = none.at("tpot_ms_mean");
  // Fixed: an exact number of kernels per step pays 5 us each, on every rank alike.
  const double kernels = (fixed_one.at("tpot_ms_mean") - base) / 0.005;
  EXPECT_NEAR(kernels, std::round(kernels), 1e-3);
  EXPECT_GT(kernels, 500);
  EXPECT_EQ(fixed_every.at("tpot_ms_mean"), fixed_one.at("tpot_ms_mean"));
  EXPECT_EQ(fixed_every.at("rank_classes"), 1);    // the same draw everywhere: merged
  EXPECT_EQ(uniform_every.at("rank_classes"), 8);  // random draws, own streams: none merged
  // Uniform [0, 10 us]: one rank pays about the mean; eight pay the slowest at each collective,
  // never more than every kernel's maximum.
  const double one_rank = uniform_one.at("tpot_ms_mean") - base;
  const double pod = uniform_every.at("tpot_ms_mean") - base;
  EXPECT_NEAR(one_rank, kernels * 0.005, 0.03 * kernels * 0.005);
  EXPECT_GT(pod, 1.15 * one_rank);
  EXPECT_LT(pod, 1.6 * one_rank);
  EXPECT_LT(pod, kernels * 0.010);
  // Each node's own results under /nodes/<r>: its summary, stats and steps.
  const ResultReader file((dir_ / "j_uniform_every.h5").string());
  EXPECT_TRUE(file.exists("/nodes/7/summary"));
  EXPECT_FALSE(file.exists("/nodes/8"));
  const auto jitter = [&](const std::string& prefix) {
    return file.read_doubles(prefix + "/stats/compute/kernel_jitter_time").back();
  };
  EXPECT_NE(jitter("/nodes/3"), jitter("/nodes/0"));  // its own stream
  for (int r = 0; r < 8; ++r) {
    const std::string p = "/nodes/" + std::to_string(r);
    EXPECT_GT(jitter(p), 0.5 * kernels * 3 * 5e6) << r;  // about 3 steps x kernels x 5 us
    EXPECT_EQ(file.read_table(p + "/tokens").rows(), 3u) << r;
    // Every node is sometimes the last at a collective, and waits at others.
    EXPECT_GT(file.read_doubles(p + "/stats/compute/rendezvous_last").back(), 0) << r;
    EXPECT_GT(uniform_every.at("node" + std::to_string(r) + "_rendezvous_wait_ms_per_step"), 0)
        << r;
    double tpot = 0;
    for (const auto& item : file.summary(p + "/summary"))
      if (item.name == "tpot_ms_mean") tpot = item.value;
    // Every node's step ends at the step's last collective, when the slowest arrives.
    EXPECT_EQ(tpot, uniform_every.at("tpot_ms_mean")) << r;
  }
  // Deterministic per seed; another seed draws other stragglers.
  EXPECT_EQ(again.at("tpot_ms_mean"), uniform_every.at("tpot_ms_mean"));
  EXPECT_NE(seed2.at("tpot_ms_mean"), uniform_every.at("tpot_ms_mean"));

  // One node's own jitter (a node override's kernel_jitter): node 3 pays 5 us a kernel, arrives
  // last at every collective, and the pod steps exactly as if every node paid it.
  const auto node3 = go("j_node3", every_ +
                                       " --set 'system.pod.node_overrides[+]=name: \"j3\" nodes: 3 "
                                       "kernel_jitter { fixed_ps: 5000000 }'");
  ASSERT_FALSE(node3.empty());
  EXPECT_EQ(node3.at("tpot_ms_mean"), fixed_one.at("tpot_ms_mean"));
  EXPECT_EQ(node3.at("rank_classes"), 2);
  EXPECT_EQ(node3.at("node3_rendezvous_wait_ms_per_step"), 0);
  EXPECT_NEAR(node3.at("node0_rendezvous_wait_ms_per_step"), kernels * 0.005, 1e-6);
  // Random jitter on two nodes: each draws its own stream, and the pod waits for both.
  const auto two = go("j_two", every_ +
                                   " --set 'system.pod.node_overrides[+]=name: \"j\" nodes: [3, 5] "
                                   "kernel_jitter { uniform { max_ps: 10000000 } }'");
  ASSERT_FALSE(two.empty());
  EXPECT_EQ(two.at("rank_classes"), 8);
  EXPECT_GT(two.at("tpot_ms_mean") - base, 1.05 * one_rank);
  EXPECT_LT(two.at("tpot_ms_mean"), uniform_every.at("tpot_ms_mean"));
}

// DeepSeek-V3 EP8 on H200 with the HGX board's NVSwitch pod, 3 steps: every rank runs its own
// experts and meets the others at each dispatch and combine.
std::string ep8_files() {
  return " " + test::preset("hardware/h200.textproto") + " " +
         test::preset("models/deepseek_v3.textproto") + " " +
         test::preset("software/cuda_events_per_kernel.textproto") + " " +
         test::preset("studies/deepseek_v3_tp8.textproto") + " " +
         test::preset("pods/hgx_h100_nvswitch.textproto") +
         " --set workload.parallelism.tensor_parallel=1"
         " --set workload.parallelism.expert_parallel=8 --set workload.decode.decode_steps=3"
         " --quiet";
}

TEST_F(EveryRank, ExpertParallelAgreesWithTheShortcut) {
  base_ = test::tiersim_binary() + " run" + ep8_files();
  // Decode's 8 sequences per rank with the study's routing; 64 per rank with Zipf-skewed routing,
  // where the busiest rank's rows (arithmetic) and its distinct experts (weights) compete.
  for (const std::string& load : {std::string(" --set workload.decode.batch_size=8"),
                                  std::string(" --set workload.decode.batch_size=64"
                                              " --set workload.routing.synthetic.zipf_exponent=1.2"
                                              " --set workload.routing.synthetic.stickiness=0"),
                                  std::string(" --set workload.decode.batch_size=64"
                                              " --set workload.routing.synthetic.zipf_exponent=1.2"
                                              " --set workload.parallelism.redundant_experts=8")}) {
    const auto one = go("ep_one", load);
    const auto every = go("ep_every", load + every_);
    ASSERT_FALSE(every.empty()) << load;
    EXPECT_EQ(every.at("ranks_simulated"), 8);
    EXPECT_EQ(every.at("rank_classes"), 8);  // each rank its own experts: none merged
    // The shortcut runs the rank it estimates the slowest in each layer; every rank simulated
    // waits for the slowest at each combine. Within 2% is required; the estimate is measured
    // within 0.03%, so 0.2% catches a worse choice (the most distinct copies was 4.4% fast).
    EXPECT_NEAR(every.at("tpot_ms_mean"), one.at("tpot_ms_mean"), 0.002 * one.at("tpot_ms_mean"))
        << load;
    // The same routing, so the same traffic and load.
    EXPECT_EQ(every.at("ep_dispatch_bytes_per_layer"), one.at("ep_dispatch_bytes_per_layer"));
    EXPECT_EQ(every.at("ep_rank_load_max_over_mean"), one.at("ep_rank_load_max_over_mean"));
    // node[0] reads its own experts, never more than the busiest rank's the shortcut reads.
    EXPECT_LT(every.at("hbm_bytes_per_token"), one.at("hbm_bytes_per_token")) << load;
    // The load is uneven: ranks wait at the combines, and no rank is last everywhere.
    for (int r = 0; r < 8; ++r) {
      EXPECT_GT(every.at("node" + std::to_string(r) + "_rendezvous_wait_ms_per_step"), 0)
          << load << " " << r;
    }
  }
}

TEST_F(EveryRank, ExpertParallelSlowNodeSetsThePace) {
  base_ = test::tiersim_binary() + " run" + ep8_files() + " --set workload.decode.batch_size=8";
  const auto even = go("ep_even", every_);
  const auto slow = go("ep_slow", every_ +
                                      " --set 'system.pod.node_overrides[+]=name: \"slow5\" "
                                      "nodes: 5 system { components { name: \"hbm\" hbm { "
                                      "efficiency_fraction: 0.45 } } }'");
  ASSERT_FALSE(slow.empty());
  EXPECT_GT(slow.at("tpot_ms_mean"), 1.3 * even.at("tpot_ms_mean"));
  // Node 5 streams its attention and experts at half the rate: it arrives last at every
  // dispatch and combine, and the seven others wait for it.
  const double slow_wait = slow.at("node5_rendezvous_wait_ms_per_step");
  for (int r : {0, 1, 2, 3, 4, 6, 7}) {
    EXPECT_GT(slow.at("node" + std::to_string(r) + "_rendezvous_wait_ms_per_step"),
              10 * slow_wait + 1.0)
        << r;
  }
  EXPECT_EQ(slow.at("ep_dispatch_bytes_per_layer"), even.at("ep_dispatch_bytes_per_layer"));
}

// A fault naming one node ("node[3].hbm") is that node's fault alone, exactly as a node override
// holding the fault on its own "hbm" is: node 3's HBM offline for 30 us in step 2 makes node 3
// late for the collectives after it, and every other node waits for it there.
TEST_F(EveryRank, AFaultNamingOneNodeIsThatNodesAlone) {
  const std::string fault = "name: \"h3\" start_ps: 20000000000 duration_ps: 30000000";
  const auto healthy = go("healthy", every_);
  const auto named = go(
      "named", every_ + " --set 'system={faults {" + fault + " device_offline: \"node[3].hbm\"}}'");
  const auto overridden = go("overridden", every_ +
                                               " --set 'system.pod.node_overrides[+]=name: \"o3\" "
                                               "nodes: 3 system { faults {" +
                                               fault + " device_offline: \"hbm\"} }'");
  ASSERT_FALSE(named.empty());
  ASSERT_FALSE(overridden.empty());
  for (const auto& [name, value] : named) {
    if (name.find("wall_time") != std::string::npos) continue;
    EXPECT_EQ(value, overridden.at(name)) << name;
  }
  EXPECT_EQ(named.at("rank_classes"), 2);
  EXPECT_GT(named.at("tpot_ms_mean"), healthy.at("tpot_ms_mean"));
  EXPECT_EQ(named.at("node3_rendezvous_wait_ms_per_step"), 0);
  // The others wait for node 3 about as long as its HBM was away (30 us over 3 steps).
  const double waited_us = named.at("node0_rendezvous_wait_ms_per_step") * 3 * 1000;
  EXPECT_GT(waited_us, 15);
  EXPECT_LE(waited_us, 30.5);
}

TEST_F(EveryRank, BadConfigsExitTwoNamingTheField) {
  auto bad = [&](const std::string& cmd, const std::string& field) {
    const auto r = test::run_cmd(cmd + " --out " + (dir_ / "bad.h5").string());
    EXPECT_EQ(r.code, 2) << cmd;
    EXPECT_THAT(r.err, ::testing::HasSubstr(field)) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "bad.h5"));
  };
  // Overrides without every rank simulated.
  bad(base_ + slow3_, "system.pod.node_overrides");
  // A node outside the tensor-parallel ranks.
  bad(base_ + every_ +
          " --set 'system.pod.node_overrides[+]=name: \"x\" nodes: 9 system { components { name: "
          "\"hbm\" hbm { efficiency_fraction: 0.5 } } }'",
      "system.pod.node_overrides[x].nodes");
  // An override may not change the pod.
  bad(base_ + every_ +
          " --set 'system.pod.node_overrides[+]=name: \"p\" nodes: 1 system { pod { "
          "nodes: 4 } }'",
      "system.pod.node_overrides[p].system");
  // A node's system is checked as a system of its own.
  bad(base_ + every_ +
          " --set 'system.pod.node_overrides[+]=name: \"e\" nodes: 2 system { components { name: "
          "\"hbm\" hbm { efficiency_fraction: 2 } } }'",
      "system.pod.node_overrides[e].system.components[hbm].hbm.efficiency_fraction");
  // A node whose overridden address map cannot hold the model: named by its override.
  bad(base_ + every_ +
          " --set 'system.pod.node_overrides[+]=name: \"small\" nodes: 5 system { address_map { "
          "name: \"hbm\" size_bytes: 1000000000 } }'",
      "system.pod.node_overrides[small].workload");
  bad(base_ + " --set workload.parallelism.merge_identical_ranks=false",
      "workload.parallelism.merge_identical_ranks");
  // Every rank needs a pod; and runs without fast-forward.
  bad(test::tiersim_binary() + " run " + test::preset("hardware/h100_sxm.textproto") + " " +
          test::preset("models/llama3_70b.textproto") + " " +
          test::preset("studies/speed_70b_tp8.textproto") + every_ + " --quiet",
      "every rank simulated needs system.pod");
  bad(base_ + every_ + " --set run.fast_forward.every_steps=2", "run.fast_forward");
  // A fault on one node: with every rank simulated, on a node among them, named node[K].NAME
  // with NAME a memory of the node.
  const std::string f = " --set 'system={faults {name: \"f\" start_ps: 0 device_offline: ";
  bad(base_ + f + "\"node[3].hbm\"}}'", "system.faults[f].device_offline: a fault on one node");
  bad(base_ + every_ + f + "\"node[8].hbm\"}}'",
      "system.faults[f].device_offline: node 8 is not one of the simulated ranks");
  bad(base_ + every_ + f + "\"node[x].hbm\"}}'", "a node is named node[K].NAME");
  bad(base_ + every_ + f + "\"node[3].nothing\"}}'", "no component named \"nothing\"");
  // An override's faults are its own nodes': plain names.
  bad(base_ + every_ +
          " --set 'system.pod.node_overrides[+]=name: \"o\" nodes: 1 system { faults { name: "
          "\"g\" start_ps: 0 device_offline: \"node[0].hbm\" } }'",
      "system.pod.node_overrides[o].system.faults[g]");
  // Nodes drawing random kernel jitter draw their own streams: nothing to merge.
  bad(base_ + every_ + " --set software.kernel_jitter.uniform.max_ps=1000" +
          " --set workload.parallelism.merge_identical_ranks=true",
      "workload.parallelism.merge_identical_ranks");
  // More than a second per kernel.
  bad(base_ + " --set software.kernel_jitter.fixed_ps=2000000000000",
      "software.kernel_jitter.fixed_ps");
  // A node override's jitter is checked as the node's own, named by the override.
  bad(base_ + every_ +
          " --set 'system.pod.node_overrides[+]=name: \"j\" nodes: 3 kernel_jitter { uniform { "
          "min_ps: 10 max_ps: 5 } }'",
      "system.pod.node_overrides[j].kernel_jitter.uniform.max_ps");
  // A jitter with no distribution, and a uniform one upside down.
  bad(base_ + " --set 'software.kernel_jitter={}'", "software.kernel_jitter");
  bad(base_ + " --set software.kernel_jitter.uniform.min_ps=10" +
          " --set software.kernel_jitter.uniform.max_ps=5",
      "software.kernel_jitter.uniform.max_ps");
  // Expert-parallel ranks run their own experts: nothing to merge.
  bad(test::tiersim_binary() + " run" + ep8_files() + every_ +
          " --set workload.parallelism.merge_identical_ranks=true",
      "workload.parallelism.merge_identical_ranks");
  // Pipeline stages: only with every rank simulated, a node per stage and tensor-parallel rank,
  // at most a stage per layer and a micro-batch per sequence, a dense model, never merged.
  const std::string tp1 = every_ + " --set workload.parallelism.tensor_parallel=1";
  auto stages = [&](int n) {
    return tp1 + " --set workload.parallelism.pipeline_parallel=" + std::to_string(n);
  };
  bad(base_ + " --set workload.parallelism.tensor_parallel=1" +
          " --set workload.parallelism.pipeline_parallel=2",
      "workload.parallelism.pipeline_parallel");
  // Two stages of TP8 need 16 nodes.
  bad(base_ + every_ + " --set workload.parallelism.pipeline_parallel=2",
      "system.pod.nodes: the pipeline (stages x tensor-parallel ranks) group (16 ranks)");
  bad(base_ + stages(81), "workload.parallelism.pipeline_parallel");
  // Stages of TP4 across scale-out domains of 6: the second stage's group would straddle two
  // domains where the first's does not.
  bad(base_ + every_ + " --set workload.parallelism.pipeline_parallel=2" +
          " --set workload.parallelism.tensor_parallel=4 --set system.pod.nodes=12" +
          " --set system.pod+=@" + test::preset("pods/ib_ndr_rails.textproto") +
          " --set system.pod.scale_out.domain_nodes=6",
      "system.pod.scale_out.domain_nodes");
  bad(base_ + stages(9), "system.pod.nodes");
  bad(base_ + stages(2) + " --set workload.parallelism.pipeline_micro_batches=9",
      "workload.parallelism.pipeline_micro_batches");
  bad(base_ + " --set workload.parallelism.pipeline_micro_batches=2",
      "workload.parallelism.pipeline_micro_batches");
  bad(base_ + stages(2) + " --set workload.parallelism.merge_identical_ranks=true",
      "workload.parallelism.merge_identical_ranks");
  bad(base_ + stages(2) + " --set workload.decode.micro_batches=2",
      "workload.decode.micro_batches");
  bad(base_ + stages(2) + " --set workload.decode.sparse_attention.top_k_pages=8" +
          " --set workload.decode.sparse_attention.layer_similarity=0.5",
      "workload.decode.sparse_attention.layer_similarity");
  // Not yet: expert-parallel stages, a MoE prompt's routing per micro-batch.
  bad(test::tiersim_binary() + " run" + ep8_files() + every_ +
          " --set workload.parallelism.pipeline_parallel=2",
      "workload.parallelism.pipeline_parallel");
  bad(test::tiersim_binary() + " run" + ep8_files() + every_ +
          " --set workload.parallelism.expert_parallel=1 --set system.pod.nodes=8"
          " --set workload.parallelism.pipeline_parallel=2 --set workload.decode.prefill=true",
      "workload.decode.prefill");
}

// Pipeline stages of a MoE model (Mixtral 8x7B on H200s, batch 16, 4 steps): the step's routing
// is the whole model's, so stage 0's expert load is the one-node run's for its layers, exactly;
// a micro-batch of fewer tokens reads fewer distinct experts, so two micro-batches step faster
// than one.
TEST_F(EveryRank, PipelineStagesOfAMoeModelRouteAsOneNode) {
  const std::string files = test::preset("hardware/h200.textproto") + " " +
                            test::preset("models/mixtral_8x7b.textproto") + " " +
                            test::preset("software/cuda_events_per_kernel.textproto") + " " +
                            test::preset("studies/mixtral_8x7b.textproto") +
                            " --set workload.decode.decode_steps=4 --quiet";
  auto run = [&](const std::string& name, const std::string& sets) {
    return run_files(files, name, sets);
  };
  const std::string one = run("moe_one", "");
  const std::string m1 =
      run("moe_m1", staged_ + " --set workload.parallelism.pipeline_micro_batches=1");
  const std::string m2 = run("moe_m2", staged_);
  const std::vector<double> load = ResultReader(one).read_doubles("/workload/moe/expert_load");
  ASSERT_EQ(load.size(), 32u * 8);
  for (const std::string& f : {m1, m2}) {
    const std::vector<double> stage0 = ResultReader(f).read_doubles("/workload/moe/expert_load");
    ASSERT_EQ(stage0.size(), load.size());
    for (size_t i = 0; i < load.size(); ++i)
      EXPECT_EQ(stage0[i], i < 16 * 8 ? load[i] : 0.0) << f << " " << i;
  }
  const auto s1 = summary_of(m1), s2 = summary_of(m2), so = summary_of(one);
  EXPECT_LT(s2.at("moe_active_experts_mean"), s1.at("moe_active_experts_mean"));
  EXPECT_LT(s2.at("pipeline_steady_tpot_ms"), 0.95 * s1.at("pipeline_steady_tpot_ms"));
  // One micro-batch: the one-node step plus the sends and their kernels (tens of microseconds).
  EXPECT_GT(s1.at("pipeline_steady_tpot_ms"), so.at("tpot_ms_p50"));
  EXPECT_LT(s1.at("pipeline_steady_tpot_ms"), so.at("tpot_ms_p50") + 0.05);
}

// Pipeline stages (pipeline_parallel): Llama-3-8B on H100s, batch 8, 4 steps; stage s is node[s]
// of the HGX pod. With one micro-batch, a step is the one-node step plus each stage's send on the
// pod and the send kernels' launch; with more, each stage streams its weights once per
// micro-batch and the stages overlap.
TEST_F(EveryRank, PipelineStagesPassTheirMicroBatchesOn) {
  const std::string files = test::preset("hardware/h100_sxm.textproto") + " " +
                            test::preset("models/llama3_8b.textproto") + " " +
                            test::preset("software/cuda_events_per_kernel.textproto") + " " +
                            test::preset("studies/speed_70b_tp8.textproto") +
                            " --set workload.parallelism.tensor_parallel=1"
                            " --set workload.decode.batch_size=8"
                            " --set workload.decode.decode_steps=4 --quiet";
  auto run = [&](const std::string& name, const std::string& sets) {
    return run_files(files, name, sets);
  };
  const std::string one = run("one", "");
  const std::string m1 =
      run("m1", staged_ + " --set workload.parallelism.pipeline_micro_batches=1");
  const std::string m2 = run("m2", staged_);  // the default: as many micro-batches as stages
  const std::string m4 =
      run("m4", staged_ + " --set workload.parallelism.pipeline_micro_batches=4");
  const ResultReader a(one), b(m1);
  const Table ta = a.read_table("/tokens"), tb = b.read_table("/tokens");
  ASSERT_EQ(ta.rows(), 4u);
  ASSERT_EQ(tb.rows(), 4u);
  auto step_ps = [](const Table& t, size_t s) {
    return double(t.find("end_ps")->u64[s] - t.find("start_ps")->u64[s]);
  };
  // Each send's time on the pod (launch latency and the flow), from the stages' own stats.
  auto per_send = [&](int node) {
    const std::string g = "/nodes/" + std::to_string(node) + "/stats/compute/";
    return b.read_doubles(g + "pipeline_send_time")[0] / b.read_doubles(g + "pipeline_sends")[0];
  };
  const double send0 = per_send(0), send1 = per_send(1);
  EXPECT_GT(send0, send1);  // 128 KiB of hidden states and residual against 64 bytes of tokens
  // A step is stage 0's layers, its send kernel (the H100 preset's 5 us per kernel), its send
  // on the pod, stage 1's layers, its send kernel and the loop-back to stage 0 (the receives are
  // launched while their stage waits, off the path). The stages' layers take the one-node step's
  // time, to the nanosecond. The first step has no loop-back before it; the last, no send after.
  const double kernel = 5e6;
  EXPECT_NEAR(step_ps(tb, 0) - step_ps(ta, 0), kernel + send0 + kernel, 1e3);
  for (size_t s = 1; s < 3; ++s)
    EXPECT_NEAR(step_ps(tb, s) - step_ps(ta, s), send1 + kernel + send0 + kernel, 1e3) << s;
  EXPECT_NEAR(step_ps(tb, 3) - step_ps(ta, 3), send1 + kernel + send0, 1e3);
  const auto s1 = summary_of(m1), s2 = summary_of(m2), s4 = summary_of(m4);
  // Node[0] (stage 0: half the layers and the embedding, the LM head on stage 1) works less than
  // half the run: idle while it waits for the loop-back and through the drain.
  const double active_share = s1.at("energy_j_static_compute_active") /
                              summary_of(one).at("energy_j_static_compute_active");
  EXPECT_GT(active_share, 0.4);
  EXPECT_LT(active_share, 0.5);
  // One micro-batch: each stage idles while the other runs, half the time.
  EXPECT_NEAR(s1.at("pipeline_bubble_fraction"), 0.5, 0.01);
  // Two and four: each stage streams its weights once per micro-batch and its sequences' KV
  // once per step, so node[0]'s HBM bytes per token are M x W + K: from one and two
  // micro-batches, four's follow (4W + K = 3 b2 - 2 b1). The stages overlap: the bubbles are
  // the fill and the drain.
  const double b1 = s1.at("hbm_bytes_per_token"), b2 = s2.at("hbm_bytes_per_token");
  EXPECT_GT(b2 - b1, 5 * (2 * b1 - b2));  // at batch 8 the weights dominate
  EXPECT_NEAR(s4.at("hbm_bytes_per_token"), 3 * b2 - 2 * b1, 1e-6 * b1);
  EXPECT_LT(s2.at("pipeline_bubble_fraction"), 0.15);
  EXPECT_LT(s4.at("pipeline_bubble_fraction"), s2.at("pipeline_bubble_fraction"));
  // In steady state a step streams each stage's weights M times, one stage after the other with
  // one micro-batch, both stages at once with two: the same time (a few more kernels); four
  // stream them twice as often. Two and four pay a fill on the first step, one does not.
  const double steady1 = s1.at("pipeline_steady_tpot_ms"),
               steady2 = s2.at("pipeline_steady_tpot_ms");
  EXPECT_NEAR(steady2 / steady1, 1.0, 0.01);
  EXPECT_GT(s4.at("pipeline_steady_tpot_ms"), 1.9 * steady2);
  EXPECT_NEAR(s1.at("pipeline_fill_ms"), 0, 0.01);
  EXPECT_GT(s2.at("pipeline_fill_ms"), 0.4 * steady2);
  EXPECT_GT(s2.at("tpot_ms_mean"), steady2);
  // The pod's step is the last stage's.
  EXPECT_EQ(s4.at("node1_step_ms_mean"), s4.at("tpot_ms_mean"));
  EXPECT_EQ(s4.at("ranks_simulated"), 2);

  // Two tensor-parallel ranks a stage (node s x 2 + r): each rank sends its half of the hidden
  // states and residual to its peer, and the next stage all-gathers them. One micro-batch: the
  // TP2 step plus the sends, the two send kernels and the all-gather (a kernel and its time).
  const std::string tp2 = " --set workload.parallelism.tensor_parallel=2";
  const auto one_tp2 =
      summary_of(run("one_tp2", " " + test::preset("pods/hgx_h100_nvswitch.textproto") + tp2));
  const std::string m1_tp2 =
      run("m1_tp2", staged_ + tp2 + " --set workload.parallelism.pipeline_micro_batches=1");
  const auto st = summary_of(m1_tp2);
  const ResultReader c(m1_tp2);
  auto stat = [&](int node, const std::string& name) {
    return c.read_doubles("/nodes/" + std::to_string(node) + "/stats/compute/" + name)[0];
  };
  EXPECT_EQ(st.at("ranks_simulated"), 4);
  EXPECT_EQ(stat(0, "pipeline_send_bytes"), 4 * 2 * 4096 * 8.0 * 2 / 2);  // half of 128 KiB
  EXPECT_EQ(stat(3, "pipeline_send_bytes"), 3 * 8 * 8.0);  // no loop-back after the last step
  const double sends_ps = stat(0, "pipeline_send_time") / 4 + stat(2, "pipeline_send_time") / 3;
  const double extra_ps = (st.at("tpot_ms_mean") - one_tp2.at("tpot_ms_mean")) * 1e9;
  // Per step on average: the sends (the first step has no loop-back, the last no send back),
  // the send kernels and the all-gather's kernel, plus the all-gather of 64 KiB on NVSwitch.
  EXPECT_GT(extra_ps, sends_ps + 3 * kernel - 6e6);
  EXPECT_LT(extra_ps, sends_ps + 3 * kernel + 10e6);
  // The stages' collectives meet apart: with node 3 (stage 1) slow, node 2 waits for it at its
  // all-reduces, stage 0 never does (it waits for its micro-batches instead).
  const auto slow = summary_of(run(
      "slow_tp2", staged_ + tp2 + " --set workload.parallelism.pipeline_micro_batches=1" + slow3_));
  EXPECT_GT(slow.at("node2_rendezvous_wait_ms_per_step"), 0.1);
  EXPECT_EQ(slow.at("node3_rendezvous_wait_ms_per_step"), 0);
  EXPECT_EQ(slow.at("node0_rendezvous_wait_ms_per_step"), 0);
  EXPECT_EQ(slow.at("node1_rendezvous_wait_ms_per_step"), 0);
  EXPECT_GT(slow.at("node0_pipeline_wait_ms_per_step"), st.at("node0_pipeline_wait_ms_per_step"));
  EXPECT_GT(slow.at("tpot_ms_mean"), st.at("tpot_ms_mean") + 1.0);
}

}  // namespace
}  // namespace tiersim
