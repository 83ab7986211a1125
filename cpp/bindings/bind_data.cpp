// Passes over data that every estimator uses for validation, and the release of memory-mapped pages
// behind every pass.
#include <algorithm>
#include <cstdint>
#include <string>

#include "common.hpp"
#include "entrosum/core/moments.hpp"
#include "entrosum/mixtures/bernoulli_mixture.hpp"
#include "entrosum/mixtures/binomial_mixture.hpp"
#include "entrosum/mixtures/categorical_mixture.hpp"
#include "entrosum/mixtures/exponential_mixture.hpp"
#include "entrosum/mixtures/multinomial_mixture.hpp"
#include "entrosum/mixtures/poisson_mixture.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define ENTROSUM_HAS_MADVISE 1
#endif

namespace entrosum::bindings {

std::function<void(Index, Index)> release_hook(const py::array& data) {
#ifdef ENTROSUM_HAS_MADVISE
  if (data.ndim() != 2 || data.shape(0) == 0) return {};
  // Walk the chain of bases (a view, the np.memmap, its mmap.mmap): the mode of the np.memmap says whether
  // the mapping is shared ('r', 'r+', 'w+'), where dropped pages are read back unchanged.
  const py::object mmap_type = py::module_::import("mmap").attr("mmap");
  const py::object memmap_type = py::module_::import("numpy").attr("memmap");
  std::string mode;
  bool mapped = false;
  py::object object = py::reinterpret_borrow<py::object>(data);
  for (int depth = 0; depth < 64 && !object.is_none(); ++depth) {
    if (mode.empty() && py::isinstance(object, memmap_type)) {
      const py::object value = py::getattr(object, "mode", py::none());
      if (py::isinstance<py::str>(value)) mode = value.cast<std::string>();
    }
    if (py::isinstance(object, mmap_type)) {
      mapped = true;
      break;
    }
    object = py::getattr(object, "base", py::none());
  }
  if (!mapped || !(mode == "r" || mode == "r+" || mode == "w+")) return {};
  const auto start = reinterpret_cast<std::uintptr_t>(data.data());
  const auto row_bytes = static_cast<std::uintptr_t>(data.strides(0));
  const Index n_rows = data.shape(0);
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  return [start, row_bytes, n_rows, page](Index begin, Index end) {
    begin = std::clamp<Index>(begin, 0, n_rows);
    end = std::clamp<Index>(end, begin, n_rows);
    // Whole pages around the rows: a page shared with a neighbouring chunk that another thread is reading is
    // simply faulted back in from the page cache.
    const std::uintptr_t first = (start + static_cast<std::uintptr_t>(begin) * row_bytes) / page * page;
    const std::uintptr_t last = (start + static_cast<std::uintptr_t>(end) * row_bytes + page - 1) / page * page;
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  };
#else
  (void)data;
  return {};
#endif
}

namespace {

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "first_nonfinite_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_nonfinite_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, "Index of the first row with NaN or inf, or -1.");
  m.def(
      "sum_of_squares",
      [](const CArray<T>& data, int n_threads, Index chunk_size) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        return run_without_gil([&] {
          struct Sum {
            double value = 0.0;
            Sum& operator+=(const Sum& other) {
              value += other.value;
              return *this;
            }
          };
          const Index rows = resolve_chunk_size(execution, view.cols(), sizeof(T));
          return reduce_rows(
                     view.rows(), rows, execution, [] { return Sum(); },
                     [&](Index begin, Index end, Sum& into) {
                       into.value += view.middleRows(begin, end - begin).template cast<double>().squaredNorm();
                     })
              .value;
        });
      },
      py::arg("data"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0, "Σ_n ||x_n||² in double.");
  m.def(
      "first_non_binary_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_non_binary_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, "Index of the first row with a value other than 0 or 1, or -1.");
  m.def(
      "first_non_count_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_non_count_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, "Index of the first row with a negative or non-integer value, or -1.");
  m.def(
      "first_non_code_row",
      [](const CArray<T>& data, const Eigen::Matrix<Index, Eigen::Dynamic, 1>& n_levels, int n_threads) {
        const DataRef<T> view = as_data(data);
        CategoricalMixture::check_settings(CategoricalMixture::Settings{n_levels}, view.cols());
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_non_code_row<T>(view, n_levels, execution); });
      },
      py::arg("data"), py::arg("n_levels"), py::arg("n_threads") = 1,
      "Index of the first row with a value that is not a code in {0, ..., n_levels[d] - 1}, or -1.");
  m.def(
      "first_zero_total_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_zero_total_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1, "Index of the first row whose values are all 0, or -1.");
  m.def(
      "first_non_binomial_row",
      [](const CArray<T>& data, const Eigen::VectorXd& n_trials, int n_threads) {
        const DataRef<T> view = as_data(data);
        BinomialMixture::check_settings(BinomialMixture::Settings{n_trials}, view.cols());
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_non_binomial_row<T>(view, n_trials, execution); });
      },
      py::arg("data"), py::arg("n_trials"), py::arg("n_threads") = 1,
      "Index of the first row with a value that is not a whole number in [0, n_trials[d]], or -1.");
  m.def(
      "first_non_positive_row",
      [](const CArray<T>& data, int n_threads) {
        const DataRef<T> view = as_data(data);
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_non_positive_row<T>(view, execution); });
      },
      py::arg("data"), py::arg("n_threads") = 1,
      "Index of the first row with a value that is not a positive normal number, or -1.");
}

}  // namespace

void bind_data(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
