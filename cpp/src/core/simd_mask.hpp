// Private to the library: whether any lane of a SIMD comparison mask is set, as one instruction where the
// instruction set has it. Eigen offers that (predux_any) for float packets only; for double packets its generic
// version sums the lanes horizontally, which costs as much as the exp it is meant to skip.
#pragma once

#include <Eigen/Core>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
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

}  // namespace entrosum::detail
