// What the N-API binding files share: argument parsing into the forwarder's
// plain types, and the stats object (forwarder.stats() and the test binding).
#pragma once
#include "common.h"
#include "forwarder.h"
#include "table.h"

#include <vector>

namespace weft {

// A dotted IPv4 string -> host order; throws a TypeError naming `what`.
uint32_t ParseIp(Napi::Env env, const Napi::Value& v, const char* what);
int IntField(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi);
bool BoolField(const Napi::Object& o, const char* key, bool def);
// [{ subnet: "10.244.3.0", prefixLen: 24 }, ...]; `what` names the list in errors.
std::vector<Prefix4> ParsePrefixes(Napi::Env env, const Napi::Value& v, const char* what);
// [{ subnet: "10.244.3.0", prefixLen: 24, peerIp: "192.0.2.13", port: 8285 }, ...]
std::vector<RouteSpec> ParseRoutes(Napi::Env env, const Napi::Value& v);

// { txPackets, ..., drops: {...}, peers: { "ip:port": {...} }, errno: {...}, offload: {...} }
Napi::Object StatsObject(Napi::Env env, Forwarder& f);

}  // namespace weft
