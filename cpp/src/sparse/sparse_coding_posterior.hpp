// The per-data-point E-step of Laplace sparse coding (DESIGN.md §3), shared by the EM E-step and the
// joint gradient solver's start. Private to the library's sources.
//
// For one data point with ν = E_q[z], s_h² = Λ_hh, a = β_p/λ, b = β_l/σ² and G = b WᵀW, the E-step
// maximises (up to constants)
//
//   f(ν, Λ) = ½ log det Λ − Σ_h a_h E|z_h| + b νᵀWᵀx − ½ νᵀGν − ½ tr(G Λ),
//   E|z_h| = 2 s_h φ(u_h) + ν_h erf(u_h/√2),  u = ν/s,  φ the standard normal density.
//
// Diagonal Λ: f is jointly concave in (ν, s) (E|z_h| = E|ν_h + s_h ε| is convex in (ν_h, s_h)), so Newton
// steps on (ν, s) with a backtracking line search converge to the optimum; s is eliminated from each
// Newton system, which leaves one H × H Cholesky factorisation per step.
//
// Full Λ: stationarity in Λ gives Λ⁻¹ = G + diag(c*) with c*_h = 2 a_h φ(u_h)/s_h, so the optimum lies in
// the family Λ(c) = (G + diag(c))⁻¹, c ≥ 0. The solver moves (ν, c) along (P⁻¹ ∇_ν f, c* − c), an ascent
// direction of f(ν, Λ(c)) (∂f/∂c = ½ (Λ∘Λ)(c* − c)), with a backtracking line search; one Cholesky
// factorisation of P = G + diag(c) per trial gives Λ, its diagonal and log det Λ.
//
// Both start from the ridge solution ν₀ = (G + diag(c₀))⁻¹ b Wᵀx, where c₀ is the prior's curvature at
// ν = 0: one product per chunk of rows.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/sparse/sparse_coding.hpp"

namespace entrosum::detail {

inline constexpr double kInvSqrtTwoPi = 0.39894228040143267793994605993438;
inline constexpr double kInvSqrtTwo = 0.70710678118654752440084436210485;
/// Smallest c_h of the full form, relative to G_hh: keeps P = G + diag(c) definite when G is singular.
inline constexpr double kRelativePrecisionFloor = 1e-10;
/// Smallest diagonal term α − γ²/β that the diagonal form's Newton system adds to G, relative to G_hh. Where a
/// coefficient lies many standard deviations from 0, φ(ν/s) underflows and the prior adds no curvature; with more
/// atoms than dimensions G is singular, and so was the system: the solve stopped at its start for every point of
/// a 64 × 100 dictionary at σ² ≤ 3e-3. Any definite system gives an ascent direction, and the line search keeps
/// f rising. Of the floors tried on that example (1e-10 to 1e-2), 1e-6 and 1e-4 converged every point at σ² = 1e-2
/// and 1e-3 (1e-5 all but one; the step counts vary erratically with the floor); the smaller perturbs the Newton
/// steps of well-posed points less.
inline constexpr double kRelativeCurvatureFloor = 1e-6;
/// Armijo constant of the line searches.
inline constexpr double kArmijo = 1e-4;
/// Most halvings of a step in one line search.
inline constexpr int kMaxHalvings = 50;

/// φ(u), erf(u/√2) and E|z| for z ~ N(mean, sd²).
struct LaplaceTerms {
  double density;  ///< φ(mean/sd)
  double erf;      ///< erf(mean/(√2 sd)) = ∂E|z|/∂mean
  double expected_abs;
};

inline LaplaceTerms laplace_terms(double mean, double sd) {
  const double u = mean / sd;
  LaplaceTerms terms;
  terms.density = kInvSqrtTwoPi * std::exp(-0.5 * u * u);
  terms.erf = std::erf(u * kInvSqrtTwo);
  terms.expected_abs = 2.0 * sd * terms.density + mean * terms.erf;
  return terms;
}

/// Lower Cholesky factor of the symmetric matrix in `a` (lower triangle read), in place; false if `a` is
/// not positive definite. Left-looking: column j is one matrix-vector product with the finished columns,
/// which for the H × H systems of one data point (H up to a few hundred) beats a blocked factorisation.
inline bool cholesky_in_place(Eigen::MatrixXd& a) {
  const Index n = a.rows();
  for (Index j = 0; j < n; ++j) {
    if (j > 0) a.col(j).tail(n - j).noalias() -= a.block(j, 0, n - j, j) * a.row(j).head(j).transpose();
    const double pivot = a(j, j);
    if (!(pivot > 0.0)) return false;
    const double root = std::sqrt(pivot);
    a(j, j) = root;
    a.col(j).tail(n - j - 1) /= root;
  }
  return true;
}

/// Solves (L Lᵀ) x = b in place for the lower factor held in `factor`.
inline void cholesky_solve_in_place(const Eigen::MatrixXd& factor, Eigen::VectorXd& b) {
  factor.triangularView<Eigen::Lower>().solveInPlace(b);
  factor.triangularView<Eigen::Lower>().transpose().solveInPlace(b);
}

/// What the E-steps of all data points share at given Θ and β.
struct PosteriorProblem {
  PosteriorForm form = PosteriorForm::diagonal;
  Index n_components = 0;
  /// b = β_l / σ²
  double noise_precision = 1.0;
  /// (H, H) G = b WᵀW
  Eigen::MatrixXd gram;
  /// (H) a = β_p / λ
  Eigen::VectorXd inverse_scale;
  /// (H, H) b (G + diag(c₀))⁻¹: ν₀ = ridge · Wᵀx
  Eigen::MatrixXd ridge;
  /// (H) c₀, the prior's curvature at ν = 0 for the diagonal start
  Eigen::VectorXd initial_precision;
  /// (H) standard deviations at the start
  Eigen::VectorXd initial_sd;
  /// Full form: the start's factor of G + diag(c₀), Λ₀ = its inverse, log det Λ₀; the floor of c.
  Eigen::MatrixXd initial_cholesky;
  Eigen::MatrixXd initial_covariance;
  double initial_log_det = 0.0;
  Eigen::VectorXd precision_floor;
  /// Diagonal form: the floor of the Newton system's diagonal terms beyond G
  Eigen::VectorXd curvature_floor;
  PosteriorSolverOptions solver;

  static PosteriorProblem from(const SparseCodingParams& params, PosteriorForm form,
                               const PosteriorSolverOptions& solver) {
    const Index n_components = params.components.cols();
    if (params.scales.size() != n_components)  // the loop below and the prior read one scale per atom
      throw std::invalid_argument(std::to_string(params.scales.size()) + " scales for " + std::to_string(n_components) +
                                  " atoms");
    if (!(params.noise_variance > 0.0) || !std::isfinite(params.noise_variance))
      throw NumericalError("the noise variance is not positive");
    for (Index h = 0; h < n_components; ++h)
      if (!(params.scales(h) > 0.0) || !std::isfinite(params.scales(h)))
        throw NumericalError("the scale of component " + std::to_string(h) + " is not positive (it collapsed)");
    PosteriorProblem problem;
    problem.form = form;
    problem.n_components = n_components;
    problem.solver = solver;
    problem.noise_precision = params.observable_beta / params.noise_variance;
    problem.gram = problem.noise_precision * (params.components.transpose() * params.components);
    problem.inverse_scale = params.prior_beta * params.scales.cwiseInverse();
    // At ν = 0 the diagonal stationarity 1/s² = G_hh + c, c = a √(2/π)/s gives, for y = 1/s,
    // y² − κ y − G_hh = 0 with κ = a √(2/π).
    const Eigen::ArrayXd kappa = entropy::kSqrtTwoOverPi * problem.inverse_scale.array();
    const Eigen::ArrayXd gram_diagonal = problem.gram.diagonal().array();
    const Eigen::ArrayXd inverse_sd = 0.5 * (kappa + (kappa.square() + 4.0 * gram_diagonal).sqrt());
    problem.initial_precision = (kappa * inverse_sd).matrix();
    problem.initial_sd = inverse_sd.inverse().matrix();
    problem.precision_floor = (kRelativePrecisionFloor * gram_diagonal).matrix();
    problem.curvature_floor = (kRelativeCurvatureFloor * gram_diagonal).matrix();

    Eigen::MatrixXd precision = problem.gram;
    precision.diagonal() += problem.initial_precision;
    Eigen::LLT<Eigen::MatrixXd> llt(precision);
    if (llt.info() != Eigen::Success) throw NumericalError("the initial posterior precision is not positive definite");
    const Eigen::MatrixXd covariance = llt.solve(Eigen::MatrixXd::Identity(n_components, n_components));
    problem.ridge = problem.noise_precision * covariance;
    if (form == PosteriorForm::full) {
      problem.initial_cholesky = llt.matrixL();
      problem.initial_covariance = covariance;
      problem.initial_sd = covariance.diagonal().cwiseSqrt();
      problem.initial_log_det = -2.0 * problem.initial_cholesky.diagonal().array().log().sum();
    }
    return problem;
  }
};

/// Checks the settings, normalises W's columns, fills in a missing start from the data's power
/// (1/(ND)) Σ||x||² (one pass) and sets `noise_floor`; the annealing weights of step 0.
template <typename T>
SparseCodingParams prepare_sparse_coding(const DataRef<T>& data, const SparseCodingParams& initial,
                                         const SparseCodingOptions& options, double& noise_floor);

/// The joint gradient solver from prepared parameters (sparse_coding_gradient.cpp).
template <typename T>
SparseCodingFit fit_sparse_coding_gradient(const DataRef<T>& data, const SparseCodingParams& start,
                                           const SparseCodingOptions& options, const IterationCallback& on_iteration,
                                           std::chrono::steady_clock::time_point started);

/// EM accelerated by quasi-Newton steps, from prepared parameters (sparse_coding_quasi_newton.cpp).
template <typename T>
SparseCodingFit fit_sparse_coding_quasi_newton(const DataRef<T>& data, const SparseCodingParams& start,
                                               const SparseCodingOptions& options, double noise_floor,
                                               const IterationCallback& on_iteration,
                                               std::chrono::steady_clock::time_point started);

/// The result of one data point's solve.
struct PointSolve {
  int steps = 0;
  bool converged = false;
};

/// Newton on (ν, s) for a diagonal posterior. Workspaces are sized once and reused for every point.
class DiagonalPosteriorSolver {
 public:
  explicit DiagonalPosteriorSolver(const PosteriorProblem& problem)
      : p_(problem),
        mean(problem.n_components),
        sd(problem.n_components),
        density(problem.n_components),
        erf(problem.n_components),
        expected_abs(problem.n_components),
        gram_mean_(problem.n_components),
        grad_mean_(problem.n_components),
        grad_sd_(problem.n_components),
        coupling_(problem.n_components),
        curvature_sd_(problem.n_components),
        step_mean_(problem.n_components),
        step_sd_(problem.n_components),
        gram_step_(problem.n_components),
        trial_mean_(problem.n_components),
        trial_sd_(problem.n_components),
        trial_density_(problem.n_components),
        trial_erf_(problem.n_components),
        trial_abs_(problem.n_components),
        schur_(problem.n_components, problem.n_components) {}

  /// Solves for one data point from ν = `start`, given projected = Wᵀx. The optimum is left in
  /// `mean`, `sd`, with `density`, `erf`, `expected_abs` evaluated there.
  template <typename Projected, typename Start>
  PointSolve solve(const Eigen::MatrixBase<Projected>& projected, const Eigen::MatrixBase<Start>& start) {
    const Index n = p_.n_components;
    const double b = p_.noise_precision;
    const auto& a = p_.inverse_scale;
    const auto gram_diagonal = p_.gram.diagonal();
    mean = start;
    sd = p_.initial_sd;
    gram_mean_.noalias() = p_.gram * mean;
    evaluate(mean, sd, density, erf, expected_abs);
    PointSolve result;
    for (;;) {
      // Gradient: ∂f/∂ν = b Wᵀx − Gν − a ⊙ erf(u/√2), ∂f/∂s = 1/s − 2 a φ(u) − G_hh s.
      grad_mean_ = b * projected - gram_mean_ - a.cwiseProduct(erf);
      for (Index h = 0; h < n; ++h) {
        const double s = sd(h);
        const double u = mean(h) / s;
        const double alpha = 2.0 * a(h) * density(h) / s;                      // −∂²f/∂ν_h² minus G_hh
        const double gamma = -alpha * u;                                       // −∂²f/∂ν_h∂s_h
        const double beta = 1.0 / (s * s) + alpha * u * u + gram_diagonal(h);  // −∂²f/∂s_h²
        grad_sd_(h) = 1.0 / s - 2.0 * a(h) * density(h) - gram_diagonal(h) * s;
        coupling_(h) = gamma / beta;
        curvature_sd_(h) = beta;
        // diagonal of the Schur complement, G added below
        schur_(h, h) = std::max(alpha - gamma * coupling_(h), p_.curvature_floor(h));
      }
      // Newton system with s eliminated: (G + diag(α − γ²/β)) Δν = g_ν − (γ/β) g_s.
      for (Index j = 0; j < n; ++j) {
        const double extra = schur_(j, j);
        schur_.col(j) = p_.gram.col(j);
        schur_(j, j) += extra;
      }
      if (!cholesky_in_place(schur_)) break;  // cannot happen for a concave f; stop at the current point
      step_mean_ = grad_mean_ - coupling_.cwiseProduct(grad_sd_);
      cholesky_solve_in_place(schur_, step_mean_);
      step_sd_ =
          (grad_sd_ - coupling_.cwiseProduct(curvature_sd_).cwiseProduct(step_mean_)).cwiseQuotient(curvature_sd_);
      // Δs = (g_s − γ Δν)/β; coupling_ ⊙ curvature_sd_ is γ.
      const double decrement = grad_mean_.dot(step_mean_) + grad_sd_.dot(step_sd_);
      if (!(decrement > p_.solver.tol)) {
        result.converged = true;
        break;
      }
      if (result.steps >= p_.solver.max_iter) break;
      double step = 0.0;
      if (!line_search(projected, decrement, step)) {
        result.converged = decrement < 1e3 * p_.solver.tol;  // rounding limits the last digits
        break;
      }
      ++result.steps;
      // Newton converges quadratically here: after a full step with decrement δ the next decrement is
      // about δ², so once δ² < tol the factorisation that would only confirm it is skipped.
      if (step == 1.0 && decrement * decrement < p_.solver.tol) {
        result.converged = true;
        break;
      }
    }
    return result;
  }

  /// log det Λ = 2 Σ log s.
  double log_det() const { return 2.0 * sd.array().log().sum(); }

  Eigen::VectorXd mean, sd, density, erf, expected_abs;

 private:
  void evaluate(const Eigen::VectorXd& m, const Eigen::VectorXd& s, Eigen::VectorXd& phi, Eigen::VectorXd& e,
                Eigen::VectorXd& abs) const {
    for (Index h = 0; h < p_.n_components; ++h) {
      const LaplaceTerms terms = laplace_terms(m(h), s(h));
      phi(h) = terms.density;
      e(h) = terms.erf;
      abs(h) = terms.expected_abs;
    }
  }

  /// Backtracking along (Δν, Δs) until f rises by at least kArmijo · t · decrement; false if it never does.
  /// The accepted step length goes to `step`.
  template <typename Projected>
  bool line_search(const Eigen::MatrixBase<Projected>& projected, double decrement, double& step) {
    const double b = p_.noise_precision;
    const auto& a = p_.inverse_scale;
    const auto gram_diagonal = p_.gram.diagonal();
    gram_step_.noalias() = p_.gram * step_mean_;
    // The quadratic part changes by t·linear − ½ t²·curvature.
    const double linear = b * projected.dot(step_mean_) - mean.dot(gram_step_);
    const double curvature = step_mean_.dot(gram_step_);
    double t = 1.0;
    int halvings = 0;
    while (((sd + t * step_sd_).array() <= 0.0).any()) {
      t *= 0.5;
      if (++halvings > kMaxHalvings) return false;
    }
    for (; halvings <= kMaxHalvings; ++halvings, t *= 0.5) {
      trial_mean_ = mean + t * step_mean_;
      trial_sd_ = sd + t * step_sd_;
      evaluate(trial_mean_, trial_sd_, trial_density_, trial_erf_, trial_abs_);
      double change = t * linear - 0.5 * t * t * curvature;
      for (Index h = 0; h < p_.n_components; ++h) {
        const double ds = t * step_sd_(h);
        change += std::log1p(ds / sd(h)) - a(h) * (trial_abs_(h) - expected_abs(h)) -
                  0.5 * gram_diagonal(h) * ds * (2.0 * sd(h) + ds);
      }
      if (change >= kArmijo * t * decrement) {
        mean.swap(trial_mean_);
        sd.swap(trial_sd_);
        density.swap(trial_density_);
        erf.swap(trial_erf_);
        expected_abs.swap(trial_abs_);
        gram_mean_ += t * gram_step_;
        step = t;
        return true;
      }
    }
    return false;
  }

  const PosteriorProblem& p_;
  Eigen::VectorXd gram_mean_, grad_mean_, grad_sd_, coupling_, curvature_sd_, step_mean_, step_sd_, gram_step_;
  Eigen::VectorXd trial_mean_, trial_sd_, trial_density_, trial_erf_, trial_abs_;
  Eigen::MatrixXd schur_;
};

/// Ascent on (ν, c) for a full posterior Λ(c) = (G + diag(c))⁻¹.
class FullPosteriorSolver {
 public:
  explicit FullPosteriorSolver(const PosteriorProblem& problem)
      : p_(problem),
        mean(problem.n_components),
        sd(problem.n_components),
        density(problem.n_components),
        erf(problem.n_components),
        expected_abs(problem.n_components),
        covariance(problem.n_components, problem.n_components),
        cholesky(problem.n_components, problem.n_components),
        precision_(problem.n_components),
        target_(problem.n_components),
        gram_mean_(problem.n_components),
        grad_mean_(problem.n_components),
        step_mean_(problem.n_components),
        step_precision_(problem.n_components),
        gram_step_(problem.n_components),
        trial_mean_(problem.n_components),
        trial_sd_(problem.n_components),
        trial_precision_(problem.n_components),
        trial_density_(problem.n_components),
        trial_erf_(problem.n_components),
        trial_abs_(problem.n_components),
        trial_covariance_(problem.n_components, problem.n_components),
        trial_cholesky_(problem.n_components, problem.n_components),
        inverse_factor_(problem.n_components, problem.n_components) {}

  template <typename Projected, typename Start>
  PointSolve solve(const Eigen::MatrixBase<Projected>& projected, const Eigen::MatrixBase<Start>& start) {
    const Index n = p_.n_components;
    const double b = p_.noise_precision;
    const auto& a = p_.inverse_scale;
    mean = start;
    precision_ = p_.initial_precision;
    cholesky = p_.initial_cholesky;
    covariance = p_.initial_covariance;
    sd = p_.initial_sd;
    log_det_ = p_.initial_log_det;
    gram_mean_.noalias() = p_.gram * mean;
    evaluate(mean, sd, density, erf, expected_abs);
    PointSolve result;
    for (;;) {
      // c*_h = 2 a_h φ(u_h)/s_h (floored), ∇_ν f = b Wᵀx − Gν − a ⊙ erf(u/√2)
      for (Index h = 0; h < n; ++h) target_(h) = std::max(2.0 * a(h) * density(h) / sd(h), p_.precision_floor(h));
      grad_mean_ = b * projected - gram_mean_ - a.cwiseProduct(erf);
      step_mean_ = grad_mean_;
      cholesky_solve_in_place(cholesky, step_mean_);  // P⁻¹ ∇_ν f
      step_precision_ = target_ - precision_;
      // Directional derivative: ∇_ν f·Δν + ½ Δcᵀ (Λ∘Λ) Δc.
      const double decrement =
          grad_mean_.dot(step_mean_) + 0.5 * step_precision_.dot(covariance.cwiseAbs2() * step_precision_);
      if (!(decrement > p_.solver.tol)) {
        result.converged = true;
        break;
      }
      if (result.steps >= p_.solver.max_iter) break;
      if (!line_search(projected, decrement)) {
        result.converged = decrement < 1e3 * p_.solver.tol;
        break;
      }
      ++result.steps;
    }
    return result;
  }

  double log_det() const { return log_det_; }

  Eigen::VectorXd mean, sd, density, erf, expected_abs;
  /// (H, H) Λ and the lower Cholesky factor of its inverse P = G + diag(c)
  Eigen::MatrixXd covariance, cholesky;

 private:
  void evaluate(const Eigen::VectorXd& m, const Eigen::VectorXd& s, Eigen::VectorXd& phi, Eigen::VectorXd& e,
                Eigen::VectorXd& abs) const {
    for (Index h = 0; h < p_.n_components; ++h) {
      const LaplaceTerms terms = laplace_terms(m(h), s(h));
      phi(h) = terms.density;
      e(h) = terms.erf;
      abs(h) = terms.expected_abs;
    }
  }

  /// Factor P = G + diag(c) into trial_cholesky_, and set trial_covariance_ = P⁻¹, trial_sd_, trial_log_det_.
  bool factor_trial() {
    trial_cholesky_ = p_.gram;
    trial_cholesky_.diagonal() += trial_precision_;
    if (!cholesky_in_place(trial_cholesky_)) return false;
    trial_cholesky_.triangularView<Eigen::StrictlyUpper>().setZero();
    // Λ = L⁻ᵀ L⁻¹ from the triangular inverse.
    inverse_factor_.setIdentity();
    trial_cholesky_.triangularView<Eigen::Lower>().solveInPlace(inverse_factor_);
    trial_covariance_.noalias() = inverse_factor_.transpose() * inverse_factor_.triangularView<Eigen::Lower>();
    trial_sd_ = trial_covariance_.diagonal().cwiseSqrt();
    trial_log_det_ = -2.0 * trial_cholesky_.diagonal().array().log().sum();
    return true;
  }

  template <typename Projected>
  bool line_search(const Eigen::MatrixBase<Projected>& projected, double decrement) {
    const double b = p_.noise_precision;
    const auto& a = p_.inverse_scale;
    gram_step_.noalias() = p_.gram * step_mean_;
    const double linear = b * projected.dot(step_mean_) - mean.dot(gram_step_);
    const double curvature = step_mean_.dot(gram_step_);
    // ½ tr(GΛ) = ½ (H − Σ c_h Λ_hh) on the family Λ = (G + diag(c))⁻¹.
    const double trace_term = precision_.dot(sd.cwiseAbs2());
    double t = 1.0;
    for (int halvings = 0; halvings <= kMaxHalvings; ++halvings, t *= 0.5) {
      trial_precision_ = precision_ + t * step_precision_;
      if (!factor_trial()) continue;
      trial_mean_ = mean + t * step_mean_;
      evaluate(trial_mean_, trial_sd_, trial_density_, trial_erf_, trial_abs_);
      const double change = 0.5 * (trial_log_det_ - log_det_) - a.dot(trial_abs_ - expected_abs) + t * linear -
                            0.5 * t * t * curvature + 0.5 * (trial_precision_.dot(trial_sd_.cwiseAbs2()) - trace_term);
      if (change >= kArmijo * t * decrement) {
        mean.swap(trial_mean_);
        sd.swap(trial_sd_);
        precision_.swap(trial_precision_);
        density.swap(trial_density_);
        erf.swap(trial_erf_);
        expected_abs.swap(trial_abs_);
        covariance.swap(trial_covariance_);
        cholesky.swap(trial_cholesky_);
        log_det_ = trial_log_det_;
        gram_mean_ += t * gram_step_;
        return true;
      }
    }
    return false;
  }

  const PosteriorProblem& p_;
  double log_det_ = 0.0, trial_log_det_ = 0.0;
  Eigen::VectorXd precision_, target_, gram_mean_, grad_mean_, step_mean_, step_precision_, gram_step_;
  Eigen::VectorXd trial_mean_, trial_sd_, trial_precision_, trial_density_, trial_erf_, trial_abs_;
  Eigen::MatrixXd trial_covariance_, trial_cholesky_, inverse_factor_;
};

}  // namespace entrosum::detail
