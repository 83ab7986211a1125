#include "entrosum/binary/binary_sparse_coding.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "binary_posterior.hpp"
#include "entrosum/core/em.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"

namespace entrosum {

namespace {

using entropy::kLogTwoPi;

/// log p(x, s | Θ) for binary sparse coding, as matrix products over many states at once.
class BinarySparseCodingJoint {
 public:
  explicit BinarySparseCodingJoint(const BinarySparseCodingParams& params)
      : params_(params),
        gram_(params.components.transpose() * params.components),
        inverse_variance_(1.0 / params.noise_variance),
        constant_((-params.prior.array()).log1p().sum() -
                  0.5 * static_cast<double>(params.components.rows()) * (kLogTwoPi + std::log(params.noise_variance))),
        logit_((params.prior.array() / (1.0 - params.prior.array())).log().matrix()) {}

  /// R = [S, t] with t_j = s_j·logit(π) − s_jᵀ WᵀW s_j / (2σ²): with L = [(x − b)ᵀW / σ², 1] and the per-row
  /// c = −‖x − b‖²/(2σ²) + Σ log(1 − π) − (D/2) log 2πσ², log p(x, s) = L Rᵀ + c, because
  /// ‖x − Ws − b‖² = ‖x − b‖² − 2 (x − b)ᵀ W s + sᵀ WᵀW s.
  RowMatrix<double> state_factors(const RowMatrix<double>& states) const {
    RowMatrix<double> out(states.rows(), states.cols() + 1);
    out.leftCols(states.cols()) = states;
    out.col(states.cols()) = state_terms(states);
    return out;
  }

  RowMatrix<double> row_factors(const detail::RowsD& rows, Eigen::VectorXd& row_offsets) const {
    const RowMatrix<double> projected = project(rows, row_offsets);
    RowMatrix<double> out(rows.rows(), projected.cols() + 1);
    out.leftCols(projected.cols()) = inverse_variance_ * projected;
    out.col(projected.cols()).setOnes();
    return out;
  }

 private:
  /// (x − b)ᵀ W per row, and the per-row part −‖x − b‖²/(2σ²) + Σ log(1 − π) − (D/2) log 2πσ².
  RowMatrix<double> project(const detail::RowsD& rows, Eigen::VectorXd& row_terms) const {
    const RowMatrix<double> centred = rows.rowwise() - params_.offset.transpose();
    row_terms = (-0.5 * inverse_variance_) * centred.rowwise().squaredNorm().array() + constant_;
    return centred * params_.components;
  }
  /// s·logit(π) − sᵀ WᵀW s / (2σ²) per state row.
  Eigen::VectorXd state_terms(const RowMatrix<double>& states) const {
    const RowMatrix<double> weighted = states * gram_;
    return states * logit_ - (0.5 * inverse_variance_) * weighted.cwiseProduct(states).rowwise().sum();
  }

  const BinarySparseCodingParams& params_;
  Eigen::MatrixXd gram_;
  double inverse_variance_;
  double constant_;
  Eigen::VectorXd logit_;
};

/// Σ w ‖x − W̃ z̃‖² in expectation, for W̃ = [W b].
double expected_residual(const BinarySparseCodingStats& stats, const Eigen::MatrixXd& extended) {
  return stats.squared_norm - 2.0 * extended.cwiseProduct(stats.cross).sum() +
         (extended.transpose() * extended).cwiseProduct(stats.second_moment).sum();
}

Eigen::MatrixXd extended_components(const BinarySparseCodingParams& params) {
  Eigen::MatrixXd extended(params.components.rows(), params.components.cols() + 1);
  extended << params.components, params.offset;
  return extended;
}

/// Adds one chunk's Σ w x z̃ᵀ, Σ w z̃ z̃ᵀ and Σ w ‖x‖².
void add_chunk(const detail::RowsD& rows, const Eigen::VectorXd& weights, const detail::ChunkPosterior& posterior,
               BinarySparseCodingStats& stats) {
  const Index n_components = stats.second_moment.rows() - 1;
  const RowMatrix<double> weighted_means = weights.asDiagonal() * posterior.means();
  stats.squared_norm += weights.dot(rows.rowwise().squaredNorm());
  stats.cross.leftCols(n_components).noalias() += rows.transpose() * weighted_means;
  stats.cross.col(n_components).noalias() += rows.transpose() * weights;
  // Σ_n w_n Σ_s q_ns s sᵀ: one weight per state row (exact: summed over the rows first)
  if (posterior.shared) {
    const Eigen::VectorXd state_weight = posterior.q.transpose() * weights;
    stats.second_moment.topLeftCorner(n_components, n_components).noalias() +=
        posterior.shared_states->transpose() * state_weight.asDiagonal() * *posterior.shared_states;
  } else {
    RowMatrix<double> weighted_q = weights.asDiagonal() * posterior.q;
    const Eigen::Map<const Eigen::VectorXd> state_weight(weighted_q.data(), weighted_q.size());
    stats.second_moment.topLeftCorner(n_components, n_components).noalias() +=
        posterior.own_states.transpose() * state_weight.asDiagonal() * posterior.own_states;
  }
  const Eigen::VectorXd on = weighted_means.colwise().sum().transpose();
  stats.second_moment.col(n_components).head(n_components) += on;
  stats.second_moment.row(n_components).head(n_components) += on.transpose();
  stats.second_moment(n_components, n_components) += weights.sum();
}

}  // namespace

BinarySparseCodingStats::BinarySparseCodingStats(Index n_features, Index n_components)
    : cross(Eigen::MatrixXd::Zero(n_features, n_components + 1)),
      second_moment(Eigen::MatrixXd::Zero(n_components + 1, n_components + 1)) {}

BinarySparseCodingStats& BinarySparseCodingStats::operator+=(const BinarySparseCodingStats& other) {
  if (cross.size() == 0) return *this = other;
  weight += other.weight;
  squared_norm += other.squared_norm;
  cross += other.cross;
  second_moment += other.second_moment;
  posterior_entropy += other.posterior_entropy;
  log_joint_sum += other.log_joint_sum;
  return *this;
}

void BinarySparseCodingStats::scale(double factor) {
  weight *= factor;
  squared_norm *= factor;
  cross *= factor;
  second_moment *= factor;
  posterior_entropy *= factor;
  log_joint_sum *= factor;
}

void check_binary_sparse_coding_params(const BinarySparseCodingParams& params, Index n_features) {
  const Index n_components = params.components.cols();
  if (params.components.rows() != n_features || n_components < 1)
    throw std::invalid_argument("components must have shape (n_features, n_components)");
  if (params.offset.size() != n_features) throw std::invalid_argument("offset must have n_features entries");
  if (params.prior.size() != n_components) throw std::invalid_argument("prior must have n_components entries");
  if (!params.components.allFinite() || !params.offset.allFinite())
    throw std::invalid_argument("components and offset must be finite");
  if (!(params.noise_variance > 0.0) || !std::isfinite(params.noise_variance))
    throw std::invalid_argument("noise_variance must be positive and finite");
  if (!((params.prior.array() > 0.0) && (params.prior.array() < 1.0)).all())
    throw std::invalid_argument("prior probabilities must lie strictly between 0 and 1");
}

ElboTerms binary_sparse_coding_terms(const BinarySparseCodingStats& stats, const BinarySparseCodingParams& params) {
  const Index n_features = params.components.rows();
  const Index n_components = params.components.cols();
  const double count = stats.weight;
  const double residual = expected_residual(stats, extended_components(params));
  const double log_prior =
      detail::expected_log_prior(stats.second_moment.col(n_components).head(n_components), count, params.prior);
  const double log_likelihood =
      -0.5 * count * static_cast<double>(n_features) * (kLogTwoPi + std::log(params.noise_variance)) -
      0.5 * residual / params.noise_variance;
  ElboTerms terms;
  terms.elbo = (log_prior + log_likelihood + stats.posterior_entropy) / count;
  terms.posterior_entropy = stats.posterior_entropy / count;
  for (Index h = 0; h < n_components; ++h) terms.prior_entropy += entropy::bernoulli(params.prior(h));
  terms.observable_entropy = entropy::gaussian_isotropic(n_features, params.noise_variance);
  return terms;
}

namespace {

/// [W b] = cross · second⁻¹ from the normal equations of the weighted least squares. `second` = Σ E[z̃ z̃ᵀ] is
/// singular when units always switch together (small data, peaked posteriors); every solution then maximises
/// the expected log-likelihood, and the minimum-norm one (second's pseudo-inverse) splits such units' shared
/// column evenly, where a failure would end the fit.
Eigen::MatrixXd solve_normal_equations(const Eigen::MatrixXd& second, const Eigen::MatrixXd& cross) {
  constexpr double kRelativeCutoff = 1e-12;
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(second);
  const Eigen::VectorXd pivots = ldlt.vectorD();
  if (ldlt.info() == Eigen::Success && (pivots.array() > kRelativeCutoff * pivots.cwiseAbs().maxCoeff()).all())
    return ldlt.solve(cross.transpose()).transpose();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(second);
  const Eigen::VectorXd& values = eigen.eigenvalues();
  const double cutoff = kRelativeCutoff * values.cwiseAbs().maxCoeff();
  const Eigen::VectorXd inverse = (values.array() > cutoff).select(values.cwiseInverse(), 0.0);
  return cross * eigen.eigenvectors() * inverse.asDiagonal() * eigen.eigenvectors().transpose();
}

}  // namespace

BinarySparseCodingParams binary_sparse_coding_m_step(const BinarySparseCodingStats& stats,
                                                     const BinarySparseCodingParams& params, bool shared_prior) {
  const Index n_features = params.components.rows();
  const Index n_components = params.components.cols();
  const double count = stats.weight;
  if (!(count > 0.0)) throw NumericalError("the statistics hold no weight");
  // [W b] = (Σ x z̃ᵀ)(Σ z̃ z̃ᵀ)⁻¹ over the units some kept state switches on (and the offset).
  std::vector<Index> active;
  for (Index h = 0; h < n_components; ++h)
    if (stats.second_moment(h, h) > 1e-12 * count) active.push_back(h);
  active.push_back(n_components);
  const Index m = static_cast<Index>(active.size());
  Eigen::MatrixXd second(m, m);
  Eigen::MatrixXd cross(n_features, m);
  for (Index i = 0; i < m; ++i) {
    cross.col(i) = stats.cross.col(active[static_cast<std::size_t>(i)]);
    for (Index j = 0; j < m; ++j)
      second(i, j) = stats.second_moment(active[static_cast<std::size_t>(i)], active[static_cast<std::size_t>(j)]);
  }
  const Eigen::MatrixXd solved = solve_normal_equations(second, cross);
  Eigen::MatrixXd extended = extended_components(params);
  for (Index i = 0; i < m; ++i) extended.col(active[static_cast<std::size_t>(i)]) = solved.col(i);

  BinarySparseCodingParams updated;
  updated.components = extended.leftCols(n_components);
  updated.offset = extended.col(n_components);
  const double power = stats.squared_norm / (count * static_cast<double>(n_features));
  const double noise = expected_residual(stats, extended) / (count * static_cast<double>(n_features));
  updated.noise_variance = std::max(noise, 1e-12 * power);
  if (!(updated.noise_variance > 0.0) || !std::isfinite(updated.noise_variance) || !updated.components.allFinite())
    throw NumericalError("the noise variance vanished (the data are reproduced exactly)");
  updated.prior = detail::prior_m_step(stats.second_moment.col(n_components).head(n_components), count, shared_prior);
  return updated;
}

template <typename T>
BinarySparseCodingStats binary_sparse_coding_e_step(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                                    const BinarySparseCodingParams& params,
                                                    const BinaryPosteriorOptions& posterior, TruncatedStates* states,
                                                    int iteration, const Execution& execution,
                                                    const BinaryPosteriorOutput<T>& output) {
  const Index n_features = data.cols();
  const Index n_components = params.components.cols();
  check_binary_sparse_coding_params(params, n_features);
  check_binary_posterior(posterior, n_components);
  const BinarySparseCodingJoint joint(params);
  return detail::binary_e_step<T, BinarySparseCodingStats>(
      data, weights, joint, n_components, params.prior, posterior, states, iteration, execution, output,
      [&] { return BinarySparseCodingStats(n_features, n_components); }, add_chunk);
}

namespace {

template <typename T>
class BinarySparseCodingModel {
 public:
  using Params = BinarySparseCodingParams;
  using Expectation = BinarySparseCodingStats;

  BinarySparseCodingModel(const DataRef<T>& data, const Eigen::VectorXd& weights,
                          const BinarySparseCodingOptions& options, Index n_components)
      : data_(data), weights_(weights), options_(options) {
    if (options.posterior.kind == BinaryPosteriorKind::truncated)
      states_ = TruncatedStates(data.rows(), options.posterior.n_states, n_components, options.posterior.seed);
  }

  Expectation e_step(const Params& params) const {
    return binary_sparse_coding_e_step<T>(data_, weights_, params, options_.posterior, &states_, iteration_++,
                                          options_.execution);
  }
  ElboTerms evaluate(const Expectation& stats, const Params& params) const {
    return binary_sparse_coding_terms(stats, params);
  }
  Params m_step(const Expectation& stats, const Params& params) const {
    return binary_sparse_coding_m_step(stats, params, options_.shared_prior);
  }

 private:
  DataRef<T> data_;
  const Eigen::VectorXd& weights_;
  const BinarySparseCodingOptions& options_;
  mutable TruncatedStates states_;
  mutable int iteration_ = 0;
};

}  // namespace

template <typename T>
BinarySparseCodingFit fit_binary_sparse_coding(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                               const BinarySparseCodingParams& initial,
                                               const BinarySparseCodingOptions& options,
                                               const IterationCallback& on_iteration) {
  const auto start = std::chrono::steady_clock::now();
  if (data.rows() < 1) throw std::invalid_argument("the data have no rows");
  check_binary_sparse_coding_params(initial, data.cols());
  check_binary_posterior(options.posterior, initial.components.cols());
  if (weights.size() != 0 &&
      (weights.size() != data.rows() || !(weights.array() >= 0.0).all() || !(weights.sum() > 0.0)))
    throw std::invalid_argument("sample weights must be one non-negative value per row, not all zero");
  BinarySparseCodingParams params = initial;
  if (options.shared_prior) params.prior.setConstant(params.prior.mean());
  const BinarySparseCodingModel<T> model(data, weights, options, initial.components.cols());
  BinarySparseCodingFit fit{params, ConvergenceMonitor(options.stop)};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fit.params = run_em(model, params, fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

template <typename T>
BinarySparseCodingStats binary_sparse_coding_infer(const DataRef<T>& data, const BinarySparseCodingParams& params,
                                                   const BinaryPosteriorOptions& posterior, int rounds,
                                                   const Execution& execution, const BinaryPosteriorOutput<T>& output) {
  check_binary_posterior(posterior, params.components.cols());
  const Eigen::VectorXd no_weights;
  if (posterior.kind == BinaryPosteriorKind::exact)
    return binary_sparse_coding_e_step<T>(data, no_weights, params, posterior, nullptr, 0, execution, output);
  if (rounds < 1) throw std::invalid_argument("inference needs at least one round of proposals");
  TruncatedStates states(data.rows(), posterior.n_states, params.components.cols(), posterior.seed);
  for (int round = 0; round + 1 < rounds; ++round)
    binary_sparse_coding_e_step<T>(data, no_weights, params, posterior, &states, round, execution);
  return binary_sparse_coding_e_step<T>(data, no_weights, params, posterior, &states, rounds - 1, execution, output);
}

#define ENTROSUM_INSTANTIATE(T)                                                                                        \
  template BinarySparseCodingStats binary_sparse_coding_e_step<T>(                                                     \
      const DataRef<T>&, const Eigen::VectorXd&, const BinarySparseCodingParams&, const BinaryPosteriorOptions&,       \
      TruncatedStates*, int, const Execution&, const BinaryPosteriorOutput<T>&);                                       \
  template BinarySparseCodingFit fit_binary_sparse_coding<T>(                                                          \
      const DataRef<T>&, const Eigen::VectorXd&, const BinarySparseCodingParams&, const BinarySparseCodingOptions&,    \
      const IterationCallback&);                                                                                       \
  template BinarySparseCodingStats binary_sparse_coding_infer<T>(const DataRef<T>&, const BinarySparseCodingParams&,   \
                                                                 const BinaryPosteriorOptions&, int, const Execution&, \
                                                                 const BinaryPosteriorOutput<T>&);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
