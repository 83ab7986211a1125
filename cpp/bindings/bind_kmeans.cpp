// k-means and k-means++ seeding, which initialise every mixture family.
#include <algorithm>
#include <vector>

#include "common.hpp"
#include "entrosum/kmeans.hpp"

namespace entrosum::bindings {

namespace {

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "kmeans",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed,
         int max_iter, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const KMeansResult result =
            run_without_gil([&] { return kmeans<T>(view, sample_weight, n_clusters, seed, max_iter, execution); });
        py::array_t<int> labels(static_cast<py::ssize_t>(result.labels.size()));
        std::copy(result.labels.begin(), result.labels.end(), labels.mutable_data());
        // (centroids, labels, inertia, n_iter), typed for the stubs.
        return py::typing::Tuple<py::array_t<double>, py::array_t<int>, py::float_, py::int_>(
            py::make_tuple(result.centroids, labels, result.inertia, result.n_iter));
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("n_clusters"), py::arg("seed"), py::arg("max_iter") = 100,
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, "k-means: (centroids, labels, inertia, n_iter).");

  m.def(
      "kmeans_plusplus",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed,
         int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0, &data);
        const std::vector<Index> chosen =
            run_without_gil([&] { return kmeans_plusplus<T>(view, sample_weight, n_clusters, seed, execution); });
        return py::array_t<Index>(static_cast<py::ssize_t>(chosen.size()), chosen.data());
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("n_clusters"), py::arg("seed"), py::arg("n_threads") = 1,
      "Row indices chosen by k-means++ seeding.");
}

}  // namespace

void bind_kmeans(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
