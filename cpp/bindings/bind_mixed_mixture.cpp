// Mixed mixtures (a family per column): EM, initialisation, the chunk-level steps, scoring and the scan of data
// values. Every entry point with data checks the spec and the values first, so that no value reaches a pass its
// column's family cannot model (a categorical code ≥ L would index past its levels).
#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "common.hpp"
#include "entrosum/mixtures/mixed_mixture.hpp"
#include "mixture_common.hpp"

namespace entrosum {

// Found by bind_statistics through argument-dependent lookup (see checks.hpp).
inline void check_consistent(const MixedMixtureStats& s) {
  check_size("the statistics' resp_sum", s.totals.resp_sum, s.statistics.rows());
  if (2 * s.gaussian_shift.size() > s.statistics.cols())
    throw py::value_error("the statistics' Gaussian shift is longer than their Gaussian sums");
  for (const WorstSample& sample : s.totals.worst.samples)
    check_size("a worst sample's statistics", sample.values, s.statistics.cols());
}
inline void check_consistent(const MixedInitialStats& s) {
  check_consistent(s.stats);
  check_size("the statistics' data_sum", s.data_sum, s.stats.statistics.cols());
}
inline void check_mergeable(const MixedMixtureStats& a, const MixedMixtureStats& b) {
  if (a.statistics.size() == 0 && a.totals.resp_sum.size() == 0) return;  // a fresh value takes the other's
  check_mergeable(a.totals, b.totals);
  check_same_shape("statistics", a.statistics, b.statistics);
  check_same_size("gaussian_shift", a.gaussian_shift, b.gaussian_shift);
}
inline void check_mergeable(const MixedInitialStats& a, const MixedInitialStats& b) {
  if (a.data_sum.size() == 0) return;
  check_mergeable(a.stats, b.stats);
  check_same_size("data_sum", a.data_sum, b.data_sum);
}

}  // namespace entrosum

namespace entrosum::bindings {

namespace {

MixedMixtureParams params_from_dict(const py::dict& params) {
  MixedMixtureParams p;
  p.weights = dict_entry<Eigen::VectorXd>(params, "weights");
  p.means = dict_entry<Eigen::MatrixXd>(params, "means");
  p.variances = dict_entry<Eigen::MatrixXd>(params, "variances");
  p.shapes = dict_entry<Eigen::MatrixXd>(params, "shapes");
  p.probabilities = dict_entry<Eigen::MatrixXd>(params, "probabilities");
  return p;
}

Results params_to_dict(const MixedMixtureParams& p) {
  Results out;
  out["weights"] = p.weights;
  out["means"] = p.means;
  out["variances"] = p.variances;
  out["shapes"] = p.shapes;
  out["probabilities"] = p.probabilities;
  out["recovered"] = recovered_to_list(p.recovered);
  return out;
}

/// The layout of `spec` for `n_features` columns, a ValueError when it does not fit.
MixedLayout layout_of(const MixedSpec& spec, Index n_features) {
  try {
    return mixed_layout(spec, n_features);
  } catch (const std::invalid_argument& error) {
    throw py::value_error(error.what());
  }
}

/// Parameters checked against the layout, a ValueError naming the array otherwise.
MixedMixtureParams checked_params(const py::dict& params, const MixedSpec& spec, Index n_features) {
  const MixedLayout layout = layout_of(spec, n_features);
  MixedMixtureParams p = params_from_dict(params);
  try {
    check_mixed_params(p, layout, spec);
  } catch (const std::invalid_argument& error) {
    throw py::value_error(error.what());
  }
  return p;
}

/// The data fit the spec: a ValueError naming the row, column and family of the first value that does not.
template <typename T>
void check_values(const DataRef<T>& data, const MixedSpec& spec, const Execution& execution) {
  layout_of(spec, data.cols());
  const auto [row, column] = first_bad_mixed_value<T>(data, spec, execution);
  if (row >= 0)
    throw std::invalid_argument("row " + std::to_string(row) + " holds " +
                                std::to_string(static_cast<double>(data(row, column))) + " in column " +
                                std::to_string(column) + ", which its family (" +
                                column_family_name(spec.families[static_cast<std::size_t>(column)]) + ") cannot model");
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "mixed_mixture_fit",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const py::dict& params, const MixedSpec& spec,
         const StopOptions& stop, int n_threads, Index chunk_size, const Callback& callback) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_sample_weight(sample_weight, view.rows());
        MixedMixtureOptions options{spec, stop, make_execution(n_threads, chunk_size, &data)};
        const MixedMixtureParams initial = checked_params(params, spec, view.cols());
        const IterationCallback on_iteration = wrap_callback(callback);
        const MixedMixtureFit fit = run_without_gil([&] {
          // passes in C++ only: safe without the GIL (the callback takes it for its moment)
          check_values<T>(view, spec, options.execution);
          return fit_mixed_mixture<T>(view, sample_weight, initial, options, on_iteration);
        });
        Results out = params_to_dict(fit.params);
        add_monitor(out, fit.monitor);
        return out;
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("params"), py::arg("spec"), py::arg("stop"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0, py::arg("callback") = py::none(),
      "EM from initial parameters (weights, means, variances, shapes, probabilities).");

  m.def(
      "mixed_mixture_responsibility_statistics",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const LabelArray& labels, std::uint64_t seed,
         Index row_offset, Index n_components, const MixedSpec& spec, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_n_components(n_components);
        check_sample_weight(sample_weight, view.rows());
        if (labels.size()) check_labels(labels, view.rows(), n_components);
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        const ResponsibilitySource source =
            labels.size() ? label_responsibilities(labels.data()) : random_responsibilities(seed, row_offset);
        return run_without_gil([&] {
          check_values<T>(view, spec, execution);
          return mixed_mixture_responsibility_statistics<T>(view, sample_weight, source, n_components, spec, execution);
        });
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("labels"), py::arg("seed"), py::arg("row_offset"),
      py::arg("n_components"), py::arg("spec"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "The initialising pass over rows (one-hot on labels, or random responsibilities of rows row_offset + n when "
      "labels is empty): mergeable sums for mixed_mixture_from_initial_statistics.");

  m.def(
      "mixed_mixture_e_step",
      [](const CArray<T>& data, const Eigen::VectorXd& sample_weight, const py::dict& params, const MixedSpec& spec,
         int n_threads, Index chunk_size, Index row_offset) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_sample_weight(sample_weight, view.rows());
        const MixedMixtureParams p = checked_params(params, spec, view.cols());
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        MixedMixtureStats stats = run_without_gil([&] {
          check_values<T>(view, spec, execution);
          return mixed_mixture_e_step<T>(view, sample_weight, p, spec, execution);
        });
        offset_rows(stats.totals, row_offset);
        return stats;
      },
      py::arg("data"), py::arg("sample_weight"), py::arg("params"), py::arg("spec"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, py::arg("row_offset") = 0,
      "The E-step over a chunk of rows: mergeable sums of the exact posterior's statistics, the data term included.");

  m.def(
      "mixed_mixture_score",
      [](const CArray<T>& data, const py::dict& params, const MixedSpec& spec, bool with_responsibilities,
         int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const MixedMixtureParams p = checked_params(params, spec, view.cols());
        const Execution execution = make_execution(n_threads, chunk_size, &data);
        RowMatrix<double> resp;
        Eigen::VectorXd log_likelihood = run_without_gil([&] {
          check_values<T>(view, spec, execution);
          return mixed_mixture_score<T>(view, p, spec, with_responsibilities ? &resp : nullptr, execution);
        });
        return py::make_tuple(log_likelihood, with_responsibilities ? py::cast(resp) : py::none());
      },
      py::arg("data"), py::arg("params"), py::arg("spec"), py::arg("with_responsibilities"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, "(log p(x_n), responsibilities or None).");

  m.def(
      "mixed_mixture_first_bad_value",
      [](const CArray<T>& data, const MixedSpec& spec, int n_threads) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        layout_of(spec, view.cols());
        const Execution execution = make_execution(n_threads, 0, &data);
        return run_without_gil([&] { return first_bad_mixed_value<T>(view, spec, execution); });
      },
      py::arg("data"), py::arg("spec"), py::arg("n_threads") = 1,
      "(row, column) of the first value its column's family cannot model, or (-1, -1).");
}

}  // namespace

void bind_mixed_mixture(py::module_& m) {
  py::class_<MixedSpec>(m, "MixedSpec", "The family of each column of a mixed mixture and its known constants.")
      .def(py::init([](const std::vector<int>& families, const Eigen::VectorXd& n_trials,
                       const std::vector<Index>& n_levels, double reg_covar) {
             MixedSpec spec;
             for (int family : families) {
               if (family < 0 || family >= kColumnFamilies)
                 throw py::value_error("unknown column family code " + std::to_string(family));
               spec.families.push_back(static_cast<ColumnFamily>(family));
             }
             spec.n_trials = n_trials;
             spec.n_levels = n_levels;
             spec.reg_covar = reg_covar;
             layout_of(spec, static_cast<Index>(spec.families.size()));  // a ValueError now, not at the first pass
             return spec;
           }),
           py::arg("families"), py::arg("n_trials"), py::arg("n_levels"), py::arg("reg_covar") = 0.0,
           "families: one code per column (0 gaussian, 1 bernoulli, 2 poisson, 3 binomial, 4 categorical, "
           "5 exponential, 6 gamma); n_trials per binomial column and n_levels per categorical column, in column "
           "order.")
      .def_property_readonly("families",
                             [](const MixedSpec& s) {
                               std::vector<int> codes;
                               for (ColumnFamily family : s.families) codes.push_back(static_cast<int>(family));
                               return codes;
                             })
      .def_readonly("n_trials", &MixedSpec::n_trials)
      .def_readonly("n_levels", &MixedSpec::n_levels)
      .def_readonly("reg_covar", &MixedSpec::reg_covar)
      .def_property_readonly("n_statistics", [](const MixedSpec& s) {
        return mixed_layout(s, static_cast<Index>(s.families.size())).n_statistics;
      });
  bind_statistics<MixedMixtureStats>(
      m, "MixedMixtureStats", "Sums of the posterior statistics of a mixed mixture over rows; mergeable, picklable.",
      [](const MixedMixtureStats& s) {
        return py::make_tuple(totals_state(s.totals), s.statistics, s.log_base_measure, s.gaussian_shift);
      },
      [](const py::tuple& state) {
        if (state.size() != 4) throw std::runtime_error("invalid MixedMixtureStats state");
        MixedMixtureStats s;
        s.totals = totals_from_state(state[0]);
        s.statistics = state[1].cast<Eigen::MatrixXd>();
        s.log_base_measure = state[2].cast<double>();
        s.gaussian_shift = state[3].cast<Eigen::VectorXd>();
        return s;
      })
      .def_property_readonly("count", [](const MixedMixtureStats& s) { return s.totals.count; })
      .def_property_readonly("resp_sum", [](const MixedMixtureStats& s) { return s.totals.resp_sum; });
  bind_statistics<MixedInitialStats>(
      m, "MixedInitialStats", "Sums of an initialising pass of a mixed mixture; mergeable.",
      [](const MixedInitialStats& s) {
        return py::make_tuple(totals_state(s.stats.totals), s.stats.statistics, s.data_sum, s.n_rows,
                              s.stats.gaussian_shift);
      },
      [](const py::tuple& state) {
        if (state.size() != 5) throw std::runtime_error("invalid MixedInitialStats state");
        MixedInitialStats s;
        s.stats.totals = totals_from_state(state[0]);
        s.stats.statistics = state[1].cast<Eigen::MatrixXd>();
        s.data_sum = state[2].cast<Eigen::VectorXd>();
        s.n_rows = state[3].cast<Index>();
        s.stats.gaussian_shift = state[4].cast<Eigen::VectorXd>();
        return s;
      })
      .def_property_readonly("count", [](const MixedInitialStats& s) { return s.stats.totals.count; });
  m.def(
      "mixed_mixture_m_step",
      [](const MixedMixtureStats& stats, const py::dict& params, const MixedSpec& spec) {
        const MixedMixtureParams p = checked_params(params, spec, static_cast<Index>(spec.families.size()));
        const MixedLayout layout = layout_of(spec, static_cast<Index>(spec.families.size()));
        check_shape("the statistics", stats.statistics, p.n_components(), layout.n_statistics);
        check_size("the statistics' resp_sum", stats.totals.resp_sum, p.n_components());
        check_size("the statistics' Gaussian shift", stats.gaussian_shift, layout.count(ColumnFamily::gaussian));
        return params_to_dict(mixed_mixture_m_step(stats, p, spec));
      },
      py::arg("stats"), py::arg("params"), py::arg("spec"), "The M-step from merged statistics.");
  m.def(
      "mixed_mixture_terms",
      [](const MixedMixtureStats& stats, const py::dict& params, const MixedSpec& spec) {
        const MixedMixtureParams p = checked_params(params, spec, static_cast<Index>(spec.families.size()));
        const MixedLayout layout = layout_of(spec, static_cast<Index>(spec.families.size()));
        check_shape("the statistics", stats.statistics, p.n_components(), layout.n_statistics);
        check_size("the statistics' resp_sum", stats.totals.resp_sum, p.n_components());
        check_size("the statistics' Gaussian shift", stats.gaussian_shift, layout.count(ColumnFamily::gaussian));
        return elbo_terms_to_dict(mixed_mixture_elbo(stats, p, spec));
      },
      py::arg("stats"), py::arg("params"), py::arg("spec"),
      "F(q, Θ) per sample and the entropy sum's terms for the q of the statistics and the parameters Θ.");
  m.def(
      "mixed_mixture_from_initial_statistics",
      [](const MixedInitialStats& sums, const MixedSpec& spec) {
        const MixedLayout layout = layout_of(spec, static_cast<Index>(spec.families.size()));
        check_n_components(sums.stats.totals.resp_sum.size());
        check_shape("the statistics", sums.stats.statistics, sums.stats.totals.resp_sum.size(), layout.n_statistics);
        check_size("the statistics' data_sum", sums.data_sum, layout.n_statistics);
        check_size("the statistics' Gaussian shift", sums.stats.gaussian_shift, layout.count(ColumnFamily::gaussian));
        check_at_least("the statistics' number of rows", sums.n_rows, 1);
        return params_to_dict(mixed_mixture_from_initial_statistics(sums, spec));
      },
      py::arg("sums"), py::arg("spec"), "Initial parameters from the merged sums of the initialising pass.");
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
