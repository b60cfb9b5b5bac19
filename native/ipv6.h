// The forwarder's IPv6 rules (RFC 8200, RFC 4443), beside ipv4.h's: hop limit
// decrement (IPv6 has no header checksum), whether an ICMPv6 error may be sent
// about a packet, and the ICMPv6 errors: destination unreachable "no route to
// destination" for the no-route path, time exceeded "hop limit exceeded in
// transit" for a packet whose hop limit runs out here. Pure functions over byte buffers; ipv4.cc's
// RouteFromTun and CheckDatagram call them for version-6 packets.
// backend/udp/packet.ts implements the same rules for the dgram engine.
#pragma once
#include <cstddef>
#include <cstdint>

namespace weft {

constexpr uint8_t kIpprotoIcmpv6 = 58;
// RFC 4443 2.4(c): an ICMPv6 error quotes as much of the packet as fits in the IPv6 minimum MTU.
constexpr size_t kMinMtu6 = 1280;

// Whether RFC 4443 2.4(e) allows an ICMPv6 error about this IPv6 packet (len >= 40):
// not about an ICMPv6 error message (type < 128, when ICMPv6 is the first next header),
// not to a multicast destination, not from an unspecified, multicast, loopback or
// link-local source (such a packet is never forwarded, so no error goes back either).
bool Icmp6Allowed(const uint8_t* ip, size_t len);

// RFC 4443's types and codes of the errors the forwarder sends.
constexpr uint8_t kIcmp6DestUnreach = 1, kIcmp6NoRoute = 0;
constexpr uint8_t kIcmp6TimeExceeded = 3, kIcmp6HopLimitExceeded = 0;

// An ICMPv6 error (type, code) from the 16-byte `ownIp6` to the packet's source, quoting
// the packet up to kMinMtu6 bytes in all. Returns the length (at most kMinMtu6); len >= 40.
size_t BuildIcmp6Error(const uint8_t* orig, size_t len, const uint8_t* ownIp6, uint8_t type, uint8_t code, uint8_t* out);

}  // namespace weft
