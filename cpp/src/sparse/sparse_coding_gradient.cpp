// The ES-ELBO of Laplace sparse coding as a function of all variational parameters and W, its
// gradient (DESIGN.md §3), and the joint solver that maximises it with L-BFGS (Velychko et al.).
#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/core/lbfgs.hpp"
#include "entrosum/sparse/sparse_coding.hpp"
#include "sparse_coding_posterior.hpp"

namespace entrosum {

namespace {

template <typename T>
Eigen::Ref<const RowMatrix<double>> rows_as_double(const DataRef<T>& chunk, RowMatrix<double>& buffer) {
  if constexpr (std::is_same_v<T, double>) {
    return chunk;
  } else {
    buffer = chunk.template cast<double>();
    return buffer;
  }
}

/// The (H, H) row-major lower Cholesky factor of point `row` in a full-form `spread`.
inline auto cholesky_of(const RowMatrix<double>& spread, Index row, Index n_components) {
  return Eigen::Map<const RowMatrix<double>>(spread.row(row).data(), n_components, n_components)
      .triangularView<Eigen::Lower>();
}

}  // namespace

Eigen::MatrixXd project_to_sphere(const Eigen::MatrixXd& raw_components, const Eigen::MatrixXd& gradient) {
  // W = V diag(1/||v_h||): ∂/∂v_h = (I − w_h w_hᵀ) g_h / ||v_h||
  Eigen::MatrixXd projected(raw_components.rows(), raw_components.cols());
  for (Index h = 0; h < raw_components.cols(); ++h) {
    const double norm = raw_components.col(h).norm();
    const Eigen::VectorXd atom = raw_components.col(h) / norm;
    projected.col(h) = (gradient.col(h) - atom * atom.dot(gradient.col(h))) / norm;
  }
  return projected;
}

template <typename T>
ElboTerms sparse_coding_es_elbo(const DataRef<T>& data, const Eigen::MatrixXd& components, const VariationalParams& q,
                                PosteriorForm form, double prior_beta, double observable_beta,
                                const Execution& execution, EsElboGradient* gradient, Eigen::VectorXd* scales_out,
                                double* noise_out) {
  const Index n_samples = data.rows();
  const Index n_features = data.cols();
  const Index n_components = components.cols();
  const bool full = form == PosteriorForm::full;
  const Index spread_width = full ? n_components * n_components : n_components;
  if (components.rows() != n_features || q.means.rows() != n_samples || q.means.cols() != n_components ||
      q.spread.rows() != n_samples || q.spread.cols() != spread_width)
    throw std::invalid_argument("the variational parameters do not match the data and the components");
  const Eigen::MatrixXd gram = components.transpose() * components;  // (H, H) WᵀW

  // Per point, for the gradient: Wᵀx − WᵀWν (in gradient->means), erf(u/√2) and φ(u)/s.
  RowMatrix<double> erf_values, density_over_sd;
  if (gradient) {
    gradient->means.resize(n_samples, n_components);
    gradient->spread.resize(n_samples, spread_width);
    erf_values.resize(n_samples, n_components);
    density_over_sd.resize(n_samples, n_components);
  }
  const Index chunk_size = resolve_chunk_size(execution, n_features, sizeof(T));
  const SparseCodingStats stats = reduce_rows(
      n_samples, chunk_size, execution, [&] { return SparseCodingStats(n_features, n_components); },
      [&](Index begin, Index end, SparseCodingStats& into) {
        const Index n_rows = end - begin;
        RowMatrix<double> buffer;
        const Eigen::Ref<const RowMatrix<double>> rows = rows_as_double<T>(data.middleRows(begin, n_rows), buffer);
        const auto means = q.means.middleRows(begin, n_rows);  // (n, H)
        if (gradient) gradient->means.middleRows(begin, n_rows).noalias() = rows * components - means * gram;
        into.count += static_cast<double>(n_rows);
        into.squared_norm += rows.squaredNorm();
        into.cross.noalias() += rows.transpose() * means;
        into.second_moment.noalias() += means.transpose() * means;
        Eigen::VectorXd sd(n_components);
        Eigen::MatrixXd dense(full ? n_components : 0, full ? n_components : 0);
        for (Index i = 0; i < n_rows; ++i) {
          const Index row = begin + i;
          if (full) {
            dense = cholesky_of(q.spread, row, n_components);
            into.second_moment.noalias() += dense * dense.transpose();  // Λ = L Lᵀ
            sd = dense.rowwise().norm();
            // log det Λ = 2 Σ log |L_ii|
            into.posterior_entropy +=
                entropy::gaussian_from_log_det(n_components, 2.0 * dense.diagonal().cwiseAbs().array().log().sum());
          } else {
            sd = q.spread.row(row).transpose();
            into.second_moment.diagonal() += sd.cwiseAbs2();
            into.posterior_entropy += entropy::gaussian_from_log_det(n_components, 2.0 * sd.array().log().sum());
          }
          for (Index h = 0; h < n_components; ++h) {
            const detail::LaplaceTerms terms = detail::laplace_terms(q.means(row, h), sd(h));
            into.expected_abs(h) += terms.expected_abs;
            if (gradient) {
              erf_values(row, h) = terms.erf;
              density_over_sd(row, h) = terms.density / sd(h);
            }
          }
        }
      });

  // λ* and σ²*, where the ELBO is the entropy sum
  const Eigen::VectorXd scales = stats.expected_abs / stats.count;
  const double noise = sparse_coding_residual(stats, components) / (stats.count * static_cast<double>(n_features));
  if (!(noise > 0.0)) throw NumericalError("the expected residual is not positive");
  if (!(scales.array() > 0.0).all()) throw NumericalError("a scale λ* is not positive");
  SparseCodingParams optimum;
  optimum.components = components;
  optimum.scales = scales;
  optimum.noise_variance = noise;
  const ElboTerms terms = sparse_coding_terms(stats, optimum, prior_beta, observable_beta);
  if (scales_out) *scales_out = scales;
  if (noise_out) *noise_out = noise;
  if (!gradient) return terms;

  // ∂S/∂ν_n = (1/N)[β_l Wᵀ(x_n − Wν_n)/σ²* − β_p erf(u/√2)/λ*]
  const double inverse_count = 1.0 / stats.count;
  const Eigen::RowVectorXd prior_weight = (prior_beta * inverse_count) * scales.cwiseInverse().transpose();
  const double observable_weight = observable_beta * inverse_count / noise;
  const Eigen::MatrixXd weighted_gram = observable_weight * gram;
  for_each_chunk(n_samples, chunk_size, execution, [&](Index begin, Index end) {
    Eigen::MatrixXd factor(full ? n_components : 0, full ? n_components : 0);
    Eigen::MatrixXd product(full ? n_components : 0, full ? n_components : 0);
    for (Index row = begin; row < end; ++row) {
      gradient->means.row(row) =
          observable_weight * gradient->means.row(row) - erf_values.row(row).cwiseProduct(prior_weight);
      if (full) {
        // ∂S/∂L = 2 (∂S/∂Λ) L, lower triangle: (1/N)[diag(1/L_ii) − (β_l G/σ²* + 2β_p diag(φ/(λ* s))) L]
        factor = cholesky_of(q.spread, row, n_components);
        product.noalias() = weighted_gram * factor;
        product.noalias() +=
            (2.0 * density_over_sd.row(row).cwiseProduct(prior_weight)).transpose().asDiagonal() * factor;
        Eigen::Map<RowMatrix<double>> out(gradient->spread.row(row).data(), n_components, n_components);
        out.setZero();
        out.triangularView<Eigen::Lower>() = -product;
        out.diagonal() += inverse_count * factor.diagonal().cwiseInverse();
      } else {
        // ∂S/∂s_h = (1/N)[1/s − β_l s G_hh/σ²* − 2β_p φ(u)/λ*]
        for (Index h = 0; h < n_components; ++h) {
          const double s = q.spread(row, h);
          gradient->spread(row, h) = inverse_count / s - observable_weight * s * gram(h, h) -
                                     2.0 * prior_weight(h) * density_over_sd(row, h) * s;
        }
      }
    }
  });
  // ∂S/∂W = β_l/(N σ²*) [Σ x νᵀ − W Σ(ννᵀ + Λ)]
  gradient->components = observable_weight * (stats.cross - components * stats.second_moment);
  return terms;
}

namespace detail {

namespace {

/// The joint solver's variables as one vector: ν (N·H), then per point θ (log s for the diagonal form;
/// the lower triangle of L row by row with log L_ii on the diagonal for the full form), then V (D·H).
/// Per-point variables are stored divided by √N: the ES-ELBO is a mean over points, so its curvature in
/// one point's variables is ~1/N of its curvature in W; the scaling brings them to the same order, which
/// L-BFGS (one scalar initial Hessian) needs. It cuts the iterations on the bars test several-fold.
struct JointLayout {
  Index n_samples, n_features, n_components;
  bool full;
  double point_scale;  // √N

  Index per_point() const { return full ? n_components * (n_components + 1) / 2 : n_components; }
  Index means_offset() const { return 0; }
  Index spread_offset() const { return n_samples * n_components; }
  Index components_offset() const { return spread_offset() + n_samples * per_point(); }
  Index size() const { return components_offset() + n_features * n_components; }

  void unpack(const Eigen::VectorXd& x, VariationalParams& q, Eigen::MatrixXd& raw, Eigen::MatrixXd& components) const {
    q.means = point_scale * Eigen::Map<const RowMatrix<double>>(x.data() + means_offset(), n_samples, n_components);
    q.spread.setZero(n_samples, full ? n_components * n_components : n_components);
    for (Index n = 0; n < n_samples; ++n) {
      const double* theta = x.data() + spread_offset() + n * per_point();
      if (full) {
        for (Index i = 0, k = 0; i < n_components; ++i)
          for (Index j = 0; j <= i; ++j, ++k) {
            const double value = point_scale * theta[k];
            q.spread(n, i * n_components + j) = i == j ? std::exp(value) : value;
          }
      } else {
        for (Index h = 0; h < n_components; ++h) q.spread(n, h) = std::exp(point_scale * theta[h]);
      }
    }
    raw = Eigen::Map<const Eigen::MatrixXd>(x.data() + components_offset(), n_features, n_components);
    components = raw * raw.colwise().norm().cwiseInverse().asDiagonal();
  }

  Eigen::VectorXd pack(const VariationalParams& q, const Eigen::MatrixXd& raw) const {
    Eigen::VectorXd x(size());
    Eigen::Map<RowMatrix<double>>(x.data() + means_offset(), n_samples, n_components) = q.means / point_scale;
    for (Index n = 0; n < n_samples; ++n) {
      double* theta = x.data() + spread_offset() + n * per_point();
      if (full) {
        for (Index i = 0, k = 0; i < n_components; ++i)
          for (Index j = 0; j <= i; ++j, ++k) {
            const double value = q.spread(n, i * n_components + j);
            theta[k] = (i == j ? std::log(value) : value) / point_scale;
          }
      } else {
        for (Index h = 0; h < n_components; ++h) theta[h] = std::log(q.spread(n, h)) / point_scale;
      }
    }
    Eigen::Map<Eigen::MatrixXd>(x.data() + components_offset(), n_features, n_components) = raw;
    return x;
  }

  /// The gradient of −S with respect to x, from S's gradient in (ν, s or L, W).
  void pack_negative_gradient(const EsElboGradient& g, const VariationalParams& q, const Eigen::MatrixXd& raw,
                              Eigen::VectorXd& out) const {
    Eigen::Map<RowMatrix<double>>(out.data() + means_offset(), n_samples, n_components) = -point_scale * g.means;
    for (Index n = 0; n < n_samples; ++n) {
      double* theta = out.data() + spread_offset() + n * per_point();
      if (full) {
        for (Index i = 0, k = 0; i < n_components; ++i)
          for (Index j = 0; j <= i; ++j, ++k) {
            const Index at = i * n_components + j;
            // ∂/∂ log L_ii = L_ii ∂/∂L_ii
            theta[k] = -point_scale * (i == j ? g.spread(n, at) * q.spread(n, at) : g.spread(n, at));
          }
      } else {
        for (Index h = 0; h < n_components; ++h)
          theta[h] = -point_scale * g.spread(n, h) * q.spread(n, h);  // ∂/∂ log s = s ∂/∂s
      }
    }
    Eigen::Map<Eigen::MatrixXd>(out.data() + components_offset(), n_features, n_components) =
        -project_to_sphere(raw, g.components);
  }
};

}  // namespace

template <typename T>
SparseCodingFit fit_sparse_coding_gradient(const DataRef<T>& data, const SparseCodingParams& start,
                                           const SparseCodingOptions& options, const IterationCallback& on_iteration,
                                           std::chrono::steady_clock::time_point started) {
  using Clock = std::chrono::steady_clock;
  const Index n_samples = data.rows();
  const Index n_components = start.components.cols();
  const bool full = options.posterior == PosteriorForm::full;
  const JointLayout layout{n_samples, data.cols(), n_components, full, std::sqrt(static_cast<double>(n_samples))};

  // Start q at the E-step's optimum for the starting Θ (with the first annealing weights).
  SparseCodingPosterior<T> posterior =
      sparse_coding_posterior<T>(data, start, options.posterior, options.e_step, options.execution, true);
  VariationalParams q;
  q.means = posterior.means.template cast<double>();
  q.spread.setZero(n_samples, full ? n_components * n_components : n_components);
  for (Index n = 0; n < n_samples; ++n) {
    if (full) {
      const Eigen::MatrixXd covariance =
          Eigen::Map<const RowMatrix<T>>(posterior.spread.row(n).data(), n_components, n_components)
              .template cast<double>();
      const Eigen::LLT<Eigen::MatrixXd> llt(covariance);
      if (llt.info() != Eigen::Success)
        throw NumericalError("a starting posterior covariance is not positive definite");
      Eigen::Map<RowMatrix<double>>(q.spread.row(n).data(), n_components, n_components) = llt.matrixL();
    } else {
      q.spread.row(n) = posterior.spread.row(n).template cast<double>().cwiseSqrt();
    }
  }
  Eigen::VectorXd x = layout.pack(q, start.components);
  SparseCodingFit fit{start, ConvergenceMonitor(options.stop), {}};
  // The E-step diagnostics are those of the starting E-step.
  fit.diagnostics.mean_solver_steps = posterior.stats.solver_steps / posterior.stats.count;
  fit.diagnostics.max_solver_steps = posterior.stats.max_solver_steps;
  fit.diagnostics.unconverged = posterior.stats.unconverged;
  posterior = {};

  fit.monitor.set_setup_seconds(std::chrono::duration<double>(Clock::now() - started).count());

  // The objective −S_β and its gradient; the terms, λ* and σ²* of the last evaluation are kept.
  double prior_beta = 1.0, observable_beta = 1.0;
  ElboTerms last_terms;
  Eigen::VectorXd last_scales;
  double last_noise = 0.0;
  Eigen::MatrixXd raw, components;
  EsElboGradient gradient;
  auto objective = [&](const Eigen::VectorXd& point, Eigen::VectorXd& negative_gradient) {
    layout.unpack(point, q, raw, components);
    try {
      last_terms = sparse_coding_es_elbo<T>(data, components, q, options.posterior, prior_beta, observable_beta,
                                            options.execution, &gradient, &last_scales, &last_noise);
    } catch (const NumericalError&) {
      return std::numeric_limits<double>::infinity();  // outside the domain: the line search steps back
    }
    layout.pack_negative_gradient(gradient, q, raw, negative_gradient);
    return -last_terms.elbo;
  };

  // The annealing schedule indexes iterations; a stretch of equal weights is one L-BFGS run (its
  // curvature pairs belong to one objective).
  const AnnealingSchedule& schedule = options.annealing;
  const int schedule_length = static_cast<int>(std::max(schedule.prior.size(), schedule.observable.size()));
  int position = 0;  // index into the schedule
  auto last_time = Clock::now();
  bool stopped = false;
  optimize::LbfgsResult run;
  while (!stopped) {
    prior_beta = schedule.prior_beta(position);
    observable_beta = schedule.observable_beta(position);
    int stretch_end = position + 1;
    while (stretch_end < schedule_length && schedule.prior_beta(stretch_end) == prior_beta &&
           schedule.observable_beta(stretch_end) == observable_beta)
      ++stretch_end;
    const bool final_stretch = position >= schedule_length - 1 && prior_beta == 1.0 && observable_beta == 1.0;
    optimize::LbfgsOptions lbfgs;
    lbfgs.memory = options.lbfgs_memory;
    lbfgs.gtol = 1e-12;
    lbfgs.max_iter = final_stretch ? std::numeric_limits<int>::max() : stretch_end - position;
    run =
        optimize::minimize_lbfgs(objective, x, lbfgs, [&](int, double, const Eigen::VectorXd&, const Eigen::VectorXd&) {
          if (options.execution.interrupted && options.execution.interrupted()) throw Interrupted();
          const auto now = Clock::now();
          const double seconds = std::chrono::duration<double>(now - last_time).count();
          last_time = now;
          const bool stop = fit.monitor.record(last_terms, seconds);
          if (on_iteration) on_iteration(fit.monitor.history().back());
          return stop;
        });
    fit.diagnostics.evaluations += run.evaluations;
    if (run.status == optimize::LbfgsStatus::callback) {
      stopped = true;
    } else if (final_stretch || position >= schedule_length) {
      fit.monitor.finish(run.status == optimize::LbfgsStatus::gradient ? StopReason::gradient
                                                                       : StopReason::line_search);
      stopped = true;
    } else {
      position = stretch_end;  // this stretch ran its iterations (or converged early): next weights
    }
  }
  fit.diagnostics.lbfgs_status = optimize::to_string(run.status);

  // Θ at the last point: W from V, λ = λ*, σ² = σ²* (the objective's last evaluation was there).
  fit.params.components = components;
  fit.params.scales = last_scales;
  fit.params.noise_variance = last_noise;
  fit.params.prior_beta = schedule.prior_beta(position);
  fit.params.observable_beta = schedule.observable_beta(position);
  fit.params.step = position;
  return fit;
}

}  // namespace detail

#define ENTROSUM_INSTANTIATE(T)                                                                                        \
  template ElboTerms sparse_coding_es_elbo<T>(const DataRef<T>&, const Eigen::MatrixXd&, const VariationalParams&,     \
                                              PosteriorForm, double, double, const Execution&, EsElboGradient*,        \
                                              Eigen::VectorXd*, double*);                                              \
  template SparseCodingFit detail::fit_sparse_coding_gradient<T>(const DataRef<T>&, const SparseCodingParams&,         \
                                                                 const SparseCodingOptions&, const IterationCallback&, \
                                                                 std::chrono::steady_clock::time_point);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
