// The E-step machinery shared by the binary-latent models: per chunk, the log-joints of each row's states
// (all 2^H, or its kept set plus proposals), the posterior q over the kept states, its entropy and log
// normaliser. A model supplies a `Joint` with
//   RowMatrix<double> state_factors(states)            R (m × k): the states' side of the exact log-joints
//   RowMatrix<double> row_factors(rows, row_offsets)   L (n × k) and per-row offsets c, so that
//                                                      log p(x_n, s_j) = (L Rᵀ)_nj + c_n
// all written as matrix products, and adds its statistics from a ChunkPosterior. The exact posterior makes R
// once per E-step and one product L Rᵀ per chunk; c_n, the same for every state, cancels in q and only
// joins the log normaliser. The truncated posterior makes R once per distinct state of a chunk (rows propose
// the same states over and over when H is small) and a dot product of rows of L and R per (row, state) pair.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/simd_exp.hpp"
#include "../core/simd_mask.hpp"
#include "entrosum/binary/binary_states.hpp"
#include "entrosum/core/errors.hpp"
#include "entrosum/core/execution.hpp"
#include "entrosum/core/random.hpp"

namespace entrosum::detail {

using RowsD = Eigen::Ref<const RowMatrix<double>>;

/// Every state of the exact posterior, as keys and as a 0/1 matrix (2^H × H).
struct ExactStates {
  std::vector<std::uint64_t> keys;
  RowMatrix<double> matrix;
  explicit ExactStates(Index n_components)
      : keys(all_states(n_components)),
        matrix(states_matrix(keys.data(), static_cast<Index>(keys.size()), n_components)) {}
};

/// q over the states of one chunk's rows.
struct ChunkPosterior {
  /// States per row (2^H or S).
  Index width = 0;
  /// Exact: every row has the states `shared_states`; truncated: row n has rows [n·width, (n+1)·width) of `own_states`.
  bool shared = false;
  const RowMatrix<double>* shared_states = nullptr;
  const std::uint64_t* shared_keys = nullptr;
  RowMatrix<double> own_states;
  std::vector<std::uint64_t> own_keys;
  /// (n × width) q_n(s)
  RowMatrix<double> q;
  /// (n) log Σ_s p(x_n, s), H[q_n]
  Eigen::VectorXd log_norm;
  Eigen::VectorXd entropy;

  /// (n × H) E_q[z] per row.
  RowMatrix<double> means() const {
    if (shared) return q * *shared_states;
    RowMatrix<double> out(q.rows(), own_states.cols());
    for (Index n = 0; n < q.rows(); ++n) out.row(n) = q.row(n) * own_states.middleRows(n * width, width);
    return out;
  }
  const std::uint64_t* keys_of(Index n) const { return shared ? shared_keys : own_keys.data() + n * width; }
};

/// Relative log-joints below −(kNegligible + log width) are left out of q (set to exact zeros): all of them
/// together weigh less than e^−40 ≈ 4e-18 of the normaliser, below double rounding. Once the posterior
/// concentrates (as soon as the causes are learned) most states are such, and their exp is skipped.
inline constexpr double kNegligible = 40.0;

/// One row: e = exp(l − top) over the states not negligible (exact zeros elsewhere) written over the row, in
/// SIMD packets of Eigen's packet math (every build's vector width); returns (Σ e, Σ e (l − top)).
inline std::pair<double, double> exponentiate_states(double* row, Index width, double top) {
  namespace ei = Eigen::internal;
  using Packet = ei::packet_traits<double>::type;
  constexpr Index lanes = ei::packet_traits<double>::size;
  const double cut = -(kNegligible + std::log(static_cast<double>(width)));
  const Packet shift = ei::pset1<Packet>(top);
  const Packet threshold = ei::pset1<Packet>(cut);
  const Packet zero = ei::pset1<Packet>(0.0);
  Packet sums = zero, dots = zero;
  Index j = 0;
  for (; j + lanes <= width; j += lanes) {
    const Packet shifted = ei::psub(ei::ploadu<Packet>(row + j), shift);
    const Packet kept = ei::pcmp_le(threshold, shifted);
    if (!any_lane_set(kept)) {
      ei::pstoreu(row + j, zero);  // every lane negligible: no exp
      continue;
    }
    const Packet e = ei::pand(exp_of_shifted(shifted, threshold), kept);
    sums = ei::padd(sums, e);
    dots = ei::pmadd(e, ei::pand(shifted, kept), dots);
    ei::pstoreu(row + j, e);
  }
  double sum = ei::predux(sums), dot = ei::predux(dots);
  for (; j < width; ++j) {
    const double shifted = row[j] - top;
    const double e = shifted < cut ? 0.0 : std::exp(shifted);
    sum += e;
    dot += shifted < cut ? 0.0 : e * shifted;
    row[j] = e;
  }
  return {sum, dot};
}

/// Turns the log-joints in `out.q` (n × width) into q in place, with the log normalisers and entropies
/// H[q_n] = log Σ e − Σ e l' / Σ e (l' = l − max l, e = exp l').
inline void normalise(ChunkPosterior& out) {
  const Index n = out.q.rows();
  const Index width = out.q.cols();
  out.log_norm.resize(n);
  out.entropy.resize(n);
  for (Index i = 0; i < n; ++i) {
    double* row = &out.q(i, 0);
    const double top = out.q.row(i).maxCoeff();
    if (!std::isfinite(top)) throw NumericalError("a data point has no state with a finite joint probability");
    const auto [sum, dot] = exponentiate_states(row, width, top);
    out.q.row(i) *= 1.0 / sum;  // one division per row: vector divisions cost as much as the exp
    out.log_norm(i) = top + std::log(sum);
    out.entropy(i) = std::log(sum) - dot / sum;
  }
}

/// Appends the proposals for one data point (bit flips, prior draws, cross-overs of its kept states).
void propose_states(const std::uint64_t* kept, Index n_states, Index n_components, const Eigen::VectorXd& prior,
                    const BinaryPosteriorOptions& options, Random& random, std::vector<std::uint64_t>& out);

/// The random stream of data point `row` in E-step `iteration`.
inline Random proposal_stream(std::uint64_t seed, int iteration, Index row) {
  return Random(seed ^ (0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(iteration) + 1)) ^
                (0xd1b54a32d192ed03ULL * (static_cast<std::uint64_t>(row) + 1)));
}

/// Every state of the exact posterior with the joint's state factors R (2^H × k), made once per E-step.
struct ExactFactors {
  const ExactStates* states = nullptr;
  RowMatrix<double> right;
};

/// The exact E-step of one chunk into `out`, whose buffers a pass reuses from chunk to chunk (a thread's
/// workspace): fresh (rows × 2^H) matrices per chunk would be fresh pages from the system each time.
template <typename Joint>
void exact_chunk(const RowsD& rows, const ExactFactors& exact, const Joint& joint, ChunkPosterior& out) {
  out.shared = true;
  out.width = static_cast<Index>(exact.states->keys.size());
  out.shared_states = &exact.states->matrix;
  out.shared_keys = exact.states->keys.data();
  Eigen::VectorXd row_offsets;
  const RowMatrix<double> left = joint.row_factors(rows, row_offsets);
  out.q.resize(rows.rows(), out.width);
  out.q.noalias() = left * exact.right.transpose();
  normalise(out);
  out.log_norm += row_offsets;
}

/// The distinct values of `keys` in order of first appearance, and `index_of[i]`, the position of keys[i] among
/// them (a hash table with linear probing, doubled when half full).
inline void distinct_keys(const std::vector<std::uint64_t>& keys, std::vector<std::uint64_t>& distinct,
                          std::vector<Index>& index_of) {
  int bits = 10;
  std::vector<Index> table;
  const auto slot_of = [&](std::uint64_t key) {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> (64 - bits));  // Fibonacci hashing
  };
  const auto find = [&](std::uint64_t key) {
    const std::size_t mask = table.size() - 1;
    std::size_t slot = slot_of(key);
    while (table[slot] >= 0 && distinct[static_cast<std::size_t>(table[slot])] != key) slot = (slot + 1) & mask;
    return slot;
  };
  table.assign(std::size_t(1) << bits, -1);
  distinct.clear();
  index_of.resize(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::size_t slot = find(keys[i]);
    if (table[slot] < 0) {
      table[slot] = static_cast<Index>(distinct.size());
      distinct.push_back(keys[i]);
    }
    index_of[i] = table[slot];
    if (2 * distinct.size() > table.size()) {
      ++bits;
      table.assign(std::size_t(1) << bits, -1);
      for (std::size_t d = 0; d < distinct.size(); ++d) table[find(distinct[d])] = static_cast<Index>(d);
    }
  }
}

/// The truncated E-step of one chunk: each row's kept states and its proposals are scored in one batch, and
/// the S states with the largest joints (ties: the smaller key) are kept, in `store` and in `out`.
template <typename Joint>
void truncated_chunk(const RowsD& rows, Index first_row, TruncatedStates& store, const BinaryPosteriorOptions& options,
                     int iteration, Index n_components, const Eigen::VectorXd& prior, const Joint& joint,
                     ChunkPosterior& out) {
  const Index n = rows.rows();
  const Index n_states = store.n_states();
  std::vector<std::uint64_t> candidates;
  std::vector<Index> offsets(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::uint64_t> mine;
  for (Index i = 0; i < n; ++i) {
    const std::uint64_t* kept = store.row(first_row + i);
    mine.assign(kept, kept + n_states);
    Random random = proposal_stream(options.seed, iteration, options.row_offset + first_row + i);
    propose_states(kept, n_states, n_components, prior, options, random, mine);
    std::sort(mine.begin(), mine.end());
    mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
    candidates.insert(candidates.end(), mine.begin(), mine.end());
    offsets[static_cast<std::size_t>(i) + 1] = static_cast<Index>(candidates.size());
  }
  // log p(x_n, s) = L_n · R_s + c_n, with R made once per distinct state of the chunk
  std::vector<std::uint64_t> distinct;
  std::vector<Index> state_of;
  distinct_keys(candidates, distinct, state_of);
  const RowMatrix<double> right =
      joint.state_factors(states_matrix(distinct.data(), static_cast<Index>(distinct.size()), n_components));
  Eigen::VectorXd row_offsets;
  const RowMatrix<double> left = joint.row_factors(rows, row_offsets);
  Eigen::VectorXd log_joint(static_cast<Index>(candidates.size()));
  for (Index i = 0; i < n; ++i) {
    for (Index c = offsets[static_cast<std::size_t>(i)]; c < offsets[static_cast<std::size_t>(i) + 1]; ++c)
      log_joint(c) = left.row(i).dot(right.row(state_of[static_cast<std::size_t>(c)])) + row_offsets(i);
  }

  out.shared = false;
  out.width = n_states;
  out.own_keys.resize(static_cast<std::size_t>(n * n_states));
  RowMatrix<double> kept_log_joint(n, n_states);
  std::vector<Index> order;
  for (Index i = 0; i < n; ++i) {
    const Index begin = offsets[static_cast<std::size_t>(i)];
    const Index end = offsets[static_cast<std::size_t>(i) + 1];
    order.resize(static_cast<std::size_t>(end - begin));
    std::iota(order.begin(), order.end(), begin);
    // NaN sorts last, so a state whose joint cannot be computed is never preferred
    const auto better = [&](Index a, Index b) {
      const double la = std::isnan(log_joint(a)) ? -std::numeric_limits<double>::infinity() : log_joint(a);
      const double lb = std::isnan(log_joint(b)) ? -std::numeric_limits<double>::infinity() : log_joint(b);
      return la > lb || (la == lb && candidates[static_cast<std::size_t>(a)] < candidates[static_cast<std::size_t>(b)]);
    };
    // the S best, in order (`better` is a total order: keys are distinct within a row)
    std::nth_element(order.begin(), order.begin() + (n_states - 1), order.end(), better);
    std::sort(order.begin(), order.begin() + n_states, better);
    std::uint64_t* kept = store.row(first_row + i);
    for (Index s = 0; s < n_states; ++s) {
      const Index c = order[static_cast<std::size_t>(s)];
      kept[s] = candidates[static_cast<std::size_t>(c)];
      out.own_keys[static_cast<std::size_t>(i * n_states + s)] = kept[s];
      kept_log_joint(i, s) = log_joint(c);
    }
  }
  out.own_states = states_matrix(out.own_keys.data(), n * n_states, n_components);
  out.q = std::move(kept_log_joint);
  normalise(out);
}

/// The chunk as double: a view for double data, a converted copy in `buffer` for float.
template <typename T>
RowsD as_double(const DataRef<T>& chunk, RowMatrix<double>& buffer) {
  if constexpr (std::is_same_v<T, double>) {
    return chunk;
  } else {
    buffer = chunk.template cast<double>();
    return buffer;
  }
}

/// Rows per chunk: the execution's, and for the exact posterior few enough that a chunk's (rows × 2^H)
/// log-joints stay near 256 KiB: each of the passes over them (the product's offsets, exp, the sums, E[z]) then
/// reads them from the core's cache instead of memory.
inline Index binary_chunk_size(const Execution& execution, Index n_features, Index bytes,
                               const BinaryPosteriorOptions& options, Index n_components) {
  Index rows = resolve_chunk_size(execution, n_features, bytes);
  if (options.kind == BinaryPosteriorKind::exact && execution.chunk_size <= 0)
    rows = std::min<Index>(rows, std::max<Index>(16, (Index(1) << 15) >> n_components));
  return rows;
}

/// One E-step pass: `add(rows, weights, posterior, stats)` adds a model's statistics of a chunk; the weight,
/// entropy and log-normaliser sums, and the requested outputs, are done here.
template <typename T, typename Stats, typename Joint, typename MakeStats, typename Add>
Stats binary_e_step(const DataRef<T>& data, const Eigen::VectorXd& weights, const Joint& joint, Index n_components,
                    const Eigen::VectorXd& prior, const BinaryPosteriorOptions& options, TruncatedStates* store,
                    int iteration, const Execution& execution, const BinaryPosteriorOutput<T>& output,
                    const MakeStats& make_stats, const Add& add) {
  if (weights.size() != 0 && weights.size() != data.rows())
    throw std::invalid_argument("sample weights must have one entry per row");
  const bool exact = options.kind == BinaryPosteriorKind::exact;
  if (!exact && (store == nullptr || store->rows() != data.rows()))
    throw std::invalid_argument("the truncated posterior's state sets do not match the data");
  const ExactStates all(exact ? n_components : 0);
  ExactFactors factors;
  if (exact) factors = ExactFactors{&all, joint.state_factors(all.matrix)};
  const Index chunk_size = binary_chunk_size(execution, data.cols(), sizeof(T), options, n_components);
  struct Workspace {
    RowMatrix<double> buffer;
    ChunkPosterior posterior;
  };
  return reduce_rows(
      data.rows(), chunk_size, execution, make_stats, [] { return Workspace(); },
      [&](Index begin, Index end, Stats& stats, Workspace& workspace) {
        const RowsD rows = as_double<T>(data.middleRows(begin, end - begin), workspace.buffer);
        ChunkPosterior& posterior = workspace.posterior;
        if (exact) {
          exact_chunk(rows, factors, joint, posterior);
        } else {
          truncated_chunk(rows, begin, *store, options, iteration, n_components, prior, joint, posterior);
        }
        const Eigen::VectorXd w =
            weights.size() ? Eigen::VectorXd(weights.segment(begin, end - begin)) : Eigen::VectorXd::Ones(end - begin);
        stats.weight += w.sum();
        stats.posterior_entropy += w.dot(posterior.entropy);
        stats.log_joint_sum += w.dot(posterior.log_norm);
        add(rows, w, posterior, stats);
        if (output.means) output.means->middleRows(begin, end - begin) = posterior.means().template cast<T>();
        if (output.probabilities) output.probabilities->middleRows(begin, end - begin) = posterior.q;
        if (output.keys && !exact)
          std::copy(posterior.own_keys.begin(), posterior.own_keys.end(),
                    output.keys->begin() + static_cast<std::ptrdiff_t>(begin * posterior.width));
      });
}

/// Σ_h [m_h log π_h + (N − m_h) log(1 − π_h)], m = Σ w E[z]: E_q log p(z | π) summed.
inline double expected_log_prior(const Eigen::VectorXd& on, double weight, const Eigen::VectorXd& prior) {
  double sum = 0.0;
  for (Index h = 0; h < prior.size(); ++h) {
    if (on(h) > 0.0) sum += on(h) * std::log(prior(h));
    if (weight - on(h) > 0.0) sum += (weight - on(h)) * std::log1p(-prior(h));
  }
  return sum;
}

/// π from Σ w E[z] (one shared value on request), kept inside [kPriorFloor, 1 − kPriorFloor] so every state
/// keeps a finite joint.
inline constexpr double kPriorFloor = 1e-12;
inline Eigen::VectorXd prior_m_step(const Eigen::VectorXd& on, double weight, bool shared) {
  Eigen::VectorXd prior = on / weight;
  if (shared) prior.setConstant(prior.mean());
  return prior.cwiseMax(kPriorFloor).cwiseMin(1.0 - kPriorFloor);
}

/// log prior of each state row: s·logit(π) + Σ log(1 − π).
inline Eigen::VectorXd log_prior_of(const RowMatrix<double>& states, const Eigen::VectorXd& prior) {
  const Eigen::VectorXd logit = (prior.array() / (1.0 - prior.array())).log().matrix();
  return (states * logit).array() + (-prior.array()).log1p().sum();
}

}  // namespace entrosum::detail
