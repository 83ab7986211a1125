// The Bernoulli, Poisson and multinomial mixtures and k-means on scipy.sparse CSR data: the dense functions' twins,
// named <family>_csr_* and kmeans*_csr, each taking (indptr, indices, data, n_features) in place of the data array.
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "checks.hpp"
#include "common.hpp"
#include "csr_input.hpp"
#include "discrete_params.hpp"
#include "entrosum/mixtures/bernoulli_mixture.hpp"
#include "entrosum/mixtures/discrete_mixture_csr.hpp"
#include "entrosum/mixtures/kmeans.hpp"
#include "entrosum/mixtures/multinomial_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"
#include "mixture_common.hpp"

namespace entrosum::bindings {

namespace {

template <typename T>
void bind_kmeans_for(py::module_& m) {
  m.def(
      "kmeans_csr",
      [](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values, Index n_features,
         const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed, int max_iter, int n_threads,
         Index chunk_size) {
        const CsrRef<T> data = as_csr(indptr, indices, values, n_features);
        check_sample_weight(sample_weight, data.rows);
        check_at_least("n_clusters", n_clusters, 1);
        if (n_clusters > data.rows) throw py::value_error("n_clusters must be at most the number of rows");
        const Execution execution = make_execution(n_threads, chunk_size);
        const KMeansResult result =
            run_without_gil([&] { return kmeans_csr<T>(data, sample_weight, n_clusters, seed, max_iter, execution); });
        py::array_t<int> labels(static_cast<py::ssize_t>(result.labels.size()));
        std::copy(result.labels.begin(), result.labels.end(), labels.mutable_data());
        return py::typing::Tuple<py::array_t<double>, py::array_t<int>, py::float_, py::int_>(
            py::make_tuple(result.centroids, labels, result.inertia, result.n_iter));
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_features"), py::arg("sample_weight"),
      py::arg("n_clusters"), py::arg("seed"), py::arg("max_iter") = 100, py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, "k-means on CSR rows: (centroids, labels, inertia, n_iter).");
  m.def(
      "kmeans_plusplus_csr",
      [](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values, Index n_features,
         const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed, int n_threads) {
        const CsrRef<T> data = as_csr(indptr, indices, values, n_features);
        check_sample_weight(sample_weight, data.rows);
        check_at_least("n_clusters", n_clusters, 1);
        if (n_clusters > data.rows) throw py::value_error("n_clusters must be at most the number of rows");
        const Execution execution = make_execution(n_threads, 0);
        const std::vector<Index> chosen =
            run_without_gil([&] { return kmeans_plusplus_csr<T>(data, sample_weight, n_clusters, seed, execution); });
        return py::array_t<Index>(static_cast<py::ssize_t>(chosen.size()), chosen.data());
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_features"), py::arg("sample_weight"),
      py::arg("n_clusters"), py::arg("seed"), py::arg("n_threads") = 1, "Row indices chosen by k-means++ seeding.");
}

template <typename Family, typename T>
void bind_family_for(py::module_& m, const std::string& prefix) {
  using Settings = typename Family::Settings;
  m.def(
      (prefix + "_csr_fit").c_str(),
      [](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values, Index n_features,
         const Eigen::VectorXd& sample_weight, const Eigen::VectorXd& weights, const Eigen::MatrixXd& means,
         const Settings& settings, const StopOptions& stop, int n_threads, Index chunk_size, const Callback& callback) {
        const CsrRef<T> data = as_csr(indptr, indices, values, n_features);
        check_sample_weight(sample_weight, data.rows);
        DiscreteMixtureOptions<Family> options;
        options.settings = settings;
        options.stop = stop;
        options.execution = make_execution(n_threads, chunk_size);
        const DiscreteMixtureParams initial = make_params(weights, means);
        check_family_params<Family>(initial, settings, data.cols);
        const IterationCallback on_iteration = wrap_callback(callback);
        const DiscreteMixtureFit fit = run_without_gil(
            [&] { return fit_discrete_mixture_csr<Family, T>(data, sample_weight, initial, options, on_iteration); });
        Results out = params_to_dict(fit.params);
        add_monitor(out, fit.monitor);
        return out;
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_features"), py::arg("sample_weight"),
      py::arg("weights"), py::arg("means"), py::arg("settings"), py::arg("stop"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      "EM on CSR rows from initial weights (K,) and means (K, D).");

  // The initialising pass from one-hot labels (label -1: none) or, when labels is empty, random responsibilities.
  const auto initial_params = [](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values,
                                 Index n_features, const Eigen::VectorXd& sample_weight, const LabelArray* labels,
                                 std::uint64_t seed, Index n_components, const Settings& settings, int n_threads,
                                 Index chunk_size) {
    const CsrRef<T> data = as_csr(indptr, indices, values, n_features);
    check_n_components(n_components);
    check_sample_weight(sample_weight, data.rows);
    if (labels) check_labels(*labels, data.rows, n_components);
    const Execution execution = make_execution(n_threads, chunk_size);
    const ResponsibilitySource source = labels ? label_responsibilities(labels->data()) : random_responsibilities(seed);
    return params_to_dict(run_without_gil([&] {
      return discrete_mixture_from_initial_statistics<Family>(discrete_mixture_csr_responsibility_statistics<Family, T>(
                                                                  data, sample_weight, source, n_components, execution),
                                                              settings);
    }));
  };
  m.def((prefix + "_csr_init_from_labels").c_str(),
        [initial_params](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values,
                         Index n_features, const Eigen::VectorXd& sample_weight, const LabelArray& labels,
                         Index n_components, const Settings& settings, int n_threads, Index chunk_size) {
          return initial_params(indptr, indices, values, n_features, sample_weight, &labels, 0, n_components, settings,
                                n_threads, chunk_size);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_features"), py::arg("sample_weight"),
        py::arg("labels"), py::arg("n_components"), py::arg("settings"), py::arg("n_threads") = 1,
        py::arg("chunk_size") = 0, "Parameters from one-hot responsibilities given by labels (-1: none).");
  m.def((prefix + "_csr_init_random").c_str(),
        [initial_params](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values,
                         Index n_features, const Eigen::VectorXd& sample_weight, std::uint64_t seed, Index n_components,
                         const Settings& settings, int n_threads, Index chunk_size) {
          return initial_params(indptr, indices, values, n_features, sample_weight, nullptr, seed, n_components,
                                settings, n_threads, chunk_size);
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_features"), py::arg("sample_weight"),
        py::arg("seed"), py::arg("n_components"), py::arg("settings"), py::arg("n_threads") = 1,
        py::arg("chunk_size") = 0, "Parameters from random responsibilities.");

  m.def((prefix + "_csr_e_step").c_str(),
        [](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values, Index n_features,
           const Eigen::VectorXd& sample_weight, const py::dict& params, const Settings& settings, int n_threads,
           Index chunk_size, Index row_offset) {
          const CsrRef<T> data = as_csr(indptr, indices, values, n_features);
          check_sample_weight(sample_weight, data.rows);
          const DiscreteMixtureParams p = params_from_dict(params);
          check_family_params<Family>(p, settings, data.cols);
          const Execution execution = make_execution(n_threads, chunk_size);
          DiscreteMixtureStats stats = run_without_gil(
              [&] { return discrete_mixture_csr_e_step<Family, T>(data, sample_weight, p, settings, execution); });
          offset_rows(stats.totals, row_offset);
          return stats;
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_features"), py::arg("sample_weight"),
        py::arg("params"), py::arg("settings"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
        py::arg("row_offset") = 0, "The E-step over CSR rows: mergeable sums, the data term included.");

  m.def((prefix + "_csr_score").c_str(),
        [](const RowStartArray& indptr, const ColumnIndexArray& indices, const CArray<T>& values, Index n_features,
           const Eigen::VectorXd& weights, const Eigen::MatrixXd& means, const Settings& settings,
           bool with_responsibilities, int n_threads, Index chunk_size) {
          const CsrRef<T> data = as_csr(indptr, indices, values, n_features);
          const DiscreteMixtureParams params = make_params(weights, means);
          check_family_params<Family>(params, settings, data.cols);
          const Execution execution = make_execution(n_threads, chunk_size);
          RowMatrix<double> resp;
          Eigen::VectorXd log_likelihood = run_without_gil([&] {
            return discrete_mixture_csr_score<Family, T>(data, params, settings,
                                                         with_responsibilities ? &resp : nullptr, execution);
          });
          return py::make_tuple(log_likelihood, with_responsibilities ? py::cast(resp) : py::none());
        },
        py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_features"), py::arg("weights"),
        py::arg("means"), py::arg("settings"), py::arg("with_responsibilities"), py::arg("n_threads") = 1,
        py::arg("chunk_size") = 0, "(log p(x_n), responsibilities or None) of CSR rows.");
}

}  // namespace

void bind_discrete_mixture_csr(py::module_& m) {
  bind_kmeans_for<float>(m);
  bind_kmeans_for<double>(m);
  bind_family_for<BernoulliMixture, float>(m, "bernoulli_mixture");
  bind_family_for<BernoulliMixture, double>(m, "bernoulli_mixture");
  bind_family_for<PoissonMixture, float>(m, "poisson_mixture");
  bind_family_for<PoissonMixture, double>(m, "poisson_mixture");
  bind_family_for<MultinomialMixture, float>(m, "multinomial_mixture");
  bind_family_for<MultinomialMixture, double>(m, "multinomial_mixture");
}

}  // namespace entrosum::bindings
