// What every mixture shares, exposed for tests: the E-step's normalisation of log joints into
// responsibilities, and the floating-point mode of passes over data.
#include <limits>

#include "common.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/mixtures/mixture.hpp"

namespace entrosum::bindings {

namespace {

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "mixture_responsibilities",
      [](const CArray<T>& log_joint, const Eigen::VectorXd& sample_weight) {
        if (log_joint.ndim() != 2) throw py::value_error("log_joint must be 2-D (n_samples, n_components)");
        if (sample_weight.size() && sample_weight.size() != log_joint.shape(0))
          throw py::value_error("sample_weight must be empty or hold one weight per row");
        RowMatrix<T> resp = as_data(log_joint);
        MixtureTotals totals(resp.cols());
        Eigen::VectorXd row_log_likelihood;
        normalise_log_joint<T>(resp, sample_weight, totals, row_log_likelihood);  // the kernel alone, caller's FP mode
        return py::make_tuple(resp, totals.log_likelihood, totals.resp_entropy, totals.resp_sum);
      },
      py::arg("log_joint"), py::arg("sample_weight"),
      "The E-step's kernel on (n, K) log joints: (w_n r_nk as handed to the M-step, Σ w log p(x), Σ w H[r], N_k).");
}

}  // namespace

void bind_mixture(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
  m.def(
      "passes_flush_subnormals",
      [](int n_threads) {
        // Halves the smallest normal double inside a pass on every thread: 0 where subnormals are flushed.
        Execution execution;
        execution.n_threads = n_threads;
        const double result = reduce_rows(
            Index(64), Index(1), execution, [] { return 0.0; },
            [](Index, Index, double& largest) {
              volatile double smallest = std::numeric_limits<double>::min();
              const double half = smallest * 0.5;
              if (half > largest) largest = half;
            });
        return result == 0.0;
      },
      py::arg("n_threads") = 2, "Whether every thread of a pass over data flushes subnormal results to zero.");
}

}  // namespace entrosum::bindings
