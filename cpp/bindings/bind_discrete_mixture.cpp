// Bernoulli, Poisson, binomial, exponential, gamma, multinomial and categorical mixtures: EM, initialisation (from
// k-means labels or random responsibilities), scoring. The families share one template; their functions are named
// bernoulli_mixture_*, poisson_mixture_*, binomial_mixture_* and exponential_mixture_*, and each takes its family's
// settings (BernoulliSettings, PoissonSettings, BinomialSettings, ExponentialSettings).
#include <string>

#include "checks.hpp"
#include "common.hpp"
#include "discrete_params.hpp"
#include "entrosum/mixtures/bernoulli_mixture.hpp"
#include "entrosum/mixtures/binomial_mixture.hpp"
#include "entrosum/mixtures/categorical_mixture.hpp"
#include "entrosum/mixtures/exponential_mixture.hpp"
#include "entrosum/mixtures/gamma_mixture.hpp"
#include "entrosum/mixtures/multinomial_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"
#include "mixture_common.hpp"

namespace entrosum::bindings {

namespace {

/// The statistics fit K components and D features, with the second statistic of a two-parameter family.
template <typename Family>
void check_family_stats(const DiscreteMixtureStats& stats, Index K, Index D) {
  check_stats(stats, K, D);
  if constexpr (Family::has_second_statistic) check_shape("the statistics' sums of log x", stats.second, K, D);
}

template <typename Family, typename T>
void bind_for(py::module_& m, const std::string& prefix) {
  using Settings = typename Family::Settings;
  m.def((prefix + "_fit").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const Eigen::VectorXd& weights,
           const Eigen::MatrixXd& means, const Settings& settings, const StopOptions& stop, int n_threads,
           Index chunk_size, const Callback& callback, const Eigen::MatrixXd& shapes) {
          check_data(data);
          const DataRef<T> view = as_data(data);
          check_sample_weight(sample_weight, view.rows());
          DiscreteMixtureOptions<Family> options;
          options.settings = settings;
          options.stop = stop;
          options.execution = make_execution(n_threads, chunk_size, &data);
          const DiscreteMixtureParams initial = make_params(weights, means, shapes);
          check_family_params<Family>(initial, settings, view.cols());
          const IterationCallback on_iteration = wrap_callback(callback);
          const DiscreteMixtureFit fit = run_without_gil(
              [&] { return fit_discrete_mixture<Family, T>(view, sample_weight, initial, options, on_iteration); });
          Results out = params_to_dict(fit.params);
          add_monitor(out, fit.monitor);
          return out;
        },
        py::arg("data"), py::arg("sample_weight"), py::arg("weights"), py::arg("means"), py::arg("settings"),
        py::arg("stop"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
        py::arg("shapes") = Eigen::MatrixXd(),
        "EM from initial weights (K,) and means (K, D) (and shapes (K, D) for the gamma family).");

  m.def((prefix + "_init_from_labels").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const LabelArray& labels, Index n_components,
           const Settings& settings, int n_threads, Index chunk_size) {
          check_data(data);
          const DataRef<T> view = as_data(data);
          check_n_components(n_components);
          check_sample_weight(sample_weight, view.rows());
          check_labels(labels, view.rows(), n_components);
          const Execution execution = make_execution(n_threads, chunk_size, &data);
          const ResponsibilitySource source = label_responsibilities(labels.data());
          return params_to_dict(run_without_gil([&] {
            return discrete_mixture_from_responsibilities<Family, T>(view, sample_weight, source, n_components,
                                                                     settings, execution);
          }));
        },
        py::arg("data"), py::arg("sample_weight"), py::arg("labels"), py::arg("n_components"), py::arg("settings"),
        py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
        "Parameters from one-hot responsibilities given by labels (-1: none).");

  m.def((prefix + "_init_random").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, std::uint64_t seed, Index n_components,
           const Settings& settings, int n_threads, Index chunk_size) {
          check_data(data);
          const DataRef<T> view = as_data(data);
          check_n_components(n_components);
          check_sample_weight(sample_weight, view.rows());
          const Execution execution = make_execution(n_threads, chunk_size, &data);
          const ResponsibilitySource source = random_responsibilities(seed);
          return params_to_dict(run_without_gil([&] {
            return discrete_mixture_from_responsibilities<Family, T>(view, sample_weight, source, n_components,
                                                                     settings, execution);
          }));
        },
        py::arg("data"), py::arg("sample_weight"), py::arg("seed"), py::arg("n_components"), py::arg("settings"),
        py::arg("n_threads") = 1, py::arg("chunk_size") = 0, "Parameters from random responsibilities.");

  m.def((prefix + "_e_step").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const py::dict& params,
           const Settings& settings, int n_threads, Index chunk_size, Index row_offset) {
          check_data(data);
          const DataRef<T> view = as_data(data);
          check_sample_weight(sample_weight, view.rows());
          const DiscreteMixtureParams p = params_from_dict(params);
          check_family_params<Family>(p, settings, view.cols());
          const Execution execution = make_execution(n_threads, chunk_size, &data);
          DiscreteMixtureStats stats = run_without_gil(
              [&] { return discrete_mixture_e_step<Family, T>(view, sample_weight, p, settings, execution); });
          offset_rows(stats.totals, row_offset);
          return stats;
        },
        py::arg("data"), py::arg("sample_weight"), py::arg("params"), py::arg("settings"), py::arg("n_threads") = 1,
        py::arg("chunk_size") = 0, py::arg("row_offset") = 0,
        "The E-step over a chunk of rows (rows row_offset + n of the data set): mergeable sums of the exact "
        "posterior's statistics, the data term included (chunk-level step API).");

  m.def((prefix + "_responsibility_statistics").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const LabelArray& labels, std::uint64_t seed,
           Index row_offset, Index n_components, const Settings& settings, int n_threads, Index chunk_size) {
          check_data(data);
          const DataRef<T> view = as_data(data);
          check_n_components(n_components);
          check_sample_weight(sample_weight, view.rows());
          if (labels.size()) check_labels(labels, view.rows(), n_components);
          const Execution execution = make_execution(n_threads, chunk_size, &data);
          const ResponsibilitySource source =
              labels.size() ? label_responsibilities(labels.data()) : random_responsibilities(seed, row_offset);
          return run_without_gil([&] {
            return discrete_mixture_responsibility_statistics<Family, T>(view, sample_weight, source, n_components,
                                                                         settings, execution);
          });
        },
        py::arg("data"), py::arg("sample_weight"), py::arg("labels"), py::arg("seed"), py::arg("row_offset"),
        py::arg("n_components"), py::arg("settings"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
        "The initialising pass over a block of rows (one-hot on labels, or random responsibilities of rows "
        "row_offset + n when labels is empty): mergeable sums.");

  m.def(
      (prefix + "_score").c_str(),
      [](const CArray<T>& data, const Eigen::VectorXd& weights, const Eigen::MatrixXd& means, const Settings& settings,
         bool with_responsibilities, int n_threads, Index chunk_size, const Eigen::MatrixXd& shapes) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const DiscreteMixtureParams params = make_params(weights, means, shapes);
        check_family_params<Family>(params, settings, view.cols());
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        RowMatrix<double> resp;
        Eigen::VectorXd log_likelihood = run_without_gil([&] {
          return discrete_mixture_score<Family, T>(view, params, settings, with_responsibilities ? &resp : nullptr,
                                                   execution);
        });
        return py::make_tuple(log_likelihood, with_responsibilities ? py::cast(resp) : py::none());
      },
      py::arg("data"), py::arg("weights"), py::arg("means"), py::arg("settings"), py::arg("with_responsibilities"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("shapes") = Eigen::MatrixXd(),
      "(log p(x_n), responsibilities or None).");
}

/// The data-free half of the step API: the M-step and the ELBO terms from merged statistics.
template <typename Family>
void bind_steps(py::module_& m, const std::string& prefix) {
  using Settings = typename Family::Settings;
  m.def((prefix + "_m_step").c_str(),
        [](const DiscreteMixtureStats& stats, const py::dict& params, const Settings& settings) {
          const DiscreteMixtureParams p = params_from_dict(params);
          check_params(p, p.means.cols());
          check_family_stats<Family>(stats, p.weights.size(), p.means.cols());
          return params_to_dict(discrete_mixture_m_step<Family>(stats, p, settings));
        },
        py::arg("stats"), py::arg("params"), py::arg("settings"), "The M-step from merged statistics.");
  m.def((prefix + "_from_initial_statistics").c_str(),
        [](const DiscreteInitialStats& sums, const Settings& settings) {
          check_n_components(sums.stats.totals.resp_sum.size());
          check_at_least("the statistics' number of features", sums.stats.first.cols(), 1);
          check_consistent(sums);
          check_family_stats<Family>(sums.stats, sums.stats.totals.resp_sum.size(), sums.stats.first.cols());
          if constexpr (Family::has_second_statistic)
            check_size("the statistics' data_log_sum", sums.data_log_sum, sums.stats.first.cols());
          return params_to_dict(discrete_mixture_from_initial_statistics<Family>(sums, settings));
        },
        py::arg("sums"), py::arg("settings"), "Initial parameters from the merged sums of the initialising pass.");
  m.def((prefix + "_terms").c_str(),
        [](const DiscreteMixtureStats& stats, const py::dict& params, const Settings& settings) {
          const DiscreteMixtureParams p = params_from_dict(params);
          check_family_params<Family>(p, p.means.cols());
          check_family_stats<Family>(stats, p.weights.size(), p.means.cols());
          return elbo_terms_to_dict(discrete_mixture_elbo<Family>(stats, p, settings));
        },
        py::arg("stats"), py::arg("params"), py::arg("settings"),
        "F(q, Θ) per sample and the entropy sum's terms for the q of the statistics and the parameters Θ.");
}

}  // namespace

void bind_discrete_mixture(py::module_& m) {
  py::class_<BernoulliMixture::Settings>(m, "BernoulliSettings", "M-step settings of a Bernoulli mixture.")
      .def(py::init([](double alpha) { return BernoulliMixture::Settings{alpha}; }), py::arg("alpha") = 0.0)
      .def_readwrite("alpha", &BernoulliMixture::Settings::alpha);
  py::class_<PoissonMixture::Settings>(m, "PoissonSettings", "M-step settings of a Poisson mixture (none).")
      .def(py::init<>());
  py::class_<BinomialMixture::Settings>(m, "BinomialSettings",
                                        "The known numbers of trials (one per feature) of a binomial mixture.")
      .def(py::init([](const Eigen::VectorXd& n_trials) { return BinomialMixture::Settings{n_trials}; }),
           py::arg("n_trials"))
      .def_readonly("n_trials", &BinomialMixture::Settings::n_trials);
  py::class_<ExponentialMixture::Settings>(m, "ExponentialSettings",
                                           "M-step settings of an exponential mixture (none).")
      .def(py::init<>());
  py::class_<GammaMixture::Settings>(m, "GammaSettings", "M-step settings of a gamma mixture (none).")
      .def(py::init<>());
  py::class_<CategoricalMixture::Settings>(m, "CategoricalSettings",
                                           "The numbers of levels (one per feature) of a categorical mixture.")
      .def(py::init([](const Eigen::Matrix<Index, Eigen::Dynamic, 1>& n_levels) {
             return CategoricalMixture::Settings{n_levels};
           }),
           py::arg("n_levels"))
      .def_readonly("n_levels", &CategoricalMixture::Settings::n_levels);
  py::class_<MultinomialMixture::Settings>(m, "MultinomialSettings", "M-step settings of a multinomial mixture (none).")
      .def(py::init<>());
  bind_statistics<DiscreteMixtureStats>(
      m, "DiscreteMixtureStats",
      "Sums of the posterior statistics of an exponential-family mixture (Bernoulli, Poisson, binomial, "
      "exponential, gamma) over rows; mergeable and picklable.",
      [](const DiscreteMixtureStats& s) {
        return py::make_tuple(totals_state(s.totals), s.first, s.log_base_measure, s.second);
      },
      [](const py::tuple& state) {
        if (state.size() != 4) throw std::runtime_error("invalid DiscreteMixtureStats state");
        DiscreteMixtureStats s;
        s.totals = totals_from_state(state[0]);
        s.first = state[1].cast<Eigen::MatrixXd>();
        s.log_base_measure = state[2].cast<double>();
        s.second = state[3].cast<Eigen::MatrixXd>();
        return s;
      })
      .def_property_readonly("count", [](const DiscreteMixtureStats& s) { return s.totals.count; })
      .def_property_readonly("resp_sum", [](const DiscreteMixtureStats& s) { return s.totals.resp_sum; });
  bind_statistics<DiscreteInitialStats>(
      m, "DiscreteInitialStats", "Sums of an initialising pass of an exponential-family mixture; mergeable.",
      [](const DiscreteInitialStats& s) {
        return py::make_tuple(totals_state(s.stats.totals), s.stats.first, s.data_sum, s.n_rows, s.stats.second,
                              s.data_log_sum);
      },
      [](const py::tuple& state) {
        if (state.size() != 6) throw std::runtime_error("invalid DiscreteInitialStats state");
        DiscreteInitialStats s;
        s.stats.totals = totals_from_state(state[0]);
        s.stats.first = state[1].cast<Eigen::MatrixXd>();
        s.data_sum = state[2].cast<Eigen::VectorXd>();
        s.n_rows = state[3].cast<Index>();
        s.stats.second = state[4].cast<Eigen::MatrixXd>();
        s.data_log_sum = state[5].cast<Eigen::VectorXd>();
        return s;
      })
      .def_property_readonly("count", [](const DiscreteInitialStats& s) { return s.stats.totals.count; });
  bind_steps<BernoulliMixture>(m, "bernoulli_mixture");
  bind_steps<PoissonMixture>(m, "poisson_mixture");
  bind_steps<BinomialMixture>(m, "binomial_mixture");
  bind_steps<ExponentialMixture>(m, "exponential_mixture");
  bind_steps<GammaMixture>(m, "gamma_mixture");
  bind_steps<MultinomialMixture>(m, "multinomial_mixture");
  bind_steps<CategoricalMixture>(m, "categorical_mixture");
  bind_for<BernoulliMixture, float>(m, "bernoulli_mixture");
  bind_for<BernoulliMixture, double>(m, "bernoulli_mixture");
  bind_for<PoissonMixture, float>(m, "poisson_mixture");
  bind_for<PoissonMixture, double>(m, "poisson_mixture");
  bind_for<BinomialMixture, float>(m, "binomial_mixture");
  bind_for<BinomialMixture, double>(m, "binomial_mixture");
  bind_for<ExponentialMixture, float>(m, "exponential_mixture");
  bind_for<ExponentialMixture, double>(m, "exponential_mixture");
  bind_for<GammaMixture, float>(m, "gamma_mixture");
  bind_for<GammaMixture, double>(m, "gamma_mixture");
  bind_for<MultinomialMixture, float>(m, "multinomial_mixture");
  bind_for<MultinomialMixture, double>(m, "multinomial_mixture");
  bind_for<CategoricalMixture, float>(m, "categorical_mixture");
  bind_for<CategoricalMixture, double>(m, "categorical_mixture");
}

}  // namespace entrosum::bindings
