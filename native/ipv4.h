// The forwarder's IPv4 rules, as pure functions over byte buffers (no system
// calls): the verdict on a packet read from the TUN (send to which peer?), the
// checks on a datagram from the wire (deliver?), TTL decrement and the ICMP
// net-unreachable. agent/backend/packet.ts implements the same rules for the
// dgram engine; test/unit/udp-packet-vectors.test.ts runs both on one set of vectors.
#pragma once
#include "counters.h"
#include "table.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft {

// TTL - 1 with the header checksum updated incrementally (RFC 1624 eqn. 3).
void DecrementTtl(uint8_t* ip);

// Whether RFC 1812 4.3.2.7 allows an ICMP error about this IPv4 packet: not about an
// ICMP error, a non-first fragment, or a zero/multicast/broadcast address. len >= 20.
bool IcmpAllowed(const uint8_t* ip, size_t len);

// The largest ICMP error BuildNetUnreachable writes: IP + ICMP headers, a quoted
// 60-byte IP header and 8 bytes of its payload.
constexpr size_t kMaxIcmpError = 20 + 8 + 60 + 8;
// ICMP destination unreachable (type 3, code 0) from `ownIp` to the packet's source,
// quoting its IP header and the first 8 bytes of its payload. Returns the length.
size_t BuildNetUnreachable(const uint8_t* orig, size_t len, uint32_t ownIp, uint8_t* out);

// What to do with a packet read from the TUN. drop < 0: send to route (TTL already
// decremented in place). Else a Drop; route is set for ttl (the peer it was for),
// icmp when a net-unreachable about it may go back into the TUN.
struct TunVerdict {
  int drop = -1;
  const Route* route = nullptr;
  bool icmp = false;
};
TunVerdict RouteFromTun(const Table& t, uint8_t* p, size_t len);

// Why a datagram from `from` (host order) must not be written to the TUN (a Drop),
// or -1 when it may. Checked in this order: a known peer (strangers are always
// counted as such), one whole IPv4/IPv6 packet, its source inside one of the
// sender's subnets, its destination inside one of this host's subnets (`own`).
// *pc: the sender's counters once it is known to be a peer.
int CheckDatagram(const Table& t, const std::vector<Prefix4>& own, uint32_t from, const uint8_t* p, size_t len, PeerCounters** pc);

}  // namespace weft
