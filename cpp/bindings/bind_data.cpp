// Passes over data that every estimator uses for validation.
#include "common.hpp"
#include "entrosum/bernoulli_mixture.hpp"
#include "entrosum/moments.hpp"
#include "entrosum/poisson_mixture.hpp"

namespace entrosum::bindings {

namespace {

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "first_nonfinite_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0);
        return run_without_gil([&] { return first_nonfinite_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, "Index of the first row with NaN or inf, or -1.");
  m.def(
      "first_non_binary_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0);
        return run_without_gil([&] { return first_non_binary_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, "Index of the first row with a value other than 0 or 1, or -1.");
  m.def(
      "first_non_count_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0);
        return run_without_gil([&] { return first_non_count_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1,
      "Index of the first row with a negative or non-integer value, or -1.");
}

}  // namespace

void bind_data(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
