// libFuzzer driver for the real forwarding loops (tun-to-udp.cc, udp-to-tun.cc),
// plain and with the virtio header, on scripted system calls. The input chooses
// the TUN kind and injected errors, then TUN reads (raw bytes, or TCP/UDP
// super-packets with fuzzed virtio headers) and recvmmsg batches (GRO runs of TCP
// flows that continue across messages, UDP, raw bytes; from peers or strangers),
// each optionally corrupted. Every output is checked against an oracle written
// apart from the code under test:
//   - every datagram sent goes to the peer that owns its inner destination (LPM
//     by linear scan), at the address of the underlay family the run chose (an
//     IPv4 socket; an IPv6 one sending to the v4-mapped PublicIP, or over6 to the
//     peer's IPv6 address); every UDP_SEGMENT message splits into valid segments;
//   - with an IPv6 socket, a peer's datagrams count as its own whether they come
//     from its IPv4 (v4-mapped) or its IPv6 underlay address;
//   - everything written to the TUN (re-split with offload::Segment when it is a
//     TCP or, with USO, UDP super-packet: it must split, into segments with valid
//     checksums) is an
//     input datagram from a sender owning its inner source, to a destination of
//     this host, each at most once; none is lost when the TUN writes succeed;
//   - ICMP errors written to the TUN are well formed, from the TUN's address;
//   - and AddressSanitizer / UBSan see nothing (built with both).
// Build and run: scripts/fuzz.sh (npm run fuzz -- --seconds N).
#include <fuzzer/FuzzedDataProvider.h>

#include "../bytes.h"
#include "../forwarder.h"
#include "../ipv4.h"
#include "../offload.h"
#include "../scripted-syscalls.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

using namespace weft;
using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint32_t Ip(int a, int b, int c, int d) { return uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | uint32_t(d); }

struct Peer {
  uint32_t ip;
  uint16_t port;
  std::vector<Prefix4> nets;
};
const std::vector<Peer> kPeers = {
    {Ip(192, 0, 2, 12), 8285, {{Ip(10, 244, 2, 0), 24}, {Ip(10, 244, 9, 9), 32}}},
    {Ip(192, 0, 2, 13), 8285, {{Ip(10, 244, 3, 0), 24}}},
    {Ip(192, 0, 2, 14), 8285, {{Ip(10, 244, 3, 128), 25}}},
    {Ip(192, 0, 2, 99), 9999, {{Ip(10, 0, 0, 0), 8}}},
};
const std::vector<Prefix4> kOwn = {{Ip(10, 244, 1, 0), 24}};
const uint32_t kOwnIp = Ip(10, 244, 1, 0);
const uint32_t kAddrs[] = {Ip(10, 244, 1, 5), Ip(10, 244, 1, 0), Ip(10, 244, 2, 7), Ip(10, 244, 3, 9), Ip(10, 244, 3, 200),
                           Ip(10, 244, 9, 9), Ip(10, 9, 9, 9), Ip(8, 8, 8, 8), Ip(255, 255, 255, 255), Ip(239, 1, 1, 1),
                           Ip(0, 0, 0, 0), Ip(172, 16, 0, 1), Ip(10, 244, 1, 255)};
const uint32_t kSenders[] = {Ip(192, 0, 2, 12), Ip(192, 0, 2, 13), Ip(192, 0, 2, 14), Ip(192, 0, 2, 99), Ip(192, 0, 2, 250)};

// A host's IPv6 underlay address: 2001:db8::<its IPv4 address> (a stranger's is a stranger's too).
void Ip6Of(uint32_t ip, uint8_t out[16]) {
  const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, uint8_t(ip >> 24), uint8_t(ip >> 16), uint8_t(ip >> 8), uint8_t(ip)};
  std::memcpy(out, a, 16);
}

// The underlay this run forwards over: an IPv6 socket (peers known by both addresses), over6.
struct Underlay {
  bool v6Socket = false, over6 = false;
};

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "forwarder-fuzz: oracle violated: %s\n", what);
  std::abort();
}
#define CHECK(c) \
  do { if (!(c)) Fail(#c); } while (0)

bool Owns(const Peer& p, uint32_t a) {
  return std::any_of(p.nets.begin(), p.nets.end(), [&](const Prefix4& n) { return n.Contains(a); });
}
const Peer* PeerAt(uint32_t ip) {
  for (const Peer& p : kPeers) if (p.ip == ip) return &p;
  return nullptr;
}
// Longest-prefix match by linear scan: the oracle's own, not Table's hash maps.
const Peer* Route(uint32_t dst) {
  const Peer* best = nullptr;
  int len = -1;
  for (const Peer& p : kPeers)
    for (const Prefix4& n : p.nets)
      if (n.Contains(dst) && n.len > len) best = &p, len = n.len;
  return best;
}
bool Ours(uint32_t a) { return std::any_of(kOwn.begin(), kOwn.end(), [&](const Prefix4& n) { return n.Contains(a); }); }

// Plain RFC 1071 over 16-bit words, apart from bytes.h's SIMD sum.
uint32_t Sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  return s;
}
uint16_t Fold16(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(s);
}
bool IpHdrOk(const Bytes& p) { return p.size() >= 20 && Fold16(Sum16(p.data(), (p[0] & 0xfu) * 4)) == 0xffff; }
bool L4Ok(const Bytes& p) {
  size_t l4 = (p[0] & 0xfu) * 4;
  uint32_t ps = Sum16(p.data() + 12, 8) + p[9] + uint32_t(p.size() - l4);
  return Fold16(Sum16(p.data() + l4, p.size() - l4, ps)) == 0xffff;
}

// ---- packet generation ----

Bytes Ipv4(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& l4, uint16_t id, uint8_t ttl) {
  Bytes p(20);
  p[0] = 0x45;
  Put16(&p[2], uint16_t(20 + l4.size()));
  Put16(&p[4], id);
  Put16(&p[6], 0x4000);
  p[8] = ttl;
  p[9] = proto;
  Put32(&p[12], src);
  Put32(&p[16], dst);
  Put16(&p[10], uint16_t(~Fold16(Sum16(p.data(), 20))));
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}
void FillL4Checksum(Bytes& p, size_t at, bool partial) {
  uint32_t ps = Sum16(p.data() + 12, 8) + p[9] + uint32_t(p.size() - 20);
  Put16(&p[at], 0);
  Put16(&p[at], partial ? Fold16(ps) : uint16_t(~Fold16(Sum16(p.data() + 20, p.size() - 20, ps))));
}
Bytes Payload(size_t n, uint32_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t((i * 7 + seed) * 2654435761u >> 13);
  return b;
}
Bytes Tcp(uint32_t src, uint32_t dst, uint32_t seq, uint8_t flags, size_t payload, uint32_t seed, uint16_t id, bool partial) {
  Bytes t(32);
  Put16(&t[0], 40000);
  Put16(&t[2], 5201);
  Put32(&t[4], seq);
  Put32(&t[8], 0x01020304);
  t[12] = 8 << 4;
  t[13] = flags;
  Put16(&t[14], 502);
  const uint8_t ts[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
  std::copy(ts, ts + 12, t.begin() + 20);
  Bytes pl = Payload(payload, seed);
  t.insert(t.end(), pl.begin(), pl.end());
  Bytes p = Ipv4(src, dst, 6, t, id, 64);
  FillL4Checksum(p, 36, partial);
  return p;
}
Bytes Udp(uint32_t src, uint32_t dst, size_t payload, uint32_t seed, bool partial) {
  Bytes u(8);
  Put16(&u[0], 4444);
  Put16(&u[2], 9999);
  Put16(&u[4], uint16_t(8 + payload));
  Bytes pl = Payload(payload, seed);
  u.insert(u.end(), pl.begin(), pl.end());
  Bytes p = Ipv4(src, dst, 17, u, uint16_t(seed), 64);
  FillL4Checksum(p, 26, partial);
  return p;
}
void Corrupt(FuzzedDataProvider& in, Bytes& p) {
  int n = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < n && !p.empty(); i++) p[in.ConsumeIntegralInRange<size_t>(0, std::min<size_t>(p.size() - 1, 80))] = in.ConsumeIntegral<uint8_t>();
  if (in.ConsumeIntegralInRange(0, 15) == 0 && !p.empty()) p.resize(in.ConsumeIntegralInRange<size_t>(0, p.size()));
}
uint32_t Addr(FuzzedDataProvider& in) { return in.PickValueInArray(kAddrs); }

Bytes TunPacket(FuzzedDataProvider& in, bool vnet) {
  int kind = in.ConsumeIntegralInRange(0, 4);
  if (kind == 0) return in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 200));
  if (kind == 1) return {};
  bool tcp = kind != 4;
  size_t payload = in.ConsumeIntegralInRange<size_t>(0, in.ConsumeBool() ? 65535 - 52 : 3000);
  bool partial = in.ConsumeBool();
  Bytes p = tcp ? Tcp(kAddrs[0], Addr(in), in.ConsumeIntegral<uint32_t>(), in.ConsumeIntegral<uint8_t>() | 0x10, payload, in.ConsumeIntegral<uint8_t>(), 7, partial)
                : Udp(kAddrs[0], Addr(in), std::min<size_t>(payload, 65535 - 28), in.ConsumeIntegral<uint8_t>(), partial);
  if (in.ConsumeIntegralInRange(0, 3) == 0) p[8] = in.ConsumeIntegralInRange<uint8_t>(0, 2);  // TTL
  if (in.ConsumeIntegralInRange(0, 3) == 0) Corrupt(in, p);
  if (!vnet) return p;
  offload::VirtioNetHdr h;
  h.flags = partial ? offload::F_NEEDS_CSUM : 0;
  if (in.ConsumeBool()) h.gso_type = tcp ? offload::GSO_TCPV4 : offload::GSO_UDP_L4;
  h.hdr_len = tcp ? 52 : 28;
  h.gso_size = in.ConsumeBool() ? uint16_t(in.ConsumeIntegralInRange(1, 1448)) : in.ConsumeIntegral<uint16_t>();
  h.csum_start = 20;
  h.csum_offset = tcp ? 16 : 6;
  if (in.ConsumeIntegralInRange(0, 3) == 0) {  // anything at all
    h.flags = in.ConsumeIntegral<uint8_t>();
    h.gso_type = in.ConsumeIntegral<uint8_t>();
    h.hdr_len = in.ConsumeIntegral<uint16_t>();
    h.csum_start = in.ConsumeIntegral<uint16_t>();
    h.csum_offset = in.ConsumeIntegral<uint16_t>();
  }
  Bytes out(offload::kVirtioNetHdrLen);
  offload::WriteVirtioNetHdr(h, out.data());
  out.insert(out.end(), p.begin(), p.end());
  return out;
}

// One received message: a GRO run of equal-sized datagrams (a TCP flow that goes on
// from message to message, or UDP), or raw bytes.
ScriptedDatagram Message(FuzzedDataProvider& in, const Underlay& u, uint32_t& seq, uint32_t& src, uint32_t& dst) {
  ScriptedDatagram d;
  d.from = in.PickValueInArray(kSenders);
  if (u.v6Socket && in.ConsumeBool()) {
    d.v6 = true;
    Ip6Of(d.from, d.from6);
  }
  int kind = in.ConsumeIntegralInRange(0, 5);
  if (kind == 0) {
    d.data = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 300));
    d.gro = in.ConsumeBool() ? in.ConsumeIntegralInRange(0, 64) : 0;
  } else {
    if (kind == 1) src = Addr(in), dst = Addr(in);  // a new flow; otherwise the last one goes on
    size_t size = in.ConsumeIntegralInRange<size_t>(1, 1448);
    size_t count = in.ConsumeIntegralInRange<size_t>(1, 64);
    count = std::min(count, std::max<size_t>(1, 65535 / (size + 52)));
    bool udp = kind == 5;
    for (size_t i = 0; i < count; i++) {
      uint8_t flags = 0x10;
      if (in.ConsumeIntegralInRange(0, 31) == 0) flags |= in.PickValueInArray<uint8_t>({0x01, 0x02, 0x04, 0x08, 0x20, 0x80});
      Bytes p = udp ? Udp(src, dst, size, uint32_t(i), false) : Tcp(src, dst, seq, flags, size, seq, uint16_t(i), false);
      seq += uint32_t(size) + (in.ConsumeIntegralInRange(0, 63) == 0 ? 1 : 0);
      if (in.ConsumeIntegralInRange(0, 15) == 0) Corrupt(in, p);
      d.data.insert(d.data.end(), p.begin(), p.end());
    }
    d.gro = count > 1 || in.ConsumeBool() ? int(size + (udp ? 28 : 52)) : 0;
    if (in.ConsumeIntegralInRange(0, 15) == 0) d.gro = in.ConsumeIntegralInRange(0, 2000);
  }
  d.truncated = in.ConsumeIntegralInRange(0, 31) == 0;
  return d;
}

// ---- the oracle ----

// An IPv4 packet with its IP ID and checksums blanked: what re-splitting may change
// (checksums are checked on their own; a TCP checksum has two encodings of zero, a UDP
// one may be absent).
Bytes Normal(Bytes p) {
  if (p.size() >= 20) p[4] = p[5] = p[10] = p[11] = 0;
  if (p.size() >= 40 && p[0] == 0x45 && p[9] == 6) p[36] = p[37] = 0;
  if (p.size() >= 28 && p[0] == 0x45 && p[9] == 17) p[26] = p[27] = 0;
  return p;
}

// What the TUN -> UDP loop must send for these reads, in order: each read on its own
// through the copying path. (destination, datagram) pairs.
std::vector<std::pair<SockAddr, Bytes>> Expected(const std::deque<Bytes>& reads, const Table& t, bool vnet) {
  std::vector<std::pair<SockAddr, Bytes>> out;
  for (const Bytes& r : reads) {
    size_t skip = vnet ? offload::kVirtioNetHdrLen : 0;
    offload::VirtioNetHdr h;
    if (r.empty() || (vnet && !offload::ParseVirtioNetHdr(r.data(), r.size(), &h))) continue;
    Bytes p(r.begin() + skip, r.end());
    TunVerdict v = RouteFromTun(t, p.data(), p.size());
    if (v.drop >= 0) continue;
    std::vector<Bytes> segs;
    if (!vnet) segs.push_back(p);
    else if (offload::Segment(p.data(), p.size(), h, &segs) != offload::Status::kOk) continue;
    if (segs.empty() || segs[0].size() > 65507) continue;
    for (Bytes& s : segs) out.emplace_back(v.route->dst, std::move(s));
  }
  return out;
}

// What the receive side must deliver: each datagram of each message, by the sender's rights.
std::multiset<Bytes> Deliverable(const std::deque<std::vector<ScriptedDatagram>>& batches, bool gro, size_t* count) {
  std::multiset<Bytes> out;
  for (const auto& b : batches)
    for (const ScriptedDatagram& d : b) {
      const Peer* peer = PeerAt(d.from);
      if (!peer || d.truncated || d.data.size() > 65536) continue;
      size_t len = d.data.size();
      size_t seg = gro && d.gro > 0 ? std::min<size_t>(len, size_t(d.gro)) : len;  // no UDP_GRO: one datagram
      for (size_t off = 0; seg > 0 && off < len; off += seg) {
        Bytes p(d.data.begin() + off, d.data.begin() + std::min(len, off + seg));
        if (p.size() < 20 || (p[0] >> 4) != 4 || (p[0] & 0xf) < 5 || (p[0] & 0xfu) * 4 > p.size() || Be16(&p[2]) != p.size()) continue;
        if (!Owns(*peer, Be32(&p[12])) || !Ours(Be32(&p[16]))) continue;
        out.insert(Normal(p));
        ++*count;
      }
    }
  return out;
}

bool SameAddr(const SockAddr& a, const SockAddr& b) {
  if (a.sa.sa_family != b.sa.sa_family) return false;
  if (a.sa.sa_family == AF_INET6) return a.v6.sin6_port == b.v6.sin6_port && std::memcmp(&a.v6.sin6_addr, &b.v6.sin6_addr, 16) == 0;
  return a.v4.sin_port == b.v4.sin_port && a.v4.sin_addr.s_addr == b.v4.sin_addr.s_addr;
}

// Where the oracle says a datagram to peer p goes on this underlay.
SockAddr AddrOf(const Peer& p, const Underlay& u) {
  SockAddr a{};
  if (!u.v6Socket) {
    a.v4.sin_family = AF_INET;
    a.v4.sin_port = htons(p.port);
    a.v4.sin_addr.s_addr = htonl(p.ip);
    return a;
  }
  a.v6.sin6_family = AF_INET6;
  a.v6.sin6_port = htons(p.port);
  uint8_t* b = reinterpret_cast<uint8_t*>(&a.v6.sin6_addr);
  if (u.over6) {
    Ip6Of(p.ip, b);
  } else {
    const uint8_t m[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(b, m, 12);
    for (int i = 0; i < 4; i++) b[12 + i] = uint8_t(p.ip >> (24 - 8 * i));
  }
  return a;
}

void CheckSent(const ScriptedSyscalls& sys, const Underlay& u, uint64_t txPackets, const std::vector<std::pair<SockAddr, Bytes>>& expected) {
  uint64_t datagrams = 0;
  size_t next = 0;
  for (const RecordedSend& s : sys.sent) {
    size_t seg = s.segSize > 0 ? s.segSize : s.data.size();
    CHECK(seg > 0 && s.data.size() <= 65507);
    if (s.segSize > 0) CHECK(s.data.size() <= 64 * size_t(s.segSize));
    for (size_t off = 0; off < s.data.size(); off += seg) {
      Bytes d(s.data.begin() + off, s.data.begin() + std::min(s.data.size(), off + seg));
      datagrams++;
      CHECK(next < expected.size() && SameAddr(expected[next].first, s.to) && expected[next].second == d);
      next++;
      CHECK(d.size() >= 20 && (d[0] >> 4) == 4);
      const Peer* want = Route(Be32(&d[16]));
      CHECK(want != nullptr);
      CHECK(SameAddr(s.to, AddrOf(*want, u)));
      CHECK(d[8] >= 1);
    }
  }
  CHECK(datagrams == txPackets);
  CHECK(next == expected.size());
}

void CheckIcmp(const Bytes& p) {
  // Net unreachable (no route) or time exceeded (TTL run out), code 0 both.
  CHECK(p.size() >= 36 && p[0] == 0x45 && p[9] == 1 && (p[20] == 3 || p[20] == 11) && p[21] == 0 && Be16(&p[2]) == p.size());
  CHECK(Be32(&p[12]) == kOwnIp && IpHdrOk(p));
  CHECK(Fold16(Sum16(p.data() + 20, p.size() - 20)) == 0xffff);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  ScriptedSyscalls sys;
  ForwarderConfig c;
  c.tunFds = {ScriptedSyscalls::kTunFd};
  c.udpFds = {ScriptedSyscalls::kUdpFd};
  c.eventFd = ScriptedSyscalls::kEventFd;
  c.ownIp = kOwnIp;
  c.ownSubnets = kOwn;
  uint8_t mode = in.ConsumeIntegral<uint8_t>(), mode2 = in.ConsumeIntegral<uint8_t>();
  // Two workers on the same scripted fds; the loops of one of them run.
  c.tunFds.push_back(ScriptedSyscalls::kTunFd);
  c.udpFds.push_back(ScriptedSyscalls::kUdpFd);
  const size_t worker = mode2 & 2 ? 1 : 0;
  Underlay u;
  u.v6Socket = mode2 & 4;
  u.over6 = u.v6Socket && (mode2 & 8);
  c.vnetHdr = mode & 1;
  c.tunUso = c.vnetHdr && (mode2 & 1);
  c.udpGso = c.vnetHdr && (mode & 2);
  c.udpGro = c.vnetHdr && (mode & 4);
  sys.vnetHdr = c.vnetHdr;
  sys.gsoSendErrno = (mode & 0x18) == 0x08 ? EIO : (mode & 0x18) == 0x10 ? EINVAL : 0;
  sys.mergedWriteErrno = (mode & 0x20) ? EINVAL : 0;
  sys.tunWriteErrno = (mode & 0xc0) == 0xc0 ? EIO : 0;
  sys.nsPerRead = in.ConsumeIntegralInRange<uint64_t>(0, 2000000);

  size_t reads = in.ConsumeIntegralInRange<size_t>(0, 24);
  for (size_t i = 0; i < reads && in.remaining_bytes() > 0; i++) sys.tunReads.push_back(TunPacket(in, c.vnetHdr));
  uint32_t seq = in.ConsumeIntegral<uint32_t>(), src = kAddrs[2], dst = kAddrs[0];
  size_t batches = in.ConsumeIntegralInRange<size_t>(0, 6);
  for (size_t b = 0; b < batches && in.remaining_bytes() > 0; b++) {
    std::vector<ScriptedDatagram> batch;
    size_t n = in.ConsumeIntegralInRange<size_t>(1, 20);
    for (size_t i = 0; i < n; i++) batch.push_back(Message(in, u, seq, src, dst));
    sys.recvBatches.push_back(std::move(batch));
  }
  size_t deliverable = 0;
  std::multiset<Bytes> want = Deliverable(sys.recvBatches, c.udpGro, &deliverable);

  std::vector<RouteSpec> specs;
  for (const Peer& p : kPeers)
    for (const Prefix4& n : p.nets) {
      RouteSpec r;
      r.prefix = n;
      r.peerIp = p.ip;
      r.port = p.port;
      r.hasPeerIp6 = u.v6Socket;
      r.over6 = u.over6;
      Ip6Of(p.ip, r.peerIp6);
      specs.push_back(r);
    }
  Forwarder f(c, sys);
  f.SetTable(Table::Build(specs, nullptr, u.v6Socket));
  auto expected = Expected(sys.tunReads, *f.table(), c.vnetHdr);

  f.RunTunToUdp(worker);
  Counters t1;
  f.Totals(t1);
  CheckSent(sys, u, Get(t1.txPackets), expected);
  size_t icmps = sys.tunWrites.size();
  CHECK(icmps == Get(t1.icmpSent));
  for (const RecordedWrite& w : sys.tunWrites) CheckIcmp(c.vnetHdr ? Bytes(w.data.begin() + 10, w.data.end()) : w.data);

  f.RunUdpToTun(worker);
  size_t delivered = 0;
  for (size_t i = icmps; i < sys.tunWrites.size(); i++) {
    const RecordedWrite& w = sys.tunWrites[i];
    CHECK(size_t(w.iovcnt) <= kMaxTunIov);
    std::vector<Bytes> pkts;
    if (c.vnetHdr) {
      offload::VirtioNetHdr h;
      CHECK(offload::ParseVirtioNetHdr(w.data.data(), w.data.size(), &h));
      const uint8_t* p = w.data.data() + offload::kVirtioNetHdrLen;
      size_t len = w.data.size() - offload::kVirtioNetHdrLen;
      if (h.gso_type == offload::GSO_NONE) {
        CHECK(h.flags == 0);
        pkts.emplace_back(p, p + len);
      } else {
        CHECK(h.gso_type == offload::GSO_TCPV4 || h.gso_type == (offload::GSO_TCPV4 | offload::GSO_ECN) ||
              (c.tunUso && h.gso_type == offload::GSO_UDP_L4));
        CHECK(offload::Segment(p, len, h, &pkts) == offload::Status::kOk);
        CHECK(pkts.size() >= 2 && pkts.size() <= kMaxMergedSegments);
        for (const Bytes& s : pkts) CHECK(IpHdrOk(s) && L4Ok(s));
      }
    } else {
      pkts.push_back(w.data);
    }
    for (const Bytes& p : pkts) {
      auto it = want.find(Normal(p));
      CHECK(it != want.end());  // from a peer owning its source, to us, and not yet written
      want.erase(it);
      delivered++;
    }
  }
  Counters t2;
  f.Totals(t2);
  CHECK(delivered == Get(t2.rxPackets));
  if (sys.tunWriteErrno == 0) CHECK(delivered == deliverable);
  return 0;
}
