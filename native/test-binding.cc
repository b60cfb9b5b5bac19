// The test-only surface of the addon; nothing in the agent calls it.
//   exports.offload  the offload packet surgery (offload.h)
//   exports.ipv4     the forwarder's IPv4 rules (ipv4.h), for the vectors that
//                    packet.ts must pass too
//   exports.loops    the real forwarding loops run on a script (scripted-syscalls.h)
#include "binding.h"
#include "ipv4.h"
#include "ipv6.h"
#include "offload.h"
#include "scripted-syscalls.h"
#include "udp-batch.h"

#include <algorithm>
#include <arpa/inet.h>
#include <string>
#include <vector>

namespace weft {

namespace {

using offload::Status;

[[noreturn]] void ThrowStatus(Napi::Env env, const std::string& what, Status s) {
  Napi::Error e = Napi::Error::New(env, what + ": " + offload::StatusName(s));
  e.Set("code", Napi::String::New(env, offload::StatusName(s)));
  throw e;
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  }
  return info[i].As<Napi::Buffer<uint8_t>>();
}

Napi::Buffer<uint8_t> HdrBuffer(Napi::Env env, const offload::VirtioNetHdr& h) {
  auto b = Napi::Buffer<uint8_t>::New(env, offload::kVirtioNetHdrLen);
  offload::WriteVirtioNetHdr(h, b.Data());
  return b;
}

// segment(pkt, vnetHdr) -> Buffer[]
Napi::Value Segment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto pkt = ArgBuffer(info, 0, "pkt");
  auto hb = ArgBuffer(info, 1, "vnetHdr");
  offload::VirtioNetHdr h;
  if (!offload::ParseVirtioNetHdr(hb.Data(), hb.Length(), &h)) ThrowStatus(env, "segment: virtio_net_hdr", Status::kTruncated);
  std::vector<std::vector<uint8_t>> segs;
  Status s = offload::Segment(pkt.Data(), pkt.Length(), h, &segs);
  if (s != Status::kOk) ThrowStatus(env, "segment", s);
  Napi::Array out = Napi::Array::New(env, segs.size());
  for (size_t i = 0; i < segs.size(); i++) {
    out.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, segs[i].data(), segs[i].size()));
  }
  return out;
}

// coalesce(pkts) -> { hdr, pkt }[]
Napi::Value Coalesce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "pkts must be an array of Buffers");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::vector<uint8_t>> in;
  in.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, "pkts[" + std::to_string(i) + "] must be a Buffer");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    in.emplace_back(b.Data(), b.Data() + b.Length());
  }
  std::vector<offload::OutPacket> res = offload::Coalesce(in);
  Napi::Array out = Napi::Array::New(env, res.size());
  for (size_t i = 0; i < res.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("hdr", HdrBuffer(env, res[i].hdr));
    o.Set("pkt", Napi::Buffer<uint8_t>::Copy(env, res[i].bytes.data(), res[i].bytes.size()));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// checksum(buf) -> the 16-bit Internet checksum to store (~folded sum)
Napi::Value ChecksumOf(const Napi::CallbackInfo& info) {
  auto b = ArgBuffer(info, 0, "buf");
  return Napi::Number::New(info.Env(), weft::Checksum(b.Data(), b.Length()));
}

// ---- ipv4 ----

std::vector<uint8_t> Bytes(const Napi::Value& v, const char* name) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
}

Napi::Value CopyOut(Napi::Env env, const std::vector<uint8_t>& v) { return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size()); }

Napi::Value DropName(Napi::Env env, int drop) { return drop < 0 ? env.Null() : Napi::String::New(env, kDropNames[drop]); }

// The sender of a scripted datagram or checked packet, 16 bytes: an IPv6 address as it
// is, an IPv4 one v4-mapped (udp-batch.h AddrKey).
void SenderKey(Napi::Env env, const Napi::Value& v, const char* what, uint8_t out[16]) {
  if (v.IsString() && v.As<Napi::String>().Utf8Value().find(':') != std::string::npos) ParseIp6(env, v, what, out);
  else V4Mapped(ParseIp(env, v, what), out);
}

// checkDatagram(pkt, fromIp (IPv4 or IPv6), routes, ownSubnets) -> drop reason, or null to deliver
Napi::Value CheckDatagramOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> p = Bytes(info[0], "pkt");
  uint8_t from[16];
  SenderKey(env, info[1], "fromIp", from);
  auto t = BuildTable(env, ParseRoutes(env, info[2]), nullptr, true);
  std::vector<Prefix6> own6;
  std::vector<Prefix4> own = ParsePrefixes(env, info[3], "ownSubnets", &own6);
  PeerCounters* pc = nullptr;
  return DropName(env, CheckDatagram(*t, own, own6, from, p.data(), p.size(), &pc));
}

// routeFromTun(pkt, routes) -> { drop, peer, icmp, pkt }: the verdict and the packet after it
Napi::Value RouteFromTunOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> p = Bytes(info[0], "pkt");
  auto t = BuildTable(env, ParseRoutes(env, info[1]), nullptr, true);
  TunVerdict v = RouteFromTun(*t, p.data(), p.size());
  Napi::Object o = Napi::Object::New(env);
  o.Set("drop", DropName(env, v.drop));
  o.Set("peer", v.route ? Napi::Value(Napi::String::New(env, v.route->peerKey)) : env.Null());
  o.Set("icmp", v.icmp);
  o.Set("pkt", CopyOut(env, p));
  return o;
}

// buildTunError(drop, pkt, ownIp, ownIp6?) -> Buffer (empty: no error for that drop, or
// an IPv6 packet without ownIp6); drop: 'no_route' or 'ttl'; pkt: a well-formed IPv4
// packet, or an IPv6 packet of at least 40 bytes
Napi::Value BuildTunErrorOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string drop = info[0].As<Napi::String>().Utf8Value();
  int d = static_cast<int>(std::find(kDropNames, kDropNames + kDropCount, drop) - kDropNames);
  if (d != kNoRoute && d != kTtl) throw Napi::RangeError::New(env, "drop must be no_route or ttl");
  std::vector<uint8_t> p = Bytes(info[1], "pkt");
  bool v6 = !p.empty() && (p[0] >> 4) == 6;
  if (v6 ? p.size() < 40 : p.size() < 20 || (p[0] & 0x0fu) * 4u > p.size()) throw Napi::RangeError::New(env, "pkt must hold a whole IP header");
  uint8_t own6[16];
  bool has6 = info.Length() > 3 && info[3].IsString();
  if (has6) ParseIp6(env, info[3], "ownIp6", own6);
  std::vector<uint8_t> out(kMaxIcmpError);
  out.resize(BuildTunError(d, p.data(), p.size(), ParseIp(env, info[2], "ownIp"), has6 ? own6 : nullptr, out.data()));
  return CopyOut(env, out);
}

Napi::Value Icmp6AllowedOf(const Napi::CallbackInfo& info) {
  std::vector<uint8_t> p = Bytes(info[0], "pkt");
  if (p.size() < 40) throw Napi::RangeError::New(info.Env(), "pkt must hold an IPv6 header");
  return Napi::Boolean::New(info.Env(), Icmp6Allowed(p.data(), p.size()));
}

Napi::Value IcmpAllowedOf(const Napi::CallbackInfo& info) {
  std::vector<uint8_t> p = Bytes(info[0], "pkt");
  if (p.size() < 20) throw Napi::RangeError::New(info.Env(), "pkt must hold an IPv4 header");
  return Napi::Boolean::New(info.Env(), IcmpAllowed(p.data(), p.size()));
}

Napi::Value DecrementTtlOf(const Napi::CallbackInfo& info) {
  std::vector<uint8_t> p = Bytes(info[0], "pkt");
  if (p.size() < 20) throw Napi::RangeError::New(info.Env(), "pkt must hold an IPv4 header");
  DecrementTtl(p.data());
  return CopyOut(info.Env(), p);
}

// ---- loops ----

int OptInt(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi, int def) {
  return o.Has(key) && !o.Get(key).IsUndefined() ? IntField(env, o, key, lo, hi) : def;
}

std::vector<ScriptedDatagram> ParseBatch(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, "each recvBatches entry must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<ScriptedDatagram> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object d = a.Get(i).As<Napi::Object>();
    ScriptedDatagram s;
    Napi::Value from = d.Get("from");
    s.v6 = from.IsString() && from.As<Napi::String>().Utf8Value().find(':') != std::string::npos;
    if (s.v6) ParseIp6(env, from, "from", s.from6);
    else s.from = ParseIp(env, from, "from");
    s.port = static_cast<uint16_t>(OptInt(env, d, "port", 1, 65535, 8285));
    s.data = Bytes(d.Get("data"), "data");
    s.gro = OptInt(env, d, "gro", 0, 65535, 0);
    s.truncated = BoolField(d, "truncated", false);
    out.push_back(std::move(s));
  }
  return out;
}

// run({ vnetHdr?, udpGso?, udpGro?, tunUso?, ownIp, ownSubnets, routes, tunReads?: Buffer[],
//       recvBatches?: {from (IPv4 or IPv6), port?, data, gro?, truncated?}[][], nsPerRead?, gsoSendErrno?, v6Socket?,
//       mergedWriteErrno?, tunWriteErrno? }) -> { tunWrites: {data, iovcnt}[], sent: {to, segSize, data}[], stats }
// Runs the TUN -> UDP loop over tunReads, then the UDP -> TUN loop over recvBatches.
Napi::Value RunLoops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "loops.run expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  ScriptedSyscalls sys;
  ForwarderConfig c;
  c.tunFds = {ScriptedSyscalls::kTunFd};
  c.udpFds = {ScriptedSyscalls::kUdpFd};
  c.eventFd = ScriptedSyscalls::kEventFd;
  c.vnetHdr = BoolField(o, "vnetHdr", false);
  c.udpGso = c.vnetHdr && BoolField(o, "udpGso", true);
  c.udpGro = c.vnetHdr && BoolField(o, "udpGro", true);
  c.tunUso = c.vnetHdr && BoolField(o, "tunUso", false);
  c.ownIp = ParseIp(env, o.Get("ownIp"), "ownIp");
  c.ownSubnets = ParsePrefixes(env, o.Get("ownSubnets"), "ownSubnets", &c.ownSubnets6);
  if (o.Has("ownIp6") && !o.Get("ownIp6").IsUndefined()) {
    ParseIp6(env, o.Get("ownIp6"), "ownIp6", c.ownIp6);
    c.hasOwnIp6 = true;
  }
  sys.vnetHdr = c.vnetHdr;
  sys.nsPerRead = static_cast<uint64_t>(OptInt(env, o, "nsPerRead", 0, 1 << 30, 0));
  sys.gsoSendErrno = OptInt(env, o, "gsoSendErrno", 0, 4095, 0);
  sys.mergedWriteErrno = OptInt(env, o, "mergedWriteErrno", 0, 4095, 0);
  sys.tunWriteErrno = OptInt(env, o, "tunWriteErrno", 0, 4095, 0);
  if (o.Get("tunReads").IsArray()) {
    Napi::Array a = o.Get("tunReads").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) sys.tunReads.push_back(Bytes(a.Get(i), "tunReads[i]"));
  }
  if (o.Get("recvBatches").IsArray()) {
    Napi::Array a = o.Get("recvBatches").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) sys.recvBatches.push_back(ParseBatch(env, a.Get(i)));
  }
  Forwarder f(c, sys);
  f.SetTable(BuildTable(env, ParseRoutes(env, o.Get("routes")), nullptr, BoolField(o, "v6Socket", false)));
  f.RunTunToUdp();
  f.RunUdpToTun();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array writes = Napi::Array::New(env, sys.tunWrites.size());
  for (size_t i = 0; i < sys.tunWrites.size(); i++) {
    Napi::Object w = Napi::Object::New(env);
    w.Set("data", CopyOut(env, sys.tunWrites[i].data));
    w.Set("iovcnt", sys.tunWrites[i].iovcnt);
    writes.Set(static_cast<uint32_t>(i), w);
  }
  Napi::Array sent = Napi::Array::New(env, sys.sent.size());
  for (size_t i = 0; i < sys.sent.size(); i++) {
    Napi::Object s = Napi::Object::New(env);
    s.Set("to", FormatSockAddr(sys.sent[i].to));
    s.Set("segSize", sys.sent[i].segSize);
    s.Set("data", CopyOut(env, sys.sent[i].data));
    sent.Set(static_cast<uint32_t>(i), s);
  }
  out.Set("tunWrites", writes);
  out.Set("sent", sent);
  out.Set("stats", StatsObject(env, f));
  return out;
}

}  // namespace

void InitTesting(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("segment", Napi::Function::New(env, Segment));
  o.Set("coalesce", Napi::Function::New(env, Coalesce));
  o.Set("checksum", Napi::Function::New(env, ChecksumOf));
  exports.Set("offload", o);
  Napi::Object v4 = Napi::Object::New(env);
  v4.Set("checkDatagram", Napi::Function::New(env, CheckDatagramOf));
  v4.Set("routeFromTun", Napi::Function::New(env, RouteFromTunOf));
  v4.Set("buildTunError", Napi::Function::New(env, BuildTunErrorOf));
  v4.Set("icmpAllowed", Napi::Function::New(env, IcmpAllowedOf));
  v4.Set("decrementTtl", Napi::Function::New(env, DecrementTtlOf));
  v4.Set("icmp6Allowed", Napi::Function::New(env, Icmp6AllowedOf));
  exports.Set("ipv4", v4);
  Napi::Object l = Napi::Object::New(env);
  l.Set("run", Napi::Function::New(env, RunLoops));
  exports.Set("loops", l);
}

}  // namespace weft
