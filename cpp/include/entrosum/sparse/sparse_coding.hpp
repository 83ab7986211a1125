// Probabilistic sparse coding with a Laplace prior and Gaussian posteriors (DESIGN.md §3, "Laplace
// sparse coding and the ES-ELBO"; Velychko et al., arXiv:2311.01888):
//
//   z_h ~ Laplace(0, λ_h) (scale λ_h),   x | z ~ N(W z, σ² I),   W with unit-norm columns,
//   q_n(z) = N(ν_n, Λ_n), Λ_n diagonal or full.
//
// Variational EM: the E-step maximises the ELBO of every data point over (ν_n, Λ_n) by Newton steps
// with a line search (nothing per data point is kept between iterations), the M-step is closed form.
// At λ = λ* = (1/N) Σ E|z| and σ² = σ²* = (1/(ND)) Σ E||x − W z||² the ELBO equals the entropy sum
//
//   ES-ELBO = (1/N) Σ_n H[q_n] − Σ_h log(2 e λ*_h) − (D/2) log(2πe σ²*),
//
// which holds after every M-step. Entropy-based annealing weights the prior and observable entropy
// terms by β_p, β_l ≥ 1 (the E-step then sees λ/β_p and σ²/β_l).
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// The family of the per-data-point posteriors q_n = N(ν_n, Λ_n).
enum class PosteriorForm {
  diagonal,  ///< Λ_n diagonal: H variances per data point
  full,      ///< Λ_n full, kept as its Cholesky factor (its precision is βG/σ² + diag(c_n), see below)
};

/// Θ = (W, λ, σ²), held in double whatever the data's precision, plus the annealing state.
struct SparseCodingParams {
  /// (n_features, n_components) W, unit-norm columns
  Eigen::MatrixXd components;
  /// (n_components) λ, the Laplace scales
  Eigen::VectorXd scales;
  /// σ²
  double noise_variance = 1.0;
  /// β_p, β_l in force for the next E-step (1 for the plain ELBO).
  double prior_beta = 1.0;
  double observable_beta = 1.0;
  /// M-steps done so far: the index of the next E-step in the annealing schedule.
  int step = 0;
};

/// When the per-data-point solver of the E-step stops.
struct PosteriorSolverOptions {
  /// Stop when the predicted increase of a data point's objective (its Newton decrement, in nats) is below.
  double tol = 1e-10;
  /// Most Newton steps per data point.
  int max_iter = 100;
  /// Diagonal posteriors: solve the points of a chunk side by side, one per lane of the CPU's vectors (the same
  /// steps per point; false solves them one at a time, the reference the batched solver is tested against).
  bool batched = true;
  /// Batched solver: factorise each Newton system in single precision and refine the step once in double, which
  /// halves the cost of the factorisation; a point whose refined step still leaves a residual, or whose system
  /// is not definite in single precision, is redone in double. The optimum is the same to the solver's tol;
  /// false factorises in double, step for step the per-point solver's arithmetic.
  bool mixed_precision = true;
};

/// Expected sufficient statistics of q over the data, plus the sums the ES-ELBO needs; mergeable.
struct SparseCodingStats {
  double count = 0.0;
  /// Σ_n ||x_n||²
  double squared_norm = 0.0;
  /// (n_features, n_components) Σ_n x_n ν_nᵀ
  Eigen::MatrixXd cross;
  /// (n_components, n_components) Σ_n (ν_n ν_nᵀ + Λ_n)
  Eigen::MatrixXd second_moment;
  /// (n_components) Σ_n E_q|z_nh|
  Eigen::VectorXd expected_abs;
  /// Σ_n H[q_n]
  double posterior_entropy = 0.0;
  /// Solver diagnostics: Newton steps summed over data points, the most for one point, and the number
  /// of points that reached max_iter before the tolerance.
  double solver_steps = 0.0;
  int max_solver_steps = 0;
  Index unconverged = 0;

  SparseCodingStats() = default;
  SparseCodingStats(Index n_features, Index n_components);
  SparseCodingStats& operator+=(const SparseCodingStats& other);
  /// Multiplies every sum over data points by `factor` (the solver diagnostics stay counts).
  void scale(double factor);
};

/// What an E-step yields: the statistics of q and the annealing weights q was computed with.
struct SparseCodingExpectation {
  SparseCodingStats stats;
  double prior_beta = 1.0;
  double observable_beta = 1.0;

  /// Merges the statistics of other rows (an empty value takes the other's, annealing weights included).
  SparseCodingExpectation& operator+=(const SparseCodingExpectation& other) {
    if (stats.cross.size() == 0) {
      *this = other;
    } else {
      stats += other.stats;
    }
    return *this;
  }
  void scale(double factor) { stats.scale(factor); }
};

/// Residual Σ_n E_q ||x_n − W z||² = Σ||x||² − 2 tr(Wᵀ Σ x νᵀ) + tr(WᵀW Σ(ννᵀ + Λ)), for any W.
double sparse_coding_residual(const SparseCodingStats& stats, const Eigen::MatrixXd& components);

/// F_β(q, Θ) per sample and the weighted entropy sum's terms (β = 1: the ELBO and S). With the entropy-
/// sum's prior term Σ log(2eλ_h) and observable term (D/2) log(2πeσ²) at the given λ, σ².
ElboTerms sparse_coding_terms(const SparseCodingStats& stats, const SparseCodingParams& params, double prior_beta,
                              double observable_beta);

/// The ES-ELBO terms of q with W: λ and σ² at their optima λ*, σ²* for q (where F = S).
ElboTerms sparse_coding_es_elbo_terms(const SparseCodingStats& stats, const Eigen::MatrixXd& components,
                                      double prior_beta = 1.0, double observable_beta = 1.0);

/// A schedule of annealing weights: entry t for E-step t, 1 after the last entry.
struct AnnealingSchedule {
  std::vector<double> prior;
  std::vector<double> observable;

  double prior_beta(int step) const { return at(prior, step); }
  double observable_beta(int step) const { return at(observable, step); }

 private:
  static double at(const std::vector<double>& values, int step) {
    return step >= 0 && static_cast<std::size_t>(step) < values.size() ? values[static_cast<std::size_t>(step)] : 1.0;
  }
};

/// The parameters a fit starts from: W with unit-norm columns, and, where `initial` leaves them unset (empty
/// scales, σ² ≤ 0), λ and σ² from the data's power (1/(ND)) Σ ||x||²; the noise floor is set from the power too.
SparseCodingParams sparse_coding_start(const SparseCodingParams& initial, Index n_features, double power,
                                       const AnnealingSchedule& schedule, double& noise_floor);

/// The closed-form M-step: W = (Σ x νᵀ)(Σ (ννᵀ + Λ))⁻¹, then unit-norm columns with q rescaled alike
/// (ν_h, Λ's row and column h and E|z_h| by the column norm d_h, H[q] by Σ log d_h, so the ELBO is
/// unchanged), then λ = λ*, σ² = σ²* for the rescaled q. `expectation` is rescaled in place. The
/// returned parameters carry the annealing weights of the next E-step from `schedule`.
SparseCodingParams sparse_coding_m_step(SparseCodingExpectation& expectation, const SparseCodingParams& params,
                                        const AnnealingSchedule& schedule, double noise_floor);

/// Per-data-point outputs of an E-step (optional): means (n, H) and variances (n, H) or covariances
/// (n, H·H, row-major H × H per point).
template <typename T>
struct PosteriorOutput {
  RowMatrix<T>* means = nullptr;
  RowMatrix<T>* spread = nullptr;
};

/// One E-step pass over `data`: the statistics of the optimal q_n of every data point, with the
/// annealing weights in `params`; per-point means and (co)variances too when `output` asks for them.
template <typename T>
SparseCodingStats sparse_coding_e_step(const DataRef<T>& data, const SparseCodingParams& params, PosteriorForm form,
                                       const PosteriorSolverOptions& solver, const Execution& execution,
                                       const PosteriorOutput<T>& output = {});

/// Solver diagnostics of a fit: per-point Newton steps in the last E-step.
struct SparseCodingDiagnostics {
  double mean_solver_steps = 0.0;
  int max_solver_steps = 0;
  Index unconverged = 0;
  /// Gradient solver and accelerated EM: evaluations of the objective (for accelerated EM, E-step passes
  /// in its line searches) and why L-BFGS stopped.
  int evaluations = 0;
  std::string lbfgs_status;
};

/// The EM model for run_em.
template <typename T>
class SparseCodingModel {
 public:
  using Params = SparseCodingParams;
  using Expectation = SparseCodingExpectation;

  SparseCodingModel(const DataRef<T>& data, PosteriorForm form, const PosteriorSolverOptions& solver,
                    const AnnealingSchedule& schedule, double noise_floor, const Execution& execution)
      : data_(data),
        form_(form),
        solver_(solver),
        schedule_(schedule),
        noise_floor_(noise_floor),
        execution_(execution) {}

  Expectation e_step(const Params& params) const;
  ElboTerms evaluate(const Expectation& expectation, const Params& params) const {
    return sparse_coding_terms(expectation.stats, params, expectation.prior_beta, expectation.observable_beta);
  }
  Params m_step(Expectation& expectation, const Params& params) const {
    return sparse_coding_m_step(expectation, params, schedule_, noise_floor_);
  }

  /// Solver diagnostics of the last E-step.
  const SparseCodingDiagnostics& last_diagnostics() const { return last_; }

 private:
  DataRef<T> data_;
  PosteriorForm form_;
  PosteriorSolverOptions solver_;
  AnnealingSchedule schedule_;
  double noise_floor_;
  Execution execution_;
  mutable SparseCodingDiagnostics last_;
};

enum class SparseCodingSolver {
  em,        ///< variational EM: per-point Newton E-steps, closed-form M-steps
  gradient,  ///< L-BFGS on the ES-ELBO over all ν_n, Λ_n and W at once (small data sets)
};

/// How the EM solver moves Θ after its E-steps.
enum class EmAcceleration {
  none,          ///< the closed-form M-step
  quasi_newton,  ///< L-BFGS on max_q F(q, Θ), preconditioned by the M-step (src/sparse/sparse_coding_quasi_newton.cpp)
};

/// The quasi-Newton acceleration of EM (Jamshidian & Jennrich 1997). Θ = (W, λ, σ²) follows L-BFGS on
/// g(Θ) = max_q F(q, Θ): one E-step pass gives g and, since q is optimal there, its gradient ∂F/∂Θ
/// (envelope theorem); the initial inverse Hessian is the one that makes the step the EM step, and a line
/// search whose trials are E-step passes keeps g increasing.
struct EmAccelerationOptions {
  EmAcceleration method = EmAcceleration::none;
  /// Curvature pairs L-BFGS keeps, at most as many as fit in 256 MiB (a pair is 2 (D H + H + 1) doubles). A
  /// long memory pays: a pair costs O(D H) per step next to an E-step pass's O(N D H), and on the 5×5 bars
  /// (D H = 250) 300 pairs needed 1140 passes over five seeds, 100 pairs 1233, 50 pairs 1573.
  int memory = 300;
  /// Plain EM iterations after the annealing schedule, before the quasi-Newton steps: EM's first steps
  /// gain most and need no line search (on the bars, 5 to 20 of them work alike; none doubles the passes).
  int em_iterations = 10;
  /// The tol rule's window during the quasi-Newton steps (StopOptions::tol_window). Their gain per step
  /// swings by two orders of magnitude within a few steps (dips of 1e-4 between gains of 1e-2 on the bars),
  /// so a one-step rule stops on the first dip: on the 5×5 bars at tol 1e-4 it stopped 4 of 5 seeds with
  /// 3 to 6 of 10 bars found; a window of 10 stopped all 5 within 5e-4 nats of the optimum, every bar found.
  int tol_window = 10;
};

struct SparseCodingOptions {
  PosteriorForm posterior = PosteriorForm::diagonal;
  SparseCodingSolver solver = SparseCodingSolver::em;
  /// For solver em: plain or quasi-Newton-accelerated.
  EmAccelerationOptions acceleration;
  /// β_p per iteration (then 1), and β_l; every value ≥ 1.
  AnnealingSchedule annealing;
  PosteriorSolverOptions e_step;
  StopOptions stop;
  Execution execution;
  /// L-BFGS memory for the gradient solver.
  int lbfgs_memory = 10;
};

/// Un-annealed iterations after an annealing schedule during which no stopping rule ends an EM fit
/// (StopOptions::warmup_iterations). A schedule such as 10, 8, 6, 4, 2 shrinks λ by 10³ to 10⁴ with unit-norm
/// atoms; EM regrows it geometrically, but F moves by less than tol per iteration at first, and the tol rule
/// stopped plain and quasi-Newton EM on the bars at −53 nats per point (−8.7 after the warm-up).
inline constexpr int kAnnealingWarmupIterations = 10;

/// The stopping rules of an EM fit with these options: options.stop, with the warm-up after a schedule.
StopOptions sparse_coding_stop_options(const SparseCodingOptions& options);

struct SparseCodingFit {
  SparseCodingParams params;
  ConvergenceMonitor monitor;
  SparseCodingDiagnostics diagnostics;
};

/// Noise variances are kept at or above this fraction of the mean squared data value.
inline constexpr double kSparseCodingNoiseFloor = 1e-12;

/// Fits the model from `initial` (W's columns are normalised; an empty `initial.scales` or a
/// non-positive noise variance starts from the data's scale). The monitor records every iteration.
template <typename T>
SparseCodingFit fit_sparse_coding(const DataRef<T>& data, const SparseCodingParams& initial,
                                  const SparseCodingOptions& options, const IterationCallback& on_iteration = {});

/// The posterior of every data point under fixed Θ (β = 1): means (n, H), variances (n, H) or
/// covariances (n, H·H); and the statistics of that pass.
template <typename T>
struct SparseCodingPosterior {
  RowMatrix<T> means;
  RowMatrix<T> spread;
  SparseCodingStats stats;
};

template <typename T>
SparseCodingPosterior<T> sparse_coding_posterior(const DataRef<T>& data, const SparseCodingParams& params,
                                                 PosteriorForm form, const PosteriorSolverOptions& solver,
                                                 const Execution& execution, bool with_spread);

// ---- the ES-ELBO as a function of all variational parameters and W (the joint gradient solver) ----

/// All variational parameters of N data points: means (N, H), and per point either the standard
/// deviations s (diagonal form, (N, H)) or the lower Cholesky factor L of Λ = L Lᵀ (full form,
/// (N, H·H) row-major, entries above the diagonal ignored).
struct VariationalParams {
  RowMatrix<double> means;
  RowMatrix<double> spread;
};

/// The gradient of the ES-ELBO: with respect to ν (N, H), to s or L (as `spread`; for L only the
/// lower triangle), and to W (D, H) unconstrained (chain through unit-norm columns: project_to_sphere).
struct EsElboGradient {
  RowMatrix<double> means;
  RowMatrix<double> spread;
  Eigen::MatrixXd components;
};

/// The annealed ES-ELBO S_β(q, W) = (1/N) Σ H[q_n] − β_p Σ log(2eλ*_h) − β_l (D/2) log(2πeσ²*) and its
/// terms; with `gradient` also its gradient (DESIGN.md §3). `scales_out` and `noise_out` receive λ*, σ²*.
template <typename T>
ElboTerms sparse_coding_es_elbo(const DataRef<T>& data, const Eigen::MatrixXd& components, const VariationalParams& q,
                                PosteriorForm form, double prior_beta, double observable_beta,
                                const Execution& execution, EsElboGradient* gradient,
                                Eigen::VectorXd* scales_out = nullptr, double* noise_out = nullptr);

/// The gradient with respect to V of a function of W = V diag(1/||v_h||), from its gradient with
/// respect to W: (g_h − w_h w_hᵀ g_h) / ||v_h|| for each column.
Eigen::MatrixXd project_to_sphere(const Eigen::MatrixXd& raw_components, const Eigen::MatrixXd& gradient);

}  // namespace entrosum
