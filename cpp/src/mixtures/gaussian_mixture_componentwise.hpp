// Private to the library: the Gaussian-mixture E-step for full covariances component by component
// (gaussian_mixture_componentwise.cpp), used by GaussianMixtureEStep for wide data and for float data.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "entrosum/mixtures/gaussian_mixture.hpp"

namespace entrosum::detail {

/// Whether full covariances of data of type T with `n_features` columns go component by component: wide data,
/// where quadratic features are D(D + 1)/2 wide and a triangular product per component is faster.
template <typename T>
bool use_componentwise(CovarianceType type, Index n_features);

template <typename T>
ComponentwiseDensity<T> prepare_componentwise(const GaussianMixtureParams& params);

/// (n, K) log π_k + log N(x_n; μ_k, Σ_k) of a chunk into `log_joint`.
template <typename T>
void componentwise_log_joint(const DataRef<T>& chunk, const ComponentwiseDensity<T>& density,
                             ComponentwiseBuffers<T>& buffers, Eigen::Ref<RowMatrix<T>> log_joint);

/// Adds the statistics of `rows` under their weighted responsibilities `resp` (n, K): each component's about
/// its mean μ_k (float products of rows centred on it keep their digits, where quadratic features about one
/// shift cancel), then re-expressed in double about `shift`, the layout of GaussianMixtureStats. Only the
/// listed `components` (all when null).
template <typename T>
void componentwise_statistics(const DataRef<T>& rows, const RowMatrix<T>& resp, const Eigen::MatrixXd& means,
                              const Eigen::VectorXd& shift, GaussianMixtureStats& stats,
                              ComponentwiseBuffers<T>& buffers, const std::vector<Index>* components);

/// Adds a chunk's statistics (about `shift`, the layout of GaussianMixtureStats); the chunk is rows
/// [row_offset, row_offset + n) of the data the pass covers.
template <typename T>
void componentwise_accumulate(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                              const ComponentwiseDensity<T>& density, const Eigen::VectorXd& shift,
                              GaussianMixtureStats& stats, ComponentwiseBuffers<T>& buffers, Index row_offset);

}  // namespace entrosum::detail
