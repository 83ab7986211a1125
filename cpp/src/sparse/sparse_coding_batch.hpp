// The E-step of Laplace sparse coding for many data points at once (DESIGN.md §3, §6). Private to the
// library's sources.
//
// Per data point the E-step runs Newton with a line search (sparse_coding_posterior.hpp), and each Newton step
// factorises an H × H matrix G + diag(c_n): one matrix per point, no product to share. Here kLanes points run
// side by side, one per lane of the CPU's float vectors (16 with AVX-512, 8 with AVX, 4 otherwise): every H × H
// quantity is stored as H·H vectors of kLanes values, so the factorisation, the triangular solves and the
// per-component terms are vector instructions over the points, with no horizontal sums and no edge cases in H.
// The products with G of all lanes are one matrix product. A point that has converged leaves its lane and the
// next point of the chunk takes it, so the lanes stay full until the chunk runs out.
//
// The factorisation, H³/6 multiply-adds per point and step, is most of the work. By default it runs in single
// precision (twice the lanes per vector instruction). The residual r̃ = r − P x₀ of the step, with r and P x₀ in
// double, gives z = P̃⁻¹ r̃ and r̃ᵀz, what the step leaves of the next Newton decrement: where that is not
// negligible the step is refined once, x₁ = x₀ + z. A lane whose residual stays large (an ill-conditioned P), or
// whose P is not definite in single precision, is redone in double. Gradient, line search and stopping rules stay
// in double, so the solver stops at the same optimum to its tol.
//
// With mixed_precision off the arithmetic per point is that of DiagonalPosteriorSolver (the same Newton steps,
// line search and stopping rules); sums run in another order, so results agree to rounding.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "sparse_coding_posterior.hpp"

namespace entrosum::detail {

#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
#else
inline constexpr int kVectorBytes = 16;
#endif
/// Points solved side by side: one per lane of a float vector.
inline constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(float));

/// kLanes doubles, one per point of a batch.
using Lanes = Eigen::Array<double, kLanes, 1>;
/// (kLanes, n) column h holds entry h of every lane's vector.
using LaneVectors = Eigen::Matrix<double, kLanes, Eigen::Dynamic>;

/// Lower Cholesky factors of kLanes symmetric matrices A_l = G + diag(c_l) that share G, in packed
/// column-major storage (column j holds rows j..n−1; each entry a vector of kLanes values of type S).
template <typename S>
class LaneCholesky {
 public:
  using ScalarLanes = Eigen::Array<S, kLanes, 1>;
  using ScalarVectors = Eigen::Matrix<S, kLanes, Eigen::Dynamic>;
  using Gram = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;

  explicit LaneCholesky(Index n) : n_(n), factor_(kLanes, n * (n + 1) / 2), inverse_diagonal_(kLanes, n) {}

  /// Factorises G + diag(extra) for every lane; `ok` is 1 where the matrix is positive definite, else 0 (that
  /// lane's factor is then meaningless; the other lanes are unaffected).
  void factor(const Gram& gram, const ScalarVectors& extra, ScalarLanes& ok);

  /// Solves (L Lᵀ) x = b in place for every lane; `rhs` is (kLanes, n).
  void solve(ScalarVectors& rhs) const;

 private:
  /// Columns per block of the factorisation (kCols) and rows per register block below the diagonal (kRows):
  /// kRows × kCols accumulators of kVectorsPerEntry registers each, plus the loads of column k; 32 vector
  /// registers with AVX-512, else 16.
  static constexpr int kVectorsPerEntry = kLanes * static_cast<int>(sizeof(S)) / kVectorBytes;
#if defined(__AVX512F__)
  static constexpr int kCols = kVectorsPerEntry == 1 ? 4 : 3, kRows = kCols;
#else
  static constexpr int kCols = kVectorsPerEntry == 1 ? 3 : 2, kRows = kCols;
#endif

  Index offset(Index i, Index j) const { return j * n_ - j * (j - 1) / 2 + (i - j); }
  S* at(Index i, Index j) { return factor_.data() + offset(i, j) * kLanes; }
  const S* at(Index i, Index j) const { return factor_.data() + offset(i, j) * kLanes; }

  template <int R, int C>
  void accumulate(const Gram& gram, const ScalarVectors& extra, Index row, Index column,
                  ScalarLanes (&sum)[R][C]) const;
  template <int C>
  void diagonal_block(const Gram& gram, const ScalarVectors& extra, Index column, ScalarLanes& ok);
  template <int R, int C>
  void below_block(const Gram& gram, const ScalarVectors& extra, Index row, Index column);
  template <int C>
  void column_block(const Gram& gram, const ScalarVectors& extra, Index column, ScalarLanes& ok);
  template <int C, int R>
  void below_tail(const Gram& gram, const ScalarVectors& extra, Index row, Index column);
  template <int C>
  void factor_columns(const Gram& gram, const ScalarVectors& extra, Index column, ScalarLanes& ok);

  Index n_;
  ScalarVectors factor_;
  ScalarVectors inverse_diagonal_;  // (kLanes, n) 1 / L_jj
};

/// Statistics of one solved point: what the chunk sums.
struct PointResult {
  double log_det = 0.0;
  int steps = 0;
  bool converged = false;
};

/// Newton on (ν, s) for diagonal posteriors, kLanes points at a time (see DiagonalPosteriorSolver).
class DiagonalBatchSolver {
 public:
  explicit DiagonalBatchSolver(const PosteriorProblem& problem);

  /// Solves every row of a chunk. `projected` (n, H) rows Wᵀx_n; `starts` (n, H) the ridge starts, overwritten
  /// with the optimal means; `gram_starts` (n, H) rows G ν₀; `variances` and `expected_abs` (n, H) receive s² and
  /// E|z| at the optimum, `results` (n) the rest.
  void solve_all(const RowMatrix<double>& projected, RowMatrix<double>& starts, const RowMatrix<double>& gram_starts,
                 RowMatrix<double>& variances, RowMatrix<double>& expected_abs, std::vector<PointResult>& results);

 private:
  void load(int lane, Index point, const RowMatrix<double>& projected, const RowMatrix<double>& starts,
            const RowMatrix<double>& gram_starts);
  void finish(int lane, bool converged, RowMatrix<double>& means, RowMatrix<double>& variances,
              RowMatrix<double>& expected_abs, std::vector<PointResult>& results);
  /// φ, erf and E|z| at (mean, sd) for one point.
  void evaluate(const Eigen::VectorXd& mean, const Eigen::VectorXd& sd, Eigen::VectorXd& density, Eigen::VectorXd& erf,
                Eigen::VectorXd& expected_abs);
  /// Backtracking along (Δν, Δs) for one lane from t = 2^−first_halving; the accepted t goes to `step`.
  bool line_search(int lane, double decrement, double& step, int first_halving);
  /// The full steps (t = 1) of every searching lane tried at once; `accepted` lanes have taken theirs.
  void first_trials(const bool (&searching)[kLanes], const Lanes& decrement, bool (&accepted)[kLanes]);
  /// The Newton steps Δν = (G + diag(extra))⁻¹ rhs of every lane into step_mean_, and G Δν into gram_step_.
  void newton_steps(Lanes& ok);
  /// newton_steps in mixed precision (see the file's comment).
  void mixed_precision_steps(Lanes& ok);
  /// gram_step_ = G Δν and residual_ = rhs − (G + diag(extra)) Δν for every lane, from step_mean_.
  void update_residual();
  /// One lane's Newton step by a factorisation in double.
  void redo_in_double(int lane, Lanes& ok);

  const PosteriorProblem& p_;
  Index n_;
  bool mixed_;
  LaneCholesky<float> single_;   // used when mixed_
  LaneCholesky<double> double_;  // used otherwise
  Eigen::MatrixXf gram_single_;  // (H, H) G rounded to float when mixed_
  LaneCholesky<float>::ScalarVectors extra_single_, solve_single_;
  // Per lane: the point it holds (−1: none), its Newton steps, and a bound on how much the inexact step adds to
  // the next decrement (0 for a step solved in double).
  Index point_[kLanes];
  int steps_[kLanes];
  double inexact_[kLanes];
  // (kLanes, H) state and Newton system of every lane
  LaneVectors projected_, mean_, sd_, density_, erf_, expected_abs_, gram_mean_;
  LaneVectors grad_mean_, grad_sd_, coupling_, curvature_sd_, extra_, rhs_, residual_, step_mean_, step_sd_, gram_step_;
  Eigen::MatrixXd lane_system_;  // (H, H) one lane's system factorised in double
  // (kLanes, H) the full steps' trial points, φ, erf and E|z| (first_trials)
  LaneVectors trial_mean_lanes_, trial_sd_lanes_, trial_density_lanes_, trial_erf_lanes_, trial_abs_lanes_;
  // (H) one lane's trial point in the line search, and that lane's vectors copied contiguous
  Eigen::VectorXd trial_mean_, trial_sd_, trial_density_, trial_erf_, trial_abs_;
  Eigen::VectorXd lane_mean_, lane_sd_, lane_abs_, lane_step_mean_, lane_step_sd_, lane_gram_step_;
  Eigen::ArrayXd ratio_, ds_, shifted_, change_terms_;
};

}  // namespace entrosum::detail
