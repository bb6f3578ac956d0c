// The system's link graph (plain C++): nodes are component names, directed edges are
// system.links (requests flow from `from` to `to`; responses retrace them). Routing is by
// destination: the links leaving a node that lie on a shortest path (fewest links) to the
// target, ties broken by config order, so routes are deterministic. Initiators and switches
// route every request by the target the system address map names.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace tiersim {

class Topology {
 public:
  struct Edge {
    std::string name, from, to;
  };
  static constexpr size_t kUnreachable = SIZE_MAX;

  // Adds a link; its index is the order of the calls.
  void add_link(const std::string& name, const std::string& from, const std::string& to);
  const std::vector<Edge>& links() const { return edges_; }

  // Links from `node` that start a shortest remaining path to `target`, best first (remaining
  // hops, then config order). The first is the route; the others are alternatives when it
  // fails. Empty when `target` is unreachable from `node`.
  std::vector<size_t> next_links(const std::string& node, const std::string& target) const;
  // Links on the route (first choices) from `from` to `target`; empty if unreachable.
  std::vector<size_t> route(const std::string& from, const std::string& target) const;
  // Hops from `node` to `target` (kUnreachable if none; 0 when they are the same).
  size_t distance(const std::string& node, const std::string& target) const;
  bool reachable(const std::string& from, const std::string& target) const {
    return distance(from, target) != kUnreachable;
  }

 private:
  // Hops to `target` from every node that reaches it (BFS over reversed edges), memoised.
  const std::map<std::string, size_t>& distances_to(const std::string& target) const;

  std::vector<Edge> edges_;
  std::map<std::string, std::vector<size_t>> out_;  // node -> edge indices, config order
  mutable std::map<std::string, std::map<std::string, size_t>> dist_;
};

}  // namespace tiersim
