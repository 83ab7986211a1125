// Checks of what Python hands to the C++ library: every size an entry point is given is compared with the sizes
// it must fit before any loop reads it, so that a wrong size is a ValueError naming the argument and the shape
// expected, never a read out of bounds (issue 13). The estimators check their fitted attributes first; these
// checks guard every other way in (the private step API, pickled statistics, direct calls of _core).
#pragma once

#include <string>

#include "common.hpp"
#include "entrosum/core/moments.hpp"
#include "entrosum/linear/linear_gaussian.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"
#include "entrosum/mixtures/gaussian_mixture.hpp"
#include "entrosum/mixtures/kmeans.hpp"
#include "entrosum/sparse/sparse_coding.hpp"
#include "entrosum/vae/gaussian_vae.hpp"

namespace entrosum::bindings {

inline std::string shape_text(Index rows, Index cols) {
  return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

/// `name` must be a (rows, cols) matrix.
template <typename Matrix>
void check_shape(const std::string& name, const Matrix& matrix, Index rows, Index cols) {
  if (matrix.rows() != rows || matrix.cols() != cols)
    throw py::value_error(name + " has shape " + shape_text(matrix.rows(), matrix.cols()) + ", expected " +
                          shape_text(rows, cols));
}

/// `name` must be a vector of `size` entries.
template <typename Vector>
void check_size(const std::string& name, const Vector& vector, Index size) {
  if (vector.size() != size)
    throw py::value_error(name + " has " + std::to_string(vector.size()) + " entries, expected " +
                          std::to_string(size));
}

/// At least `minimum`.
inline void check_at_least(const std::string& name, Index value, Index minimum) {
  if (value < minimum)
    throw py::value_error(name + " must be at least " + std::to_string(minimum) + ", got " + std::to_string(value));
}

/// Sample weights: none (empty) or one finite non-negative weight per row.
inline void check_sample_weight(const Eigen::VectorXd& sample_weight, Index n_rows) {
  if (sample_weight.size() == 0) return;
  check_size("sample_weight", sample_weight, n_rows);
  if (!sample_weight.allFinite() || (sample_weight.array() < 0.0).any())
    throw py::value_error("sample_weight must hold finite non-negative weights");
}

/// Components K of a mixture fitted to `n_rows` rows: 1 <= K.
inline void check_n_components(Index n_components) { check_at_least("n_components", n_components, 1); }

/// The data of a pass: at least one feature.
template <typename T>
void check_data(const CArray<T>& data) {
  if (data.ndim() != 2) throw py::value_error("data must be 2-D (n_samples, n_features)");
  if (data.shape(1) < 1) throw py::value_error("data must have at least one feature");
}

// ---- the parameters of each family, for data of n_features columns -------------------------------------------

/// π (K), μ (K, D) with K >= 1, and the stacked covariances and precision factors the call reads.
inline void check_params(const GaussianMixtureParams& p, Index n_features, bool covariances, bool precision_cholesky) {
  const Index K = p.weights.size(), D = n_features;
  check_at_least("the number of weights (components)", K, 1);
  check_shape("means", p.means, K, D);
  Index rows = K * D, cols = D;
  switch (p.covariance_type) {
    case CovarianceType::full:
      break;
    case CovarianceType::tied:
      rows = D;
      break;
    case CovarianceType::diag:
      rows = K;
      break;
    case CovarianceType::spherical:
      rows = K, cols = 1;
      break;
    case CovarianceType::tied_diag:
      rows = 1;
      break;
    case CovarianceType::tied_spherical:
      rows = 1, cols = 1;
      break;
  }
  if (covariances) check_shape("covariances (stacked)", p.covariances, rows, cols);
  if (precision_cholesky) check_shape("precision_cholesky (stacked)", p.precision_cholesky, rows, cols);
}

/// The statistics of an E-step for K components and D features in the layout of `type`.
inline void check_stats(const MixtureTotals& totals, Index K, Index D) {
  check_size("the statistics' resp_sum", totals.resp_sum, K);
  for (const WorstSample& sample : totals.worst.samples)
    check_size("a worst sample of the statistics", sample.values, D);
}

inline void check_expectation(const GaussianMixtureExpectation& e, CovarianceType type, Index K, Index D) {
  if (e.stats.type != type) throw py::value_error("the statistics were gathered for another covariance_type");
  check_stats(e.stats.totals, K, D);
  check_shape("the statistics' first moments", e.stats.first, K, D);
  switch (type) {
    case CovarianceType::full:
      check_shape("the statistics' second moments", e.stats.second, K, D * (D + 1) / 2);
      break;
    case CovarianceType::tied:
      check_shape("the statistics' second moments", e.stats.second, D, D);
      break;
    case CovarianceType::diag:
    case CovarianceType::tied_diag:
      check_shape("the statistics' second moments", e.stats.second, K, D);
      break;
    case CovarianceType::spherical:
    case CovarianceType::tied_spherical:
      check_shape("the statistics' second moments", e.stats.second, K, 1);
      break;
  }
  check_size("the statistics' shift", e.shift, D);
}

inline void check_params(const DiscreteMixtureParams& p, Index n_features) {
  check_at_least("the number of weights (components)", p.weights.size(), 1);
  check_shape("means", p.means, p.weights.size(), n_features);
}

inline void check_stats(const DiscreteMixtureStats& s, Index K, Index D) {
  check_stats(s.totals, K, D);
  check_shape("the statistics' first moments", s.first, K, D);
  if (s.second.size()) check_shape("the statistics' sums of log x", s.second, K, D);
}

inline void check_params(const LinearGaussianParams& p, Index n_features) {
  check_size("mean", p.mean, n_features);
  check_shape("components", p.components, n_features, p.components.cols());
  check_size("noise_variance", p.noise_variance, n_features);
}

/// Moments of D features: the mean and the scatter (full, D × D, or diagonal only).
inline void check_moments(const Moments& m) {
  const Index D = m.mean.size();
  check_at_least("the moments' number of features", D, 1);
  check_size("the moments' scatter diagonal", m.scatter_diagonal, D);
  if (m.scatter.size()) check_shape("the moments' scatter", m.scatter, D, D);
}

inline void check_expectation(const LinearGaussianExpectation& e, const LinearGaussianParams& p) {
  const Index D = p.mean.size(), H = p.components.cols();
  check_shape("the expectation's posterior covariance", e.posterior.covariance, H, H);
  check_shape("the expectation's projection", e.posterior.projection, D, H);
  check_size("the expectation's centred squares", e.stats.centred_square, D);
  check_shape("the expectation's cross moments", e.stats.cross, D, H);
  check_shape("the expectation's mean outer products", e.stats.mean_outer, H, H);
}

/// W (D, H) with H >= 1, and λ (H) unless `scales_may_be_empty` (a fit that starts λ from the data).
inline void check_params(const SparseCodingParams& p, Index n_features, bool scales_may_be_empty = false) {
  check_at_least("the number of atoms (components' columns)", p.components.cols(), 1);
  check_shape("components", p.components, n_features, p.components.cols());
  if (!(scales_may_be_empty && p.scales.size() == 0)) check_size("scales", p.scales, p.components.cols());
}

inline void check_stats(const SparseCodingStats& s, Index D, Index H) {
  check_shape("the statistics' cross moments", s.cross, D, H);
  check_shape("the statistics' second moments", s.second_moment, H, H);
  check_size("the statistics' expected absolute values", s.expected_abs, H);
}

inline void check_stats(const KMeansStats& s, Index K, Index D) {
  check_shape("the k-means statistics' sums", s.sums, K, D);
  check_size("the k-means statistics' counts", s.counts, K);
}

}  // namespace entrosum::bindings

// The checks of statistics are in namespace entrosum, where bind_statistics (common.hpp) finds them for each
// statistics type by argument-dependent lookup.
namespace entrosum {

using bindings::check_expectation;
using bindings::check_shape;
using bindings::check_size;
using bindings::check_stats;
using bindings::shape_text;
namespace py = pybind11;

// ---- statistics: restored from a pickle (any state Python gives), and merged -------------------------------------

/// Internal consistency of statistics restored from a pickled state; their M-steps then check them against the
/// parameters.
inline void check_consistent(const GaussianMixtureExpectation& e) {
  const int type = static_cast<int>(e.stats.type);
  if (type < 0 || type > static_cast<int>(CovarianceType::tied_spherical))
    throw py::value_error("invalid covariance type in the statistics' state");
  check_expectation(e, e.stats.type, e.stats.totals.resp_sum.size(), e.shift.size());
}
inline void check_consistent(const DiscreteMixtureStats& s) {
  check_stats(s, s.totals.resp_sum.size(), s.first.cols());
}
inline void check_consistent(const DiscreteInitialStats& s) {
  check_consistent(s.stats);
  check_size("the statistics' data_sum", s.data_sum, s.stats.first.cols());
  if (s.data_log_sum.size()) check_size("the statistics' data_log_sum", s.data_log_sum, s.stats.first.cols());
}
inline void check_consistent(const SparseCodingExpectation& e) {
  check_stats(e.stats, e.stats.cross.rows(), e.stats.cross.cols());
}
inline void check_consistent(const Moments& m) {
  check_size("the moments' scatter diagonal", m.scatter_diagonal, m.mean.size());
  if (m.scatter.size()) check_shape("the moments' scatter", m.scatter, m.mean.size(), m.mean.size());
}
inline void check_consistent(const KMeansStats& s) { check_stats(s, s.sums.rows(), s.sums.cols()); }
inline void check_consistent(const GaussianVaeStats& s) {
  check_size("the VAE statistics' encoder_variance", s.encoder_variance, s.encoder_mean_square.size());
}

/// Merging statistics of different shapes would write out of bounds: every sum must have the same shape.
template <typename Matrix>
void check_same_shape(const char* what, const Matrix& a, const Matrix& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols())
    throw py::value_error(std::string("cannot merge statistics of different shapes (") + what + " " +
                          shape_text(a.rows(), a.cols()) + " and " + shape_text(b.rows(), b.cols()) + ")");
}
template <typename Vector>
void check_same_size(const char* what, const Vector& a, const Vector& b) {
  if (a.size() != b.size())
    throw py::value_error(std::string("cannot merge statistics of different shapes (") + what + " of " +
                          std::to_string(a.size()) + " and " + std::to_string(b.size()) + " entries)");
}

inline void check_mergeable(const MixtureTotals& a, const MixtureTotals& b) {
  check_same_size("resp_sum", a.resp_sum, b.resp_sum);
  const Index D = a.worst.samples.empty() ? -1 : a.worst.samples.front().values.size();
  for (const WorstSample& sample : b.worst.samples)
    if (D >= 0 && sample.values.size() != D) throw py::value_error("cannot merge statistics of different shapes");
}
/// An empty left side (a fresh value) takes the right side's statistics.
inline void check_mergeable(const GaussianMixtureExpectation& a, const GaussianMixtureExpectation& b) {
  if (a.shift.size() == 0) return;
  if (a.stats.type != b.stats.type) throw py::value_error("cannot merge statistics of different covariance types");
  check_mergeable(a.stats.totals, b.stats.totals);
  check_same_shape("first", a.stats.first, b.stats.first);
  check_same_shape("second", a.stats.second, b.stats.second);
  check_same_size("shift", a.shift, b.shift);
}
inline void check_mergeable(const DiscreteMixtureStats& a, const DiscreteMixtureStats& b) {
  check_mergeable(a.totals, b.totals);
  check_same_shape("first", a.first, b.first);
  if (a.second.size() && b.second.size()) check_same_shape("second", a.second, b.second);
}
inline void check_mergeable(const DiscreteInitialStats& a, const DiscreteInitialStats& b) {
  check_mergeable(a.stats, b.stats);
  check_same_size("data_sum", a.data_sum, b.data_sum);
  if (a.data_log_sum.size() && b.data_log_sum.size()) check_same_size("data_log_sum", a.data_log_sum, b.data_log_sum);
}
inline void check_mergeable(const Moments& a, const Moments& b) {
  check_same_size("mean", a.mean, b.mean);
  check_same_size("scatter diagonal", a.scatter_diagonal, b.scatter_diagonal);
  check_same_shape("scatter", a.scatter, b.scatter);
}
inline void check_mergeable(const SparseCodingExpectation& a, const SparseCodingExpectation& b) {
  if (a.stats.cross.size() == 0) return;
  check_same_shape("cross", a.stats.cross, b.stats.cross);
  check_same_shape("second moment", a.stats.second_moment, b.stats.second_moment);
  check_same_size("expected_abs", a.stats.expected_abs, b.stats.expected_abs);
}
/// GaussianVaeStats' += checks its sizes itself (an empty side adopts the other's).
inline void check_mergeable(const GaussianVaeStats&, const GaussianVaeStats&) {}
inline void check_mergeable(const KMeansStats& a, const KMeansStats& b) {
  check_same_shape("sums", a.sums, b.sums);
  check_same_size("counts", a.counts, b.counts);
}

}  // namespace entrosum
