// IPv4 rules of the forwarder: see ipv4.h. Offsets are those of RFC 791 / RFC 792.
#include "ipv4.h"

#include "bytes.h"
#include "ipv6.h"

#include <algorithm>
#include <cstring>

namespace weft {

void DecrementTtl(uint8_t* ip) {
  // HC' = ~(~HC + ~m + m'), m = the 16-bit word holding TTL and protocol.
  uint16_t m = Be16(ip + 8);
  uint16_t m2 = static_cast<uint16_t>(m - 0x0100);
  uint32_t sum = (~Be16(ip + 10) & 0xffffu) + (~m & 0xffffu) + m2;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  ip[8] = static_cast<uint8_t>(ip[8] - 1);
  Put16(ip + 10, static_cast<uint16_t>(~sum & 0xffff));
}

bool IcmpAllowed(const uint8_t* ip, size_t len) {
  size_t ihl = (ip[0] & 0x0f) * 4u;
  if ((Be16(ip + 6) & 0x1fff) != 0) return false;
  uint32_t src = Be32(ip + 12), dst = Be32(ip + 16);
  if (src == 0 || src >= 0xe0000000u || dst >= 0xe0000000u) return false;
  if (ip[9] == 1 && len > ihl) {
    uint8_t t = ip[ihl];
    if (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) return false;
  }
  return true;
}

size_t BuildIcmpError(const uint8_t* orig, size_t len, uint32_t ownIp, uint8_t type, uint8_t code, uint8_t* out) {
  size_t ihl = (orig[0] & 0x0f) * 4u;
  size_t quote = std::min(len, ihl + 8);
  size_t total = 20 + 8 + quote;
  std::memset(out, 0, 28);
  out[0] = 0x45;
  out[1] = 0xc0;  // precedence "internetwork control", as Linux sends its ICMP errors
  Put16(out + 2, static_cast<uint16_t>(total));
  out[8] = 64;
  out[9] = 1;
  Put32(out + 12, ownIp);
  std::memcpy(out + 16, orig + 12, 4);
  Put16(out + 10, Checksum(out, 20));
  out[20] = type;
  out[21] = code;
  std::memcpy(out + 28, orig, quote);
  Put16(out + 22, Checksum(out + 20, 8 + quote));
  return total;
}

size_t BuildTunError(int drop, const uint8_t* p, size_t len, uint32_t ownIp, const uint8_t* ownIp6, uint8_t* out) {
  if (drop != kNoRoute && drop != kTtl) return 0;
  bool ttl = drop == kTtl;
  if ((p[0] >> 4) == 6) {
    if (!ownIp6) return 0;
    return ttl ? BuildIcmp6Error(p, len, ownIp6, kIcmp6TimeExceeded, kIcmp6HopLimitExceeded, out)
               : BuildIcmp6Error(p, len, ownIp6, kIcmp6DestUnreach, kIcmp6NoRoute, out);
  }
  return ttl ? BuildIcmpError(p, len, ownIp, kIcmpTimeExceeded, kIcmpTtlExceeded, out)
             : BuildIcmpError(p, len, ownIp, kIcmpDestUnreach, kIcmpNetUnreach, out);
}

namespace {
TunVerdict RouteFromTun6(const Table& t, uint8_t* p, size_t len) {
  TunVerdict v;
  if (len < 40) {
    v.drop = kMalformed;
    return v;
  }
  v.route = t.Lookup6(p + 24);
  if (!v.route) {
    v.drop = kNoRoute;
    v.icmp = Icmp6Allowed(p, len);
    return v;
  }
  if (p[7] <= 1) {
    v.drop = kTtl;
    v.icmp = Icmp6Allowed(p, len);
    return v;
  }
  p[7]--;  // the hop limit: no header checksum to update
  return v;
}
}  // namespace

TunVerdict RouteFromTun(const Table& t, uint8_t* p, size_t len) {
  if (len > 0 && (p[0] >> 4) == 6) return RouteFromTun6(t, p, len);
  TunVerdict v;
  if (len < 20 || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5 || (p[0] & 0x0fu) * 4u > len) {
    v.drop = kMalformed;
    return v;
  }
  v.route = t.Lookup(Be32(p + 16));
  if (!v.route) {
    v.drop = kNoRoute;
    v.icmp = IcmpAllowed(p, len);
    return v;
  }
  if (p[8] <= 1) {
    v.drop = kTtl;
    v.icmp = IcmpAllowed(p, len);
    return v;
  }
  DecrementTtl(p);
  return v;
}

int CheckDatagram(const Table& t, const std::vector<Prefix4>& own, const std::vector<Prefix6>& own6, uint32_t from, const uint8_t* p, size_t len,
                  PeerCounters** pc) {
  uint8_t mapped[16];
  V4Mapped(from, mapped);
  return CheckDatagram(t, own, own6, mapped, p, len, pc);
}

int CheckDatagram(const Table& t, const std::vector<Prefix4>& own, const std::vector<Prefix6>& own6, const uint8_t* from, const uint8_t* p, size_t len,
                  PeerCounters** pc) {
  const std::vector<uint32_t>* mine = t.RoutesOf6(from);
  if (!mine) return kUnknownPeer;
  *pc = t.routes()[mine->front()].counters.get();  // drops from here on are this peer's
  if (len < 1) return kMalformed;
  int v = p[0] >> 4;
  if (v == 4) {
    if (len < 20 || (p[0] & 0x0f) < 5 || (p[0] & 0x0fu) * 4u > len || Be16(p + 2) != len) return kMalformed;
  } else if (v == 6) {
    if (len < 40 || Be16(p + 4) + 40u != len) return kMalformed;
    bool owned6 = std::any_of(mine->begin(), mine->end(), [&](uint32_t i) { return t.routes()[i].v6 && t.routes()[i].prefix6.Contains(p + 8); });
    if (!owned6) return kSpoofedSource;
    bool ours6 = std::any_of(own6.begin(), own6.end(), [&](const Prefix6& o) { return o.Contains(p + 24); });
    return ours6 ? -1 : kWrongDestination;
  } else {
    return kMalformed;
  }
  uint32_t src = Be32(p + 12);
  bool owned = std::any_of(mine->begin(), mine->end(), [&](uint32_t i) { return !t.routes()[i].v6 && t.routes()[i].prefix.Contains(src); });
  if (!owned) return kSpoofedSource;
  uint32_t dst = Be32(p + 16);
  bool ours = std::any_of(own.begin(), own.end(), [&](const Prefix4& o) { return o.Contains(dst); });
  return ours ? -1 : kWrongDestination;
}

}  // namespace weft
