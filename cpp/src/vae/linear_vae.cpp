// The linear VAE's closed-form ELBO, its gradient and the L-BFGS fit (DESIGN.md, "Gaussian VAEs").
#include "entrosum/vae/linear_vae.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"

namespace entrosum {

namespace {

using entropy::kLogTwoPi;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// The data-dependent parts of the ELBO for encoder weights V, decoder weights W and encoder variances t, with the
/// data's covariance C (centred: the biases' part ‖e‖², ‖m‖² is added by the caller).
struct Quadratics {
  /// (n_features, n_components) C Vᵀ
  Eigen::MatrixXd covariance_projection;
  /// (n_components, n_components) V C Vᵀ: the covariance of the encoder means over the data
  Eigen::MatrixXd code_covariance;
  /// (n_components, n_components) WᵀW
  Eigen::MatrixXd gram;
  /// (1/N) Σ_n E_q ‖(x_n − x̄) − W (z − m)‖² = tr C − 2 tr(V C W) + tr(WᵀW V C Vᵀ) + Σ_h t_h ‖w_h‖²
  double residual = 0.0;
};

Quadratics quadratics(const Eigen::MatrixXd& covariance, const Eigen::Ref<const Eigen::MatrixXd>& encoder_weights,
                      const Eigen::Ref<const Eigen::MatrixXd>& decoder_weights,
                      const Eigen::Ref<const Eigen::VectorXd>& variances) {
  Quadratics q;
  q.covariance_projection.noalias() = covariance * encoder_weights.transpose();
  q.code_covariance.noalias() = encoder_weights * q.covariance_projection;
  q.gram.noalias() = decoder_weights.transpose() * decoder_weights;
  // tr(V C W) = Σ_dh W_dh (C Vᵀ)_dh; tr(G Q) = Σ G ∘ Q for symmetric G and Q
  q.residual = covariance.trace() - 2.0 * decoder_weights.cwiseProduct(q.covariance_projection).sum() +
               q.gram.cwiseProduct(q.code_covariance).sum() + q.gram.diagonal().dot(variances);
  return q;
}

/// The same from a factor L of C = L Lᵀ, without cancellation: with E = (I − W V) L the residual is ‖E‖² + Σ_h t_h
/// ‖w_h‖², a sum of squares. tr C − 2 tr(V C W) + … loses digits when σ² is small next to the data's variance, and
/// then L-BFGS stalls with the ELBO's gap still at 1e-6 (seen on the paper's data, σ = 0.1).
struct FactoredQuadratics {
  /// (n_components, n_features) V L
  Eigen::MatrixXd code_factor;
  /// (n_features, n_features) E = L − W V L
  Eigen::MatrixXd residual_factor;
  /// (n_components, n_components) WᵀW
  Eigen::MatrixXd gram;
  double residual = 0.0;
};

FactoredQuadratics factored_quadratics(const Eigen::MatrixXd& factor,
                                       const Eigen::Ref<const Eigen::MatrixXd>& encoder_weights,
                                       const Eigen::Ref<const Eigen::MatrixXd>& decoder_weights,
                                       const Eigen::Ref<const Eigen::VectorXd>& variances) {
  FactoredQuadratics q;
  q.code_factor.noalias() = encoder_weights * factor;
  q.residual_factor = factor;
  q.residual_factor.noalias() -= decoder_weights * q.code_factor;
  q.gram.noalias() = decoder_weights.transpose() * decoder_weights;
  q.residual = q.residual_factor.squaredNorm() + q.gram.diagonal().dot(variances);
  return q;
}

/// L with C = L Lᵀ from C's eigendecomposition (a covariance is positive semi-definite; rounding below 0 is cut).
Eigen::MatrixXd covariance_factor(const Eigen::MatrixXd& covariance) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(covariance);
  if (eigen.info() != Eigen::Success) throw NumericalError("the data's covariance has no eigendecomposition");
  return eigen.eigenvectors() * eigen.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
}

void check_params(const LinearVaeParams& params, Index n_features) {
  const Index n_components = params.encoder_weights.rows();
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("linear VAE parameters for " + std::to_string(n_features) + " features and " +
                                std::to_string(n_components) + " components: " + what);
  };
  if (params.encoder_weights.cols() != n_features) fail("encoder_weights must have shape (n_components, n_features)");
  if (params.encoder_bias.size() != n_components) fail("encoder_bias must have n_components entries");
  if (params.encoder_variance.size() != n_components) fail("encoder_variance must have n_components entries");
  if (!(params.encoder_variance.array() > 0.0).all()) fail("encoder_variance must be positive");
  if (params.decoder_weights.rows() != n_features || params.decoder_weights.cols() != n_components)
    fail("decoder_weights must have shape (n_features, n_components)");
  if (params.decoder_bias.size() != n_features) fail("decoder_bias must have n_features entries");
  if (!(params.noise_variance > 0.0)) fail("noise_variance must be positive");
}

}  // namespace

ElboTerms linear_vae_terms(const Moments& moments, const LinearVaeParams& params) {
  if (!moments.full()) throw std::invalid_argument("the linear VAE's ELBO needs the data's full moments");
  const Index n_features = moments.mean.size();
  check_params(params, n_features);
  const auto n_components = static_cast<double>(params.encoder_weights.rows());
  const auto dim = static_cast<double>(n_features);
  const Eigen::VectorXd& variances = params.encoder_variance;  // (H) τ²
  const Quadratics q = quadratics(moments.covariance(), params.encoder_weights, params.decoder_weights, variances);
  // The biases: m = V x̄ + c (mean code), e = x̄ − W m − b (mean residual)
  const Eigen::VectorXd mean_code = params.encoder_weights * moments.mean + params.encoder_bias;
  const Eigen::VectorXd mean_residual = moments.mean - params.decoder_weights * mean_code - params.decoder_bias;
  const double sigma2 = params.noise_variance;

  // E log p(x | z) = −(D/2) log 2πσ² − (1/(2σ²)) E‖x − W z − b‖²
  const double reconstruction =
      -0.5 * dim * (kLogTwoPi + std::log(sigma2)) - 0.5 * (q.residual + mean_residual.squaredNorm()) / sigma2;
  // E log p(z) = −(H/2) log 2π − ½ E‖z‖²; H[q] = ½ Σ_h (log 2πe + log τ_h²)
  const double prior_cross =
      -0.5 * n_components * kLogTwoPi - 0.5 * (q.code_covariance.trace() + mean_code.squaredNorm() + variances.sum());
  ElboTerms terms;
  terms.posterior_entropy = entropy::gaussian_diagonal(variances);  // H[q_n] = ½ Σ_h log(2πe τ_h²)
  terms.prior_entropy = entropy::gaussian_from_log_det(variances.size(), 0.0);
  terms.observable_entropy = entropy::gaussian_isotropic(n_features, sigma2);
  terms.elbo = reconstruction + prior_cross + terms.posterior_entropy;
  return terms;
}

LinearVaeFit fit_linear_vae_from_moments(const Moments& moments, const LinearVaeParams& initial,
                                         const LinearVaeOptions& options, const IterationCallback& on_iteration) {
  if (!moments.full()) throw std::invalid_argument("the linear VAE's fit needs the data's full moments");
  const Index n_features = moments.mean.size();
  const Index n_components = initial.encoder_weights.rows();
  check_params(initial, n_features);
  if (n_components < 1 || n_components >= n_features)
    throw std::invalid_argument("the linear VAE needs 1 <= n_components < n_features; got " +
                                std::to_string(n_components) + " components for " + std::to_string(n_features) +
                                " features");
  const Index D = n_features, H = n_components;
  const auto dim = static_cast<double>(D);

  // Standardised units x' = (x − x̄)/s with s² the mean variance: V' = s V, W' = W / s, σ'² = σ²/s².
  const Eigen::MatrixXd covariance_raw = moments.covariance();
  const double scale2 = covariance_raw.trace() / dim;
  if (!(scale2 > 0.0) || !std::isfinite(scale2)) throw NumericalError("the data have no variance");
  const double scale = std::sqrt(scale2);
  const Eigen::MatrixXd factor = covariance_factor(covariance_raw / scale2);  // (D, D) L with C' = L Lᵀ

  // x = [vec V' (H·D, column-major), vec W' (D·H), log τ² (H)]
  const Index n_encoder = H * D, n_decoder = D * H;
  Eigen::VectorXd x(n_encoder + n_decoder + H);
  Eigen::Map<Eigen::MatrixXd>(x.data(), H, D) = initial.encoder_weights * scale;
  Eigen::Map<Eigen::MatrixXd>(x.data() + n_encoder, D, H) = initial.decoder_weights / scale;
  x.tail(H) = initial.encoder_variance.array().log().matrix();

  // Θ in the data's units from a point x: biases and σ² at their optimum.
  auto params_at = [&](const Eigen::VectorXd& point) {
    LinearVaeParams p;
    p.encoder_weights = Eigen::Map<const Eigen::MatrixXd>(point.data(), H, D) / scale;
    p.decoder_weights = Eigen::Map<const Eigen::MatrixXd>(point.data() + n_encoder, D, H) * scale;
    p.encoder_variance = point.tail(H).array().exp().matrix();
    p.encoder_bias = -p.encoder_weights * moments.mean;  // m = V x̄ + c = 0
    p.decoder_bias = moments.mean;                       // e = x̄ − W m − b = 0
    const Eigen::Map<const Eigen::MatrixXd> encoder(point.data(), H, D), decoder(point.data() + n_encoder, D, H);
    p.noise_variance = scale2 * factored_quadratics(factor, encoder, decoder, p.encoder_variance).residual / dim;
    return p;
  };

  // −F' at σ'²* = R'/D and its gradient (DESIGN.md: the entropy-based objective of the linear VAE).
  auto objective = [&](const Eigen::VectorXd& point, Eigen::VectorXd& gradient) -> double {
    const Eigen::Map<const Eigen::MatrixXd> V(point.data(), H, D);
    const Eigen::Map<const Eigen::MatrixXd> W(point.data() + n_encoder, D, H);
    const Eigen::VectorXd log_variances = point.tail(H);
    const Eigen::VectorXd variances = log_variances.array().exp();
    const FactoredQuadratics q = factored_quadratics(factor, V, W, variances);
    if (!(q.residual > 0.0) || !std::isfinite(q.residual) || !variances.allFinite())
      return std::numeric_limits<double>::infinity();
    const double sigma2 = q.residual / dim;
    const double elbo = -0.5 * dim * (kLogTwoPi + std::log(sigma2) + 1.0) -
                        0.5 * (q.code_factor.squaredNorm() + variances.sum()) + 0.5 * log_variances.sum() +
                        0.5 * static_cast<double>(H);
    // ∂F/∂V = Wᵀ (I − W V) C / σ² − V C = (Wᵀ E Lᵀ) / σ² − (V L) Lᵀ
    Eigen::Map<Eigen::MatrixXd> grad_V(gradient.data(), H, D);
    const Eigen::MatrixXd projected = W.transpose() * q.residual_factor / sigma2 - q.code_factor;  // (H, D)
    grad_V.noalias() = projected * factor.transpose();
    // ∂F/∂W = ((I − W V) C Vᵀ − W diag τ²)/σ² = (E (V L)ᵀ − W diag τ²)/σ²
    Eigen::Map<Eigen::MatrixXd> grad_W(gradient.data() + n_encoder, D, H);
    grad_W.noalias() = (q.residual_factor * q.code_factor.transpose() - W * variances.asDiagonal()) / sigma2;
    // ∂F/∂log τ_h² = ½ − ½ τ_h² (1 + ‖w_h‖²/σ²)
    gradient.tail(H) = (0.5 - 0.5 * variances.array() * (1.0 + q.gram.diagonal().array() / sigma2)).matrix();
    gradient = -gradient;  // L-BFGS minimises −F
    return -elbo;
  };

  LinearVaeFit fit{initial, ConvergenceMonitor(options.stop)};
  auto last_time = Clock::now();
  auto record = [&](const Eigen::VectorXd& point) {
    if (options.execution.interrupted && options.execution.interrupted()) throw Interrupted();
    const ElboTerms terms = linear_vae_terms(moments, params_at(point));
    const double seconds = seconds_since(last_time);
    last_time = Clock::now();
    const bool stop = fit.monitor.record(terms, seconds);
    if (on_iteration) on_iteration(fit.monitor.history().back());
    return stop;
  };

  Eigen::VectorXd unused(x.size());
  if (!std::isfinite(objective(x, unused))) throw NumericalError("the initial parameters give no finite ELBO");
  if (!record(x)) {
    optimize::LbfgsOptions lbfgs;
    lbfgs.memory = options.memory;
    lbfgs.gtol = options.gtol;
    lbfgs.max_iter = std::numeric_limits<int>::max();  // the monitor's max_iter stops it
    const optimize::LbfgsResult result = optimize::minimize_lbfgs(
        objective, x, lbfgs,
        [&](int, double, const Eigen::VectorXd& point, const Eigen::VectorXd&) { return record(point); });
    fit.evaluations = result.evaluations + 1;
    fit.lbfgs_status = optimize::to_string(result.status);
    if (result.status == optimize::LbfgsStatus::gradient) {
      fit.monitor.finish(StopReason::gradient);
    } else if (result.status == optimize::LbfgsStatus::line_search) {
      // The line search finds no increase once F's changes fall below its rounding. With the gap (F's derivative
      // along each latent's scale) down to 1e-6 as well, that is the optimum at double precision.
      const IterationRecord& last = fit.monitor.history().back();
      const bool at_precision = std::abs(last.gap) <= 1e-6 * std::max(1.0, std::abs(last.terms.elbo));
      fit.monitor.finish(at_precision ? StopReason::gradient : StopReason::line_search);
    }
  } else {
    fit.evaluations = 1;
  }
  fit.params = params_at(x);
  return fit;
}

template <typename T>
LinearVaeFit fit_linear_vae(const DataRef<T>& data, const LinearVaeParams& initial, const LinearVaeOptions& options,
                            const IterationCallback& on_iteration) {
  const auto start = Clock::now();
  const Moments moments = compute_moments<T>(data, /*full=*/true, options.execution);
  const double pass_seconds = seconds_since(start);
  LinearVaeFit fit = fit_linear_vae_from_moments(moments, initial, options, on_iteration);
  fit.monitor.set_setup_seconds(pass_seconds);
  return fit;
}

template <typename T>
Eigen::VectorXd linear_vae_elbo_samples(const DataRef<T>& data, const LinearVaeParams& params,
                                        const Execution& execution) {
  check_params(params, data.cols());
  const auto dim = static_cast<double>(data.cols());
  const auto n_components = static_cast<double>(params.encoder_weights.rows());
  const Eigen::VectorXd& variances = params.encoder_variance;
  const double sigma2 = params.noise_variance;
  // What does not depend on the data point: the spread of q through the decoder and the prior, and H[q].
  const double spread = (params.decoder_weights.colwise().squaredNorm().transpose().array() * variances.array()).sum();
  const double constant = -0.5 * dim * (kLogTwoPi + std::log(sigma2)) - 0.5 * spread / sigma2 - 0.5 * variances.sum() +
                          0.5 * variances.array().log().sum() + 0.5 * n_components;
  Eigen::VectorXd elbo(data.rows());
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
    const Eigen::MatrixXd rows = data.middleRows(begin, end - begin).template cast<double>();  // (n, D)
    Eigen::MatrixXd codes = rows * params.encoder_weights.transpose();                         // (n, H) ν
    codes.rowwise() += params.encoder_bias.transpose();
    Eigen::MatrixXd residual = rows - codes * params.decoder_weights.transpose();  // (n, D) x − W ν − b
    residual.rowwise() -= params.decoder_bias.transpose();
    elbo.segment(begin, end - begin) = (constant - 0.5 * residual.rowwise().squaredNorm().array() / sigma2 -
                                        0.5 * codes.rowwise().squaredNorm().array())
                                           .matrix();
  });
  return elbo;
}

template <typename T>
RowMatrix<T> linear_vae_encode(const DataRef<T>& data, const LinearVaeParams& params, const Execution& execution) {
  check_params(params, data.cols());
  const auto weights = params.encoder_weights.transpose().template cast<T>().eval();  // (D, H)
  const auto bias = params.encoder_bias.template cast<T>().eval();
  RowMatrix<T> codes(data.rows(), params.encoder_weights.rows());
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
    codes.middleRows(begin, end - begin).noalias() = data.middleRows(begin, end - begin) * weights;
    codes.middleRows(begin, end - begin).rowwise() += bias.transpose();
  });
  return codes;
}

#define ENTROSUM_INSTANTIATE(T)                                                                                     \
  template LinearVaeFit fit_linear_vae<T>(const DataRef<T>&, const LinearVaeParams&, const LinearVaeOptions&,       \
                                          const IterationCallback&);                                                \
  template Eigen::VectorXd linear_vae_elbo_samples<T>(const DataRef<T>&, const LinearVaeParams&, const Execution&); \
  template RowMatrix<T> linear_vae_encode<T>(const DataRef<T>&, const LinearVaeParams&, const Execution&);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
