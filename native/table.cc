#include "table.h"

#include <algorithm>
#include <arpa/inet.h>

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

std::shared_ptr<const Table> Table::Build(const std::vector<RouteSpec>& specs, const Table* previous) {
  std::unordered_map<std::string, std::shared_ptr<PeerCounters>> keep;
  if (previous) for (const Route& r : previous->routes_) keep.emplace(r.peerKey, r.counters);
  auto t = std::make_shared<Table>();
  for (const RouteSpec& s : specs) {
    Route r;
    r.prefix = s.prefix;
    r.v6 = s.v6;
    r.prefix6 = s.prefix6;
    r.dst.sin_family = AF_INET;
    r.dst.sin_port = htons(s.port);
    r.dst.sin_addr.s_addr = htonl(s.peerIp);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &r.dst.sin_addr, ip, sizeof ip);
    r.peerKey = std::string(ip) + ":" + std::to_string(s.port);
    auto it = keep.find(r.peerKey);
    r.counters = it != keep.end() ? it->second : std::make_shared<PeerCounters>();
    keep.emplace(r.peerKey, r.counters);
    uint32_t idx = static_cast<uint32_t>(t->routes_.size());
    t->byPeer_[s.peerIp].push_back(idx);
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
  auto it = byPeer_.find(ip);
  return it == byPeer_.end() ? nullptr : &it->second;
}

}  // namespace weft
