#include "fabric/topology.h"

#include <algorithm>
#include <deque>

namespace tiersim {

void Topology::add_link(const std::string& name, const std::string& from, const std::string& to) {
  out_[from].push_back(edges_.size());
  edges_.push_back({name, from, to});
  dist_.clear();
}

const std::map<std::string, size_t>& Topology::distances_to(const std::string& target) const {
  auto it = dist_.find(target);
  if (it != dist_.end()) return it->second;
  std::map<std::string, size_t>& d = dist_[target];
  d[target] = 0;
  std::deque<std::string> queue{target};
  while (!queue.empty()) {
    const std::string node = queue.front();
    queue.pop_front();
    for (const Edge& e : edges_) {
      if (e.to != node || d.count(e.from)) continue;
      d[e.from] = d[node] + 1;
      queue.push_back(e.from);
    }
  }
  return d;
}

size_t Topology::distance(const std::string& node, const std::string& target) const {
  const auto& d = distances_to(target);
  auto it = d.find(node);
  return it == d.end() ? kUnreachable : it->second;
}

std::vector<size_t> Topology::next_links(const std::string& node, const std::string& target) const {
  std::vector<std::pair<size_t, size_t>> ranked;  // (remaining hops, edge)
  auto it = out_.find(node);
  if (it == out_.end()) return {};
  const auto& d = distances_to(target);
  for (size_t e : it->second) {
    auto dt = d.find(edges_[e].to);
    if (dt != d.end()) ranked.push_back({dt->second, e});
  }
  std::stable_sort(ranked.begin(), ranked.end());
  std::vector<size_t> out;
  for (const auto& r : ranked)
    out.push_back(r.second);
  return out;
}

std::vector<size_t> Topology::route(const std::string& from, const std::string& target) const {
  std::vector<size_t> path;
  std::string at = from;
  while (at != target) {
    const auto next = next_links(at, target);
    if (next.empty() || path.size() > edges_.size()) return {};
    path.push_back(next.front());
    at = edges_[next.front()].to;
  }
  return path;
}

}  // namespace tiersim
