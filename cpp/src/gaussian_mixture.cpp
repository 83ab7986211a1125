#include "entrosum/gaussian_mixture.hpp"

#include <Eigen/Cholesky>
#include <chrono>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "entrosum/em.hpp"
#include "entrosum/entropy.hpp"
#include "entrosum/errors.hpp"

namespace entrosum {

namespace {

constexpr double kLogTwoPi = 1.8378770664093454835606594728112;

using ColMatrixD = Eigen::MatrixXd;

std::string component_error(Index k, const std::string& what) {
  return "component " + std::to_string(k) + " " + what;
}

/// (n_components) log det U_k, U_k the precision Cholesky factor (so log det Σ_k = −2 log det U_k).
Eigen::VectorXd log_det_precision_cholesky(const GaussianMixtureParams& p) {
  const Index K = p.n_components(), D = p.n_features();
  Eigen::VectorXd log_det(K);
  switch (p.covariance_type) {
    case CovarianceType::full:
      for (Index k = 0; k < K; ++k) log_det(k) = p.precision_cholesky.block(k * D, 0, D, D).diagonal().array().log().sum();
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
  }
  return log_det;
}

/// (n_components) H[N(μ_k, Σ_k)] = ½ D log 2πe − log det U_k.
Eigen::VectorXd component_entropies(const GaussianMixtureParams& p) {
  const Eigen::VectorXd log_det = log_det_precision_cholesky(p);
  Eigen::VectorXd entropies(log_det.size());
  for (Index k = 0; k < log_det.size(); ++k) entropies(k) = entropy::gaussian_from_log_det(p.n_features(), -2.0 * log_det(k));
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
      for (Index k = 0; k < K; ++k) p.covariances.block(k * D, 0, D, D) = covariance_of(p.precision_cholesky.block(k * D, 0, D, D));
      break;
    case CovarianceType::tied:
      p.covariances = covariance_of(p.precision_cholesky);
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      p.covariances = p.precision_cholesky.array().square().inverse();
      break;
  }
}

GaussianMixtureStats::GaussianMixtureStats(CovarianceType type, Index K, Index D)
    : totals(K), first(ColMatrixD::Zero(K, D)) {
  switch (type) {
    case CovarianceType::full: second = ColMatrixD::Zero(K, D * (D + 1) / 2); break;
    case CovarianceType::tied: second = ColMatrixD::Zero(D, D); break;
    case CovarianceType::diag: second = ColMatrixD::Zero(K, D); break;
    case CovarianceType::spherical: second = ColMatrixD::Zero(K, 1); break;
  }
}

GaussianMixtureStats& GaussianMixtureStats::operator+=(const GaussianMixtureStats& other) {
  totals += other.totals;
  first += other.first;
  second += other.second;
  return *this;
}

namespace {

/// Number of features for n_features columns: diag 2D, spherical D + 1, full D + D(D+1)/2.
Index feature_count(CovarianceType type, Index D) {
  switch (type) {
    case CovarianceType::diag: return 2 * D;
    case CovarianceType::spherical: return D + 1;
    default: return D + D * (D + 1) / 2;
  }
}

/// The features the log-densities and statistics are linear in, for a shifted chunk x (n, D):
/// diag [x, x²], spherical [x, ||x||²], full [x, x_i x_j for i ≤ j] (row by row, i outer).
template <typename T>
RowMatrix<T> linear_features(const Eigen::Ref<const RowMatrix<T>>& x, CovarianceType type) {
  const Index n = x.rows(), D = x.cols();
  RowMatrix<T> features(n, feature_count(type, D));
  features.leftCols(D) = x;
  if (type == CovarianceType::diag) {
    features.rightCols(D) = x.array().square();
  } else if (type == CovarianceType::spherical) {
    features.col(D) = x.rowwise().squaredNorm();
  } else {
    for (Index row = 0; row < n; ++row) {
      Index offset = D;
      for (Index i = 0; i < D; ++i) {
        features.row(row).segment(offset, D - i) = x(row, i) * x.row(row).tail(D - i);
        offset += D - i;
      }
    }
  }
  return features;
}

/// Adds respᵀ · features (Σ w r [x, x²], ...) to the first and second moments.
template <typename T>
void accumulate_linear_features(const RowMatrix<T>& features, const RowMatrix<T>& resp, GaussianMixtureStats& stats) {
  const Index D = stats.first.cols();
  const Eigen::MatrixXd sums = (resp.transpose() * features).template cast<double>();  // (K, n_features of the type)
  stats.first += sums.leftCols(D);
  stats.second += sums.rightCols(sums.cols() - D);
}

/// Full covariances of float data are computed in double: their quadratic features cancel against large
/// precisions (and Σ r y yᵀ − N μ μᵀ against far-away means) beyond float precision.
template <typename T>
constexpr bool promote_to_double(CovarianceType type) {
  return std::is_same_v<T, float> && type == CovarianceType::full;
}

/// Adds first and second moments of a shifted chunk `x` (n, D) under weighted responsibilities
/// `resp` (n, K).
template <typename T>
void accumulate_moments(const RowMatrix<T>& x, const RowMatrix<T>& resp, CovarianceType type,
                        GaussianMixtureStats& stats) {
  using ColMatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Index D = x.cols();
  switch (type) {
    case CovarianceType::diag:
    case CovarianceType::spherical:
    case CovarianceType::full:
      accumulate_linear_features<T>(linear_features<T>(x, type), resp, stats);
      break;
    case CovarianceType::tied: {
      stats.first += (resp.transpose() * x).template cast<double>();
      // Σ_n (Σ_k w r_nk) (x − shift)(x − shift)ᵀ
      const RowMatrix<T> scaled = x.array().colwise() * resp.rowwise().sum().array().sqrt();
      ColMatrixT scatter = ColMatrixT::Zero(D, D);
      scatter.template selfadjointView<Eigen::Lower>().rankUpdate(scaled.transpose());
      stats.second += scatter.template selfadjointView<Eigen::Lower>().toDenseMatrix().template cast<double>();
      break;
    }
  }
}

/// Coefficients A (K, F) and offsets b (K) with log π_k + log N(x; μ_k, Σ_k) = features · A_kᵀ + b_k for
/// the diagonal and spherical types (features as in linear_features, means relative to the shift).
struct LinearLogDensity {
  Eigen::MatrixXd coefficients;
  Eigen::VectorXd offsets;
};

LinearLogDensity linear_log_density(const GaussianMixtureParams& p, const Eigen::MatrixXd& centred_means,
                                    const Eigen::VectorXd& constants) {
  const Index K = p.n_components(), D = p.n_features();
  LinearLogDensity out;
  if (p.covariance_type == CovarianceType::diag) {
    // −½ Σ_d P_kd (x_d − μ_kd)² = Σ_d x_d μ_kd P_kd − ½ Σ_d x_d² P_kd − ½ Σ_d μ_kd² P_kd
    const Eigen::ArrayXXd precision = p.precision_cholesky.array().square();  // (K, D)
    out.coefficients.resize(K, 2 * D);
    out.coefficients.leftCols(D) = centred_means.array() * precision;
    out.coefficients.rightCols(D) = -0.5 * precision;
    out.offsets = constants.array() - 0.5 * (centred_means.array().square() * precision).rowwise().sum();
  } else if (p.covariance_type == CovarianceType::full) {
    // −½ (x − μ)ᵀP(x − μ) = xᵀPμ − ½ Σ_i P_ii x_i² − Σ_{i<j} P_ij x_i x_j − ½ μᵀPμ
    out.coefficients.resize(K, feature_count(CovarianceType::full, D));
    out.offsets.resize(K);
    for (Index k = 0; k < K; ++k) {
      const Eigen::MatrixXd upper = p.precision_cholesky.block(k * D, 0, D, D);
      const Eigen::MatrixXd precision = upper * upper.transpose();
      const Eigen::VectorXd weighted_mean = precision * centred_means.row(k).transpose();
      out.coefficients.row(k).head(D) = weighted_mean.transpose();
      Index offset = D;
      for (Index i = 0; i < D; ++i) {
        out.coefficients(k, offset) = -0.5 * precision(i, i);
        out.coefficients.row(k).segment(offset + 1, D - i - 1) = -precision.row(i).tail(D - i - 1);
        offset += D - i;
      }
      out.offsets(k) = constants(k) - 0.5 * centred_means.row(k).dot(weighted_mean);
    }
  } else {
    const Eigen::ArrayXd precision = p.precision_cholesky.col(0).array().square();  // (K)
    out.coefficients.resize(K, D + 1);
    out.coefficients.leftCols(D) = centred_means.array().colwise() * precision;
    out.coefficients.col(D) = -0.5 * precision;
    out.offsets = constants.array() - 0.5 * precision * centred_means.rowwise().squaredNorm().array();
  }
  return out;
}

/// (n, K) log joint of a shifted chunk for the tied type: one whitening product shared by all components.
template <typename T>
RowMatrix<T> tied_log_joint(const RowMatrix<T>& x, const GaussianMixtureParams& p, const Eigen::MatrixXd& centred_means,
                            const Eigen::VectorXd& constants) {
  using RowMatrixT = RowMatrix<T>;
  RowMatrixT log_joint(x.rows(), p.n_components());
  const RowMatrixT y = x * p.precision_cholesky.template cast<T>();                 // (n, D)
  const RowMatrixT m = (centred_means * p.precision_cholesky).template cast<T>();   // (K, D)
  // −½ ||y − m_k||² = y·m_k − ½ ||y||² − ½ ||m_k||²
  log_joint.noalias() = y * m.transpose();
  log_joint.colwise() -= T(0.5) * y.rowwise().squaredNorm();
  log_joint.rowwise() += (constants.array() - 0.5 * m.template cast<double>().rowwise().squaredNorm().array())
                             .matrix().template cast<T>().transpose();
  return log_joint;
}

/// (n, K) log π_k + log N(x_n; μ_k, Σ_k) for a shifted chunk x; `features` holds linear_features(x)
/// for the diagonal and spherical types and is ignored otherwise.
template <typename T>
RowMatrix<T> log_joint_of(const RowMatrix<T>& x, const RowMatrix<T>& features, const GaussianMixtureParams& p,
                          const Eigen::VectorXd& shift) {
  const Eigen::MatrixXd centred_means = p.means.rowwise() - shift.transpose();  // (K, D)
  // c_k = log π_k − ½ D log 2π + log det U_k
  const Eigen::VectorXd constants =
      p.weights.array().log() - 0.5 * p.n_features() * kLogTwoPi + log_det_precision_cholesky(p).array();
  if (p.covariance_type == CovarianceType::tied) return tied_log_joint<T>(x, p, centred_means, constants);
  const LinearLogDensity density = linear_log_density(p, centred_means, constants);
  RowMatrix<T> log_joint = features * density.coefficients.transpose().template cast<T>();
  log_joint.rowwise() += density.offsets.template cast<T>().transpose();
  return log_joint;
}

bool has_linear_features(CovarianceType type) { return type != CovarianceType::tied; }

/// Rows of a chunk handled at once when building features, so that they stay in cache (~1 MiB).
template <typename T>
Index feature_block_rows(Index n_features) {
  return std::max<Index>(16, (Index(1) << 20) / (n_features * static_cast<Index>(sizeof(T))));
}

/// The weighted mean of the means: a reference point near the data, so sums of squares do not cancel.
Eigen::VectorXd shift_of(const GaussianMixtureParams& p) {
  return (p.means.transpose() * p.weights) / p.weights.sum();
}

}  // namespace

template <typename T>
RowMatrix<T> gaussian_mixture_log_joint(const DataRef<T>& chunk, const GaussianMixtureParams& p,
                                        const Eigen::VectorXd& shift) {
  if constexpr (std::is_same_v<T, float>) {
    if (promote_to_double<T>(p.covariance_type)) {
      const RowMatrix<double> promoted = chunk.template cast<double>();
      return gaussian_mixture_log_joint<double>(promoted, p, shift).template cast<float>();
    }
  }
  const RowMatrix<T> x = chunk.rowwise() - shift.template cast<T>().transpose();  // (n, D)
  const RowMatrix<T> features = has_linear_features(p.covariance_type) ? linear_features<T>(x, p.covariance_type)
                                                                        : RowMatrix<T>();
  return log_joint_of<T>(x, features, p, shift);
}

template <typename T>
void accumulate_gaussian_mixture(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                                 const GaussianMixtureParams& params, const Eigen::VectorXd& shift,
                                 GaussianMixtureStats& stats) {
  if constexpr (std::is_same_v<T, float>) {
    if (promote_to_double<T>(params.covariance_type)) {
      const RowMatrix<double> promoted = chunk.template cast<double>();
      accumulate_gaussian_mixture<double>(promoted, weights, params, shift, stats);
      return;
    }
  }
  const RowMatrix<T> x = chunk.rowwise() - shift.template cast<T>().transpose();  // (n, D), centred once
  const CovarianceType type = params.covariance_type;
  if (!has_linear_features(type)) {
    RowMatrix<T> resp = log_joint_of<T>(x, RowMatrix<T>(), params, shift);
    normalise_log_joint<T>(resp, weights, stats.totals);
    accumulate_moments<T>(x, resp, type, stats);
    return;
  }
  // One product for the log-densities and one for the statistics, both on the features, built for a
  // block of rows at a time.
  const Index block = feature_block_rows<T>(feature_count(type, x.cols()));
  for (Index begin = 0; begin < x.rows(); begin += block) {
    const Index rows = std::min(block, x.rows() - begin);
    const RowMatrix<T> x_block = x.middleRows(begin, rows);
    const RowMatrix<T> features = linear_features<T>(x_block, type);
    RowMatrix<T> resp = log_joint_of<T>(x_block, features, params, shift);
    normalise_log_joint<T>(resp, weights.size() ? Eigen::VectorXd(weights.segment(begin, rows)) : Eigen::VectorXd(),
                           stats.totals);
    accumulate_linear_features<T>(features, resp, stats);
  }
}

namespace {

/// (K·D, D) or per type: the weighted scatter of each component about the means `means_rel`
/// (relative to the shift) — what the M-step and the ELBO need.
struct ScatterAbout {
  CovarianceType type;
  Eigen::MatrixXd scatter;  // full: (K·D, D); tied: (D, D) summed over k; diag/spherical: (K, D)
};

ScatterAbout scatter_about(const GaussianMixtureExpectation& e, CovarianceType type, const Eigen::MatrixXd& means_rel) {
  const GaussianMixtureStats& s = e.stats;
  const Eigen::VectorXd& counts = s.totals.resp_sum;
  const Index K = means_rel.rows(), D = means_rel.cols();
  ScatterAbout out{type, {}};
  switch (type) {
    case CovarianceType::full: {
      // Σ_n r (x − μ)(x − μ)ᵀ = Σ r x xᵀ − first μᵀ − μ firstᵀ + N_k μ μᵀ, all about the shift
      out.scatter.resize(K * D, D);
      for (Index k = 0; k < K; ++k) {
        auto block = out.scatter.block(k * D, 0, D, D);
        Index offset = 0;
        for (Index i = 0; i < D; ++i) {
          block.col(i).tail(D - i) = s.second.row(k).segment(offset, D - i).transpose();
          offset += D - i;
        }
        block.template triangularView<Eigen::StrictlyUpper>() = block.transpose();
        const Eigen::VectorXd mean = means_rel.row(k).transpose();
        const Eigen::VectorXd first = s.first.row(k).transpose();
        block -= first * mean.transpose() + mean * first.transpose() - counts(k) * mean * mean.transpose();
      }
      break;
    }
    case CovarianceType::tied: {
      // Σ_k Σ_n r (x − μ_k)(x − μ_k)ᵀ = Σ w x xᵀ − Σ_k (first_k μ_kᵀ + μ_k first_kᵀ) + Σ_k N_k μ_k μ_kᵀ
      const Eigen::MatrixXd cross = s.first.transpose() * means_rel;
      out.scatter = s.second - cross - cross.transpose() + means_rel.transpose() * counts.asDiagonal() * means_rel;
      break;
    }
    case CovarianceType::diag:
      out.scatter = s.second.array() - 2.0 * means_rel.array() * s.first.array() +
                    (means_rel.array().square().colwise() * counts.array());
      break;
    case CovarianceType::spherical:
      // (K, 1): Σ_n r ||x − μ_k||² = Σ r ||x||² − 2 μ_k·Σ r x + N_k ||μ_k||²
      out.scatter = s.second.array() - 2.0 * (means_rel.array() * s.first.array()).rowwise().sum() +
                    counts.array() * means_rel.rowwise().squaredNorm().array();
      break;
  }
  return out;
}

}  // namespace

GaussianMixtureParams gaussian_mixture_m_step(const GaussianMixtureExpectation& e, const GaussianMixtureParams& old,
                                              double reg_covar) {
  const GaussianMixtureStats& s = e.stats;
  const Index K = old.n_components(), D = old.n_features();
  for (Index k = 0; k < K; ++k)
    if (!(s.totals.resp_sum(k) > 0.0))
      throw NumericalError(component_error(k, "is empty: no sample has a non-zero responsibility for it"));
  const Eigen::VectorXd counts = s.totals.resp_sum.array() + kCountGuard;  // N_k
  GaussianMixtureParams p;
  p.covariance_type = old.covariance_type;
  p.weights = counts / s.totals.count;
  const Eigen::MatrixXd means_rel = s.first.array().colwise() / counts.array();  // (K, D) relative to the shift
  p.means = means_rel.rowwise() + e.shift.transpose();
  if (!p.means.allFinite())
    throw NumericalError("the means are not finite; scale the data or use fewer components");
  const ScatterAbout scatter = scatter_about(e, p.covariance_type, means_rel);  // about the new means
  switch (p.covariance_type) {
    case CovarianceType::full:
      p.covariances.resize(K * D, D);
      for (Index k = 0; k < K; ++k) {
        p.covariances.block(k * D, 0, D, D) = scatter.scatter.block(k * D, 0, D, D) / counts(k);
        p.covariances.block(k * D, 0, D, D).diagonal().array() += reg_covar;
      }
      break;
    case CovarianceType::tied:
      p.covariances = scatter.scatter / counts.sum();
      p.covariances.diagonal().array() += reg_covar;
      break;
    case CovarianceType::diag:
      p.covariances = (scatter.scatter.array().colwise() / counts.array()) + reg_covar;
      break;
    case CovarianceType::spherical:
      p.covariances = (scatter.scatter.array() / (counts.array() * static_cast<double>(D)) + reg_covar).matrix();
      break;
  }
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
    case CovarianceType::full:
      for (Index k = 0; k < K; ++k) {
        const Eigen::MatrixXd upper = p.precision_cholesky.block(k * D, 0, D, D);
        quadratic += ((scatter.scatter.block(k * D, 0, D, D) * upper).array() * upper.array()).sum();
      }
      break;
    case CovarianceType::tied:
      quadratic = ((scatter.scatter * p.precision_cholesky).array() * p.precision_cholesky.array()).sum();
      break;
    case CovarianceType::diag:
      quadratic = (scatter.scatter.array() * p.precision_cholesky.array().square()).sum();
      break;
    case CovarianceType::spherical:
      quadratic = (scatter.scatter.col(0).array() * p.precision_cholesky.col(0).array().square()).sum();
      break;
  }
  const double expected_log_observable =
      (counts.array() * (log_det.array() - 0.5 * D * kLogTwoPi)).sum() - 0.5 * quadratic;
  const Eigen::VectorXd entropies = component_entropies(p);
  ElboTerms terms = mixture_elbo_terms(s.totals, p.weights, counts.dot(entropies) / s.totals.count);
  terms.elbo = mixture_elbo_at(s.totals, p.weights, expected_log_observable);
  return terms;
}

template <typename T>
GaussianMixtureExpectation GaussianMixtureModel<T>::e_step(const GaussianMixtureParams& params) const {
  GaussianMixtureExpectation e;
  e.shift = shift_of(params);
  const Index K = params.n_components(), D = params.n_features();
  const Index chunk_size = resolve_chunk_size(execution_, D, sizeof(T));
  e.stats = reduce_rows(
      data_.rows(), chunk_size, execution_, [&] { return GaussianMixtureStats(params.covariance_type, K, D); },
      [&](Index begin, Index end, GaussianMixtureStats& into) {
        accumulate_gaussian_mixture<T>(data_.middleRows(begin, end - begin), chunk_weights(sample_weight_, begin, end),
                                       params, e.shift, into);
      });
  return e;
}

template <typename T>
GaussianMixtureFit fit_gaussian_mixture(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                        const GaussianMixtureParams& initial, const GaussianMixtureOptions& options,
                                        const IterationCallback& on_iteration) {
  const GaussianMixtureModel<T> model(data, sample_weight, options.reg_covar, options.execution);
  GaussianMixtureFit fit{initial, ConvergenceMonitor(options.stop)};
  fit.params = run_em(model, initial, fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

template <typename T>
GaussianMixtureParams gaussian_mixture_from_responsibilities(const DataRef<T>& data,
                                                             const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                             const ResponsibilitySource& source, Index K,
                                                             CovarianceType type, double reg_covar,
                                                             const Execution& execution) {
  const Index D = data.cols();
  const Index chunk_size = resolve_chunk_size(execution, D, sizeof(T));
  // Pass 1 gives the means (about the first row, a reference inside the data); pass 2 the second moments.
  GaussianMixtureExpectation e;
  e.shift = data.row(0).template cast<double>().transpose();
  auto pass = [&](CovarianceType pass_type) {
    return reduce_rows(
        data.rows(), chunk_size, execution, [&] { return GaussianMixtureStats(pass_type, K, D); },
        [&](Index begin, Index end, GaussianMixtureStats& into) {
          const RowMatrix<double> resp =
              weighted_source_responsibilities(source, sample_weight, begin, end, K, into.totals);
          if (promote_to_double<T>(pass_type)) {
            const RowMatrix<double> x =
                data.middleRows(begin, end - begin).template cast<double>().rowwise() - e.shift.transpose();
            accumulate_moments<double>(x, resp, pass_type, into);
          } else {
            const RowMatrix<T> x = data.middleRows(begin, end - begin).rowwise() - e.shift.template cast<T>().transpose();
            accumulate_moments<T>(x, resp.template cast<T>(), pass_type, into);
          }
        });
  };
  const GaussianMixtureStats first_pass = pass(CovarianceType::diag);
  const Eigen::VectorXd counts = first_pass.totals.resp_sum.array() + kCountGuard;
  const Eigen::MatrixXd means = (first_pass.first.array().colwise() / counts.array()).matrix().rowwise() +
                                e.shift.transpose();
  e.shift = means.transpose() * (counts / counts.sum());  // second pass about the weighted mean of the means
  e.stats = pass(type);
  GaussianMixtureParams shape;
  shape.covariance_type = type;
  shape.means = means;
  shape.weights = Eigen::VectorXd::Ones(K);
  return gaussian_mixture_m_step(e, shape, reg_covar);
}

template <typename T>
Eigen::VectorXd gaussian_mixture_score(const DataRef<T>& data, const GaussianMixtureParams& params,
                                       RowMatrix<double>* resp, const Execution& execution) {
  const Eigen::VectorXd shift = shift_of(params);
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  return mixture_score(data.rows(), params.n_components(), chunk_size, execution, resp, [&](Index begin, Index end) {
    return gaussian_mixture_log_joint<T>(data.middleRows(begin, end - begin), params, shift);
  });
}

#define ENTROSUM_INSTANTIATE(T)                                                                                      \
  template RowMatrix<T> gaussian_mixture_log_joint<T>(const DataRef<T>&, const GaussianMixtureParams&,              \
                                                      const Eigen::VectorXd&);                                      \
  template void accumulate_gaussian_mixture<T>(const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,         \
                                               const GaussianMixtureParams&, const Eigen::VectorXd&,                \
                                               GaussianMixtureStats&);                                              \
  template class GaussianMixtureModel<T>;                                                                           \
  template GaussianMixtureFit fit_gaussian_mixture<T>(const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,  \
                                                      const GaussianMixtureParams&, const GaussianMixtureOptions&,  \
                                                      const IterationCallback&);                                    \
  template GaussianMixtureParams gaussian_mixture_from_responsibilities<T>(                                         \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const ResponsibilitySource&, Index,              \
      CovarianceType, double, const Execution&);                                                                    \
  template Eigen::VectorXd gaussian_mixture_score<T>(const DataRef<T>&, const GaussianMixtureParams&,               \
                                                     RowMatrix<double>*, const Execution&);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
