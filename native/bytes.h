// Byte helpers shared by the whole data path: network-order (big-endian) loads
// and stores for packet headers, little-endian ones for the virtio_net_hdr, and
// the Internet checksum (RFC 1071). One copy for the forwarder and the offload code.
#pragma once
#include <cstddef>
#include <cstdint>

namespace weft {

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }
inline void Put16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v >> 8); p[1] = static_cast<uint8_t>(v); }
inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24); p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8); p[3] = static_cast<uint8_t>(v);
}
inline uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
inline void PutLe16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v); p[1] = static_cast<uint8_t>(v >> 8); }

// Ones'-complement sum of n bytes as 16-bit big-endian words (an odd last byte
// is padded with zero), added to `initial`. Not folded: fold with Fold().
// n may be any size; the result stays below 2^32 for n < 2^31 and initial < 2^31.
uint32_t Sum(const uint8_t* p, size_t n, uint32_t initial = 0);
// Folds a Sum() to 16 bits, not complemented (what a CHECKSUM_PARTIAL field holds).
uint16_t Fold(uint32_t sum);
// The checksum to store: ~Fold(Sum(p, n, initial)).
uint16_t Checksum(const uint8_t* p, size_t n, uint32_t initial = 0);
// Pseudo-header sums (RFC 793/768 for IPv4, RFC 8200 8.1 for IPv6), unfolded.
uint32_t PseudoHeaderSumV4(const uint8_t* src4, const uint8_t* dst4, uint8_t proto, uint32_t l4Len);
uint32_t PseudoHeaderSumV6(const uint8_t* src16, const uint8_t* dst16, uint8_t proto, uint32_t l4Len);

}  // namespace weft
