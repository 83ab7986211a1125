#include "entrosum/binary/binary_states.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>

#include "binary_posterior.hpp"
#include "entrosum/core/random.hpp"

namespace entrosum {

namespace {

/// The word with the low H bits set.
std::uint64_t unit_mask(Index n_components) {
  return n_components >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << n_components) - 1;
}

}  // namespace

void check_binary_posterior(const BinaryPosteriorOptions& options, Index n_components) {
  if (n_components < 1 || n_components > kMaxBinaryComponents)
    throw std::invalid_argument("n_components must be between 1 and " + std::to_string(kMaxBinaryComponents) +
                                " for binary latents, got " + std::to_string(n_components));
  if (options.row_offset < 0)
    throw std::invalid_argument("row_offset must be at least 0, got " + std::to_string(options.row_offset));
  if (options.kind == BinaryPosteriorKind::exact) {
    if (n_components > kMaxExactComponents)
      throw std::invalid_argument(
          "the exact posterior enumerates 2^n_components states: n_components must be at most " +
          std::to_string(kMaxExactComponents) + ", got " + std::to_string(n_components) +
          " (use the truncated posterior)");
    return;
  }
  if (options.n_states < 1)
    throw std::invalid_argument("n_states must be at least 1, got " + std::to_string(options.n_states));
  if (n_components < 63 && options.n_states > (Index(1) << n_components))
    throw std::invalid_argument("n_states must be at most 2^n_components = " +
                                std::to_string(Index(1) << n_components) + ", got " + std::to_string(options.n_states));
}

RowMatrix<double> states_matrix(const std::uint64_t* keys, Index count, Index n_components) {
  RowMatrix<double> out(count, n_components);
  for (Index i = 0; i < count; ++i)
    for (Index h = 0; h < n_components; ++h) out(i, h) = static_cast<double>((keys[i] >> h) & 1U);
  return out;
}

std::vector<std::uint64_t> all_states(Index n_components) {
  std::vector<std::uint64_t> keys(std::size_t(1) << n_components);
  for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = i;
  return keys;
}

TruncatedStates::TruncatedStates(Index n_rows, Index n_states, Index n_components, std::uint64_t seed, Index row_offset)
    : n_rows_(n_rows), n_states_(n_states), keys_(static_cast<std::size_t>(n_rows * n_states)) {
  const std::uint64_t mask = unit_mask(n_components);
  const bool everything = n_components < 63 && n_states == (Index(1) << n_components);
  std::unordered_set<std::uint64_t> seen;
  for (Index n = 0; n < n_rows; ++n) {
    std::uint64_t* row = keys_.data() + n * n_states;
    if (everything) {
      for (Index s = 0; s < n_states; ++s) row[s] = static_cast<std::uint64_t>(s);
      continue;
    }
    seen.clear();
    Index filled = 0;
    const auto add = [&](std::uint64_t key) {
      if (filled < n_states && seen.insert(key).second) row[filled++] = key;
    };
    add(0);
    for (Index h = 0; h < n_components; ++h) add(std::uint64_t(1) << h);
    // distinct random states; states in integer order once draws keep repeating (S near 2^H)
    Random random = detail::proposal_stream(seed, -1, row_offset + n);
    for (int tries = 0; filled < n_states && tries < 64 * n_states; ++tries) add(random.next() & mask);
    for (std::uint64_t key = 0; filled < n_states; ++key) add(key);
  }
}

TruncatedStates::TruncatedStates(Index n_rows, Index n_states, Index n_components, std::vector<std::uint64_t> keys)
    : n_rows_(n_rows), n_states_(n_states), keys_(std::move(keys)) {
  if (n_rows < 0 || n_states < 1 || keys_.size() != static_cast<std::size_t>(n_rows * n_states))
    throw std::invalid_argument("the kept states must be an (n_rows, n_states) array with n_states >= 1");
  const std::uint64_t mask = unit_mask(n_components);
  std::vector<std::uint64_t> sorted;
  for (Index n = 0; n < n_rows; ++n) {
    sorted.assign(row(n), row(n) + n_states);
    for (const std::uint64_t key : sorted)
      if ((key & ~mask) != 0)
        throw std::invalid_argument("kept state " + std::to_string(key) + " of row " + std::to_string(n) +
                                    " switches on a unit beyond n_components = " + std::to_string(n_components));
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      throw std::invalid_argument("row " + std::to_string(n) + " of the kept states holds a state twice");
  }
}

namespace detail {

void propose_states(const std::uint64_t* kept, Index n_states, Index n_components, const Eigen::VectorXd& prior,
                    const BinaryPosteriorOptions& options, Random& random, std::vector<std::uint64_t>& out) {
  const std::uint64_t mask = unit_mask(n_components);
  const auto count = [&](Index value) { return value < 0 ? n_states : value; };
  const auto pick = [&] { return kept[random.below(static_cast<std::uint64_t>(n_states))]; };
  for (Index i = 0; i < count(options.bit_flips); ++i)
    out.push_back(pick() ^ (std::uint64_t(1) << random.below(static_cast<std::uint64_t>(n_components))));
  for (Index i = 0; i < count(options.prior_draws); ++i) {
    std::uint64_t key = 0;
    for (Index h = 0; h < n_components; ++h)
      if (random.uniform() < prior(h)) key |= std::uint64_t(1) << h;
    out.push_back(key);
  }
  for (Index i = 0; i < count(options.crossovers); ++i) {
    const std::uint64_t first = pick();
    const std::uint64_t second = pick();
    const std::uint64_t take = random.next();
    out.push_back(((first & take) | (second & ~take)) & mask);
  }
}

}  // namespace detail

}  // namespace entrosum
