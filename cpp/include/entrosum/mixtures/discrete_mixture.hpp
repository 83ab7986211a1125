// Mixtures of products of one-parameter exponential families in their mean parameters (DESIGN.md §3):
// Bernoulli mixtures for binary data, Poisson and binomial mixtures for counts, exponential mixtures for
// positive values, multinomial mixtures for count vectors. For such a family,
//   log p(x | k) = Σ_d [x_d η(m_kd) − A(m_kd)] + log h(x),
// with the mean m_kd = E[x_d | k], natural parameter η and log-partition A, so the exact E-step's log joint
// over a chunk is one matrix product x · ηᵀ plus per-component constants (log h(x) is the same for every
// k); the statistics are N_k and Σ_n w_n r_nk x_n, and the exact M-step is a weighted mean.
//
// A family is a small policy (BernoulliMixture, PoissonMixture, BinomialMixture, ExponentialMixture,
// MultinomialMixture) with the scalar pieces; each takes the family's settings `s` and the feature d, since a family
// may have a known constant per feature (the binomial's number of trials):
//   struct Settings                                    its known per-feature constants and M-step settings
//   static constexpr const char* name
//   static constexpr bool has_base_measure             whether log h(x) is not constant
//   static double log_base_measure(s, row)             log h(x) of a row (only if has_base_measure)
//   static double natural(s, d, mean)                  η(m), with floored logs
//   static double log_partition(s, d, mean)            A(m), with floored logs
//   static double expected_log_density(s, d, N, first, m)  Σ_n w r [x η(m) − A(m)] for one (k, d), from N_k, first_kd
//   static double entropy(s, d, mean)                  H (or the pseudo-entropy H~) of one feature's factor
//   static double m_step_mean(s, d, N, first)          the M-step's m_kd
//   static constexpr bool has_second_statistic         false here; true for a two-parameter family (gamma), whose
//                                                      pieces take (mean, shape), collect Σ_n w r log x as well
//                                                      and add natural_second(...) · log x to the log joint
//   static constexpr bool normalises_components        false here; true for a family whose means in a component are
//                                                      probabilities summing to 1 (multinomial): m_step_mean then
//                                                      gives unnormalised weights and normalise_component(s, means, k)
//                                                      rescales row k of the (K, D) means after the per-(k, d) step
//   static constexpr bool entropy_per_total            false here; true when the pseudo-entropy Σ_d entropy(s, d, m)
//                                                      is per unit of a row's total (multinomial): the entropy sum
//                                                      weighs it by Σ_d first_kd = N_k m̄_k instead of N_k
//   static constexpr bool expands_columns              false here; true when the statistics are over columns derived
//                                                      from the data's (categorical: one-hot levels): then
//                                                      expanded_width(s) is their number P, expand(s, chunk) gives a
//                                                      chunk's (n, P) expansion (one chunk at a time, never the whole
//                                                      data), and check_expanded_width(s, P) checks parameters of P
// and the chunked E-step, the driver, the initialisation and the score are shared; they are
// instantiated for each family in its own source file.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/mixture.hpp"

namespace entrosum {

/// Parameters Θ = (π, m), in double.
struct DiscreteMixtureParams {
  /// (n_components) π
  Eigen::VectorXd weights;
  /// (n_components, n_features) m_kd = E[x_d | k]: Bernoulli μ_kd ∈ [0, 1], Poisson λ_kd ≥ 0, binomial
  /// n_d p_kd ∈ [0, n_d], exponential mean 1/β_kd > 0
  Eigen::MatrixXd means;
  /// (n_components, n_features) the second parameter of a two-parameter family (the gamma shape k_kd); empty for the
  /// one-parameter families
  Eigen::MatrixXd shapes;
  /// Components the M-step that made these parameters re-seeded (empty ones); usually none.
  std::vector<ComponentRecovery> recovered;

  Index n_components() const { return means.rows(); }
  Index n_features() const { return means.cols(); }
};

/// Weighted statistics of the exact posterior over a set of rows; mergeable. They are all an E-step
/// yields (the Expectation of the EM driver).
struct DiscreteMixtureStats {
  MixtureTotals totals;
  /// (n_components, n_features) Σ_n w_n r_nk x_n
  Eigen::MatrixXd first;
  /// (n_components, n_features) Σ_n w_n r_nk log x_n for a two-parameter family (gamma); empty otherwise
  Eigen::MatrixXd second;
  /// Σ_n w_n log h(x_n); 0 for a constant base measure (Bernoulli), −Σ_n w_n Σ_d log x_nd! for Poisson
  double log_base_measure = 0.0;

  DiscreteMixtureStats() = default;
  DiscreteMixtureStats(Index n_components, Index n_features, bool with_second = false)
      : totals(n_components),
        first(Eigen::MatrixXd::Zero(n_components, n_features)),
        second(with_second ? Eigen::MatrixXd::Zero(n_components, n_features) : Eigen::MatrixXd()) {}
  DiscreteMixtureStats& operator+=(const DiscreteMixtureStats& other) {
    totals += other.totals;
    first += other.first;
    if (second.size() == 0)
      second = other.second;
    else if (other.second.size())
      second += other.second;
    log_base_measure += other.log_base_measure;
    return *this;
  }
  /// Multiplies every sum by `factor`.
  void scale(double factor) {
    totals.scale(factor);
    first *= factor;
    second *= factor;
    log_base_measure *= factor;
  }
};

/// log max(value, DBL_MIN): a parameter at exactly 0 gives log DBL_MIN ≈ −708 instead of −∞, so that
/// 0 · log 0 is 0, never NaN. Both the E-step and F use it: q is the exact posterior of the model with
/// log-probabilities floored there, and F is that model's ELBO (equal to the exact one unless a
/// parameter sits at exactly 0 or 1 while q gives the impossible outcome a mass below 1e-300).
inline double floored_log(double value) { return std::log(std::max(value, std::numeric_limits<double>::min())); }

/// log max(1 − value, DBL_MIN), computed as log1p(−value) where that is above the floor.
inline double floored_log1m(double value) {
  return std::max(std::log1p(-std::min(value, 1.0)), std::log(std::numeric_limits<double>::min()));
}

/// The number of columns the statistics and means are over: the data's `n_columns`, or the family's expansion of
/// them (categorical: Σ_d L_d one-hot levels). The settings must have been checked against the data.
template <typename Family>
Index discrete_statistics_width(const typename Family::Settings& settings, Index n_columns) {
  if constexpr (Family::expands_columns)
    return Family::expanded_width(settings);
  else
    return n_columns;
}

/// How the driver runs a fit: the family's M-step settings, stopping, and the passes over the data.
template <typename Family>
struct DiscreteMixtureOptions {
  typename Family::Settings settings;
  StopOptions stop;
  Execution execution;
};

struct DiscreteMixtureFit {
  DiscreteMixtureParams params;
  ConvergenceMonitor monitor;
};

/// The parts of the log joint that depend only on Θ, in the data's precision, computed once per pass.
template <typename T>
struct DiscreteLogJointCoefficients {
  /// (n_components, n_features) η(m_kd)
  RowMatrix<T> natural;
  /// (n_components) log π_k − Σ_d A(m_kd)
  Eigen::Matrix<T, 1, Eigen::Dynamic> constants;
  /// (n_components, n_features) the coefficients of log x (gamma: k_kd − 1); empty for one-parameter families
  RowMatrix<T> natural_second;
};

/// η(m_kd) and log π_k − Σ_d A(m_kd) from Θ, with floored logs.
template <typename Family, typename T>
DiscreteLogJointCoefficients<T> discrete_mixture_coefficients(const DiscreteMixtureParams& params,
                                                              const typename Family::Settings& settings);

/// (n, K) log π_k + log p(x_n | k) − log h(x_n) for a chunk: the log joint without the base measure, which
/// is the same for every component, so it is added in double where it matters (log p(x_n), the data term).
/// `log_chunk` is the chunk's elementwise log for a two-parameter family, null otherwise.
template <typename Family, typename T>
RowMatrix<T> discrete_mixture_log_joint(const DataRef<T>& chunk, const DiscreteLogJointCoefficients<T>& coefficients,
                                        const RowMatrix<T>* log_chunk = nullptr);

/// Adds one chunk's statistics; the chunk is rows [row_offset, row_offset + n) of the data the pass covers.
/// `weights` is empty or holds the chunk's sample weights. The data term `log_base_measure` is left alone: it
/// does not depend on Θ, so a fit computes it once (discrete_mixture_log_base_measure) and adds it to every
/// E-step's statistics.
template <typename Family, typename T>
void accumulate_discrete_mixture(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                                 const DiscreteLogJointCoefficients<T>& coefficients, DiscreteMixtureStats& stats,
                                 Index row_offset);

/// The statistics of the exact posterior under `params` over `data` (one chunked pass), the data term included:
/// the chunk-level E-step that partial_fit and Dask workers run.
template <typename Family, typename T>
DiscreteMixtureStats discrete_mixture_e_step(const DataRef<T>& data,
                                             const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                             const DiscreteMixtureParams& params,
                                             const typename Family::Settings& settings, const Execution& execution);

/// Σ_n w_n log h(x_n) over all rows in one chunked pass; 0 for a constant base measure.
template <typename Family, typename T>
double discrete_mixture_log_base_measure(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                         const typename Family::Settings& settings, const Execution& execution);

/// The M-step: π_k = N_k / N and m_kd from the family (the weighted mean, exactly, by default). A result that is
/// not finite raises NumericalError naming the component.
template <typename Family>
DiscreteMixtureParams discrete_mixture_m_step(const DiscreteMixtureStats& stats, const DiscreteMixtureParams& params,
                                              const typename Family::Settings& settings);

/// F(q, Θ) and S(q, Θ) per sample for the q of `stats` and any Θ (before or after an M-step):
///   F = (1/N)[Σ_k N_k log π_k + Σ_kd expected_log_density(N_k, first_kd, m_kd) + Σ_n w_n log h(x_n)] + H̄[r],
///   S = H̄[r] − H[π] − Σ_k (N_k/N) Σ_d H(m_kd) + (1/N) Σ_n w_n log h(x_n)  (N_k m̄_k for N_k when entropy_per_total).
template <typename Family>
ElboTerms discrete_mixture_elbo(const DiscreteMixtureStats& stats, const DiscreteMixtureParams& params,
                                const typename Family::Settings& settings);

template <typename Family, typename T>
class DiscreteMixtureModel {
 public:
  using Params = DiscreteMixtureParams;
  using Expectation = DiscreteMixtureStats;

  /// Families with a base measure take one pass over the data here, for the data term.
  DiscreteMixtureModel(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                       const typename Family::Settings& settings, const Execution& execution);

  /// One chunked pass: the statistics of the exact posterior under `params`, with the data term added.
  Expectation e_step(const Params& params) const;
  ElboTerms evaluate(const Expectation& expectation, const Params& params) const {
    return discrete_mixture_elbo<Family>(expectation, params, settings_);
  }
  Params m_step(const Expectation& expectation, const Params& params) const {
    return discrete_mixture_m_step<Family>(expectation, params, settings_);
  }

 private:
  DataRef<T> data_;
  Eigen::Ref<const Eigen::VectorXd> sample_weight_;
  typename Family::Settings settings_;
  Execution execution_;
  double log_base_measure_ = 0.0;  // Σ_n w_n log h(x_n)
};

/// EM from initial parameters. `sample_weight` is empty or holds one non-negative weight per row. The pass
/// for the data term is the monitor's setup time.
template <typename Family, typename T>
DiscreteMixtureFit fit_discrete_mixture(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                        const DiscreteMixtureParams& initial,
                                        const DiscreteMixtureOptions<Family>& options,
                                        const IterationCallback& on_iteration = {});

/// Initial parameters from given responsibilities (one pass): the M-step of the responsibilities plus one
/// pseudo-row at the (weighted) data mean per component, with the rows' mean weight. The pseudo-row keeps
/// the means inside the parameter domain when a component starts from a single row (one-hot on k-means++
/// seeds or random rows), where μ ∈ {0, 1} or λ = 0 would be a boundary EM cannot leave; for responsibilities
/// spread over many rows (k-means labels, random) it moves the means by O(1/N_k).
template <typename Family, typename T>
DiscreteMixtureParams discrete_mixture_from_responsibilities(const DataRef<T>& data,
                                                             const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                             const ResponsibilitySource& source, Index n_components,
                                                             const typename Family::Settings& settings,
                                                             const Execution& execution);

/// The chunk-level pieces of that initialisation, for data split across processes (Dask): the sums of a
/// pass over some rows (mergeable), and the parameters from the merged sums of all rows.
struct DiscreteInitialStats {
  DiscreteMixtureStats stats;
  /// (n_features) Σ_n w_n x_n
  Eigen::VectorXd data_sum;
  /// (n_features) Σ_n w_n log x_n for a two-parameter family; empty otherwise
  Eigen::VectorXd data_log_sum;
  /// rows summed over
  Index n_rows = 0;
  DiscreteInitialStats() = default;
  DiscreteInitialStats(Index n_components, Index n_features, bool with_second = false)
      : stats(n_components, n_features, with_second),
        data_sum(Eigen::VectorXd::Zero(n_features)),
        data_log_sum(with_second ? Eigen::VectorXd::Zero(n_features) : Eigen::VectorXd()) {}
  DiscreteInitialStats& operator+=(const DiscreteInitialStats& other) {
    stats += other.stats;
    data_sum += other.data_sum;
    if (data_log_sum.size() == 0)
      data_log_sum = other.data_log_sum;
    else if (other.data_log_sum.size())
      data_log_sum += other.data_log_sum;
    n_rows += other.n_rows;
    return *this;
  }
  /// Multiplies the weighted sums by `factor` (the rows stay counted once: they set the pseudo-row's weight).
  void scale(double factor) {
    stats.scale(factor);
    data_sum *= factor;
    data_log_sum *= factor;
  }
};
template <typename Family, typename T>
DiscreteInitialStats discrete_mixture_responsibility_statistics(const DataRef<T>& data,
                                                                const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                                const ResponsibilitySource& source, Index n_components,
                                                                const typename Family::Settings& settings,
                                                                const Execution& execution);
template <typename Family>
DiscreteMixtureParams discrete_mixture_from_initial_statistics(DiscreteInitialStats sums,
                                                               const typename Family::Settings& settings);

/// (n_samples) log p(x_n | Θ) and, when `resp` is non-null, the (n_samples, K) responsibilities.
template <typename Family, typename T>
Eigen::VectorXd discrete_mixture_score(const DataRef<T>& data, const DiscreteMixtureParams& params,
                                       const typename Family::Settings& settings, RowMatrix<double>* resp,
                                       const Execution& execution);

}  // namespace entrosum
