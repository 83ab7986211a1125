// k-means and k-means++ seeding, which initialise every mixture family.
#include <pybind11/stl.h>

#include <algorithm>
#include <vector>

#include "checks.hpp"
#include "common.hpp"
#include "entrosum/core/random.hpp"
#include "entrosum/mixtures/kmeans.hpp"

namespace entrosum::bindings {

namespace {

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "kmeans",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed,
         int max_iter, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_sample_weight(sample_weight, view.rows());
        check_at_least("n_clusters", n_clusters, 1);
        if (n_clusters > view.rows()) throw py::value_error("n_clusters must be at most the number of rows");
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
      "kmeans_assign",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const Eigen::MatrixXd& centroids,
         const Eigen::RowVectorXd& shift, const LabelArray& labels, Index row_offset, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_sample_weight(sample_weight, view.rows());
        check_at_least("the number of centroids", centroids.rows(), 1);
        if (labels.ndim() != 1 || labels.size() != view.rows())
          throw py::value_error("labels must have one entry per row");
        if (centroids.cols() != view.cols() || shift.size() != view.cols())
          throw py::value_error("centroids and shift must have n_features columns");
        py::array_t<int> updated(labels.size());
        std::copy(labels.data(), labels.data() + labels.size(), updated.mutable_data());
        int* out = updated.mutable_data();
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        KMeansStats stats = run_without_gil(
            [&] { return kmeans_assign<T>(view, sample_weight, centroids, shift, out, row_offset, execution); });
        return py::make_tuple(std::move(stats), updated);
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("centroids"), py::arg("shift"), py::arg("labels"),
      py::arg("row_offset") = 0, py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "One Lloyd assignment over a block of rows: (mergeable KMeansStats, the new labels); labels holds the "
      "previous ones (-1 at first), farthest rows are reported as row_offset + row.");

  m.def(
      "kmeans_plusplus",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, Index n_clusters, std::uint64_t seed,
         int n_threads) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_sample_weight(sample_weight, view.rows());
        check_at_least("n_clusters", n_clusters, 1);
        if (n_clusters > view.rows()) throw py::value_error("n_clusters must be at most the number of rows");
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
  using FarRow = KMeansStats::FarRow;
  bind_statistics<KMeansStats>(
      m, "KMeansStats", "Sums of a Lloyd assignment over rows (per cluster), mergeable and picklable.",
      [](const KMeansStats& s) { return py::make_tuple(s.sums, s.counts, s.inertia, s.changed, s.farthest, s.keep); },
      [](const py::tuple& state) {
        if (state.size() != 6) throw std::runtime_error("invalid KMeansStats state");
        KMeansStats s;
        s.sums = state[0].cast<Eigen::MatrixXd>();
        s.counts = state[1].cast<Eigen::VectorXd>();
        s.inertia = state[2].cast<double>();
        s.changed = state[3].cast<Index>();
        s.farthest = state[4].cast<std::vector<FarRow>>();
        s.keep = state[5].cast<std::size_t>();
        return s;
      })
      .def_property_readonly("sums", [](const KMeansStats& s) { return s.sums; })
      .def_property_readonly("counts", [](const KMeansStats& s) { return s.counts; })
      .def_property_readonly("inertia", [](const KMeansStats& s) { return s.inertia; })
      .def_property_readonly("changed", [](const KMeansStats& s) { return s.changed; })
      .def_property_readonly("farthest", [](const KMeansStats& s) {
        // the rows an empty cluster moves to, farthest first
        std::vector<FarRow> rows = s.farthest;
        std::sort(rows.begin(), rows.end(), KMeansStats::farther);
        std::vector<Index> indices;
        for (const FarRow& row : rows) indices.push_back(row.second);
        return indices;
      });
  m.def(
      "random_uniforms",
      [](std::uint64_t seed, Index count) {
        check_at_least("count", count, 0);
        Random random(seed);
        Eigen::VectorXd values(count);
        for (Index i = 0; i < count; ++i) values(i) = random.uniform();
        return values;
      },
      py::arg("seed"), py::arg("count"), "The first draws of the library's uniform generator seeded with seed.");
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
