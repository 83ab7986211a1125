// Helpers shared by the binding files: array conversion, the interruption check, the iteration
// callback and the monitor's history as numpy arrays.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "entrosum/execution.hpp"
#include "entrosum/monitor.hpp"

namespace entrosum::bindings {

namespace py = pybind11;

/// A C-contiguous numpy array of T; pybind11 maps it onto DataRef<T> without a copy.
template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

/// Execution options whose interruption check polls Python's signal handlers. The check runs on the
/// thread that called into C++ (Python's main thread), between waves of blocks, with the GIL taken
/// only for that moment; a pending KeyboardInterrupt stays set and surfaces as the Python error.
inline Execution make_execution(int n_threads, Index chunk_size) {
  Execution execution;
  execution.n_threads = n_threads;
  execution.chunk_size = chunk_size;
  execution.interrupted = [] {
    py::gil_scoped_acquire acquire;
    return PyErr_CheckSignals() != 0;
  };
  return execution;
}

/// The monitor's history as a dict of numpy arrays, one entry per iteration.
py::dict history_to_dict(const std::vector<IterationRecord>& history);

/// One record as a dict of floats (for per-iteration callbacks).
py::dict record_to_dict(const IterationRecord& record);

/// Wraps a Python callable as an IterationCallback run with the GIL held; if it raises, its error is
/// kept set and the fit stops through Interrupted.
IterationCallback wrap_callback(const py::object& callback);

/// Runs `fit` without the GIL and turns Interrupted back into the pending Python error.
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
  }
}

}  // namespace entrosum::bindings
