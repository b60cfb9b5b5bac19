#include "table.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <stdexcept>

namespace weft {

void Prefix6::Key(const uint8_t* addr, int len, uint64_t* hi, uint64_t* lo) {
  uint64_t h = 0, l = 0;
  for (int i = 0; i < 8; i++) h = h << 8 | addr[i];
  for (int i = 8; i < 16; i++) l = l << 8 | addr[i];
  *hi = len <= 0 ? 0 : len >= 64 ? h : h & (~uint64_t{0} << (64 - len));
  *lo = len <= 64 ? 0 : len >= 128 ? l : l & (~uint64_t{0} << (128 - len));
}

bool Prefix6::Contains(const uint8_t* addr) const {
  uint64_t ah, al, nh, nl;
  Key(addr, len, &ah, &al);
  Key(net, 128, &nh, &nl);
  return ah == nh && al == nl;
}

namespace {
std::pair<uint64_t, uint64_t> AddrKey128(const uint8_t* a) {
  uint64_t hi, lo;
  Prefix6::Key(a, 128, &hi, &lo);
  return {hi, lo};
}
}  // namespace

std::shared_ptr<const Table> Table::Build(const std::vector<RouteSpec>& specs, const Table* previous, bool v6Socket) {
  std::unordered_map<std::string, std::shared_ptr<PeerCounters>> keep;
  if (previous) for (const Route& r : previous->routes_) keep.emplace(r.peerKey, r.counters);
  auto t = std::make_shared<Table>();
  for (const RouteSpec& s : specs) {
    Route r;
    r.prefix = s.prefix;
    r.v6 = s.v6;
    r.prefix6 = s.prefix6;
    if (s.over6 && !(v6Socket && s.hasPeerIp6)) throw std::invalid_argument("a route over IPv6 needs the peer's IPv6 address and an IPv6 socket");
    uint8_t mapped[16];
    V4Mapped(s.peerIp, mapped);
    if (v6Socket) {
      r.dst.v6.sin6_family = AF_INET6;
      r.dst.v6.sin6_port = htons(s.port);
      std::memcpy(&r.dst.v6.sin6_addr, s.over6 ? s.peerIp6 : mapped, 16);
    } else {
      r.dst.v4.sin_family = AF_INET;
      r.dst.v4.sin_port = htons(s.port);
      r.dst.v4.sin_addr.s_addr = htonl(s.peerIp);
    }
    in_addr a4{htonl(s.peerIp)};
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a4, ip, sizeof ip);
    r.peerKey = std::string(ip) + ":" + std::to_string(s.port);
    auto it = keep.find(r.peerKey);
    r.counters = it != keep.end() ? it->second : std::make_shared<PeerCounters>();
    keep.emplace(r.peerKey, r.counters);
    uint32_t idx = static_cast<uint32_t>(t->routes_.size());
    t->byPeer_[AddrKey128(mapped)].push_back(idx);
    if (s.hasPeerIp6) t->byPeer_[AddrKey128(s.peerIp6)].push_back(idx);
    if (s.v6) {
      auto pl6 = std::find_if(t->byPrefix6_.begin(), t->byPrefix6_.end(), [&](auto& e) { return e.first == s.prefix6.len; });
      if (pl6 == t->byPrefix6_.end()) {
        t->byPrefix6_.emplace_back(s.prefix6.len, decltype(pl6->second){});
        pl6 = t->byPrefix6_.end() - 1;
      }
      uint64_t hi, lo;
      Prefix6::Key(s.prefix6.net, s.prefix6.len, &hi, &lo);
      pl6->second[{hi, lo}] = idx;
      t->routes_.push_back(std::move(r));
      continue;
    }
    auto pl = std::find_if(t->byPrefix_.begin(), t->byPrefix_.end(), [&](auto& e) { return e.first == s.prefix.len; });
    if (pl == t->byPrefix_.end()) {
      t->byPrefix_.emplace_back(s.prefix.len, std::unordered_map<uint32_t, uint32_t>{});
      pl = t->byPrefix_.end() - 1;
    }
    pl->second[s.prefix.net] = idx;
    t->routes_.push_back(std::move(r));
  }
  std::sort(t->byPrefix_.begin(), t->byPrefix_.end(), [](auto& x, auto& y) { return x.first > y.first; });
  std::sort(t->byPrefix6_.begin(), t->byPrefix6_.end(), [](auto& x, auto& y) { return x.first > y.first; });
  return t;
}

const Route* Table::Lookup(uint32_t dst) const {
  for (const auto& [len, m] : byPrefix_) {
    auto it = m.find(dst & Prefix4::Mask(len));
    if (it != m.end()) return &routes_[it->second];
  }
  return nullptr;
}

const Route* Table::Lookup6(const uint8_t* dst) const {
  for (const auto& [len, m] : byPrefix6_) {
    uint64_t hi, lo;
    Prefix6::Key(dst, len, &hi, &lo);
    auto it = m.find({hi, lo});
    if (it != m.end()) return &routes_[it->second];
  }
  return nullptr;
}

const std::vector<uint32_t>* Table::RoutesOf(uint32_t ip) const {
  uint8_t mapped[16];
  V4Mapped(ip, mapped);
  return RoutesOf6(mapped);
}

const std::vector<uint32_t>* Table::RoutesOf6(const uint8_t* addr) const {
  auto it = byPeer_.find(AddrKey128(addr));
  return it == byPeer_.end() ? nullptr : &it->second;
}

}  // namespace weft
