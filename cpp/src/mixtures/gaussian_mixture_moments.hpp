// Private to the library: the features and weighted moments shared by the Gaussian-mixture E-step
// (gaussian_mixture_e_step.cpp) and its initialisation from responsibilities (gaussian_mixture.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../core/stack_products.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/mixtures/gaussian_mixture.hpp"

namespace entrosum::detail {

using entropy::kLogTwoPi;

/// (n_components) log det U_k, U_k the precision Cholesky factor (so log det Σ_k = −2 log det U_k).
Eigen::VectorXd log_det_precision_cholesky(const GaussianMixtureParams& params);

/// tied_diag and tied_spherical parameters as diag and spherical ones whose K rows repeat the shared variance
/// and precision factor, so that the per-component E-step kernels serve them; other types unchanged.
GaussianMixtureParams broadcast_shared_variances(const GaussianMixtureParams& params);

/// Number of features for n_features columns: diag 2D, spherical D + 1, full D + D(D+1)/2.
inline Index feature_count(CovarianceType type, Index D) {
  switch (per_component_type(type)) {
    case CovarianceType::diag:
      return 2 * D;
    case CovarianceType::spherical:
      return D + 1;
    default:
      return D + D * (D + 1) / 2;
  }
}

/// Writes the features the log-densities and statistics are linear in, for a shifted block x (n, D),
/// into `features` (resized): diag [x, x²], spherical [x, ||x||²], full [x, x_i x_j for i ≤ j] (row by
/// row, i outer).
template <typename T, typename Shifted>
void fill_linear_features(const Shifted& x, CovarianceType type, RowMatrix<T>& features) {
  const Index n = x.rows(), D = x.cols();
  features.resize(n, feature_count(type, D));
  features.leftCols(D) = x;
  if (per_component_type(type) == CovarianceType::diag) {
    features.rightCols(D) = x.array().square();
  } else if (per_component_type(type) == CovarianceType::spherical) {
    features.col(D) = x.rowwise().squaredNorm();
  } else {
    // Plain loops: D is small where these features are used (wider data go by triangular products), and for
    // colour pixels (D = 3) an Eigen segment expression per (row, i) cost more to set up than its few products.
    for (Index row = 0; row < n; ++row) {
      T* out = &features(row, D);
      for (Index i = 0; i < D; ++i) {
        const T left = x(row, i);
        for (Index j = i; j < D; ++j) *out++ = left * x(row, j);
      }
    }
  }
}

template <typename T>
RowMatrix<T> linear_features(const Eigen::Ref<const RowMatrix<T>>& x, CovarianceType type) {
  RowMatrix<T> features;
  fill_linear_features<T>(x, type, features);
  return features;
}

/// Adds respᵀ · features (Σ w r [x, x²], ...) to the first and second moments.
template <typename T, typename Resp>
void accumulate_linear_features(const RowMatrix<T>& features, const Resp& resp, GaussianMixtureStats& stats) {
  const Index D = stats.first.cols();
  Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(resp.cols(), features.cols());  // (K, n_features of the type)
  add_transposed_product(resp, features, sums);
  stats.first += sums.leftCols(D);
  stats.second += sums.rightCols(sums.cols() - D);
}

/// Full covariances of float data are computed in double: their quadratic features cancel against large
/// precisions (and Σ r y yᵀ − N μ μᵀ against far-away means) beyond float precision.
template <typename T>
constexpr bool promote_to_double(CovarianceType type) {
  return std::is_same_v<T, float> && type == CovarianceType::full;
}

/// Adds Σ_n resp_nk x_n and Σ_n resp_nk x_n x_nᵀ (packed, i ≤ j row by row) of a shifted chunk `x` (n, D), component
/// by component over the rows each is responsible for (a rank update of √r x): D(D + 1)/2-wide quadratic
/// features would take (n, D(D + 1)/2) memory.
template <typename T, typename Shifted, typename Resp>
void accumulate_full_moments(const Shifted& x, const Resp& resp, GaussianMixtureStats& stats) {
  using ColMatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Index n = x.rows(), D = x.cols(), K = resp.cols();
  RowMatrix<T> gathered(n, D);
  ColMatrixT scatter(D, D);
  for (Index k = 0; k < K; ++k) {
    Index rows = 0;
    for (Index row = 0; row < n; ++row) {
      const T r = resp(row, k);
      if (!(r > T(0))) continue;
      stats.first.row(k) += (r * x.row(row)).template cast<double>();
      gathered.row(rows++) = std::sqrt(r) * x.row(row);
    }
    if (rows == 0) continue;
    scatter.setZero();
    add_rank_update(gathered.topRows(rows), scatter);
    Index offset = 0;
    for (Index i = 0; i < D; ++i)
      for (Index j = i; j < D; ++j) stats.second(k, offset++) += static_cast<double>(scatter(j, i));
  }
}

/// Adds first and second moments of a shifted chunk `x` (n, D) under weighted responsibilities
/// `resp` (n, K).
template <typename T, typename Shifted, typename Resp>
void accumulate_moments(const Shifted& x, const Resp& resp, CovarianceType type, GaussianMixtureStats& stats) {
  using ColMatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Index D = x.cols();
  switch (type) {
    case CovarianceType::diag:
    case CovarianceType::spherical:
    case CovarianceType::tied_diag:
    case CovarianceType::tied_spherical:
      accumulate_linear_features<T>(linear_features<T>(x, per_component_type(type)), resp, stats);
      break;
    case CovarianceType::full:
      accumulate_full_moments<T>(x, resp, stats);
      break;
    case CovarianceType::tied: {
      add_transposed_product(resp, x, stats.first);
      // Σ_n (Σ_k w r_nk) (x − shift)(x − shift)ᵀ
      const RowMatrix<T> scaled = x.array().colwise() * resp.rowwise().sum().array().sqrt();
      ColMatrixT scatter = ColMatrixT::Zero(D, D);
      add_rank_update(scaled, scatter);
      stats.second += scatter.template selfadjointView<Eigen::Lower>().toDenseMatrix().template cast<double>();
      break;
    }
  }
}

/// The weighted median of the means, feature by feature: a reference point near the data, so sums of squares do
/// not cancel. A median, not a mean: one component started or left far from every sample (a million away, say)
/// would drag a mean out of the data, and float sums about it would lose every digit.
inline Eigen::VectorXd shift_of(const GaussianMixtureParams& p) {
  const Index K = p.means.rows();
  const double half = 0.5 * p.weights.sum();
  std::vector<Index> order(static_cast<std::size_t>(K));
  Eigen::VectorXd shift(p.means.cols());
  for (Index d = 0; d < p.means.cols(); ++d) {
    std::iota(order.begin(), order.end(), Index{0});
    // Ties broken by index, so the shift does not depend on the sort's implementation.
    std::sort(order.begin(), order.end(), [&](Index a, Index b) {
      return p.means(a, d) < p.means(b, d) || (p.means(a, d) == p.means(b, d) && a < b);
    });
    double below = 0.0;
    std::size_t i = 0;
    while (i + 1 < order.size() && below + p.weights(order[i]) < half) below += p.weights(order[i++]);
    shift(d) = p.means(order[i], d);
  }
  return shift;
}

}  // namespace entrosum::detail
