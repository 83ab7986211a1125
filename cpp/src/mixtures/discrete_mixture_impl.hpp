// Definitions of the shared parts of the discrete mixtures (discrete_mixture.hpp). Private to the library:
// each family's source file includes it and instantiates the templates with
// ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(Family).
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "../core/chunk_products.hpp"
#include "entrosum/core/em.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/mixtures/discrete_mixture.hpp"

namespace entrosum {

namespace detail {

/// (n) log h(x_n) of each row of a chunk (families with a base measure).
template <typename Family, typename T>
Eigen::VectorXd log_base_measures(const DataRef<T>& chunk, const typename Family::Settings& settings) {
  Eigen::VectorXd values(chunk.rows());
  for (Index n = 0; n < chunk.rows(); ++n) values(n) = Family::log_base_measure(settings, chunk.row(n));
  return values;
}

/// Checks the settings against statistics or parameters of `width` columns (std::invalid_argument otherwise).
template <typename Family>
void check_settings_for_statistics(const typename Family::Settings& settings, Index width) {
  if constexpr (Family::expands_columns)
    Family::check_expanded_width(settings, width);
  else
    Family::check_settings(settings, width);
}

/// `use(chunk)` on the columns the statistics are over: the chunk itself, or its (n, P) expansion, made for this
/// chunk only.
template <typename Family, typename T, typename Use>
decltype(auto) with_statistics_columns(const typename Family::Settings& settings, const DataRef<T>& chunk, Use&& use) {
  if constexpr (Family::expands_columns) {
    const RowMatrix<T> expanded = Family::template expand<T>(settings, chunk);  // (n, P)
    return use(DataRef<T>(expanded));
  } else {
    return use(chunk);
  }
}

/// (n, D) log x of a chunk, for the second statistic of a two-parameter family (the data are positive).
template <typename T>
RowMatrix<T> log_values(const DataRef<T>& chunk) {
  return chunk.array().log().matrix();
}

}  // namespace detail

template <typename Family, typename T>
DiscreteLogJointCoefficients<T> discrete_mixture_coefficients(const DiscreteMixtureParams& p,
                                                              const typename Family::Settings& settings) {
  const Index K = p.n_components(), D = p.n_features();
  Eigen::MatrixXd natural(K, D);   // (K, D) η(m_kd)
  Eigen::VectorXd constants(K);    // (K) log π_k − Σ_d A(m_kd)
  Eigen::MatrixXd natural_second;  // (K, D) the coefficients of log x, two-parameter families only
  if constexpr (Family::has_second_statistic) natural_second.resize(K, D);
  for (Index k = 0; k < K; ++k) {
    double log_partition = 0.0;
    for (Index d = 0; d < D; ++d) {
      if constexpr (Family::has_second_statistic) {
        const double mean = p.means(k, d), shape = p.shapes(k, d);
        natural(k, d) = Family::natural(settings, d, mean, shape);
        natural_second(k, d) = Family::natural_second(settings, d, mean, shape);
        log_partition += Family::log_partition(settings, d, mean, shape);
      } else {
        natural(k, d) = Family::natural(settings, d, p.means(k, d));
        log_partition += Family::log_partition(settings, d, p.means(k, d));
      }
    }
    constants(k) = std::log(p.weights(k)) - log_partition;
  }
  return {natural.template cast<T>(), constants.template cast<T>().transpose(), natural_second.template cast<T>()};
}

template <typename Family, typename T>
RowMatrix<T> discrete_mixture_log_joint(const DataRef<T>& chunk, const DiscreteLogJointCoefficients<T>& c,
                                        const RowMatrix<T>* log_chunk) {
  // log π_k + Σ_d [x_d η_kd − A_kd]: one (n, D) × (D, K) product
  RowMatrix<T> log_joint;
  detail::product_with_coefficients<T>(chunk, c.natural, log_joint);
  // + Σ_d log x_d η₂_kd for a two-parameter family: a second product
  if (log_chunk != nullptr) detail::product_with_coefficients<T>(*log_chunk, c.natural_second, log_joint, true);
  log_joint.rowwise() += c.constants;
  return log_joint;
}

template <typename Family, typename T>
void accumulate_discrete_mixture(const DataRef<T>& chunk, const Eigen::Ref<const Eigen::VectorXd>& weights,
                                 const DiscreteLogJointCoefficients<T>& coefficients, DiscreteMixtureStats& stats,
                                 Index row_offset) {
  RowMatrix<T> log_chunk;  // (n, D) log x, two-parameter families only
  if constexpr (Family::has_second_statistic) log_chunk = detail::log_values<T>(chunk);
  RowMatrix<T> resp =
      discrete_mixture_log_joint<Family, T>(chunk, coefficients, Family::has_second_statistic ? &log_chunk : nullptr);
  // (n, K) now w_n r_nk; the worst-explained rows are judged without log h(x), which does not depend on Θ
  Eigen::VectorXd row_log_likelihood;
  normalise_log_joint<T>(resp, weights, stats.totals, row_log_likelihood);
  note_worst(stats.totals, row_log_likelihood, chunk, row_offset, weights);
  // Σ_n w_n r_nk x_n: the chunk's product in the data's precision, summed in double
  detail::add_weighted_sums<T>(resp, chunk, stats.first);
  // Σ_n w_n r_nk log x_n likewise
  if constexpr (Family::has_second_statistic) detail::add_weighted_sums<T>(resp, log_chunk, stats.second);
}

template <typename Family, typename T>
double discrete_mixture_log_base_measure(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                         const typename Family::Settings& settings, const Execution& execution) {
  if constexpr (!Family::has_base_measure) {
    return 0.0;
  } else {
    const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
    return reduce_rows(
        data.rows(), chunk_size, execution, [] { return 0.0; },
        [&](Index begin, Index end, double& into) {
          const Eigen::VectorXd values =
              detail::log_base_measures<Family, T>(data.middleRows(begin, end - begin), settings);
          const Eigen::VectorXd weights = chunk_weights(sample_weight, begin, end);
          into += weights.size() ? weights.dot(values) : values.sum();
        });
  }
}

template <typename Family>
DiscreteMixtureParams discrete_mixture_m_step(const DiscreteMixtureStats& s, const DiscreteMixtureParams& old,
                                              const typename Family::Settings& settings) {
  const Index K = old.n_components(), D = old.n_features();
  detail::check_settings_for_statistics<Family>(settings, D);
  Eigen::VectorXd counts = s.totals.resp_sum.array() + kCountGuard;  // N_k
  DiscreteMixtureParams p;
  p.weights = counts / counts.sum();  // sums to 1 to rounding (N_k / N summed to 1 + K·10·eps / N with the guard)
  p.means.resize(K, D);
  if constexpr (Family::has_second_statistic) p.shapes.resize(K, D);
  std::vector<Index> empty;  // every responsibility underflowed to 0
  for (Index k = 0; k < K; ++k) {
    for (Index d = 0; d < D; ++d) {
      if constexpr (Family::has_second_statistic)
        std::tie(p.means(k, d), p.shapes(k, d)) = Family::m_step(settings, d, counts(k), s.first(k, d), s.second(k, d));
      else
        p.means(k, d) = Family::m_step_mean(settings, d, counts(k), s.first(k, d));
    }
    // the probabilities of a component sum to 1 (multinomial): Σ r x_l / Σ_l Σ r x_l
    if constexpr (Family::normalises_components) Family::normalise_component(settings, p.means, k);
    if (!p.means.row(k).allFinite() || !std::isfinite(p.weights(k)) ||
        (Family::has_second_statistic && !p.shapes.row(k).allFinite()))
      throw NumericalError("component " + std::to_string(k) + " has " + Family::name +
                           " parameters that are not finite; check the data or use fewer components");
    if (!(s.totals.resp_sum(k) > 0.0)) empty.push_back(k);
  }
  if (!empty.empty()) {
    // Re-seeded halfway between a worst-explained sample and the others' pooled mean: a mean of 0 or 1 (a
    // binary row) or 0 (a count) would give other rows a log-likelihood of −∞ under it.
    const std::vector<const WorstSample*> samples = reseed_samples(empty, s.totals.worst, "is empty");
    Eigen::RowVectorXd pooled = Eigen::RowVectorXd::Zero(D);
    double pooled_count = 0.0;
    for (Index k = 0; k < K; ++k)
      if (s.totals.resp_sum(k) > 0.0) {
        pooled += s.first.row(k);
        pooled_count += s.totals.resp_sum(k);
      }
    pooled /= pooled_count;
    // the mean count of the live components: one sample's would be too light to take more than that sample
    const double mean_count = pooled_count / static_cast<double>(K - static_cast<Index>(empty.size()));
    for (std::size_t i = 0; i < empty.size(); ++i) {
      const Index k = empty[i];
      p.means.row(k) = 0.5 * (samples[i]->values.transpose() + pooled);
      if constexpr (Family::has_second_statistic) p.shapes.row(k).setOnes();  // exponential around that mean
      if constexpr (Family::normalises_components) Family::normalise_component(settings, p.means, k);
      counts(k) = mean_count;
      p.recovered.push_back({0, k, samples[i]->row, "empty"});
    }
    p.weights = counts / counts.sum();
  }
  return p;
}

template <typename Family>
ElboTerms discrete_mixture_elbo(const DiscreteMixtureStats& s, const DiscreteMixtureParams& p,
                                const typename Family::Settings& settings) {
  const Eigen::VectorXd& counts = s.totals.resp_sum;  // N_k
  const Index K = p.n_components(), D = p.n_features();
  detail::check_settings_for_statistics<Family>(settings, D);
  double expected_log_observable = s.log_base_measure;  // Σ_n w_n E_q[log p(x_n | z)]
  double observable_entropy = 0.0;                      // Σ_k N_k Σ_d H(m_kd)
  for (Index k = 0; k < K; ++k) {
    double component_entropy = 0.0;
    for (Index d = 0; d < D; ++d) {
      if constexpr (Family::has_second_statistic) {
        expected_log_observable += Family::expected_log_density(settings, d, counts(k), s.first(k, d), s.second(k, d),
                                                                p.means(k, d), p.shapes(k, d));
        component_entropy += Family::entropy(settings, d, p.means(k, d), p.shapes(k, d));
      } else {
        expected_log_observable += Family::expected_log_density(settings, d, counts(k), s.first(k, d), p.means(k, d));
        component_entropy += Family::entropy(settings, d, p.means(k, d));
      }
    }
    if constexpr (Family::entropy_per_total)
      observable_entropy += std::max(s.first.row(k).sum(), 0.0) * component_entropy;  // N_k m̄_k H̃_k (multinomial)
    else
      observable_entropy += counts(k) * component_entropy;
  }
  ElboTerms terms = mixture_elbo_terms(s.totals, p.weights, observable_entropy / s.totals.count);
  terms.data_term = s.log_base_measure / s.totals.count;
  terms.elbo = mixture_elbo_at(s.totals, p.weights, expected_log_observable);
  return terms;
}

namespace detail {
/// Parameters for data of `n_features` columns: K >= 1 weights, means (K, n_features); std::invalid_argument naming
/// what does not fit (a pass would read out of bounds).
inline void check_discrete_params(const DiscreteMixtureParams& params, Index n_features, bool with_shapes = false) {
  if (params.weights.size() < 1 || params.means.rows() != params.weights.size() || params.means.cols() != n_features)
    throw std::invalid_argument("mixture parameters of " + std::to_string(params.weights.size()) +
                                " weights and means " + std::to_string(params.means.rows()) + " x " +
                                std::to_string(params.means.cols()) + " do not fit data of " +
                                std::to_string(n_features) + " features");
  if (with_shapes && (params.shapes.rows() != params.means.rows() || params.shapes.cols() != n_features))
    throw std::invalid_argument("the shapes, " + std::to_string(params.shapes.rows()) + " x " +
                                std::to_string(params.shapes.cols()) + ", must have the means' shape " +
                                std::to_string(params.means.rows()) + " x " + std::to_string(n_features));
}
}  // namespace detail

template <typename Family, typename T>
DiscreteMixtureModel<Family, T>::DiscreteMixtureModel(const DataRef<T>& data,
                                                      const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                      const typename Family::Settings& settings,
                                                      const Execution& execution)
    : data_(data),
      sample_weight_(sample_weight),
      settings_(settings),
      execution_(execution),
      // the settings are checked before the pass for the data term reads them
      log_base_measure_((Family::check_settings(settings, data.cols()),
                         discrete_mixture_log_base_measure<Family, T>(data, sample_weight, settings, execution))) {}

template <typename Family, typename T>
DiscreteMixtureStats DiscreteMixtureModel<Family, T>::e_step(const DiscreteMixtureParams& params) const {
  Family::check_settings(settings_, data_.cols());
  detail::check_discrete_params(params, discrete_statistics_width<Family>(settings_, data_.cols()),
                                Family::has_second_statistic);
  const Index K = params.n_components(), D = params.n_features();
  const DiscreteLogJointCoefficients<T> coefficients = discrete_mixture_coefficients<Family, T>(params, settings_);
  const Index chunk_size = resolve_chunk_size(execution_, D, sizeof(T));
  DiscreteMixtureStats stats = reduce_rows(
      data_.rows(), chunk_size, execution_, [&] { return DiscreteMixtureStats(K, D, Family::has_second_statistic); },
      [&](Index begin, Index end, DiscreteMixtureStats& into) {
        detail::with_statistics_columns<Family, T>(
            settings_, data_.middleRows(begin, end - begin), [&](const DataRef<T>& chunk) {
              accumulate_discrete_mixture<Family, T>(chunk, chunk_weights(sample_weight_, begin, end), coefficients,
                                                     into, begin);
            });
      });
  // log h(x_n) is the same for every k: it leaves r alone and joins log p(x_n) and the data term
  stats.log_base_measure = log_base_measure_;
  stats.totals.log_likelihood += log_base_measure_;
  return stats;
}

template <typename Family, typename T>
DiscreteMixtureStats discrete_mixture_e_step(const DataRef<T>& data,
                                             const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                             const DiscreteMixtureParams& params,
                                             const typename Family::Settings& settings, const Execution& execution) {
  return DiscreteMixtureModel<Family, T>(data, sample_weight, settings, execution).e_step(params);
}

template <typename Family, typename T>
DiscreteMixtureFit fit_discrete_mixture(const DataRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                        const DiscreteMixtureParams& initial,
                                        const DiscreteMixtureOptions<Family>& options,
                                        const IterationCallback& on_iteration) {
  const auto start = std::chrono::steady_clock::now();
  const DiscreteMixtureModel<Family, T> model(data, sample_weight, options.settings, options.execution);
  DiscreteMixtureFit fit{initial, ConvergenceMonitor(options.stop)};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fit.params = run_em(model, initial, fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

template <typename Family, typename T>
DiscreteInitialStats discrete_mixture_responsibility_statistics(const DataRef<T>& data,
                                                                const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                                const ResponsibilitySource& source, Index K,
                                                                const typename Family::Settings& settings,
                                                                const Execution& execution) {
  Family::check_settings(settings, data.cols());
  const Index D = discrete_statistics_width<Family>(settings, data.cols());
  const Index chunk_size = resolve_chunk_size(execution, D, sizeof(T));
  // First moments are all the M-step needs: one pass.
  DiscreteInitialStats sums = reduce_rows(
      data.rows(), chunk_size, execution, [&] { return DiscreteInitialStats(K, D, Family::has_second_statistic); },
      [&](Index begin, Index end, DiscreteInitialStats& into) {
        const RowMatrix<double> resp =
            weighted_source_responsibilities(source, sample_weight, begin, end, K, into.stats.totals);
        const RowMatrix<double> x = detail::with_statistics_columns<Family, T>(  // (n, D)
            settings, data.middleRows(begin, end - begin),
            [](const DataRef<T>& chunk) { return RowMatrix<double>(chunk.template cast<double>()); });
        detail::add_weighted_sums<double>(resp, x, into.stats.first);
        const Eigen::VectorXd weights = chunk_weights(sample_weight, begin, end);
        into.data_sum += weights.size() ? Eigen::VectorXd(x.transpose() * weights) : Eigen::VectorXd(x.colwise().sum());
        if constexpr (Family::has_second_statistic) {
          const RowMatrix<double> log_x = x.array().log().matrix();  // (n, D)
          detail::add_weighted_sums<double>(resp, log_x, into.stats.second);
          into.data_log_sum +=
              weights.size() ? Eigen::VectorXd(log_x.transpose() * weights) : Eigen::VectorXd(log_x.colwise().sum());
        }
      });
  sums.n_rows = data.rows();
  return sums;
}

template <typename Family>
DiscreteMixtureParams discrete_mixture_from_initial_statistics(DiscreteInitialStats sums,
                                                               const typename Family::Settings& settings) {
  // Each component also gets one pseudo-row at the data mean, of the rows' mean weight w̄ = N / n:
  // N_k += w̄, Σ w r x += w̄ x̄ = Σ_n w_n x_n / n. One-hot on a single row would otherwise put the means on
  // the boundary (μ ∈ {0, 1}, λ = 0), which EM never leaves; for k-means labels the shift is O(1/N_k).
  DiscreteMixtureStats& stats = sums.stats;
  const Index K = stats.first.rows(), D = stats.first.cols();
  const double n_rows = static_cast<double>(sums.n_rows);
  const double mean_weight = stats.totals.count / n_rows;
  stats.first.rowwise() += (sums.data_sum / n_rows).transpose();
  if constexpr (Family::has_second_statistic) stats.second.rowwise() += (sums.data_log_sum / n_rows).transpose();
  stats.totals.resp_sum.array() += mean_weight;
  stats.totals.count += static_cast<double>(K) * mean_weight;
  DiscreteMixtureParams shape;
  shape.weights = Eigen::VectorXd::Ones(K);
  shape.means = Eigen::MatrixXd::Zero(K, D);
  return discrete_mixture_m_step<Family>(stats, shape, settings);
}

template <typename Family, typename T>
DiscreteMixtureParams discrete_mixture_from_responsibilities(const DataRef<T>& data,
                                                             const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                             const ResponsibilitySource& source, Index K,
                                                             const typename Family::Settings& settings,
                                                             const Execution& execution) {
  return discrete_mixture_from_initial_statistics<Family>(
      discrete_mixture_responsibility_statistics<Family, T>(data, sample_weight, source, K, settings, execution),
      settings);
}

template <typename Family, typename T>
Eigen::VectorXd discrete_mixture_score(const DataRef<T>& data, const DiscreteMixtureParams& params,
                                       const typename Family::Settings& settings, RowMatrix<double>* resp,
                                       const Execution& execution) {
  Family::check_settings(settings, data.cols());
  const Index width = discrete_statistics_width<Family>(settings, data.cols());
  detail::check_discrete_params(params, width, Family::has_second_statistic);
  const DiscreteLogJointCoefficients<T> coefficients = discrete_mixture_coefficients<Family, T>(params, settings);
  const Index chunk_size = resolve_chunk_size(execution, width, sizeof(T));
  return mixture_score(data.rows(), params.n_components(), chunk_size, execution, resp, [&](Index begin, Index end) {
    const DataRef<T> chunk = data.middleRows(begin, end - begin);
    RowMatrix<double> log_joint = detail::with_statistics_columns<Family, T>(settings, chunk, [&](const DataRef<T>& x) {
      RowMatrix<T> log_chunk;  // (n, D) log x, two-parameter families only
      if constexpr (Family::has_second_statistic) log_chunk = detail::log_values<T>(x);
      return RowMatrix<double>(
          discrete_mixture_log_joint<Family, T>(x, coefficients, Family::has_second_statistic ? &log_chunk : nullptr)
              .template cast<double>());
    });
    if constexpr (Family::has_base_measure)
      log_joint.colwise() += detail::log_base_measures<Family, T>(chunk, settings);
    return log_joint;
  });
}

}  // namespace entrosum

#define ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_FOR(Family, T)                                                           \
  template DiscreteLogJointCoefficients<T> discrete_mixture_coefficients<Family, T>(const DiscreteMixtureParams&,      \
                                                                                    const typename Family::Settings&); \
  template RowMatrix<T> discrete_mixture_log_joint<Family, T>(                                                         \
      const DataRef<T>&, const DiscreteLogJointCoefficients<T>&, const RowMatrix<T>*);                                 \
  template void accumulate_discrete_mixture<Family, T>(const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&,    \
                                                       const DiscreteLogJointCoefficients<T>&, DiscreteMixtureStats&,  \
                                                       Index);                                                         \
  template double discrete_mixture_log_base_measure<Family, T>(const DataRef<T>&,                                      \
                                                               const Eigen::Ref<const Eigen::VectorXd>&,               \
                                                               const typename Family::Settings&, const Execution&);    \
  template class DiscreteMixtureModel<Family, T>;                                                                      \
  template DiscreteMixtureStats discrete_mixture_e_step<Family, T>(                                                    \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const DiscreteMixtureParams&,                       \
      const typename Family::Settings&, const Execution&);                                                             \
  template DiscreteMixtureFit fit_discrete_mixture<Family, T>(                                                         \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const DiscreteMixtureParams&,                       \
      const DiscreteMixtureOptions<Family>&, const IterationCallback&);                                                \
  template DiscreteMixtureParams discrete_mixture_from_responsibilities<Family, T>(                                    \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const ResponsibilitySource&, Index,                 \
      const typename Family::Settings&, const Execution&);                                                             \
  template DiscreteInitialStats discrete_mixture_responsibility_statistics<Family, T>(                                 \
      const DataRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const ResponsibilitySource&, Index,                 \
      const typename Family::Settings&, const Execution&);                                                             \
  template Eigen::VectorXd discrete_mixture_score<Family, T>(const DataRef<T>&, const DiscreteMixtureParams&,          \
                                                             const typename Family::Settings&, RowMatrix<double>*,     \
                                                             const Execution&);

/// Instantiates every shared template for `Family` with float and double data.
#define ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE(Family)                                                                \
  template DiscreteMixtureParams discrete_mixture_m_step<Family>(                                                    \
      const DiscreteMixtureStats&, const DiscreteMixtureParams&, const typename Family::Settings&);                  \
  template ElboTerms discrete_mixture_elbo<Family>(const DiscreteMixtureStats&, const DiscreteMixtureParams&,        \
                                                   const typename Family::Settings&);                                \
  template DiscreteMixtureParams discrete_mixture_from_initial_statistics<Family>(DiscreteInitialStats,              \
                                                                                  const typename Family::Settings&); \
  ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_FOR(Family, float)                                                           \
  ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_FOR(Family, double)
