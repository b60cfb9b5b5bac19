// The forwarder's IP rules, as pure functions over byte buffers (no system
// calls): the verdict on a packet read from the TUN (send to which peer?), the
// checks on a datagram from the wire (deliver?), TTL decrement and the ICMP
// errors (net unreachable, time exceeded). IPv4 here; the IPv6 specifics (hop limit, ICMPv6) are in
// ipv6.h, and RouteFromTun / CheckDatagram take both versions. agent/backend/packet.ts implements the same rules for the
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

// The largest ICMP error BuildIcmpError or BuildTunError writes: the ICMPv6
// error of an IPv6 packet fills the IPv6 minimum MTU (an IPv4 one is 20 + 8 + 60 + 8).
constexpr size_t kMaxIcmpError = 1280;
// RFC 792's types and codes of the errors the forwarder sends.
constexpr uint8_t kIcmpDestUnreach = 3, kIcmpNetUnreach = 0;
constexpr uint8_t kIcmpTimeExceeded = 11, kIcmpTtlExceeded = 0;
// An ICMP error (type, code) from `ownIp` to the packet's source, quoting its IP header
// and the first 8 bytes of its payload (RFC 792). Returns the length.
size_t BuildIcmpError(const uint8_t* orig, size_t len, uint32_t ownIp, uint8_t type, uint8_t code, uint8_t* out);

// The ICMP error about an IP packet read from the TUN that the verdict `drop` answers:
// kNoRoute with net unreachable (ICMPv6: no route to destination), kTtl with time
// exceeded in transit (ICMPv6: hop limit exceeded); from ownIp (IPv4) or ownIp6 (IPv6;
// 0 bytes when ownIp6 is null: the network has no IPv6), 0 bytes for another drop.
// out holds kMaxIcmpError bytes.
size_t BuildTunError(int drop, const uint8_t* p, size_t len, uint32_t ownIp, const uint8_t* ownIp6, uint8_t* out);

// What to do with a packet read from the TUN. IPv4 or IPv6 (hop limit for TTL). drop < 0: send to route (TTL already
// decremented in place). Else a Drop; route is set for ttl (the peer it was for),
// icmp when the ICMP error about it (BuildTunError: no route, or TTL exceeded) may go back into the TUN.
struct TunVerdict {
  int drop = -1;
  const Route* route = nullptr;
  bool icmp = false;
};
TunVerdict RouteFromTun(const Table& t, uint8_t* p, size_t len);

// Why a datagram from `from` (host order) must not be written to the TUN (a Drop),
// or -1 when it may. Checked in this order: a known peer (strangers are always
// counted as such), one whole IPv4/IPv6 packet, its source inside one of the
// sender's subnets of that family, its destination inside one of this host's
// subnets of that family (`own`, `own6`).
// *pc: the sender's counters once it is known to be a peer.
// `from`: the sender as 16 bytes (an IPv4 one v4-mapped, as udp-batch.h AddrKey gives it);
// the uint32_t overload takes an IPv4 sender in host order.
int CheckDatagram(const Table& t, const std::vector<Prefix4>& own, const std::vector<Prefix6>& own6, const uint8_t* from, const uint8_t* p, size_t len,
                  PeerCounters** pc);
int CheckDatagram(const Table& t, const std::vector<Prefix4>& own, const std::vector<Prefix6>& own6, uint32_t from, const uint8_t* p, size_t len,
                  PeerCounters** pc);

}  // namespace weft
