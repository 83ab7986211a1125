// Mixtures for tables whose columns are of different kinds (DESIGN.md "Second-wave models", exponential-family
// mixtures): every column belongs to one family (Gaussian, Bernoulli, Poisson, binomial, categorical, exponential,
// gamma) and each component is the product of independent per-column distributions,
//   log p(x | k) = Σ_d [η_kdᵀ T_d(x_d) − A_kd] + Σ_d log h_d(x_d).
// The sufficient statistics of a row, T(x) (P values), are laid out family by family (MixedLayout):
//   Gaussian x and x², Bernoulli / Poisson / binomial x, categorical one-hot codes, exponential x, gamma x and log x,
// so the exact E-step's log joint over a chunk is one (n, P) × (P, K) product plus per-component constants, the
// statistics are N_k and Σ_n w_n r_nk T(x_n) (K, P), and each family's M-step reads its own columns of them.
// The one-parameter families reuse the scalar pieces of their discrete-mixture policies (bernoulli_mixture.hpp,
// poisson_mixture.hpp, binomial_mixture.hpp, exponential_mixture.hpp, gamma_mixture.hpp); the Gaussian and
// categorical pieces are here.
#pragma once

#include <Eigen/Core>
#include <string>
#include <utility>
#include <vector>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/mixture.hpp"

namespace entrosum {

/// The family of one column; the numbering is part of the Python interface and the model files' order.
enum class ColumnFamily : int { gaussian = 0, bernoulli, poisson, binomial, categorical, exponential, gamma };
inline constexpr int kColumnFamilies = 7;

/// The family's name, as Python spells it ("gaussian", ...).
const char* column_family_name(ColumnFamily family);

/// What a mixed mixture is fitted with: each column's family and the known constants of some families.
struct MixedSpec {
  /// (n_features) the family of each column
  std::vector<ColumnFamily> families;
  /// (n_binomial) the number of trials of each binomial column, in column order; whole numbers in [1, 2^53]
  Eigen::VectorXd n_trials;
  /// (n_categorical) the number of levels L of each categorical column, in column order; codes are 0..L−1
  std::vector<Index> n_levels;
  /// Added to every Gaussian variance in the M-step (≥ 0); 0 is the exact M-step, after which F = S holds.
  double reg_covar = 0.0;
};

/// Where each family's columns and statistics are, derived from a MixedSpec.
struct MixedLayout {
  /// the column indices of each family, increasing (indexed by ColumnFamily)
  std::vector<Index> columns[kColumnFamilies];
  /// (n_categorical + 1) where each categorical column's levels start in the probabilities, and their total
  std::vector<Index> level_offsets;
  /// the first statistic of each family (indexed by ColumnFamily); Gaussian and gamma hold 2 per column
  Index offsets[kColumnFamilies] = {};
  /// P, the number of statistics of a row
  Index n_statistics = 0;
  Index n_features = 0;

  Index count(ColumnFamily family) const { return static_cast<Index>(columns[static_cast<int>(family)].size()); }
  const std::vector<Index>& of(ColumnFamily family) const { return columns[static_cast<int>(family)]; }
  Index offset(ColumnFamily family) const { return offsets[static_cast<int>(family)]; }
  Index n_levels_total() const { return level_offsets.back(); }
};

/// The layout of `spec` for data of `n_features` columns; std::invalid_argument naming what does not fit
/// (a family per column, one number of trials per binomial column, one number of levels ≥ 1 per categorical column).
MixedLayout mixed_layout(const MixedSpec& spec, Index n_features);

/// Parameters Θ, in double.
struct MixedMixtureParams {
  /// (n_components) π
  Eigen::VectorXd weights;
  /// (n_components, n_features) E[x_d | k] of every column: the Gaussian mean μ, Bernoulli μ, Poisson λ, binomial
  /// n p, exponential 1/β, gamma k/β; for a categorical column Σ_l l p_l (derived, not read)
  Eigen::MatrixXd means;
  /// (n_components, n_gaussian) the Gaussian variances σ²
  Eigen::MatrixXd variances;
  /// (n_components, n_gamma) the gamma shapes k
  Eigen::MatrixXd shapes;
  /// (n_components, Σ L) the level probabilities of the categorical columns, one column's levels after another's
  Eigen::MatrixXd probabilities;
  /// Components the M-step that made these parameters re-seeded (empty ones); usually none.
  std::vector<ComponentRecovery> recovered;

  Index n_components() const { return weights.size(); }
};

/// Weighted statistics of the exact posterior over a set of rows; mergeable. The Gaussian columns' statistics are
/// taken about a shift c (the statistics x − c and (x − c)², so that x² of data far from 0 does not cancel in the
/// data's precision); values with different shifts are merged exactly by moving the other's sums to this shift.
struct MixedMixtureStats {
  MixtureTotals totals;
  /// (n_components, P) Σ_n w_n r_nk T(x_n), the Gaussian x and x² about gaussian_shift
  Eigen::MatrixXd statistics;
  /// (n_gaussian) the shift c of the Gaussian columns' statistics (their first 2 n_gaussian columns)
  Eigen::VectorXd gaussian_shift;
  /// Σ_n w_n log h(x_n) (Poisson and binomial columns)
  double log_base_measure = 0.0;

  MixedMixtureStats() = default;
  MixedMixtureStats(Index n_components, Index n_statistics, const Eigen::VectorXd& shift)
      : totals(n_components), statistics(Eigen::MatrixXd::Zero(n_components, n_statistics)), gaussian_shift(shift) {}
  /// An empty (default) value takes the other's sums.
  MixedMixtureStats& operator+=(const MixedMixtureStats& other) {
    if (statistics.size() == 0 && totals.resp_sum.size() == 0) return *this = other;
    if (other.gaussian_shift == gaussian_shift) {
      totals += other.totals;
      statistics += other.statistics;
    } else {
      MixedMixtureStats moved = other;
      moved.move_shift(gaussian_shift);
      totals += moved.totals;
      statistics += moved.statistics;
    }
    log_base_measure += other.log_base_measure;
    return *this;
  }
  void scale(double factor) {
    totals.scale(factor);
    statistics *= factor;
    log_base_measure *= factor;
  }
  /// Re-expresses the Gaussian sums (and the worst samples' statistics) about `shift`, exactly:
  /// Σ r (x − c') = S₁ + N d and Σ r (x − c')² = S₂ + 2 d S₁ + N d² with d = c − c'.
  void move_shift(const Eigen::VectorXd& shift) {
    const Index n_gaussian = gaussian_shift.size();
    for (Index j = 0; j < n_gaussian; ++j) {
      const double d = gaussian_shift(j) - shift(j);
      for (Index k = 0; k < statistics.rows(); ++k) {
        const double first = statistics(k, j);
        statistics(k, j) = first + totals.resp_sum(k) * d;
        statistics(k, n_gaussian + j) += 2.0 * d * first + totals.resp_sum(k) * d * d;
      }
      for (WorstSample& sample : totals.worst.samples) {
        const double first = sample.values(j);
        sample.values(j) = first + d;
        sample.values(n_gaussian + j) += 2.0 * d * first + d * d;
      }
    }
    gaussian_shift = shift;
  }
};

/// The sums of an initialising pass (responsibilities from labels or random numbers); mergeable.
struct MixedInitialStats {
  MixedMixtureStats stats;
  /// (P) Σ_n w_n T(x_n)
  Eigen::VectorXd data_sum;
  /// rows summed over
  Index n_rows = 0;
  MixedInitialStats() = default;
  /// About no shift: the initialising pass sums in double.
  MixedInitialStats(Index n_components, Index n_statistics, Index n_gaussian)
      : stats(n_components, n_statistics, Eigen::VectorXd::Zero(n_gaussian)),
        data_sum(Eigen::VectorXd::Zero(n_statistics)) {}
  MixedInitialStats& operator+=(const MixedInitialStats& other) {
    if (data_sum.size() == 0) return *this = other;
    stats += other.stats;
    data_sum += other.data_sum;
    n_rows += other.n_rows;
    return *this;
  }
  void scale(double factor) {
    stats.scale(factor);
    data_sum *= factor;
  }
};

struct MixedMixtureOptions {
  MixedSpec spec;
  StopOptions stop;
  Execution execution;
};

struct MixedMixtureFit {
  MixedMixtureParams params;
  ConvergenceMonitor monitor;
};

/// The parameters fit the layout (shapes; positive variances, shapes and probabilities; means in range);
/// std::invalid_argument naming the array otherwise.
void check_mixed_params(const MixedMixtureParams& params, const MixedLayout& layout, const MixedSpec& spec);

/// The first (row, column) holding a value its column's family cannot model (−1, −1 when none): Bernoulli not
/// 0/1, counts that are negative or not whole, binomial above n, codes outside 0..L−1, positive families ≤ 0 or
/// subnormal, anything not finite.
template <typename T>
std::pair<Index, Index> first_bad_mixed_value(const DataRef<T>& data, const MixedSpec& spec,
                                              const Execution& execution);

/// (n, P) T(x) of a chunk, in the data's precision, the Gaussian columns about `gaussian_shift` (n_gaussian).
template <typename T>
RowMatrix<T> mixed_statistics(const DataRef<T>& chunk, const MixedLayout& layout,
                              const Eigen::VectorXd& gaussian_shift);

/// (n_gaussian) the shift an E-step under `params` takes the Gaussian statistics about: Σ_k π_k μ_kd, the model's
/// mean of each Gaussian column.
Eigen::VectorXd mixed_gaussian_shift(const MixedMixtureParams& params, const MixedLayout& layout);

/// The statistics of the exact posterior under `params` over `data` (one chunked pass), the data term included.
template <typename T>
MixedMixtureStats mixed_mixture_e_step(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                       const MixedMixtureParams& params, const MixedSpec& spec,
                                       const Execution& execution);

/// The M-step of every family from the statistics; empty components are re-seeded. NumericalError naming the
/// component (a Gaussian variance of 0 asks for reg_covar).
MixedMixtureParams mixed_mixture_m_step(const MixedMixtureStats& stats, const MixedMixtureParams& params,
                                        const MixedSpec& spec);

/// F(q, Θ) and S(q, Θ) per sample for the q of `stats` and any Θ:
///   F = (1/N)[Σ_k N_k log π_k + Σ_k Σ_d E_q log p(x_d | k) (without h) + Σ_n w_n log h(x_n)] + H̄[r],
///   S = H̄[r] − H[π] − Σ_k (N_k/N) Σ_d H̃_kd + (1/N) Σ_n w_n log h(x_n).
ElboTerms mixed_mixture_elbo(const MixedMixtureStats& stats, const MixedMixtureParams& params, const MixedSpec& spec);

/// The initialising pass over some rows with responsibilities from `source`: mergeable sums.
template <typename T>
MixedInitialStats mixed_mixture_responsibility_statistics(const DataRef<T>& data,
                                                          const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                          const ResponsibilitySource& source, Index n_components,
                                                          const MixedSpec& spec, const Execution& execution);

/// Initial parameters from the merged sums: the M-step of the responsibilities plus one pseudo-row at the data's
/// mean statistics per component (as discrete_mixture_from_initial_statistics), which keeps a component seeded by
/// one row away from a zero variance or a probability of 0.
MixedMixtureParams mixed_mixture_from_initial_statistics(MixedInitialStats sums, const MixedSpec& spec);

/// (n_samples) log p(x_n | Θ) and, when `resp` is non-null, the (n_samples, K) responsibilities.
template <typename T>
Eigen::VectorXd mixed_mixture_score(const DataRef<T>& data, const MixedMixtureParams& params, const MixedSpec& spec,
                                    RowMatrix<double>* resp, const Execution& execution);

/// EM from initial parameters. `sample_weight` is empty or holds one non-negative weight per row.
template <typename T>
MixedMixtureFit fit_mixed_mixture(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                  const MixedMixtureParams& initial, const MixedMixtureOptions& options,
                                  const IterationCallback& on_iteration = {});

}  // namespace entrosum
