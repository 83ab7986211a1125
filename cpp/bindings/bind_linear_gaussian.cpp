// PPCA and factor analysis: EM fits, the closed-form PPCA, log-likelihoods and posterior means.
#include <string>

#include "checks.hpp"
#include "common.hpp"
#include "entrosum/linear/linear_gaussian.hpp"

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

LinearGaussianParams params_from_dict(const py::dict& params) {
  return make_params(dict_entry<Eigen::VectorXd>(params, "mean"), dict_entry<Eigen::MatrixXd>(params, "components"),
                     dict_entry<Eigen::VectorXd>(params, "noise_variance"));
}

Results params_to_dict(const LinearGaussianParams& p) {
  Results out;
  out["mean"] = p.mean;
  out["components"] = p.components;
  out["noise_variance"] = p.noise_variance;
  return out;
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
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_shape("components", components, view.cols(), components.cols());
        if (noise_variance.size()) check_size("noise_variance", noise_variance, view.cols());
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
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_at_least("n_components", n_components, 0);
        if (n_components > view.cols()) throw py::value_error("n_components must be at most n_features");
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return fit_to_dict(run_without_gil([&] { return fit_ppca_closed_form<T>(view, n_components, execution); }));
      },
      py::arg("data"), py::arg("n_components"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "Maximum-likelihood PPCA from the eigendecomposition of the covariance.");

  m.def(
      "linear_gaussian_moments",
      [](const CArray<T>& data, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] { return compute_moments<T>(view, /*full=*/true, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "The chunk-level pass of PPCA and factor analysis: count, mean and scatter of the rows (Moments), which the "
      "exact posterior's statistics are linear in for any parameters.");

  m.def(
      "linear_gaussian_log_likelihood",
      [](const CArray<T>& data, const Eigen::VectorXd& mean, const Eigen::MatrixXd& components,
         const Eigen::VectorXd& noise_variance, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const LinearGaussianParams params = make_params(mean, components, noise_variance);
        check_params(params, view.cols());
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] { return linear_gaussian_log_likelihood<T>(view, params, execution); });
      },
      py::arg("data"), py::arg("mean"), py::arg("components"), py::arg("noise_variance"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, "(n_samples) log N(x_n; μ, WWᵀ + Ψ).");

  m.def(
      "linear_gaussian_posterior_mean",
      [](const CArray<T>& data, const Eigen::VectorXd& mean, const Eigen::MatrixXd& components,
         const Eigen::VectorXd& noise_variance, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const LinearGaussianParams params = make_params(mean, components, noise_variance);
        check_params(params, view.cols());
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] { return linear_gaussian_posterior_mean<T>(view, params, execution); });
      },
      py::arg("data"), py::arg("mean"), py::arg("components"), py::arg("noise_variance"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, "(n_samples, n_components) posterior means.");
}

}  // namespace

void bind_linear_gaussian(py::module_& m) {
  bind_statistics<Moments>(
      m, "Moments", "Count, mean and scatter of rows, merged by Chan et al.'s update; picklable.",
      [](const Moments& s) { return py::make_tuple(s.count, s.mean, s.scatter_diagonal, s.scatter); },
      [](const py::tuple& state) {
        if (state.size() != 4) throw std::runtime_error("invalid Moments state");
        Moments s;
        s.count = state[0].cast<double>();
        s.mean = state[1].cast<Eigen::VectorXd>();
        s.scatter_diagonal = state[2].cast<Eigen::VectorXd>();
        s.scatter = state[3].cast<Eigen::MatrixXd>();
        return s;
      })
      .def_property_readonly("count", [](const Moments& s) { return s.count; })
      .def_property_readonly("mean", [](const Moments& s) { return s.mean; })
      .def_property_readonly("covariance", [](const Moments& s) { return Eigen::MatrixXd(s.covariance()); });

  py::class_<LinearGaussianExpectation>(m, "LinearGaussianExpectation",
                                        "The exact posterior of PPCA or factor analysis at given parameters and "
                                        "its statistics over the data.")
      .def_property_readonly("count", [](const LinearGaussianExpectation& e) { return e.stats.count; });

  m.def(
      "linear_gaussian_expectation",
      [](const Moments& moments, const py::dict& params) {
        check_moments(moments);
        if (!moments.full()) throw py::value_error("the E-step needs full moments (with the scatter matrix)");
        const LinearGaussianParams p = params_from_dict(params);
        check_params(p, moments.mean.size());
        return linear_gaussian_expectation(moments, p);
      },
      py::arg("moments"), py::arg("params"), "The E-step from the data's moments, for parameters params.");
  m.def(
      "linear_gaussian_terms",
      [](const LinearGaussianExpectation& expectation, const py::dict& params) {
        const LinearGaussianParams p = params_from_dict(params);
        check_params(p, p.mean.size());
        check_expectation(expectation, p);
        return elbo_terms_to_dict(linear_gaussian_elbo(expectation, p));
      },
      py::arg("expectation"), py::arg("params"),
      "F(q, Θ) per sample and the entropy sum's terms for the q of the expectation and the parameters Θ.");
  m.def(
      "linear_gaussian_m_step",
      [](const LinearGaussianExpectation& expectation, const py::dict& params, const std::string& noise,
         bool parameter_expansion, double noise_floor) {
        const LinearGaussianParams p = params_from_dict(params);
        check_params(p, p.mean.size());
        check_expectation(expectation, p);
        return params_to_dict(linear_gaussian_m_step(
            expectation, p, parse_noise(noise), noise_floor,
            parameter_expansion ? ParameterExpansion::prior_covariance : ParameterExpansion::none));
      },
      py::arg("expectation"), py::arg("params"), py::arg("noise"), py::arg("parameter_expansion"),
      py::arg("noise_floor"), "The M-step for W and Ψ (μ stays).");
  m.def(
      "linear_gaussian_noise_floor",
      [](const Moments& moments) {
        check_moments(moments);
        return linear_gaussian_noise_floor(moments);
      },
      py::arg("moments"), "The floor of the noise variances for data with these moments.");
  m.def(
      "linear_gaussian_start",
      [](const Moments& moments, const Eigen::MatrixXd& components, const Eigen::VectorXd& noise_variance,
         const std::string& noise) {
        check_moments(moments);
        check_shape("components", components, moments.mean.size(), components.cols());
        if (noise_variance.size()) check_size("noise_variance", noise_variance, moments.mean.size());
        LinearGaussianParams initial = make_params(moments.mean, components, noise_variance);
        return params_to_dict(linear_gaussian_start(moments, initial, parse_noise(noise)));
      },
      py::arg("moments"), py::arg("components"), py::arg("noise_variance"), py::arg("noise"),
      "The starting parameters of an EM fit (as fit_linear_gaussian makes them).");
  m.def(
      "ppca_closed_form_from_moments",
      [](const Moments& moments, Index n_components) {
        check_moments(moments);
        if (!moments.full()) throw py::value_error("the closed form needs full moments (with the scatter matrix)");
        check_at_least("n_components", n_components, 0);
        if (n_components > moments.mean.size()) throw py::value_error("n_components must be at most n_features");
        const Execution execution = make_execution(1, 0);
        return fit_to_dict(
            run_without_gil([&] { return ppca_closed_form_from_moments(moments, n_components, execution); }));
      },
      py::arg("moments"), py::arg("n_components"), "The closed-form PPCA from the data's moments.");

  // float32 first: pybind11 then matches float32 arrays without converting them to float64.
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
