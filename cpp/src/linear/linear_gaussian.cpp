#include "entrosum/linear/linear_gaussian.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "entrosum/core/em.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "top_eigen.hpp"

namespace entrosum {

namespace {

using entropy::kLogTwoPi;

/// Cholesky factor of a symmetric positive-definite matrix, or a NumericalError naming `what`.
Eigen::LLT<Eigen::MatrixXd> cholesky_or_throw(const Eigen::MatrixXd& matrix, const char* what) {
  Eigen::LLT<Eigen::MatrixXd> llt(matrix);
  if (llt.info() != Eigen::Success) throw NumericalError(std::string(what) + " is not positive definite");
  return llt;
}

/// Parameters for data of `n_features` columns: mean (D), components (D, H), noise variances (D); an
/// std::invalid_argument naming what does not fit (a pass would read out of bounds).
void check_params(const LinearGaussianParams& params, Index n_features) {
  if (params.mean.size() != n_features || params.components.rows() != n_features ||
      params.noise_variance.size() != n_features)
    throw std::invalid_argument("linear-Gaussian parameters of mean " + std::to_string(params.mean.size()) +
                                ", components " + std::to_string(params.components.rows()) + " x " +
                                std::to_string(params.components.cols()) + " and noise variances " +
                                std::to_string(params.noise_variance.size()) + " do not fit data of " +
                                std::to_string(n_features) + " features");
}

/// (n_features, n_components) Ψ⁻¹ W
Eigen::MatrixXd noise_scaled_components(const LinearGaussianParams& params) {
  return params.components.array().colwise() / params.noise_variance.array();
}

}  // namespace

LinearGaussianPosterior LinearGaussianPosterior::from(const LinearGaussianParams& params) {
  const Index n_components = params.components.cols();
  const Eigen::MatrixXd scaled = noise_scaled_components(params);      // (D, H) Ψ⁻¹W
  Eigen::MatrixXd precision = params.components.transpose() * scaled;  // (H, H) I + WᵀΨ⁻¹W
  precision.diagonal().array() += 1.0;
  const auto llt = cholesky_or_throw(precision, "the posterior precision I + WᵀΨ⁻¹W");
  LinearGaussianPosterior posterior;
  posterior.covariance = llt.solve(Eigen::MatrixXd::Identity(n_components, n_components));
  posterior.projection = scaled * posterior.covariance;
  // log det G = −log det(I + WᵀΨ⁻¹W)
  const double log_det_precision = 2.0 * Eigen::MatrixXd(llt.matrixL()).diagonal().array().log().sum();
  posterior.entropy = entropy::gaussian_from_log_det(n_components, -log_det_precision);
  return posterior;
}

LinearGaussianStats::LinearGaussianStats(Index n_features, Index n_components)
    : centred_square(Eigen::VectorXd::Zero(n_features)),
      cross(Eigen::MatrixXd::Zero(n_features, n_components)),
      mean_outer(Eigen::MatrixXd::Zero(n_components, n_components)) {}

LinearGaussianStats& LinearGaussianStats::operator+=(const LinearGaussianStats& other) {
  count += other.count;
  centred_square += other.centred_square;
  cross += other.cross;
  mean_outer += other.mean_outer;
  return *this;
}

template <typename T>
void accumulate_linear_gaussian_stats(const DataRef<T>& chunk, const Eigen::VectorXd& mean,
                                      const LinearGaussianPosterior& posterior, LinearGaussianStats& stats) {
  const RowMatrix<T> centred = chunk.rowwise() - mean.template cast<T>().transpose();      // (n, D)
  const RowMatrix<T> posterior_means = centred * posterior.projection.template cast<T>();  // (n, H) ν_n
  stats.count += static_cast<double>(chunk.rows());
  stats.centred_square += centred.colwise().squaredNorm().template cast<double>().transpose();
  stats.cross += (centred.transpose() * posterior_means).template cast<double>();
  stats.mean_outer += (posterior_means.transpose() * posterior_means).template cast<double>();
}

LinearGaussianStats linear_gaussian_stats_from_moments(const Moments& moments,
                                                       const LinearGaussianPosterior& posterior) {
  LinearGaussianStats stats;
  stats.count = moments.count;
  stats.centred_square = moments.scatter_diagonal;
  // Σ_n (x_n − μ) ν_nᵀ = scatter · projection;  Σ_n ν_n ν_nᵀ = projectionᵀ · scatter · projection
  if (posterior.projection.cols() == 0) {  // no component: Eigen's self-adjoint product would bind a null reference
    stats.cross = Eigen::MatrixXd::Zero(moments.scatter.rows(), 0);
    stats.mean_outer = Eigen::MatrixXd::Zero(0, 0);
    return stats;
  }
  stats.cross = moments.scatter.selfadjointView<Eigen::Lower>() * posterior.projection;
  stats.mean_outer = posterior.projection.transpose() * stats.cross;
  return stats;
}

LinearGaussianExpectation linear_gaussian_expectation(const Moments& moments, const LinearGaussianParams& params) {
  LinearGaussianExpectation expectation;
  expectation.posterior = LinearGaussianPosterior::from(params);
  if (moments.mean == params.mean) {
    expectation.stats = linear_gaussian_stats_from_moments(moments, expectation.posterior);
    return expectation;
  }
  // Σ (x − μ)(x − μ)ᵀ = scatter + N δδᵀ with δ = x̄ − μ
  Moments about = moments;
  const Eigen::VectorXd delta = moments.mean - params.mean;
  about.scatter_diagonal += moments.count * delta.cwiseAbs2();
  about.scatter.triangularView<Eigen::Lower>() += moments.count * delta * delta.transpose();
  expectation.stats = linear_gaussian_stats_from_moments(about, expectation.posterior);
  return expectation;
}

ElboTerms linear_gaussian_elbo(const LinearGaussianExpectation& expectation, const LinearGaussianParams& params) {
  const LinearGaussianStats& stats = expectation.stats;
  const LinearGaussianPosterior& posterior = expectation.posterior;
  const double count = stats.count;
  const Index n_components = params.components.cols();
  const Eigen::MatrixXd& components = params.components;       // (D, H)
  const Eigen::ArrayXd noise = params.noise_variance.array();  // (D)

  // Σ_n E_q[z zᵀ] = Σ_n ν_n ν_nᵀ + N G
  const Eigen::MatrixXd second_moment = stats.mean_outer + count * posterior.covariance;
  // Σ_n E_q (x_nd − w_dᵀ z)² = Σ (x_nd − μ_d)² − 2 w_dᵀ Σ ν_n (x_nd − μ_d) + w_dᵀ Σ E[zzᵀ] w_d
  const Eigen::ArrayXd expected_residual = stats.centred_square.array() -
                                           2.0 * (components.array() * stats.cross.array()).rowwise().sum() +
                                           ((components * second_moment).array() * components.array()).rowwise().sum();

  // E_q log p(x | z) and E_q log p(z), per sample
  const double expected_log_observable =
      -0.5 * (noise.size() * kLogTwoPi + noise.log().sum()) - 0.5 * (expected_residual / noise).sum() / count;
  const double expected_log_prior = -0.5 * n_components * kLogTwoPi - 0.5 * second_moment.trace() / count;

  ElboTerms terms;
  terms.posterior_entropy = posterior.entropy;
  terms.prior_entropy = entropy::gaussian_isotropic(n_components, 1.0);
  terms.observable_entropy = entropy::gaussian_diagonal(params.noise_variance);
  terms.elbo = expected_log_observable + expected_log_prior + posterior.entropy;
  return terms;
}

LinearGaussianParams linear_gaussian_m_step(const LinearGaussianExpectation& expectation,
                                            const LinearGaussianParams& params, NoiseModel noise, double noise_floor,
                                            ParameterExpansion expansion) {
  const LinearGaussianStats& stats = expectation.stats;
  const double count = stats.count;
  // W = [Σ (x − μ) νᵀ] [Σ (G + ννᵀ)]⁻¹
  const Eigen::MatrixXd second_moment = stats.mean_outer + count * expectation.posterior.covariance;
  const auto llt = cholesky_or_throw(second_moment, "the expected latent second moment");
  LinearGaussianParams updated;
  updated.mean = params.mean;
  updated.components = llt.solve(stats.cross.transpose()).transpose();
  // Ψ = diag(S − W (1/N) Σ ν (x − μ)ᵀ); PPCA's σ² is its mean over features.
  const Eigen::VectorXd residual =
      (stats.centred_square.array() - (updated.components.array() * stats.cross.array()).rowwise().sum()) / count;
  if (noise == NoiseModel::isotropic) {
    updated.noise_variance = Eigen::VectorXd::Constant(residual.size(), std::max(residual.mean(), noise_floor));
  } else {
    updated.noise_variance = residual.cwiseMax(noise_floor);
  }
  if (expansion == ParameterExpansion::prior_covariance) {
    // PX-EM (Liu, Rubin & Wu 1998): the expanded model's prior covariance Σ_z = (1/N) Σ E[zzᵀ] is
    // learned too and folded back into W (z = L z' with Σ_z = L Lᵀ, z' ~ N(0, I)). The likelihood is
    // unchanged by the fold; it removes plain EM's slow drift of the column scales (rate ≈ 1 − σ²/λ).
    const Eigen::LLT<Eigen::MatrixXd> prior_cholesky(second_moment / count);
    updated.components = updated.components * Eigen::MatrixXd(prior_cholesky.matrixL());
  }
  return updated;
}

template <typename T>
LinearGaussianExpectation LinearGaussianModel<T>::e_step(const LinearGaussianParams& params) const {
  LinearGaussianExpectation expectation;
  expectation.posterior = LinearGaussianPosterior::from(params);
  if (moments_.full()) {
    expectation.stats = linear_gaussian_stats_from_moments(moments_, expectation.posterior);
    return expectation;
  }
  const Index n_features = data_.cols();
  const Index n_components = params.components.cols();
  const Index chunk_size = resolve_chunk_size(execution_, n_features, sizeof(T));
  expectation.stats = reduce_rows(
      data_.rows(), chunk_size, execution_, [&] { return LinearGaussianStats(n_features, n_components); },
      [&](Index begin, Index end, LinearGaussianStats& into) {
        accumulate_linear_gaussian_stats<T>(data_.middleRows(begin, end - begin), params.mean, expectation.posterior,
                                            into);
      });
  return expectation;
}

double linear_gaussian_noise_floor(const Moments& moments) {
  const double mean_variance = moments.variances().mean();
  if (!(mean_variance > 0.0)) throw NumericalError("the data have zero variance in every feature");
  return kRelativeNoiseFloor * mean_variance;
}

LinearGaussianParams linear_gaussian_start(const Moments& moments, const LinearGaussianParams& initial,
                                           NoiseModel noise) {
  LinearGaussianParams params = initial;
  params.mean = moments.mean;  // the exact optimum of μ for any W and Ψ
  const Index n_features = moments.mean.size();
  if (params.components.rows() != n_features || params.components.cols() < 1)
    throw std::invalid_argument("initial components must have shape (n_features, n_components)");
  if (params.noise_variance.size() == 0) {
    // Start from the data's scale: Ψ at the feature variances (their mean for PPCA), W in units of
    // the root mean variance.
    const Eigen::VectorXd variances = moments.variances();
    const double mean_variance = variances.mean();
    params.noise_variance = noise == NoiseModel::isotropic
                                ? Eigen::VectorXd::Constant(n_features, mean_variance)
                                : Eigen::VectorXd(variances.cwiseMax(kRelativeNoiseFloor * mean_variance));
    params.components *= std::sqrt(mean_variance);
  } else if (params.noise_variance.size() != n_features || !(params.noise_variance.array() > 0.0).all()) {
    throw std::invalid_argument("initial noise variances must be n_features positive values");
  }
  return params;
}

template <typename T>
LinearGaussianFit fit_linear_gaussian(const DataRef<T>& data, const LinearGaussianParams& initial,
                                      const LinearGaussianOptions& options, const IterationCallback& on_iteration) {
  const auto start = std::chrono::steady_clock::now();
  const Moments moments = compute_moments<T>(data, options.precompute, options.execution);
  const LinearGaussianParams params = linear_gaussian_start(moments, initial, options.noise);
  const LinearGaussianModel<T> model(data, moments, options.noise, options.expansion,
                                     linear_gaussian_noise_floor(moments), options.execution);
  LinearGaussianFit fit{params, ConvergenceMonitor(options.stop)};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fit.params = run_em(model, params, fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

LinearGaussianFit ppca_closed_form_from_moments(const Moments& moments, Index n_components,
                                                const Execution& execution) {
  const auto start = std::chrono::steady_clock::now();
  const double noise_floor = linear_gaussian_noise_floor(moments);
  const Index n_features = moments.mean.size();
  if (n_features < 1 || n_components < 0 || n_components > n_features)
    throw std::invalid_argument("the closed form needs 0 <= n_components <= n_features, got n_components = " +
                                std::to_string(n_components) + " for " + std::to_string(n_features) + " features");

  // The top n_components eigenpairs of the covariance and the sum of the others (top_eigen.hpp); the full
  // decomposition only if inverse iteration did not settle. O(D³) without a place to poll: run so that Ctrl-C
  // still stops the fit at once.
  const auto eigen = run_interruptible(execution, [covariance = moments.covariance(), n_components] {
    if (n_components == 0) {  // no eigenpair: σ² is the mean variance
      detail::TopEigen none;
      none.trace = covariance.trace();
      none.vectors.resize(covariance.rows(), 0);
      return none;
    }
    // Every eigenpair (n_components = n_features): the full decomposition at once.
    detail::TopEigen top;
    top.success = false;
    if (n_components < covariance.rows()) {
      top = detail::top_eigen(covariance, n_components);
      if (top.success) return top;
    }
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> full(covariance);
    if (full.info() != Eigen::Success) return top;
    top.values = full.eigenvalues().reverse().head(n_components);
    top.vectors = full.eigenvectors().rightCols(n_components).rowwise().reverse();
    top.trace = full.eigenvalues().sum();
    top.success = true;
    return top;
  });
  if (!eigen.success) throw NumericalError("the eigendecomposition of the covariance failed");
  const Eigen::VectorXd eigenvalues = eigen.values.cwiseMax(0.0);  // decreasing
  const Index n_discarded = n_features - n_components;
  // σ² is the mean of the discarded eigenvalues; with none discarded the likelihood does not determine it (any σ²
  // up to the smallest eigenvalue gives the covariance): half the smallest, as PPCA's full-rank closed form in
  // Python takes it.
  const double discarded = n_discarded > 0
                               ? std::max(eigen.trace - eigen.values.sum(), 0.0) / static_cast<double>(n_discarded)
                               : 0.5 * eigenvalues(n_components - 1);
  const double noise_variance = std::max(discarded, noise_floor);

  LinearGaussianParams params;
  params.mean = moments.mean;
  params.noise_variance = Eigen::VectorXd::Constant(n_features, noise_variance);
  params.components.resize(n_features, n_components);
  for (Index h = 0; h < n_components; ++h) {
    Eigen::VectorXd direction = eigen.vectors.col(h);
    Index largest = 0;
    direction.cwiseAbs().maxCoeff(&largest);
    if (direction(largest) < 0.0) direction = -direction;
    params.components.col(h) = direction * std::sqrt(std::max(eigenvalues(h) - noise_variance, 0.0));
  }

  LinearGaussianExpectation expectation;
  expectation.posterior = LinearGaussianPosterior::from(params);
  expectation.stats = linear_gaussian_stats_from_moments(moments, expectation.posterior);
  LinearGaussianFit fit{params, ConvergenceMonitor()};
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fit.monitor.record_closed_form(linear_gaussian_elbo(expectation, params), seconds);
  return fit;
}

template <typename T>
LinearGaussianFit fit_ppca_closed_form(const DataRef<T>& data, Index n_components, const Execution& execution) {
  const auto start = std::chrono::steady_clock::now();
  const Moments moments = compute_moments<T>(data, /*full=*/true, execution);
  const double pass_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LinearGaussianFit fit = ppca_closed_form_from_moments(moments, n_components, execution);
  fit.monitor.set_setup_seconds(pass_seconds);  // the pass for the covariance
  return fit;
}

template <typename T>
Eigen::VectorXd linear_gaussian_log_likelihood(const DataRef<T>& data, const LinearGaussianParams& params,
                                               const Execution& execution) {
  const Index n_features = data.cols();
  check_params(params, n_features);
  const Eigen::MatrixXd scaled = noise_scaled_components(params);  // (D, H) Ψ⁻¹W
  Eigen::MatrixXd precision = params.components.transpose() * scaled;
  precision.diagonal().array() += 1.0;
  const auto llt = cholesky_or_throw(precision, "I + WᵀΨ⁻¹W");
  const Eigen::MatrixXd lower = llt.matrixL();
  // log det C = log det Ψ + log det(I + WᵀΨ⁻¹W)
  const double log_det = params.noise_variance.array().log().sum() + 2.0 * lower.diagonal().array().log().sum();
  const Eigen::ArrayXd inverse_noise = params.noise_variance.array().inverse();
  const double constant = -0.5 * (n_features * kLogTwoPi + log_det);

  Eigen::VectorXd log_likelihood(data.rows());
  const Index chunk_size = resolve_chunk_size(execution, n_features, sizeof(T));
  for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
    // In double: the quadratic form cancels (Ψ⁻¹ term minus the Woodbury correction).
    const Eigen::MatrixXd centred =
        (data.middleRows(begin, end - begin).template cast<double>()).rowwise() - params.mean.transpose();
    const Eigen::MatrixXd projected = centred * scaled;  // (n, H) rows yᵀ = (x − μ)ᵀΨ⁻¹W
    // (x − μ)ᵀ C⁻¹ (x − μ) = Σ_d (x_d − μ_d)²/ψ_d − yᵀ (I + WᵀΨ⁻¹W)⁻¹ y
    const Eigen::MatrixXd whitened = lower.triangularView<Eigen::Lower>().solve(projected.transpose());
    const Eigen::VectorXd mahalanobis =
        (centred.array().square().rowwise() * inverse_noise.transpose()).rowwise().sum().matrix() -
        whitened.colwise().squaredNorm().transpose();
    log_likelihood.segment(begin, end - begin) = (constant - 0.5 * mahalanobis.array()).matrix();
  });
  return log_likelihood;
}

template <typename T>
RowMatrix<T> linear_gaussian_posterior_mean(const DataRef<T>& data, const LinearGaussianParams& params,
                                            const Execution& execution) {
  check_params(params, data.cols());
  const LinearGaussianPosterior posterior = LinearGaussianPosterior::from(params);
  const auto projection = posterior.projection.template cast<T>().eval();
  const auto mean = params.mean.template cast<T>().eval();
  RowMatrix<T> means(data.rows(), params.components.cols());
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
    means.middleRows(begin, end - begin).noalias() =
        (data.middleRows(begin, end - begin).rowwise() - mean.transpose()) * projection;
  });
  return means;
}

#define ENTROSUM_INSTANTIATE(T)                                                                              \
  template void accumulate_linear_gaussian_stats<T>(const DataRef<T>&, const Eigen::VectorXd&,               \
                                                    const LinearGaussianPosterior&, LinearGaussianStats&);   \
  template class LinearGaussianModel<T>;                                                                     \
  template LinearGaussianFit fit_linear_gaussian<T>(const DataRef<T>&, const LinearGaussianParams&,          \
                                                    const LinearGaussianOptions&, const IterationCallback&); \
  template LinearGaussianFit fit_ppca_closed_form<T>(const DataRef<T>&, Index, const Execution&);            \
  template Eigen::VectorXd linear_gaussian_log_likelihood<T>(const DataRef<T>&, const LinearGaussianParams&, \
                                                             const Execution&);                              \
  template RowMatrix<T> linear_gaussian_posterior_mean<T>(const DataRef<T>&, const LinearGaussianParams&,    \
                                                          const Execution&);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
