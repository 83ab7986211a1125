// Laplace sparse coding: EM and joint-gradient fits, posteriors with the ES-ELBO of new data, and the
// ES-ELBO with its gradient for tests.
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "checks.hpp"
#include "common.hpp"
#include "entrosum/sparse/sparse_coding.hpp"

namespace entrosum::bindings {

namespace {

PosteriorForm parse_posterior(const std::string& posterior) {
  if (posterior == "diag") return PosteriorForm::diagonal;
  if (posterior == "full") return PosteriorForm::full;
  throw py::value_error("posterior must be 'diag' or 'full', got '" + posterior + "'");
}

SparseCodingSolver parse_solver(const std::string& solver) {
  if (solver == "em") return SparseCodingSolver::em;
  if (solver == "gradient") return SparseCodingSolver::gradient;
  throw py::value_error("solver must be 'em' or 'gradient', got '" + solver + "'");
}

EmAcceleration parse_acceleration(const std::string& acceleration) {
  if (acceleration == "none") return EmAcceleration::none;
  if (acceleration == "quasi-newton") return EmAcceleration::quasi_newton;
  throw py::value_error("acceleration must be 'none' or 'quasi-newton', got '" + acceleration + "'");
}

SparseCodingParams make_params(const Eigen::MatrixXd& components, const Eigen::VectorXd& scales,
                               double noise_variance) {
  SparseCodingParams params;
  params.components = components;
  params.scales = scales;
  params.noise_variance = noise_variance;
  return params;
}

SparseCodingParams params_from_dict(const py::dict& params) {
  SparseCodingParams p =
      make_params(dict_entry<Eigen::MatrixXd>(params, "components"), dict_entry<Eigen::VectorXd>(params, "scales"),
                  dict_entry<double>(params, "noise_variance"));
  p.prior_beta = params.contains("prior_beta") ? params["prior_beta"].cast<double>() : 1.0;
  p.observable_beta = params.contains("observable_beta") ? params["observable_beta"].cast<double>() : 1.0;
  p.step = params.contains("step") ? params["step"].cast<int>() : 0;
  return p;
}

Results params_to_dict(const SparseCodingParams& p) {
  Results out;
  out["components"] = p.components;
  out["scales"] = p.scales;
  out["noise_variance"] = p.noise_variance;
  out["prior_beta"] = p.prior_beta;
  out["observable_beta"] = p.observable_beta;
  out["step"] = p.step;
  return out;
}

AnnealingSchedule make_schedule(const std::vector<double>& prior, const std::vector<double>& observable) {
  AnnealingSchedule schedule;
  schedule.prior = prior;
  schedule.observable = observable;
  return schedule;
}

Results terms_to_dict(const ElboTerms& terms) {
  Results out;
  out["elbo"] = terms.elbo;
  out["entropy_sum"] = terms.entropy_sum();
  out["posterior_entropy"] = terms.posterior_entropy;
  out["prior_entropy"] = terms.prior_entropy;
  out["observable_entropy"] = terms.observable_entropy;
  out["prior_beta"] = terms.prior_beta;
  out["observable_beta"] = terms.observable_beta;
  return out;
}

Results diagnostics_of(const SparseCodingStats& stats) {
  Results out;
  out["mean_solver_steps"] = stats.solver_steps / stats.count;
  out["max_solver_steps"] = stats.max_solver_steps;
  out["unconverged"] = stats.unconverged;
  return out;
}

/// Rows per chunk of the E-step's passes when the caller leaves it to the library (0): the library's default
/// (about 1 MiB of data), but few enough rows that a chunk takes a fraction of a second, since the calling
/// thread polls for Ctrl-C between its chunks (issue 13: 2.2 s at H = 16, 'full').
/// - Points solved one at a time (full posteriors, or `lanes` false): at most as many rows as take about 2^24
///   multiply-adds of Newton steps, counted as 8 H³ per row (three times that for full posteriors).
/// - The batched diagonal solver (`lanes`: the points of a chunk side by side in vector lanes): measured on one
///   core at H = 100, a row costs 18 µs (35 µs with mixed_precision off), about 2e-11 to 3.5e-11 H³ s, so
///   2^31 / H³ rows take 40 to 75 ms. Its lanes need long chunks: each chunk ends with lanes idle while its last
///   points finish, and at 16 rows per chunk (what the per-point bound gives at H = 100) the passes took 1.2–1.5×
///   as long as at 2,048.
Index sparse_chunk_size(Index chunk_size, Index n_features, Index n_components, PosteriorForm form, bool lanes,
                        Index bytes) {
  if (chunk_size > 0) return chunk_size;
  Execution defaults;
  const Index by_size = resolve_chunk_size(defaults, n_features, bytes);
  const double cube = static_cast<double>(n_components) * static_cast<double>(n_components) *
                      static_cast<double>(n_components) * (form == PosteriorForm::full ? 3.0 : 1.0);
  double by_cost = 2147483648.0 / cube;  // the batched diagonal solver
  if (!lanes || form != PosteriorForm::diagonal) {
    const double per_row = 8.0 * cube + static_cast<double>(n_features) * static_cast<double>(n_components);
    by_cost = 16777216.0 / per_row;
  }
  by_cost = std::max(16.0, by_cost);
  return by_cost < static_cast<double>(by_size) ? static_cast<Index>(by_cost) : by_size;
}

/// Checks of the posterior solver's settings.
void check_solver(double e_step_tol, int e_step_max_iter) {
  if (!(e_step_tol >= 0.0)) throw py::value_error("e_step_tol must be a non-negative number");
  check_at_least("e_step_max_iter", e_step_max_iter, 1);
}

/// (n, H·H) row-major per point as a numpy (n, H, H) array.
template <typename T>
py::array_t<T> as_cube(const RowMatrix<T>& flat, Index n_components) {
  py::array_t<T> cube({static_cast<py::ssize_t>(flat.rows()), static_cast<py::ssize_t>(n_components),
                       static_cast<py::ssize_t>(n_components)});
  std::copy(flat.data(), flat.data() + flat.size(), cube.mutable_data());
  return cube;
}

template <typename T>
void bind_for(py::module_& m) {
  m.def(
      "fit_sparse_coding",
      [](const CArray<T>& data, const Eigen::MatrixXd& components, const Eigen::VectorXd& scales, double noise_variance,
         const std::string& posterior, const std::string& solver, const std::vector<double>& prior_annealing,
         const std::vector<double>& observable_annealing, double e_step_tol, int e_step_max_iter,
         const StopOptions& stop, int n_threads, Index chunk_size, const Callback& callback,
         const std::string& acceleration) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        check_at_least("the number of atoms (components' columns)", components.cols(), 1);
        check_shape("components", components, view.cols(), components.cols());
        if (scales.size()) check_size("scales", scales, components.cols());
        check_solver(e_step_tol, e_step_max_iter);
        SparseCodingOptions options;
        options.posterior = parse_posterior(posterior);
        options.solver = parse_solver(solver);
        options.acceleration.method = parse_acceleration(acceleration);
        options.annealing.prior = prior_annealing;
        options.annealing.observable = observable_annealing;
        options.e_step.tol = e_step_tol;
        options.e_step.max_iter = e_step_max_iter;
        options.stop = stop;
        const bool lanes = options.solver == SparseCodingSolver::em && options.e_step.batched;
        options.execution = make_execution(n_threads, sparse_chunk_size(chunk_size, view.cols(), components.cols(),
                                                                        options.posterior, lanes, sizeof(T)));
        const SparseCodingParams initial = make_params(components, scales, noise_variance);
        const IterationCallback on_iteration = wrap_callback(callback);
        const SparseCodingFit fit =
            run_without_gil([&] { return fit_sparse_coding<T>(view, initial, options, on_iteration); });
        Results out;
        out["components"] = fit.params.components;
        out["scales"] = fit.params.scales;
        out["noise_variance"] = fit.params.noise_variance;
        add_monitor(out, fit.monitor);
        out["mean_solver_steps"] = fit.diagnostics.mean_solver_steps;
        out["max_solver_steps"] = fit.diagnostics.max_solver_steps;
        out["unconverged"] = fit.diagnostics.unconverged;
        out["evaluations"] = fit.diagnostics.evaluations;
        out["lbfgs_status"] = fit.diagnostics.lbfgs_status;
        return out;
      },
      py::arg("data"), py::arg("components"), py::arg("scales"), py::arg("noise_variance"), py::arg("posterior"),
      py::arg("solver"), py::arg("prior_annealing"), py::arg("observable_annealing"), py::arg("e_step_tol"),
      py::arg("e_step_max_iter"), py::arg("stop"), py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      py::arg("callback") = py::none(), py::arg("acceleration") = "none",
      "Fit Laplace sparse coding from initial W (D, H); empty scales or noise_variance <= 0 start from the data. "
      "acceleration ('none' or 'quasi-newton') applies to solver 'em'.");

  m.def(
      "sparse_coding_e_step",
      [](const CArray<T>& data, const py::dict& params, const std::string& posterior, double e_step_tol,
         int e_step_max_iter, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const SparseCodingParams p = params_from_dict(params);
        check_params(p, view.cols());
        check_solver(e_step_tol, e_step_max_iter);
        const PosteriorSolverOptions solver{e_step_tol, e_step_max_iter};
        const PosteriorForm form = parse_posterior(posterior);
        const Execution execution = make_execution(
            n_threads,
            sparse_chunk_size(chunk_size, view.cols(), p.components.cols(), form, solver.batched, sizeof(T)));
        return run_without_gil([&] {
          SparseCodingExpectation expectation;
          expectation.stats = sparse_coding_e_step<T>(view, p, form, solver, execution);
          expectation.prior_beta = p.prior_beta;
          expectation.observable_beta = p.observable_beta;
          return expectation;
        });
      },
      py::arg("data"), py::arg("params"), py::arg("posterior"), py::arg("e_step_tol"), py::arg("e_step_max_iter"),
      py::arg("n_threads") = 1, py::arg("chunk_size") = 0,
      "The E-step over a chunk of rows: sums of the optimal q's statistics (chunk-level step API).");

  m.def(
      "sparse_coding_posterior",
      [](const CArray<T>& data, const Eigen::MatrixXd& components, const Eigen::VectorXd& scales, double noise_variance,
         const std::string& posterior, double e_step_tol, int e_step_max_iter, bool with_spread, int n_threads,
         Index chunk_size, bool batched, bool mixed_precision) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const PosteriorForm form = parse_posterior(posterior);
        const SparseCodingParams params = make_params(components, scales, noise_variance);
        check_params(params, view.cols());
        check_solver(e_step_tol, e_step_max_iter);
        const PosteriorSolverOptions solver{e_step_tol, e_step_max_iter, batched, mixed_precision};
        const Execution execution = make_execution(
            n_threads, sparse_chunk_size(chunk_size, view.cols(), components.cols(), form, batched, sizeof(T)));
        SparseCodingPosterior<T> result = run_without_gil(
            [&] { return sparse_coding_posterior<T>(view, params, form, solver, execution, with_spread); });
        Results out;
        const Index n_components = components.cols();
        out["means"] =
            py::array_t<T>({static_cast<py::ssize_t>(result.means.rows()), static_cast<py::ssize_t>(n_components)},
                           result.means.data());
        if (with_spread) {
          if (form == PosteriorForm::full) {
            out["spread"] = as_cube<T>(result.spread, n_components);
          } else {
            out["spread"] =
                py::array_t<T>({static_cast<py::ssize_t>(result.spread.rows()), static_cast<py::ssize_t>(n_components)},
                               result.spread.data());
          }
        }
        // The ES-ELBO of this q (λ*, σ²* for it) and the ELBO under the given λ, σ².
        out["es_elbo"] = terms_to_dict(sparse_coding_es_elbo_terms(result.stats, components));
        out["elbo"] = terms_to_dict(sparse_coding_terms(result.stats, params, 1.0, 1.0));
        out["solver"] = diagnostics_of(result.stats);
        return out;
      },
      py::arg("data"), py::arg("components"), py::arg("scales"), py::arg("noise_variance"), py::arg("posterior"),
      py::arg("e_step_tol"), py::arg("e_step_max_iter"), py::arg("with_spread"), py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0, py::arg("batched") = true, py::arg("mixed_precision") = true,
      "Posterior means (n, H) and variances (n, H) or covariances (n, H, H) under fixed W, λ, σ², with the "
      "ES-ELBO and ELBO terms of that q. batched=False solves one point at a time (the reference of the batched "
      "solver); mixed_precision=False factorises the batched solver's Newton systems in double.");

  m.def(
      "sparse_coding_es_elbo",
      [](const CArray<T>& data, const Eigen::MatrixXd& raw_components, const RowMatrix<double>& means,
         const py::array_t<double, py::array::c_style>& spread, const std::string& posterior, double prior_beta,
         double observable_beta, int n_threads, Index chunk_size) {
        check_data(data);
        const DataRef<T> view = as_data(data);
        const PosteriorForm form = parse_posterior(posterior);
        const Index n_components = raw_components.cols();
        check_at_least("the number of atoms (components' columns)", n_components, 1);
        check_shape("components", raw_components, view.cols(), n_components);
        check_shape("means", means, view.rows(), n_components);
        const Index width = form == PosteriorForm::full ? n_components * n_components : n_components;
        if (spread.size() != means.rows() * width)
          throw py::value_error("spread must be (n, H) standard deviations or (n, H, H) Cholesky factors");
        VariationalParams q;
        q.means = means;
        q.spread = Eigen::Map<const RowMatrix<double>>(spread.data(), means.rows(), width);
        const Eigen::MatrixXd components = raw_components * raw_components.colwise().norm().cwiseInverse().asDiagonal();
        const Execution execution = make_execution(n_threads, chunk_size);
        EsElboGradient gradient;
        Eigen::VectorXd scales;
        double noise = 0.0;
        const ElboTerms terms = run_without_gil([&] {
          return sparse_coding_es_elbo<T>(view, components, q, form, prior_beta, observable_beta, execution, &gradient,
                                          &scales, &noise);
        });
        Results out = terms_to_dict(terms);
        out["scales"] = scales;
        out["noise_variance"] = noise;
        out["grad_means"] = gradient.means;
        if (form == PosteriorForm::full) {
          out["grad_spread"] = as_cube<double>(gradient.spread, n_components);
        } else {
          out["grad_spread"] = gradient.spread;
        }
        out["grad_components"] = project_to_sphere(raw_components, gradient.components);
        return out;
      },
      py::arg("data"), py::arg("components"), py::arg("means"), py::arg("spread"), py::arg("posterior"),
      py::arg("prior_beta") = 1.0, py::arg("observable_beta") = 1.0, py::arg("n_threads") = 1,
      py::arg("chunk_size") = 0,
      "The annealed ES-ELBO of q = N(means, ·) with W = components / column norms, and its gradient with respect "
      "to the means, the standard deviations ('diag') or Cholesky factors ('full', lower triangle), and the raw "
      "components.");
}

}  // namespace

void bind_sparse_coding(py::module_& m) {
  // for the fits that Python drives (dask): the warm-up after an annealing schedule, as in the C++ fits
  m.attr("SPARSE_CODING_ANNEALING_WARMUP") = kAnnealingWarmupIterations;
  using Expectation = SparseCodingExpectation;
  bind_statistics<Expectation>(
      m, "SparseCodingExpectation", "Sums of sparse coding's posterior statistics over rows; mergeable and picklable.",
      [](const Expectation& e) {
        const SparseCodingStats& s = e.stats;
        return py::make_tuple(s.count, s.squared_norm, s.cross, s.second_moment, s.expected_abs, s.posterior_entropy,
                              s.solver_steps, s.max_solver_steps, s.unconverged, e.prior_beta, e.observable_beta);
      },
      [](const py::tuple& state) {
        if (state.size() != 11) throw std::runtime_error("invalid SparseCodingExpectation state");
        Expectation e;
        SparseCodingStats& s = e.stats;
        s.count = state[0].cast<double>();
        s.squared_norm = state[1].cast<double>();
        s.cross = state[2].cast<Eigen::MatrixXd>();
        s.second_moment = state[3].cast<Eigen::MatrixXd>();
        s.expected_abs = state[4].cast<Eigen::VectorXd>();
        s.posterior_entropy = state[5].cast<double>();
        s.solver_steps = state[6].cast<double>();
        s.max_solver_steps = state[7].cast<int>();
        s.unconverged = state[8].cast<Index>();
        e.prior_beta = state[9].cast<double>();
        e.observable_beta = state[10].cast<double>();
        return e;
      })
      .def_property_readonly("count", [](const Expectation& e) { return e.stats.count; })
      .def_property_readonly("diagnostics", [](const Expectation& e) { return diagnostics_of(e.stats); });

  m.def(
      "sparse_coding_m_step",
      [](Expectation& expectation, const py::dict& params, const std::vector<double>& prior_annealing,
         const std::vector<double>& observable_annealing, double noise_floor) {
        const SparseCodingParams p = params_from_dict(params);
        check_params(p, p.components.rows());
        check_stats(expectation.stats, p.components.rows(), p.components.cols());
        return params_to_dict(
            sparse_coding_m_step(expectation, p, make_schedule(prior_annealing, observable_annealing), noise_floor));
      },
      py::arg("expectation"), py::arg("params"), py::arg("prior_annealing"), py::arg("observable_annealing"),
      py::arg("noise_floor"),
      "The closed-form M-step from merged statistics; rescales the expectation in place with the unit-norm atoms.");
  m.def(
      "sparse_coding_terms",
      [](const Expectation& expectation, const py::dict& params) {
        const SparseCodingParams p = params_from_dict(params);
        check_params(p, p.components.rows());
        check_stats(expectation.stats, p.components.rows(), p.components.cols());
        return elbo_terms_to_dict(
            sparse_coding_terms(expectation.stats, p, expectation.prior_beta, expectation.observable_beta));
      },
      py::arg("expectation"), py::arg("params"),
      "F(q, Θ) per sample (annealed by the expectation's weights) and the entropy sum's terms.");
  m.def(
      "sparse_coding_start",
      [](const Eigen::MatrixXd& components, const Eigen::VectorXd& scales, double noise_variance, Index n_features,
         double power, const std::vector<double>& prior_annealing, const std::vector<double>& observable_annealing) {
        check_at_least("the number of atoms (components' columns)", components.cols(), 1);
        check_shape("components", components, n_features, components.cols());
        if (scales.size()) check_size("scales", scales, components.cols());
        double noise_floor = 0.0;
        const SparseCodingParams start =
            sparse_coding_start(make_params(components, scales, noise_variance), n_features, power,
                                make_schedule(prior_annealing, observable_annealing), noise_floor);
        return py::make_tuple(params_to_dict(start), noise_floor);
      },
      py::arg("components"), py::arg("scales"), py::arg("noise_variance"), py::arg("n_features"), py::arg("power"),
      py::arg("prior_annealing"), py::arg("observable_annealing"),
      "(starting parameters, noise floor) as a fit makes them from the data's power (1/(ND)) Σ ||x||².");

  // float32 first: pybind11 then matches float32 arrays without converting them to float64.
  bind_for<float>(m);
  bind_for<double>(m);
}

}  // namespace entrosum::bindings
