// Categorical mixtures for integer codes (DESIGN.md "Second-wave models"): column d holds a code in
// {0, ..., L_d − 1}, and log p(x | k) = Σ_d log p_kd[x_d] with h = 1. The statistics are over the one-hot
// expansion of the codes, P = Σ_d L_d columns, made one chunk at a time (expands_columns); the means are the
// (K, P) probabilities, column d's levels at offsets o_d, ..., o_d + L_d − 1, each group summing to 1. The M-step
// is the weighted frequency and the entropy −Σ_l p log p. Fitted with the shared discrete-mixture machinery
// (discrete_mixture.hpp): fit_discrete_mixture<CategoricalMixture, T>.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/types.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"

namespace entrosum {

/// The categorical family of discrete_mixture.hpp.
struct CategoricalMixture {
  /// The numbers of levels; the M-step is exact.
  struct Settings {
    /// (n_features) L_d ≥ 1
    Eigen::Matrix<Index, Eigen::Dynamic, 1> n_levels;
  };

  static constexpr const char* name = "categorical";
  static constexpr bool has_second_statistic = false;
  static constexpr bool has_base_measure = false;
  /// Each column's probabilities sum to 1; the entropy is weighted by N_k; the statistics are over the levels.
  static constexpr bool normalises_components = true;
  static constexpr bool entropy_per_total = false;
  static constexpr bool expands_columns = true;

  /// One L_d in [1, 2^31) per column, at most 2^31 levels in all; std::invalid_argument otherwise.
  static void check_settings(const Settings& s, Index n_features);
  /// The levels' total P = Σ_d L_d must be `width` (for parameters and statistics); std::invalid_argument otherwise.
  static void check_expanded_width(const Settings& s, Index width);
  /// P = Σ_d L_d
  static Index expanded_width(const Settings& s) { return s.n_levels.sum(); }

  /// (n, P) the one-hot expansion of a chunk of codes. A code outside {0, ..., L_d − 1} (refused before any pass)
  /// leaves its column's levels at 0 rather than writing outside the row.
  template <typename T>
  static RowMatrix<T> expand(const Settings& s, const DataRef<T>& chunk) {
    RowMatrix<T> one_hot = RowMatrix<T>::Zero(chunk.rows(), expanded_width(s));
    for (Index n = 0; n < chunk.rows(); ++n) {
      Index offset = 0;
      for (Index d = 0; d < chunk.cols(); ++d) {
        const double code = static_cast<double>(chunk(n, d));
        if (code >= 0.0 && code < static_cast<double>(s.n_levels(d))) one_hot(n, offset + static_cast<Index>(code)) = 1;
        offset += s.n_levels(d);
      }
    }
    return one_hot;
  }

  /// η = log p, floored
  static double natural(const Settings&, Index, double probability) { return floored_log(probability); }
  /// A = 0: the normaliser is the constraint Σ_l p_l = 1
  static double log_partition(const Settings&, Index, double) { return 0.0; }

  /// Σ_n w r_nk [x_n = l] log p_kl = first log p, with 0 · log 0 = 0
  static double expected_log_density(const Settings&, Index, double, double first, double probability) {
    return std::max(first, 0.0) * floored_log(probability);
  }

  /// −p log p: one level's share of its column's entropy
  static double entropy(const Settings&, Index, double probability) {
    return probability > 0.0 ? -probability * std::log(probability) : 0.0;
  }

  /// Σ w r [x = l], normalised by normalise_component
  static double m_step_mean(const Settings&, Index, double, double first) { return std::max(first, 0.0); }

  /// Each column's levels in row k divided by their sum (the weighted frequencies); a column without weight (a
  /// component with no responsibility) becomes uniform, and the M-step re-seeds it.
  static void normalise_component(const Settings& s, Eigen::MatrixXd& means, Index k) {
    Index offset = 0;
    for (Index d = 0; d < s.n_levels.size(); ++d) {
      const Index levels = s.n_levels(d);
      auto group = means.row(k).segment(offset, levels);
      const double total = group.sum();
      if (total > 0.0)
        group /= total;
      else
        group.setConstant(1.0 / static_cast<double>(levels));
      offset += levels;
    }
  }
};

/// Index of the first row holding a value that is not a code in {0, ..., n_levels[d] − 1} for its column d, or −1.
template <typename T>
Index first_non_code_row(const DataRef<T>& data,
                         const Eigen::Ref<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>& n_levels,
                         const Execution& execution);

}  // namespace entrosum
