// The compiled module entrosum._core_<variant> (one per CPU build; entrosum/_core.py picks one): only wires
// the per-concept binding files together.
#include "common.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/version.hpp"

namespace entrosum::bindings {
void bind_data(py::module_& m);
void bind_entropy(py::module_& m);
void bind_monitor(py::module_& m);
void bind_linear_gaussian(py::module_& m);
void bind_kmeans(py::module_& m);
void bind_mixture(py::module_& m);
void bind_gaussian_mixture(py::module_& m);
void bind_discrete_mixture(py::module_& m);
void bind_discrete_mixture_csr(py::module_& m);
void bind_mixed_mixture(py::module_& m);
void bind_model_io(py::module_& m);
void bind_sparse_coding(py::module_& m);
void bind_vae(py::module_& m);
void bind_binary(py::module_& m);
}  // namespace entrosum::bindings

PYBIND11_MODULE(ENTROSUM_MODULE_NAME, m) {
  namespace py = pybind11;
  m.doc() = "entrosum's C++ core (private; use the entrosum package).";
  m.attr("__version__") = ENTROSUM_VERSION_STRING;
  m.attr("cpu_variant") = ENTROSUM_CPU_VARIANT;
  py::register_exception<entrosum::NumericalError>(m, "NumericalError", PyExc_ValueError);
  py::register_exception<entrosum::bindings::OutOfMemory>(m, "OutOfMemory", PyExc_MemoryError);
  entrosum::bindings::bind_data(m);
  entrosum::bindings::bind_entropy(m);
  entrosum::bindings::bind_monitor(m);
  entrosum::bindings::bind_linear_gaussian(m);
  entrosum::bindings::bind_kmeans(m);
  entrosum::bindings::bind_mixture(m);
  entrosum::bindings::bind_gaussian_mixture(m);
  entrosum::bindings::bind_discrete_mixture(m);
  entrosum::bindings::bind_discrete_mixture_csr(m);
  entrosum::bindings::bind_mixed_mixture(m);
  entrosum::bindings::bind_model_io(m);
  entrosum::bindings::bind_sparse_coding(m);
  entrosum::bindings::bind_vae(m);
  entrosum::bindings::bind_binary(m);
}
