// Bernoulli and Poisson mixtures: EM, initialisation (from k-means labels or random responsibilities),
// scoring. Both families share one template; their functions are named bernoulli_mixture_* and
// poisson_mixture_*, and each takes its family's M-step settings (BernoulliSettings, PoissonSettings).
#include <string>

#include "common.hpp"
#include "entrosum/bernoulli_mixture.hpp"
#include "entrosum/poisson_mixture.hpp"

namespace entrosum::bindings {

namespace {

DiscreteMixtureParams make_params(const Eigen::VectorXd& weights, const Eigen::MatrixXd& means) {
  if (weights.size() != means.rows()) throw py::value_error("weights and means must have one entry per component");
  return DiscreteMixtureParams{weights, means};
}

Results params_to_dict(const DiscreteMixtureParams& p) {
  Results out;
  out["weights"] = p.weights;
  out["means"] = p.means;
  return out;
}

template <typename Family, typename T>
void bind_for(py::module_& m, const std::string& prefix) {
  using Settings = typename Family::Settings;
  m.def((prefix + "_fit").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const Eigen::VectorXd& weights,
           const Eigen::MatrixXd& means, const Settings& settings, const StopOptions& stop, int n_threads,
           Index chunk_size, const Callback& callback) {
          const DataRef<T> view = as_data(data);
          DiscreteMixtureOptions<Family> options;
          options.settings = settings;
          options.stop = stop;
          options.execution = make_execution(n_threads, chunk_size, &data);
          const DiscreteMixtureParams initial = make_params(weights, means);
          const IterationCallback on_iteration = wrap_callback(callback);
          const DiscreteMixtureFit fit = run_without_gil(
              [&] { return fit_discrete_mixture<Family, T>(view, sample_weight, initial, options, on_iteration); });
          Results out = params_to_dict(fit.params);
          add_monitor(out, fit.monitor);
          return out;
        },
        py::arg("data"), py::arg("sample_weight"), py::arg("weights"), py::arg("means"), py::arg("settings"),
        py::arg("stop"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
        "EM from initial weights (K,) and means (K, D).");

  m.def((prefix + "_init_from_labels").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const LabelArray& labels, Index n_components,
           const Settings& settings, int n_threads, Index chunk_size) {
          const DataRef<T> view = as_data(data);
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
          const DataRef<T> view = as_data(data);
          const Execution execution = make_execution(n_threads, chunk_size, &data);
          const ResponsibilitySource source = random_responsibilities(seed);
          return params_to_dict(run_without_gil([&] {
            return discrete_mixture_from_responsibilities<Family, T>(view, sample_weight, source, n_components,
                                                                     settings, execution);
          }));
        },
        py::arg("data"), py::arg("sample_weight"), py::arg("seed"), py::arg("n_components"), py::arg("settings"),
        py::arg("n_threads") = 1, py::arg("chunk_size") = 0, "Parameters from random responsibilities.");

  m.def((prefix + "_score").c_str(),
        [](const CArray<T>& data, const Eigen::VectorXd& weights, const Eigen::MatrixXd& means,
           bool with_responsibilities, int n_threads, Index chunk_size) {
          const DataRef<T> view = as_data(data);
          const DiscreteMixtureParams params = make_params(weights, means);
          const Execution execution = make_execution(n_threads, chunk_size, &data);
          RowMatrix<double> resp;
          Eigen::VectorXd log_likelihood = run_without_gil([&] {
            return discrete_mixture_score<Family, T>(view, params, with_responsibilities ? &resp : nullptr, execution);
          });
          return py::make_tuple(log_likelihood, with_responsibilities ? py::cast(resp) : py::none());
        },
        py::arg("data"), py::arg("weights"), py::arg("means"), py::arg("with_responsibilities"),
        py::arg("n_threads") = 1, py::arg("chunk_size") = 0, "(log p(x_n), responsibilities or None).");
}

}  // namespace

void bind_discrete_mixture(py::module_& m) {
  py::class_<BernoulliMixture::Settings>(m, "BernoulliSettings", "M-step settings of a Bernoulli mixture.")
      .def(py::init([](double alpha) { return BernoulliMixture::Settings{alpha}; }), py::arg("alpha") = 0.0)
      .def_readwrite("alpha", &BernoulliMixture::Settings::alpha);
  py::class_<PoissonMixture::Settings>(m, "PoissonSettings", "M-step settings of a Poisson mixture (none).")
      .def(py::init<>());
  bind_for<BernoulliMixture, float>(m, "bernoulli_mixture");
  bind_for<BernoulliMixture, double>(m, "bernoulli_mixture");
  bind_for<PoissonMixture, float>(m, "poisson_mixture");
  bind_for<PoissonMixture, double>(m, "poisson_mixture");
}

}  // namespace entrosum::bindings
