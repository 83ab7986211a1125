// Private to the library: whether any lane of a SIMD comparison mask is set, and which, as one instruction where the
// instruction set has it. Eigen offers the first (predux_any) for float packets only; for double packets its generic
// version sums the lanes horizontally, which costs as much as the exp it is meant to skip.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif
#if defined(_MSC_VER)
#include <intrin.h>
#endif

// A packet type is a vector type whose attributes GCC drops as a template argument (-Wignored-attributes); only which
// type it is matters here.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

namespace entrosum::detail {

/// `mask` holds all-ones or all-zeros lanes (Eigen's pcmp_* results).
template <typename Packet>
inline bool any_lane_set(const Packet& mask) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<Packet, __m512d>) {
    const __m512i bits = _mm512_castpd_si512(mask);
    return _mm512_test_epi64_mask(bits, bits) != 0;
  }
  if constexpr (std::is_same_v<Packet, __m512>) {
    const __m512i bits = _mm512_castps_si512(mask);
    return _mm512_test_epi32_mask(bits, bits) != 0;
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_same_v<Packet, __m256d>) return _mm256_movemask_pd(mask) != 0;
  if constexpr (std::is_same_v<Packet, __m256>) return _mm256_movemask_ps(mask) != 0;
#endif
#if defined(__SSE2__)
  if constexpr (std::is_same_v<Packet, __m128d>) return _mm_movemask_pd(mask) != 0;
  if constexpr (std::is_same_v<Packet, __m128>) return _mm_movemask_ps(mask) != 0;
#endif
  return Eigen::internal::predux_any(mask);
}

/// Bit l set where lane l of `mask` is set (lanes all-ones or all-zeros, as from Eigen's pcmp_*).
template <typename Packet>
inline std::uint32_t lane_bits(const Packet& mask) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<Packet, __m512d>) {
    const __m512i bits = _mm512_castpd_si512(mask);
    return _mm512_test_epi64_mask(bits, bits);
  }
  if constexpr (std::is_same_v<Packet, __m512>) {
    const __m512i bits = _mm512_castps_si512(mask);
    return _mm512_test_epi32_mask(bits, bits);
  }
#endif
#if defined(__AVX__)
  if constexpr (std::is_same_v<Packet, __m256d>) return static_cast<std::uint32_t>(_mm256_movemask_pd(mask));
  if constexpr (std::is_same_v<Packet, __m256>) return static_cast<std::uint32_t>(_mm256_movemask_ps(mask));
#endif
#if defined(__SSE2__)
  if constexpr (std::is_same_v<Packet, __m128d>) return static_cast<std::uint32_t>(_mm_movemask_pd(mask));
  if constexpr (std::is_same_v<Packet, __m128>) return static_cast<std::uint32_t>(_mm_movemask_ps(mask));
#endif
  using Scalar = typename Eigen::internal::unpacket_traits<Packet>::type;
  constexpr int lanes = Eigen::internal::unpacket_traits<Packet>::size;
  Scalar values[lanes];
  Eigen::internal::pstoreu(values, mask);
  std::uint32_t bits = 0;
  for (int lane = 0; lane < lanes; ++lane) {
    Scalar zero(0);
    // a set lane is all ones (a NaN pattern for floating point): compare its bytes, not its value
    if (std::memcmp(&values[lane], &zero, sizeof(Scalar)) != 0) bits |= std::uint32_t(1) << lane;
  }
  return bits;
}

/// Index of the lowest set bit of a non-zero `bits`.
inline int lowest_set_bit(std::uint32_t bits) {
#if defined(_MSC_VER) && !defined(__clang__)
  unsigned long index;
  _BitScanForward(&index, bits);
  return static_cast<int>(index);
#else
  return __builtin_ctz(bits);
#endif
}

}  // namespace entrosum::detail

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
