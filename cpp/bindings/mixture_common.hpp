// Helpers of the mixture binding files: the state of what every mixture's statistics carry (for pickling)
// and the components an M-step re-seeded, as Python values.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "entrosum/mixtures/mixture.hpp"

namespace entrosum::bindings {

/// (count, resp_sum, log_likelihood, resp_entropy, worst capacity, [(log_likelihood, row, weight, values), ...])
inline py::tuple totals_state(const MixtureTotals& t) {
  py::list worst;
  for (const WorstSample& sample : t.worst.samples)
    worst.append(py::make_tuple(sample.log_likelihood, sample.row, sample.weight, sample.values));
  return py::make_tuple(t.count, t.resp_sum, t.log_likelihood, t.resp_entropy, t.worst.capacity, worst);
}

inline MixtureTotals totals_from_state(const py::handle& handle) {
  const py::tuple state = handle.cast<py::tuple>();
  if (state.size() != 6) throw std::runtime_error("invalid mixture totals state");
  MixtureTotals t;
  t.count = state[0].cast<double>();
  t.resp_sum = state[1].cast<Eigen::VectorXd>();
  t.log_likelihood = state[2].cast<double>();
  t.resp_entropy = state[3].cast<double>();
  t.worst.capacity = state[4].cast<Index>();
  for (const py::handle item : state[5].cast<py::list>()) {
    const py::tuple sample = item.cast<py::tuple>();
    t.worst.samples.push_back({sample[0].cast<double>(), sample[1].cast<Index>(), sample[2].cast<double>(),
                               sample[3].cast<Eigen::VectorXd>()});
  }
  return t;
}

/// Numbers the rows of the worst samples within a data set of which the pass covered rows row_offset + n.
inline void offset_rows(MixtureTotals& totals, Index row_offset) {
  for (WorstSample& sample : totals.worst.samples) sample.row += row_offset;
}

/// The components an M-step re-seeded, as [(component, row, reason), ...].
inline py::list recovered_to_list(const std::vector<ComponentRecovery>& recovered) {
  py::list out;
  for (const ComponentRecovery& r : recovered) out.append(py::make_tuple(r.component, r.row, r.reason));
  return out;
}

}  // namespace entrosum::bindings
