// Routing over the link graph: shortest paths, ties by config order, alternatives ranked by
// remaining hops, unreachable targets.
#include "fabric/topology.h"

#include <gtest/gtest.h>

namespace tiersim {
namespace {

// dma -> a -> mem (2 hops), dma -> b -> c -> mem (3 hops), dma -> d -> mem (2 hops, later).
Topology diamond() {
  Topology t;
  t.add_link("dma_a", "dma", "a");
  t.add_link("dma_b", "dma", "b");
  t.add_link("a_mem", "a", "mem");
  t.add_link("b_c", "b", "c");
  t.add_link("c_mem", "c", "mem");
  t.add_link("dma_d", "dma", "d");
  t.add_link("d_mem", "d", "mem");
  return t;
}

TEST(Topology, ShortestPathWithTiesInConfigOrder) {
  const Topology t = diamond();
  EXPECT_EQ(t.distance("dma", "mem"), 2u);
  EXPECT_EQ(t.distance("b", "mem"), 2u);
  EXPECT_EQ(t.distance("mem", "mem"), 0u);
  const auto route = t.route("dma", "mem");
  ASSERT_EQ(route.size(), 2u);
  EXPECT_EQ(t.links()[route[0]].name, "dma_a");  // dma_d ties; dma_a comes first
  EXPECT_EQ(t.links()[route[1]].name, "a_mem");
  // Alternatives from dma: a (1 hop left), d (1 hop left, later), b (2 hops left).
  const auto next = t.next_links("dma", "mem");
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(t.links()[next[0]].name, "dma_a");
  EXPECT_EQ(t.links()[next[1]].name, "dma_d");
  EXPECT_EQ(t.links()[next[2]].name, "dma_b");
}

TEST(Topology, UnreachableTargetsHaveNoRoute) {
  const Topology t = diamond();
  EXPECT_FALSE(t.reachable("mem", "dma"));  // links are directed
  EXPECT_FALSE(t.reachable("a", "c"));
  EXPECT_TRUE(t.route("a", "c").empty());
  EXPECT_TRUE(t.next_links("a", "c").empty());
  EXPECT_TRUE(t.next_links("nowhere", "mem").empty());
}

}  // namespace
}  // namespace tiersim
