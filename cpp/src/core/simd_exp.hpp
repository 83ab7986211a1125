// Private to the library: exp over SIMD packets for arguments in [log(smallest normal), 0], the range of the E-steps'
// shifted log joints (l − max_k l). Eigen's double exp is a rational function: its division alone takes a 512-bit
// FMA port for 16 cycles, and it was the slowest step of a mixture's normalisation (a quarter of a diagonal
// Gaussian mixture's iteration). Here: a polynomial and, where the instruction set has it, one instruction for 2^n.
// float packets keep Eigen's exp, which is already a polynomial.
#pragma once

#include <Eigen/Core>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

// A packet type is a vector type whose attributes GCC drops as a template argument (-Wignored-attributes).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

namespace entrosum::detail {

/// p · 2^n for double packets with integer-valued n in [-1022, 0], so that 2^n is a normal number.
template <typename Packet>
inline Packet times_power_of_two(const Packet& p, const Packet& n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<Packet, __m512d>) return _mm512_scalef_pd(p, n);  // p · 2^floor(n)
#endif
#if defined(__AVX2__)
  if constexpr (std::is_same_v<Packet, __m256d>) {
    // the biased exponent n + 1023 moved into the exponent bits of a double: 2^n exactly
    const __m256i biased = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)), _mm256_set1_epi64x(1023));
    return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_slli_epi64(biased, 52)));
  }
#endif
  return Eigen::internal::pldexp(p, n);
}

/// exp(x) for a packet of doubles with every lane in [-708.39, 0] (callers clamp first): within 2 ulp of the exact
/// value. x = n log 2 + r with |r| ≤ log(2) / 2, exp(r) by its Taylor polynomial to degree 13 (the first term left
/// out, r^14 / 14!, is below 4e-18 of the value), times 2^n.
template <typename Packet>
inline Packet exp_non_positive(const Packet& x) {
  namespace ei = Eigen::internal;
  static_assert(std::is_same_v<typename ei::unpacket_traits<Packet>::type, double>, "double packets only");
  const Packet n = ei::pfloor(ei::pmadd(x, ei::pset1<Packet>(1.4426950408889634074), ei::pset1<Packet>(0.5)));
  // log 2 in two parts: the first has 32 significant bits, so n times it is exact for |n| ≤ 2^21
  Packet r = ei::pmadd(n, ei::pset1<Packet>(-6.93147180369123816490e-01), x);
  r = ei::pmadd(n, ei::pset1<Packet>(-1.90821492927058770002e-10), r);
  // Horner from 1/13! down to 1/0!
  constexpr double kInverseFactorials[] = {1.0 / 6227020800.0,
                                           1.0 / 479001600.0,
                                           1.0 / 39916800.0,
                                           1.0 / 3628800.0,
                                           1.0 / 362880.0,
                                           1.0 / 40320.0,
                                           1.0 / 5040.0,
                                           1.0 / 720.0,
                                           1.0 / 120.0,
                                           1.0 / 24.0,
                                           1.0 / 6.0,
                                           0.5,
                                           1.0,
                                           1.0};
  Packet p = ei::pset1<Packet>(kInverseFactorials[0]);
  for (int i = 1; i < 14; ++i) p = ei::pmadd(p, r, ei::pset1<Packet>(kInverseFactorials[i]));
  return times_power_of_two(p, n);
}

/// exp(l') for a packet of shifted log joints l' = l − max ≤ 0 whose lanes below `floor` (at least the log of the
/// smallest normal) the caller masks out. double: exp_non_positive on l' clamped into [floor, 0] (a row with a NaN
/// can have NaN lanes or l' > 0; they end masked or in a NaN normaliser either way). float: Eigen's exp.
template <typename Packet>
inline Packet exp_of_shifted(const Packet& shifted, const Packet& floor) {
  namespace ei = Eigen::internal;
  if constexpr (std::is_same_v<typename ei::unpacket_traits<Packet>::type, double>)
    return exp_non_positive(ei::pmin(ei::pmax(shifted, floor), ei::pzero(shifted)));
  else
    return ei::pexp(shifted);
}

}  // namespace entrosum::detail

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
