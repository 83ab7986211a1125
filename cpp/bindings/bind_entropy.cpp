// The closed-form entropies, exposed so Python can test them against numerical references.
#include <Eigen/Core>

#include "common.hpp"
#include "entrosum/core/entropy.hpp"

namespace entrosum::bindings {

void bind_entropy(py::module_& m) {
  auto e = m.def_submodule("entropy", "Closed-form entropies and pseudo-entropies, in nats.");
  e.def(
      "gaussian_from_cholesky", [](const Eigen::MatrixXd& factor) { return entropy::gaussian_from_cholesky(factor); },
      py::arg("cholesky_factor"), "Entropy of N(., L Lᵀ) from its lower Cholesky factor L.");
  e.def(
      "gaussian_diagonal", [](const Eigen::VectorXd& v) { return entropy::gaussian_diagonal(v); },
      py::arg("variances"));
  e.def("gaussian_isotropic", &entropy::gaussian_isotropic, py::arg("dim"), py::arg("variance"));
  e.def("laplace", &entropy::laplace, py::arg("scale"));
  e.def("gaussian_expected_abs", &entropy::gaussian_expected_abs, py::arg("mean"), py::arg("sd"),
        "E|z| for z ~ N(mean, sd²).");
  e.def("bernoulli", &entropy::bernoulli, py::arg("p"));
  e.def("categorical", [](const Eigen::VectorXd& p) { return entropy::categorical(p); }, py::arg("probabilities"));
  e.def("poisson", &entropy::poisson, py::arg("rate"), "True entropy of Poisson(rate).");
  e.def("poisson_pseudo", &entropy::poisson_pseudo, py::arg("rate"), "Pseudo-entropy rate − rate·log(rate).");
}

}  // namespace entrosum::bindings
