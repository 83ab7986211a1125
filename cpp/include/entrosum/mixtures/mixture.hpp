// What every mixture shares (DESIGN.md §3): the exact E-step turns a chunk's log joint
// log π_k + log p(x_n | k) into responsibilities by log-sum-exp, and accumulates the mean
// log-likelihood, the responsibilities' entropy and the (weighted) counts N_k. Initialisation from
// given responsibilities (k-means labels, chosen rows, random numbers) and per-row scoring are shared
// too, so every family runs them the same way.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "entrosum/core/execution.hpp"
#include "entrosum/core/monitor.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// Added to every N_k in an M-step so that an empty component does not divide 0 by 0 (scikit-learn's guard).
inline constexpr double kCountGuard = 10.0 * std::numeric_limits<double>::epsilon();

/// One row of the data, remembered with its log-likelihood: where an M-step may re-seed a component.
struct WorstSample {
  double log_likelihood = 0.0;
  /// the row's index within the data the pass covers
  Index row = -1;
  double weight = 0.0;
  /// (n_features) the row, in double
  Eigen::VectorXd values;
};

/// The worst-explained samples of some rows: up to `capacity` rows of positive weight with the smallest
/// log p(x_n | Θ), in increasing order of it. An M-step that finds components empty re-seeds them there, each
/// at its own sample, as k-means moves empty clusters to the points farthest from their centroids. Among
/// equal log-likelihoods the earlier row comes first and is kept, and passes merge in row order, so the choice
/// depends on neither the threads nor the chunks.
struct WorstSamples {
  Index capacity = 0;
  /// sorted by log_likelihood, at most `capacity`
  std::vector<WorstSample> samples;

  /// A row enters only with a log-likelihood below this.
  double threshold() const {
    return Index(samples.size()) < capacity ? std::numeric_limits<double>::infinity() : samples.back().log_likelihood;
  }
  /// Keeps `sample` if it is among the `capacity` worst (after the equal ones already kept).
  void offer(WorstSample&& sample) {
    if (!(sample.log_likelihood < threshold())) return;
    const auto at = std::upper_bound(samples.begin(), samples.end(), sample.log_likelihood,
                                     [](double value, const WorstSample& kept) { return value < kept.log_likelihood; });
    samples.insert(at, std::move(sample));
    if (Index(samples.size()) > capacity) samples.pop_back();
  }
  /// Merges the samples of rows that come after these.
  void merge(const WorstSamples& later) {
    capacity = std::max(capacity, later.capacity);
    for (const WorstSample& sample : later.samples) offer(WorstSample(sample));
  }
};

/// Sums over data points that every mixture's statistics carry; mergeable.
struct MixtureTotals {
  /// Σ_n w_n
  double count = 0.0;
  /// (n_components) N_k = Σ_n w_n r_nk
  Eigen::VectorXd resp_sum;
  /// Σ_n w_n log p(x_n | Θ)
  double log_likelihood = 0.0;
  /// −Σ_n w_n Σ_k r_nk log r_nk
  double resp_entropy = 0.0;
  /// where empty components are re-seeded (not sums: scaling leaves them alone)
  WorstSamples worst;

  MixtureTotals() = default;
  explicit MixtureTotals(Index n_components) : resp_sum(Eigen::VectorXd::Zero(n_components)), worst{n_components, {}} {}
  MixtureTotals& operator+=(const MixtureTotals& other) {
    count += other.count;
    resp_sum += other.resp_sum;
    log_likelihood += other.log_likelihood;
    resp_entropy += other.resp_entropy;
    worst.merge(other.worst);
    return *this;
  }
  /// Multiplies every sum by `factor` (stepwise EM blends running statistics with a chunk's).
  void scale(double factor) {
    count *= factor;
    resp_sum *= factor;
    log_likelihood *= factor;
    resp_entropy *= factor;
  }
};

/// Turns each row of `log_joint` (n, K), log π_k + log p(x_n | k), into the weighted responsibilities
/// w_n r_nk in place, and adds the row's log-likelihood, entropy and counts to `totals`. Values below T's
/// smallest normal number are written as exact zeros (no subnormal reaches the M-step). `weights` is empty
/// (all 1) or holds one weight per row. `row_log_likelihood` receives log p(x_n | Θ) of each row (resized),
/// for `note_worst`.
template <typename T>
void normalise_log_joint(Eigen::Ref<RowMatrix<T>> log_joint, const Eigen::Ref<const Eigen::VectorXd>& weights,
                         MixtureTotals& totals, Eigen::VectorXd& row_log_likelihood);

/// Offers the rows of a block to `totals.worst`: row n of `rows` (row `row_offset + n` of the data the pass
/// covers), of log-likelihood `row_log_likelihood(n)` and weight `weights(n)` (all 1 when empty).
template <typename Rows>
void note_worst(MixtureTotals& totals, const Eigen::VectorXd& row_log_likelihood, const Rows& rows, Index row_offset,
                const Eigen::Ref<const Eigen::VectorXd>& weights) {
  for (Index n = 0; n < row_log_likelihood.size(); ++n) {
    const double weight = weights.size() ? weights(n) : 1.0;
    if (weight > 0.0 && row_log_likelihood(n) < totals.worst.threshold())  // most rows stop here
      totals.worst.offer(
          {row_log_likelihood(n), row_offset + n, weight, rows.row(n).transpose().template cast<double>()});
  }
}

/// For an M-step that re-seeds `components` (empty or collapsed ones, in increasing order): a distinct
/// worst-explained sample for each, the worst for the first. NumericalError naming the first component
/// when the statistics hold fewer samples (rows of positive weight) than that.
std::vector<const WorstSample*> reseed_samples(const std::vector<Index>& components, const WorstSamples& worst,
                                               const std::string& why);

/// The posterior entropy and prior entropy terms of a mixture's entropy sum, and its ELBO, per sample:
/// F = (1/N)[Σ_n log p(x_n)] at (q = exact posterior, Θ) and S = H̄[r] − H[π] − observable_entropy.
ElboTerms mixture_elbo_terms(const MixtureTotals& totals, const Eigen::VectorXd& weights,
                             double observable_entropy_per_sample);

/// F(q, Θ) per sample from expected complete-data log-likelihoods: (1/N)[Σ_k N_k log π_k +
/// expected_log_observable] + H̄[r]. Used for the ELBO after an M-step, with the old q.
double mixture_elbo_at(const MixtureTotals& totals, const Eigen::VectorXd& weights, double expected_log_observable);

/// The sample weights of rows [begin, end), or an empty vector when every weight is 1 (`sample_weight` empty).
inline Eigen::VectorXd chunk_weights(const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index begin, Index end) {
  return sample_weight.size() ? Eigen::VectorXd(sample_weight.segment(begin, end - begin)) : Eigen::VectorXd();
}

/// Fills rows [begin, end) of a (n, K) block with initial responsibilities (they need not sum to 1).
using ResponsibilitySource = std::function<void(Index begin, Index end, Eigen::Ref<RowMatrix<double>> resp)>;

/// Uniform random responsibilities, normalised per row, drawn from (seed, row) alone so that they do not
/// depend on the chunking or the threads. Row n of the data it is given is row n + `row_offset` of the data
/// set (a block of rows of a larger array).
ResponsibilitySource random_responsibilities(std::uint64_t seed, Index row_offset = 0);

/// One-hot responsibilities from `labels` (one per row, each in [−1, n_components)); a label of −1 gives
/// its row no responsibility at all. The labels are read, not copied: they must outlive the source.
ResponsibilitySource label_responsibilities(const int* labels);

/// The (end − begin, n_components) responsibilities `source` gives rows [begin, end), multiplied by the
/// rows' sample weights; adds the rows' weight and N_k to `totals` (the start of an initialising pass).
RowMatrix<double> weighted_source_responsibilities(const ResponsibilitySource& source,
                                                   const Eigen::Ref<const Eigen::VectorXd>& sample_weight, Index begin,
                                                   Index end, Index n_components, MixtureTotals& totals);

/// (n_rows) log p(x_n | Θ) = log Σ_k exp(log joint) per row and, when `resp` is non-null, the
/// (n_rows, n_components) responsibilities. `log_joint(begin, end)` returns a chunk's (end − begin,
/// n_components) log π_k + log p(x_n | k) in any floating type; chunks run on threads.
template <typename LogJoint>
Eigen::VectorXd mixture_score(Index n_rows, Index n_components, Index chunk_size, const Execution& execution,
                              RowMatrix<double>* resp, const LogJoint& log_joint) {
  Eigen::VectorXd log_likelihood(n_rows);
  if (resp) resp->resize(n_rows, n_components);
  for_each_chunk(n_rows, chunk_size, execution, [&](Index begin, Index end) {
    const RowMatrix<double> joint = log_joint(begin, end).template cast<double>();
    for (Index n = 0; n < joint.rows(); ++n) {
      const double largest = joint.row(n).maxCoeff();
      const Eigen::RowVectorXd scaled = (joint.row(n).array() - largest).exp();
      const double total = scaled.sum();
      log_likelihood(begin + n) = largest + std::log(total);
      // e / Σ e rather than exp(l − log-sum-exp): where |l| is so large (a count of 1e30) that adding log Σ e to
      // it is lost to rounding, the latter gave every tied component a responsibility of 1
      if (resp) resp->row(begin + n) = scaled / total;
    }
  });
  return log_likelihood;
}

}  // namespace entrosum
