// The convergence monitor shared by every model (DESIGN.md §5): one record per iteration with the
// ELBO F, the entropy sum S and its terms, the gap F − S, the change of F and the wall time, and
// the stopping rule.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace entrosum {

/// The ELBO per sample and the three terms of the entropy sum, evaluated at one (q, Θ).
struct ElboTerms {
  /// F(q, Θ) per sample.
  double elbo = 0.0;
  /// (1/N) Σ_n H[q_n].
  double posterior_entropy = 0.0;
  /// H[p(z | Θ)].
  double prior_entropy = 0.0;
  /// (1/N) Σ_n E_{q_n} H[p(x | z, Θ)] (a pseudo-entropy where the base measure is not constant).
  double observable_entropy = 0.0;
  /// (1/N) Σ_n log h(x_n) for a non-constant base measure h; 0 otherwise.
  double data_term = 0.0;
  /// Entropy-based annealing (DESIGN.md §3): the weights β_p, β_l of the prior and observable terms.
  /// With either ≠ 1, `elbo` is the annealed objective F_β = E log-joint with those weights + H[q], not
  /// an ELBO, and the entropy sum is weighted alike.
  double prior_beta = 1.0;
  double observable_beta = 1.0;

  /// S(q, Θ) = posterior entropy − β_p prior entropy − β_l observable entropy + data term.
  double entropy_sum() const {
    return posterior_entropy - prior_beta * prior_entropy - observable_beta * observable_entropy + data_term;
  }

  /// Whether these values are of an annealed objective (some β ≠ 1) rather than of the ELBO.
  bool annealed() const { return prior_beta != 1.0 || observable_beta != 1.0; }
};

/// One row of the monitor's history.
struct IterationRecord {
  int iteration = 0;
  ElboTerms terms;
  double entropy_sum = 0.0;
  /// F − S.
  double gap = 0.0;
  /// F_t − F_{t−1}; NaN at the first iteration and when the annealing weights changed in between.
  double change = std::numeric_limits<double>::quiet_NaN();
  /// Wall time of this iteration.
  double seconds = 0.0;
  /// F(q_t, Θ_{t+1}) and S(q_t, Θ_{t+1}): the same q with the parameters the M-step made from it.
  /// For models whose prior and observable parameters are all learned they are equal after every
  /// exact M-step (DESIGN.md §2); NaN where not recorded.
  double m_step_elbo = std::numeric_limits<double>::quiet_NaN();
  double m_step_entropy_sum = std::numeric_limits<double>::quiet_NaN();
};

/// A component that an M-step re-seeded because it was empty (no sample had any responsibility for it) or
/// collapsed (its covariance was singular), instead of failing: where the M-step put it, and why.
struct ComponentRecovery {
  /// The iteration whose M-step re-seeded it (set by the EM driver).
  int iteration = 0;
  std::ptrdiff_t component = 0;
  /// The data row it was re-seeded at (a worst-explained sample), within the data the pass covered.
  std::ptrdiff_t row = -1;
  /// "empty" or "collapsed"
  std::string reason;
};

/// Called after each recorded iteration (progress display).
using IterationCallback = std::function<void(const IterationRecord&)>;

/// Why a fit stopped. `gradient` and `line_search` come from gradient solvers: the gradient fell below
/// the solver's tolerance (converged), or no step along the search direction increased the objective.
enum class StopReason { running, tol, gap_tol, tol_and_gap_tol, max_iter, closed_form, gradient, line_search };

inline const char* to_string(StopReason reason) {
  switch (reason) {
    case StopReason::running:
      return "running";
    case StopReason::tol:
      return "tol";
    case StopReason::gap_tol:
      return "gap_tol";
    case StopReason::tol_and_gap_tol:
      return "tol_and_gap_tol";
    case StopReason::max_iter:
      return "max_iter";
    case StopReason::closed_form:
      return "closed_form";
    case StopReason::gradient:
      return "gradient";
    case StopReason::line_search:
      return "line_search";
  }
  return "unknown";
}

/// When EM stops. A negative tolerance switches its rule off; with both rules on, both must hold.
struct StopOptions {
  /// Stop when |F_t − F_{t−1}| < tol (F per sample), scikit-learn's rule.
  double tol = 1e-4;
  /// Stop when |F − S| / |F| < gap_tol.
  double gap_tol = -1.0;
  /// Stop after this many iterations (not converged).
  int max_iter = 1000;
  /// The ELBO a warm start continues from (the previous fit's last one): the first iteration's change is
  /// taken from it, as scikit-learn's warm_start does. NaN for a fresh start (no change at the first iteration).
  double previous_elbo = std::numeric_limits<double>::quiet_NaN();
  /// The tol rule compares F_t with F_{t−w}, w = tol_window, and stops when |F_t − F_{t−w}| < w · tol: the mean
  /// change over the last w iterations (all of one objective). 1 is scikit-learn's rule; solvers whose gain
  /// per step fluctuates (L-BFGS steps) set a longer window, so that one small step does not end the fit.
  int tol_window = 1;
  /// Neither rule stops the fit during its first this many un-annealed iterations. After an annealing schedule
  /// with β_p > 1, which pulls the codes and their scales towards 0, F barely moves for a few iterations while
  /// the scales grow back, and a rule would stop the fit at that degenerate point.
  int warmup_iterations = 0;
};

class ConvergenceMonitor {
 public:
  explicit ConvergenceMonitor(StopOptions options = {}) : options_(options) {}

  /// Records the terms of one iteration; returns true once the fit should stop.
  bool record(const ElboTerms& terms, double seconds, const ElboTerms* after_m_step = nullptr) {
    IterationRecord record;
    if (after_m_step) {
      record.m_step_elbo = after_m_step->elbo;
      record.m_step_entropy_sum = after_m_step->entropy_sum();
    }
    record.iteration = static_cast<int>(history_.size()) + 1;
    record.terms = terms;
    record.entropy_sum = terms.entropy_sum();
    record.gap = terms.elbo - record.entropy_sum;
    // A change is only meaningful between values of the same objective (the same annealing weights).
    if (!history_.empty() && history_.back().terms.prior_beta == terms.prior_beta &&
        history_.back().terms.observable_beta == terms.observable_beta)
      record.change = terms.elbo - history_.back().terms.elbo;
    else if (history_.empty() && !terms.annealed())
      record.change = terms.elbo - options_.previous_elbo;  // NaN unless a warm start gave the previous ELBO
    record.seconds = seconds;
    history_.push_back(record);

    // The stopping rules watch the ELBO: they do not apply while an annealed objective is recorded, nor during the
    // warm-up after it.
    if (!terms.annealed()) ++unannealed_;
    const bool watching = !terms.annealed() && unannealed_ > options_.warmup_iterations;
    const bool use_tol = options_.tol >= 0.0 && watching;
    const bool use_gap = options_.gap_tol >= 0.0 && watching;
    const double change = windowed_change();
    const bool tol_met = use_tol && !std::isnan(change) && std::abs(change) < options_.tol * options_.tol_window;
    const bool gap_met = use_gap && std::abs(record.gap) < options_.gap_tol * std::abs(terms.elbo);
    if ((use_tol || use_gap) && (tol_met || !use_tol) && (gap_met || !use_gap)) {
      reason_ = use_tol && use_gap ? StopReason::tol_and_gap_tol : use_tol ? StopReason::tol : StopReason::gap_tol;
    } else if (record.iteration >= options_.max_iter) {
      reason_ = StopReason::max_iter;
    }
    return reason_ != StopReason::running;
  }

  /// Sets the tol rule's window from the next recorded iteration on (StopOptions::tol_window).
  void set_tol_window(int window) { options_.tol_window = std::max(1, window); }

  /// Records the one evaluation of a fit solved in closed form.
  void record_closed_form(const ElboTerms& terms, double seconds) {
    record(terms, seconds);
    reason_ = StopReason::closed_form;
  }

  /// Ends a fit that its own solver stopped (gradient solvers), unless the rule stopped it already.
  void finish(StopReason reason) {
    if (reason_ == StopReason::running) reason_ = reason;
  }

  /// Notes components the M-step of the iteration about to be recorded re-seeded.
  void note_recoveries(const std::vector<ComponentRecovery>& recovered) {
    for (ComponentRecovery recovery : recovered) {
      recovery.iteration = static_cast<int>(history_.size()) + 1;
      recoveries_.push_back(std::move(recovery));
    }
  }
  /// Every re-seeded component, in order.
  const std::vector<ComponentRecovery>& recoveries() const { return recoveries_; }

  /// Wall time spent before the first iteration (the initial pass over the data).
  void set_setup_seconds(double seconds) { setup_seconds_ = seconds; }
  double setup_seconds() const { return setup_seconds_; }

  const std::vector<IterationRecord>& history() const { return history_; }
  const StopOptions& options() const { return options_; }
  StopReason stop_reason() const { return reason_; }
  bool converged() const {
    return reason_ != StopReason::running && reason_ != StopReason::max_iter && reason_ != StopReason::line_search;
  }

 private:
  /// F_t − F_{t−w} over the last w = tol_window records, NaN unless each of them has a change (one objective).
  double windowed_change() const {
    const std::size_t window = static_cast<std::size_t>(std::max(1, options_.tol_window));
    if (history_.size() < window) return std::numeric_limits<double>::quiet_NaN();
    double sum = 0.0;
    for (std::size_t i = history_.size() - window; i < history_.size(); ++i) sum += history_[i].change;
    return sum;  // NaN if any change is NaN
  }

  StopOptions options_;
  int unannealed_ = 0;  // records of the ELBO itself (β = 1)
  std::vector<IterationRecord> history_;
  std::vector<ComponentRecovery> recoveries_;
  StopReason reason_ = StopReason::running;
  double setup_seconds_ = 0.0;
};

}  // namespace entrosum
