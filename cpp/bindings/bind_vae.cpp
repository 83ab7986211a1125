// Gaussian VAEs: the three-entropy sum and ELBO over mini-batches, the optimal variances, and the linear VAE.
#include <string>

#include "checks.hpp"
#include "common.hpp"
#include "entrosum/vae/gaussian_vae.hpp"
#include "entrosum/vae/linear_vae.hpp"

namespace entrosum::bindings {

namespace {

DecoderVariance parse_decoder_variance(const std::string& name) {
  if (name == "scalar") return DecoderVariance::scalar;
  if (name == "per_feature") return DecoderVariance::per_feature;
  if (name == "per_sample") return DecoderVariance::per_sample;
  throw py::value_error("decoder_variance must be 'scalar', 'per_feature' or 'per_sample', got '" + name + "'");
}

LinearVaeParams vae_params_from_dict(const py::dict& params) {
  LinearVaeParams p;
  p.encoder_weights = dict_entry<Eigen::MatrixXd>(params, "encoder_weights");
  p.encoder_bias = dict_entry<Eigen::VectorXd>(params, "encoder_bias");
  p.encoder_variance = dict_entry<Eigen::VectorXd>(params, "encoder_variance");
  p.decoder_weights = dict_entry<Eigen::MatrixXd>(params, "decoder_weights");
  p.decoder_bias = dict_entry<Eigen::VectorXd>(params, "decoder_bias");
  p.noise_variance = dict_entry<double>(params, "noise_variance");
  return p;
}

Results vae_fit_to_dict(const LinearVaeFit& fit) {
  Results out;
  out["encoder_weights"] = fit.params.encoder_weights;
  out["encoder_bias"] = fit.params.encoder_bias;
  out["encoder_variance"] = fit.params.encoder_variance;
  out["decoder_weights"] = fit.params.decoder_weights;
  out["decoder_bias"] = fit.params.decoder_bias;
  out["noise_variance"] = fit.params.noise_variance;
  out["lbfgs_status"] = fit.lbfgs_status;
  out["evaluations"] = fit.evaluations;
  add_monitor(out, fit.monitor);
  return out;
}

LinearVaeOptions vae_options(const StopOptions& stop, double gtol, const Execution& execution) {
  LinearVaeOptions options;
  options.stop = stop;
  options.gtol = gtol;
  options.execution = execution;
  return options;
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "gaussian_vae_accumulate",
      [](GaussianVaeStats& stats, const CArray<T>& data, const CArray<T>& encoder_mean,
         const CArray<T>& encoder_log_variance, const CArray<T>& decoder_mean, const CArray<T>& decoder_log_variance,
         const std::string& decoder_variance, const Eigen::VectorXd& prior_log_variance) {
        const DecoderVariance variance = parse_decoder_variance(decoder_variance);
        const DataRef<T> x = as_data(data), mean = as_data(encoder_mean), log_variance = as_data(encoder_log_variance);
        const DataRef<T> decoded = as_data(decoder_mean), decoded_log_variance = as_data(decoder_log_variance);
        // Safe without the GIL: the arrays are kept alive by the caller's references, and `stats` is only touched
        // here. A shape that does not fit raises std::invalid_argument, which pybind11 turns into ValueError.
        py::gil_scoped_release release;
        accumulate_gaussian_vae<T>(x, mean, log_variance, decoded, decoded_log_variance, variance, prior_log_variance,
                                   stats);
      },
      py::arg("stats"), py::arg("data"), py::arg("encoder_mean"), py::arg("encoder_log_variance"),
      py::arg("decoder_mean"), py::arg("decoder_log_variance"), py::arg("decoder_variance"),
      py::arg("prior_log_variance"),
      "Adds one mini-batch to stats: data (n, D), encoder means and log-variances (n, H), decoder means (S*n, D) "
      "sample-major, decoder log-variances (1, 1), (1, D) or (S*n, D), prior log-variances (H) or empty.");

  m.def(
      "fit_linear_vae",
      [](const CArray<T>& data, const py::dict& initial, const StopOptions& stop, double gtol, int n_threads,
         Index chunk_size, const Callback& callback) {
        const DataRef<T> view = as_data(data);
        const LinearVaeOptions options = vae_options(stop, gtol, make_execution(n_threads, chunk_size, &data));
        const LinearVaeParams start = vae_params_from_dict(initial);
        const IterationCallback on_iteration = wrap_callback(callback);
        return vae_fit_to_dict(run_without_gil([&] { return fit_linear_vae<T>(view, start, options, on_iteration); }));
      },
      py::arg("data"), py::arg("initial"), py::arg("stop"), py::arg("gtol") = 1e-10, py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      "The linear VAE by L-BFGS on its closed-form ELBO, after one pass for the data's moments.");

  m.def(
      "linear_vae_elbo_samples",
      [](const CArray<T>& data, const py::dict& params, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const LinearVaeParams p = vae_params_from_dict(params);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] { return linear_vae_elbo_samples<T>(view, p, execution); });
      },
      py::arg("data"), py::arg("params"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "(n_samples) the closed-form ELBO of each sample.");

  m.def(
      "linear_vae_encode",
      [](const CArray<T>& data, const py::dict& params, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const LinearVaeParams p = vae_params_from_dict(params);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] { return linear_vae_encode<T>(view, p, execution); });
      },
      py::arg("data"), py::arg("params"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "(n_samples, n_components) the encoder means V x + c.");
}

}  // namespace

void bind_vae(py::module_& m) {
  bind_statistics<GaussianVaeStats>(
      m, "GaussianVaeStats",
      "Sums over the data points of mini-batches of a Gaussian VAE (ELBO, entropy-sum terms, squared errors, "
      "encoder moments); merge with +=, picklable.",
      [](const GaussianVaeStats& s) {
        return py::make_tuple(s.count, s.reconstruction, s.kl_divergence, s.posterior_entropy, s.prior_entropy,
                              s.observable_entropy, s.log_encoder_variance, s.encoder_mean_square, s.encoder_variance,
                              s.squared_error);
      },
      [](const py::tuple& state) {
        if (state.size() != 10) throw std::runtime_error("invalid GaussianVaeStats state");
        GaussianVaeStats s;
        s.count = state[0].cast<double>();
        s.reconstruction = state[1].cast<double>();
        s.kl_divergence = state[2].cast<double>();
        s.posterior_entropy = state[3].cast<double>();
        s.prior_entropy = state[4].cast<double>();
        s.observable_entropy = state[5].cast<double>();
        s.log_encoder_variance = state[6].cast<double>();
        s.encoder_mean_square = state[7].cast<Eigen::VectorXd>();
        s.encoder_variance = state[8].cast<Eigen::VectorXd>();
        s.squared_error = state[9].cast<Eigen::VectorXd>();
        return s;
      })
      .def_property_readonly("count", [](const GaussianVaeStats& s) { return s.count; })
      .def_property_readonly("reconstruction", [](const GaussianVaeStats& s) { return s.reconstruction; })
      .def_property_readonly("kl_divergence", [](const GaussianVaeStats& s) { return s.kl_divergence; })
      .def_property_readonly("encoder_mean_square", [](const GaussianVaeStats& s) { return s.encoder_mean_square; })
      .def_property_readonly("encoder_variance", [](const GaussianVaeStats& s) { return s.encoder_variance; })
      .def_property_readonly("squared_error", [](const GaussianVaeStats& s) { return s.squared_error; });

  // std::invalid_argument (no data points, a variant without a closed form) reaches Python as ValueError.
  m.def(
      "gaussian_vae_terms", [](const GaussianVaeStats& stats) { return elbo_terms_to_dict(gaussian_vae_terms(stats)); },
      py::arg("stats"), "F and the entropy sum's terms per data point, from the sums.");
  m.def(
      "gaussian_vae_optimal_terms",
      [](const GaussianVaeStats& stats, const std::string& decoder_variance, bool learned_prior) {
        return elbo_terms_to_dict(
            gaussian_vae_optimal_terms(stats, parse_decoder_variance(decoder_variance), learned_prior));
      },
      py::arg("stats"), py::arg("decoder_variance"), py::arg("learned_prior"),
      "F and the entropy sum per data point with the optimal decoder (and, if learned_prior, prior) variances.");
  m.def("gaussian_vae_optimal_noise_variance", &gaussian_vae_optimal_noise_variance, py::arg("stats"),
        "sigma^2* = (1/(N D)) sum_n E||x_n - mu(z)||^2.");
  m.def("gaussian_vae_optimal_noise_variances", &gaussian_vae_optimal_noise_variances, py::arg("stats"),
        "(n_features) sigma_d^2* = (1/N) sum_n E(x_nd - mu_d(z))^2.");
  m.def("gaussian_vae_optimal_prior_variances", &gaussian_vae_optimal_prior_variances, py::arg("stats"),
        "(n_latent) alpha_h^2* = (1/N) sum_n (nu_nh^2 + tau_nh^2).");

  m.def(
      "fit_linear_vae_from_moments",
      [](const Moments& moments, const py::dict& initial, const StopOptions& stop, double gtol,
         const Callback& callback) {
        const LinearVaeOptions options = vae_options(stop, gtol, make_execution(1, 0));
        const LinearVaeParams start = vae_params_from_dict(initial);
        const IterationCallback on_iteration = wrap_callback(callback);
        return vae_fit_to_dict(
            run_without_gil([&] { return fit_linear_vae_from_moments(moments, start, options, on_iteration); }));
      },
      py::arg("moments"), py::arg("initial"), py::arg("stop"), py::arg("gtol") = 1e-10,
      py::arg("callback") = py::none(), "The linear VAE by L-BFGS on its closed-form ELBO, from the data's moments.");
  m.def(
      "linear_vae_terms",
      [](const Moments& moments, const py::dict& params) {
        return elbo_terms_to_dict(linear_vae_terms(moments, vae_params_from_dict(params)));
      },
      py::arg("moments"), py::arg("params"),
      "The linear VAE's closed-form F and entropy-sum terms per sample for data with these moments.");

  // float32 first: pybind11 then matches float32 arrays without converting them to float64.
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
