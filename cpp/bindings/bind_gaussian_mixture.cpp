// Gaussian mixtures: EM, initialisation (k-means, k-means++, random responsibilities), scoring.
#include <string>

#include "common.hpp"
#include "entrosum/gaussian_mixture.hpp"
#include "entrosum/kmeans.hpp"
#include "entrosum/random.hpp"

namespace entrosum::bindings {

namespace {

template <typename T>
DataRef<T> as_data(const CArray<T>& array) {
  if (array.ndim() != 2) throw py::value_error("expected a 2-D array");
  return Eigen::Map<const RowMatrix<T>>(array.data(), array.shape(0), array.shape(1));
}

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

py::dict params_to_dict(const GaussianMixtureParams& p) {
  py::dict out;
  out["weights"] = p.weights;
  out["means"] = p.means;
  out["covariances"] = p.covariances;
  out["precision_cholesky"] = p.precision_cholesky;
  return out;
}

/// Initial responsibilities that are uniform random numbers per row, from (seed, row) alone so they do
/// not depend on the chunking or the threads.
ResponsibilitySource random_responsibilities(std::uint64_t seed) {
  return [seed](Index begin, Index end, Eigen::Ref<RowMatrix<double>> resp) {
    for (Index n = begin; n < end; ++n) {
      Random random(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(n + 1)));
      for (Index k = 0; k < resp.cols(); ++k) resp(n - begin, k) = random.uniform();
      resp.row(n - begin) /= resp.row(n - begin).sum();
    }
  };
}

/// One-hot responsibilities from labels; a label of −1 gives a row no responsibility at all.
ResponsibilitySource label_responsibilities(const py::array_t<int, py::array::c_style>& labels) {
  const int* data = labels.data();
  return [data](Index begin, Index end, Eigen::Ref<RowMatrix<double>> resp) {
    resp.setZero();
    for (Index n = begin; n < end; ++n)
      if (data[n] >= 0) resp(n - begin, data[n]) = 1.0;
  };
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "gmm_fit",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const std::string& type,
         const Eigen::VectorXd& weights, const Eigen::MatrixXd& means, const Eigen::MatrixXd& covariances,
         const Eigen::MatrixXd& precision_cholesky, double reg_covar, const StopOptions& stop, int n_threads,
         Index chunk_size, const py::object& callback) {
        const DataRef<T> view = as_data(data);
        GaussianMixtureOptions options;
        options.reg_covar = reg_covar;
        options.stop = stop;
        options.execution = make_execution(n_threads, chunk_size);
        const GaussianMixtureParams initial = make_params(type, weights, means, covariances, precision_cholesky);
        const IterationCallback on_iteration = wrap_callback(callback);
        const GaussianMixtureFit fit =
            run_without_gil([&] { return fit_gaussian_mixture<T>(view, sample_weight, initial, options, on_iteration); });
        py::dict out = params_to_dict(fit.params);
        out["history"] = history_to_dict(fit.monitor.history());
        out["stop_reason"] = to_string(fit.monitor.stop_reason());
        out["converged"] = fit.monitor.converged();
        out["setup_time"] = fit.monitor.setup_seconds();
        return out;
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
      py::arg("covariances"), py::arg("precision_cholesky"), py::arg("reg_covar"), py::arg("stop"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      "EM for a Gaussian mixture from initial parameters (stacked covariances, see GaussianMixtureParams).");

  m.def(
      "gmm_init_from_labels",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const py::array_t<int, py::array::c_style>& labels,
         Index n_components, const std::string& type, double reg_covar, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        if (labels.size() != view.rows()) throw py::value_error("labels must have one entry per row");
        const Execution execution = make_execution(n_threads, chunk_size);
        const CovarianceType covariance_type = parse_covariance_type(type);
        const ResponsibilitySource source = label_responsibilities(labels);
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
        const Execution execution = make_execution(n_threads, chunk_size);
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
        const Execution execution = make_execution(n_threads, chunk_size);
        RowMatrix<double> resp;
        Eigen::VectorXd log_likelihood = run_without_gil(
            [&] { return gaussian_mixture_score<T>(view, params, with_responsibilities ? &resp : nullptr, execution); });
        return py::make_tuple(log_likelihood, with_responsibilities ? py::cast(resp) : py::none());
      },
      py::arg("data"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"), py::arg("precision_cholesky"),
      py::arg("with_responsibilities"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "(log p(x_n), responsibilities or None).");

  m.def(
      "kmeans",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed, int max_iter,
         int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, chunk_size);
        const KMeansResult result =
            run_without_gil([&] { return kmeans<T>(view, sample_weight, n_clusters, seed, max_iter, execution); });
        py::array_t<int> labels(static_cast<py::ssize_t>(result.labels.size()));
        std::copy(result.labels.begin(), result.labels.end(), labels.mutable_data());
        return py::make_tuple(result.centroids, labels, result.inertia, result.n_iter);
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("n_clusters"), py::arg("seed"), py::arg("max_iter") = 100,
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, "k-means: (centroids, labels, inertia, n_iter).");

  m.def(
      "kmeans_plusplus",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed,
         int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0);
        const std::vector<Index> chosen =
            run_without_gil([&] { return kmeans_plusplus<T>(view, sample_weight, n_clusters, seed, execution); });
        return py::array_t<Index>(static_cast<py::ssize_t>(chosen.size()), chosen.data());
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("n_clusters"), py::arg("seed"), py::arg("n_threads") = 1,
      "Row indices chosen by k-means++ seeding.");
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
