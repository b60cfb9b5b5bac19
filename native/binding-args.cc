#include "binding.h"

#include <arpa/inet.h>
#include <string>

namespace weft {

uint32_t ParseIp(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string(what) + " must be a dotted IPv4 string");
  std::string s = v.As<Napi::String>().Utf8Value();
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) throw Napi::TypeError::New(env, std::string(what) + " '" + s + "' is not an IPv4 address");
  return ntohl(a.s_addr);
}

void ParseIp6(Napi::Env env, const Napi::Value& v, const char* what, uint8_t out[16]) {
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string(what) + " must be an IPv6 address string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (inet_pton(AF_INET6, s.c_str(), out) != 1) throw Napi::TypeError::New(env, std::string(what) + " '" + s + "' is not an IPv6 address");
}

int IntField(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(key) + " must be a number");
  int n = v.As<Napi::Number>().Int32Value();
  if (n < lo || n > hi) throw Napi::RangeError::New(env, std::string(key) + " must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + std::to_string(n));
  return n;
}

bool BoolField(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

namespace {

bool IsV6(const Napi::Object& o) {
  Napi::Value v = o.Get("subnet");
  return v.IsString() && v.As<Napi::String>().Utf8Value().find(':') != std::string::npos;
}

Prefix4 ParsePrefix(Napi::Env env, const Napi::Object& o, const std::string& what) {
  Prefix4 p;
  p.len = static_cast<uint8_t>(IntField(env, o, "prefixLen", 0, 32));
  p.net = ParseIp(env, o.Get("subnet"), "subnet");
  if ((p.net & Prefix4::Mask(p.len)) != p.net) throw Napi::RangeError::New(env, what + " has host bits set");
  return p;
}

Prefix6 ParsePrefix6(Napi::Env env, const Napi::Object& o, const std::string& what) {
  Prefix6 p;
  p.len = static_cast<uint8_t>(IntField(env, o, "prefixLen", 0, 128));
  ParseIp6(env, o.Get("subnet"), "subnet", p.net);
  uint64_t h, l, h2, l2;
  Prefix6::Key(p.net, p.len, &h, &l);
  Prefix6::Key(p.net, 128, &h2, &l2);
  if (h != h2 || l != l2) throw Napi::RangeError::New(env, what + " has host bits set");
  return p;
}

Napi::Array ArrayArg(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an array");
  return v.As<Napi::Array>();
}

Napi::Object Element(Napi::Env env, const Napi::Array& a, uint32_t i, const std::string& what) {
  Napi::Value v = a.Get(i);
  if (!v.IsObject()) throw Napi::TypeError::New(env, what + " is not an object");
  return v.As<Napi::Object>();
}

}  // namespace

std::vector<Prefix4> ParsePrefixes(Napi::Env env, const Napi::Value& v, const char* what, std::vector<Prefix6>* v6) {
  Napi::Array a = ArrayArg(env, v, what);
  std::vector<Prefix4> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    std::string name = std::string(what) + "[" + std::to_string(i) + "]";
    Napi::Object o = Element(env, a, i, name);
    if (v6 && IsV6(o)) v6->push_back(ParsePrefix6(env, o, name));
    else out.push_back(ParsePrefix(env, o, name));
  }
  return out;
}

std::vector<RouteSpec> ParseRoutes(Napi::Env env, const Napi::Value& v) {
  Napi::Array a = ArrayArg(env, v, "routes");
  std::vector<RouteSpec> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    std::string name = "route " + std::to_string(i);
    Napi::Object o = Element(env, a, i, name);
    RouteSpec r;
    if (IsV6(o)) {
      r.v6 = true;
      r.prefix6 = ParsePrefix6(env, o, name);
    } else {
      r.prefix = ParsePrefix(env, o, name);
    }
    r.peerIp = ParseIp(env, o.Get("peerIp"), "peerIp");
    if (o.Has("peerIp6") && !o.Get("peerIp6").IsUndefined()) {
      ParseIp6(env, o.Get("peerIp6"), "peerIp6", r.peerIp6);
      r.hasPeerIp6 = true;
    }
    r.over6 = BoolField(o, "over6", false);
    if (r.over6 && !r.hasPeerIp6) throw Napi::TypeError::New(env, name + " goes over IPv6 (over6) but has no peerIp6");
    r.port = static_cast<uint16_t>(IntField(env, o, "port", 1, 65535));
    out.push_back(r);
  }
  return out;
}

std::shared_ptr<const Table> BuildTable(Napi::Env env, const std::vector<RouteSpec>& specs, const Table* previous, bool v6Socket) {
  if (!v6Socket) {
    for (size_t i = 0; i < specs.size(); i++) {
      if (specs[i].over6) throw Napi::TypeError::New(env, "route " + std::to_string(i) + " goes over IPv6 (over6), but the forwarder's socket is IPv4 (bindIp)");
    }
  }
  return Table::Build(specs, previous, v6Socket);
}

std::string FormatSockAddr(const SockAddr& a) {
  char ip[INET6_ADDRSTRLEN];
  if (a.sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &a.v6.sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a.v6.sin6_port));
  }
  inet_ntop(AF_INET, &a.v4.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a.v4.sin_port));
}

}  // namespace weft
