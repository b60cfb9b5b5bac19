// IPv6 rules of the forwarder: see ipv6.h. Offsets are those of RFC 8200 / RFC 4443.
#include "ipv6.h"

#include "bytes.h"

#include <algorithm>
#include <cstring>

namespace weft {

namespace {
bool Unspecified(const uint8_t* a) {
  static const uint8_t zero[16] = {};
  return std::memcmp(a, zero, 16) == 0;
}
bool Loopback(const uint8_t* a) {
  static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(a, one, 16) == 0;
}
}  // namespace

bool Icmp6Allowed(const uint8_t* ip, size_t len) {
  const uint8_t* src = ip + 8;
  const uint8_t* dst = ip + 24;
  if (dst[0] == 0xff || src[0] == 0xff) return false;
  if (src[0] == 0xfe && (src[1] & 0xc0) == 0x80) return false;
  if (Unspecified(src) || Loopback(src)) return false;
  if (ip[6] == kIpprotoIcmpv6 && len > 40 && ip[40] < 128) return false;
  return true;
}

size_t BuildIcmp6Error(const uint8_t* orig, size_t len, const uint8_t* ownIp6, uint8_t type, uint8_t code, uint8_t* out) {
  size_t quote = std::min(len, kMinMtu6 - 48);
  size_t icmpLen = 8 + quote;
  std::memset(out, 0, 48);
  out[0] = 0x60;
  Put16(out + 4, static_cast<uint16_t>(icmpLen));
  out[6] = kIpprotoIcmpv6;
  out[7] = 64;
  std::memcpy(out + 8, ownIp6, 16);
  std::memcpy(out + 24, orig + 8, 16);
  out[40] = type;
  out[41] = code;
  std::memcpy(out + 48, orig, quote);
  Put16(out + 42, Checksum(out + 40, icmpLen, PseudoHeaderSumV6(out + 8, out + 24, kIpprotoIcmpv6, static_cast<uint32_t>(icmpLen))));
  return 40 + icmpLen;
}

}  // namespace weft
