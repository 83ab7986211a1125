// Variational EM for Laplace sparse coding accelerated by quasi-Newton steps (Jamshidian & Jennrich 1997,
// "Acceleration of the EM algorithm by using quasi-Newton methods").
//
// At low noise EM turns the dictionary by about σ²/signal per iteration (Petersen, Winther & Hansen 2005):
// the M-step regresses x on posterior means that were computed with the current W. Here Θ = (W, λ, σ²)
// follows L-BFGS on
//
//   g(Θ) = max_q F(q, Θ),
//
// the ELBO with every q_n at its E-step optimum. One E-step pass gives g(Θ) and, because q is optimal,
// its gradient is ∂F/∂Θ at that q (envelope theorem), from the pass's statistics C = Σ x νᵀ,
// S = Σ (ννᵀ + Λ), A = Σ E|z| and R = Σ E||x − W z||²:
//
//   ∂g/∂W = (C − W S)/(N σ²),   ∂g/∂log λ_h = A_h/(N λ_h) − 1,   ∂g/∂log σ² = R/(2 N σ²) − D/2,
//
// with W = V diag(1/||v_h||) for a free V (project_to_sphere) and λ, σ² in logs so that they stay positive.
// The initial inverse Hessian of L-BFGS inverts the complete-data curvature −∂²F/∂Θ² at fixed q:
// N σ² S⁻¹ on W's rows, N λ_h / A_h for log λ_h, 2 N σ² / R for log σ². Its step is EM's step to first
// order; the curvature pairs add what EM misses (how q moves with Θ). The line search's trials are E-step
// passes, so g, and with it the recorded ELBO, increases at every step. Nothing per data point persists,
// and every pass runs over chunks on threads and polls for interruption.
//
// Annealed iterations and the first few after them are plain EM iterations: annealing changes the objective
// from one iteration to the next, and EM's first steps gain most without any line search.
#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "entrosum/core/em.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/core/lbfgs.hpp"
#include "entrosum/sparse/sparse_coding.hpp"
#include "sparse_coding_posterior.hpp"

namespace entrosum::detail {

namespace {

/// Θ as one vector: V (D·H, column-major), log λ (H), log σ².
struct ThetaLayout {
  Index n_features, n_components;

  Index scales_offset() const { return n_features * n_components; }
  Index noise_offset() const { return scales_offset() + n_components; }
  Index size() const { return noise_offset() + 1; }

  Eigen::VectorXd pack(const SparseCodingParams& params) const {
    Eigen::VectorXd x(size());
    Eigen::Map<Eigen::MatrixXd>(x.data(), n_features, n_components) = params.components;
    x.segment(scales_offset(), n_components) = params.scales.array().log().matrix();
    x(noise_offset()) = std::log(params.noise_variance);
    return x;
  }

  /// V into `raw`, and Θ (W = V with unit-norm columns) into `params`; false if V has a zero column or x
  /// is not finite.
  bool unpack(const Eigen::VectorXd& x, Eigen::MatrixXd& raw, Eigen::VectorXd& norms,
              SparseCodingParams& params) const {
    if (!x.allFinite()) return false;
    raw = Eigen::Map<const Eigen::MatrixXd>(x.data(), n_features, n_components);
    norms = raw.colwise().norm().transpose();
    if (!(norms.array() > 0.0).all()) return false;
    params.components = raw * norms.cwiseInverse().asDiagonal();
    params.scales = x.segment(scales_offset(), n_components).array().exp().matrix();
    params.noise_variance = std::exp(x(noise_offset()));
    return true;
  }
};

/// One evaluation of g: Θ, q's statistics, F and S at (q, Θ), and what the preconditioner needs.
struct Evaluation {
  SparseCodingParams params;
  SparseCodingExpectation expectation;
  ElboTerms terms;
  Eigen::MatrixXd raw;
  /// (H) ||v_h||
  Eigen::VectorXd norms;
  /// Factor of S = Σ (ννᵀ + Λ)
  Eigen::LLT<Eigen::MatrixXd> second_moment;
  /// R = Σ E||x − W z||²
  double residual = 0.0;
};

}  // namespace

template <typename T>
SparseCodingFit fit_sparse_coding_quasi_newton(const DataRef<T>& data, const SparseCodingParams& start,
                                               const SparseCodingOptions& options, double noise_floor,
                                               const IterationCallback& on_iteration,
                                               std::chrono::steady_clock::time_point started) {
  using Clock = std::chrono::steady_clock;
  const Index n_features = data.cols();
  const Index n_components = start.components.cols();
  const auto& interrupted = options.execution.interrupted;
  const SparseCodingModel<T> model(data, options.posterior, options.e_step, options.annealing, noise_floor,
                                   options.execution);
  SparseCodingFit fit{start, ConvergenceMonitor(sparse_coding_stop_options(options)), {}};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(Clock::now() - started).count());

  // Plain EM iterations (the body of run_em) through the annealing schedule and a few after it.
  const int schedule_length =
      static_cast<int>(std::max(options.annealing.prior.size(), options.annealing.observable.size()));
  const int em_iterations = schedule_length + std::max(0, options.acceleration.em_iterations);
  SparseCodingParams params = start;
  int passes = 0;
  for (int iteration = 0; iteration < em_iterations || params.prior_beta != 1.0 || params.observable_beta != 1.0;
       ++iteration) {
    if (interrupted && interrupted()) throw Interrupted();
    const auto begin = Clock::now();
    SparseCodingExpectation expectation = model.e_step(params);
    ++passes;
    const ElboTerms terms = model.evaluate(expectation, params);
    params = model.m_step(expectation, params);
    const ElboTerms after = model.evaluate(expectation, params);
    const bool stop = fit.monitor.record(terms, std::chrono::duration<double>(Clock::now() - begin).count(), &after);
    if (on_iteration) on_iteration(fit.monitor.history().back());
    if (stop) {
      fit.params = params;
      fit.diagnostics = model.last_diagnostics();
      fit.diagnostics.evaluations = passes;
      return fit;
    }
  }

  fit.monitor.set_tol_window(options.acceleration.tol_window);

  // L-BFGS on −g(Θ). Each evaluation is one E-step pass; `last` holds the most recent one, which the
  // preconditioner and the monitor read (the optimiser's last evaluation is always at its current point).
  const ThetaLayout layout{n_features, n_components};
  const double count = static_cast<double>(data.rows());
  const double log_noise_floor = std::log(noise_floor);
  Evaluation last;
  last.params = params;
  auto objective = [&](const Eigen::VectorXd& x, Eigen::VectorXd& negative_gradient) {
    const double infinity = std::numeric_limits<double>::infinity();
    ++passes;
    if (!layout.unpack(x, last.raw, last.norms, last.params)) return infinity;
    if (x(layout.noise_offset()) < log_noise_floor) return infinity;  // the floor EM's M-step keeps
    try {
      last.expectation = model.e_step(last.params);
    } catch (const NumericalError&) {
      return infinity;  // outside the domain (a collapsed scale): the line search steps back
    }
    const SparseCodingStats& stats = last.expectation.stats;
    last.terms = model.evaluate(last.expectation, last.params);
    last.second_moment.compute(stats.second_moment);
    if (last.second_moment.info() != Eigen::Success || !std::isfinite(last.terms.elbo)) return infinity;
    const Eigen::MatrixXd& components = last.params.components;
    const double noise = last.params.noise_variance;
    last.residual = sparse_coding_residual(stats, components);
    // ∂g/∂W = (C − W S)/(N σ²), through the unit-norm columns to V
    const Eigen::MatrixXd gradient_w = (stats.cross - components * stats.second_moment) / (count * noise);
    Eigen::Map<Eigen::MatrixXd>(negative_gradient.data(), n_features, n_components) =
        -project_to_sphere(last.raw, gradient_w);
    // ∂g/∂log λ_h = A_h/(N λ_h) − 1, ∂g/∂log σ² = R/(2Nσ²) − D/2
    negative_gradient.segment(layout.scales_offset(), n_components) =
        (1.0 - stats.expected_abs.array() / (count * last.params.scales.array())).matrix();
    negative_gradient(layout.noise_offset()) =
        0.5 * static_cast<double>(n_features) - last.residual / (2.0 * count * noise);
    return -last.terms.elbo;
  };

  // The inverse complete-data curvature at the current point: EM's step to first order.
  auto precondition = [&](const Eigen::VectorXd& v, Eigen::VectorXd& out) {
    const double noise = last.params.noise_variance;
    // W's rows by N σ² S⁻¹; a change of v_h moves w_h by 1/||v_h|| and vice versa
    const Eigen::MatrixXd scaled =
        Eigen::Map<const Eigen::MatrixXd>(v.data(), n_features, n_components) * last.norms.asDiagonal();
    Eigen::Map<Eigen::MatrixXd>(out.data(), n_features, n_components) =
        (count * noise) * last.second_moment.solve(scaled.transpose()).transpose() * last.norms.asDiagonal();
    const Eigen::ArrayXd expected_abs =
        last.expectation.stats.expected_abs.array().max(std::numeric_limits<double>::min());
    out.segment(layout.scales_offset(), n_components) =
        (v.segment(layout.scales_offset(), n_components).array() * count * last.params.scales.array() / expected_abs)
            .matrix();
    out(layout.noise_offset()) =
        v(layout.noise_offset()) * 2.0 * count * noise / std::max(last.residual, std::numeric_limits<double>::min());
  };

  optimize::LbfgsOptions lbfgs;
  const Index budget = (Index(256) << 20) / (2 * layout.size() * static_cast<Index>(sizeof(double)));
  lbfgs.memory = static_cast<int>(std::max<Index>(1, std::min<Index>(options.acceleration.memory, budget)));
  lbfgs.gtol = 0.0;  // the monitor's rules stop the fit
  // Each trial is an E-step pass. A search needs more than a few only where F's changes are at the E-steps'
  // noise (~N · e_step_tol), at the optimum: there 30 trials per search tripled the passes of a converging fit.
  lbfgs.max_evaluations = 10;
  lbfgs.max_iter = std::numeric_limits<int>::max();
  Eigen::VectorXd x = layout.pack(params);
  auto last_time = Clock::now();
  const optimize::LbfgsResult run = optimize::minimize_lbfgs(
      objective, x, lbfgs,
      [&](int, double, const Eigen::VectorXd&, const Eigen::VectorXd&) {
        if (interrupted && interrupted()) throw Interrupted();
        // F(q_t, Θ_t), and for the M-step from q_t (the Θ returned if the fit stops here) F(q_t, Θ_{t+1}),
        // which equals S(q_t, Θ_{t+1}) at β = 1 as after every EM iteration.
        SparseCodingExpectation rescaled = last.expectation;
        last.params.step = static_cast<int>(fit.monitor.history().size());
        params = model.m_step(rescaled, last.params);
        const ElboTerms after = model.evaluate(rescaled, params);
        const auto now = Clock::now();
        const double seconds = std::chrono::duration<double>(now - last_time).count();
        last_time = now;
        const bool stop = fit.monitor.record(last.terms, seconds, &after);
        if (on_iteration) on_iteration(fit.monitor.history().back());
        return stop;
      },
      precondition);
  // The line search's last direction was the preconditioned gradient, EM's own step: no step along it
  // raised F, so an EM iteration would change F by less than any tol. Under the tol rule that is convergence.
  if (run.status == optimize::LbfgsStatus::line_search && options.stop.tol >= 0.0)
    fit.monitor.finish(StopReason::tol);
  else if (run.status != optimize::LbfgsStatus::callback)
    fit.monitor.finish(run.status == optimize::LbfgsStatus::gradient ? StopReason::gradient : StopReason::line_search);
  fit.params = params;
  fit.diagnostics = model.last_diagnostics();
  fit.diagnostics.evaluations = passes;
  fit.diagnostics.lbfgs_status = optimize::to_string(run.status);
  return fit;
}

#define ENTROSUM_INSTANTIATE(T)                                                                                   \
  template SparseCodingFit fit_sparse_coding_quasi_newton<T>(                                                     \
      const DataRef<T>&, const SparseCodingParams&, const SparseCodingOptions&, double, const IterationCallback&, \
      std::chrono::steady_clock::time_point);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum::detail
