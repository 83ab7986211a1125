#include "entrosum/mixtures/gaussian_mixture.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "entrosum/core/em.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "gaussian_mixture_moments.hpp"

namespace entrosum {

Eigen::VectorXd detail::log_det_precision_cholesky(const GaussianMixtureParams& p) {
  const Index K = p.n_components(), D = p.n_features();
  Eigen::VectorXd log_det(K);
  switch (p.covariance_type) {
    case CovarianceType::full:
      for (Index k = 0; k < K; ++k)
        log_det(k) = p.precision_cholesky.block(k * D, 0, D, D).diagonal().array().log().sum();
      break;
    case CovarianceType::tied:
      log_det.setConstant(p.precision_cholesky.diagonal().array().log().sum());
      break;
    case CovarianceType::diag:
      log_det = p.precision_cholesky.array().log().rowwise().sum();
      break;
    case CovarianceType::spherical:
      log_det = static_cast<double>(D) * p.precision_cholesky.col(0).array().log();
      break;
    case CovarianceType::tied_diag:
      log_det.setConstant(p.precision_cholesky.row(0).array().log().sum());
      break;
    case CovarianceType::tied_spherical:
      log_det.setConstant(static_cast<double>(D) * std::log(p.precision_cholesky(0, 0)));
      break;
  }
  return log_det;
}

GaussianMixtureParams detail::broadcast_shared_variances(const GaussianMixtureParams& p) {
  if (p.covariance_type != CovarianceType::tied_diag && p.covariance_type != CovarianceType::tied_spherical) return p;
  GaussianMixtureParams out;
  out.covariance_type = per_component_type(p.covariance_type);
  out.weights = p.weights;
  out.means = p.means;
  const Index K = p.n_components();
  // (1, D) or (1, 1) repeated to (K, D) or (K, 1); covariances may be absent (scoring needs only the factors)
  if (p.covariances.rows() == 1) out.covariances = p.covariances.replicate(K, 1);
  out.precision_cholesky = p.precision_cholesky.replicate(K, 1);
  return out;
}

namespace {

using detail::accumulate_moments;
using detail::kLogTwoPi;
using detail::log_det_precision_cholesky;
using detail::promote_to_double;

using ColMatrixD = Eigen::MatrixXd;

std::string component_error(Index k, const std::string& what) { return "component " + std::to_string(k) + " " + what; }

/// (n_components) H[N(μ_k, Σ_k)] = ½ D log 2πe − log det U_k.
Eigen::VectorXd component_entropies(const GaussianMixtureParams& p) {
  const Eigen::VectorXd log_det = log_det_precision_cholesky(p);
  Eigen::VectorXd entropies(log_det.size());
  for (Index k = 0; k < log_det.size(); ++k)
    entropies(k) = entropy::gaussian_from_log_det(p.n_features(), -2.0 * log_det(k));
  return entropies;
}

/// Upper-triangular U with Σ⁻¹ = U Uᵀ from a covariance, or an error naming the component.
ColMatrixD precision_cholesky_of(const ColMatrixD& covariance, Index k) {
  Eigen::LLT<ColMatrixD> llt(covariance);
  if (llt.info() != Eigen::Success || !(llt.matrixL().toDenseMatrix().diagonal().array() > 0.0).all())
    throw NumericalError(component_error(k, "has a covariance that is not positive definite"));
  const ColMatrixD lower_inverse =
      llt.matrixL().solve(ColMatrixD::Identity(covariance.rows(), covariance.cols()));  // L⁻¹
  return lower_inverse.transpose();
}

}  // namespace

void compute_precision_cholesky(GaussianMixtureParams& p) {
  const Index K = p.n_components(), D = p.n_features();
  switch (p.covariance_type) {
    case CovarianceType::full:
      p.precision_cholesky.resize(K * D, D);
      for (Index k = 0; k < K; ++k)
        p.precision_cholesky.block(k * D, 0, D, D) = precision_cholesky_of(p.covariances.block(k * D, 0, D, D), k);
      break;
    case CovarianceType::tied:
      p.precision_cholesky = precision_cholesky_of(p.covariances, 0);
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (Index k = 0; k < p.covariances.rows(); ++k)
        if (!(p.covariances.row(k).array() > 0.0).all())
          throw NumericalError(component_error(k, "has a variance that is not positive"));
      p.precision_cholesky = p.covariances.array().rsqrt();
      break;
    case CovarianceType::tied_diag:
    case CovarianceType::tied_spherical:
      if (!(p.covariances.array() > 0.0).all())
        throw NumericalError("the shared covariance has a variance that is not positive");
      p.precision_cholesky = p.covariances.array().rsqrt();
      break;
  }
}

void compute_covariances_from_precision_cholesky(GaussianMixtureParams& p) {
  const Index K = p.n_components(), D = p.n_features();
  // Any factor F with Σ⁻¹ = F Fᵀ will do (scikit-learn's precisions_init gives a lower one).
  auto covariance_of = [](const ColMatrixD& factor) {
    const ColMatrixD precision = factor * factor.transpose();
    return ColMatrixD(precision.llt().solve(ColMatrixD::Identity(factor.rows(), factor.cols())));
  };
  switch (p.covariance_type) {
    case CovarianceType::full:
      p.covariances.resize(K * D, D);
      for (Index k = 0; k < K; ++k)
        p.covariances.block(k * D, 0, D, D) = covariance_of(p.precision_cholesky.block(k * D, 0, D, D));
      break;
    case CovarianceType::tied:
      p.covariances = covariance_of(p.precision_cholesky);
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
    case CovarianceType::tied_diag:
    case CovarianceType::tied_spherical:
      p.covariances = p.precision_cholesky.array().square().inverse();
      break;
  }
}

GaussianMixtureStats::GaussianMixtureStats(CovarianceType type, Index K, Index D)
    : type(type), totals(K), first(ColMatrixD::Zero(K, D)) {
  switch (type) {
    case CovarianceType::full:
      second = ColMatrixD::Zero(K, D * (D + 1) / 2);
      break;
    case CovarianceType::tied:
      second = ColMatrixD::Zero(D, D);
      break;
    case CovarianceType::diag:
    case CovarianceType::tied_diag:
      second = ColMatrixD::Zero(K, D);
      break;
    case CovarianceType::spherical:
    case CovarianceType::tied_spherical:
      second = ColMatrixD::Zero(K, 1);
      break;
  }
}

GaussianMixtureStats& GaussianMixtureStats::operator+=(const GaussianMixtureStats& other) {
  totals += other.totals;
  first += other.first;
  second += other.second;
  return *this;
}

void GaussianMixtureStats::scale(double factor) {
  totals.scale(factor);
  first *= factor;
  second *= factor;
}

void GaussianMixtureExpectation::recentre(const Eigen::VectorXd& new_shift) {
  if (shift.size() == 0 || shift == new_shift) {
    shift = new_shift;
    return;
  }
  // With y = x − old shift and δ = old − new: x − new = y + δ.
  const Eigen::VectorXd delta = shift - new_shift;  // (D)
  const Eigen::VectorXd& counts = stats.totals.resp_sum;
  const Index K = stats.first.rows(), D = stats.first.cols();
  switch (stats.type) {
    case CovarianceType::tied: {
      // (D, D) Σ_n s_n (y + δ)(y + δ)ᵀ with s_n = Σ_k w r_nk, whose first moment is Σ_k first_k
      const Eigen::VectorXd first = stats.first.colwise().sum().transpose();
      stats.second += delta * first.transpose() + first * delta.transpose() + counts.sum() * delta * delta.transpose();
      break;
    }
    case CovarianceType::spherical:
    case CovarianceType::tied_spherical:
      // Σ r ||y + δ||² = Σ r ||y||² + 2 δ·Σ r y + N ||δ||²
      stats.second.col(0) += 2.0 * stats.first * delta + counts * delta.squaredNorm();
      break;
    case CovarianceType::diag:
    case CovarianceType::tied_diag:
      stats.second += 2.0 * (stats.first.array().rowwise() * delta.transpose().array()).matrix() +
                      counts * delta.cwiseAbs2().transpose();
      break;
    case CovarianceType::full:
      // packed row by row for i ≤ j: Σ r (y_i + δ_i)(y_j + δ_j) = S_ij + δ_i f_j + δ_j f_i + N δ_i δ_j
      for (Index k = 0; k < K; ++k) {
        Index offset = 0;
        for (Index i = 0; i < D; ++i)
          for (Index j = i; j < D; ++j, ++offset)
            stats.second(k, offset) +=
                delta(i) * stats.first(k, j) + delta(j) * stats.first(k, i) + counts(k) * delta(i) * delta(j);
      }
      break;
  }
  stats.first += counts * delta.transpose();
  shift = new_shift;
}

GaussianMixtureExpectation& GaussianMixtureExpectation::operator+=(const GaussianMixtureExpectation& other) {
  if (shift.size() == 0) {
    *this = other;
    return *this;
  }
  if (other.shift == shift) {
    stats += other.stats;
  } else {
    GaussianMixtureExpectation moved = other;
    moved.recentre(shift);
    stats += moved.stats;
  }
  return *this;
}

namespace {

/// Full covariances: component k's weighted scatter about its mean `mean_rel` (relative to the shift) into the
/// (D, D) `block`, one component at a time (all K at once would be K·D² doubles, as large as the data at
/// D = K = 128).
void full_scatter_about(const GaussianMixtureStats& s, Index k, const Eigen::Ref<const Eigen::RowVectorXd>& mean_rel,
                        Eigen::Ref<Eigen::MatrixXd> block) {
  const Index D = mean_rel.size();
  // Σ_n r (x − μ)(x − μ)ᵀ = Σ r x xᵀ − first μᵀ − μ firstᵀ + N_k μ μᵀ, all about the shift
  Index offset = 0;
  for (Index i = 0; i < D; ++i) {
    block.col(i).tail(D - i) = s.second.row(k).segment(offset, D - i).transpose();
    offset += D - i;
  }
  block.template triangularView<Eigen::StrictlyUpper>() = block.transpose();
  const Eigen::VectorXd mean = mean_rel.transpose();
  const Eigen::VectorXd first = s.first.row(k).transpose();
  block -= first * mean.transpose() + mean * first.transpose() - s.totals.resp_sum(k) * mean * mean.transpose();
}

/// Per type, the weighted scatter of each component about the means `means_rel` (relative to the shift) — what
/// the M-step and the ELBO need; full covariances go through full_scatter_about instead.
struct ScatterAbout {
  CovarianceType type;
  // tied: (D, D) summed over k; diag, tied_diag: (K, D); spherical, tied_spherical: (K, 1); full: empty
  Eigen::MatrixXd scatter;
};

ScatterAbout scatter_about(const GaussianMixtureExpectation& e, CovarianceType type, const Eigen::MatrixXd& means_rel) {
  const GaussianMixtureStats& s = e.stats;
  const Eigen::VectorXd& counts = s.totals.resp_sum;
  ScatterAbout out{type, {}};
  switch (type) {
    case CovarianceType::full:
      break;
    case CovarianceType::tied: {
      // Σ_k Σ_n r (x − μ_k)(x − μ_k)ᵀ = Σ w x xᵀ − Σ_k (first_k μ_kᵀ + μ_k first_kᵀ) + Σ_k N_k μ_k μ_kᵀ
      const Eigen::MatrixXd cross = s.first.transpose() * means_rel;
      out.scatter = s.second - cross - cross.transpose() + means_rel.transpose() * counts.asDiagonal() * means_rel;
      break;
    }
    case CovarianceType::diag:
    case CovarianceType::tied_diag:
      out.scatter = s.second.array() - 2.0 * means_rel.array() * s.first.array() +
                    (means_rel.array().square().colwise() * counts.array());
      break;
    case CovarianceType::spherical:
    case CovarianceType::tied_spherical:
      // (K, 1): Σ_n r ||x − μ_k||² = Σ r ||x||² − 2 μ_k·Σ r x + N_k ||μ_k||²
      out.scatter = s.second.array() - 2.0 * (means_rel.array() * s.first.array()).rowwise().sum() +
                    counts.array() * means_rel.rowwise().squaredNorm().array();
      break;
  }
  return out;
}

}  // namespace

namespace {

/// Σ_k counts(k) over `components`.
double reseed_total(const Eigen::VectorXd& counts, const std::vector<Index>& components) {
  double total = 0.0;
  for (Index k : components) total += counts(k);
  return total;
}

/// Whether a covariance block (full, tied) or row of variances (diag, spherical) is positive definite.
bool positive_definite(const GaussianMixtureParams& p, Index k) {
  const Index D = p.n_features();
  switch (p.covariance_type) {
    case CovarianceType::full: {
      const Eigen::LLT<ColMatrixD> llt(p.covariances.block(k * D, 0, D, D));
      return llt.info() == Eigen::Success && (llt.matrixL().toDenseMatrix().diagonal().array() > 0.0).all();
    }
    case CovarianceType::tied: {
      const Eigen::LLT<ColMatrixD> llt(p.covariances);
      return llt.info() == Eigen::Success && (llt.matrixL().toDenseMatrix().diagonal().array() > 0.0).all();
    }
    default:
      return (p.covariances.row(k).array() > 0.0).all();
  }
}

/// Re-seeds `components` (increasing) of `p`: each at its own worst-explained sample, with the pooled
/// covariance and the mean count of the other components (`counts` is updated and the weights renormalised).
/// A count of one sample would leave it too light to take more than that sample, which it would then
/// collapse onto.
void reseed_components(GaussianMixtureParams& p, Eigen::VectorXd& counts, const std::vector<Index>& components,
                       const std::vector<std::string>& reasons, const WorstSamples& worst) {
  const Index K = p.n_components(), D = p.n_features();
  const std::vector<const WorstSample*> samples =
      reseed_samples(components, worst, reasons.front() == "empty" ? "is empty" : "has collapsed");
  const Index live = K - static_cast<Index>(components.size());
  if (live == 0)
    throw NumericalError(component_error(
        components.front(),
        std::string(reasons.front() == "empty" ? "is empty" : "has collapsed") + ", and so is every other component"));
  const double mean_count = (counts.sum() - reseed_total(counts, components)) / static_cast<double>(live);
  if (!shared_covariance(p.covariance_type)) {
    std::vector<bool> reseeded(static_cast<std::size_t>(K), false);
    for (Index k : components) reseeded[static_cast<std::size_t>(k)] = true;
    const Index rows = p.covariance_type == CovarianceType::full ? D : 1;
    ColMatrixD pooled = ColMatrixD::Zero(rows, p.covariances.cols());
    double pooled_count = 0.0;
    for (Index k = 0; k < K; ++k) {
      if (reseeded[static_cast<std::size_t>(k)]) continue;
      pooled += counts(k) * p.covariances.block(k * rows, 0, rows, p.covariances.cols());
      pooled_count += counts(k);
    }
    if (!(pooled_count > 0.0))
      throw NumericalError(component_error(components.front(),
                                           "has collapsed, and no other component is left to "
                                           "take a covariance from"));
    pooled /= pooled_count;
    for (Index k : components) p.covariances.block(k * rows, 0, rows, p.covariances.cols()) = pooled;
  }
  for (std::size_t i = 0; i < components.size(); ++i) {
    const Index k = components[i];
    p.means.row(k) = samples[i]->values.transpose();
    counts(k) = mean_count;
    p.recovered.push_back({0, k, samples[i]->row, reasons[i]});
  }
  p.weights = counts / counts.sum();
}

}  // namespace

GaussianMixtureParams gaussian_mixture_m_step(const GaussianMixtureExpectation& e, GaussianMixtureParams old,
                                              double reg_covar, bool learn_weights) {
  const GaussianMixtureStats& s = e.stats;
  const Index K = old.n_components(), D = old.n_features();
  Eigen::VectorXd counts = s.totals.resp_sum.array() + kCountGuard;  // N_k
  GaussianMixtureParams p;
  p.covariance_type = old.covariance_type;
  // the new covariances and factors overwrite the old ones' storage (the E-step that read them is over)
  p.covariances = std::move(old.covariances);
  p.precision_cholesky = std::move(old.precision_cholesky);
  // π_k = N_k / N, normalised by the sum of the guarded counts (as scikit-learn does) so that the weights sum to 1
  // to rounding: with the guard, N_k / N summed to 1 + K·10·eps / N, which numpy's samplers refuse on few rows.
  p.weights = counts / counts.sum();
  // μ_k = Σ r x / (N_k + guard), Σ r x = first_k + N_k shift; relative to the shift: (first_k − guard shift) / counts.
  // scikit-learn's mean, also for a component whose count is of the order of the guard: it stays at its data
  // (an empty one at the origin, as in scikit-learn) instead of drifting towards the shift.
  const Eigen::MatrixXd means_rel =
      (s.first.rowwise() - kCountGuard * e.shift.transpose()).array().colwise() / counts.array();  // (K, D)
  p.means = means_rel.rowwise() + e.shift.transpose();
  if (!p.means.allFinite()) throw NumericalError("the means are not finite; scale the data or use fewer components");
  const ScatterAbout scatter = scatter_about(e, p.covariance_type, means_rel);  // about the new means
  switch (p.covariance_type) {
    case CovarianceType::full:
      p.covariances.resize(K * D, D);
      for (Index k = 0; k < K; ++k) {
        auto block = p.covariances.block(k * D, 0, D, D);
        full_scatter_about(s, k, means_rel.row(k), block);
        block /= counts(k);
        block.diagonal().array() += reg_covar;
      }
      break;
    case CovarianceType::tied:
      p.covariances = scatter.scatter / counts.sum();
      p.covariances.diagonal().array() += reg_covar;
      break;
    // A variance is a sum of squares: a negative value can only be round-off of a zero one (a component
    // on a single point, its squares rounded in float32), so it is taken as zero.
    case CovarianceType::diag:
      p.covariances = (scatter.scatter.array().colwise() / counts.array()).max(0.0) + reg_covar;
      break;
    case CovarianceType::spherical:
      p.covariances =
          ((scatter.scatter.array() / (counts.array() * static_cast<double>(D))).max(0.0) + reg_covar).matrix();
      break;
    // One variance per feature (or one for all) shared by the components: the scatters summed over k, divided
    // by N (DESIGN.md, "GMM variants with entropy sums").
    case CovarianceType::tied_diag:
      p.covariances = ((scatter.scatter.colwise().sum() / counts.sum()).array().max(0.0) + reg_covar).matrix();
      break;
    case CovarianceType::tied_spherical:
      p.covariances = Eigen::MatrixXd::Constant(
          1, 1, std::max(scatter.scatter.sum() / (counts.sum() * static_cast<double>(D)), 0.0) + reg_covar);
      break;
  }
  // Empty components (every responsibility underflowed) and collapsed ones (singular covariances) are
  // re-seeded; a singular tied covariance belongs to every component and raises below.
  std::vector<Index> reseed;
  std::vector<std::string> reasons;
  for (Index k = 0; k < K; ++k) {
    const bool empty = !(s.totals.resp_sum(k) > 0.0);
    const bool collapsed = !shared_covariance(p.covariance_type) && !positive_definite(p, k);
    if (empty || collapsed) {
      reseed.push_back(k);
      reasons.push_back(empty ? "empty" : "collapsed");
    }
  }
  if (!reseed.empty()) reseed_components(p, counts, reseed, reasons, s.totals.worst);
  if (!learn_weights) p.weights = old.weights;  // fixed π: F = S then needs it uniform (DESIGN.md §2, point 3)
  compute_precision_cholesky(p);
  return p;
}

ElboTerms gaussian_mixture_elbo(const GaussianMixtureExpectation& e, const GaussianMixtureParams& p) {
  const GaussianMixtureStats& s = e.stats;
  const Eigen::VectorXd& counts = s.totals.resp_sum;
  const Index K = p.n_components(), D = p.n_features();
  const Eigen::MatrixXd means_rel = p.means.rowwise() - e.shift.transpose();
  const ScatterAbout scatter = scatter_about(e, p.covariance_type, means_rel);
  const Eigen::VectorXd log_det = log_det_precision_cholesky(p);
  // Σ_k Σ_n w r_nk log N(x_n; μ_k, Σ_k) = Σ_k N_k (log det U_k − ½ D log 2π) − ½ Σ_k tr(U_kᵀ scatter_k U_k)
  double quadratic = 0.0;
  switch (p.covariance_type) {
    case CovarianceType::full: {
      Eigen::MatrixXd block(D, D);
      for (Index k = 0; k < K; ++k) {
        const auto upper = p.precision_cholesky.block(k * D, 0, D, D);
        full_scatter_about(s, k, means_rel.row(k), block);
        quadratic += ((block * upper).array() * upper.array()).sum();
      }
      break;
    }
    case CovarianceType::tied:
      quadratic = ((scatter.scatter * p.precision_cholesky).array() * p.precision_cholesky.array()).sum();
      break;
    case CovarianceType::diag:
      quadratic = (scatter.scatter.array() * p.precision_cholesky.array().square()).sum();
      break;
    case CovarianceType::spherical:
      quadratic = (scatter.scatter.col(0).array() * p.precision_cholesky.col(0).array().square()).sum();
      break;
    case CovarianceType::tied_diag:
      quadratic = (scatter.scatter.colwise().sum().array() * p.precision_cholesky.row(0).array().square()).sum();
      break;
    case CovarianceType::tied_spherical:
      quadratic = scatter.scatter.sum() * p.precision_cholesky(0, 0) * p.precision_cholesky(0, 0);
      break;
  }
  const double expected_log_observable =
      (counts.array() * (log_det.array() - 0.5 * D * kLogTwoPi)).sum() - 0.5 * quadratic;
  const Eigen::VectorXd entropies = component_entropies(p);
  ElboTerms terms = mixture_elbo_terms(s.totals, p.weights, counts.dot(entropies) / s.totals.count);
  terms.elbo = mixture_elbo_at(s.totals, p.weights, expected_log_observable);
  return terms;
}

namespace {
/// Parameters for data of `n_features` columns: K >= 1 weights, means (K, D) and stacked precision factors of the
/// covariance type; std::invalid_argument naming what does not fit (a pass would read out of bounds).
void check_params(const GaussianMixtureParams& p, Index n_features) {
  const Index K = p.weights.size(), D = n_features;
  const Index rows = p.covariance_type == CovarianceType::full   ? K * D
                     : p.covariance_type == CovarianceType::tied ? D
                     : shared_covariance(p.covariance_type)      ? 1
                                                                 : K;
  const Index cols = per_component_type(p.covariance_type) == CovarianceType::spherical ? 1 : D;
  if (K < 1 || p.means.rows() != K || p.means.cols() != D || p.precision_cholesky.rows() != rows ||
      p.precision_cholesky.cols() != cols)
    throw std::invalid_argument("Gaussian mixture parameters of " + std::to_string(K) + " weights, means " +
                                std::to_string(p.means.rows()) + " x " + std::to_string(p.means.cols()) +
                                " and precision factors " + std::to_string(p.precision_cholesky.rows()) + " x " +
                                std::to_string(p.precision_cholesky.cols()) + " do not fit data of " +
                                std::to_string(D) + " features");
}
}  // namespace

template <typename T>
GaussianMixtureExpectation GaussianMixtureModel<T>::e_step(const GaussianMixtureParams& params) const {
  check_params(params, data_.cols());
  GaussianMixtureExpectation e;
  const GaussianMixtureEStep<T> step(params);
  e.shift = step.shift();
  const Index K = params.n_components(), D = params.n_features();
  const Index chunk_size = resolve_chunk_size(execution_, D, sizeof(T));
  e.stats = reduce_rows(
      data_.rows(), chunk_size, execution_, [&] { return GaussianMixtureStats(params.covariance_type, K, D); },
      [] { return typename GaussianMixtureEStep<T>::Workspace(); },
      [&](Index begin, Index end, GaussianMixtureStats& into, typename GaussianMixtureEStep<T>::Workspace& workspace) {
        step.accumulate(data_.middleRows(begin, end - begin), chunk_weights(sample_weight_, begin, end), into,
                        workspace, begin);
      });
  return e;
}

template <typename T>
GaussianMixtureFit fit_gaussian_mixture(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                        GaussianMixtureParams initial, const GaussianMixtureOptions& options,
                                        const IterationCallback& on_iteration) {
  const GaussianMixtureModel<T> model(data, sample_weight, options.reg_covar, options.execution, options.learn_weights);
  GaussianMixtureFit fit{{}, ConvergenceMonitor(options.stop)};
  fit.params = run_em(model, std::move(initial), fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

template <typename T>
GaussianMixtureExpectation gaussian_mixture_responsibility_statistics(
    const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, const ResponsibilitySource& source,
    Index K, CovarianceType type, const Eigen::Ref<const Eigen::VectorXd>& shift, const Execution& execution) {
  const Index D = data.cols();
  const Index chunk_size = resolve_chunk_size(execution, D, sizeof(T));
  GaussianMixtureExpectation e;
  e.shift = shift;
  e.stats = reduce_rows(
      data.rows(), chunk_size, execution, [&] { return GaussianMixtureStats(type, K, D); },
      [&](Index begin, Index end, GaussianMixtureStats& into) {
        const RowMatrix<double> resp =
            weighted_source_responsibilities(source, sample_weight, begin, end, K, into.totals);
        if (promote_to_double<T>(type)) {
          const RowMatrix<double> x =
              data.middleRows(begin, end - begin).template cast<double>().rowwise() - e.shift.transpose();
          accumulate_moments<double>(x, resp, type, into);
        } else {
          const RowMatrix<T> x = data.middleRows(begin, end - begin).rowwise() - e.shift.template cast<T>().transpose();
          accumulate_moments<T>(x, resp.template cast<T>(), type, into);
        }
      });
  return e;
}

std::pair<Eigen::MatrixXd, Eigen::VectorXd> gaussian_mixture_initial_means(const GaussianMixtureExpectation& first) {
  const Eigen::VectorXd counts = first.stats.totals.resp_sum.array() + kCountGuard;
  const Eigen::MatrixXd means =
      (first.stats.first.array().colwise() / counts.array()).matrix().rowwise() + first.shift.transpose();
  // the second pass is taken about the weighted mean of the means
  return {means, means.transpose() * (counts / counts.sum())};
}

GaussianMixtureParams gaussian_mixture_from_initial_statistics(const GaussianMixtureExpectation& second,
                                                               const Eigen::Ref<const Eigen::MatrixXd>& means,
                                                               double reg_covar) {
  GaussianMixtureParams shape;
  shape.covariance_type = second.stats.type;
  shape.means = means;
  shape.weights = Eigen::VectorXd::Ones(means.rows());
  return gaussian_mixture_m_step(second, shape, reg_covar);
}

template <typename T>
GaussianMixtureParams gaussian_mixture_from_responsibilities(const DataRef<T>& data,
                                                             const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                             const ResponsibilitySource& source, Index K,
                                                             CovarianceType type, double reg_covar,
                                                             const Execution& execution) {
  // Pass 1 gives the means (about the first row, a reference inside the data); pass 2 the second moments.
  const Eigen::VectorXd first_row = data.row(0).template cast<double>().transpose();
  const auto [means, shift] = gaussian_mixture_initial_means(gaussian_mixture_responsibility_statistics<T>(
      data, sample_weight, source, K, CovarianceType::diag, first_row, execution));
  return gaussian_mixture_from_initial_statistics(
      gaussian_mixture_responsibility_statistics<T>(data, sample_weight, source, K, type, shift, execution), means,
      reg_covar);
}

template <typename T>
Eigen::VectorXd gaussian_mixture_score(const DataRef<T>& data, const GaussianMixtureParams& params,
                                       RowMatrix<double>* resp, const Execution& execution) {
  check_params(params, data.cols());
  const GaussianMixtureEStep<T> step(params);
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  return mixture_score(data.rows(), params.n_components(), chunk_size, execution, resp,
                       [&](Index begin, Index end) { return step.log_joint(data.middleRows(begin, end - begin)); });
}

#define ENTROSUM_INSTANTIATE(T)                                                                                        \
  template class GaussianMixtureModel<T>;                                                                              \
  template GaussianMixtureFit fit_gaussian_mixture<T>(const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,     \
                                                      GaussianMixtureParams, const GaussianMixtureOptions&,            \
                                                      const IterationCallback&);                                       \
  template GaussianMixtureExpectation gaussian_mixture_responsibility_statistics<T>(                                   \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const ResponsibilitySource&, Index, CovarianceType, \
      const Eigen::Ref<const Eigen::VectorXd>&, const Execution&);                                                     \
  template GaussianMixtureParams gaussian_mixture_from_responsibilities<T>(                                            \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const ResponsibilitySource&, Index, CovarianceType, \
      double, const Execution&);                                                                                       \
  template Eigen::VectorXd gaussian_mixture_score<T>(const DataRef<T>&, const GaussianMixtureParams&,                  \
                                                     RowMatrix<double>*, const Execution&);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
