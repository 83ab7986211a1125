// The discrete-mixture engine's passes over CSR data (discrete_mixture_csr.hpp), instantiated for the families
// whose base measure ignores zeros: Bernoulli, Poisson and multinomial.
#include "entrosum/mixtures/discrete_mixture_csr.hpp"

#include <chrono>

#include "discrete_mixture_impl.hpp"
#include "entrosum/mixtures/bernoulli_mixture.hpp"
#include "entrosum/mixtures/multinomial_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"

namespace entrosum {

namespace detail {

/// The rows of CSR data densified one at a time, for note_worst (it keeps only the few worst-explained rows).
template <typename T>
struct DenseRowsOfCsr {
  const CsrRef<T>& data;
  Eigen::RowVectorXd row(Index n) const { return data.dense_row(n).transpose(); }
};

/// The log joint's coefficients with η stored by feature, so that an entry at column d adds x times row d.
template <typename T>
struct CsrLogJointCoefficients {
  /// (n_features, n_components) η(m_kd), transposed
  RowMatrix<T> natural_by_feature;
  /// (n_components) log π_k − Σ_d A(m_kd)
  Eigen::Matrix<T, 1, Eigen::Dynamic> constants;
};

template <typename Family, typename T>
CsrLogJointCoefficients<T> csr_coefficients(const DiscreteMixtureParams& params,
                                            const typename Family::Settings& settings) {
  static_assert(!Family::has_second_statistic && !Family::expands_columns,
                "the CSR passes serve one-parameter families over the data's own columns");
  DiscreteLogJointCoefficients<T> dense = discrete_mixture_coefficients<Family, T>(params, settings);
  return {dense.natural.transpose(), dense.constants};
}

/// (n, K) log π_k + Σ_{entries of row n} x η_k,col − Σ_d A(m_kd) for a block of CSR rows (log h(x) left out).
template <typename T>
RowMatrix<T> csr_log_joint(const CsrRef<T>& chunk, const CsrLogJointCoefficients<T>& coefficients) {
  RowMatrix<T> log_joint = coefficients.constants.replicate(chunk.rows, 1);
  for (Index n = 0; n < chunk.rows; ++n)
    for (std::int64_t at = chunk.row_starts[n]; at < chunk.row_starts[n + 1]; ++at)
      log_joint.row(n) += chunk.values[at] * coefficients.natural_by_feature.row(chunk.column_indices[at]);
  return log_joint;
}

/// Σ_n w_n log h(x_n) over CSR rows (the zeros of a row add nothing to log h for these families).
template <typename Family, typename T>
double csr_log_base_measure(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                            const typename Family::Settings& settings, const Execution& execution) {
  if constexpr (!Family::has_base_measure) {
    return 0.0;
  } else {
    return reduce_rows(
        data.rows, data.chunk_rows(execution.chunk_size, 1), execution, [] { return 0.0; },
        [&](Index begin, Index end, double& into) {
          for (Index n = begin; n < end; ++n)
            into += (sample_weight.size() ? sample_weight(n) : 1.0) *
                    Family::log_base_measure(settings, data.row_values(n));
        });
  }
}

/// The E-step on CSR data (the dense engine's DiscreteMixtureModel, for run_em).
template <typename Family, typename T>
class DiscreteMixtureCsrModel {
 public:
  using Params = DiscreteMixtureParams;
  using Expectation = DiscreteMixtureStats;

  DiscreteMixtureCsrModel(const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                          const typename Family::Settings& settings, const Execution& execution)
      : data_(data),
        sample_weight_(sample_weight),
        settings_(settings),
        execution_(execution),
        log_base_measure_((Family::check_settings(settings, data.cols),
                           csr_log_base_measure<Family, T>(data, sample_weight, settings, execution))) {}

  Expectation e_step(const Params& params) const {
    check_discrete_params(params, data_.cols);
    Family::check_settings(settings_, data_.cols);
    const Index K = params.n_components(), D = params.n_features();
    const CsrLogJointCoefficients<T> coefficients = csr_coefficients<Family, T>(params, settings_);
    DiscreteMixtureStats stats = reduce_rows(
        data_.rows, data_.chunk_rows(execution_.chunk_size, K), execution_, [&] { return DiscreteMixtureStats(K, D); },
        [&](Index begin, Index end, DiscreteMixtureStats& into) {
          const CsrRef<T> chunk = data_.middle_rows(begin, end - begin);
          const Eigen::VectorXd weights = chunk_weights(sample_weight_, begin, end);
          RowMatrix<T> resp = csr_log_joint<T>(chunk, coefficients);  // (n, K), then w_n r_nk
          Eigen::VectorXd row_log_likelihood;
          normalise_log_joint<T>(resp, weights, into.totals, row_log_likelihood);
          note_worst(into.totals, row_log_likelihood, DenseRowsOfCsr<T>{chunk}, begin, weights);
          // Σ_n w_n r_nk x_n, entry by entry: column d of the (K, D) sums gathers the entries at d
          for (Index n = 0; n < chunk.rows; ++n) {
            const Eigen::VectorXd row_resp = resp.row(n).transpose().template cast<double>();
            for (std::int64_t at = chunk.row_starts[n]; at < chunk.row_starts[n + 1]; ++at)
              into.first.col(chunk.column_indices[at]) += static_cast<double>(chunk.values[at]) * row_resp;
          }
        });
    // log h(x_n) is the same for every k: it leaves r alone and joins log p(x_n) and the data term
    stats.log_base_measure = log_base_measure_;
    stats.totals.log_likelihood += log_base_measure_;
    return stats;
  }
  ElboTerms evaluate(const Expectation& expectation, const Params& params) const {
    return discrete_mixture_elbo<Family>(expectation, params, settings_);
  }
  Params m_step(const Expectation& expectation, const Params& params) const {
    return discrete_mixture_m_step<Family>(expectation, params, settings_);
  }

 private:
  CsrRef<T> data_;
  Eigen::Ref<const Eigen::VectorXd> sample_weight_;
  typename Family::Settings settings_;
  Execution execution_;
  double log_base_measure_ = 0.0;  // Σ_n w_n log h(x_n)
};

}  // namespace detail

template <typename Family, typename T>
DiscreteMixtureStats discrete_mixture_csr_e_step(const CsrRef<T>& data,
                                                 const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                                 const DiscreteMixtureParams& params,
                                                 const typename Family::Settings& settings,
                                                 const Execution& execution) {
  return detail::DiscreteMixtureCsrModel<Family, T>(data, sample_weight, settings, execution).e_step(params);
}

template <typename Family, typename T>
DiscreteMixtureFit fit_discrete_mixture_csr(const CsrRef<T>& data,
                                            const Eigen::Ref<const Eigen::VectorXd>& sample_weight,
                                            const DiscreteMixtureParams& initial,
                                            const DiscreteMixtureOptions<Family>& options,
                                            const IterationCallback& on_iteration) {
  const auto start = std::chrono::steady_clock::now();
  const detail::DiscreteMixtureCsrModel<Family, T> model(data, sample_weight, options.settings, options.execution);
  DiscreteMixtureFit fit{initial, ConvergenceMonitor(options.stop)};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fit.params = run_em(model, initial, fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

template <typename Family, typename T>
DiscreteInitialStats discrete_mixture_csr_responsibility_statistics(
    const CsrRef<T>& data, const Eigen::Ref<const Eigen::VectorXd>& sample_weight, const ResponsibilitySource& source,
    Index K, const Execution& execution) {
  const Index D = data.cols;
  DiscreteInitialStats sums = reduce_rows(
      data.rows, data.chunk_rows(execution.chunk_size, K), execution, [&] { return DiscreteInitialStats(K, D); },
      [&](Index begin, Index end, DiscreteInitialStats& into) {
        const RowMatrix<double> resp =
            weighted_source_responsibilities(source, sample_weight, begin, end, K, into.stats.totals);
        for (Index n = begin; n < end; ++n) {
          const double weight = sample_weight.size() ? sample_weight(n) : 1.0;
          const Eigen::VectorXd row_resp = resp.row(n - begin).transpose();
          for (std::int64_t at = data.row_starts[n]; at < data.row_starts[n + 1]; ++at) {
            const double value = static_cast<double>(data.values[at]);
            into.stats.first.col(data.column_indices[at]) += value * row_resp;
            into.data_sum(data.column_indices[at]) += weight * value;
          }
        }
      });
  sums.n_rows = data.rows;
  return sums;
}

template <typename Family, typename T>
Eigen::VectorXd discrete_mixture_csr_score(const CsrRef<T>& data, const DiscreteMixtureParams& params,
                                           const typename Family::Settings& settings, RowMatrix<double>* resp,
                                           const Execution& execution) {
  detail::check_discrete_params(params, data.cols);
  Family::check_settings(settings, data.cols);
  const Index K = params.n_components();
  const detail::CsrLogJointCoefficients<T> coefficients = detail::csr_coefficients<Family, T>(params, settings);
  return mixture_score(
      data.rows, K, data.chunk_rows(execution.chunk_size, K), execution, resp, [&](Index begin, Index end) {
        const CsrRef<T> chunk = data.middle_rows(begin, end - begin);
        RowMatrix<double> log_joint = detail::csr_log_joint<T>(chunk, coefficients).template cast<double>();
        if constexpr (Family::has_base_measure)
          for (Index n = 0; n < chunk.rows; ++n)
            log_joint.row(n).array() += Family::log_base_measure(settings, chunk.row_values(n));
        return log_joint;
      });
}

#define ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_CSR_FOR(Family, T)                                                       \
  template DiscreteMixtureStats discrete_mixture_csr_e_step<Family, T>(                                                \
      const CsrRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const DiscreteMixtureParams&,                        \
      const typename Family::Settings&, const Execution&);                                                             \
  template DiscreteMixtureFit fit_discrete_mixture_csr<Family, T>(                                                     \
      const CsrRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const DiscreteMixtureParams&,                        \
      const DiscreteMixtureOptions<Family>&, const IterationCallback&);                                                \
  template DiscreteInitialStats discrete_mixture_csr_responsibility_statistics<Family, T>(                             \
      const CsrRef<T>&, const Eigen::Ref<const Eigen::VectorXd>&, const ResponsibilitySource&, Index,                  \
      const Execution&);                                                                                               \
  template Eigen::VectorXd discrete_mixture_csr_score<Family, T>(const CsrRef<T>&, const DiscreteMixtureParams&,       \
                                                                 const typename Family::Settings&, RowMatrix<double>*, \
                                                                 const Execution&);
#define ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_CSR(Family)      \
  ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_CSR_FOR(Family, float) \
  ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_CSR_FOR(Family, double)

ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_CSR(BernoulliMixture)
ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_CSR(PoissonMixture)
ENTROSUM_INSTANTIATE_DISCRETE_MIXTURE_CSR(MultinomialMixture)

}  // namespace entrosum
