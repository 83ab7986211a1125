// PPCA and factor analysis: EM fits, the closed-form PPCA, log-likelihoods and posterior means.
#include <string>

#include "common.hpp"
#include "entrosum/linear_gaussian.hpp"

namespace entrosum::bindings {

namespace {

NoiseModel parse_noise(const std::string& noise) {
  if (noise == "isotropic") return NoiseModel::isotropic;
  if (noise == "diagonal") return NoiseModel::diagonal;
  throw py::value_error("noise must be 'isotropic' or 'diagonal', got '" + noise + "'");
}

LinearGaussianParams make_params(const Eigen::VectorXd& mean, const Eigen::MatrixXd& components,
                                 const Eigen::VectorXd& noise_variance) {
  return LinearGaussianParams{mean, components, noise_variance};
}

Results fit_to_dict(const LinearGaussianFit& fit) {
  Results out;
  out["mean"] = fit.params.mean;
  out["components"] = fit.params.components;
  out["noise_variance"] = fit.params.noise_variance;
  add_monitor(out, fit.monitor);
  return out;
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "fit_linear_gaussian",
      [](const CArray<T>& data, const Eigen::MatrixXd& components, const Eigen::VectorXd& noise_variance,
         const std::string& noise, bool precompute, bool parameter_expansion, const StopOptions& stop, int n_threads,
         Index chunk_size, const Callback& callback) {
        const DataRef<T> view = as_data(data);
        LinearGaussianOptions options;
        options.noise = parse_noise(noise);
        options.precompute = precompute;
        options.expansion = parameter_expansion ? ParameterExpansion::prior_covariance : ParameterExpansion::none;
        options.stop = stop;
        options.execution = make_execution(n_threads, chunk_size, &data);
        const LinearGaussianParams initial =
            make_params(Eigen::VectorXd::Zero(view.cols()), components, noise_variance);
        const IterationCallback on_iteration = wrap_callback(callback);
        return fit_to_dict(
            run_without_gil([&] { return fit_linear_gaussian<T>(view, initial, options, on_iteration); }));
      },
      py::arg("data"), py::arg("components"), py::arg("noise_variance"), py::arg("noise"), py::arg("precompute"),
      py::arg("parameter_expansion"), py::arg("stop"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      py::arg("callback") = py::none(),
      "EM for PPCA ('isotropic') or factor analysis ('diagonal') from initial W (D, H) and noise variances (D).");

  m.def(
      "fit_ppca_closed_form",
      [](const CArray<T>& data, Index n_components, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return fit_to_dict(run_without_gil([&] { return fit_ppca_closed_form<T>(view, n_components, execution); }));
      },
      py::arg("data"), py::arg("n_components"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "Maximum-likelihood PPCA from the eigendecomposition of the covariance.");

  m.def(
      "linear_gaussian_log_likelihood",
      [](const CArray<T>& data, const Eigen::VectorXd& mean, const Eigen::MatrixXd& components,
         const Eigen::VectorXd& noise_variance, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const LinearGaussianParams params = make_params(mean, components, noise_variance);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] { return linear_gaussian_log_likelihood<T>(view, params, execution); });
      },
      py::arg("data"), py::arg("mean"), py::arg("components"), py::arg("noise_variance"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, "(n_samples) log N(x_n; μ, WWᵀ + Ψ).");

  m.def(
      "linear_gaussian_posterior_mean",
      [](const CArray<T>& data, const Eigen::VectorXd& mean, const Eigen::MatrixXd& components,
         const Eigen::VectorXd& noise_variance, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const LinearGaussianParams params = make_params(mean, components, noise_variance);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] { return linear_gaussian_posterior_mean<T>(view, params, execution); });
      },
      py::arg("data"), py::arg("mean"), py::arg("components"), py::arg("noise_variance"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, "(n_samples, n_components) posterior means.");
}

}  // namespace

void bind_linear_gaussian(py::module_& m) {
  // float32 first: pybind11 then matches float32 arrays without converting them to float64.
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
