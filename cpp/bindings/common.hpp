// Helpers shared by the binding files: array conversion, the interruption check, the iteration
// callback and the monitor's history as numpy arrays.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/typing.h>

#include <new>
#include <stdexcept>
#include <string>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum::bindings {

namespace py = pybind11;

/// A C-contiguous numpy array of T; pybind11 maps it onto DataRef<T> without a copy.
template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

/// The (n_samples, n_features) view of a 2-D C-contiguous array, without a copy.
template <typename T>
DataRef<T> as_data(const CArray<T>& array) {
  if (array.ndim() != 2) throw py::value_error("expected a 2-D array");
  return Eigen::Map<const RowMatrix<T>>(array.data(), array.shape(0), array.shape(1));
}

/// A dict of named results; the type only informs the stubs (dict[str, Any]).
using Results = py::typing::Dict<py::str, py::object>;

/// A per-iteration callback taking one record (record_to_dict), or None; typed for the stubs.
using Callback = py::typing::Optional<py::typing::Callable<void(py::typing::Dict<py::str, float>)>>;

/// Integer labels, one per row, each in [−1, n_components) (−1: no component).
using LabelArray = py::array_t<int, py::array::c_style>;

/// Checks labels before a ResponsibilitySource reads them.
inline void check_labels(const LabelArray& labels, Index n_rows, Index n_components) {
  if (labels.ndim() != 1 || labels.size() != n_rows) throw py::value_error("labels must have one entry per row");
  const int* values = labels.data();
  for (Index n = 0; n < n_rows; ++n)
    if (values[n] < -1 || values[n] >= n_components)
      throw py::value_error("labels must lie in [-1, n_components); row " + std::to_string(n) + " holds " +
                            std::to_string(values[n]));
}

/// For a 2-D array in a file mapped by np.memmap (or np.load(..., mmap_mode='r' / 'r+')): a hook that drops
/// the pages of rows a pass has finished with (madvise MADV_DONTNEED), so a pass over a file larger than
/// memory keeps only a few chunks resident. The pages stay in the page cache; reading them again costs a
/// page fault, not disk I/O. Empty for data in memory and for copy-on-write maps (mode 'c'), whose private
/// changes dropping would lose. Must be called with the GIL held.
std::function<void(Index, Index)> release_hook(const py::array& data);

/// Execution options whose interruption check polls Python's signal handlers. The check runs on the
/// thread that called into C++ (Python's main thread), before each chunk it takes, with the GIL taken
/// only for that moment; a pending KeyboardInterrupt stays set and surfaces as the Python error.
/// With `data`, passes over it release the pages of memory-mapped files behind them (release_hook).
inline Execution make_execution(int n_threads, Index chunk_size, const py::array* data = nullptr) {
  Execution execution;
  execution.n_threads = n_threads;
  execution.chunk_size = chunk_size;
  execution.interrupted = [] {
    py::gil_scoped_acquire acquire;
    return PyErr_CheckSignals() != 0;
  };
  if (data) execution.release_rows = release_hook(*data);
  return execution;
}

/// The monitor's history as a dict of numpy arrays, one entry per iteration.
py::typing::Dict<py::str, py::array> history_to_dict(const std::vector<IterationRecord>& history);

/// One record as a dict of floats (for per-iteration callbacks).
py::typing::Dict<py::str, float> record_to_dict(const IterationRecord& record);

/// Adds a finished fit's monitor to `out`: history, stop_reason, converged, setup_time, recoveries.
void add_monitor(py::dict& out, const ConvergenceMonitor& monitor);

/// Wraps a Python callable as an IterationCallback run with the GIL held; if it raises, its error is
/// kept set and the fit stops through Interrupted.
IterationCallback wrap_callback(const py::object& callback);

/// F and the entropy sum's terms as a dict of floats (elbo, entropy_sum, posterior_entropy, prior_entropy,
/// observable_entropy, data_term, prior_beta, observable_beta): what the chunk-level step API returns.
inline py::dict elbo_terms_to_dict(const ElboTerms& terms) {
  py::dict out;
  out["elbo"] = terms.elbo;
  out["entropy_sum"] = terms.entropy_sum();
  out["posterior_entropy"] = terms.posterior_entropy;
  out["prior_entropy"] = terms.prior_entropy;
  out["observable_entropy"] = terms.observable_entropy;
  out["data_term"] = terms.data_term;
  out["prior_beta"] = terms.prior_beta;
  out["observable_beta"] = terms.observable_beta;
  return out;
}

/// An entry of a parameter dict as an Eigen value, with an error naming a missing key.
template <typename Value>
Value dict_entry(const py::dict& params, const char* key) {
  if (!params.contains(key)) throw py::key_error(std::string("parameters lack '") + key + "'");
  try {
    return params[key].cast<Value>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string("parameters' '") + key + "' is not a numeric array of the expected dimensions");
  }
}

/// Binds a mergeable statistics type for the chunk-level step API: `a += b` and `a + b` merge (the type's
/// operator+=), `scaled(f)` multiplies every sum by f, and pickling goes through `state` / `restore`, so
/// Dask can ship the value between processes. The class reports its module as entrosum._core, which
/// re-exports whichever CPU build is loaded, so a pickle made by one build loads in another.
/// Merging checks the shapes (check_mergeable) and a restored state its consistency (check_consistent), both
/// found by argument-dependent lookup in checks.hpp, so that no Python value makes a merge write out of bounds.
template <typename Stats, typename State, typename Restore>
py::class_<Stats> bind_statistics(py::module_& m, const char* name, const char* doc, State state, Restore restore) {
  py::class_<Stats> cls(m, name, doc);
  cls.def(py::init<>())
      .def(
          "__iadd__",
          [](Stats& self, const Stats& other) -> Stats& {
            check_mergeable(self, other);
            self += other;
            return self;
          },
          py::arg("other"))
      .def(
          "__add__",
          [](const Stats& self, const Stats& other) {
            check_mergeable(self, other);
            Stats sum = self;
            sum += other;
            return sum;
          },
          py::arg("other"))
      .def(
          "scaled",
          [](const Stats& self, double factor) {
            Stats copy = self;
            copy.scale(factor);
            return copy;
          },
          py::arg("factor"), "A copy with every sum multiplied by factor.")
      .def("__copy__", [](const Stats& self) { return Stats(self); })
      .def(py::pickle(state, [restore](const py::tuple& values) {
        Stats restored = restore(values);
        check_consistent(restored);
        return restored;
      }));
  cls.attr("__module__") = "entrosum._core";
  return cls;
}

/// An allocation the machine could not satisfy, raised as Python's MemoryError with a message (std::bad_alloc
/// would give one that says nothing). The estimators check sizes first and name the parameter that sets them.
class OutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Runs `fit` without the GIL and turns Interrupted back into the pending Python error, std::bad_alloc into
/// OutOfMemory.
template <typename Fit>
auto run_without_gil(const Fit& fit) -> decltype(fit()) {
  try {
    // Safe: the fit reads numpy buffers kept alive by the caller's references and touches no Python
    // object; callbacks take the GIL themselves.
    py::gil_scoped_release release;
    return fit();
  } catch (const Interrupted&) {
    if (PyErr_Occurred()) throw py::error_already_set();
    throw py::value_error("fit interrupted");
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(
        "not enough memory for the arrays of this computation (the data's shape or n_components "
        "ask for more than the machine can allocate)");
  }
}

}  // namespace entrosum::bindings
