// Private to the library: into += featuresᵀ · weights over a few dozen rows, for narrow features (colour pixels'
// nine full-covariance features) and rows of K weights. Register tiles of two SIMD packets of columns of `weights`
// by a few features, each feature value broadcast: no operand is packed. Eigen's general product packs both
// operands, which at nine features costs more than its arithmetic.
#pragma once

#include <Eigen/Core>

#include "entrosum/core/types.hpp"

namespace entrosum::detail {

/// Features per register tile: 2·J accumulators + 3 packets in flight (32 vector registers with AVX-512, else 16).
#if defined(__AVX512F__)
inline constexpr int kNarrowTileFeatures = 8;
#else
inline constexpr int kNarrowTileFeatures = 4;
#endif

/// into(j0 + j, k0 .. k0 + 2L) += Σ_rows features(row, j0 + j) · weights(row, k0 .. k0 + 2L) for j < J.
template <int J>
inline void narrow_product_tile(const RowMatrix<double>& features, const RowMatrix<double>& weights, Index j0, Index k0,
                                RowMatrix<double>& into) {
  namespace ei = Eigen::internal;
  using Packet = typename ei::packet_traits<double>::type;
  constexpr Index lanes = ei::packet_traits<double>::size;
  Packet low[J], high[J];
  for (int j = 0; j < J; ++j) {
    low[j] = ei::ploadu<Packet>(&into(j0 + j, k0));
    high[j] = ei::ploadu<Packet>(&into(j0 + j, k0 + lanes));
  }
  for (Index row = 0; row < features.rows(); ++row) {
    const Packet left = ei::ploadu<Packet>(&weights(row, k0));
    const Packet right = ei::ploadu<Packet>(&weights(row, k0 + lanes));
    const double* values = &features(row, j0);
    for (int j = 0; j < J; ++j) {
      const Packet value = ei::pset1<Packet>(values[j]);
      low[j] = ei::pmadd(value, left, low[j]);
      high[j] = ei::pmadd(value, right, high[j]);
    }
  }
  for (int j = 0; j < J; ++j) {
    ei::pstoreu(&into(j0 + j, k0), low[j]);
    ei::pstoreu(&into(j0 + j, k0 + lanes), high[j]);
  }
}

/// into (W, K) += featuresᵀ (W, n) · weights (n, K). Each entry sums its rows in order, so the result does not
/// depend on how the rows were split among threads.
inline void add_narrow_transposed_product(const RowMatrix<double>& features, const RowMatrix<double>& weights,
                                          RowMatrix<double>& into) {
  namespace ei = Eigen::internal;
  constexpr Index pair = 2 * ei::packet_traits<double>::size;
  const Index W = features.cols(), K = weights.cols();
  Index k0 = 0;
  for (; k0 + pair <= K; k0 += pair) {
    Index j0 = 0;
    for (; j0 + kNarrowTileFeatures <= W; j0 += kNarrowTileFeatures)
      narrow_product_tile<kNarrowTileFeatures>(features, weights, j0, k0, into);
    for (; j0 < W; ++j0) narrow_product_tile<1>(features, weights, j0, k0, into);
  }
  for (; k0 < K; ++k0)  // the last K mod 2L columns
    for (Index j = 0; j < W; ++j) {
      double sum = into(j, k0);
      for (Index row = 0; row < features.rows(); ++row) sum += features(row, j) * weights(row, k0);
      into(j, k0) = sum;
    }
}

}  // namespace entrosum::detail
