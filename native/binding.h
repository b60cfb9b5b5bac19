// What the N-API binding files share: argument parsing into the forwarder's
// plain types, and the stats object (forwarder.stats() and the test binding).
#pragma once
#include "common.h"
#include "forwarder.h"
#include "table.h"

#include <memory>
#include <string>
#include <vector>

namespace weft {

// A dotted IPv4 string -> host order; throws a TypeError naming `what`.
uint32_t ParseIp(Napi::Env env, const Napi::Value& v, const char* what);
// An IPv6 address string -> 16 bytes, network order; throws a TypeError naming `what`.
void ParseIp6(Napi::Env env, const Napi::Value& v, const char* what, uint8_t out[16]);
int IntField(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi);
bool BoolField(const Napi::Object& o, const char* key, bool def);
// [{ subnet: "10.244.3.0", prefixLen: 24 }, ...]; `what` names the list in errors. With v6,
// IPv6 entries ({ subnet: "fd00:0:0:1::", prefixLen: 64 }) go there; without, they are errors.
std::vector<Prefix4> ParsePrefixes(Napi::Env env, const Napi::Value& v, const char* what, std::vector<Prefix6>* v6 = nullptr);
// [{ subnet: "10.244.3.0", prefixLen: 24, peerIp: "192.0.2.13", port: 8285 }, ...]; an IPv6
// subnet ("fd00:0:0:3::", prefixLen up to 128) makes an IPv6 route to the same IPv4 peer.
// peerIp6 (optional): the peer's IPv6 underlay address (a datagram from it is the peer's too);
// over6: true sends to [peerIp6]:port instead of peerIp:port (an IPv6 underlay).
std::vector<RouteSpec> ParseRoutes(Napi::Env env, const Napi::Value& v);
// Table::Build, with a TypeError for a route over IPv6 when the socket is IPv4.
std::shared_ptr<const Table> BuildTable(Napi::Env env, const std::vector<RouteSpec>& specs, const Table* previous, bool v6Socket);
// "192.0.2.13:8285" or "[2001:db8::13]:8285".
std::string FormatSockAddr(const SockAddr& a);

// { txPackets, ..., drops: {...}, peers: { "ip:port": {...} }, errno: {...}, offload: {...} }
Napi::Object StatsObject(Napi::Env env, Forwarder& f);

}  // namespace weft
