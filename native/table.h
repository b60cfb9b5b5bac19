// The forwarding table: remote subnet -> the peer that owns it. Built whole
// from what TypeScript hands over and never changed after: the threads take a
// reference to the current one per batch (see Forwarder::table()).
//   Lookup(dst)   longest-prefix match of an inner destination (sending)
//   RoutesOf(ip)  the subnets a sender may use as inner source (receiving)
// IPv4 and IPv6 prefixes side by side: each family has its own LPM maps; a peer
// (its IPv4 underlay address) owns the subnets of both.
// The underlay may be IPv6 too: a peer is then also known by its IPv6 underlay
// address (a datagram from either is its), and a route may send to it (over6).
// Senders are looked up by their address as 16 bytes, an IPv4 one v4-mapped
// (what an AF_INET6 socket reports for IPv4 senders).
#pragma once
#include "counters.h"
#include "udp-batch.h"

#include <memory>
#include <netinet/in.h>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weft {

// An IPv4 prefix, host byte order, host bits clear.
struct Prefix4 {
  uint32_t net = 0;
  uint8_t len = 0;
  static uint32_t Mask(int len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
  bool Contains(uint32_t addr) const { return (addr & Mask(len)) == net; }
};

// An IPv6 prefix, network byte order, host bits clear.
struct Prefix6 {
  uint8_t net[16] = {};
  uint8_t len = 0;
  // The 128-bit address as two host-order halves, masked to len bits.
  static void Key(const uint8_t* addr, int len, uint64_t* hi, uint64_t* lo);
  bool Contains(const uint8_t* addr) const;
};

// One entry as given: the peer at peerIp:port (host order) owns `prefix`
// (or `prefix6` when v6). hasPeerIp6: the peer's IPv6 underlay address is
// peerIp6 (network order); over6: datagrams go there instead of to peerIp.
struct RouteSpec {
  Prefix4 prefix;
  uint32_t peerIp = 0;
  uint16_t port = 0;
  bool v6 = false;
  Prefix6 prefix6;
  bool hasPeerIp6 = false;
  bool over6 = false;
  uint8_t peerIp6[16] = {};
};

struct Route {
  Prefix4 prefix;   // unused when v6
  bool v6 = false;
  Prefix6 prefix6;  // used when v6
  SockAddr dst{};   // AF_INET for an IPv4 socket, else AF_INET6 (v4-mapped unless over6)
  std::string peerKey;  // "192.0.2.12:8285", for stats
  std::shared_ptr<PeerCounters> counters;
};

class Table {
 public:
  // Per-peer counters of `previous` carry over for the peers that stay. v6Socket: the
  // forwarder sends from an AF_INET6 socket (every dst is a sockaddr_in6); without it a
  // spec with over6 throws std::invalid_argument.
  static std::shared_ptr<const Table> Build(const std::vector<RouteSpec>& specs, const Table* previous, bool v6Socket = false);

  const Route* Lookup(uint32_t dst) const;
  // Longest-prefix match of a 16-byte IPv6 destination (network order).
  const Route* Lookup6(const uint8_t* dst) const;
  // Indices into routes() of the peer at `ip` (host order), or nullptr for a stranger.
  const std::vector<uint32_t>* RoutesOf(uint32_t ip) const;
  // The same for a sender's 16-byte address (AddrKey: IPv6, or IPv4 v4-mapped).
  const std::vector<uint32_t>* RoutesOf6(const uint8_t* addr) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  // LPM: one hash map per distinct prefix length, longest first.
  std::vector<std::pair<uint8_t, std::unordered_map<uint32_t, uint32_t>>> byPrefix_;
  struct Key6Hash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& k) const { return std::hash<uint64_t>()(k.first * 0x9e3779b97f4a7c15ull ^ k.second); }
  };
  std::vector<std::pair<uint8_t, std::unordered_map<std::pair<uint64_t, uint64_t>, uint32_t, Key6Hash>>> byPrefix6_;
  // By the peer's underlay addresses as 16 bytes (Prefix6::Key of 128 bits).
  std::unordered_map<std::pair<uint64_t, uint64_t>, std::vector<uint32_t>, Key6Hash> byPeer_;
};

}  // namespace weft
