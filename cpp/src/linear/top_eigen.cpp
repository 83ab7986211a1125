#include "top_eigen.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace entrosum::detail {

namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();

/// The Sturm count of every shift x in `shifts`: how many eigenvalues of T lie below x, the number of negative pivots
/// of the LDLᵀ factorisation of T − x I (q_0 = d_0 − x, q_i = d_i − x − e_{i−1}² / q_{i−1}, a pivot smaller than
/// `pivot_floor` taken as −pivot_floor).
void sturm_counts(const Eigen::VectorXd& diagonal, const Eigen::VectorXd& squared_off_diagonal,
                  const std::vector<double>& shifts, double pivot_floor, std::vector<double>& pivots,
                  std::vector<double>& counts) {
  const std::size_t lanes = shifts.size();
  const Index n = diagonal.size();
  for (std::size_t j = 0; j < lanes; ++j) {
    double q = diagonal(0) - shifts[j];
    if (std::abs(q) < pivot_floor) q = -pivot_floor;
    pivots[j] = q;
    counts[j] = q < 0.0 ? 1.0 : 0.0;
  }
  // The lanes are independent: the loop over them vectorises, and their divisions overlap.
  for (Index i = 1; i < n; ++i) {
    const double d = diagonal(i);
    const double e2 = squared_off_diagonal(i - 1);
    for (std::size_t j = 0; j < lanes; ++j) {
      double q = (d - shifts[j]) - e2 / pivots[j];
      q = std::abs(q) < pivot_floor ? -pivot_floor : q;
      pivots[j] = q;
      counts[j] += q < 0.0 ? 1.0 : 0.0;
    }
  }
}

/// LU factorisation with partial pivoting of the tridiagonal T − λI (rows i and i+1 may swap, so U has two
/// super-diagonals), pivots smaller than `tiny` replaced by ±tiny (inverse iteration needs a solve even when λ
/// is an eigenvalue to working precision).
struct TridiagonalLu {
  std::vector<double> pivot, upper1, upper2, multiplier;
  std::vector<char> swapped;

  explicit TridiagonalLu(Index n)
      : pivot(static_cast<std::size_t>(n)),
        upper1(static_cast<std::size_t>(n)),
        upper2(static_cast<std::size_t>(n)),
        multiplier(static_cast<std::size_t>(n)),
        swapped(static_cast<std::size_t>(n)) {}

  static double floored(double value, double tiny) {
    if (std::abs(value) >= tiny) return value;
    return value < 0.0 ? -tiny : tiny;
  }

  void factor(const Eigen::VectorXd& diagonal, const Eigen::VectorXd& off_diagonal, double lambda, double tiny) {
    const Index n = diagonal.size();
    // The row being eliminated: its entries in columns i and i + 1.
    double lead = diagonal(0) - lambda;
    double next = n > 1 ? off_diagonal(0) : 0.0;
    for (Index i = 0; i + 1 < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      const double below = off_diagonal(i);  // row i + 1, column i
      const double row_diagonal = diagonal(i + 1) - lambda;
      const double row_upper = i + 2 < n ? off_diagonal(i + 1) : 0.0;
      if (std::abs(lead) >= std::abs(below)) {
        lead = floored(lead, tiny);
        const double m = below / lead;
        pivot[k] = lead;
        upper1[k] = next;
        upper2[k] = 0.0;
        multiplier[k] = m;
        swapped[k] = 0;
        lead = row_diagonal - m * next;
        next = row_upper;
      } else {
        const double m = lead / below;
        pivot[k] = below;
        upper1[k] = row_diagonal;
        upper2[k] = row_upper;
        multiplier[k] = m;
        swapped[k] = 1;
        lead = next - m * row_diagonal;
        next = -m * row_upper;
      }
    }
    pivot[static_cast<std::size_t>(n - 1)] = floored(lead, tiny);
  }

  /// Solves (T − λI) y = b in place.
  void solve(Eigen::VectorXd& y) const {
    const Index n = y.size();
    for (Index i = 0; i + 1 < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (swapped[k]) std::swap(y(i), y(i + 1));
      y(i + 1) -= multiplier[k] * y(i);
    }
    for (Index i = n - 1; i >= 0; --i) {
      const auto k = static_cast<std::size_t>(i);
      double value = y(i);
      if (i + 1 < n) value -= upper1[k] * y(i + 1);
      if (i + 2 < n) value -= upper2[k] * y(i + 2);
      y(i) = value / pivot[k];
    }
  }
};

/// A fixed pseudo-random start in (−1, 1) for inverse iteration (a 64-bit LCG: the same start on every run).
void pseudo_random_start(Eigen::VectorXd& start, std::uint64_t seed) {
  std::uint64_t state = 0x9E3779B97F4A7C15ULL * (seed + 1);
  for (Index i = 0; i < start.size(); ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    start(i) = static_cast<double>(state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
  }
}

}  // namespace

TopEigen top_eigen_tridiagonal(const Eigen::VectorXd& diagonal, const Eigen::VectorXd& off_diagonal, Index count) {
  const Index n = diagonal.size();
  TopEigen out;
  out.trace = diagonal.sum();
  out.values.resize(count);
  out.vectors.resize(n, count);
  if (n == 1) {
    out.values(0) = diagonal(0);
    out.vectors(0, 0) = 1.0;
    return out;
  }
  const Eigen::VectorXd squared = off_diagonal.cwiseAbs2();
  // Gershgorin bounds of the spectrum and the scale ‖T‖.
  double lower = std::numeric_limits<double>::infinity(), upper = -lower;
  for (Index i = 0; i < n; ++i) {
    const double radius = (i > 0 ? std::abs(off_diagonal(i - 1)) : 0.0) + (i + 1 < n ? std::abs(off_diagonal(i)) : 0.0);
    lower = std::min(lower, diagonal(i) - radius);
    upper = std::max(upper, diagonal(i) + radius);
  }
  const double norm = std::max(std::abs(lower), std::abs(upper));
  const double pivot_floor = std::numeric_limits<double>::min() * std::max(1.0, squared.maxCoeff());
  const double widen = 2.1 * (kEpsilon * norm * static_cast<double>(n) + 2.0 * pivot_floor);
  lower -= widen;
  upper += widen;
  if (!(norm > 0.0)) {  // T = 0: every eigenvalue is 0, any orthonormal vectors are eigenvectors
    out.values.setZero();
    out.vectors.setIdentity();
    return out;
  }

  // Bisection: eigenvalue number m (increasing, from 0) lies in [lo, hi] with count(lo) ≤ m < count(hi).
  const auto lanes = static_cast<std::size_t>(count);
  std::vector<double> lo(lanes, lower), hi(lanes, upper), mid(lanes), pivots(lanes), counts(lanes);
  const double absolute_tol = kEpsilon * norm;
  for (int iteration = 0; iteration < 256; ++iteration) {
    bool open = false;
    for (std::size_t j = 0; j < lanes; ++j) {
      mid[j] = 0.5 * (lo[j] + hi[j]);
      const double tol =
          std::max({absolute_tol, pivot_floor, 2.0 * kEpsilon * std::max(std::abs(lo[j]), std::abs(hi[j]))});
      if (hi[j] - lo[j] > tol) open = true;
    }
    if (!open) break;
    sturm_counts(diagonal, squared, mid, pivot_floor, pivots, counts);
    for (std::size_t j = 0; j < lanes; ++j) {
      const double target = static_cast<double>(n - 1) - static_cast<double>(j);  // m for the j-th largest
      if (counts[j] <= target) {
        lo[j] = mid[j];
      } else {
        hi[j] = mid[j];
      }
    }
  }
  for (std::size_t j = 0; j < lanes; ++j) out.values(static_cast<Index>(j)) = 0.5 * (lo[j] + hi[j]);

  // Inverse iteration, largest eigenvalue first; clusters (gaps below 1e-3 ‖T‖) reorthogonalised.
  const double cluster_gap = 1e-3 * norm;
  const double tiny = kEpsilon * norm;
  const double growth_threshold = std::sqrt(0.1 / static_cast<double>(n));
  constexpr int kExtraIterations = 2;
  constexpr int kMaxIterations = 5;
  TridiagonalLu lu(n);
  Eigen::VectorXd vector(n);
  Index cluster_start = 0;
  double previous_shift = 0.0;
  for (Index j = 0; j < count; ++j) {
    double shift = out.values(j);
    if (j > 0) {
      if (out.values(j - 1) - out.values(j) > cluster_gap) cluster_start = j;
      // Shifts of one cluster at least 10 ε |λ| apart, so that they give different vectors.
      const double separation = 10.0 * kEpsilon * std::abs(shift);
      if (j > cluster_start && previous_shift - shift < separation) shift = previous_shift - separation;
    }
    previous_shift = shift;
    lu.factor(diagonal, off_diagonal, shift, tiny);
    pseudo_random_start(vector, static_cast<std::uint64_t>(j));
    int iterations = 0, checks = 0;
    for (;;) {
      if (++iterations > kMaxIterations) {
        out.success = false;
        break;
      }
      // Scale the right-hand side to ‖b‖₁ = n ‖T‖ max(ε, |u_nn|), so that enough growth shows as |y| ≥ √(0.1/n).
      const double scale = static_cast<double>(n) * norm *
                           std::max(kEpsilon, std::abs(lu.pivot[static_cast<std::size_t>(n - 1)])) / vector.lpNorm<1>();
      vector *= scale;
      lu.solve(vector);
      for (Index i = cluster_start; i < j; ++i) vector -= out.vectors.col(i).dot(vector) * out.vectors.col(i);
      if (vector.cwiseAbs().maxCoeff() < growth_threshold) continue;
      if (++checks < kExtraIterations + 1) continue;
      break;
    }
    out.vectors.col(j) = vector / vector.norm();
  }
  if (!out.vectors.allFinite() || !out.values.allFinite()) out.success = false;
  return out;
}

TopEigen top_eigen(const Eigen::MatrixXd& matrix, Index count) {
  const Eigen::Tridiagonalization<Eigen::MatrixXd> tridiagonal(matrix);
  const Eigen::VectorXd diagonal = tridiagonal.diagonal();
  const Eigen::VectorXd off_diagonal = tridiagonal.subDiagonal();
  TopEigen out = top_eigen_tridiagonal(diagonal, off_diagonal, count);
  // Eigenvectors of C = Q T Qᵀ: Q times those of T.
  out.vectors = tridiagonal.matrixQ() * out.vectors;
  return out;
}

}  // namespace entrosum::detail
