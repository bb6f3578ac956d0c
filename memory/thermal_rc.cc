#include "memory/thermal_rc.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tiersim {

ThermalRc::ThermalRc(size_t nodes)
    : n_(nodes),
      cap_(nodes, 0.0),
      g_(nodes * nodes, 0.0),
      gamb_(nodes, 0.0),
      ss_(nodes, 0.0),
      tmp_(nodes, 0.0) {}

void ThermalRc::set_capacity(size_t node, double j_per_k) {
  cap_.at(node) = j_per_k;
}

void ThermalRc::connect(size_t a, size_t b, double k_per_w) {
  const double g = 1.0 / k_per_w;
  g_.at(a * n_ + a) += g;
  g_.at(b * n_ + b) += g;
  g_.at(a * n_ + b) -= g;
  g_.at(b * n_ + a) -= g;
}

void ThermalRc::to_ambient(size_t node, double k_per_w) {
  gamb_.at(node) += 1.0 / k_per_w;
  g_.at(node * n_ + node) += 1.0 / k_per_w;
}

void ThermalRc::prepare(double step_s) {
  for (double c : cap_) {
    if (!(c > 0)) throw std::invalid_argument("thermal network: a node without heat capacity");
  }
  // Cholesky factor of G (symmetric): positive definite exactly when every node reaches the
  // ambient through the network.
  chol_.assign(n_ * n_, 0.0);
  for (size_t j = 0; j < n_; ++j) {
    double d = g_[j * n_ + j];
    for (size_t k = 0; k < j; ++k)
      d -= chol_[j * n_ + k] * chol_[j * n_ + k];
    if (!(d > 1e-12 * g_[j * n_ + j])) {
      throw std::invalid_argument("thermal network: a node has no path to the ambient");
    }
    const double l = std::sqrt(d);
    chol_[j * n_ + j] = l;
    for (size_t i = j + 1; i < n_; ++i) {
      double s = g_[i * n_ + j];
      for (size_t k = 0; k < j; ++k)
        s -= chol_[i * n_ + k] * chol_[j * n_ + k];
      chol_[i * n_ + j] = s / l;
    }
  }
  step_s_ = step_s;
  exp_matrix(step_s, phi_);
}

void ThermalRc::solve(const double* b, double* x) const {
  // L y = b, then L^T x = y.
  for (size_t i = 0; i < n_; ++i) {
    double s = b[i];
    for (size_t k = 0; k < i; ++k)
      s -= chol_[i * n_ + k] * x[k];
    x[i] = s / chol_[i * n_ + i];
  }
  for (size_t i = n_; i-- > 0;) {
    double s = x[i];
    for (size_t k = i + 1; k < n_; ++k)
      s -= chol_[k * n_ + i] * x[k];
    x[i] = s / chol_[i * n_ + i];
  }
}

void ThermalRc::steady_state(const double* p_w, double* t_c) const {
  for (size_t i = 0; i < n_; ++i)
    tmp_[i] = p_w[i] + gamb_[i] * ambient_c_;
  solve(tmp_.data(), t_c);
}

void ThermalRc::exp_matrix(double dt_s, std::vector<double>& out) const {
  // M = -C^-1 G dt; scale by 2^-s so that ||M||_inf <= 0.5, Taylor to 20 terms (remainder
  // below 0.5^21 / 21! relative), then square s times.
  const size_t n = n_;
  std::vector<double> m(n * n);
  double norm = 0;
  for (size_t i = 0; i < n; ++i) {
    double row = 0;
    for (size_t j = 0; j < n; ++j) {
      m[i * n + j] = -g_[i * n + j] / cap_[i] * dt_s;
      row += std::fabs(m[i * n + j]);
    }
    norm = std::max(norm, row);
  }
  int squarings = 0;
  while (norm > 0.5) {
    norm /= 2;
    ++squarings;
  }
  const double scale = std::ldexp(1.0, -squarings);
  for (double& v : m)
    v *= scale;
  out.assign(n * n, 0.0);
  std::vector<double> term(n * n, 0.0), next(n * n);
  for (size_t i = 0; i < n; ++i) {
    out[i * n + i] = 1.0;
    term[i * n + i] = 1.0;
  }
  for (int k = 1; k <= 20; ++k) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        double s = 0;
        for (size_t l = 0; l < n; ++l)
          s += term[i * n + l] * m[l * n + j];
        next[i * n + j] = s / k;
      }
    }
    term.swap(next);
    for (size_t i = 0; i < n * n; ++i)
      out[i] += term[i];
  }
  for (int s = 0; s < squarings; ++s) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        double v = 0;
        for (size_t l = 0; l < n; ++l)
          v += out[i * n + l] * out[l * n + j];
        next[i * n + j] = v;
      }
    }
    out.swap(next);
  }
}

void ThermalRc::relax(const double* phi, const double* p_w, double* t_c) const {
  steady_state(p_w, ss_.data());
  for (size_t i = 0; i < n_; ++i)
    tmp_[i] = t_c[i] - ss_[i];
  for (size_t i = 0; i < n_; ++i) {
    double s = 0;
    for (size_t j = 0; j < n_; ++j)
      s += phi[i * n_ + j] * tmp_[j];
    t_c[i] = ss_[i] + s;
  }
}

void ThermalRc::step(const double* p_w, double* t_c) const {
  relax(phi_.data(), p_w, t_c);
}

void ThermalRc::advance(double dt_s, const double* p_w, double* t_c) const {
  std::vector<double> phi;
  exp_matrix(dt_s, phi);
  relax(phi.data(), p_w, t_c);
}

double ThermalRc::fastest_time_constant_s() const {
  // Power iteration on C^-1 G for its largest eigenvalue (real, positive: similar to the
  // symmetric C^-1/2 G C^-1/2).
  std::vector<double> v(n_, 1.0), w(n_);
  double lambda = 0;
  for (int it = 0; it < 200; ++it) {
    double norm = 0;
    for (size_t i = 0; i < n_; ++i) {
      double s = 0;
      for (size_t j = 0; j < n_; ++j)
        s += g_[i * n_ + j] * v[j];
      w[i] = s / cap_[i];
      norm = std::max(norm, std::fabs(w[i]));
    }
    if (norm == 0) return 0;
    for (size_t i = 0; i < n_; ++i)
      v[i] = w[i] / norm;
    lambda = norm;
  }
  return 1.0 / lambda;
}

}  // namespace tiersim
