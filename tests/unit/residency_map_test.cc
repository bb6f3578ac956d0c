// The controller's residency map: hits cost the lookup, misses the software path and install
// the entry; least recently used entries leave a full map; a cyclic stream of more objects than
// entries misses every time, one that fits hits after its first pass.
#include "accelerators/policies/residency_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "models/core/rng.h"

namespace tiersim {
namespace {

ResidencyMapParams params(uint32_t entries) {
  ResidencyMapParams p;
  p.entries = entries;
  p.lookup_latency_ps = 1000;
  p.software_latency_ps = 20'000'000;
  return p;
}

TEST(ResidencyMap, HitCostsTheLookupMissTheSoftwarePath) {
  ResidencyMap m(params(4));
  EXPECT_EQ(m.lookup(7, Tier::kHbm), 20'000'000u);
  EXPECT_EQ(m.lookup(7, Tier::kHbm), 1000u);
  ASSERT_NE(m.find(7), nullptr);
  EXPECT_EQ(m.find(7)->state, ResidencyMap::TransferState::kInflight);
  m.complete(7, true);
  EXPECT_EQ(m.find(7)->state, ResidencyMap::TransferState::kIdle);
  m.complete(7, false);
  EXPECT_EQ(m.find(7)->state, ResidencyMap::TransferState::kFailed);
  EXPECT_EQ(m.find(7)->hotness, 1u);
  EXPECT_EQ(m.hits(), 1u);
  EXPECT_EQ(m.misses(), 1u);
  // 4 entries x 141 bits = 564 bits = 71 bytes.
  EXPECT_EQ(m.sram_bytes(), 71u);
}

TEST(ResidencyMap, CyclicStreamsFitOrThrash) {
  for (uint32_t objects : {8u, 9u}) {
    ResidencyMap m(params(8));
    for (int pass = 0; pass < 10; ++pass)
      for (uint64_t o = 0; o < objects; ++o)
        m.lookup(o, Tier::kHbm);
    if (objects == 8) {
      EXPECT_EQ(m.misses(), 8u);  // the first pass only
      EXPECT_EQ(m.hits(), 72u);
    } else {
      EXPECT_EQ(m.misses(), 90u);  // LRU on a cycle one longer than the map: every lookup
      EXPECT_EQ(m.hits(), 0u);
    }
    EXPECT_EQ(m.occupancy(), 8u);
  }
}

// Against a reference LRU over random streams: the same hits, misses and contents.
TEST(ResidencyMap, RandomStreamsMatchAReferenceLru) {
  Rng rng(11);
  ResidencyMap m(params(16));
  std::vector<uint64_t> ref;  // most recent first
  uint64_t hits = 0;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t o = rng.below(40);
    m.lookup(o, Tier::kHbm);
    auto it = std::find(ref.begin(), ref.end(), o);
    if (it != ref.end()) {
      ++hits;
      ref.erase(it);
    } else if (ref.size() == 16) {
      ref.pop_back();
    }
    ref.insert(ref.begin(), o);
    ASSERT_EQ(m.occupancy(), ref.size());
  }
  EXPECT_EQ(m.hits(), hits);
  for (uint64_t o : ref)
    EXPECT_NE(m.find(o), nullptr);
}

TEST(ResidencyMap, NoEntriesIsTheSoftwarePathAlways) {
  ResidencyMap m(params(0));
  EXPECT_EQ(m.lookup(1, Tier::kHbm), 20'000'000u);
  EXPECT_EQ(m.lookup(1, Tier::kHbm), 20'000'000u);
  EXPECT_EQ(m.occupancy(), 0u);
}

}  // namespace
}  // namespace tiersim
