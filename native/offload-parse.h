// What offload.cc (split) and coalesce.cc (merge) both read from a packet: the
// IP header (v4 or v6 without extension headers), the TCP header length, the
// pseudo-header sum. Byte offsets are those of RFC 791, RFC 8200, RFC 9293 and
// RFC 768. Internal to the offload code.
#pragma once
#include "bytes.h"
#include "offload.h"

namespace weft {
namespace offload {
namespace parse {

constexpr uint8_t kIpprotoTcp = 6;
constexpr uint8_t kIpprotoUdp = 17;
constexpr uint8_t TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_PSH = 0x08, TH_URG = 0x20, TH_CWR = 0x80;
constexpr uint16_t IP_DF = 0x4000, IP_MF_OFFSET = 0x3fff;

struct Ip {
  int version = 0;
  size_t hdrLen = 0;  // = offset of the L4 header (no IPv6 extension headers are accepted)
  size_t len = 0;     // the IP packet's own length, <= the buffer
  uint8_t proto = 0;
};

inline Status ParseIp(const uint8_t* p, size_t len, Ip* ip) {
  if (len < 1) return Status::kTruncated;
  ip->version = p[0] >> 4;
  if (ip->version == 4) {
    if (len < 20) return Status::kTruncated;
    ip->hdrLen = (p[0] & 0x0fu) * 4u;
    if (ip->hdrLen < 20 || ip->hdrLen > len) return Status::kBadIpHeader;
    ip->len = Be16(p + 2);
    if (ip->len < ip->hdrLen || ip->len > len) return Status::kBadIpLength;
    if (Be16(p + 6) & IP_MF_OFFSET) return Status::kFragment;
    ip->proto = p[9];
    return Status::kOk;
  }
  if (ip->version == 6) {
    if (len < 40) return Status::kTruncated;
    ip->hdrLen = 40;
    ip->len = 40u + Be16(p + 4);
    if (ip->len > len) return Status::kBadIpLength;
    ip->proto = p[6];
    return Status::kOk;
  }
  return Status::kBadIpVersion;
}

// The TCP header length at l4 within an IP packet of ipLen bytes.
inline Status TcpHdrLen(const uint8_t* p, size_t l4, size_t ipLen, size_t* out) {
  if (ipLen < l4 + 20) return Status::kTruncated;
  size_t n = (p[l4 + 12] >> 4) * 4u;
  if (n < 20 || l4 + n > ipLen) return Status::kBadL4Header;
  *out = n;
  return Status::kOk;
}

inline uint32_t PseudoHeaderSum(const uint8_t* ip, int version, uint8_t proto, uint32_t l4Len) {
  return version == 4 ? PseudoHeaderSumV4(ip + 12, ip + 16, proto, l4Len) : PseudoHeaderSumV6(ip + 8, ip + 24, proto, l4Len);
}

}  // namespace parse
}  // namespace offload
}  // namespace weft
