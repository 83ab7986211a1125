// Passes over data that every estimator uses for validation.
#include "common.hpp"
#include "entrosum/moments.hpp"

namespace entrosum::bindings {

namespace {

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "first_nonfinite_row",
      [](const CArray<T>& data, int n_threads) {
        if (data.ndim() != 2) throw py::value_error("expected a 2-D array");
        const DataRef<T> view = Eigen::Map<const RowMatrix<T>>(data.data(), data.shape(0), data.shape(1));
        const Execution execution = make_execution(n_threads, 0);
        return run_without_gil([&] { return first_nonfinite_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, "Index of the first row with NaN or inf, or -1.");
}

}  // namespace

void bind_data(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
