#include "entrosum/binary/sigmoid_belief_net.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "binary_posterior.hpp"
#include "entrosum/core/em.hpp"
#include "entrosum/core/entropy.hpp"
#include "entrosum/core/errors.hpp"

namespace entrosum {

namespace {

/// log(1 + e^a) without overflow.
inline double softplus(double a) { return a > 0.0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a)); }
inline double logistic(double a) {
  if (a >= 0.0) return 1.0 / (1.0 + std::exp(-a));
  const double e = std::exp(a);
  return e / (1.0 + e);
}

/// Σ_d log(1 + e^{a_d}) of each row of a, as max(a, 0) + log1p(e^{−|a|}) with exp and log in Eigen's packet math
/// (a scalar log1p and exp per entry took 40% of a truncated fit). Eigen has no packet log1p for double, so
/// log1p(u) = log(w) · u / (w − 1) with w = 1 + u, which corrects the rounding of 1 + u to within a few ulp; u itself
/// where w rounds to 1.
Eigen::VectorXd softplus_row_sums(const RowMatrix<double>& a) {
  using RowArray = Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  constexpr Index kBlockRows = 128;  // the temporaries stay in cache; a whole proposal table would be tens of MB
  Eigen::VectorXd sums(a.rows());
  RowArray u, log1p_u;
  for (Index start = 0; start < a.rows(); start += kBlockRows) {
    const Index rows = std::min(kBlockRows, a.rows() - start);
    const auto block = a.middleRows(start, rows).array();
    u = (-block.abs()).exp();  // in (0, 1]
    log1p_u = (u + 1.0).log();
    for (Index i = 0; i < u.size(); ++i) {
      const double w = 1.0 + u.data()[i];
      log1p_u.data()[i] = w == 1.0 ? u.data()[i] : log1p_u.data()[i] * (u.data()[i] / (w - 1.0));
    }
    sums.segment(start, rows) = (block.max(0.0) + log1p_u).rowwise().sum();
  }
  return sums;
}

/// (m × D) activations W s + b of state rows.
RowMatrix<double> activations(const RowMatrix<double>& states, const SigmoidBeliefNetParams& params) {
  RowMatrix<double> out = states * params.components.transpose();
  out.rowwise() += params.offset.transpose();
  return out;
}

/// log p(x, s | Θ) = xᵀa − Σ_d log(1 + e^{a_d}) + log p(s), a = W s + b: a product of the rows with the states'
/// activations plus a per-state constant.
class SigmoidBeliefNetJoint {
 public:
  explicit SigmoidBeliefNetJoint(const SigmoidBeliefNetParams& params) : params_(params) {}

  /// R = [a, c] with the states' activations a = W s + b and c = log p(s) − Σ_d log(1 + e^{a_d}); L = [x, 1].
  RowMatrix<double> state_factors(const RowMatrix<double>& states) const {
    Eigen::VectorXd constant;
    const RowMatrix<double> a = state_part(states, constant);
    RowMatrix<double> out(a.rows(), a.cols() + 1);
    out.leftCols(a.cols()) = a;
    out.col(a.cols()) = constant;
    return out;
  }

  RowMatrix<double> row_factors(const detail::RowsD& rows, Eigen::VectorXd& row_offsets) const {
    RowMatrix<double> out(rows.rows(), rows.cols() + 1);
    out.leftCols(rows.cols()) = rows;
    out.col(rows.cols()).setOnes();
    row_offsets = Eigen::VectorXd::Zero(rows.rows());
    return out;
  }

 private:
  RowMatrix<double> state_part(const RowMatrix<double>& states, Eigen::VectorXd& constant) const {
    const RowMatrix<double> a = activations(states, params_);
    constant = detail::log_prior_of(states, params_.prior) - softplus_row_sums(a);
    return a;
  }

  const SigmoidBeliefNetParams& params_;
};

/// Adds a chunk's per-state sums. Exact: every row has all states, so Q = qᵀw and Σ w q x = (w ⊙ q)ᵀ X.
/// Truncated: the (row, state) pairs are sorted by state and summed in row order within each state.
void add_chunk(const detail::RowsD& rows, const Eigen::VectorXd& weights, const detail::ChunkPosterior& posterior,
               SigmoidBeliefNetStats& stats) {
  if (posterior.shared) {
    // every chunk of the pass has every state, in the same order: the sums go straight into the tables
    if (stats.keys.empty()) {
      stats.keys.assign(posterior.shared_keys, posterior.shared_keys + posterior.width);
      stats.state_weight = Eigen::VectorXd::Zero(posterior.width);
      stats.data_sum = RowMatrix<double>::Zero(posterior.width, stats.n_features);
    }
    stats.state_weight.noalias() += posterior.q.transpose() * weights;
    stats.data_sum.noalias() += posterior.q.transpose() * (weights.asDiagonal() * rows);
    return;
  }
  SigmoidBeliefNetStats chunk(stats.n_features, stats.n_components);
  const Index n = posterior.q.rows();
  const Index width = posterior.width;
  std::vector<Index> order(static_cast<std::size_t>(n * width));
  std::iota(order.begin(), order.end(), Index(0));
  const auto& keys = posterior.own_keys;
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
    return keys[static_cast<std::size_t>(a)] < keys[static_cast<std::size_t>(b)];
  });
  std::vector<Index> slot(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::uint64_t key = keys[static_cast<std::size_t>(order[i])];
    if (chunk.keys.empty() || chunk.keys.back() != key) chunk.keys.push_back(key);
    slot[i] = static_cast<Index>(chunk.keys.size()) - 1;
  }
  chunk.state_weight = Eigen::VectorXd::Zero(static_cast<Index>(chunk.keys.size()));
  chunk.data_sum = RowMatrix<double>::Zero(static_cast<Index>(chunk.keys.size()), stats.n_features);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Index pair = order[i];
    const Index row = pair / width;
    const double w = weights(row) * posterior.q(row, pair % width);
    chunk.state_weight(slot[i]) += w;
    chunk.data_sum.row(slot[i]) += w * rows.row(row);
  }
  // the entropy and log-normaliser sums were added by the caller; only the tables merge here
  stats += chunk;
}

/// Σ_k [x̄_kᵀ a_k − Q_k Σ_d log(1 + e^{a_kd})] over one dimension d: the M-step's objective.
double dimension_objective(const Eigen::VectorXd& a, const Eigen::VectorXd& weight, const Eigen::VectorXd& target) {
  double sum = 0.0;
  for (Index k = 0; k < a.size(); ++k) sum += target(k) * a(k) - weight(k) * softplus(a(k));
  return sum;
}

}  // namespace

SigmoidBeliefNetStats& SigmoidBeliefNetStats::operator+=(const SigmoidBeliefNetStats& other) {
  weight += other.weight;
  posterior_entropy += other.posterior_entropy;
  log_joint_sum += other.log_joint_sum;
  if (n_features == 0) {
    n_features = other.n_features;
    n_components = other.n_components;
  }
  if (other.keys.empty()) return *this;
  if (keys.empty()) {
    keys = other.keys;
    state_weight = other.state_weight;
    data_sum = other.data_sum;
    return *this;
  }
  if (keys == other.keys) {  // the exact posterior: every table holds every state
    state_weight += other.state_weight;
    data_sum += other.data_sum;
    return *this;
  }
  // merge two ascending tables
  std::vector<std::uint64_t> merged;
  merged.reserve(keys.size() + other.keys.size());
  std::set_union(keys.begin(), keys.end(), other.keys.begin(), other.keys.end(), std::back_inserter(merged));
  Eigen::VectorXd merged_weight = Eigen::VectorXd::Zero(static_cast<Index>(merged.size()));
  RowMatrix<double> merged_sum = RowMatrix<double>::Zero(static_cast<Index>(merged.size()), n_features);
  const auto add = [&](const SigmoidBeliefNetStats& table) {
    std::size_t k = 0;
    for (std::size_t i = 0; i < table.keys.size(); ++i) {
      while (merged[k] != table.keys[i]) ++k;
      merged_weight(static_cast<Index>(k)) += table.state_weight(static_cast<Index>(i));
      merged_sum.row(static_cast<Index>(k)) += table.data_sum.row(static_cast<Index>(i));
    }
  };
  add(*this);
  add(other);
  keys = std::move(merged);
  state_weight = std::move(merged_weight);
  data_sum = std::move(merged_sum);
  return *this;
}

void SigmoidBeliefNetStats::scale(double factor) {
  weight *= factor;
  posterior_entropy *= factor;
  log_joint_sum *= factor;
  state_weight *= factor;
  data_sum *= factor;
}

void check_sigmoid_belief_net_params(const SigmoidBeliefNetParams& params, Index n_features) {
  const Index n_components = params.components.cols();
  if (params.components.rows() != n_features || n_components < 1)
    throw std::invalid_argument("components must have shape (n_features, n_components)");
  if (params.offset.size() != n_features) throw std::invalid_argument("offset must have n_features entries");
  if (params.prior.size() != n_components) throw std::invalid_argument("prior must have n_components entries");
  if (!params.components.allFinite() || !params.offset.allFinite())
    throw std::invalid_argument("components and offset must be finite");
  if (!((params.prior.array() > 0.0) && (params.prior.array() < 1.0)).all())
    throw std::invalid_argument("prior probabilities must lie strictly between 0 and 1");
}

ElboTerms sigmoid_belief_net_terms(const SigmoidBeliefNetStats& stats, const SigmoidBeliefNetParams& params) {
  const Index n_components = params.components.cols();
  const double count = stats.weight;
  const RowMatrix<double> states =
      states_matrix(stats.keys.data(), static_cast<Index>(stats.keys.size()), n_components);
  const RowMatrix<double> a = activations(states, params);
  double log_likelihood = stats.data_sum.cwiseProduct(a).sum();
  double observable = 0.0;
  for (Index k = 0; k < a.rows(); ++k) {
    double softplus_sum = 0.0;
    double entropy_sum = 0.0;
    for (Index d = 0; d < a.cols(); ++d) {
      const double s = softplus(a(k, d));
      softplus_sum += s;
      entropy_sum += s - a(k, d) * logistic(a(k, d));  // H_B(S(a)) = log(1 + e^a) − a S(a)
    }
    log_likelihood -= stats.state_weight(k) * softplus_sum;
    observable += stats.state_weight(k) * entropy_sum;
  }
  const Eigen::VectorXd on = states.transpose() * stats.state_weight;
  ElboTerms terms;
  terms.elbo = (detail::expected_log_prior(on, count, params.prior) + log_likelihood + stats.posterior_entropy) / count;
  terms.posterior_entropy = stats.posterior_entropy / count;
  for (Index h = 0; h < n_components; ++h) terms.prior_entropy += entropy::bernoulli(params.prior(h));
  terms.observable_entropy = observable / count;
  return terms;
}

SigmoidBeliefNetParams sigmoid_belief_net_m_step(const SigmoidBeliefNetStats& stats,
                                                 const SigmoidBeliefNetParams& params, const NewtonOptions& newton) {
  const Index n_features = params.components.rows();
  const Index n_components = params.components.cols();
  const double count = stats.weight;
  if (!(count > 0.0)) throw NumericalError("the statistics hold no weight");
  const Index n_keys = static_cast<Index>(stats.keys.size());
  RowMatrix<double> features(n_keys, n_components + 1);  // [s, 1]
  features.leftCols(n_components) = states_matrix(stats.keys.data(), n_keys, n_components);
  features.col(n_components).setOnes();
  const Eigen::VectorXd on = features.leftCols(n_components).transpose() * stats.state_weight;

  SigmoidBeliefNetParams updated = params;
  updated.prior = detail::prior_m_step(on, count, false);
  Eigen::VectorXd p(n_keys);
  Eigen::VectorXd curvature(n_keys);
  for (Index d = 0; d < n_features; ++d) {
    Eigen::VectorXd w(n_components + 1);
    w << params.components.row(d).transpose(), params.offset(d);
    const Eigen::VectorXd target = stats.data_sum.col(d);
    Eigen::VectorXd a = features * w;
    double objective = dimension_objective(a, stats.state_weight, target);
    for (int iteration = 0; iteration < newton.max_iter; ++iteration) {
      for (Index k = 0; k < n_keys; ++k) {
        p(k) = logistic(a(k));
        curvature(k) = stats.state_weight(k) * p(k) * (1.0 - p(k));
      }
      const Eigen::VectorXd gradient = features.transpose() * (target - stats.state_weight.cwiseProduct(p));
      Eigen::MatrixXd hessian = features.transpose() * curvature.asDiagonal() * features;
      // a ridge far below the curvature keeps directions no state excites (units never on) solvable
      hessian.diagonal().array() += 1e-12 * std::max(hessian.diagonal().maxCoeff(), 1e-300);
      const Eigen::LDLT<Eigen::MatrixXd> ldlt(hessian);
      const Eigen::VectorXd step = ldlt.solve(gradient);
      const double decrement = gradient.dot(step);
      if (!std::isfinite(decrement)) throw NumericalError("the Newton step of the M-step is not finite");
      // Converged when the predicted gain is below the tolerance and so is w̃ᵀ∇, this dimension's share of F − S
      // (in directions of vanishing curvature, rare states that separate x_d, the first can be small while the
      // weights still grow).
      if (0.5 * decrement <= newton.tol * count && std::abs(w.dot(gradient)) <= newton.tol * count) break;
      // Backtracking on the concave objective: a step is taken when it gains enough, or when the slope along the
      // step is still non-negative at its end (then it gained too, by concavity; this holds where the gain is
      // below the objective's rounding).
      double t = 1.0;
      bool moved = false;
      for (; t > 1e-12; t *= 0.5) {
        const Eigen::VectorXd trial_w = w + t * step;
        const Eigen::VectorXd trial_a = features * trial_w;
        const double trial = dimension_objective(trial_a, stats.state_weight, target);
        bool accept = trial >= objective + 0.25 * t * decrement;
        if (!accept) {
          double slope = 0.0;
          for (Index k = 0; k < n_keys; ++k)
            slope += (target(k) - stats.state_weight(k) * logistic(trial_a(k))) * features.row(k).dot(step);
          accept = slope >= 0.0 && std::isfinite(trial);
        }
        if (accept) {
          w = trial_w;
          a = trial_a;
          objective = trial;
          moved = true;
          break;
        }
      }
      if (!moved) break;
    }
    if (!w.allFinite()) throw NumericalError("the weights of observed dimension " + std::to_string(d) + " diverged");
    updated.components.row(d) = w.head(n_components).transpose();
    updated.offset(d) = w(n_components);
  }
  return updated;
}

template <typename T>
SigmoidBeliefNetStats sigmoid_belief_net_e_step(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                                const SigmoidBeliefNetParams& params,
                                                const BinaryPosteriorOptions& posterior, TruncatedStates* states,
                                                int iteration, const Execution& execution,
                                                const BinaryPosteriorOutput<T>& output) {
  const Index n_features = data.cols();
  const Index n_components = params.components.cols();
  check_sigmoid_belief_net_params(params, n_features);
  check_binary_posterior(posterior, n_components);
  const SigmoidBeliefNetJoint joint(params);
  return detail::binary_e_step<T, SigmoidBeliefNetStats>(
      data, weights, joint, n_components, params.prior, posterior, states, iteration, execution, output,
      [&] { return SigmoidBeliefNetStats(n_features, n_components); }, add_chunk);
}

namespace {

template <typename T>
class SigmoidBeliefNetModel {
 public:
  using Params = SigmoidBeliefNetParams;
  using Expectation = SigmoidBeliefNetStats;

  SigmoidBeliefNetModel(const DataRef<T>& data, const Eigen::VectorXd& weights, const SigmoidBeliefNetOptions& options,
                        Index n_components)
      : data_(data), weights_(weights), options_(options) {
    if (options.posterior.kind == BinaryPosteriorKind::truncated)
      states_ = TruncatedStates(data.rows(), options.posterior.n_states, n_components, options.posterior.seed);
  }

  Expectation e_step(const Params& params) const {
    return sigmoid_belief_net_e_step<T>(data_, weights_, params, options_.posterior, &states_, iteration_++,
                                        options_.execution);
  }
  ElboTerms evaluate(const Expectation& stats, const Params& params) const {
    return sigmoid_belief_net_terms(stats, params);
  }
  Params m_step(const Expectation& stats, const Params& params) const {
    return sigmoid_belief_net_m_step(stats, params, options_.newton);
  }

 private:
  DataRef<T> data_;
  const Eigen::VectorXd& weights_;
  const SigmoidBeliefNetOptions& options_;
  mutable TruncatedStates states_;
  mutable int iteration_ = 0;
};

}  // namespace

template <typename T>
SigmoidBeliefNetFit fit_sigmoid_belief_net(const DataRef<T>& data, const Eigen::VectorXd& weights,
                                           const SigmoidBeliefNetParams& initial,
                                           const SigmoidBeliefNetOptions& options,
                                           const IterationCallback& on_iteration) {
  const auto start = std::chrono::steady_clock::now();
  if (data.rows() < 1) throw std::invalid_argument("the data have no rows");
  check_sigmoid_belief_net_params(initial, data.cols());
  check_binary_posterior(options.posterior, initial.components.cols());
  if (weights.size() != 0 &&
      (weights.size() != data.rows() || !(weights.array() >= 0.0).all() || !(weights.sum() > 0.0)))
    throw std::invalid_argument("sample weights must be one non-negative value per row, not all zero");
  if (!(options.newton.tol >= 0.0) || options.newton.max_iter < 1)
    throw std::invalid_argument("the M-step's Newton iterations need tol >= 0 and max_iter >= 1");
  const Index bad = first_row_where(
      data, options.execution, [](const auto& row) { return !((row.array() == T(0)) || (row.array() == T(1))).all(); });
  if (bad >= 0) throw std::invalid_argument("the data must be binary (0 or 1); row " + std::to_string(bad) + " is not");
  const SigmoidBeliefNetModel<T> model(data, weights, options, initial.components.cols());
  SigmoidBeliefNetFit fit{initial, ConvergenceMonitor(options.stop)};
  fit.monitor.set_setup_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fit.params = run_em(model, initial, fit.monitor, on_iteration, options.execution.interrupted);
  return fit;
}

template <typename T>
SigmoidBeliefNetStats sigmoid_belief_net_infer(const DataRef<T>& data, const SigmoidBeliefNetParams& params,
                                               const BinaryPosteriorOptions& posterior, int rounds,
                                               const Execution& execution, const BinaryPosteriorOutput<T>& output) {
  check_binary_posterior(posterior, params.components.cols());
  const Eigen::VectorXd no_weights;
  if (posterior.kind == BinaryPosteriorKind::exact)
    return sigmoid_belief_net_e_step<T>(data, no_weights, params, posterior, nullptr, 0, execution, output);
  if (rounds < 1) throw std::invalid_argument("inference needs at least one round of proposals");
  TruncatedStates states(data.rows(), posterior.n_states, params.components.cols(), posterior.seed);
  for (int round = 0; round + 1 < rounds; ++round)
    sigmoid_belief_net_e_step<T>(data, no_weights, params, posterior, &states, round, execution);
  return sigmoid_belief_net_e_step<T>(data, no_weights, params, posterior, &states, rounds - 1, execution, output);
}

#define ENTROSUM_INSTANTIATE(T)                                                                                     \
  template SigmoidBeliefNetStats sigmoid_belief_net_e_step<T>(                                                      \
      const DataRef<T>&, const Eigen::VectorXd&, const SigmoidBeliefNetParams&, const BinaryPosteriorOptions&,      \
      TruncatedStates*, int, const Execution&, const BinaryPosteriorOutput<T>&);                                    \
  template SigmoidBeliefNetFit fit_sigmoid_belief_net<T>(const DataRef<T>&, const Eigen::VectorXd&,                 \
                                                         const SigmoidBeliefNetParams&,                             \
                                                         const SigmoidBeliefNetOptions&, const IterationCallback&); \
  template SigmoidBeliefNetStats sigmoid_belief_net_infer<T>(const DataRef<T>&, const SigmoidBeliefNetParams&,      \
                                                             const BinaryPosteriorOptions&, int, const Execution&,  \
                                                             const BinaryPosteriorOutput<T>&);

ENTROSUM_INSTANTIATE(float)
ENTROSUM_INSTANTIATE(double)

}  // namespace entrosum
