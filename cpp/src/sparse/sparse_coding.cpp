#include "entrosum/sparse/sparse_coding.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "entrosum/core/em.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "sparse_coding_batch.hpp"
#include "sparse_coding_posterior.hpp"

namespace entrosum {

namespace {

using entropy::kLogTwoPi;

}  // namespace

SparseCodingStats::SparseCodingStats(Index n_features, Index n_components)
    : cross(Eigen::MatrixXd::Zero(n_features, n_components)),
      second_moment(Eigen::MatrixXd::Zero(n_components, n_components)),
      expected_abs(Eigen::VectorXd::Zero(n_components)) {}

SparseCodingStats& SparseCodingStats::operator+=(const SparseCodingStats& other) {
  count += other.count;
  squared_norm += other.squared_norm;
  cross += other.cross;
  second_moment += other.second_moment;
  expected_abs += other.expected_abs;
  posterior_entropy += other.posterior_entropy;
  solver_steps += other.solver_steps;
  max_solver_steps = std::max(max_solver_steps, other.max_solver_steps);
  unconverged += other.unconverged;
  return *this;
}

void SparseCodingStats::scale(double factor) {
  count *= factor;
  squared_norm *= factor;
  cross *= factor;
  second_moment *= factor;
  expected_abs *= factor;
  posterior_entropy *= factor;
  solver_steps *= factor;
}

double sparse_coding_residual(const SparseCodingStats& stats, const Eigen::MatrixXd& components) {
  // Σ_n E||x_n − W z||² = Σ||x||² − 2 tr(Wᵀ Σ x νᵀ) + tr(WᵀW Σ(ννᵀ + Λ))
  const Eigen::MatrixXd gram = components.transpose() * components;
  return stats.squared_norm - 2.0 * (components.array() * stats.cross.array()).sum() +
         (gram.array() * stats.second_moment.array()).sum();
}

ElboTerms sparse_coding_terms(const SparseCodingStats& stats, const SparseCodingParams& params, double prior_beta,
                              double observable_beta) {
  const double count = stats.count;
  const Index n_features = params.components.rows();
  const Eigen::ArrayXd scales = params.scales.array();
  const double noise = params.noise_variance;
  // E_q log p(z) = −Σ_h [log(2λ_h) + E|z_h|/λ_h], E_q log p(x|z) = −(D/2) log(2πσ²) − E||x − Wz||²/(2σ²), per sample
  const double expected_log_prior = -((2.0 * scales).log() + stats.expected_abs.array() / (count * scales)).sum();
  const double residual = sparse_coding_residual(stats, params.components) / count;
  const double expected_log_observable =
      -0.5 * static_cast<double>(n_features) * (kLogTwoPi + std::log(noise)) - 0.5 * residual / noise;

  ElboTerms terms;
  terms.posterior_entropy = stats.posterior_entropy / count;
  double prior_entropy = 0.0;
  for (Index h = 0; h < scales.size(); ++h) prior_entropy += entropy::laplace(scales(h));
  terms.prior_entropy = prior_entropy;
  terms.observable_entropy = entropy::gaussian_isotropic(n_features, noise);
  terms.prior_beta = prior_beta;
  terms.observable_beta = observable_beta;
  terms.elbo = terms.posterior_entropy + prior_beta * expected_log_prior + observable_beta * expected_log_observable;
  return terms;
}

namespace {

/// λ* = (1/N) Σ E|z| and σ²* = (1/(ND)) Σ E||x − Wz||² for q's statistics with W.
SparseCodingParams optimal_scales(const SparseCodingStats& stats, const Eigen::MatrixXd& components,
                                  double noise_floor) {
  SparseCodingParams params;
  params.components = components;
  params.scales = stats.expected_abs / stats.count;
  const double noise =
      sparse_coding_residual(stats, components) / (stats.count * static_cast<double>(components.rows()));
  if (!(noise > 0.0) && !(noise_floor > 0.0))
    throw NumericalError("the expected residual is not positive (the atoms reproduce the data exactly)");
  params.noise_variance = std::max(noise, noise_floor);
  return params;
}

/// Most sweeps of unit_norm_least_squares; each sweep costs O(D H²), next to an E-step's O(N D H) at least.
constexpr int kUnitNormSweeps = 100;

/// argmin of E||x − W z||² = tr(WᵀW S) − 2 tr(WᵀC) + const over W with unit-norm columns, from `components`
/// (unit columns). Column by column: with ||w_h|| = 1 the term S_hh ||w_h||² is constant, so
/// w_h = v_h / ||v_h||, v_h = c_h − Σ_{k≠h} w_k S_kh, is the exact optimum given the other columns, and no
/// sweep increases the residual.
Eigen::MatrixXd unit_norm_least_squares(const Eigen::MatrixXd& cross, const Eigen::MatrixXd& second_moment,
                                        Eigen::MatrixXd components) {
  for (int sweep = 0; sweep < kUnitNormSweeps; ++sweep) {
    double largest_move = 0.0;
    for (Index h = 0; h < components.cols(); ++h) {
      Eigen::VectorXd direction =
          cross.col(h) - components * second_moment.col(h) + components.col(h) * second_moment(h, h);
      const double norm = direction.norm();
      if (!(norm > 0.0) || !std::isfinite(norm)) continue;  // no preferred direction: the atom stays
      direction /= norm;
      largest_move = std::max(largest_move, (direction - components.col(h)).lpNorm<Eigen::Infinity>());
      components.col(h) = direction;
    }
    if (largest_move < 1e-10) break;
  }
  return components;
}

}  // namespace

ElboTerms sparse_coding_es_elbo_terms(const SparseCodingStats& stats, const Eigen::MatrixXd& components,
                                      double prior_beta, double observable_beta) {
  return sparse_coding_terms(stats, optimal_scales(stats, components, 0.0), prior_beta, observable_beta);
}

SparseCodingParams sparse_coding_m_step(SparseCodingExpectation& expectation, const SparseCodingParams& params,
                                        const AnnealingSchedule& schedule, double noise_floor) {
  SparseCodingStats& stats = expectation.stats;
  const Index n_components = params.components.cols();
  Eigen::MatrixXd components;
  if (expectation.prior_beta != 1.0) {
    // Annealed: rescaling q with W's column norms d_h (below) moves H[q] + β_p E log p(z) by (1 − β_p) Σ log d_h,
    // so the annealed objective would drop at a fixed β_p. W is instead optimised within unit-norm columns, q
    // as it is (Velychko et al. anneal so); λ*, σ²* maximise the annealed objective as they do the ELBO.
    components = unit_norm_least_squares(stats.cross, stats.second_moment, params.components);
  } else {
    // W = (Σ x νᵀ)(Σ (ννᵀ + Λ))⁻¹
    const Eigen::LLT<Eigen::MatrixXd> llt(stats.second_moment);
    if (llt.info() != Eigen::Success)
      throw NumericalError("the expected latent second moment Σ(ννᵀ + Λ) is not positive definite");
    components = llt.solve(stats.cross.transpose()).transpose();
    // Unit-norm columns; z_h, Λ and E|z_h| scale with the norm d_h and H[q] by Σ log d_h, so that W z,
    // E|z_h|/λ_h − log λ_h + H[q] and with them the ELBO are unchanged.
    const Eigen::VectorXd norms = components.colwise().norm().transpose();
    for (Index h = 0; h < n_components; ++h)
      if (!(norms(h) > 0.0) || !std::isfinite(norms(h)))
        throw NumericalError("atom " + std::to_string(h) + " vanished in the M-step (its posterior means are all 0)");
    components = components * norms.cwiseInverse().asDiagonal();
    stats.cross = stats.cross * norms.asDiagonal();
    stats.second_moment = norms.asDiagonal() * stats.second_moment * norms.asDiagonal();
    stats.expected_abs = stats.expected_abs.cwiseProduct(norms);
    stats.posterior_entropy += stats.count * norms.array().log().sum();
  }
  // λ = λ*, σ² = σ²* for q (rescaled at β = 1): the ELBO is then the ES-ELBO (DESIGN.md §3).
  SparseCodingParams updated = optimal_scales(stats, components, noise_floor);
  updated.step = params.step + 1;
  updated.prior_beta = schedule.prior_beta(updated.step);
  updated.observable_beta = schedule.observable_beta(updated.step);
  return updated;
}

namespace {

/// The chunk as double: a view for double data, a converted copy in `buffer` for float.
template <typename T>
Eigen::Ref<const RowMatrix<double>> as_double(const DataRef<T>& chunk, RowMatrix<double>& buffer) {
  if constexpr (std::is_same_v<T, double>) {
    return chunk;
  } else {
    buffer = chunk.template cast<double>();
    return buffer;
  }
}

/// What one thread reuses for every chunk of a batched E-step pass.
struct DiagonalBatchWorkspace {
  explicit DiagonalBatchWorkspace(const detail::PosteriorProblem& problem) : solver(problem) {}
  detail::DiagonalBatchSolver solver;
  RowMatrix<double> buffer, projected, means, gram_starts, variances, expected_abs;  // (n, D) and (n, H)
  std::vector<detail::PointResult> results;
};

/// The E-step of one chunk of rows for diagonal posteriors, the points solved side by side
/// (sparse_coding_batch.hpp); statistics and outputs as solve_chunk's.
template <typename T>
void solve_chunk_batched(const DataRef<T>& chunk, const Eigen::MatrixXd& components,
                         const detail::PosteriorProblem& problem, Index first_row, SparseCodingStats& stats,
                         const PosteriorOutput<T>& output, DiagonalBatchWorkspace& work) {
  const Index n_rows = chunk.rows();
  const Index n_components = problem.n_components;
  const Eigen::Ref<const RowMatrix<double>> rows = as_double<T>(chunk, work.buffer);  // (n, D)
  work.projected.noalias() = rows * components;                                       // (n, H) rows (Wᵀx_n)ᵀ
  work.means.noalias() = work.projected * problem.ridge;                              // (n, H) ridge starts, then ν_n
  work.gram_starts.noalias() = work.means * problem.gram;                             // (n, H) rows (G ν₀)ᵀ
  work.variances.resize(n_rows, n_components);
  work.expected_abs.resize(n_rows, n_components);
  work.results.resize(static_cast<std::size_t>(n_rows));
  work.solver.solve_all(work.projected, work.means, work.gram_starts, work.variances, work.expected_abs, work.results);
  // Sums in row order, as the per-point solver adds them.
  Eigen::VectorXd variance_sum = Eigen::VectorXd::Zero(n_components);
  for (Index i = 0; i < n_rows; ++i) {
    const detail::PointResult& result = work.results[static_cast<std::size_t>(i)];
    stats.expected_abs += work.expected_abs.row(i).transpose();
    stats.posterior_entropy += entropy::gaussian_from_log_det(n_components, result.log_det);
    stats.solver_steps += result.steps;
    stats.max_solver_steps = std::max(stats.max_solver_steps, result.steps);
    if (!result.converged) ++stats.unconverged;
    variance_sum += work.variances.row(i).transpose();
  }
  if (output.means) output.means->middleRows(first_row, n_rows) = work.means.template cast<T>();
  if (output.spread) output.spread->middleRows(first_row, n_rows) = work.variances.template cast<T>();
  stats.count += static_cast<double>(n_rows);
  stats.squared_norm += rows.squaredNorm();
  stats.cross.noalias() += rows.transpose() * work.means;
  stats.second_moment.noalias() += work.means.transpose() * work.means;
  stats.second_moment.diagonal() += variance_sum;
}

/// The E-step of one chunk: per-point solves from ridge starts, statistics added to `stats`,
/// means and (co)variances written to `output` at rows first_row + i when asked for.
template <typename T, typename Solver>
void solve_chunk(const DataRef<T>& chunk, const Eigen::MatrixXd& components, const detail::PosteriorProblem& problem,
                 Index first_row, SparseCodingStats& stats, const PosteriorOutput<T>& output) {
  constexpr bool full = std::is_same_v<Solver, detail::FullPosteriorSolver>;
  const Index n_rows = chunk.rows();
  const Index n_components = problem.n_components;
  RowMatrix<double> buffer;
  const Eigen::Ref<const RowMatrix<double>> rows = as_double<T>(chunk, buffer);  // (n, D)
  const RowMatrix<double> projected = rows * components;                         // (n, H) rows (Wᵀx_n)ᵀ
  RowMatrix<double> means = projected * problem.ridge;                           // (n, H) ridge starts, then ν_n
  Solver solver(problem);
  Eigen::MatrixXd covariance_sum = Eigen::MatrixXd::Zero(full ? n_components : 0, full ? n_components : 0);
  Eigen::VectorXd variance_sum = Eigen::VectorXd::Zero(n_components);
  for (Index i = 0; i < n_rows; ++i) {
    const detail::PointSolve result = solver.solve(projected.row(i).transpose(), means.row(i).transpose());
    means.row(i) = solver.mean.transpose();
    stats.expected_abs += solver.expected_abs;
    stats.posterior_entropy += entropy::gaussian_from_log_det(n_components, solver.log_det());
    stats.solver_steps += result.steps;
    stats.max_solver_steps = std::max(stats.max_solver_steps, result.steps);
    if (!result.converged) ++stats.unconverged;
    if constexpr (full) {
      covariance_sum += solver.covariance;
    } else {
      variance_sum += solver.sd.cwiseAbs2();
    }
    if (output.means) output.means->row(first_row + i) = solver.mean.transpose().template cast<T>();
    if (output.spread) {
      if constexpr (full) {
        // Λ is symmetric, so its column-major storage is also its row-major one.
        output.spread->row(first_row + i) =
            Eigen::Map<const Eigen::RowVectorXd>(solver.covariance.data(), n_components * n_components)
                .template cast<T>();
      } else {
        output.spread->row(first_row + i) = solver.sd.cwiseAbs2().transpose().template cast<T>();
      }
    }
  }
  stats.count += static_cast<double>(n_rows);
  stats.squared_norm += rows.squaredNorm();
  stats.cross.noalias() += rows.transpose() * means;
  stats.second_moment.noalias() += means.transpose() * means;
  if constexpr (full) {
    stats.second_moment += covariance_sum;
  } else {
    stats.second_moment.diagonal() += variance_sum;
  }
}

}  // namespace

template <typename T>
SparseCodingStats sparse_coding_e_step(const DataRef<T>& data, const SparseCodingParams& params, PosteriorForm form,
                                       const PosteriorSolverOptions& solver, const Execution& execution,
                                       const PosteriorOutput<T>& output) {
  const Index n_features = data.cols();
  const Index n_components = params.components.cols();
  if (params.components.rows() != n_features) throw std::invalid_argument("components must have n_features rows");
  const detail::PosteriorProblem problem = detail::PosteriorProblem::from(params, form, solver);
  const Index chunk_size = resolve_chunk_size(execution, n_features, sizeof(T));
  const auto make_stats = [&] { return SparseCodingStats(n_features, n_components); };
  if (form == PosteriorForm::full) {
    return reduce_rows(data.rows(), chunk_size, execution, make_stats,
                       [&](Index begin, Index end, SparseCodingStats& into) {
                         solve_chunk<T, detail::FullPosteriorSolver>(data.middleRows(begin, end - begin),
                                                                     params.components, problem, begin, into, output);
                       });
  }
  if (solver.batched) {
    return reduce_rows(
        data.rows(), chunk_size, execution, make_stats, [&] { return DiagonalBatchWorkspace(problem); },
        [&](Index begin, Index end, SparseCodingStats& into, DiagonalBatchWorkspace& work) {
          solve_chunk_batched<T>(data.middleRows(begin, end - begin), params.components, problem, begin, into, output,
                                 work);
        });
  }
  return reduce_rows(data.rows(), chunk_size, execution, make_stats,
                     [&](Index begin, Index end, SparseCodingStats& into) {
                       solve_chunk<T, detail::DiagonalPosteriorSolver>(data.middleRows(begin, end - begin),
                                                                       params.components, problem, begin, into, output);
                     });
}

template <typename T>
SparseCodingExpectation SparseCodingModel<T>::e_step(const SparseCodingParams& params) const {
  SparseCodingExpectation expectation;
  expectation.stats = sparse_coding_e_step<T>(data_, params, form_, solver_, execution_);
  expectation.prior_beta = params.prior_beta;
  expectation.observable_beta = params.observable_beta;
  last_.mean_solver_steps = expectation.stats.solver_steps / expectation.stats.count;
  last_.max_solver_steps = expectation.stats.max_solver_steps;
  last_.unconverged = expectation.stats.unconverged;
  return expectation;
}

SparseCodingParams sparse_coding_start(const SparseCodingParams& initial, Index n_features, double power,
                                       const AnnealingSchedule& schedule, double& noise_floor) {
  const Index n_components = initial.components.cols();
  if (initial.components.rows() != n_features || n_components < 1)
    throw std::invalid_argument("initial components must have shape (n_features, n_components)");
  if (!(power > 0.0)) throw NumericalError("the data are all zero");
  noise_floor = kSparseCodingNoiseFloor * power;
  SparseCodingParams params = initial;
  const Eigen::VectorXd norms = params.components.colwise().norm().transpose();
  if (!(norms.array() > 0.0).all() || !norms.allFinite())
    throw std::invalid_argument("initial components must be finite and non-zero");
  params.components = params.components * norms.cwiseInverse().asDiagonal();
  // Start: half the power as noise, half spread over the atoms (Var z_h = 2λ_h², unit-norm atoms).
  if (params.scales.size() == 0) {
    params.scales = Eigen::VectorXd::Constant(
        n_components, std::sqrt(static_cast<double>(n_features) * power / (4.0 * static_cast<double>(n_components))));
  } else if (params.scales.size() != n_components || !(params.scales.array() > 0.0).all() ||
             !params.scales.allFinite()) {
    throw std::invalid_argument("initial scales must be n_components positive values");
  }
  if (!(params.noise_variance > 0.0) || !std::isfinite(params.noise_variance)) params.noise_variance = 0.5 * power;
  params.step = 0;
  params.prior_beta = schedule.prior_beta(0);
  params.observable_beta = schedule.observable_beta(0);
  return params;
}

namespace detail {

template <typename T>
SparseCodingParams prepare_sparse_coding(const DataRef<T>& data, const SparseCodingParams& initial,
                                         const SparseCodingOptions& options, double& noise_floor) {
  const Index n_features = data.cols();
  const Index n_components = initial.components.cols();
  if (data.rows() < 1) throw std::invalid_argument("the data have no rows");
  if (initial.components.rows() != n_features || n_components < 1)
    throw std::invalid_argument("initial components must have shape (n_features, n_components)");
  for (const auto* schedule : {&options.annealing.prior, &options.annealing.observable})
    for (double beta : *schedule)
      if (!(beta >= 1.0) || !std::isfinite(beta))
        throw std::invalid_argument("annealing weights must be finite and at least 1");
  if (options.e_step.max_iter < 0 || !(options.e_step.tol >= 0.0))
    throw std::invalid_argument("the E-step solver needs max_iter >= 0 and tol >= 0");

  // One pass for the data's power (1/(ND)) Σ ||x||², the scale of the start and of the noise floor.
  const Index chunk_size = resolve_chunk_size(options.execution, n_features, sizeof(T));
  struct Power {
    double sum = 0.0;
    Power& operator+=(const Power& other) {
      sum += other.sum;
      return *this;
    }
  };
  const Power power_sum = reduce_rows(
      data.rows(), chunk_size, options.execution, [] { return Power(); },
      [&](Index begin, Index end, Power& into) {
        into.sum += data.middleRows(begin, end - begin).template cast<double>().squaredNorm();
      });
  const double power = power_sum.sum / (static_cast<double>(data.rows()) * static_cast<double>(n_features));
  if (!(power > 0.0)) throw NumericalError("the data are all zero");
  return sparse_coding_start(initial, n_features, power, options.annealing, noise_floor);
}

}  // namespace detail

StopOptions sparse_coding_stop_options(const SparseCodingOptions& options) {
  StopOptions stop = options.stop;
  if (!options.annealing.prior.empty() || !options.annealing.observable.empty())
    stop.warmup_iterations = std::max(stop.warmup_iterations, kAnnealingWarmupIterations);
  return stop;
}

template <typename T>
SparseCodingFit fit_sparse_coding(const DataRef<T>& data, const SparseCodingParams& initial,
                                  const SparseCodingOptions& options, const IterationCallback& on_iteration) {
  const auto start = std::chrono::steady_clock::now();
  double noise_floor = 0.0;
  const SparseCodingParams params = detail::prepare_sparse_coding<T>(data, initial, options, noise_floor);
  if (options.solver == SparseCodingSolver::gradient)
    return detail::fit_sparse_coding_gradient<T>(data, params, options, on_iteration, start);
  if (options.acceleration.method == EmAcceleration::quasi_newton)
    return detail::fit_sparse_coding_quasi_newton<T>(data, params, options, noise_floor, on_iteration, start);

  const SparseCodingModel<T> model(data, options.posterior, options.e_step, options.annealing, noise_floor,
                                   options.execution);
  SparseCodingFit fit{params, ConvergenceMonitor(sparse_coding_stop_options(options)), {}};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fit.params = run_em(model, params, fit.monitor, on_iteration, options.execution.interrupted);
  fit.diagnostics = model.last_diagnostics();
  return fit;
}

template <typename T>
SparseCodingPosterior<T> sparse_coding_posterior(const DataRef<T>& data, const SparseCodingParams& params,
                                                 PosteriorForm form, const PosteriorSolverOptions& solver,
                                                 const Execution& execution, bool with_spread) {
  const Index n_components = params.components.cols();
  SparseCodingPosterior<T> posterior;
  posterior.means.resize(data.rows(), n_components);
  if (with_spread)
    posterior.spread.resize(data.rows(), form == PosteriorForm::full ? n_components * n_components : n_components);
  const PosteriorOutput<T> output{&posterior.means, with_spread ? &posterior.spread : nullptr};
  posterior.stats = sparse_coding_e_step<T>(data, params, form, solver, execution, output);
  return posterior;
}

#define ENTROSUM_INSTANTIATE(T)                                                                                   \
  template SparseCodingStats sparse_coding_e_step<T>(const DataRef<T>&, const SparseCodingParams&, PosteriorForm, \
                                                     const PosteriorSolverOptions&, const Execution&,             \
                                                     const PosteriorOutput<T>&);                                  \
  template class SparseCodingModel<T>;                                                                            \
  template SparseCodingParams detail::prepare_sparse_coding<T>(const DataRef<T>&, const SparseCodingParams&,      \
                                                               const SparseCodingOptions&, double&);              \
  template SparseCodingFit fit_sparse_coding<T>(const DataRef<T>&, const SparseCodingParams&,                     \
                                                const SparseCodingOptions&, const IterationCallback&);            \
  template SparseCodingPosterior<T> sparse_coding_posterior<T>(const DataRef<T>&, const SparseCodingParams&,      \
                                                               PosteriorForm, const PosteriorSolverOptions&,      \
                                                               const Execution&, bool);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
