// The Internet checksum (RFC 1071) for the whole data path: see bytes.h.
#include "bytes.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define WEFT_AVX2_SUM 1
#endif

namespace weft {

#if WEFT_AVX2_SUM
namespace {

// 64 bytes per step on CPUs with AVX2 (chosen at run time: the addon is built for
// baseline x86-64): the same widening of 32-bit words into 64-bit lanes as the SSE2
// loop below, twice as wide. Sums the first (n / 64) * 64 bytes into *acc (each lane
// folded into it as the SSE2 loop does) and returns how many it summed.
__attribute__((target("avx2"))) size_t SumAvx2(const uint8_t* p, size_t n, uint64_t* acc) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32));
    a0 = _mm256_add_epi64(a0, _mm256_unpacklo_epi32(x, zero));
    a1 = _mm256_add_epi64(a1, _mm256_unpackhi_epi32(x, zero));
    a2 = _mm256_add_epi64(a2, _mm256_unpacklo_epi32(y, zero));
    a3 = _mm256_add_epi64(a3, _mm256_unpackhi_epi32(y, zero));
  }
  __m256i t = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  uint64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), t);
  for (uint64_t l : lanes) *acc += (l & 0xffffffffu) + (l >> 32);
  return i;
}

// Static initialisers of one library run in no set order: initialise the CPU model here.
const bool kHaveAvx2 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}();

}  // namespace
#endif

// Sums native-order words (RFC 1071 2(B): the ones'-complement sum is byte-order
// independent) 32 bits at a time into 64 bits, then swaps the folded result.
uint32_t Sum(const uint8_t* p, size_t n, uint32_t initial) {
  uint64_t acc = 0;
  size_t i = 0;
#if WEFT_AVX2_SUM
  if (n >= 128 && kHaveAvx2) i = SumAvx2(p, n, &acc);
#endif
#if defined(__SSE2__)
  // The transmit path sums every byte it sends: 32 bytes per step, each 32-bit word
  // widened into a 64-bit lane (which cannot wrap for n < 2^37).
  if (n - i >= 64) {
    const __m128i zero = _mm_setzero_si128();
    __m128i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    for (; i + 32 <= n; i += 32) {
      __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 16));
      a0 = _mm_add_epi64(a0, _mm_unpacklo_epi32(x, zero));
      a1 = _mm_add_epi64(a1, _mm_unpackhi_epi32(x, zero));
      a2 = _mm_add_epi64(a2, _mm_unpacklo_epi32(y, zero));
      a3 = _mm_add_epi64(a3, _mm_unpackhi_epi32(y, zero));
    }
    __m128i t = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
    uint64_t lanes[2];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), t);
    // 2^32 = 1 modulo 0xffff: a lane's high half adds to its low half.
    for (uint64_t l : lanes) acc += (l & 0xffffffffu) + (l >> 32);
  }
#endif
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc += (w & 0xffffffffu) + (w >> 32);
  }
  for (; i + 2 <= n; i += 2) {
    uint16_t w;
    std::memcpy(&w, p + i, 2);
    acc += w;
  }
  if (i < n) {
    const uint8_t last[2] = {p[i], 0};
    uint16_t w;
    std::memcpy(&w, last, 2);
    acc += w;
  }
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  uint16_t s = static_cast<uint16_t>(acc);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  s = static_cast<uint16_t>(s >> 8 | s << 8);
#endif
  return initial + s;
}

uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint16_t Checksum(const uint8_t* p, size_t n, uint32_t initial) { return static_cast<uint16_t>(~Fold(Sum(p, n, initial))); }

uint32_t PseudoHeaderSumV4(const uint8_t* src4, const uint8_t* dst4, uint8_t proto, uint32_t l4Len) {
  return Sum(src4, 4) + Sum(dst4, 4) + proto + (l4Len >> 16) + (l4Len & 0xffff);
}

uint32_t PseudoHeaderSumV6(const uint8_t* src16, const uint8_t* dst16, uint8_t proto, uint32_t l4Len) {
  return Sum(src16, 16) + Sum(dst16, 16) + proto + (l4Len >> 16) + (l4Len & 0xffff);
}

}  // namespace weft
