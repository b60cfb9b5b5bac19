#include "table.h"

#include <algorithm>
#include <arpa/inet.h>

namespace weft {

std::shared_ptr<const Table> Table::Build(const std::vector<RouteSpec>& specs, const Table* previous) {
  std::unordered_map<std::string, std::shared_ptr<PeerCounters>> keep;
  if (previous) for (const Route& r : previous->routes_) keep.emplace(r.peerKey, r.counters);
  auto t = std::make_shared<Table>();
  for (const RouteSpec& s : specs) {
    Route r;
    r.prefix = s.prefix;
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
    auto pl = std::find_if(t->byPrefix_.begin(), t->byPrefix_.end(), [&](auto& e) { return e.first == s.prefix.len; });
    if (pl == t->byPrefix_.end()) {
      t->byPrefix_.emplace_back(s.prefix.len, std::unordered_map<uint32_t, uint32_t>{});
      pl = t->byPrefix_.end() - 1;
    }
    pl->second[s.prefix.net] = idx;
    t->byPeer_[s.peerIp].push_back(idx);
    t->routes_.push_back(std::move(r));
  }
  std::sort(t->byPrefix_.begin(), t->byPrefix_.end(), [](auto& x, auto& y) { return x.first > y.first; });
  return t;
}

const Route* Table::Lookup(uint32_t dst) const {
  for (const auto& [len, m] : byPrefix_) {
    auto it = m.find(dst & Prefix4::Mask(len));
    if (it != m.end()) return &routes_[it->second];
  }
  return nullptr;
}

const std::vector<uint32_t>* Table::RoutesOf(uint32_t ip) const {
  auto it = byPeer_.find(ip);
  return it == byPeer_.end() ? nullptr : &it->second;
}

}  // namespace weft
