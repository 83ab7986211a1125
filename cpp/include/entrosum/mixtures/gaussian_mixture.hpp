// Gaussian mixtures with full, tied, diagonal or spherical covariances (DESIGN.md §3), and the two variants of
// DESIGN.md "Second-wave models": one diagonal covariance shared by all components (tied_diag) and one variance
// shared by all components and features (tied_spherical). Their E-step is the diag/spherical one with the shared
// precision broadcast to every component; their statistics have the diag/spherical layout.
// E-step: log π_k + log N(x_n; μ_k, Σ_k) is linear in features of x − shift ([x, x²] for diag,
// [x, ||x||²] for spherical, [x, x_i x_j] for full), so a chunk's log-densities are one matrix product
// and its statistics another; tied covariances whiten once with the shared precision factor. Then
// log-sum-exp; statistics are weighted moments in double about a shift (the weighted median of the means),
// so float32 data with a large offset keep their digits.
#pragma once

#include <Eigen/Core>
#include <utility>
#include <vector>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/mixture.hpp"

namespace entrosum {

enum class CovarianceType { full, tied, diag, spherical, tied_diag, tied_spherical };

/// The per-component type whose E-step kernel and statistics layout a type uses: diag for tied_diag, spherical
/// for tied_spherical, the type itself otherwise.
constexpr CovarianceType per_component_type(CovarianceType type) {
  return type == CovarianceType::tied_diag        ? CovarianceType::diag
         : type == CovarianceType::tied_spherical ? CovarianceType::spherical
                                                  : type;
}

/// Whether one covariance serves every component (tied, tied_diag, tied_spherical).
constexpr bool shared_covariance(CovarianceType type) {
  return type == CovarianceType::tied || type == CovarianceType::tied_diag || type == CovarianceType::tied_spherical;
}

/// Parameters Θ = (π, μ, Σ), in double. Covariances and precision Cholesky factors are stacked as
///   full: (K·D, D), block k = rows [kD, (k+1)D);  tied: (D, D);  diag: (K, D);  spherical: (K, 1);
///   tied_diag: (1, D);  tied_spherical: (1, 1).
/// A precision Cholesky factor U is upper triangular with Σ⁻¹ = U Uᵀ (scikit-learn's convention).
struct GaussianMixtureParams {
  CovarianceType covariance_type = CovarianceType::full;
  /// (n_components) π
  Eigen::VectorXd weights;
  /// (n_components, n_features) μ
  Eigen::MatrixXd means;
  Eigen::MatrixXd covariances;
  Eigen::MatrixXd precision_cholesky;
  /// Components the M-step that made these parameters re-seeded (empty or collapsed ones); usually none.
  std::vector<ComponentRecovery> recovered;

  Index n_components() const { return means.rows(); }
  Index n_features() const { return means.cols(); }
};

/// Fills `precision_cholesky` from `covariances`; a component whose covariance is not positive
/// definite raises NumericalError naming it.
void compute_precision_cholesky(GaussianMixtureParams& params);

/// Fills `covariances` from `precision_cholesky` (for user-given precisions).
void compute_covariances_from_precision_cholesky(GaussianMixtureParams& params);

/// Weighted statistics of the exact posterior over a set of rows, about a shift (the weighted mean of
/// the means, near the data, so sums of squares do not cancel); mergeable.
struct GaussianMixtureStats {
  /// The layout of `second`.
  CovarianceType type = CovarianceType::full;
  MixtureTotals totals;
  /// (n_components, n_features) Σ_n w_n r_nk (x_n − shift)
  Eigen::MatrixXd first;
  /// With y = x − shift: diag (K, D) Σ w r y²;  spherical (K, 1) Σ w r ||y||²;  tied (D, D) Σ w y yᵀ;
  /// full (K, D(D+1)/2) Σ w r y_i y_j for i ≤ j, packed row by row; tied_diag and tied_spherical as diag and
  /// spherical (the M-step sums the components' scatters).
  Eigen::MatrixXd second;

  GaussianMixtureStats() = default;
  GaussianMixtureStats(CovarianceType type, Index n_components, Index n_features);
  GaussianMixtureStats& operator+=(const GaussianMixtureStats& other);
  /// Multiplies every sum by `factor`.
  void scale(double factor);
};

/// What an E-step yields: the statistics and the shift they are taken about.
struct GaussianMixtureExpectation {
  GaussianMixtureStats stats;
  /// (n_features)
  Eigen::VectorXd shift;

  /// Re-expresses the statistics about another point (exactly, up to rounding): the second moments gain
  /// the cross terms with δ = old shift − new shift, e.g. Σ r (y + δ)² = Σ r y² + 2δ Σ r y + N δ².
  void recentre(const Eigen::VectorXd& new_shift);
  /// Merges the statistics of other rows; when they were taken about another shift (an E-step with other
  /// parameters, as in stepwise EM), they are first re-centred onto this one's. An empty value (no shift)
  /// takes the other's.
  GaussianMixtureExpectation& operator+=(const GaussianMixtureExpectation& other);
  void scale(double factor) { stats.scale(factor); }
};

namespace detail {
/// log π_k + log N(x; μ_k, Σ_k) as a function of the shifted row y = x − shift, in compute type U:
/// diag, spherical, full: features(y) · coefficientsᵀ + offsets (features as in the file comment);
/// tied: (yU) · coefficientsᵀ − ½ ||yU||² + offsets, with U the shared precision factor.
template <typename U>
struct GaussianLogDensity {
  CovarianceType type = CovarianceType::full;
  /// (K, n_features of the type); tied: (K, D) the whitened means (μ_k − shift) U
  Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic> coefficients;
  /// (K)
  Eigen::Matrix<U, 1, Eigen::Dynamic> offsets;
  /// tied: (D, D) U; empty otherwise
  Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic> whitening;
  /// full: (K, D) μ_k, about which float data's statistics are taken; empty otherwise
  Eigen::MatrixXd means;
  /// full, float: the components far from the shift (Mahalanobis distance² (μ_k − shift)ᵀ Σ_k⁻¹ (μ_k − shift)
  /// above 64), whose float sums about the shift would cancel; their statistics go component by component
  std::vector<Index> far_components;
};

/// Buffers of one block of rows in compute type U, reused from block to block.
template <typename U>
struct GaussianBlockBuffers {
  RowMatrix<U> shifted;                // (rows, D) y = x − shift
  RowMatrix<U> features;               // (rows, n_features of the type); tied: (rows, D) y U
  RowMatrix<U> resp;                   // (rows, K) the log joint, then w r
  Eigen::VectorXd row_log_likelihood;  // (rows) log p(x_n | Θ)
  // (K, n_features of the type) a chunk's Σ w r features in double when r is sparse, and the same transposed,
  // (n_features of the type, K), when float data's features are made in double (joined to the statistics once per
  // chunk)
  RowMatrix<double> double_sums;
  RowMatrix<double> double_sums_transposed;
  RowMatrix<double> double_shifted;   // (piece rows, D) x − shift in double
  RowMatrix<double> double_features;  // (piece rows, n_features of the type) their features
  RowMatrix<double> double_resp;      // (piece rows, K) w r in double
};

/// Full covariances component by component, for wide data or float data: log N(x; μ_k, Σ_k) from
/// z = (x − μ_k) U_k (a triangular product per component, centred on μ_k so that float data keep their
/// digits), and the statistics by a rank update of each component's responsible rows about μ_k. Memory is a
/// few blocks of rows, where quadratic features would be D(D + 1)/2 wide.
template <typename U>
struct ComponentwiseDensity {
  /// (K·D, D) the stacked upper-triangular precision Cholesky factors U_k of the parameters the step was made
  /// from, not a copy: they are as large as the data when D = K = 128 (float data cast one U_k at a time)
  const Eigen::MatrixXd* factors = nullptr;
  /// (K, D) μ_k
  Eigen::MatrixXd means;
  /// (K) log π_k − ½ D log 2π + log det U_k
  Eigen::Matrix<U, 1, Eigen::Dynamic> offsets;
};

template <typename U>
struct ComponentwiseBuffers {
  RowMatrix<U> centred;                                      // (rows, D) x − μ_k for a block of rows
  RowMatrix<U> whitened;                                     // (rows, D) (x − μ_k) U_k
  RowMatrix<U> resp;                                         // (chunk rows, K) the log joint, then w r
  Eigen::VectorXd row_log_likelihood;                        // (chunk rows)
  RowMatrix<U> gathered;                                     // (responsible rows, D) √(w r) (x − μ_k)
  Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic> scatter;  // (D, D) lower triangle of one component's sum
  Eigen::Matrix<U, Eigen::Dynamic, Eigen::Dynamic> upper;    // (D, D) U_k cast to float (float data only)
};
}  // namespace detail

/// The E-step for one set of parameters: the log-density coefficients are prepared once, then applied to
/// any chunk of rows (the model's passes, scoring, or a worker that holds part of the data).
template <typename T>
class GaussianMixtureEStep {
 public:
  /// Full covariances of wide or float data read `params`' precision factors in place: `params` must outlive
  /// the step (hence no temporaries).
  explicit GaussianMixtureEStep(const GaussianMixtureParams& params);
  explicit GaussianMixtureEStep(GaussianMixtureParams&&) = delete;

  /// (n_features) the point the statistics are taken about (the weighted median of the means, feature by feature)
  const Eigen::VectorXd& shift() const { return shift_; }

  /// Buffers that one thread reuses from chunk to chunk during a pass.
  struct Workspace {
    detail::GaussianBlockBuffers<T> buffers;
    detail::ComponentwiseBuffers<T> componentwise;
  };

  /// Adds one chunk's statistics; the chunk is rows [row_offset, row_offset + n) of the data the pass covers.
  /// `weights` is empty or holds the chunk's sample weights.
  void accumulate(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                  GaussianMixtureStats& stats, Workspace& workspace, Index row_offset = 0) const;
  void accumulate(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                  GaussianMixtureStats& stats) const {
    Workspace workspace;
    accumulate(chunk, weights, stats, workspace);
  }

  /// (n, K) log π_k + log N(x_n; μ_k, Σ_k) for a chunk, in the data's precision.
  RowMatrix<T> log_joint(const DataRef<T>& chunk) const;

 private:
  Eigen::VectorXd shift_;
  /// Full covariances of wide or float data go component by component (see use_componentwise in the source).
  bool componentwise_;
  detail::GaussianLogDensity<T> density_;
  detail::ComponentwiseDensity<T> componentwise_density_;
};

/// The M-step: π_k = N_k / N (kept as they are when `learn_weights` is false), weighted means, weighted
/// covariances plus reg_covar on the diagonal; tied_diag σ²_d = (1/N) Σ_k Σ_n w r_nk (x_nd − μ_kd)² + reg_covar,
/// tied_spherical σ² = the mean over d of that.
/// A component that is empty (every responsibility for it underflowed to 0) or collapsed (a covariance that
/// reg_covar leaves singular: a component on one point) is re-seeded instead of failing: its mean moves to a
/// worst-explained sample (a distinct one for each such component), its covariance and count to the pooled
/// covariance and mean count of the others; `recovered` lists them. That M-step is not the exact
/// one, so F and S after it differ (the monitor shows it). With tied covariances a singular shared
/// covariance cannot be recovered this way and raises NumericalError.
/// The old parameters are taken by value: their covariance and factor storage is reused (K·D² each for full
/// covariances), so a caller that moves them in holds one set of parameters, not two.
GaussianMixtureParams gaussian_mixture_m_step(const GaussianMixtureExpectation& expectation,
                                              GaussianMixtureParams params, double reg_covar,
                                              bool learn_weights = true);

/// F(q, Θ) and S(q, Θ) per sample for the q of `expectation` and any Θ (e.g. before or after an M-step).
ElboTerms gaussian_mixture_elbo(const GaussianMixtureExpectation& expectation, const GaussianMixtureParams& params);

template <typename T>
class GaussianMixtureModel {
 public:
  using Params = GaussianMixtureParams;
  using Expectation = GaussianMixtureExpectation;

  GaussianMixtureModel(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, double reg_covar,
                       const Execution& execution, bool learn_weights = true)
      : data_(data),
        sample_weight_(sample_weight),
        reg_covar_(reg_covar),
        learn_weights_(learn_weights),
        execution_(execution) {}

  Expectation e_step(const Params& params) const;
  ElboTerms evaluate(const Expectation& expectation, const Params& params) const {
    return gaussian_mixture_elbo(expectation, params);
  }
  Params m_step(const Expectation& expectation, Params params) const {
    return gaussian_mixture_m_step(expectation, std::move(params), reg_covar_, learn_weights_);
  }

 private:
  DataRef<T> data_;
  Eigen::Ref<const Eigen::VectorXd> sample_weight_;
  double reg_covar_;
  bool learn_weights_;
  Execution execution_;
};

struct GaussianMixtureOptions {
  double reg_covar = 1e-6;
  /// false: π stays at the initial weights (F = S after an M-step then needs them uniform, DESIGN.md)
  bool learn_weights = true;
  StopOptions stop;
  Execution execution;
};

struct GaussianMixtureFit {
  GaussianMixtureParams params;
  ConvergenceMonitor monitor;
};

/// EM from initial parameters (their precision Cholesky factors must be set). `sample_weight` is empty
/// or holds one non-negative weight per row. Moving `initial` in lets the fit work in its storage.
template <typename T>
GaussianMixtureFit fit_gaussian_mixture(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                        GaussianMixtureParams initial, const GaussianMixtureOptions& options,
                                        const IterationCallback& on_iteration = {});

/// Parameters from given responsibilities, as an M-step would make them (initialisation): two passes,
/// the means first, then the second moments about them.
template <typename T>
GaussianMixtureParams gaussian_mixture_from_responsibilities(const DataRef<T>& data,
                                                             const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                             const ResponsibilitySource& source, Index n_components,
                                                             CovarianceType type, double reg_covar,
                                                             const Execution& execution);

/// The chunk-level pieces of that initialisation, for data split across processes (Dask): the statistics of
/// given responsibilities about `shift` over some rows (mergeable); the means from a first, diagonal pass
/// and the shift of the second pass; the parameters from the merged second pass.
template <typename T>
GaussianMixtureExpectation gaussian_mixture_responsibility_statistics(
    const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, const ResponsibilitySource& source,
    Index n_components, CovarianceType type, const Eigen::Ref<const Eigen::VectorXd>& shift,
    const Execution& execution);
/// (means (K, D), shift (D)) from the first pass's statistics.
std::pair<Eigen::MatrixXd, Eigen::VectorXd> gaussian_mixture_initial_means(const GaussianMixtureExpectation& first);
GaussianMixtureParams gaussian_mixture_from_initial_statistics(const GaussianMixtureExpectation& second,
                                                               const Eigen::Ref<const Eigen::MatrixXd>& means,
                                                               double reg_covar);

/// (n_samples) log p(x_n | Θ) and, when `resp` is non-null, the (n_samples, K) responsibilities.
template <typename T>
Eigen::VectorXd gaussian_mixture_score(const DataRef<T>& data, const GaussianMixtureParams& params,
                                       RowMatrix<double>* resp, const Execution& execution);

}  // namespace entrosum
