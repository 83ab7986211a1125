// The monitor's records as Python values.
#include <limits>
#include <string>

#include "common.hpp"

namespace entrosum::bindings {

py::typing::Dict<py::str, py::array> history_to_dict(const std::vector<IterationRecord>& history) {
  const auto n = static_cast<py::ssize_t>(history.size());
  auto column = [&](auto field) {
    py::array_t<double> values(n);
    auto view = values.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < n; ++i) view(i) = field(history[static_cast<std::size_t>(i)]);
    return values;
  };
  py::typing::Dict<py::str, py::array> out;
  py::array_t<long long> iteration(n);
  for (py::ssize_t i = 0; i < n; ++i) iteration.mutable_at(i) = history[static_cast<std::size_t>(i)].iteration;
  out["iteration"] = iteration;
  out["elbo"] = column([](const IterationRecord& r) { return r.terms.elbo; });
  out["entropy_sum"] = column([](const IterationRecord& r) { return r.entropy_sum; });
  out["posterior_entropy"] = column([](const IterationRecord& r) { return r.terms.posterior_entropy; });
  out["prior_entropy"] = column([](const IterationRecord& r) { return r.terms.prior_entropy; });
  out["observable_entropy"] = column([](const IterationRecord& r) { return r.terms.observable_entropy; });
  out["data_term"] = column([](const IterationRecord& r) { return r.terms.data_term; });
  out["gap"] = column([](const IterationRecord& r) { return r.gap; });
  out["change"] = column([](const IterationRecord& r) { return r.change; });
  out["time"] = column([](const IterationRecord& r) { return r.seconds; });
  out["m_step_elbo"] = column([](const IterationRecord& r) { return r.m_step_elbo; });
  out["m_step_entropy_sum"] = column([](const IterationRecord& r) { return r.m_step_entropy_sum; });
  out["prior_beta"] = column([](const IterationRecord& r) { return r.terms.prior_beta; });
  out["observable_beta"] = column([](const IterationRecord& r) { return r.terms.observable_beta; });
  return out;
}

py::typing::Dict<py::str, float> record_to_dict(const IterationRecord& r) {
  py::typing::Dict<py::str, float> out;
  out["iteration"] = r.iteration;
  out["elbo"] = r.terms.elbo;
  out["entropy_sum"] = r.entropy_sum;
  out["posterior_entropy"] = r.terms.posterior_entropy;
  out["prior_entropy"] = r.terms.prior_entropy;
  out["observable_entropy"] = r.terms.observable_entropy;
  out["data_term"] = r.terms.data_term;
  out["gap"] = r.gap;
  out["change"] = r.change;
  out["time"] = r.seconds;
  out["m_step_elbo"] = r.m_step_elbo;
  out["m_step_entropy_sum"] = r.m_step_entropy_sum;
  out["prior_beta"] = r.terms.prior_beta;
  out["observable_beta"] = r.terms.observable_beta;
  return out;
}

namespace {
/// The components the fit's M-steps re-seeded: [(iteration, component, row, reason), ...].
py::list recoveries_to_list(const ConvergenceMonitor& monitor) {
  py::list recoveries;
  for (const ComponentRecovery& r : monitor.recoveries())
    recoveries.append(py::make_tuple(r.iteration, r.component, r.row, r.reason));
  return recoveries;
}
}  // namespace

void add_monitor(py::dict& out, const ConvergenceMonitor& monitor) {
  out["history"] = history_to_dict(monitor.history());
  out["stop_reason"] = to_string(monitor.stop_reason());
  out["converged"] = monitor.converged();
  out["setup_time"] = monitor.setup_seconds();
  out["recoveries"] = recoveries_to_list(monitor);
}

IterationCallback wrap_callback(const py::object& callback) {
  if (callback.is_none()) return {};
  return [callback](const IterationRecord& record) {
    py::gil_scoped_acquire acquire;
    try {
      callback(record_to_dict(record));
    } catch (py::error_already_set& error) {
      error.restore();  // keep the Python error pending; run_without_gil re-raises it
      throw Interrupted();
    }
  };
}

void bind_monitor(py::module_& m) {
  py::class_<StopOptions>(m, "StopOptions", "When EM stops; a negative tolerance switches its rule off.")
      .def(py::init([](double tol, double gap_tol, int max_iter, double previous_elbo, int tol_window,
                       int warmup_iterations) {
             if (tol_window < 1)
               throw py::value_error("tol_window must be at least 1, got " + std::to_string(tol_window));
             if (warmup_iterations < 0)
               throw py::value_error("warmup_iterations must be at least 0, got " + std::to_string(warmup_iterations));
             return StopOptions{tol, gap_tol, max_iter, previous_elbo, tol_window, warmup_iterations};
           }),
           py::arg("tol") = 1e-4, py::arg("gap_tol") = -1.0, py::arg("max_iter") = 1000,
           py::arg("previous_elbo") = std::numeric_limits<double>::quiet_NaN(), py::arg("tol_window") = 1,
           py::arg("warmup_iterations") = 0)
      .def_readwrite("tol", &StopOptions::tol)
      .def_readwrite("gap_tol", &StopOptions::gap_tol)
      .def_readwrite("max_iter", &StopOptions::max_iter)
      .def_readwrite("previous_elbo", &StopOptions::previous_elbo)
      .def_readonly("tol_window", &StopOptions::tol_window)
      .def_readonly("warmup_iterations", &StopOptions::warmup_iterations);

  // The C++ monitor itself, so its stopping rule can be driven and tested from Python.
  py::class_<ConvergenceMonitor>(m, "Monitor", "The C++ convergence monitor (stopping rule and history).")
      .def(py::init<StopOptions>(), py::arg("options"))
      .def(
          "record",
          [](ConvergenceMonitor& monitor, double elbo, double posterior_entropy, double prior_entropy,
             double observable_entropy, double data_term, double seconds, double prior_beta, double observable_beta,
             const py::object& after) {
            ElboTerms terms{elbo,      posterior_entropy, prior_entropy,  observable_entropy,
                            data_term, prior_beta,        observable_beta};
            if (after.is_none()) return monitor.record(terms, seconds);
            // F and S of the same q with the parameters its M-step made (a dict of terms, as the step API gives)
            const py::dict values = after.cast<py::dict>();
            const ElboTerms after_terms{
                values["elbo"].cast<double>(),           values["posterior_entropy"].cast<double>(),
                values["prior_entropy"].cast<double>(),  values["observable_entropy"].cast<double>(),
                values["data_term"].cast<double>(),      values["prior_beta"].cast<double>(),
                values["observable_beta"].cast<double>()};
            return monitor.record(terms, seconds, &after_terms);
          },
          py::arg("elbo"), py::arg("posterior_entropy"), py::arg("prior_entropy"), py::arg("observable_entropy"),
          py::arg("data_term") = 0.0, py::arg("seconds") = 0.0, py::arg("prior_beta") = 1.0,
          py::arg("observable_beta") = 1.0, py::arg("after") = py::none())
      .def(
          "note_recoveries",
          [](ConvergenceMonitor& monitor, const py::list& recovered) {
            std::vector<ComponentRecovery> recoveries;
            for (const py::handle item : recovered) {
              const py::tuple entry = item.cast<py::tuple>();
              recoveries.push_back(
                  {0, entry[0].cast<std::ptrdiff_t>(), entry[1].cast<std::ptrdiff_t>(), entry[2].cast<std::string>()});
            }
            monitor.note_recoveries(recoveries);
          },
          py::arg("recovered"),
          "Notes the components the M-step of the iteration about to be recorded re-seeded: [(component, row, "
          "reason), ...], as an M-step's parameters list them under 'recovered'.")
      .def_property_readonly("recoveries", [](const ConvergenceMonitor& m) { return recoveries_to_list(m); })
      .def_property_readonly("history", [](const ConvergenceMonitor& m) { return history_to_dict(m.history()); })
      .def_property_readonly("stop_reason", [](const ConvergenceMonitor& m) { return to_string(m.stop_reason()); })
      .def_property_readonly("converged", &ConvergenceMonitor::converged)
      .def_property_readonly("last", [](const ConvergenceMonitor& m) {
        if (m.history().empty()) throw py::index_error("the monitor holds no record yet");
        return record_to_dict(m.history().back());
      });
}

}  // namespace entrosum::bindings
