// Limited-memory BFGS for minimising a smooth function of a vector (Nocedal & Wright, Numerical
// Optimization, 2nd ed.: the two-loop recursion, Alg. 7.4, and a line search for the strong Wolfe
// conditions, Alg. 3.5 and 3.6, with safeguarded cubic interpolation). It knows nothing of models; the
// sparse-coding joint solver drives it.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace entrosum::optimize {

struct LbfgsOptions {
  /// Correction pairs (s, y) kept.
  int memory = 10;
  /// Most iterations (accepted steps).
  int max_iter = 1000;
  /// Converged when ||∇f||_∞ ≤ gtol · max(1, |f|).
  double gtol = 1e-10;
  /// Sufficient-decrease constant c₁ of the Wolfe conditions.
  double armijo = 1e-4;
  /// Curvature constant c₂ of the strong Wolfe conditions.
  double curvature = 0.9;
  /// Most objective evaluations in one line search.
  int max_evaluations = 30;
  /// The line search extrapolates to at most this multiple of its first trial step (it would otherwise
  /// follow an unbounded direction as far as its evaluations allow).
  double max_step_growth = 64.0;
};

enum class LbfgsStatus {
  gradient,     ///< ||∇f||_∞ ≤ gtol · max(1, |f|)
  callback,     ///< the per-iteration callback asked to stop
  max_iter,     ///< max_iter steps taken
  line_search,  ///< no step decreased f, along the L-BFGS direction nor then along the (preconditioned) gradient
};

inline const char* to_string(LbfgsStatus status) {
  switch (status) {
    case LbfgsStatus::gradient:
      return "gradient";
    case LbfgsStatus::callback:
      return "callback";
    case LbfgsStatus::max_iter:
      return "max_iter";
    case LbfgsStatus::line_search:
      return "line_search";
  }
  return "unknown";
}

struct LbfgsResult {
  LbfgsStatus status = LbfgsStatus::max_iter;
  int iterations = 0;
  int evaluations = 0;
  double value = 0.0;
};

namespace detail {

/// Minimiser of the cubic that matches f and f' at a and b (N&W eq. 3.59), kept at least a tenth of
/// the interval away from its ends; the midpoint when the cubic has no usable minimiser.
inline double cubic_minimiser(double a, double fa, double ga, double b, double fb, double gb) {
  const double low = std::min(a, b);
  const double high = std::max(a, b);
  const double margin = 0.1 * (high - low);
  const double d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
  const double discriminant = d1 * d1 - ga * gb;
  double x = 0.5 * (low + high);
  if (discriminant >= 0.0 && std::isfinite(discriminant) && std::isfinite(fa) && std::isfinite(fb)) {
    const double d2 = std::copysign(std::sqrt(discriminant), b - a);
    const double denominator = gb - ga + 2.0 * d2;
    if (denominator != 0.0) {
      const double candidate = b - (b - a) * (gb + d2 - d1) / denominator;
      if (std::isfinite(candidate)) x = candidate;
    }
  }
  return std::clamp(x, low + margin, high - margin);
}

}  // namespace detail

/// No preconditioner: the initial inverse Hessian is a multiple of the identity.
struct Identity {};

/// Minimises f from `x` (updated in place). `objective(x, gradient)` returns f(x) and writes ∇f(x)
/// (a non-finite value marks x as outside the domain); `on_iteration(iteration, f, x, gradient)` runs
/// after every accepted step and returns true to stop. The last evaluation of the objective is always
/// at the returned x, so a caller may cache what it computed there.
///
/// `precondition(v, out)`, when given, writes out = P v for a symmetric positive definite P, taken at the
/// point of the objective's last evaluation (the current x), which may change from step to step. It is
/// the initial inverse Hessian of the two-loop recursion, scaled by sᵀy / (yᵀ P y) once curvature pairs
/// exist (Nocedal & Wright §7.2), and the first step of a fresh memory is the full step −P ∇f: P is meant
/// to be a Newton-like step of its own (the EM step, for the acceleration of EM).
template <typename Objective, typename OnIteration, typename Precondition = Identity>
LbfgsResult minimize_lbfgs(Objective&& objective, Eigen::VectorXd& x, const LbfgsOptions& options,
                           OnIteration&& on_iteration, Precondition&& precondition = Identity{}) {
  constexpr bool preconditioned = !std::is_same_v<std::decay_t<Precondition>, Identity>;
  using Eigen::Index;
  using Eigen::VectorXd;
  const Index n = x.size();
  const int memory = std::max(1, options.memory);
  LbfgsResult result;
  VectorXd gradient(n), direction(n), start(n), start_gradient(n), scaled(n);
  double value = objective(x, gradient);
  ++result.evaluations;
  if (!std::isfinite(value)) {
    result.status = LbfgsStatus::line_search;
    result.value = value;
    return result;
  }

  std::vector<VectorXd> steps, changes;    // ring buffers of s_k = x_{k+1} − x_k, y_k = ∇f_{k+1} − ∇f_k
  std::vector<double> inverse_curvatures;  // ρ_k = 1/(y_kᵀ s_k)
  std::vector<double> alphas(static_cast<std::size_t>(memory));
  int stored = 0, newest = -1;
  auto forget = [&] {  // drop the curvature pairs: the next direction is the (preconditioned) gradient's
    steps.clear();
    changes.clear();
    inverse_curvatures.clear();
    stored = 0;
    newest = -1;
  };

  for (;;) {
    if (gradient.lpNorm<Eigen::Infinity>() <= options.gtol * std::max(1.0, std::abs(value))) {
      result.status = LbfgsStatus::gradient;
      break;
    }
    if (result.iterations >= options.max_iter) {
      result.status = LbfgsStatus::max_iter;
      break;
    }
    // Two-loop recursion: direction = −H ∇f with H₀ = (sᵀy / yᵀy) I.
    direction = -gradient;
    for (int k = 0; k < stored; ++k) {
      const int i = (newest - k + memory) % memory;
      alphas[static_cast<std::size_t>(i)] =
          inverse_curvatures[static_cast<std::size_t>(i)] * steps[static_cast<std::size_t>(i)].dot(direction);
      direction -= alphas[static_cast<std::size_t>(i)] * changes[static_cast<std::size_t>(i)];
    }
    if constexpr (preconditioned) {
      precondition(direction, scaled);
      direction = scaled;
      if (stored > 0) {
        const auto& y = changes[static_cast<std::size_t>(newest)];
        precondition(y, scaled);
        direction *= 1.0 / (inverse_curvatures[static_cast<std::size_t>(newest)] * y.dot(scaled));
      }
    } else if (stored > 0) {
      const auto& y = changes[static_cast<std::size_t>(newest)];
      direction *= 1.0 / (inverse_curvatures[static_cast<std::size_t>(newest)] * y.squaredNorm());
    }
    for (int k = stored - 1; k >= 0; --k) {
      const int i = (newest - k + memory) % memory;
      const double beta =
          inverse_curvatures[static_cast<std::size_t>(i)] * changes[static_cast<std::size_t>(i)].dot(direction);
      direction += (alphas[static_cast<std::size_t>(i)] - beta) * steps[static_cast<std::size_t>(i)];
    }
    double slope = gradient.dot(direction);
    if (!(slope < 0.0)) {  // not a descent direction: forget the curvature pairs
      forget();
      if constexpr (preconditioned) {
        precondition(gradient, direction);
        direction = -direction;
      } else {
        direction = -gradient;
      }
      slope = gradient.dot(direction);
      if (!(slope < 0.0)) {  // P not positive definite at this point: give up rather than step uphill
        result.status = LbfgsStatus::line_search;
        break;
      }
    }
    // The first step of a fresh memory is scaled to move no coordinate by more than 1 (preconditioned:
    // the full step).
    double step = stored == 0 && !preconditioned ? std::min(1.0, 1.0 / direction.lpNorm<Eigen::Infinity>()) : 1.0;
    const double max_step = options.max_step_growth * step;

    // ---- line search for the strong Wolfe conditions along `direction` from `start` ----
    start = x;
    start_gradient = gradient;
    const double start_value = value;
    auto evaluate = [&](double t, double& slope_at) {
      x = start + t * direction;
      double f = objective(x, gradient);
      ++result.evaluations;
      if (!std::isfinite(f)) {
        slope_at = std::numeric_limits<double>::quiet_NaN();
        return std::numeric_limits<double>::infinity();
      }
      slope_at = gradient.dot(direction);
      return f;
    };
    auto sufficient = [&](double t, double f) { return f <= start_value + options.armijo * t * slope; };
    auto curved = [&](double slope_at) { return std::abs(slope_at) <= -options.curvature * slope; };

    bool accepted = false;
    double accepted_step = 0.0;
    double low = 0.0, low_value = start_value, low_slope = slope;  // best point meeting sufficient decrease
    double high = 0.0, high_value = 0.0, high_slope = 0.0;
    bool bracketed = false;
    int evaluations = 0;
    double previous = 0.0, previous_value = start_value, previous_slope = slope;
    while (evaluations < options.max_evaluations) {
      double slope_at = 0.0;
      const double f = evaluate(step, slope_at);
      ++evaluations;
      if (!sufficient(step, f) || (evaluations > 1 && f >= previous_value)) {
        low = previous, low_value = previous_value, low_slope = previous_slope;
        high = step, high_value = f, high_slope = slope_at;
        bracketed = true;
        break;
      }
      if (curved(slope_at)) {
        accepted = true;
        accepted_step = step;
        value = f;
        break;
      }
      if (slope_at >= 0.0) {
        low = step, low_value = f, low_slope = slope_at;
        high = previous, high_value = previous_value, high_slope = previous_slope;
        bracketed = true;
        break;
      }
      low = step, low_value = f, low_slope = slope_at;
      previous = step, previous_value = f, previous_slope = slope_at;
      if (step >= max_step) {  // the longest step allowed still descends: take it
        accepted = true;
        accepted_step = step;
        value = f;
        break;
      }
      step = std::min(4.0 * step, max_step);  // still descending steeply: extrapolate
    }
    while (bracketed && !accepted && evaluations < options.max_evaluations) {
      // Zoom: `low` meets sufficient decrease with the lowest f so far; the minimiser lies between.
      if (std::abs(high - low) <= 1e-16 * std::max(1.0, std::abs(low))) break;
      const double trial = std::isfinite(high_value)
                               ? detail::cubic_minimiser(low, low_value, low_slope, high, high_value, high_slope)
                               : 0.5 * (low + high);
      double slope_at = 0.0;
      const double f = evaluate(trial, slope_at);
      ++evaluations;
      if (!sufficient(trial, f) || f >= low_value) {
        high = trial, high_value = f, high_slope = slope_at;
      } else {
        if (curved(slope_at)) {
          accepted = true;
          accepted_step = trial;
          value = f;
          break;
        }
        if (slope_at * (high - low) >= 0.0) high = low, high_value = low_value, high_slope = low_slope;
        low = trial, low_value = f, low_slope = slope_at;
      }
    }
    if (!accepted) {
      if (low > 0.0) {
        // Sufficient decrease without the curvature condition: take it (the pair is kept only if sᵀy > 0).
        double slope_at = 0.0;
        value = evaluate(low, slope_at);
        accepted_step = low;
      } else {
        x = start;
        value = objective(x, gradient);  // so that the last evaluation is at the returned x
        ++result.evaluations;
        // Stale curvature pairs can point where f does not decrease: search once more along the
        // (preconditioned) gradient before giving up. Only a failure along that one ends the run.
        if (stored > 0) {
          forget();
          continue;
        }
        result.status = LbfgsStatus::line_search;
        break;
      }
    }

    // ---- curvature pair ----
    VectorXd s = accepted_step * direction;
    VectorXd y = gradient - start_gradient;
    const double sy = s.dot(y);
    if (sy > 1e-12 * s.norm() * y.norm()) {
      if (static_cast<int>(steps.size()) < memory) {
        newest = static_cast<int>(steps.size());
        steps.push_back(std::move(s));
        changes.push_back(std::move(y));
        inverse_curvatures.push_back(1.0 / sy);
      } else {
        newest = (newest + 1) % memory;
        steps[static_cast<std::size_t>(newest)] = std::move(s);
        changes[static_cast<std::size_t>(newest)] = std::move(y);
        inverse_curvatures[static_cast<std::size_t>(newest)] = 1.0 / sy;
      }
      stored = std::min(stored + 1, memory);
    }
    ++result.iterations;
    if (on_iteration(result.iterations, value, x, gradient)) {
      result.status = LbfgsStatus::callback;
      break;
    }
  }
  result.value = value;
  return result;
}

}  // namespace entrosum::optimize
