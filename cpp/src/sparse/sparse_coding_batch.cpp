#include "sparse_coding_batch.hpp"

namespace entrosum::detail {

// ---- LaneCholesky ------------------------------------------------------------------------------------------------

// Left-looking by blocks of kCols columns. For a block of columns J and rows I below the finished columns K:
//   acc = A(I, J) − L(I, K) L(J, K)ᵀ          (R × C accumulators in registers, R + C loads per k)
// then, still in registers, the diagonal block is factorised (I = J) or the rows below solve against it
// (L(I, J) = acc L(J, J)⁻ᵀ), and the finished entries are stored once.

template <typename S>
template <int R, int C>
EIGEN_ALWAYS_INLINE void LaneCholesky<S>::accumulate(const Gram& gram, const ScalarVectors& extra, Index row,
                                                     Index column, ScalarLanes (&sum)[R][C]) const {
  // Inlined into its callers, whose local sums then stay in registers through the loop.
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      sum[r][c] = ScalarLanes::Constant(gram(row + r, column + c));
      if (row + r == column + c) sum[r][c] += extra.col(row + r).array();
    }
  }
  const S* rows_k = at(row, 0);        // L(row.., k)
  const S* columns_k = at(column, 0);  // L(column.., k)
  for (Index k = 0; k < column; ++k) {
    ScalarLanes left[R], right[C];
    for (int r = 0; r < R; ++r) left[r] = Eigen::Map<const ScalarLanes>(rows_k + r * kLanes);
    for (int c = 0; c < C; ++c) right[c] = Eigen::Map<const ScalarLanes>(columns_k + c * kLanes);
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) sum[r][c] -= left[r] * right[c];
    // the next column of the packed storage: entry (i, k + 1) lies n − k − 1 entries after (i, k)
    rows_k += (n_ - k - 1) * kLanes;
    columns_k += (n_ - k - 1) * kLanes;
  }
}

template <typename S>
template <int C>
void LaneCholesky<S>::diagonal_block(const Gram& gram, const ScalarVectors& extra, Index column, ScalarLanes& ok) {
  ScalarLanes acc[C][C];
  accumulate<C, C>(gram, extra, column, column, acc);
  for (int c = 0; c < C; ++c) {
    for (int previous = 0; previous < c; ++previous)
      for (int r = c; r < C; ++r) acc[r][c] -= acc[r][previous] * acc[c][previous];
    ok = (acc[c][c] > S(0)).select(ok, S(0));  // NaN fails too
    acc[c][c] = acc[c][c].sqrt();
    const ScalarLanes inverse = acc[c][c].inverse();
    inverse_diagonal_.col(column + c) = inverse.matrix();
    for (int r = c + 1; r < C; ++r) acc[r][c] *= inverse;
  }
  for (int c = 0; c < C; ++c)
    for (int r = c; r < C; ++r) Eigen::Map<ScalarLanes>(at(column + r, column + c)) = acc[r][c];
}

template <typename S>
template <int R, int C>
void LaneCholesky<S>::below_block(const Gram& gram, const ScalarVectors& extra, Index row, Index column) {
  ScalarLanes acc[R][C];
  accumulate<R, C>(gram, extra, row, column, acc);
  for (int c = 0; c < C; ++c) {
    for (int previous = 0; previous < c; ++previous) {
      const ScalarLanes factor = Eigen::Map<const ScalarLanes>(at(column + c, column + previous));
      for (int r = 0; r < R; ++r) acc[r][c] -= acc[r][previous] * factor;
    }
    const ScalarLanes inverse = inverse_diagonal_.col(column + c).array();
    for (int r = 0; r < R; ++r) acc[r][c] *= inverse;
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) Eigen::Map<ScalarLanes>(at(row + r, column + c)) = acc[r][c];
}

template <typename S>
template <int C>
void LaneCholesky<S>::column_block(const Gram& gram, const ScalarVectors& extra, Index column, ScalarLanes& ok) {
  diagonal_block<C>(gram, extra, column, ok);
  Index row = column + C;
  for (; row + kRows <= n_; row += kRows) below_block<kRows, C>(gram, extra, row, column);
  below_tail<C, kRows - 1>(gram, extra, row, column);
}

template <typename S>
template <int C, int R>
void LaneCholesky<S>::below_tail(const Gram& gram, const ScalarVectors& extra, Index row, Index column) {
  // The last n − row < kRows rows: one block of exactly that many.
  if constexpr (R > 0) {
    if (n_ - row == R) {
      below_block<R, C>(gram, extra, row, column);
    } else {
      below_tail<C, R - 1>(gram, extra, row, column);
    }
  }
}

template <typename S>
void LaneCholesky<S>::factor(const Gram& gram, const ScalarVectors& extra, ScalarLanes& ok) {
  ok.setOnes();
  for (Index column = 0; column < n_; column += kCols) factor_columns<kCols>(gram, extra, column, ok);
}

template <typename S>
template <int C>
void LaneCholesky<S>::factor_columns(const Gram& gram, const ScalarVectors& extra, Index column, ScalarLanes& ok) {
  // Blocks of kCols columns; the last block of the matrix may be narrower.
  if constexpr (C > 1) {
    if (n_ - column < C) {
      factor_columns<C - 1>(gram, extra, column, ok);
      return;
    }
  }
  column_block<C>(gram, extra, column, ok);
}

template <typename S>
void LaneCholesky<S>::solve(ScalarVectors& rhs) const {
  // L y = b: y_j = (b_j − Σ_{k<j} L(j, k) y_k) / L_jj, a dot product per entry (the partial sums of k < j
  // accumulated in registers for four entries at a time).
  Index j = 0;
  for (; j + 4 <= n_; j += 4) {
    ScalarLanes value[4];
    for (int c = 0; c < 4; ++c) value[c] = rhs.col(j + c).array();
    const S* column_k = at(j, 0);
    for (Index k = 0; k < j; ++k) {
      const ScalarLanes y = rhs.col(k).array();
      for (int c = 0; c < 4; ++c) value[c] -= Eigen::Map<const ScalarLanes>(column_k + c * kLanes) * y;
      column_k += (n_ - k - 1) * kLanes;
    }
    for (int c = 0; c < 4; ++c) {
      for (int previous = 0; previous < c; ++previous)
        value[c] -= Eigen::Map<const ScalarLanes>(at(j + c, j + previous)) * value[previous];
      value[c] *= inverse_diagonal_.col(j + c).array();
      rhs.col(j + c) = value[c].matrix();
    }
  }
  for (; j < n_; ++j) {
    ScalarLanes value = rhs.col(j).array();
    for (Index k = 0; k < j; ++k) value -= Eigen::Map<const ScalarLanes>(at(j, k)) * rhs.col(k).array();
    rhs.col(j) = (value * inverse_diagonal_.col(j).array()).matrix();
  }
  // Lᵀ x = y: x_j = (y_j − Σ_{i>j} L(i, j) x_i) / L_jj, four entries at a time from the last.
  Index end = n_;
  for (; end >= 4; end -= 4) {
    const Index first = end - 4;
    ScalarLanes value[4];
    for (int c = 0; c < 4; ++c) value[c] = rhs.col(first + c).array();
    for (Index i = end; i < n_; ++i) {
      const ScalarLanes x = rhs.col(i).array();
      for (int c = 0; c < 4; ++c) value[c] -= Eigen::Map<const ScalarLanes>(at(i, first + c)) * x;
    }
    for (int c = 3; c >= 0; --c) {
      for (int later = c + 1; later < 4; ++later)
        value[c] -= Eigen::Map<const ScalarLanes>(at(first + later, first + c)) * value[later];
      value[c] *= inverse_diagonal_.col(first + c).array();
      rhs.col(first + c) = value[c].matrix();
    }
  }
  for (Index jj = end - 1; jj >= 0; --jj) {
    ScalarLanes value = rhs.col(jj).array();
    for (Index i = jj + 1; i < n_; ++i) value -= Eigen::Map<const ScalarLanes>(at(i, jj)) * rhs.col(i).array();
    rhs.col(jj) = (value * inverse_diagonal_.col(jj).array()).matrix();
  }
}

template class LaneCholesky<float>;
template class LaneCholesky<double>;

namespace {

using ArrayRef = Eigen::Ref<Eigen::ArrayXd>;
using ConstArrayRef = Eigen::Ref<const Eigen::ArrayXd>;

/// φ(u), erf(u/√2) and E|z| = 2 s φ(u) + ν erf(u/√2) for u = ν/s, entry by entry: over the components of one lane
/// (line_search) or over the lanes of one component (first_trials). φ by Eigen's vectorised exp, erf one at a time
/// (no vector erf for double).
void laplace_terms_of(const ConstArrayRef& mean, const ConstArrayRef& sd, ArrayRef ratio, ArrayRef density,
                      ArrayRef erf, ArrayRef expected_abs) {
  ratio = mean / sd;
  density = kInvSqrtTwoPi * (-0.5 * ratio.square()).exp();
  for (Index i = 0; i < ratio.size(); ++i) erf(i) = std::erf(ratio(i) * kInvSqrtTwo);
  expected_abs = 2.0 * sd * density + mean * erf;
}

/// The entries of f's change beyond its quadratic part when s moves by ds and E|z| from `before` to `after`:
/// log1p(ds/s) − a (after − before) − ½ G_hh ds (2 s + ds), with log1p(x) = log(v) x / (v − 1), v = 1 + x (exact to
/// a few ulps; Goldberg 1991), so that the logarithms are Eigen's vectorised ones. `a` and `gram_diagonal` are
/// arrays over components or one component's numbers; `ratio` and `shifted` are workspace.
template <typename Scale, typename Diagonal>
void change_terms(const ConstArrayRef& sd, const ConstArrayRef& ds, const ConstArrayRef& after,
                  const ConstArrayRef& before, const Scale& a, const Diagonal& gram_diagonal, ArrayRef ratio,
                  ArrayRef shifted, ArrayRef out) {
  ratio = ds / sd;
  shifted = 1.0 + ratio;
  out = (shifted == 1.0).select(ratio, shifted.log() * ratio / (shifted - 1.0)) - a * (after - before) -
        0.5 * gram_diagonal * ds * (2.0 * sd + ds);
}

}  // namespace

// ---- DiagonalBatchSolver -----------------------------------------------------------------------------------------

DiagonalBatchSolver::DiagonalBatchSolver(const PosteriorProblem& problem)
    : p_(problem),
      n_(problem.n_components),
      mixed_(problem.solver.mixed_precision),
      single_(mixed_ ? n_ : 0),
      double_(mixed_ ? 0 : n_),
      gram_single_(mixed_ ? problem.gram.cast<float>() : Eigen::MatrixXf()),
      extra_single_(kLanes, mixed_ ? n_ : 0),
      solve_single_(kLanes, mixed_ ? n_ : 0),
      projected_(LaneVectors::Zero(kLanes, n_)),
      mean_(LaneVectors::Zero(kLanes, n_)),
      sd_(kLanes, n_),
      density_(kLanes, n_),
      erf_(kLanes, n_),
      expected_abs_(kLanes, n_),
      gram_mean_(LaneVectors::Zero(kLanes, n_)),
      grad_mean_(kLanes, n_),
      grad_sd_(kLanes, n_),
      coupling_(kLanes, n_),
      curvature_sd_(kLanes, n_),
      extra_(kLanes, n_),
      rhs_(kLanes, n_),
      residual_(kLanes, n_),
      step_mean_(kLanes, n_),
      step_sd_(kLanes, n_),
      gram_step_(kLanes, n_),
      trial_mean_(n_),
      trial_sd_(n_),
      trial_density_(n_),
      trial_erf_(n_),
      trial_abs_(n_),
      lane_mean_(n_),
      lane_sd_(n_),
      lane_abs_(n_),
      lane_step_mean_(n_),
      lane_step_sd_(n_),
      lane_gram_step_(n_),
      ratio_(n_),
      ds_(n_),
      shifted_(n_),
      change_terms_(n_) {
  if (mixed_) {
    for (LaneVectors* lanes :
         {&trial_mean_lanes_, &trial_sd_lanes_, &trial_density_lanes_, &trial_erf_lanes_, &trial_abs_lanes_})
      lanes->resize(kLanes, n_);
  }
  // An empty lane holds the benign point x = 0 at the start's standard deviations: its arithmetic stays finite.
  for (int lane = 0; lane < kLanes; ++lane) {
    point_[lane] = -1;
    steps_[lane] = 0;
    inexact_[lane] = 0.0;
    sd_.row(lane) = p_.initial_sd.transpose();
  }
  for (int lane = 0; lane < kLanes; ++lane) {
    for (Index h = 0; h < n_; ++h) {
      const LaplaceTerms terms = laplace_terms(0.0, sd_(lane, h));
      density_(lane, h) = terms.density;
      erf_(lane, h) = terms.erf;
      expected_abs_(lane, h) = terms.expected_abs;
    }
  }
}

void DiagonalBatchSolver::evaluate(const Eigen::VectorXd& mean, const Eigen::VectorXd& sd, Eigen::VectorXd& density,
                                   Eigen::VectorXd& erf, Eigen::VectorXd& expected_abs) {
  laplace_terms_of(mean.array(), sd.array(), ratio_, density.array(), erf.array(), expected_abs.array());
}

void DiagonalBatchSolver::load(int lane, Index point, const RowMatrix<double>& projected,
                               const RowMatrix<double>& starts, const RowMatrix<double>& gram_starts) {
  point_[lane] = point;
  steps_[lane] = 0;
  projected_.row(lane) = projected.row(point);
  gram_mean_.row(lane) = gram_starts.row(point);
  trial_mean_ = starts.row(point).transpose();
  evaluate(trial_mean_, p_.initial_sd, trial_density_, trial_erf_, trial_abs_);
  mean_.row(lane) = trial_mean_.transpose();
  sd_.row(lane) = p_.initial_sd.transpose();
  density_.row(lane) = trial_density_.transpose();
  erf_.row(lane) = trial_erf_.transpose();
  expected_abs_.row(lane) = trial_abs_.transpose();
}

void DiagonalBatchSolver::finish(int lane, bool converged, RowMatrix<double>& means, RowMatrix<double>& variances,
                                 RowMatrix<double>& expected_abs, std::vector<PointResult>& results) {
  const Index point = point_[lane];
  means.row(point) = mean_.row(lane);
  variances.row(point) = sd_.row(lane).cwiseAbs2();
  expected_abs.row(point) = expected_abs_.row(lane);
  PointResult& result = results[static_cast<std::size_t>(point)];
  trial_sd_ = sd_.row(lane).transpose();
  result.log_det = 2.0 * trial_sd_.array().log().sum();
  result.steps = steps_[lane];
  result.converged = converged;
  point_[lane] = -1;
}

void DiagonalBatchSolver::first_trials(const bool (&searching)[kLanes], const Lanes& decrement,
                                       bool (&accepted)[kLanes]) {
  // line_search's first trial, t = 1, with the lanes side by side: the same terms, summed over h per lane.
  const double b = p_.noise_precision;
  const auto& a = p_.inverse_scale;
  const auto gram_diagonal = p_.gram.diagonal();
  Lanes quadratic = Lanes::Zero(), change = Lanes::Zero(), positive = Lanes::Ones();
  for (Index h = 0; h < n_; ++h) {
    const Lanes step = step_mean_.col(h).array(), gram_step = gram_step_.col(h).array();
    quadratic += b * projected_.col(h).array() * step - mean_.col(h).array() * gram_step - 0.5 * step * gram_step;
    const Lanes sd = sd_.col(h).array(), ds = step_sd_.col(h).array();
    const Lanes mean = mean_.col(h).array() + step, trial_sd = sd + ds;
    positive = (trial_sd > 0.0).select(positive, 0.0);
    Lanes ratio, shifted, density, erf, expected_abs, terms;
    laplace_terms_of(mean, trial_sd, ratio, density, erf, expected_abs);
    trial_mean_lanes_.col(h) = mean.matrix();
    trial_sd_lanes_.col(h) = trial_sd.matrix();
    trial_density_lanes_.col(h) = density.matrix();
    trial_erf_lanes_.col(h) = erf.matrix();
    trial_abs_lanes_.col(h) = expected_abs.matrix();
    change_terms(sd, ds, expected_abs, expected_abs_.col(h).array(), a(h), gram_diagonal(h), ratio, shifted, terms);
    change += terms;
  }
  change += quadratic;
  Eigen::Array<bool, kLanes, 1> taken;
  for (int lane = 0; lane < kLanes; ++lane)
    taken(lane) = accepted[lane] =
        searching[lane] && positive(lane) != 0.0 && change(lane) >= kArmijo * decrement(lane);
  if (!taken.any()) return;
  for (Index h = 0; h < n_; ++h) {
    mean_.col(h) = taken.select(trial_mean_lanes_.col(h).array(), mean_.col(h).array()).matrix();
    sd_.col(h) = taken.select(trial_sd_lanes_.col(h).array(), sd_.col(h).array()).matrix();
    density_.col(h) = taken.select(trial_density_lanes_.col(h).array(), density_.col(h).array()).matrix();
    erf_.col(h) = taken.select(trial_erf_lanes_.col(h).array(), erf_.col(h).array()).matrix();
    expected_abs_.col(h) = taken.select(trial_abs_lanes_.col(h).array(), expected_abs_.col(h).array()).matrix();
    gram_mean_.col(h) =
        taken.select(gram_mean_.col(h).array() + gram_step_.col(h).array(), gram_mean_.col(h).array()).matrix();
  }
}

bool DiagonalBatchSolver::line_search(int lane, double decrement, double& step, int first_halving) {
  const double b = p_.noise_precision;
  const auto& a = p_.inverse_scale;
  const auto gram_diagonal = p_.gram.diagonal();
  // This lane's vectors, contiguous.
  lane_mean_ = mean_.row(lane).transpose();
  lane_sd_ = sd_.row(lane).transpose();
  lane_abs_ = expected_abs_.row(lane).transpose();
  lane_step_mean_ = step_mean_.row(lane).transpose();
  lane_step_sd_ = step_sd_.row(lane).transpose();
  lane_gram_step_ = gram_step_.row(lane).transpose();
  // The quadratic part changes by t·linear − ½ t²·curvature (as DiagonalPosteriorSolver::line_search).
  const double linear = b * projected_.row(lane).dot(lane_step_mean_.transpose()) - lane_mean_.dot(lane_gram_step_);
  const double curvature = lane_step_mean_.dot(lane_gram_step_);
  double t = std::ldexp(1.0, -first_halving);
  int halvings = first_halving;
  while (((lane_sd_ + t * lane_step_sd_).array() <= 0.0).any()) {
    t *= 0.5;
    if (++halvings > kMaxHalvings) return false;
  }
  for (; halvings <= kMaxHalvings; ++halvings, t *= 0.5) {
    trial_mean_ = lane_mean_ + t * lane_step_mean_;
    trial_sd_ = lane_sd_ + t * lane_step_sd_;
    evaluate(trial_mean_, trial_sd_, trial_density_, trial_erf_, trial_abs_);
    ds_ = t * lane_step_sd_.array();
    change_terms(lane_sd_.array(), ds_, trial_abs_.array(), lane_abs_.array(), a.array(), gram_diagonal.array(), ratio_,
                 shifted_, change_terms_);
    const double change = t * linear - 0.5 * t * t * curvature + change_terms_.sum();
    if (change >= kArmijo * t * decrement) {
      mean_.row(lane) = trial_mean_.transpose();
      sd_.row(lane) = trial_sd_.transpose();
      density_.row(lane) = trial_density_.transpose();
      erf_.row(lane) = trial_erf_.transpose();
      expected_abs_.row(lane) = trial_abs_.transpose();
      gram_mean_.row(lane) += t * gram_step_.row(lane);
      step = t;
      return true;
    }
  }
  return false;
}

void DiagonalBatchSolver::newton_steps(Lanes& ok) {
  if (mixed_) {
    mixed_precision_steps(ok);
    return;
  }
  double_.factor(p_.gram, extra_, ok);
  step_mean_ = rhs_;
  double_.solve(step_mean_);
  // G Δν for every lane at once: row l of (kLanes, H) × (H, H) is (G Δν_l)ᵀ, G being symmetric.
  gram_step_.noalias() = step_mean_ * p_.gram;
}

void DiagonalBatchSolver::mixed_precision_steps(Lanes& ok) {
  // Largest relative residual ‖r − P x‖ / ‖r‖ of a step that is kept: Newton then still converges at least
  // linearly by that factor, and the stopping rule in solve_all accounts for the rest.
  constexpr double kKeptResidual = 1e-4;
  // A step is kept as solved, unrefined, when what it leaves of the next decrement, r̃ᵀ P⁻¹ r̃, is below this share
  // of its own predicted gain rᵀx: the next decrement, δ² plus that, is then an exact step's to a millionth.
  constexpr double kUnrefinedShare = 1e-6;
  extra_single_ = extra_.cast<float>();
  LaneCholesky<float>::ScalarLanes ok_single;
  single_.factor(gram_single_, extra_single_, ok_single);
  solve_single_ = rhs_.cast<float>();
  single_.solve(solve_single_);
  step_mean_ = solve_single_.cast<double>();
  update_residual();
  // z = P̃⁻¹ r̃ is both the refinement of the step and, through r̃ᵀ z, the estimate of what the step leaves.
  solve_single_ = residual_.cast<float>();
  single_.solve(solve_single_);
  Lanes left = (residual_.array() * solve_single_.cast<double>().array()).rowwise().sum().abs();
  const Lanes gain = (rhs_.array() * step_mean_.array()).rowwise().sum();
  bool any_refined = false;
  for (int lane = 0; lane < kLanes; ++lane) {
    if (point_[lane] < 0 || ok_single(lane) == 0.0f || left(lane) <= kUnrefinedShare * gain(lane)) continue;
    step_mean_.row(lane) += solve_single_.row(lane).cast<double>();  // x += P̃⁻¹ (r − P x), in double
    any_refined = true;
  }
  if (any_refined) {  // the refined lanes' residuals and estimates (the others' rows come out the same)
    update_residual();
    solve_single_ = residual_.cast<float>();
    single_.solve(solve_single_);
    left = (residual_.array() * solve_single_.cast<double>().array()).rowwise().sum().abs();
  }
  const Lanes residual_norm = residual_.rowwise().squaredNorm().array();
  const Lanes rhs_norm = rhs_.rowwise().squaredNorm().array();
  ok.setOnes();
  for (int lane = 0; lane < kLanes; ++lane) {
    inexact_[lane] = 0.0;
    if (point_[lane] < 0) continue;
    if (ok_single(lane) == 0.0f || !(residual_norm(lane) <= kKeptResidual * kKeptResidual * rhs_norm(lane))) {
      redo_in_double(lane, ok);
      continue;
    }
    inexact_[lane] = left(lane);
  }
}

void DiagonalBatchSolver::update_residual() {
  // G x for every lane at once (row l of (kLanes, H) × (H, H) is (G x_l)ᵀ, G being symmetric), then r − P x with
  // P x = G x + extra ⊙ x.
  gram_step_.noalias() = step_mean_ * p_.gram;
  residual_ = (rhs_.array() - gram_step_.array() - extra_.array() * step_mean_.array()).matrix();
}

void DiagonalBatchSolver::redo_in_double(int lane, Lanes& ok) {
  lane_system_ = p_.gram;
  lane_system_.diagonal() += extra_.row(lane).transpose();
  if (!cholesky_in_place(lane_system_)) {
    ok(lane) = 0.0;
    return;
  }
  lane_step_mean_ = rhs_.row(lane).transpose();
  cholesky_solve_in_place(lane_system_, lane_step_mean_);
  step_mean_.row(lane) = lane_step_mean_.transpose();
  lane_gram_step_.noalias() = p_.gram * lane_step_mean_;
  gram_step_.row(lane) = lane_gram_step_.transpose();
}

void DiagonalBatchSolver::solve_all(const RowMatrix<double>& projected, RowMatrix<double>& starts,
                                    const RowMatrix<double>& gram_starts, RowMatrix<double>& variances,
                                    RowMatrix<double>& expected_abs, std::vector<PointResult>& results) {
  const Index n_points = projected.rows();
  const double b = p_.noise_precision;
  const auto& a = p_.inverse_scale;
  const Eigen::VectorXd gram_diagonal = p_.gram.diagonal();
  const double tol = p_.solver.tol;
  Index next = 0;
  const auto refill = [&] {
    for (int lane = 0; lane < kLanes; ++lane)
      if (point_[lane] < 0 && next < n_points) load(lane, next++, projected, starts, gram_starts);
  };
  const auto any_active = [&] {
    for (int lane = 0; lane < kLanes; ++lane)
      if (point_[lane] >= 0) return true;
    return false;
  };
  refill();
  Lanes ok;
  while (any_active()) {
    // Gradient and Newton system of every lane (DiagonalPosteriorSolver::solve):
    //   ∂f/∂ν = b Wᵀx − Gν − a ⊙ erf(u/√2),  ∂f/∂s = 1/s − 2 a φ(u) − G_hh s,
    //   (G + diag(α − γ²/β)) Δν = g_ν − (γ/β) g_s,  Δs = (g_s − γ Δν)/β.
    for (Index h = 0; h < n_; ++h) {
      const Lanes s = sd_.col(h).array();
      const Lanes u = mean_.col(h).array() / s;
      const Lanes alpha = (2.0 * a(h)) * density_.col(h).array() / s;
      const Lanes gamma = -alpha * u;
      const Lanes beta = (s * s).inverse() + alpha * u * u + gram_diagonal(h);
      grad_sd_.col(h) = (s.inverse() - (2.0 * a(h)) * density_.col(h).array() - gram_diagonal(h) * s).matrix();
      const Lanes coupling = gamma / beta;
      coupling_.col(h) = coupling.matrix();
      curvature_sd_.col(h) = beta.matrix();
      extra_.col(h) = (alpha - gamma * coupling).max(p_.curvature_floor(h)).matrix();
      grad_mean_.col(h) =
          (b * projected_.col(h).array() - gram_mean_.col(h).array() - a(h) * erf_.col(h).array()).matrix();
    }
    rhs_ = (grad_mean_.array() - coupling_.array() * grad_sd_.array()).matrix();
    newton_steps(ok);
    step_sd_ =
        ((grad_sd_.array() - coupling_.array() * curvature_sd_.array() * step_mean_.array()) / curvature_sd_.array())
            .matrix();
    const Lanes decrement =
        (grad_mean_.array() * step_mean_.array() + grad_sd_.array() * step_sd_.array()).rowwise().sum();
    bool searching[kLanes];
    bool any_searching = false;
    for (int lane = 0; lane < kLanes; ++lane) {
      searching[lane] = false;
      if (point_[lane] < 0) continue;
      if (ok(lane) == 0.0) {
        finish(lane, false, starts, variances, expected_abs, results);  // cannot happen for a concave f
      } else if (!(decrement(lane) > tol)) {
        finish(lane, true, starts, variances, expected_abs, results);
      } else if (steps_[lane] >= p_.solver.max_iter) {
        finish(lane, false, starts, variances, expected_abs, results);
      } else {
        searching[lane] = any_searching = true;
      }
    }
    if (any_searching) {
      // Most lanes take the full step: with mixed precision their first trials run side by side, and a lane
      // that rejects its full step goes on alone from t = 1/2. (In double the lanes search alone throughout,
      // summing as the per-point solver does.)
      bool accepted[kLanes] = {};
      if (mixed_) first_trials(searching, decrement, accepted);
      for (int lane = 0; lane < kLanes; ++lane) {
        if (!searching[lane]) continue;
        double step = 1.0;
        if (!accepted[lane] && !line_search(lane, decrement(lane), step, mixed_ ? 1 : 0)) {
          finish(lane, decrement(lane) < 1e3 * tol, starts, variances, expected_abs, results);  // rounding limits
          continue;
        }
        ++steps_[lane];
        // Quadratic convergence: after a full step with decrement δ the next is about δ² (see the per-point solver),
        // plus r̃ᵀ P⁻¹ r̃ for a step solved in mixed precision, which must then be negligible.
        if (step == 1.0 && decrement(lane) * decrement(lane) < tol && inexact_[lane] < 1e-2 * tol)
          finish(lane, true, starts, variances, expected_abs, results);
      }
    }
    refill();
  }
}

}  // namespace entrosum::detail
