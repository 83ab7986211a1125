// Posteriors over binary latent vectors z ∈ {0,1}^H held as sets of states (DESIGN.md "Second-wave models"):
// exact (all 2^H states, enumerated once and shared by every data point) or truncated (S states per data
// point, kept between iterations and improved by proposals; a proposal replaces a kept state only when its
// joint is larger, so the truncated free energy (1/N) Σ_n log Σ_{z∈K_n} p(x_n, z) never decreases).
// A state is a 64-bit word, bit h = z_h.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "entrosum/core/types.hpp"

namespace entrosum {

enum class BinaryPosteriorKind {
  exact,      ///< all 2^H states
  truncated,  ///< S states per data point, updated by proposals
};

/// Most latent units of the exact posterior (2^16 states).
inline constexpr Index kMaxExactComponents = 16;
/// Most latent units of any binary-latent model (a state is one 64-bit word).
inline constexpr Index kMaxBinaryComponents = 64;

struct BinaryPosteriorOptions {
  BinaryPosteriorKind kind = BinaryPosteriorKind::exact;
  /// S, the states kept per data point (truncated).
  Index n_states = 32;
  /// Proposals per data point and E-step: single-bit flips of kept states, draws from the prior, and
  /// uniform cross-overs of two kept states. Negative: S each.
  Index bit_flips = -1;
  Index prior_draws = -1;
  Index crossovers = -1;
  /// Seeds the proposals; data point n in E-step t draws from its own stream (seed, t, n), so the states
  /// do not depend on threads or chunks.
  std::uint64_t seed = 0;
  /// The global index of the data's first row: a block of a larger data set (a Dask block) draws the proposals
  /// of its rows from the same streams as the whole data set would.
  Index row_offset = 0;
};

/// Checks the options against H (and the data's row count); throws std::invalid_argument naming the problem.
void check_binary_posterior(const BinaryPosteriorOptions& options, Index n_components);

/// The states `keys` as rows of a dense 0/1 matrix (keys.size() × H).
RowMatrix<double> states_matrix(const std::uint64_t* keys, Index count, Index n_components);

/// All 2^H states in the order of their integer value.
std::vector<std::uint64_t> all_states(Index n_components);

/// The kept states of a truncated posterior: S distinct states per data point, (n_rows × S) row-major.
class TruncatedStates {
 public:
  TruncatedStates() = default;
  /// Initial sets: the zero state, the single-unit states, then distinct random states; with S = 2^H every state.
  /// Row n draws from the stream of global row `row_offset + n`.
  TruncatedStates(Index n_rows, Index n_states, Index n_components, std::uint64_t seed, Index row_offset = 0);
  /// Sets kept from an earlier pass (n_rows × n_states keys, row-major); throws std::invalid_argument unless each
  /// row holds distinct states of `n_components` units.
  TruncatedStates(Index n_rows, Index n_states, Index n_components, std::vector<std::uint64_t> keys);

  Index rows() const { return n_rows_; }
  Index n_states() const { return n_states_; }
  std::uint64_t* row(Index n) { return keys_.data() + n * n_states_; }
  const std::uint64_t* row(Index n) const { return keys_.data() + n * n_states_; }
  const std::vector<std::uint64_t>& keys() const { return keys_; }

 private:
  Index n_rows_ = 0;
  Index n_states_ = 0;
  std::vector<std::uint64_t> keys_;
};

/// Per-data-point outputs of a pass (optional): posterior means E[z] (n, H); the states (n × width keys)
/// and their probabilities (n, width), width = 2^H (exact) or S.
template <typename T>
struct BinaryPosteriorOutput {
  RowMatrix<T>* means = nullptr;
  std::vector<std::uint64_t>* keys = nullptr;
  RowMatrix<double>* probabilities = nullptr;
};

}  // namespace entrosum
