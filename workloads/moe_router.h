// MoE routing: which `top_k` distinct experts each sequence's token uses in each MoE layer at
// each decode step. Plain C++: unit-tested for its load statistics.
//
// SyntheticRouter (see SyntheticRouting in the schema):
// - Popularity: the expert of rank r (0-based) gets a share p_r of all token-to-expert
//   assignments, p_r proportional to (r + 1)^-zipf, capped at 1/k by water-filling (no expert
//   can take more than one of a token's k slots). Each layer ranks experts in its own order,
//   drawn from a stream seeded by (seed, layer, phase), so layers have different hot experts.
// - A token's k experts are drawn by systematic sampling: the experts are laid out in a random
//   order as intervals of length k * p_e on [0, k), and a uniform u in [0, 1) picks the experts
//   under u, u + 1, ..., u + k - 1. Every interval is at most 1 long, so the k picks are
//   distinct and expert e is picked with probability exactly k * p_e: the load shares equal the
//   configured (capped) skew. Eight layouts per layer and phase, one chosen per token, vary which
//   experts are picked together.
// - Temporal locality: with probability `stickiness` a token keeps its previous step's experts
//   in that layer (transition matrix stickiness * I + (1 - stickiness) * popularity; the load
//   shares are unchanged).
// - Phase shifts: every `phase_steps` steps each layer draws a new popularity order.
//
// TraceRouter replays a CSV routing trace (format in the schema's MoeRouting.trace).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "configs/tiersim.pb.h"
#include "models/config/errors.h"
#include "models/core/rng.h"

namespace tiersim {

class Router {
 public:
  virtual ~Router() = default;
  // Fills experts[s * k + j] (j < k) for each token s < tokens of MoE layer `moe_layer`
  // (0 = the first MoE layer) at `step`; `tokens` is at most the router's batch. Called in
  // program order; must not allocate.
  virtual void route(uint32_t step, uint32_t moe_layer, uint32_t tokens, uint16_t* experts) = 0;
  // The probability that `expert` of `moe_layer` receives at least one of `tokens` tokens in a
  // step (at the first phase), for the objects' intent records.
  virtual double use_probability(uint32_t moe_layer, uint16_t expert, uint32_t tokens) const = 0;
};

// Load shares by popularity rank: (r + 1)^-zipf normalised, capped at 1/k (water-filling).
std::vector<double> capped_zipf_shares(uint32_t experts, uint32_t k, double zipf);

struct SyntheticRouterParams {
  uint32_t experts = 0, top_k = 0, moe_layers = 0, batch = 0;  // batch: most tokens per call
  double zipf = 0, stickiness = 0;
  uint32_t phase_steps = 0;  // 0: one phase
  uint64_t seed = 0;
};

class SyntheticRouter : public Router {
 public:
  static constexpr uint32_t kLayouts = 8;
  explicit SyntheticRouter(const SyntheticRouterParams& p);
  void route(uint32_t step, uint32_t moe_layer, uint32_t tokens, uint16_t* experts) override;
  // 1 - (1 - k p_e)^tokens: each token picks the expert with probability k p_e.
  double use_probability(uint32_t moe_layer, uint16_t expert, uint32_t tokens) const override;

  const std::vector<double>& shares() const { return shares_; }
  // The expert at popularity rank r of a layer in its current phase.
  uint16_t expert_at_rank(uint32_t moe_layer, uint32_t rank) const {
    return layers_[moe_layer].by_rank[rank];
  }

 private:
  struct Layer {
    uint32_t phase = UINT32_MAX;
    std::vector<uint16_t> by_rank;   // popularity rank -> expert
    std::vector<uint16_t> layout;    // kLayouts x experts: interval order
    std::vector<double> ends;        // kLayouts x experts: cumulative k * share at each end
    std::vector<uint16_t> previous;  // batch x k: last step's picks
    uint32_t previous_tokens = 0;    // tokens the last call routed
  };
  void enter_phase(uint32_t moe_layer, uint32_t phase);
  // A popularity order (rank -> expert) drawn from `rng` (each layer and phase has its own).
  std::vector<uint16_t> ranking(Rng& rng) const;

  const SyntheticRouterParams p_;
  const std::vector<double> shares_;
  std::vector<Layer> layers_;
  Rng rng_;
  // use_probability's memo: each layer's first-phase rank of every expert (filled on demand).
  mutable std::vector<std::vector<uint16_t>> first_rank_;
};

// A recorded routing trace for a run of `steps` steps over `batch` sequences.
class TraceRouter : public Router {
 public:
  struct Shape {
    uint32_t steps = 0, batch = 0, experts = 0, top_k = 0;
    uint32_t layers = 0, first_moe_layer = 0;  // the model's MoE layers: [first, layers)
  };
  // Parses and checks the whole file; reports each problem at its line through `v` (field
  // `trace`) and returns nothing when any is found.
  static std::optional<TraceRouter> load(const std::string& path, const Shape& shape, Validator& v);
  void route(uint32_t step, uint32_t moe_layer, uint32_t tokens, uint16_t* experts) override;
  // The fraction of the trace's steps in which the expert is active.
  double use_probability(uint32_t moe_layer, uint16_t expert, uint32_t tokens) const override;

 private:
  Shape shape_;
  std::vector<uint16_t> experts_;       // [step][moe layer][sequence][k]
  std::vector<uint32_t> active_steps_;  // [moe layer][expert]
};

// Where expert parallelism puts each routed expert's copies: `ranks` ranks of `slots` slots each
// (ranks x slots = experts + redundant copies).
// - contiguous(): no redundant copies; expert e in slot e mod slots of rank e / slots (the
//   usual layout of DeepSeek's and vLLM's expert-parallel ranks).
// - balanced(): DeepSeek's EPLB for one group (its replicate-then-pack steps): each redundant
//   copy goes to the expert with the highest expected load per copy (then the fewest copies,
//   then the lowest id), an expert having at most one copy per rank; then copies, heaviest
//   first (load / copies; then by expert), go to the least loaded rank with a free slot that
//   does not hold that expert yet (the lowest rank among equals). Greedy packing can corner
//   itself: a copy then goes to a rank that holds the expert already (counted as two slots). Tokens
//   of an expert with c copies are spread over them by token index (token t uses copy t mod c).
struct ExpertPlacement {
  uint32_t ranks = 0, slots = 0;
  std::vector<uint16_t> slot_expert;  // ranks x slots: the expert in each slot
  std::vector<uint32_t> copy_begin;   // experts + 1: copies of expert e at [begin[e], begin[e+1])
  std::vector<uint32_t> copy_slot;    // the global slot (rank x slots + slot) of each copy

  static ExpertPlacement contiguous(uint32_t experts, uint32_t ranks);
  // `load`: each expert's expected load (any scale, >= 0); (experts + redundant) % ranks == 0.
  static ExpertPlacement balanced(const std::vector<double>& load, uint32_t ranks,
                                  uint32_t redundant);
  uint32_t copies(uint32_t expert) const { return copy_begin[expert + 1] - copy_begin[expert]; }
  // The global slot token `token` uses for `expert`.
  uint32_t slot_for(uint32_t expert, uint64_t token) const {
    return copy_slot[copy_begin[expert] + token % copies(expert)];
  }
};

// Writes the trace of `router` over a run of `shape` (routing every step and MoE layer in
// program order, as a decode run does) in the format TraceRouter reads.
void write_routing_trace(std::ostream& out, Router& router, const TraceRouter::Shape& shape);

}  // namespace tiersim
