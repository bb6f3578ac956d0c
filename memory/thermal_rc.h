// A lumped thermal RC network, plain C++: nodes with heat capacities, thermal resistances
// between nodes and from nodes to an ambient (coolant) at a fixed temperature, driven by the
// power dissipated in each node. The HBM thermal model (memory/hbm_thermal.h) builds one per hbm
// component; tests check it against analytic responses.
//
// Integration is exact for power that is constant over a step: with C dT/dt = -G T + P + g T_amb
// (G the conductance matrix, symmetric positive definite when every node reaches the ambient),
// the state after a step h is T_ss + Phi (T - T_ss), with T_ss = G^-1 (P + g T_amb) the steady
// state under that power and Phi = exp(-C^-1 G h), computed once per step size by scaling and
// squaring of a Taylor series (truncation below 1e-15 relative). With power that varies inside a
// step, the model integrates the step's mean power: the error at a step's end is at most about
// h x (the power's deviation from its mean) / (the smallest heat capacity), and decays with the
// network's time constants (docs/models/thermal.md).
//
// Cost: prepare() is O(n^3 log); step() is two triangular solves and one matrix-vector product,
// O(n^2), with no allocation.
#pragma once

#include <cstddef>
#include <vector>

namespace tiersim {

class ThermalRc {
 public:
  explicit ThermalRc(size_t nodes);

  size_t nodes() const { return n_; }
  // Network description (before prepare()): capacity > 0, resistances > 0.
  void set_capacity(size_t node, double j_per_k);
  void connect(size_t a, size_t b, double k_per_w);  // adds a resistance between two nodes
  void to_ambient(size_t node, double k_per_w);      // adds a resistance to the ambient
  void set_ambient(double celsius) { ambient_c_ = celsius; }
  double ambient_c() const { return ambient_c_; }

  // Factors G and computes Phi for steps of `step_s` seconds. Throws std::invalid_argument when
  // G is not positive definite (a node or group of nodes without a path to the ambient).
  void prepare(double step_s);
  double step_s() const { return step_s_; }

  // Temperatures at steady state under constant power `p_w` (one value per node) into `t_c`.
  void steady_state(const double* p_w, double* t_c) const;
  // Advances `t_c` by one prepared step under constant power `p_w`: exact.
  void step(const double* p_w, double* t_c) const;
  // Advances `t_c` by `dt_s` (any length) under constant power: exact; computes its own
  // exponential (O(n^3)), for tests and partial steps.
  void advance(double dt_s, const double* p_w, double* t_c) const;

  // The network's fastest time constant (s): 1 / the largest eigenvalue of C^-1 G, by power
  // iteration; the step should be well below it for the error bound to be small.
  double fastest_time_constant_s() const;

 private:
  void exp_matrix(double dt_s, std::vector<double>& out) const;  // exp(-C^-1 G dt), row-major
  void solve(const double* b, double* x) const;                  // G x = b (Cholesky)

  size_t n_;
  std::vector<double> cap_;   // J/K
  std::vector<double> g_;     // conductance matrix (W/K), row-major, n x n
  std::vector<double> gamb_;  // conductance to the ambient per node
  double ambient_c_ = 25.0;
  double step_s_ = 0;
  std::vector<double> chol_;  // lower-triangular Cholesky factor of G
  // t_c <- T_ss + phi (t_c - T_ss) under power p_w (phi: an n x n transition matrix).
  void relax(const double* phi, const double* p_w, double* t_c) const;

  std::vector<double> phi_;               // exp(-C^-1 G step)
  mutable std::vector<double> ss_, tmp_;  // scratch
};

}  // namespace tiersim
