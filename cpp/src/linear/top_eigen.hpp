// The largest eigenpairs of a symmetric matrix, for the closed-form PPCA, which needs only the top H
// eigenvectors of the D × D covariance and the sum of the other eigenvalues. Private to the library's sources.
//
// Householder tridiagonalisation T = Qᵀ C Q (Eigen's), then
//   - the H largest eigenvalues of T by bisection on Sturm counts, all H intervals advanced together (the
//     counts of one step are independent, so the divisions of different intervals overlap);
//   - their eigenvectors of T by inverse iteration (Wilkinson; as LAPACK's dstein): a tridiagonal LU with
//     partial pivoting of T − λI, two to five solves from a fixed pseudo-random start, and modified
//     Gram–Schmidt against the vectors of eigenvalues within 1e-3 ‖T‖ (a cluster), whose shifts are
//     separated by at least 10 ε |λ| so that they give different vectors;
//   - the eigenvectors of C as Q times those of T.
// The full decomposition (Eigen's SelfAdjointEigenSolver: QR on T with every rotation applied to a D × D
// matrix) spends most of its O(D³) on eigenvectors PPCA discards: at D = 784, H = 50 it took 0.21 s of CPU
// against 0.04 s for the tridiagonalisation, which dominates what remains here.
#pragma once

#include <Eigen/Core>

#include "entrosum/core/types.hpp"

namespace entrosum::detail {

/// The `count` largest eigenvalues (decreasing) and their orthonormal eigenvectors, and the trace.
struct TopEigen {
  /// (count) λ_1 ≥ … ≥ λ_count
  Eigen::VectorXd values;
  /// (n, count) eigenvectors, column h for values(h)
  Eigen::MatrixXd vectors;
  /// Σ of all n eigenvalues (the trace of the tridiagonal form)
  double trace = 0.0;
  bool success = true;
};

/// The `count` largest eigenpairs of the symmetric matrix `matrix` (its lower triangle is read), 1 ≤ count ≤ n.
TopEigen top_eigen(const Eigen::MatrixXd& matrix, Index count);

/// The same for a symmetric tridiagonal matrix with diagonal `diagonal` (n) and off-diagonal `off_diagonal`
/// (n − 1); the eigenvectors are those of the tridiagonal matrix.
TopEigen top_eigen_tridiagonal(const Eigen::VectorXd& diagonal, const Eigen::VectorXd& off_diagonal, Index count);

}  // namespace entrosum::detail
