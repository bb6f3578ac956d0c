// The movement controller's plain-C++ parts without a run: the placement planner (splits, the
// middle tier, whole objects, layers and the staging slot, wired residency, the precision
// guardrail), the recompute-vs-transfer arbiter, a controller's busy time and its telemetry
// reads' waits on a PCIe link, every figure by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "accelerators/orchestration/controller_parts.h"
#include "accelerators/orchestration/planner.h"
#include "accelerators/orchestration/restore_arbiter.h"

namespace tiersim {
namespace {

using Where = PlannedObject::Where;

constexpr uint64_t kMiB = 1 << 20;

ObjectIntent dense() {
  ObjectIntent in;
  in.uses_per_step = 1;
  in.confidence = 1;
  return in;
}

// Two decoder layers of two weights each (10 MiB + 4,000 bytes, 3 MiB), an embedding, a final
// norm outside the layers, a KV cache and an activation.
ObjectTable model() {
  ObjectTable t;
  t.add("emb", ObjectClass::kEmbedding, 8 * kMiB, LayerId(), dense());
  for (uint32_t l = 0; l < 2; ++l) {
    t.add("l" + std::to_string(l) + ".big", ObjectClass::kWeight, 10 * kMiB + 4000, LayerId(l),
          dense());
    t.add("l" + std::to_string(l) + ".small", ObjectClass::kWeight, 3 * kMiB, LayerId(l), dense());
  }
  t.add("final_norm", ObjectClass::kWeight, 16384, LayerId(), dense());
  t.add("kv", ObjectClass::kKvCache, 64 * kMiB, LayerId(0), dense());
  t.add("act", ObjectClass::kActivation, kMiB);
  return t;
}

OrchestrationParams base_params() {
  OrchestrationParams p;
  p.fast_memory = "hbm";
  p.resident_fraction = 0.5;
  p.prefetch_layers = 1;
  return p;
}

TEST(PlacementPlanner, SplitsWeightsIntoWholePagesAndListsHomePartsPerLayer) {
  const ObjectTable t = model();
  OrchestrationParams p = base_params();
  p.kv_resident = false;
  const PlacementPlan plan = plan_placement(t, p, 16, 0);
  // Embedding whole in the fast memory; KV at home (kv_resident off); activation the engine's.
  EXPECT_EQ(plan.objects[0].where, Where::kFast);
  EXPECT_EQ(plan.objects[6].where, Where::kHome);
  EXPECT_EQ(plan.objects[7].where, Where::kHome);
  // 10 MiB + 4000 bytes: half is 5 MiB + 2000, rounded down to whole 4 KiB pages: 5 MiB.
  const PlannedObject& big = plan.objects[1];
  EXPECT_EQ(big.where, Where::kSplit);
  EXPECT_EQ(big.resident_bytes, 5 * kMiB);
  EXPECT_EQ(big.resident_stored_bytes, 5 * kMiB);
  // ... and its home part is prefetched with its layer.
  ASSERT_FALSE(plan.layer_objects[0].empty());
  EXPECT_EQ(plan.layer_objects[0][0].value(), 1u);
  EXPECT_EQ(plan.objects[2].resident_bytes, 3 * kMiB / 2);
  // The final norm (16 KiB: 8 KiB resident) is the virtual last layer, index 2.
  EXPECT_EQ(plan.layers, 2u);
  ASSERT_EQ(plan.layer_objects.size(), 3u);
  EXPECT_EQ(plan.layer_objects[0].size(), 2u);
  EXPECT_EQ(plan.layer_objects[2].size(), 1u);
  EXPECT_EQ(plan.layer_objects[2][0].value(), 5u);
  // The largest layer's home bytes: (10 MiB + 4000 - 5 MiB) + 1.5 MiB = 6.5 MiB + 4000, in
  // whole pages: 6.5 MiB + 4096.
  EXPECT_EQ(plan.slot_bytes, 13 * kMiB / 2 + 4096);
  // Resident parts as stored: 2 x (5 MiB + 1.5 MiB) + 8 KiB.
  EXPECT_EQ(plan.resident_stored_bytes, 13 * kMiB + 8192);
}

TEST(PlacementPlanner, MiddleTierTakesTheNextShareAndWholeResidentWeightsAreNotPrefetched) {
  const ObjectTable t = model();
  OrchestrationParams p = base_params();
  p.tier_memory = "ddr";
  p.tier_fraction = 0.25;
  PlacementPlan plan = plan_placement(t, p, 16, 0);
  // A quarter of 10 MiB + 4000 bytes in whole pages: 2.5 MiB.
  EXPECT_EQ(plan.objects[1].tier_bytes, 5 * kMiB / 2);
  EXPECT_EQ(plan.objects[6].where, Where::kFast);  // kv_resident (default)
  // resident + tier = 1: everything past the resident part is in the tier.
  p.tier_fraction = 0.5;
  plan = plan_placement(t, p, 16, 0);
  EXPECT_EQ(plan.objects[1].tier_bytes, 10 * kMiB + 4000 - 5 * kMiB);
  // Everything resident: weights whole in the fast memory, nothing to prefetch.
  p.resident_fraction = 1;
  p.tier_memory.clear();
  plan = plan_placement(t, p, 16, 0);
  EXPECT_EQ(plan.objects[1].where, Where::kFast);
  EXPECT_EQ(plan.slot_bytes, 0u);
  for (const auto& layer : plan.layer_objects)
    EXPECT_TRUE(layer.empty());
}

TEST(PlacementPlanner, WiredArbiterBindsWithinQuotaAndRoom) {
  const ObjectTable t = model();
  OrchestrationParams p = base_params();
  p.wired_memory = "sram";
  p.wired_quota_bytes = 64 * kMiB;
  // Room for 4 MiB: only objects of at most 4 MiB (in 4 KiB lines) fit: the small weights go
  // first by score (each saves its own size per step; ties in config order), then the norm.
  PlacementPlan plan = plan_placement(t, p, 16, 4 * kMiB);
  ASSERT_EQ(plan.wired.size(), 2u);
  EXPECT_EQ(plan.wired[0].value(), 2u);
  EXPECT_EQ(plan.wired[1].value(), 5u);
  EXPECT_EQ(plan.objects[2].where, Where::kWired);
  EXPECT_DOUBLE_EQ(plan.wired_saved_bytes_per_step, 3.0 * kMiB + 16384);
  // A wired weight is neither split nor prefetched.
  EXPECT_EQ(plan.layer_objects[0].size(), 1u);
  // The quota bounds it when the room does not.
  p.wired_quota_bytes = 3 * kMiB;
  plan = plan_placement(t, p, 16, 1ULL << 40);
  EXPECT_EQ(plan.wired.size(), 1u);
}

TEST(PlacementPlanner, PrecisionGuardrailLowersInAscendingSensitivityWithinTheBudget) {
  const ObjectTable t = model();
  OrchestrationParams p = base_params();
  p.precision.set_dtype(config::INT4);
  auto* s = p.precision.add_sensitivity();
  s->set_prefix("l0.");
  s->set_value(4);
  // Byte shares are resident_fraction of each weight (not rounded to pages): 5 MiB + 2000 and
  // 1.5 MiB per layer, 8 KiB of the norm; INT4's step 2^-4.
  const double total = 13.0 * kMiB + 4000 + 8192;
  const double l1 = (5.0 * kMiB + 2000 + 1.5 * kMiB) / total / 16;  // layer 1, sensitivity 1
  const double norm = 8192.0 / total / 16;
  // A budget that affords layer 1 and the norm, not layer 0 (4 x as sensitive).
  p.precision.set_quality_budget(l1 + norm + 1e-9);
  const PlacementPlan plan = plan_placement(t, p, 16, 0);
  EXPECT_EQ(plan.lowered.size(), 3u);
  EXPECT_EQ(plan.precision_vetoes, 2u);
  EXPECT_NEAR(plan.quality_proxy, l1 + norm, 1e-12);
  EXPECT_DOUBLE_EQ(plan.low_scale, 0.25);
  // Dequantisation: 2 FLOPs per element by default, over 2 bytes per BF16 element.
  EXPECT_DOUBLE_EQ(plan.dequant_flops_per_byte, 1.0);
  // A lowered resident part stores a quarter of its bytes; layer 0 keeps full precision.
  EXPECT_DOUBLE_EQ(plan.objects[3].scale, 0.25);
  EXPECT_EQ(plan.objects[3].resident_stored_bytes, 5 * kMiB / 4);
  EXPECT_DOUBLE_EQ(plan.objects[1].scale, 1.0);
  EXPECT_EQ(plan.resident_stored_bytes,
            2 * (5 * kMiB + 3 * kMiB / 2) - (5 * kMiB + 3 * kMiB / 2) * 3 / 4 + 8192 / 4);
}

TEST(RestoreArbiter, PicksTheCheaperPathOnceTheRateIsKnown) {
  ObjectInfo kv;
  kv.recompute_flops_per_byte = 100;
  // No rate yet: ARBITRATE transfers.
  RestoreArbiter a(config::KV_RESTORE_ARBITRATE, 0);
  EXPECT_FALSE(a.restore_by_recompute(kv, 1000, 500, 1e12));
  // 1 GB/s observed (observations under 1 MiB are ignored): transfer 1 MB takes 1 ms;
  // recompute reads 0.5 MB (0.5 ms) and computes 1e8 FLOPs at 1e12/s (0.1 ms): recompute.
  a.observe_home_rate(1000, 1000);
  EXPECT_EQ(a.path_bytes_per_s(), 0.0);
  a.observe_home_rate(1ULL << 30, 1'073'741'824'000ULL);
  EXPECT_NEAR(a.path_bytes_per_s(), 1e9, 1e-3);
  EXPECT_TRUE(a.restore_by_recompute(kv, 1'000'000, 500'000, 1e12));
  // At 1e10 FLOP/s the arithmetic takes 10 ms: transfer.
  EXPECT_FALSE(a.restore_by_recompute(kv, 1'000'000, 500'000, 1e10));
  EXPECT_EQ(a.recomputed_bytes(), 1'000'000u);
  EXPECT_EQ(a.transferred_bytes(), 1'001'000u);
  EXPECT_EQ(a.hidden_bytes_read(), 500'000u);
  EXPECT_DOUBLE_EQ(a.recompute_flops(), 1e8);
  // A second observation averages with the first.
  a.observe_home_rate(1ULL << 30, 1'073'741'824'000ULL / 3);
  EXPECT_NEAR(a.path_bytes_per_s(), 2e9, 1e3);
  // RECOMPUTE always recomputes; TRANSFER never does.
  RestoreArbiter r(config::KV_RESTORE_RECOMPUTE, 0), x(config::KV_RESTORE_TRANSFER, 1e12);
  EXPECT_TRUE(r.restore_by_recompute(kv, 10, 5, 1));
  EXPECT_FALSE(x.restore_by_recompute(kv, 10, 5, 1e30));
}

// A controller's busy server-time up to a moment: decisions back to back from 0 (0-10, 10-30),
// and one asked at 30 whose trigger is at 50 (50-60), leaving an idle gap at 30-50. Inside the
// gap the busy time is 30, not 30 less the time until the queued decision ends.
TEST(BusyLedger, CountsEachDecisionsOverlapWithTheWindow) {
  BusyLedger b;
  b.add(0, 10, 0);
  b.add(10, 20, 0);
  EXPECT_EQ(b.busy_until(5), 5u);
  EXPECT_EQ(b.busy_until(25), 25u);
  b.add(50, 10, 30);
  EXPECT_EQ(b.busy_until(30), 30u);
  EXPECT_EQ(b.busy_until(40), 30u);
  EXPECT_EQ(b.busy_until(55), 35u);
  EXPECT_EQ(b.busy_until(100), 40u);
  EXPECT_EQ(b.total(), 40u);
  // Folded decisions stay counted; a pipelined server's overlapping slots each count.
  b.add(70, 5, 70);
  b.add(72, 5, 70);
  EXPECT_EQ(b.busy_until(74), 40u + 4 + 2);
  EXPECT_EQ(b.busy_until(1000), 50u);
  EXPECT_THROW(b.busy_until(69), std::logic_error);
  EXPECT_THROW(b.add(80, 1, 60), std::logic_error);
  // A decision of no occupancy adds nothing.
  b.add(90, 0, 90);
  EXPECT_EQ(b.busy_until(1000), 50u);
}

// A link of 1 byte per ns (8 Gb/s on one lane, no encoding or link-layer loss, no latency):
// n bytes serialise in n ns; 256-byte packets, 16-byte messages.
LinkModel byte_per_ns_link() {
  LinkParams p;
  p.lanes = 1;
  p.lane_rate_gbps = 8;
  return LinkModel(p, 1);
}

// A host loop of 2 reads of 1 us, 7 us between them and its doorbell, 1 doorbell of 0.5 us.
ControllerFigures two_reads_one_doorbell() {
  ControllerFigures f;
  f.pcie_link = "pcie";
  f.telemetry_reads = 2;
  f.read_round_trip_ps = 1'000'000;
  f.doorbell_writes = 1;
  f.doorbell_write_ps = 500'000;
  f.between_ps = 7'000'000;
  f.decision_latency_ps = 2 * 1'000'000 + 7'000'000 + 500'000;
  return f;
}

// PCIe ordering, by hand (times in ns from the reads' start at 0):
// - idle link: nothing added;
// - 10,000 bytes of posted writes leaving the accelerator from 0 (sent at 10,000): read 1's
//   completion leaves at 500 and waits 9,500; read 1 is back at 10,500, read 2's completion
//   leaves at 11,000 and waits nothing; the doorbell (at 18,500) waits nothing;
// - 1,000 read requests (16,000 bytes of messages) leaving: a completion passes them, nothing;
// - 10,000 bytes of completions entering from 0 (busy to 10,000): each header-slot packet waits
//   for the data packet on the wire, 256: reads at 0 and 1,256 and the doorbell at 9,512 each
//   wait 256;
// - 100 messages entering (the DMA's write acknowledgements; busy to 1,600): a request passes
//   them too, waiting for the packet on the wire: reads at 0 and 1,256 wait 256 each, the
//   doorbell (at 9,512) nothing;
// - either direction down for good: each read times out, 50 ms from its issue (its waits 50 ms
//   less the 1,000 ns round trip); a doorbell the link never carries is lost after 50 ms.
TEST(PcieControl, ReadsAndDoorbellsWaitAsPcieOrdersThem) {
  const ControllerFigures f = two_reads_one_doorbell();
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    const PcieControlWaits w = pcie_control_waits(f, {&in, &out}, 0);
    EXPECT_EQ(w.reads_ps, 0u);
    EXPECT_EQ(w.doorbells_ps, 0u);
  }
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    EXPECT_EQ(out.transfer(0, 10'000), 10'000'000u);
    EXPECT_EQ(out.data_sent_ps(), 10'000'000u);
    const PcieControlWaits w = pcie_control_waits(f, {&in, &out}, 0);
    EXPECT_EQ(w.reads_ps, 9'500'000u);
    EXPECT_EQ(w.doorbells_ps, 0u);
    // Read later: the writes have drained.
    EXPECT_EQ(pcie_control_waits(f, {&in, &out}, 9'500'000).reads_ps, 0u);
    EXPECT_EQ(pcie_control_waits(f, {&in, &out}, 9'000'000).reads_ps, 500'000u);
  }
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    out.message(0, 1000);
    EXPECT_EQ(out.busy_until_ps(), 16'000'000u);
    EXPECT_EQ(out.data_sent_ps(), 0u);
    EXPECT_EQ(pcie_control_waits(f, {&in, &out}, 0).reads_ps, 0u);
  }
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    in.transfer(0, 10'000);
    const PcieControlWaits w = pcie_control_waits(f, {&in, &out}, 0);
    EXPECT_EQ(w.reads_ps, 2 * 256'000u);
    EXPECT_EQ(w.doorbells_ps, 256'000u);
  }
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    in.message(0, 100);
    const PcieControlWaits w = pcie_control_waits(f, {&in, &out}, 0);
    EXPECT_EQ(w.reads_ps, 2 * 256'000u);
    EXPECT_EQ(w.doorbells_ps, 0u);
  }
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    out.add_outage(0, LinkModel::kNever, 0);
    const PcieControlWaits w = pcie_control_waits(f, {&in, &out}, 0);
    EXPECT_EQ(w.reads_ps, 2 * (kPcieCompletionTimeoutPs - 1'000'000u));
    EXPECT_EQ(w.doorbells_ps, 0u);
  }
  {
    // Toward the accelerator down for good: the requests time out, and the doorbell is lost.
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    in.add_outage(0, LinkModel::kNever, 0);
    const PcieControlWaits w = pcie_control_waits(f, {&in, &out}, 0);
    EXPECT_EQ(w.reads_ps, 2 * (kPcieCompletionTimeoutPs - 1'000'000u));
    EXPECT_EQ(w.doorbells_ps, kPcieCompletionTimeoutPs);
  }
}

// A posted queue of 1,000 bytes bounds what a completion waits for: of the 10,000 bytes of
// writes, read 1's completion (at 500 ns) waits 1,000 ns; read 1 is back at 2,000, read 2's
// completion (at 2,500) waits 1,000 again. A doorbell (at 9,000 ns) finds the link toward the
// accelerator down until 200 ms: posted, it waits for it, beyond the completion timeout; down for
// good, it is taken as lost after the timeout.
TEST(PcieControl, APostedQueueBoundsTheWaitAndDoorbellsWaitForTheLink) {
  ControllerFigures f = two_reads_one_doorbell();
  f.posted_queue_bytes = 1'000;
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    out.transfer(0, 10'000);
    EXPECT_EQ(pcie_control_waits(f, {&in, &out}, 0).reads_ps, 2'000'000u);
  }
  f.posted_queue_bytes = 0;
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    in.add_outage(9'000'000, 200'000'000'000, 0);
    const PcieControlWaits w = pcie_control_waits(f, {&in, &out}, 0);
    EXPECT_EQ(w.reads_ps, 0u);
    EXPECT_EQ(w.doorbells_ps, 200'000'000'000u - 9'000'000u);
  }
  {
    LinkModel in = byte_per_ns_link(), out = byte_per_ns_link();
    in.add_outage(9'000'000, LinkModel::kNever, 0);
    EXPECT_EQ(pcie_control_waits(f, {&in, &out}, 0).doorbells_ps, kPcieCompletionTimeoutPs);
  }
}

// The figures a host loop's parts give keep the reads and doorbells apart from the rest.
TEST(PcieControl, HostLoopFiguresSplitTheReadsFromTheRest) {
  config::ControllerParts parts;
  auto* h = parts.mutable_host_loop();
  h->set_cores(1);
  h->set_core_ghz(3);
  h->set_instructions_per_cycle(1);
  h->set_instructions_per_decision(30'000);  // 10 us
  h->set_telemetry_reads(3);
  h->set_pcie_read_round_trip_ps(1'000'000);
  h->set_syscall_ps(2'000'000);
  h->set_doorbell_writes(2);
  h->set_doorbell_write_ps(500'000);
  h->set_interrupt_ps(1);
  h->set_pcie_link("pcie");
  const ControllerFigures f = controller_figures(parts);
  EXPECT_EQ(f.decision_latency_ps, 3'000'000u + 10'000'000u + 2'000'000u + 1'000'000u);
  EXPECT_EQ(f.between_ps, 12'000'000u);
  EXPECT_EQ(f.telemetry_reads, 3u);
  EXPECT_EQ(f.doorbell_writes, 2u);
  EXPECT_EQ(f.pcie_link, "pcie");
}

}  // namespace
}  // namespace tiersim
