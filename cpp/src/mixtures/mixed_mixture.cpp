// The passes, the M-step and the entropy sum of a mixed mixture (mixed_mixture.hpp). The Bernoulli, Poisson,
// binomial, exponential and gamma pieces are their discrete-mixture policies' scalar functions; each policy's
// feature index d is the column's index within its family (the binomial's n_trials are indexed so).
#include "entrosum/mixtures/mixed_mixture.hpp"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/chunk_products.hpp"
#include "entrosum/core/em.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/mixtures/bernoulli_mixture.hpp"
#include "entrosum/mixtures/binomial_mixture.hpp"
#include "entrosum/mixtures/exponential_mixture.hpp"
#include "entrosum/mixtures/gamma_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"

namespace entrosum {

namespace {

/// 2π
constexpr double kTwoPi = 6.283185307179586476925286766559;

/// The Gaussian factor of one column in (μ, σ²): T = (x, x²), η = (μ/σ², −1/(2σ²)), A = μ²/(2σ²) + ½ log(2πσ²).
struct GaussianColumn {
  static double log_partition(double mean, double variance) {
    return 0.5 * mean * mean / variance + 0.5 * std::log(kTwoPi * variance);
  }
  /// Σ_n w r log N(x | μ, σ²) = −½ N log(2πσ²) − (Σ w r x² − 2μ Σ w r x + N μ²) / (2σ²)
  static double expected_log_density(double count, double first, double second, double mean, double variance) {
    return -0.5 * count * std::log(kTwoPi * variance) -
           (second - 2.0 * mean * first + count * mean * mean) / (2.0 * variance);
  }
  /// ½ log(2πe σ²)
  static double entropy(double variance) { return entropy::gaussian_isotropic(1, variance); }
};

/// The settings of the one-parameter families, built once from the spec.
struct FamilySettings {
  BernoulliMixture::Settings bernoulli{0.0};
  PoissonMixture::Settings poisson;
  BinomialMixture::Settings binomial;
  ExponentialMixture::Settings exponential;
  GammaMixture::Settings gamma;
  explicit FamilySettings(const MixedSpec& spec) { binomial.n_trials = spec.n_trials; }
};

/// Calls `visit(Family, settings, family)` for each one-parameter family.
template <typename Visit>
void for_one_parameter_families(const FamilySettings& s, const Visit& visit) {
  visit(BernoulliMixture{}, s.bernoulli, ColumnFamily::bernoulli);
  visit(PoissonMixture{}, s.poisson, ColumnFamily::poisson);
  visit(BinomialMixture{}, s.binomial, ColumnFamily::binomial);
  visit(ExponentialMixture{}, s.exponential, ColumnFamily::exponential);
}

/// The parts of the log joint that depend only on Θ: η (K, P) and log π_k − Σ_d A_kd (K).
struct Coefficients {
  Eigen::MatrixXd natural;
  Eigen::VectorXd constants;
};

/// With the Gaussian statistics about `shift`: η₁ = (μ − c)/σ² and A = (μ − c)²/(2σ²) + ½ log(2πσ²).
Coefficients coefficients(const MixedMixtureParams& p, const MixedSpec& spec, const MixedLayout& layout,
                          const Eigen::VectorXd& shift) {
  const Index K = p.n_components();
  const FamilySettings settings(spec);
  Coefficients c{Eigen::MatrixXd::Zero(K, layout.n_statistics), Eigen::VectorXd(K)};
  for (Index k = 0; k < K; ++k) {
    double log_partition = 0.0;
    const std::vector<Index>& gaussian = layout.of(ColumnFamily::gaussian);
    const Index g0 = layout.offset(ColumnFamily::gaussian), n_gaussian = layout.count(ColumnFamily::gaussian);
    for (Index j = 0; j < n_gaussian; ++j) {
      const double mean = p.means(k, gaussian[j]) - shift(j), variance = p.variances(k, j);
      c.natural(k, g0 + j) = mean / variance;
      c.natural(k, g0 + n_gaussian + j) = -0.5 / variance;
      log_partition += GaussianColumn::log_partition(mean, variance);
    }
    for_one_parameter_families(settings, [&](auto family, const auto& s, ColumnFamily which) {
      using Family = decltype(family);
      const std::vector<Index>& columns = layout.of(which);
      for (Index j = 0; j < static_cast<Index>(columns.size()); ++j) {
        c.natural(k, layout.offset(which) + j) = Family::natural(s, j, p.means(k, columns[j]));
        log_partition += Family::log_partition(s, j, p.means(k, columns[j]));
      }
    });
    // categorical: η_l = log(p_l / Σ p), A = 0
    const Index c0 = layout.offset(ColumnFamily::categorical);
    for (Index j = 0; j + 1 < static_cast<Index>(layout.level_offsets.size()); ++j) {
      const Index begin = layout.level_offsets[j], levels = layout.level_offsets[j + 1] - begin;
      const double log_total = std::log(p.probabilities.row(k).segment(begin, levels).sum());
      for (Index l = 0; l < levels; ++l)
        c.natural(k, c0 + begin + l) = floored_log(p.probabilities(k, begin + l)) - log_total;
    }
    const std::vector<Index>& gamma = layout.of(ColumnFamily::gamma);
    const Index r0 = layout.offset(ColumnFamily::gamma), n_gamma = layout.count(ColumnFamily::gamma);
    for (Index j = 0; j < n_gamma; ++j) {
      const double mean = p.means(k, gamma[j]), shape = p.shapes(k, j);
      c.natural(k, r0 + j) = GammaMixture::natural(settings.gamma, j, mean, shape);
      c.natural(k, r0 + n_gamma + j) = GammaMixture::natural_second(settings.gamma, j, mean, shape);
      log_partition += GammaMixture::log_partition(settings.gamma, j, mean, shape);
    }
    c.constants(k) = std::log(p.weights(k)) - log_partition;
  }
  return c;
}

/// (n, K) log π_k + log p(x_n | k) − log h(x_n) from a chunk's statistics.
template <typename T>
RowMatrix<T> log_joint(const RowMatrix<T>& statistics, const RowMatrix<T>& natural,
                       const Eigen::Matrix<T, 1, Eigen::Dynamic>& constants) {
  RowMatrix<T> joint;
  detail::product_with_coefficients<T>(statistics, natural, joint);
  joint.rowwise() += constants;
  return joint;
}

/// (n) log h(x_n) of a chunk's rows: −Σ log x! over the Poisson columns, Σ log C(n, x) over the binomial ones.
template <typename T>
Eigen::VectorXd log_base_measures(const DataRef<T>& chunk, const MixedSpec& spec, const MixedLayout& layout) {
  const FamilySettings settings(spec);
  const std::vector<Index>& poisson = layout.of(ColumnFamily::poisson);
  const std::vector<Index>& binomial = layout.of(ColumnFamily::binomial);
  Eigen::VectorXd values = Eigen::VectorXd::Zero(chunk.rows());
  if (poisson.empty() && binomial.empty()) return values;
  Eigen::VectorXd poisson_row(static_cast<Index>(poisson.size())), binomial_row(static_cast<Index>(binomial.size()));
  for (Index n = 0; n < chunk.rows(); ++n) {
    for (std::size_t j = 0; j < poisson.size(); ++j) poisson_row(j) = static_cast<double>(chunk(n, poisson[j]));
    for (std::size_t j = 0; j < binomial.size(); ++j) binomial_row(j) = static_cast<double>(chunk(n, binomial[j]));
    values(n) = PoissonMixture::log_base_measure(settings.poisson, poisson_row) +
                BinomialMixture::log_base_measure(settings.binomial, binomial_row);
  }
  return values;
}

/// One component's parameters from its statistics row u (P) and count N (the exact M-step of every family).
/// Returns false when a Gaussian variance is not positive, naming its column in `bad_column`.
bool component_m_step(const Eigen::Ref<const Eigen::RowVectorXd>& u, double count, const Eigen::VectorXd& shift,
                      const MixedSpec& spec, const MixedLayout& layout, const FamilySettings& settings,
                      MixedMixtureParams& p, Index k, Index& bad_column) {
  const std::vector<Index>& gaussian = layout.of(ColumnFamily::gaussian);
  const Index g0 = layout.offset(ColumnFamily::gaussian), n_gaussian = layout.count(ColumnFamily::gaussian);
  for (Index j = 0; j < n_gaussian; ++j) {
    // about the shift c: μ − c = Σ w r (x − c) / N, σ² = (Σ w r (x − c)² − (μ − c) Σ w r (x − c)) / N (+ reg_covar),
    // clamped at 0 against rounding
    const double mean = u(g0 + j) / count;
    const double variance = std::max((u(g0 + n_gaussian + j) - mean * u(g0 + j)) / count, 0.0) + spec.reg_covar;
    p.means(k, gaussian[j]) = shift(j) + mean;
    p.variances(k, j) = variance;
    if (!(variance > 0.0) && bad_column < 0) bad_column = gaussian[j];
  }
  for_one_parameter_families(settings, [&](auto family, const auto& s, ColumnFamily which) {
    using Family = decltype(family);
    const std::vector<Index>& columns = layout.of(which);
    for (Index j = 0; j < static_cast<Index>(columns.size()); ++j)
      p.means(k, columns[j]) = Family::m_step_mean(s, j, count, u(layout.offset(which) + j));
  });
  // categorical: p_l = Σ w r [x = l] / Σ_l' Σ w r [x = l'] (the column's own total, so Σ p = 1); uniform when empty
  const std::vector<Index>& categorical = layout.of(ColumnFamily::categorical);
  const Index c0 = layout.offset(ColumnFamily::categorical);
  for (std::size_t j = 0; j < categorical.size(); ++j) {
    const Index begin = layout.level_offsets[j], levels = layout.level_offsets[j + 1] - begin;
    const Eigen::RowVectorXd sums = u.segment(c0 + begin, levels).cwiseMax(0.0);
    const double total = sums.sum();
    if (total > 0.0)
      p.probabilities.row(k).segment(begin, levels) = sums / total;
    else
      p.probabilities.row(k).segment(begin, levels).setConstant(1.0 / static_cast<double>(levels));
    double expected_code = 0.0;
    for (Index l = 0; l < levels; ++l) expected_code += static_cast<double>(l) * p.probabilities(k, begin + l);
    p.means(k, categorical[j]) = expected_code;
  }
  const std::vector<Index>& gamma = layout.of(ColumnFamily::gamma);
  const Index r0 = layout.offset(ColumnFamily::gamma), n_gamma = layout.count(ColumnFamily::gamma);
  for (Index j = 0; j < n_gamma; ++j) {
    const auto [mean, shape] = GammaMixture::m_step(settings.gamma, j, count, u(r0 + j), u(r0 + n_gamma + j));
    p.means(k, gamma[j]) = mean;
    p.shapes(k, j) = shape;
  }
  return bad_column < 0;
}

/// The M-step for K components from statistics (K, P) and counts, without the checks of the old parameters.
MixedMixtureParams m_step_from(const MixedMixtureStats& s, const MixedSpec& spec, const MixedLayout& layout) {
  const Index K = s.statistics.rows();
  const FamilySettings settings(spec);
  Eigen::VectorXd counts = s.totals.resp_sum.array() + kCountGuard;  // N_k
  MixedMixtureParams p;
  p.weights = counts / counts.sum();
  p.means = Eigen::MatrixXd::Zero(K, layout.n_features);
  p.variances.resize(K, layout.count(ColumnFamily::gaussian));
  p.shapes.resize(K, layout.count(ColumnFamily::gamma));
  p.probabilities.resize(K, layout.n_levels_total());
  std::vector<Index> empty;  // every responsibility underflowed to 0
  for (Index k = 0; k < K; ++k) {
    if (!(s.totals.resp_sum(k) > 0.0)) {
      empty.push_back(k);
      continue;
    }
    Index bad_column = -1;
    if (!component_m_step(s.statistics.row(k), counts(k), s.gaussian_shift, spec, layout, settings, p, k, bad_column))
      throw NumericalError("component " + std::to_string(k) + " has a Gaussian variance of 0 in column " +
                           std::to_string(bad_column) + "; set reg_covar > 0");
    if (!p.means.row(k).allFinite() || !p.variances.row(k).allFinite() || !p.shapes.row(k).allFinite() ||
        !p.probabilities.row(k).allFinite() || !std::isfinite(p.weights(k)))
      throw NumericalError("component " + std::to_string(k) +
                           " has parameters that are not finite; check the data or use fewer components");
  }
  if (!empty.empty()) {
    // Re-seeded at the statistics halfway between a worst-explained row's T(x) and the live components' pooled
    // mean statistics: positive variances, probabilities and gamma gaps wherever the data have any spread.
    const std::vector<const WorstSample*> samples = reseed_samples(empty, s.totals.worst, "is empty");
    Eigen::RowVectorXd pooled = Eigen::RowVectorXd::Zero(layout.n_statistics);
    double pooled_count = 0.0;
    for (Index k = 0; k < K; ++k)
      if (s.totals.resp_sum(k) > 0.0) {
        pooled += s.statistics.row(k);
        pooled_count += s.totals.resp_sum(k);
      }
    pooled /= pooled_count;
    const double mean_count = pooled_count / static_cast<double>(K - static_cast<Index>(empty.size()));
    for (std::size_t i = 0; i < empty.size(); ++i) {
      const Index k = empty[i];
      const Eigen::RowVectorXd u = 0.5 * (samples[i]->values.transpose() + pooled);
      Index bad_column = -1;
      if (!component_m_step(u, 1.0, s.gaussian_shift, spec, layout, settings, p, k, bad_column))
        throw NumericalError("component " + std::to_string(k) + " was empty and cannot be re-seeded: column " +
                             std::to_string(bad_column) + " has no spread; set reg_covar > 0");
      counts(k) = mean_count;
      p.recovered.push_back({0, k, samples[i]->row, "empty"});
    }
    p.weights = counts / counts.sum();
  }
  return p;
}

/// One chunked pass of Σ_n w_n log h(x_n).
template <typename T>
double total_log_base_measure(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                              const MixedSpec& spec, const MixedLayout& layout, const Execution& execution) {
  if (layout.count(ColumnFamily::poisson) == 0 && layout.count(ColumnFamily::binomial) == 0) return 0.0;
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  return reduce_rows(
      data.rows(), chunk_size, execution, [] { return 0.0; },
      [&](Index begin, Index end, double& into) {
        const Eigen::VectorXd values = log_base_measures<T>(data.middleRows(begin, end - begin), spec, layout);
        const Eigen::VectorXd weights = chunk_weights(sample_weight, begin, end);
        into += weights.size() ? weights.dot(values) : values.sum();
      });
}

/// The E-step's pass without the data term.
template <typename T>
MixedMixtureStats e_step_pass(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                              const MixedMixtureParams& params, const MixedSpec& spec, const MixedLayout& layout,
                              const Execution& execution) {
  const Index K = params.n_components();
  const Eigen::VectorXd shift = mixed_gaussian_shift(params, layout);  // (n_gaussian) c
  const Coefficients c = coefficients(params, spec, layout, shift);
  const RowMatrix<T> natural = c.natural.template cast<T>();                                         // (K, P)
  const Eigen::Matrix<T, 1, Eigen::Dynamic> constants = c.constants.transpose().template cast<T>();  // (K)
  const Index chunk_size = resolve_chunk_size(execution, layout.n_statistics, sizeof(T));
  return reduce_rows(
      data.rows(), chunk_size, execution, [&] { return MixedMixtureStats(K, layout.n_statistics, shift); },
      [&](Index begin, Index end, MixedMixtureStats& into) {
        const RowMatrix<T> statistics =
            mixed_statistics<T>(data.middleRows(begin, end - begin), layout, shift);  // (n, P)
        RowMatrix<T> resp = log_joint<T>(statistics, natural, constants);             // (n, K), then w_n r_nk
        const Eigen::VectorXd weights = chunk_weights(sample_weight, begin, end);
        Eigen::VectorXd row_log_likelihood;
        normalise_log_joint<T>(resp, weights, into.totals, row_log_likelihood);
        // the worst rows keep T(x): a re-seeded component starts from their statistics
        note_worst(into.totals, row_log_likelihood, statistics, begin, weights);
        // Σ_n w_n r_nk T(x_n): the chunk's product in the data's precision, summed in double
        detail::add_weighted_sums<T>(resp, statistics, into.statistics);
      });
}

template <typename T>
class MixedMixtureModel {
 public:
  using Params = MixedMixtureParams;
  using Expectation = MixedMixtureStats;

  MixedMixtureModel(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                    const MixedSpec& spec, const Execution& execution)
      : data_(data),
        sample_weight_(sample_weight),
        spec_(spec),
        layout_(mixed_layout(spec, data.cols())),
        execution_(execution),
        log_base_measure_(total_log_base_measure<T>(data, sample_weight, spec, layout_, execution)) {}

  Expectation e_step(const Params& params) const {
    check_mixed_params(params, layout_, spec_);
    MixedMixtureStats stats = e_step_pass<T>(data_, sample_weight_, params, spec_, layout_, execution_);
    // log h(x_n) is the same for every k: it leaves r alone and joins log p(x_n) and the data term
    stats.log_base_measure = log_base_measure_;
    stats.totals.log_likelihood += log_base_measure_;
    return stats;
  }
  ElboTerms evaluate(const Expectation& expectation, const Params& params) const {
    return mixed_mixture_elbo(expectation, params, spec_);
  }
  Params m_step(const Expectation& expectation, const Params& params) const {
    return mixed_mixture_m_step(expectation, params, spec_);
  }

 private:
  DataRef<T> data_;
  Eigen::Ref<const Eigen::VectorXd> sample_weight_;
  MixedSpec spec_;
  MixedLayout layout_;
  Execution execution_;
  double log_base_measure_ = 0.0;  // Σ_n w_n log h(x_n)
};

void check_stats(const MixedMixtureStats& s, Index K, const MixedLayout& layout) {
  if (s.gaussian_shift.size() != layout.count(ColumnFamily::gaussian))
    throw std::invalid_argument("the statistics' Gaussian shift has " + std::to_string(s.gaussian_shift.size()) +
                                " entries for " + std::to_string(layout.count(ColumnFamily::gaussian)) +
                                " Gaussian columns");
  if (s.totals.resp_sum.size() != K || s.statistics.rows() != K || s.statistics.cols() != layout.n_statistics)
    throw std::invalid_argument("the statistics hold " + std::to_string(s.statistics.rows()) + " x " +
                                std::to_string(s.statistics.cols()) + " sums for " +
                                std::to_string(s.totals.resp_sum.size()) + " counts; expected " + std::to_string(K) +
                                " x " + std::to_string(layout.n_statistics));
}

}  // namespace

template <typename T>
MixedMixtureStats mixed_mixture_e_step(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                       const MixedMixtureParams& params, const MixedSpec& spec,
                                       const Execution& execution) {
  return MixedMixtureModel<T>(data, sample_weight, spec, execution).e_step(params);
}

MixedMixtureParams mixed_mixture_m_step(const MixedMixtureStats& stats, const MixedMixtureParams& params,
                                        const MixedSpec& spec) {
  const MixedLayout layout = mixed_layout(spec, params.means.cols());
  check_stats(stats, params.n_components(), layout);
  return m_step_from(stats, spec, layout);
}

ElboTerms mixed_mixture_elbo(const MixedMixtureStats& s, const MixedMixtureParams& p, const MixedSpec& spec) {
  const MixedLayout layout = mixed_layout(spec, p.means.cols());
  check_mixed_params(p, layout, spec);
  check_stats(s, p.n_components(), layout);
  const FamilySettings settings(spec);
  const Eigen::VectorXd& counts = s.totals.resp_sum;  // N_k
  const Eigen::MatrixXd& u = s.statistics;
  double expected_log_observable = s.log_base_measure;  // Σ_n w_n E_q[log p(x_n | z)]
  double observable_entropy = 0.0;                      // Σ_k N_k Σ_d H̃_kd
  for (Index k = 0; k < p.n_components(); ++k) {
    double component_entropy = 0.0;
    const std::vector<Index>& gaussian = layout.of(ColumnFamily::gaussian);
    const Index g0 = layout.offset(ColumnFamily::gaussian), n_gaussian = layout.count(ColumnFamily::gaussian);
    for (Index j = 0; j < n_gaussian; ++j) {
      expected_log_observable +=
          GaussianColumn::expected_log_density(counts(k), u(k, g0 + j), u(k, g0 + n_gaussian + j),
                                               p.means(k, gaussian[j]) - s.gaussian_shift(j), p.variances(k, j));
      component_entropy += GaussianColumn::entropy(p.variances(k, j));
    }
    for_one_parameter_families(settings, [&](auto family, const auto& fs, ColumnFamily which) {
      using Family = decltype(family);
      const std::vector<Index>& columns = layout.of(which);
      for (Index j = 0; j < static_cast<Index>(columns.size()); ++j) {
        const double mean = p.means(k, columns[j]);
        expected_log_observable += Family::expected_log_density(fs, j, counts(k), u(k, layout.offset(which) + j), mean);
        component_entropy += Family::entropy(fs, j, mean);
      }
    });
    // categorical: Σ_l (Σ w r [x = l]) log q_l with q = p / Σ p, and H = −Σ q log q
    const Index c0 = layout.offset(ColumnFamily::categorical);
    for (Index j = 0; j + 1 < static_cast<Index>(layout.level_offsets.size()); ++j) {
      const Index begin = layout.level_offsets[j], levels = layout.level_offsets[j + 1] - begin;
      const Eigen::RowVectorXd q =
          p.probabilities.row(k).segment(begin, levels) / p.probabilities.row(k).segment(begin, levels).sum();
      for (Index l = 0; l < levels; ++l) expected_log_observable += u(k, c0 + begin + l) * floored_log(q(l));
      component_entropy += entropy::categorical(q);
    }
    const Index r0 = layout.offset(ColumnFamily::gamma), n_gamma = layout.count(ColumnFamily::gamma);
    const std::vector<Index>& gamma = layout.of(ColumnFamily::gamma);
    for (Index j = 0; j < n_gamma; ++j) {
      const double mean = p.means(k, gamma[j]), shape = p.shapes(k, j);
      expected_log_observable += GammaMixture::expected_log_density(settings.gamma, j, counts(k), u(k, r0 + j),
                                                                    u(k, r0 + n_gamma + j), mean, shape);
      component_entropy += GammaMixture::entropy(settings.gamma, j, mean, shape);
    }
    observable_entropy += counts(k) * component_entropy;
  }
  ElboTerms terms = mixture_elbo_terms(s.totals, p.weights, observable_entropy / s.totals.count);
  terms.data_term = s.log_base_measure / s.totals.count;
  terms.elbo = mixture_elbo_at(s.totals, p.weights, expected_log_observable);
  return terms;
}

template <typename T>
MixedInitialStats mixed_mixture_responsibility_statistics(const DataRef<T>& data,
                                                          const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                          const ResponsibilitySource& source, Index K,
                                                          const MixedSpec& spec, const Execution& execution) {
  const MixedLayout layout = mixed_layout(spec, data.cols());
  const Index P = layout.n_statistics;
  const Index chunk_size = resolve_chunk_size(execution, P, sizeof(T));
  MixedInitialStats sums = reduce_rows(
      data.rows(), chunk_size, execution, [&] { return MixedInitialStats(K, P, layout.count(ColumnFamily::gaussian)); },
      [&](Index begin, Index end, MixedInitialStats& into) {
        const RowMatrix<double> resp =
            weighted_source_responsibilities(source, sample_weight, begin, end, K, into.stats.totals);
        const RowMatrix<double> statistics =
            mixed_statistics<T>(data.middleRows(begin, end - begin), layout, Eigen::VectorXd())
                .template cast<double>();  // (n, P)
        detail::add_weighted_sums<double>(resp, statistics, into.stats.statistics);
        const Eigen::VectorXd weights = chunk_weights(sample_weight, begin, end);
        into.data_sum += weights.size() ? Eigen::VectorXd(statistics.transpose() * weights)
                                        : Eigen::VectorXd(statistics.colwise().sum().transpose());
      });
  sums.n_rows = data.rows();
  return sums;
}

MixedMixtureParams mixed_mixture_from_initial_statistics(MixedInitialStats sums, const MixedSpec& spec) {
  MixedMixtureStats& stats = sums.stats;
  const Index K = stats.statistics.rows();
  const MixedLayout layout = mixed_layout(spec, static_cast<Index>(spec.families.size()));
  check_stats(stats, K, layout);
  if (sums.data_sum.size() != layout.n_statistics || sums.n_rows < 1)
    throw std::invalid_argument("the initialising sums do not fit the column families");
  // one pseudo-row at the mean statistics, of the rows' mean weight, per component
  const double n_rows = static_cast<double>(sums.n_rows);
  const double mean_weight = stats.totals.count / n_rows;
  stats.statistics.rowwise() += (sums.data_sum / n_rows).transpose();
  stats.totals.resp_sum.array() += mean_weight;
  stats.totals.count += static_cast<double>(K) * mean_weight;
  return m_step_from(stats, spec, layout);
}

template <typename T>
Eigen::VectorXd mixed_mixture_score(const DataRef<T>& data, const MixedMixtureParams& params, const MixedSpec& spec,
                                    RowMatrix<double>* resp, const Execution& execution) {
  const MixedLayout layout = mixed_layout(spec, data.cols());
  check_mixed_params(params, layout, spec);
  const Eigen::VectorXd shift = mixed_gaussian_shift(params, layout);  // (n_gaussian) c
  const Coefficients c = coefficients(params, spec, layout, shift);
  const RowMatrix<T> natural = c.natural.template cast<T>();
  const Eigen::Matrix<T, 1, Eigen::Dynamic> constants = c.constants.transpose().template cast<T>();
  const Index chunk_size = resolve_chunk_size(execution, layout.n_statistics, sizeof(T));
  return mixture_score(data.rows(), params.n_components(), chunk_size, execution, resp, [&](Index begin, Index end) {
    const DataRef<T> chunk = data.middleRows(begin, end - begin);
    RowMatrix<double> joint =
        log_joint<T>(mixed_statistics<T>(chunk, layout, shift), natural, constants).template cast<double>();
    joint.colwise() += log_base_measures<T>(chunk, spec, layout);
    return joint;
  });
}

template <typename T>
MixedMixtureFit fit_mixed_mixture(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                  const MixedMixtureParams& initial, const MixedMixtureOptions& options,
                                  const IterationCallback& on_iteration) {
  const auto start = std::chrono::steady_clock::now();
  const MixedMixtureModel<T> model(data, sample_weight, options.spec, options.execution);
  MixedMixtureFit fit{initial, ConvergenceMonitor(options.stop)};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fit.params = run_em(model, initial, fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

#define ENTROSUM_INSTANTIATE_MIXED_MIXTURE(T)                                                                        \
  template MixedMixtureStats mixed_mixture_e_step<T>(const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,    \
                                                     const MixedMixtureParams&, const MixedSpec&, const Execution&); \
  template MixedInitialStats mixed_mixture_responsibility_statistics<T>(                                             \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const ResponsibilitySource&, Index,               \
      const MixedSpec&, const Execution&);                                                                           \
  template Eigen::VectorXd mixed_mixture_score<T>(const DataRef<T>&, const MixedMixtureParams&, const MixedSpec&,    \
                                                  RowMatrix<double>*, const Execution&);                             \
  template MixedMixtureFit fit_mixed_mixture<T>(const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,         \
                                                const MixedMixtureParams&, const MixedMixtureOptions&,               \
                                                const IterationCallback&);

ENTROSUM_INSTANTIATE_MIXED_MIXTURE(float)
ENTROSUM_INSTANTIATE_MIXED_MIXTURE(double)

}  // namespace entrosum
