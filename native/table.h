// The forwarding table: remote subnet -> the peer that owns it. Built whole
// from what TypeScript hands over and never changed after: the threads take a
// reference to the current one per batch (see Forwarder::table()).
//   Lookup(dst)   longest-prefix match of an inner destination (sending)
//   RoutesOf(ip)  the subnets a sender may use as inner source (receiving)
// IPv4 and IPv6 prefixes side by side: each family has its own LPM maps; a peer
// (its IPv4 underlay address) owns the subnets of both.
#pragma once
#include "counters.h"

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
// (or `prefix6` when v6).
struct RouteSpec {
  Prefix4 prefix;
  uint32_t peerIp = 0;
  uint16_t port = 0;
  bool v6 = false;
  Prefix6 prefix6;
};

struct Route {
  Prefix4 prefix;   // unused when v6
  bool v6 = false;
  Prefix6 prefix6;  // used when v6
  sockaddr_in dst{};
  std::string peerKey;  // "192.0.2.12:8285", for stats
  std::shared_ptr<PeerCounters> counters;
};

class Table {
 public:
  // Per-peer counters of `previous` carry over for the peers that stay.
  static std::shared_ptr<const Table> Build(const std::vector<RouteSpec>& specs, const Table* previous);

  const Route* Lookup(uint32_t dst) const;
  // Longest-prefix match of a 16-byte IPv6 destination (network order).
  const Route* Lookup6(const uint8_t* dst) const;
  // Indices into routes() of the peer at `ip` (host order), or nullptr for a stranger.
  const std::vector<uint32_t>* RoutesOf(uint32_t ip) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  // LPM: one hash map per distinct prefix length, longest first.
  std::vector<std::pair<uint8_t, std::unordered_map<uint32_t, uint32_t>>> byPrefix_;
  struct Key6Hash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& k) const { return std::hash<uint64_t>()(k.first * 0x9e3779b97f4a7c15ull ^ k.second); }
  };
  std::vector<std::pair<uint8_t, std::unordered_map<std::pair<uint64_t, uint64_t>, uint32_t, Key6Hash>>> byPrefix6_;
  std::unordered_map<uint32_t, std::vector<uint32_t>> byPeer_;
};

}  // namespace weft
