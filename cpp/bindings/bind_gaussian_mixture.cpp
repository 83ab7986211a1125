// Gaussian mixtures: EM, initialisation (from k-means labels or random responsibilities), scoring.
#include <string>

#include "common.hpp"
#include "entrosum/gaussian_mixture.hpp"

namespace entrosum::bindings {

namespace {

CovarianceType parse_covariance_type(const std::string& name) {
  if (name == "full") return CovarianceType::full;
  if (name == "tied") return CovarianceType::tied;
  if (name == "diag") return CovarianceType::diag;
  if (name == "spherical") return CovarianceType::spherical;
  throw py::value_error("covariance_type must be 'full', 'tied', 'diag' or 'spherical', got '" + name + "'");
}

GaussianMixtureParams make_params(const std::string& type, const Eigen::VectorXd& weights, const Eigen::MatrixXd& means,
                                  const Eigen::MatrixXd& covariances, const Eigen::MatrixXd& precision_cholesky) {
  GaussianMixtureParams p;
  p.covariance_type = parse_covariance_type(type);
  p.weights = weights;
  p.means = means;
  p.covariances = covariances;
  p.precision_cholesky = precision_cholesky;
  return p;
}

Results params_to_dict(const GaussianMixtureParams& p) {
  Results out;
  out["weights"] = p.weights;
  out["means"] = p.means;
  out["covariances"] = p.covariances;
  out["precision_cholesky"] = p.precision_cholesky;
  return out;
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "gmm_fit",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const std::string& type,
         const Eigen::VectorXd& weights, const Eigen::MatrixXd& means, const Eigen::MatrixXd& covariances,
         const Eigen::MatrixXd& precision_cholesky, double reg_covar, const StopOptions& stop, int n_threads,
         Index chunk_size, const Callback& callback) {
        const DataRef<T> view = as_data(data);
        GaussianMixtureOptions options;
        options.reg_covar = reg_covar;
        options.stop = stop;
        options.execution = make_execution(n_threads, chunk_size, &data);
        const GaussianMixtureParams initial = make_params(type, weights, means, covariances, precision_cholesky);
        const IterationCallback on_iteration = wrap_callback(callback);
        const GaussianMixtureFit fit = run_without_gil(
            [&] { return fit_gaussian_mixture<T>(view, sample_weight, initial, options, on_iteration); });
        Results out = params_to_dict(fit.params);
        add_monitor(out, fit.monitor);
        return out;
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
      py::arg("covariances"), py::arg("precision_cholesky"), py::arg("reg_covar"), py::arg("stop"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      "EM for a Gaussian mixture from initial parameters (stacked covariances, see GaussianMixtureParams).");

  m.def(
      "gmm_init_from_labels",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const LabelArray& labels, Index n_components,
         const std::string& type, double reg_covar, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        check_labels(labels, view.rows(), n_components);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const CovarianceType covariance_type = parse_covariance_type(type);
        const ResponsibilitySource source = label_responsibilities(labels.data());
        return params_to_dict(run_without_gil([&] {
          return gaussian_mixture_from_responsibilities<T>(view, sample_weight, source, n_components, covariance_type,
                                                           reg_covar, execution);
        }));
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("labels"), py::arg("n_components"), py::arg("covariance_type"),
      py::arg("reg_covar"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "Parameters from one-hot responsibilities given by labels (-1: none).");

  m.def(
      "gmm_init_random",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, std::uint64_t seed, Index n_components,
         const std::string& type, double reg_covar, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const CovarianceType covariance_type = parse_covariance_type(type);
        const ResponsibilitySource source = random_responsibilities(seed);
        return params_to_dict(run_without_gil([&] {
          return gaussian_mixture_from_responsibilities<T>(view, sample_weight, source, n_components, covariance_type,
                                                           reg_covar, execution);
        }));
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("seed"), py::arg("n_components"), py::arg("covariance_type"),
      py::arg("reg_covar"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "Parameters from random responsibilities.");

  m.def(
      "gmm_score",
      [](const CArray<T>& data, const std::string& type, const Eigen::VectorXd& weights, const Eigen::MatrixXd& means,
         const Eigen::MatrixXd& precision_cholesky, bool with_responsibilities, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const GaussianMixtureParams params = make_params(type, weights, means, Eigen::MatrixXd(), precision_cholesky);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        RowMatrix<double> resp;
        Eigen::VectorXd log_likelihood = run_without_gil([&] {
          return gaussian_mixture_score<T>(view, params, with_responsibilities ? &resp : nullptr, execution);
        });
        return py::make_tuple(log_likelihood, with_responsibilities ? py::cast(resp) : py::none());
      },
      py::arg("data"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"), py::arg("precision_cholesky"),
      py::arg("with_responsibilities"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "(log p(x_n), responsibilities or None).");
}

}  // namespace

void bind_gaussian_mixture(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
  m.def(
      "gmm_precision_cholesky",
      [](const std::string& type, const Eigen::MatrixXd& means, const Eigen::MatrixXd& covariances) {
        GaussianMixtureParams p = make_params(type, Eigen::VectorXd::Ones(means.rows()), means, covariances, {});
        compute_precision_cholesky(p);
        return p.precision_cholesky;
      },
      py::arg("covariance_type"), py::arg("means"), py::arg("covariances"),
      "Precision Cholesky factors (stacked) from covariances (stacked).");
  m.def(
      "gmm_covariances",
      [](const std::string& type, const Eigen::MatrixXd& means, const Eigen::MatrixXd& precision_cholesky) {
        GaussianMixtureParams p = make_params(type, Eigen::VectorXd::Ones(means.rows()), means, {}, precision_cholesky);
        compute_covariances_from_precision_cholesky(p);
        return p.covariances;
      },
      py::arg("covariance_type"), py::arg("means"), py::arg("precision_cholesky"),
      "Covariances (stacked) from precision Cholesky factors (stacked).");
}

}  // namespace entrosum::bindings
