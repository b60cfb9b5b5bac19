// The udp backend's native engine: a userspace forwarder between a TUN device
// and a UDP socket, on two dedicated threads (never the libuv pool, never JS
// per packet).
//   TUN -> UDP: drain the TUN in batches, longest-prefix match of the inner
//               IPv4 destination -> peer public IP, TTL - 1, sendmmsg.
//               No route -> ICMP net-unreachable written back into the TUN.
//   UDP -> TUN: recvmmsg in batches; accept only datagrams from a known peer
//               whose inner source lies in that peer's subnet; write to TUN.
// Wire format (flannel udp): the UDP payload is the raw inner IP packet.
// With offloads (TUN opened with IFF_VNET_HDR, see tun.cc enableOffload) the
// wire format stays the same, only the system calls carry more per call:
//   TUN -> UDP: a read may be a TSO super-packet (up to 64 KiB); it is split
//               in C++ (offload::Segment) into MTU-sized inner packets laid
//               out back to back, and each peer's run of them leaves in one
//               UDP_SEGMENT (GSO) message; plain datagrams where GSO fails.
//   UDP -> TUN: UDP_GRO hands over runs of datagrams from one sender at once;
//               each inner packet is checked as before, consecutive segments
//               of one TCP flow are merged (offload::Coalescer) and written as
//               one super-packet with a virtio GSO header (one writev).
// The table is owned by TypeScript and handed over whole; each batch takes
// one reference to the current immutable table (std::atomic_load of a
// shared_ptr), so a swap never blocks or tears a lookup in progress.
#include "common.h"
#include "offload.h"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace weft {

namespace {

constexpr int kBatch = 64;
constexpr size_t kSlot = 65536;  // a whole IP packet always fits; TUN reads never truncate

// Offload mode. A TUN read is the 10-byte virtio_net_hdr and an IP packet of up to 64 KiB.
constexpr size_t kVnetSlot = offload::kVirtioNetHdrLen + offload::kMaxIpPacket + 1;
// Split packets collect here until a flush; a flush every ~256 KiB keeps the
// just-read super-packet and its copy in cache.
constexpr size_t kSegBuf = 512 * 1024;
constexpr size_t kSegFlushAt = 256 * 1024;
constexpr int kMaxMsgs = 256;  // messages per sendmmsg
// UDP_SEGMENT limits: at most UDP_MAX_SEGMENTS (64 before Linux 6.9) segments, and one
// IPv4 datagram's worth of payload (65535 - 20 - 8) per message.
constexpr size_t kGsoMaxSegs = 64;
constexpr size_t kGsoMaxBytes = 65507;
// Merged packets and their headers per receive batch: a GRO message holds at most 64 datagrams.
constexpr size_t kMaxIov = 1 + 64 + 1;
// Receive messages per recvmmsg: each may be a 64 KiB GRO run, and the batch is read
// again by the TUN writes, so it should stay within L2 (16 x 64 KiB = 1 MiB).
constexpr int kRxBatch = 16;
enum Drop { kNoRoute, kTtl, kUnknownPeer, kSpoofedSource, kMalformed, kTunWriteError, kSendError, kDropCount };
const char* const kDropNames[kDropCount] = {"no_route", "ttl", "unknown_peer", "spoofed_source", "malformed", "tun_write_error", "send_error"};

struct PeerCounters {
  std::atomic<uint64_t> txPackets{0}, txBytes{0}, rxPackets{0}, rxBytes{0};
  // Drops that belong to this peer: ttl / send_error on the way to it; malformed,
  // spoofed_source and tun_write_error for datagrams from it.
  std::atomic<uint64_t> drops[kDropCount] = {};
};

struct Route {
  uint32_t net;  // host byte order, masked
  uint8_t prefixLen;
  sockaddr_in dst;
  std::string peerKey;  // "192.0.2.12:8285", for stats
  std::shared_ptr<PeerCounters> counters;
};

inline uint32_t Mask(int prefixLen) { return prefixLen == 0 ? 0 : ~uint32_t{0} << (32 - prefixLen); }

struct Table {
  std::vector<Route> routes;
  // LPM: one hash map per distinct prefix length, longest first.
  std::vector<std::pair<uint8_t, std::unordered_map<uint32_t, uint32_t>>> byPrefix;
  // Receive check: peer public IP (host order) -> its routes.
  std::unordered_map<uint32_t, std::vector<uint32_t>> byPeer;

  const Route* Lookup(uint32_t dst) const {
    for (const auto& [len, m] : byPrefix) {
      auto it = m.find(dst & Mask(len));
      if (it != m.end()) return &routes[it->second];
    }
    return nullptr;
  }
};

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }
inline void Put16(uint8_t* p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

uint16_t Checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += Be16(p + i);
  if (n & 1) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

// TTL - 1 with the header checksum updated incrementally (RFC 1624 eqn. 3):
// HC' = ~(~HC + ~m + m'), m = the 16-bit word holding TTL and protocol.
void DecrementTtl(uint8_t* ip) {
  uint16_t m = Be16(ip + 8);
  uint16_t m2 = static_cast<uint16_t>(m - 0x0100);
  uint32_t sum = (~Be16(ip + 10) & 0xffffu) + (~m & 0xffffu) + m2;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  ip[8] = static_cast<uint8_t>(ip[8] - 1);
  Put16(ip + 10, static_cast<uint16_t>(~sum & 0xffff));
}

// Whether RFC 1812 4.3.2.7 allows an ICMP error about this IPv4 packet:
// not about an ICMP error, a non-first fragment, or a multicast/broadcast/zero address.
bool IcmpAllowed(const uint8_t* ip, size_t len) {
  size_t ihl = (ip[0] & 0x0f) * 4u;
  if ((Be16(ip + 6) & 0x1fff) != 0) return false;
  uint32_t src = Be32(ip + 12), dst = Be32(ip + 16);
  if (src == 0 || src >= 0xe0000000u || dst >= 0xe0000000u) return false;
  if (ip[9] == 1 && len > ihl) {
    uint8_t t = ip[ihl];
    if (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) return false;
  }
  return true;
}

// ICMP destination unreachable (type 3, code 0) from `ownIp` to the packet's
// source, quoting its IP header and the first 8 bytes of its payload.
size_t BuildNetUnreachable(const uint8_t* orig, size_t len, uint32_t ownIp, uint8_t* out) {
  size_t ihl = (orig[0] & 0x0f) * 4u;
  size_t quote = std::min(len, ihl + 8);
  size_t total = 20 + 8 + quote;
  std::memset(out, 0, 28);
  out[0] = 0x45;
  out[1] = 0xc0;  // precedence "internetwork control", as Linux sends its ICMP errors
  Put16(out + 2, static_cast<uint16_t>(total));
  out[8] = 64;
  out[9] = 1;
  out[12] = ownIp >> 24; out[13] = ownIp >> 16; out[14] = ownIp >> 8; out[15] = ownIp;
  std::memcpy(out + 16, orig + 12, 4);
  Put16(out + 10, Checksum(out, 20));
  out[20] = 3;
  out[21] = 0;
  std::memcpy(out + 28, orig, quote);
  Put16(out + 22, Checksum(out + 20, 8 + quote));
  return total;
}

struct OffloadConfig {
  bool vnetHdr = false;          // the TUN was opened with IFF_VNET_HDR (+ enableOffload)
  bool udpGso = false;           // try UDP_SEGMENT sends (falls back on its own)
  bool udpGro = false;           // UDP_GRO is on for the socket
  // Check each received TCP segment before merging it: a merged packet goes to the TUN with a
  // partial checksum the kernel trusts, so an unchecked corrupt segment would be accepted.
  // Costs ~1-2% of one-stream throughput (within run-to-run noise) with the SIMD sum.
  bool verifyChecksums = true;
};

class Forwarder {
 public:
  Forwarder(int tunFd, int udpFd, int eventFd, uint32_t ownIp, OffloadConfig oc)
      : oc_(oc), tun_(tunFd), udp_(udpFd), ev_(eventFd), ownIp_(ownIp), gsoOn_(oc.udpGso) {
    std::atomic_store(&table_, std::make_shared<const Table>());
  }

  void Start() {
    if (oc_.vnetHdr) {
      tunThread_ = std::thread([this] { TunLoopOffload(); });
      udpThread_ = std::thread([this] { UdpLoopOffload(); });
    } else {
      tunThread_ = std::thread([this] { TunLoop(); });
      udpThread_ = std::thread([this] { UdpLoop(); });
    }
  }

  // Wakes both threads through the eventfd, joins them and closes what the forwarder owns (UDP socket, eventfd).
  // The TUN fd belongs to the caller. Returns the errno of a failed wake-up write, else 0.
  int Stop() {
    if (stopped_) return 0;
    stopped_ = true;
    stopping_.store(true);
    uint64_t one = 1;
    int err = 0;
    ssize_t n;
    do n = write(ev_, &one, sizeof one); while (n < 0 && errno == EINTR);
    if (n < 0) err = errno;
    if (tunThread_.joinable()) tunThread_.join();
    if (udpThread_.joinable()) udpThread_.join();
    close(udp_);
    close(ev_);
    return err;
  }

  ~Forwarder() { Stop(); }

  void SetTable(std::shared_ptr<const Table> t) { std::atomic_store(&table_, std::move(t)); }
  std::shared_ptr<const Table> CurrentTable() const { return std::atomic_load(&table_); }

  std::atomic<uint64_t> txPackets{0}, txBytes{0}, rxPackets{0}, rxBytes{0}, icmpSent{0};
  std::atomic<uint64_t> drops[kDropCount] = {};
  // The first error that ended a thread (errno), and which call failed; 0 while healthy.
  std::atomic<int> tunThreadErrno{0}, udpThreadErrno{0};
  std::atomic<int> lastSendErrno{0}, lastTunWriteErrno{0};
  // Offload paths. tsoReads: TUN reads that were GSO super-packets. gsoSends: UDP_SEGMENT
  // messages sent, gsoSegments: datagrams they carried; gsoFallbacks: GSO messages resent
  // as single datagrams (errno in lastGsoErrno). groReceives: received messages holding
  // more than one datagram, groSegments: their datagrams. coalescedWrites: super-packets
  // written to the TUN, mergedSegments: segments in them; mergeFallbacks: super-packets the
  // TUN refused, written again segment by segment.
  std::atomic<uint64_t> tsoReads{0}, gsoSends{0}, gsoSegments{0}, gsoFallbacks{0};
  std::atomic<uint64_t> groReceives{0}, groSegments{0}, coalescedWrites{0}, mergedSegments{0}, mergeFallbacks{0};
  std::atomic<int> lastGsoErrno{0};
  const OffloadConfig oc_;
  bool stopped_ = false;

 private:
  void Count(Drop d, PeerCounters* pc = nullptr) {
    drops[d].fetch_add(1, std::memory_order_relaxed);
    if (pc) pc->drops[d].fetch_add(1, std::memory_order_relaxed);
  }

  void TunWrite(const uint8_t* p, size_t n) {
    ssize_t w;
    do w = write(tun_, p, n); while (w < 0 && errno == EINTR);
    if (w < 0) {
      lastTunWriteErrno.store(errno, std::memory_order_relaxed);
      Count(kTunWriteError);
    }
  }

  void TunLoop() {
    std::vector<uint8_t> bufs(kBatch * kSlot);
    uint8_t icmp[28 + 60 + 8];
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    PeerCounters* peer[kBatch];
    pollfd pfd[2] = {{tun_, POLLIN, 0}, {ev_, POLLIN, 0}};
    for (;;) {
      int r = poll(pfd, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        tunThreadErrno.store(errno);
        return;
      }
      if (pfd[1].revents) return;
      if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        tunThreadErrno.store(EBADFD);  // the TUN device was deleted under us
        return;
      }
      bool drained = false;
      while (!drained && !stopping_.load(std::memory_order_relaxed)) {
        std::shared_ptr<const Table> table = std::atomic_load(&table_);
        int n = 0;
        for (int reads = 0; reads < kBatch; reads++) {
          uint8_t* p = &bufs[n * kSlot];
          ssize_t len = read(tun_, p, kSlot);
          if (len < 0) {
            if (errno == EINTR) { reads--; continue; }
            if (errno == EAGAIN) { drained = true; break; }
            tunThreadErrno.store(errno);
            stopping_.store(true);
            drained = true;
            break;
          }
          if (len == 0) { drained = true; break; }
          if ((p[0] >> 4) == 6) { Count(kNoRoute); continue; }  // the overlay is IPv4
          if (len < 20 || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5 || static_cast<size_t>((p[0] & 0x0f) * 4) > static_cast<size_t>(len)) {
            Count(kMalformed);
            continue;
          }
          const Route* rt = table->Lookup(Be32(p + 16));
          if (!rt) {
            Count(kNoRoute);
            if (IcmpAllowed(p, len)) {
              size_t m = BuildNetUnreachable(p, len, ownIp_, icmp);
              TunWrite(icmp, m);
              icmpSent.fetch_add(1, std::memory_order_relaxed);
            }
            continue;
          }
          if (p[8] <= 1) { Count(kTtl, rt->counters.get()); continue; }
          DecrementTtl(p);
          iov[n] = {p, static_cast<size_t>(len)};
          std::memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
          msgs[n].msg_hdr.msg_name = const_cast<sockaddr_in*>(&rt->dst);
          msgs[n].msg_hdr.msg_namelen = sizeof rt->dst;
          msgs[n].msg_hdr.msg_iov = &iov[n];
          msgs[n].msg_hdr.msg_iovlen = 1;
          peer[n] = rt->counters.get();
          n++;
        }
        int off = 0;
        while (off < n) {
          int s = sendmmsg(udp_, msgs + off, n - off, 0);
          if (s < 0) {
            if (errno == EINTR) continue;
            // The datagram at `off` failed: count it and go on with the rest.
            lastSendErrno.store(errno, std::memory_order_relaxed);
            Count(kSendError, peer[off]);
            off++;
            continue;
          }
          for (int i = off; i < off + s; i++) {
            size_t b = iov[i].iov_len;
            peer[i]->txPackets.fetch_add(1, std::memory_order_relaxed);
            peer[i]->txBytes.fetch_add(b, std::memory_order_relaxed);
            txPackets.fetch_add(1, std::memory_order_relaxed);
            txBytes.fetch_add(b, std::memory_order_relaxed);
          }
          off += s;
        }
      }
      if (tunThreadErrno.load() != 0) return;
    }
  }

  // Why a datagram from `src` (host order) must not reach the TUN, or -1 when it may.
  int Check(const Table& t, uint32_t src, const uint8_t* p, size_t len, PeerCounters** pc) const {
    auto it = t.byPeer.find(src);
    if (it == t.byPeer.end()) return kUnknownPeer;
    *pc = t.routes[it->second.front()].counters.get();  // drops from here on are this peer's
    if (len < 1) return kMalformed;
    int v = p[0] >> 4;
    if (v == 4) {
      if (len < 20 || (p[0] & 0x0f) < 5 || static_cast<size_t>((p[0] & 0x0f) * 4) > len || Be16(p + 2) != len) return kMalformed;
    } else if (v == 6) {
      if (len < 40 || Be16(p + 4) + 40u != len) return kMalformed;
      return kSpoofedSource;  // a peer's subnet is IPv4: an IPv6 source is never inside it
    } else {
      return kMalformed;
    }
    uint32_t inner = Be32(p + 12);
    for (uint32_t i : it->second) {
      const Route& r = t.routes[i];
      if ((inner & Mask(r.prefixLen)) == r.net) return -1;
    }
    return kSpoofedSource;
  }

  void UdpLoop() {
    std::vector<uint8_t> bufs(kBatch * kSlot);
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_in from[kBatch];
    pollfd pfd[2] = {{udp_, POLLIN, 0}, {ev_, POLLIN, 0}};
    for (;;) {
      int r = poll(pfd, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        udpThreadErrno.store(errno);
        return;
      }
      if (pfd[1].revents) return;
      for (;;) {
        if (stopping_.load(std::memory_order_relaxed)) return;
        for (int i = 0; i < kBatch; i++) {
          iov[i] = {&bufs[i * kSlot], kSlot};
          std::memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
          msgs[i].msg_hdr.msg_name = &from[i];
          msgs[i].msg_hdr.msg_namelen = sizeof from[i];
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(udp_, msgs, kBatch, MSG_DONTWAIT, nullptr);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) break;
          // ICMP errors queued on the socket surface here (e.g. ECONNREFUSED); they end nothing.
          if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
          udpThreadErrno.store(errno);
          return;
        }
        std::shared_ptr<const Table> table = std::atomic_load(&table_);
        for (int i = 0; i < n; i++) {
          const uint8_t* p = &bufs[i * kSlot];
          size_t len = msgs[i].msg_len;
          PeerCounters* pc = nullptr;
          int why = Check(*table, ntohl(from[i].sin_addr.s_addr), p, len, &pc);
          if (why < 0 && (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) why = kMalformed;
          if (why >= 0) {
            Count(static_cast<Drop>(why), pc);
            continue;
          }
          ssize_t w;
          do w = write(tun_, p, len); while (w < 0 && errno == EINTR);
          if (w < 0) {
            lastTunWriteErrno.store(errno, std::memory_order_relaxed);
            Count(kTunWriteError, pc);
            continue;
          }
          pc->rxPackets.fetch_add(1, std::memory_order_relaxed);
          pc->rxBytes.fetch_add(len, std::memory_order_relaxed);
          rxPackets.fetch_add(1, std::memory_order_relaxed);
          rxBytes.fetch_add(len, std::memory_order_relaxed);
        }
        if (n < kBatch) break;
      }
    }
  }

  // ---- offload mode ----

  // What one message of a send batch carries: `segs` inner packets of `stride` bytes
  // (the last may be shorter), `bytes` in all, to one peer.
  struct TxMeta {
    PeerCounters* peer;
    uint8_t* data;
    size_t bytes, stride, segs;
  };

  // Writes a packet that is no super-packet to the TUN, behind an all-zero virtio header.
  bool TunWritePlain(const uint8_t* p, size_t n) {
    static const uint8_t zero[offload::kVirtioNetHdrLen] = {};
    iovec v[2] = {{const_cast<uint8_t*>(zero), sizeof zero}, {const_cast<uint8_t*>(p), n}};
    ssize_t w;
    do w = writev(tun_, v, 2); while (w < 0 && errno == EINTR);
    if (w < 0) {
      lastTunWriteErrno.store(errno, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

  void CountTx(const TxMeta& m, size_t segs, size_t bytes) {
    m.peer->txPackets.fetch_add(segs, std::memory_order_relaxed);
    m.peer->txBytes.fetch_add(bytes, std::memory_order_relaxed);
    txPackets.fetch_add(segs, std::memory_order_relaxed);
    txBytes.fetch_add(bytes, std::memory_order_relaxed);
  }

  // Sends the segments of one message as plain datagrams (GSO refused, or no GSO).
  void SendSingly(const TxMeta& m, const sockaddr_in* dst) {
    mmsghdr msgs[kGsoMaxSegs];
    iovec iov[kGsoMaxSegs];
    size_t done = 0;
    while (done < m.segs) {
      size_t n = std::min(m.segs - done, kGsoMaxSegs);
      for (size_t i = 0; i < n; i++) {
        size_t off = (done + i) * m.stride;
        iov[i] = {m.data + off, std::min(m.stride, m.bytes - off)};
        std::memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(dst);
        msgs[i].msg_hdr.msg_namelen = sizeof *dst;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      size_t off = 0;
      while (off < n) {
        int s = sendmmsg(udp_, msgs + off, static_cast<unsigned>(n - off), 0);
        if (s < 0) {
          if (errno == EINTR) continue;
          lastSendErrno.store(errno, std::memory_order_relaxed);
          Count(kSendError, m.peer);
          off++;
          continue;
        }
        for (size_t i = off; i < off + static_cast<size_t>(s); i++) CountTx(m, 1, iov[i].iov_len);
        off += static_cast<size_t>(s);
      }
      done += n;
    }
  }

  // Sends msgs[0..n); a GSO message the socket refuses goes again as single datagrams.
  void FlushTx(mmsghdr* msgs, const TxMeta* meta, int n) {
    int off = 0;
    while (off < n) {
      int s = sendmmsg(udp_, msgs + off, static_cast<unsigned>(n - off), 0);
      if (s < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        const TxMeta& m = meta[off];
        const auto* dst = static_cast<const sockaddr_in*>(msgs[off].msg_hdr.msg_name);
        if (m.segs > 1 && (e == EIO || e == EINVAL || e == ENOPROTOOPT || e == EOPNOTSUPP)) {
          // EIO: the route's device cannot checksum (GSO needs it); ENOPROTOOPT/EOPNOTSUPP: no
          // UDP_SEGMENT in this kernel. Both stay so: GSO goes off. EINVAL is about this message
          // (e.g. a segment larger than the path MTU): resend it, keep GSO.
          lastGsoErrno.store(e, std::memory_order_relaxed);
          gsoFallbacks.fetch_add(1, std::memory_order_relaxed);
          if (e != EINVAL) gsoOn_ = false;
          SendSingly(m, dst);
        } else {
          lastSendErrno.store(e, std::memory_order_relaxed);
          Count(kSendError, m.peer);
        }
        off++;
        continue;
      }
      for (int i = off; i < off + s; i++) {
        CountTx(meta[i], meta[i].segs, meta[i].bytes);
        if (meta[i].segs > 1) {
          gsoSends.fetch_add(1, std::memory_order_relaxed);
          gsoSegments.fetch_add(meta[i].segs, std::memory_order_relaxed);
        }
      }
      off += s;
    }
  }

  void TunLoopOffload() {
    std::vector<uint8_t> slot(kVnetSlot);
    std::vector<uint8_t> seg(kSegBuf);
    std::vector<mmsghdr> msgs(kMaxMsgs);
    std::vector<iovec> iov(kMaxMsgs);
    std::vector<TxMeta> meta(kMaxMsgs);
    constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(uint16_t));
    std::vector<uint8_t> cmsgs(kMaxMsgs * kCmsgSpace);
    std::vector<std::vector<uint8_t>> slow;  // segments of a packet too big for `seg` (a tiny gso_size)
    uint8_t icmp[28 + 60 + 8];
    pollfd pfd[2] = {{tun_, POLLIN, 0}, {ev_, POLLIN, 0}};
    int n = 0;       // messages pending
    size_t used = 0;  // bytes of `seg` pending
    auto flush = [&] {
      FlushTx(msgs.data(), meta.data(), n);
      n = 0;
      used = 0;
    };
    // Queues `count` segments laid out at `data` with `stride` for `rt`: GSO chunks, or one message each.
    auto queue = [&](const Route* rt, uint8_t* data, size_t bytes, size_t stride, size_t count) {
      size_t per = gsoOn_ ? std::max<size_t>(1, std::min(kGsoMaxSegs, kGsoMaxBytes / stride)) : 1;
      for (size_t first = 0; first < count; first += per) {
        if (n == kMaxMsgs) {
          // Only the message array is full; `seg` stays valid since nothing is overwritten before the next read.
          FlushTx(msgs.data(), meta.data(), n);
          n = 0;
        }
        size_t segs = std::min(per, count - first);
        size_t off = first * stride;
        size_t len = std::min(segs * stride, bytes - off);
        iov[n] = {data + off, len};
        mmsghdr& m = msgs[n];
        std::memset(&m.msg_hdr, 0, sizeof m.msg_hdr);
        m.msg_hdr.msg_name = const_cast<sockaddr_in*>(&rt->dst);
        m.msg_hdr.msg_namelen = sizeof rt->dst;
        m.msg_hdr.msg_iov = &iov[n];
        m.msg_hdr.msg_iovlen = 1;
        if (segs > 1) {
          uint8_t* c = &cmsgs[static_cast<size_t>(n) * kCmsgSpace];
          std::memset(c, 0, kCmsgSpace);
          m.msg_hdr.msg_control = c;
          m.msg_hdr.msg_controllen = kCmsgSpace;
          cmsghdr* cm = CMSG_FIRSTHDR(&m.msg_hdr);
          cm->cmsg_level = SOL_UDP;
          cm->cmsg_type = UDP_SEGMENT;
          cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
          uint16_t gs = static_cast<uint16_t>(stride);
          std::memcpy(CMSG_DATA(cm), &gs, sizeof gs);
        }
        meta[n] = TxMeta{rt->counters.get(), data + off, len, stride, segs};
        n++;
      }
    };
    for (;;) {
      int r = poll(pfd, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        tunThreadErrno.store(errno);
        return;
      }
      if (pfd[1].revents) return;
      if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        tunThreadErrno.store(EBADFD);
        return;
      }
      std::shared_ptr<const Table> table = std::atomic_load(&table_);
      for (int reads = 0;; reads++) {
        if (stopping_.load(std::memory_order_relaxed)) break;
        if (reads == kBatch) {  // take a fresh table now and then on a busy TUN
          flush();
          table = std::atomic_load(&table_);
          reads = 0;
        }
        ssize_t got = read(tun_, slot.data(), slot.size());
        if (got < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) break;
          tunThreadErrno.store(errno);
          stopping_.store(true);
          break;
        }
        offload::VirtioNetHdr h;
        if (!offload::ParseVirtioNetHdr(slot.data(), static_cast<size_t>(got), &h)) { Count(kMalformed); continue; }
        uint8_t* p = slot.data() + offload::kVirtioNetHdrLen;
        size_t len = static_cast<size_t>(got) - offload::kVirtioNetHdrLen;
        if (len == 0) continue;
        if ((p[0] >> 4) == 6) { Count(kNoRoute); continue; }  // the overlay is IPv4
        if (len < 20 || (p[0] >> 4) != 4 || (p[0] & 0x0f) < 5 || static_cast<size_t>((p[0] & 0x0f) * 4) > len) {
          Count(kMalformed);
          continue;
        }
        const Route* rt = table->Lookup(Be32(p + 16));
        if (!rt) {
          Count(kNoRoute);
          if (IcmpAllowed(p, len)) {
            size_t m = BuildNetUnreachable(p, len, ownIp_, icmp);
            if (!TunWritePlain(icmp, m)) Count(kTunWriteError);
            icmpSent.fetch_add(1, std::memory_order_relaxed);
          }
          continue;
        }
        if (p[8] <= 1) { Count(kTtl, rt->counters.get()); continue; }
        DecrementTtl(p);  // Segment copies the header, TTL included, into every segment
        if (h.gso_type != offload::GSO_NONE) tsoReads.fetch_add(1, std::memory_order_relaxed);
        offload::SegmentLayout lay;
        offload::Status st = offload::Segment(p, len, h, seg.data() + used, seg.size() - used, &lay);
        if (st == offload::Status::kNoSpace && used > 0) {
          flush();
          st = offload::Segment(p, len, h, seg.data(), seg.size(), &lay);
        }
        if (st == offload::Status::kNoSpace) {
          // Larger than the whole buffer (a tiny gso_size): the vector form, sent right away.
          st = offload::Segment(p, len, h, &slow);
          if (st != offload::Status::kOk) { Count(kMalformed, rt->counters.get()); continue; }
          for (auto& v : slow) {
            TxMeta m{rt->counters.get(), v.data(), v.size(), v.size(), 1};
            SendSingly(m, &rt->dst);
          }
          continue;
        }
        if (st != offload::Status::kOk) { Count(kMalformed, rt->counters.get()); continue; }
        queue(rt, seg.data() + used, lay.bytes, lay.stride, lay.count);
        used += lay.bytes;
        if (used >= kSegFlushAt) flush();
      }
      flush();
      if (tunThreadErrno.load() != 0) return;
    }
  }

  void UdpLoopOffload() {
    constexpr size_t kRxSlot = 65536;  // a GRO message never exceeds 64 KiB
    constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(int));
    std::vector<uint8_t> bufs(kRxBatch * kRxSlot);
    std::vector<uint8_t> cmsgs(kRxBatch * kCmsgSpace);
    mmsghdr msgs[kRxBatch];
    iovec iov[kRxBatch];
    sockaddr_in from[kRxBatch];
    PeerCounters* peerOf[kRxBatch];
    offload::Coalescer::Options co;
    co.verifyChecksums = oc_.verifyChecksums;
    offload::Coalescer coal(co);
    uint8_t vh[offload::kVirtioNetHdrLen];
    iovec wv[kMaxIov];
    pollfd pfd[2] = {{udp_, POLLIN, 0}, {ev_, POLLIN, 0}};
    for (;;) {
      int r = poll(pfd, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        udpThreadErrno.store(errno);
        return;
      }
      if (pfd[1].revents) return;
      for (;;) {
        if (stopping_.load(std::memory_order_relaxed)) return;
        for (int i = 0; i < kRxBatch; i++) {
          iov[i] = {&bufs[i * kRxSlot], kRxSlot};
          std::memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
          msgs[i].msg_hdr.msg_name = &from[i];
          msgs[i].msg_hdr.msg_namelen = sizeof from[i];
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
          msgs[i].msg_hdr.msg_control = &cmsgs[i * kCmsgSpace];
          msgs[i].msg_hdr.msg_controllen = kCmsgSpace;
        }
        int n = recvmmsg(udp_, msgs, kRxBatch, MSG_DONTWAIT, nullptr);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) break;
          if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
          udpThreadErrno.store(errno);
          return;
        }
        std::shared_ptr<const Table> table = std::atomic_load(&table_);
        coal.Reset();
        for (int i = 0; i < n; i++) {
          const uint8_t* base = &bufs[i * kRxSlot];
          size_t len = msgs[i].msg_len;
          size_t gso = len;
          for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
              int g;
              std::memcpy(&g, CMSG_DATA(c), sizeof g);
              if (g > 0) gso = static_cast<size_t>(g);
            }
          }
          uint32_t src = ntohl(from[i].sin_addr.s_addr);
          peerOf[i] = nullptr;
          if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            PeerCounters* pc = nullptr;
            int why = Check(*table, src, base, 0, &pc);
            Count(why == kUnknownPeer ? kUnknownPeer : kMalformed, pc);
            continue;
          }
          if (gso < len) {
            groReceives.fetch_add(1, std::memory_order_relaxed);
            groSegments.fetch_add((len + gso - 1) / gso, std::memory_order_relaxed);
          }
          if (len == 0) {
            PeerCounters* pc = nullptr;
            Count(static_cast<Drop>(Check(*table, src, base, 0, &pc)), pc);
            continue;
          }
          // One sender for the whole message; each datagram in it is checked on its own.
          for (size_t off = 0; off < len; off += gso) {
            const uint8_t* p = base + off;
            size_t l = std::min(gso, len - off);
            PeerCounters* pc = nullptr;
            int why = Check(*table, src, p, l, &pc);
            if (why >= 0) {
              Count(static_cast<Drop>(why), pc);
              continue;
            }
            peerOf[i] = pc;
            coal.Add(p, l);
          }
        }
        coal.Finish();
        for (size_t k = 0; k < coal.OutputCount(); k++) {
          offload::CoalescedPacket cp = coal.Output(k);
          bool merged = cp.hdr.gso_type != offload::GSO_NONE;
          size_t hl = cp.hdr.hdr_len;
          // The segment that opened this packet locates its message, hence its peer.
          const uint8_t* first = merged ? cp.slices[1].data - hl : cp.slices[0].data;
          PeerCounters* pc = peerOf[(first - bufs.data()) / static_cast<std::ptrdiff_t>(kRxSlot)];
          size_t segs = merged ? cp.sliceCount - 1 : 1;
          size_t bytes = cp.bytes + (segs - 1) * hl;  // the inner packets as they arrived
          offload::WriteVirtioNetHdr(cp.hdr, vh);
          wv[0] = {vh, sizeof vh};
          for (size_t s = 0; s < cp.sliceCount; s++) wv[1 + s] = {const_cast<uint8_t*>(cp.slices[s].data), cp.slices[s].len};
          ssize_t w;
          do w = writev(tun_, wv, static_cast<int>(1 + cp.sliceCount)); while (w < 0 && errno == EINTR);
          if (w < 0 && merged && errno == EINVAL) {
            // The TUN refused the super-packet: write the segments as they came.
            mergeFallbacks.fetch_add(1, std::memory_order_relaxed);
            for (size_t s = 1; s < cp.sliceCount; s++) {
              const uint8_t* seg = cp.slices[s].data - hl;
              size_t sl = hl + cp.slices[s].len;
              if (TunWritePlain(seg, sl)) {
                CountRx(pc, 1, sl);
              } else {
                Count(kTunWriteError, pc);
              }
            }
            continue;
          }
          if (w < 0) {
            lastTunWriteErrno.store(errno, std::memory_order_relaxed);
            for (size_t s = 0; s < segs; s++) Count(kTunWriteError, pc);
            continue;
          }
          if (merged) {
            coalescedWrites.fetch_add(1, std::memory_order_relaxed);
            mergedSegments.fetch_add(segs, std::memory_order_relaxed);
          }
          CountRx(pc, segs, bytes);
        }
        if (n < kRxBatch) break;
      }
    }
  }

  void CountRx(PeerCounters* pc, size_t segs, size_t bytes) {
    pc->rxPackets.fetch_add(segs, std::memory_order_relaxed);
    pc->rxBytes.fetch_add(bytes, std::memory_order_relaxed);
    rxPackets.fetch_add(segs, std::memory_order_relaxed);
    rxBytes.fetch_add(bytes, std::memory_order_relaxed);
  }

  int tun_, udp_, ev_;
  uint32_t ownIp_;
  bool gsoOn_;  // TUN thread only
  std::shared_ptr<const Table> table_;
  std::atomic<bool> stopping_{false};
  std::thread tunThread_, udpThread_;
};

uint32_t ParseIp(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string(what) + " must be a dotted IPv4 string");
  std::string s = v.As<Napi::String>().Utf8Value();
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) throw Napi::TypeError::New(env, std::string(what) + " '" + s + "' is not an IPv4 address");
  return ntohl(a.s_addr);
}

int IntField(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(key) + " must be a number");
  int n = v.As<Napi::Number>().Int32Value();
  if (n < lo || n > hi) throw Napi::RangeError::New(env, std::string(key) + " must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + std::to_string(n));
  return n;
}

Forwarder* Unwrap(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a forwarder handle");
  return info[0].As<Napi::External<Forwarder>>().Data();
}

// Sets a socket buffer size, as root beyond net.core.[rw]mem_max (…BUFFORCE), else as far as allowed.
void SetBuf(int fd, int force, int plain, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) == 0) return;
  setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes);  // capped by the sysctl; never fatal
}

bool BoolField(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

// start({ tunFd, bindIp, port, ownIp, bufferBytes?, vnetHdr?, udpGso?, udpGro?, verifyChecksums? }) -> handle
// vnetHdr: the TUN was opened with IFF_VNET_HDR and its offloads enabled (tun.enableOffload);
// then UDP_SEGMENT sends (udpGso, default on) and UDP_GRO receives (udpGro, default on) are tried.
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "forwarder.start expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  int tunFd = IntField(env, o, "tunFd", 0, 1 << 30);
  uint32_t bindIp = ParseIp(env, o.Get("bindIp"), "bindIp");
  int port = IntField(env, o, "port", 1, 65535);
  uint32_t ownIp = ParseIp(env, o.Get("ownIp"), "ownIp");
  int bufBytes = o.Has("bufferBytes") && o.Get("bufferBytes").IsNumber() ? IntField(env, o, "bufferBytes", 65536, 1 << 30) : 8 << 20;
  OffloadConfig oc;
  oc.vnetHdr = BoolField(o, "vnetHdr", false);
  oc.udpGso = oc.vnetHdr && BoolField(o, "udpGso", true);
  bool wantGro = oc.vnetHdr && BoolField(o, "udpGro", true);
  oc.verifyChecksums = BoolField(o, "verifyChecksums", true);

  int fl = fcntl(tunFd, F_GETFL);
  if (fl < 0) ThrowErrno(env, "fcntl(tunFd F_GETFL)", errno);
  if (fcntl(tunFd, F_SETFL, fl | O_NONBLOCK) != 0) ThrowErrno(env, "fcntl(tunFd O_NONBLOCK)", errno);

  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (udp < 0) ThrowErrno(env, "socket(AF_INET, SOCK_DGRAM)", errno);
  SetBuf(udp, SO_RCVBUFFORCE, SO_RCVBUF, bufBytes);
  SetBuf(udp, SO_SNDBUFFORCE, SO_SNDBUF, bufBytes);
  if (wantGro) {
    int one = 1;
    oc.udpGro = setsockopt(udp, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;  // absent before Linux 5.0: then none
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(bindIp);
  if (bind(udp, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    close(udp);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    ThrowErrno(env, std::string("bind UDP ") + ip + ":" + std::to_string(port), e);
  }
  int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ev < 0) {
    int e = errno;
    close(udp);
    ThrowErrno(env, "eventfd", e);
  }
  auto* f = new Forwarder(tunFd, udp, ev, ownIp, oc);
  f->Start();
  // A handle dropped without stop() still stops its threads when collected (or at env teardown).
  return Napi::External<Forwarder>::New(env, f, [](Napi::Env, Forwarder* p) { delete p; });
}

// setTable(handle, [{ subnet: "10.244.3.0", prefixLen: 24, peerIp: "192.0.2.13", port: 8285 }, ...])
Napi::Value SetTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Forwarder* f = Unwrap(info);
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "setTable expects an array of routes");
  Napi::Array a = info[1].As<Napi::Array>();
  auto old = f->CurrentTable();
  // Per-peer counters live on across table swaps while the peer stays.
  std::unordered_map<std::string, std::shared_ptr<PeerCounters>> keep;
  for (const Route& r : old->routes) keep.emplace(r.peerKey, r.counters);
  auto t = std::make_shared<Table>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "route " + std::to_string(i) + " is not an object");
    Napi::Object o = v.As<Napi::Object>();
    Route r{};
    r.prefixLen = static_cast<uint8_t>(IntField(env, o, "prefixLen", 0, 32));
    r.net = ParseIp(env, o.Get("subnet"), "subnet");
    if ((r.net & Mask(r.prefixLen)) != r.net) throw Napi::RangeError::New(env, "route " + std::to_string(i) + " has host bits set");
    uint32_t peer = ParseIp(env, o.Get("peerIp"), "peerIp");
    int port = IntField(env, o, "port", 1, 65535);
    r.dst.sin_family = AF_INET;
    r.dst.sin_port = htons(static_cast<uint16_t>(port));
    r.dst.sin_addr.s_addr = htonl(peer);
    r.peerKey = o.Get("peerIp").As<Napi::String>().Utf8Value() + ":" + std::to_string(port);
    auto it = keep.find(r.peerKey);
    r.counters = it != keep.end() ? it->second : std::make_shared<PeerCounters>();
    keep.emplace(r.peerKey, r.counters);
    uint32_t idx = static_cast<uint32_t>(t->routes.size());
    t->routes.push_back(std::move(r));
    const Route& added = t->routes.back();
    auto pl = std::find_if(t->byPrefix.begin(), t->byPrefix.end(), [&](auto& e) { return e.first == added.prefixLen; });
    if (pl == t->byPrefix.end()) {
      t->byPrefix.emplace_back(added.prefixLen, std::unordered_map<uint32_t, uint32_t>{});
      pl = t->byPrefix.end() - 1;
    }
    pl->second[added.net] = idx;
    t->byPeer[peer].push_back(idx);
  }
  std::sort(t->byPrefix.begin(), t->byPrefix.end(), [](auto& x, auto& y) { return x.first > y.first; });
  f->SetTable(std::move(t));
  return env.Undefined();
}

// stats(handle) -> { txPackets, txBytes, rxPackets, rxBytes, icmpSent, drops: {...}, peers: { "ip:port": {...} }, errors: {...} }
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Forwarder* f = Unwrap(info);
  auto n = [&](const std::atomic<uint64_t>& c) { return Napi::Number::New(env, static_cast<double>(c.load(std::memory_order_relaxed))); };
  Napi::Object o = Napi::Object::New(env);
  o.Set("txPackets", n(f->txPackets));
  o.Set("txBytes", n(f->txBytes));
  o.Set("rxPackets", n(f->rxPackets));
  o.Set("rxBytes", n(f->rxBytes));
  o.Set("icmpSent", n(f->icmpSent));
  Napi::Object d = Napi::Object::New(env);
  for (int i = 0; i < kDropCount; i++) d.Set(kDropNames[i], n(f->drops[i]));
  o.Set("drops", d);
  Napi::Object peers = Napi::Object::New(env);
  auto t = f->CurrentTable();
  for (const Route& r : t->routes) {
    if (peers.Has(r.peerKey)) continue;
    Napi::Object p = Napi::Object::New(env);
    p.Set("txPackets", n(r.counters->txPackets));
    p.Set("txBytes", n(r.counters->txBytes));
    p.Set("rxPackets", n(r.counters->rxPackets));
    p.Set("rxBytes", n(r.counters->rxBytes));
    Napi::Object pd = Napi::Object::New(env);
    for (int i = 0; i < kDropCount; i++) pd.Set(kDropNames[i], n(r.counters->drops[i]));
    p.Set("drops", pd);
    peers.Set(r.peerKey, p);
  }
  o.Set("peers", peers);
  Napi::Object e = Napi::Object::New(env);
  e.Set("tunThread", f->tunThreadErrno.load());
  e.Set("udpThread", f->udpThreadErrno.load());
  e.Set("lastSend", f->lastSendErrno.load());
  e.Set("lastTunWrite", f->lastTunWriteErrno.load());
  o.Set("errno", e);
  Napi::Object of = Napi::Object::New(env);
  of.Set("vnetHdr", f->oc_.vnetHdr);
  of.Set("udpGso", f->oc_.udpGso);
  of.Set("udpGro", f->oc_.udpGro);
  of.Set("verifyChecksums", f->oc_.verifyChecksums);
  of.Set("tsoReads", n(f->tsoReads));
  of.Set("gsoSends", n(f->gsoSends));
  of.Set("gsoSegments", n(f->gsoSegments));
  of.Set("gsoFallbacks", n(f->gsoFallbacks));
  of.Set("lastGsoErrno", f->lastGsoErrno.load());
  of.Set("groReceives", n(f->groReceives));
  of.Set("groSegments", n(f->groSegments));
  of.Set("coalescedWrites", n(f->coalescedWrites));
  of.Set("mergedSegments", n(f->mergedSegments));
  of.Set("mergeFallbacks", n(f->mergeFallbacks));
  o.Set("offload", of);
  return o;
}

// stop(handle): wakes and joins both threads, closes the UDP socket and eventfd. Idempotent.
Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Forwarder* f = Unwrap(info);
  int err = f->Stop();
  if (err != 0) ThrowErrno(env, "forwarder stop: eventfd write", err);
  return env.Undefined();
}

}  // namespace

void InitForwarder(Napi::Env env, Napi::Object exports) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("start", Napi::Function::New(env, Start));
  f.Set("setTable", Napi::Function::New(env, SetTable));
  f.Set("stats", Napi::Function::New(env, Stats));
  f.Set("stop", Napi::Function::New(env, Stop));
  exports.Set("forwarder", f);
}

}  // namespace weft
