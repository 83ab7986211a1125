// Subnormal numbers (magnitudes below the smallest normal float or double) are handled by microcode on
// x86 and by slow paths on many ARM cores: an operation that reads or makes one costs tens to hundreds of
// cycles. In EM they are everywhere once components separate: responsibilities of far-away components,
// densities far in the tails. They carry no information at the precision of the sums they enter, so every
// pass over the data runs with subnormals flushed to zero (FTZ) and read as zero (DAZ).
#pragma once

#include <cstdint>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <xmmintrin.h>
#define ENTROSUM_SUBNORMALS_VIA_MXCSR 1
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define ENTROSUM_SUBNORMALS_VIA_FPCR 1
#endif

namespace entrosum {

/// While alive, the calling thread's floating-point unit flushes subnormal results to zero and reads
/// subnormal operands as zero; the thread's previous mode is restored when it goes out of scope, so the
/// caller's own code (numpy, say) is unaffected. Where the CPU offers no such mode it does nothing.
class SubnormalsAsZero {
 public:
  SubnormalsAsZero() {
#if defined(ENTROSUM_SUBNORMALS_VIA_MXCSR)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
#elif defined(ENTROSUM_SUBNORMALS_VIA_FPCR)
    std::uint64_t control;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(control));
    saved_ = control;
    __asm__ __volatile__("msr fpcr, %0" : : "r"(control | kFlushToZeroArm));
#endif
  }
  ~SubnormalsAsZero() {
#if defined(ENTROSUM_SUBNORMALS_VIA_MXCSR)
    _mm_setcsr(static_cast<unsigned int>(saved_));
#elif defined(ENTROSUM_SUBNORMALS_VIA_FPCR)
    __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_));
#endif
  }
  SubnormalsAsZero(const SubnormalsAsZero&) = delete;
  SubnormalsAsZero& operator=(const SubnormalsAsZero&) = delete;

 private:
  static constexpr unsigned int kFlushToZero = 0x8000;                      // MXCSR bit 15 (FTZ)
  static constexpr unsigned int kDenormalsAreZero = 0x0040;                 // MXCSR bit 6 (DAZ)
  static constexpr std::uint64_t kFlushToZeroArm = std::uint64_t(1) << 24;  // FPCR.FZ: both results and inputs
  std::uint64_t saved_ = 0;
};

}  // namespace entrosum
