// The TUN -> UDP loop (see forwarder.h). One path for both TUN kinds:
//   plain TUN:  each read is one IP packet, read straight into the send buffer
//               and sent from there as one datagram.
//   vnetHdr:    each read is a virtio_net_hdr and an IP packet of up to 64 KiB,
//               read into a slot; offload::Segment splits a TSO/USO super-packet
//               (or copies a plain one, completing a partial checksum) into the
//               send buffer, and each peer's run of segments leaves in one
//               UDP_SEGMENT (GSO) message; plain datagrams where GSO fails.
#include "forwarder.h"
#include "ipv4.h"
#include "rate-limit.h"
#include "udp-batch.h"

#include <algorithm>
#include <cerrno>

namespace weft {

namespace {

// Reads between two looks at the current table, and at most between two sends.
constexpr int kReadsPerBatch = 64;
// One read: the virtio header and a whole IP packet (+1: a read that fills it was truncated).
constexpr size_t kReadSlot = offload::kVirtioNetHdrLen + offload::kMaxIpPacket + 1;
// Packets collect here until a send; sending every ~256 KiB keeps the
// just-read super-packet and its copy in cache.
constexpr size_t kSendBuf = 512 * 1024;
constexpr size_t kSendAt = 256 * 1024;
constexpr size_t kMaxMsgs = 256;  // messages per sendmmsg
// ICMP net-unreachable into the TUN: Linux's own defaults for all ICMP errors of a host
// (net.ipv4.icmp_msgs_per_sec, icmp_msgs_burst); packet.ts uses the same for the dgram engine.
constexpr uint64_t kIcmpPerSecond = 1000;
constexpr uint64_t kIcmpBurst = 50;
// Every super-packet Segment accepts fits the empty buffer (at most kMaxSegments copies of a
// 120-byte IP+TCP header plus the payload), so none needs a slow path of its own.
static_assert(kSendBuf >= offload::kMaxSegments * (60 + 60) + offload::kMaxIpPacket, "a split super-packet fits the send buffer");

class TunToUdp {
 public:
  explicit TunToUdp(Forwarder& f)
      : f_(f), c_(f.counters), sys_(f.sys()), cfg_(f.config()), gsoOn_(cfg_.udpGso),
        slot_(cfg_.vnetHdr ? kReadSlot : 0), buf_(kSendBuf), batch_(kMaxMsgs), meta_(kMaxMsgs), singles_(kGsoMaxSegs),
        icmp_(kIcmpPerSecond, kIcmpBurst) {}

  void Run();

 private:
  // What one message of a send batch carries: `segs` inner packets of `stride` bytes
  // (the last may be shorter), `bytes` in all, to one peer.
  struct TxMeta {
    const Route* route;
    uint8_t* data;
    size_t bytes, stride, segs;
  };

  bool ReadOne(const Table& t);  // false once the TUN is drained (or failed)
  void NoRoute(const uint8_t* p, size_t len);
  void Queue(const Route* rt, uint8_t* data, size_t bytes, size_t stride, size_t count);
  void SendQueued();
  void SendSingly(const TxMeta& m);  // GSO refused: one datagram per segment
  void Flush() {
    SendQueued();
    used_ = 0;
  }

  Forwarder& f_;
  Counters& c_;
  Syscalls& sys_;
  const ForwarderConfig& cfg_;
  bool gsoOn_;
  std::vector<uint8_t> slot_;
  std::vector<uint8_t> buf_;
  size_t used_ = 0;  // bytes of buf_ queued for sending
  SendBatch batch_;
  std::vector<TxMeta> meta_;
  SendBatch singles_;
  TokenBucket icmp_;
};

void TunToUdp::Run() {
  while (f_.WaitReadable(cfg_.tunFd, c_.tunThreadErrno, true)) {
    std::shared_ptr<const Table> table = f_.table();
    for (int reads = 0; !f_.stopping(); reads++) {
      if (reads == kReadsPerBatch) {  // send, and take a fresh table now and then on a busy TUN
        Flush();
        table = f_.table();
        reads = 0;
      }
      if (!ReadOne(*table)) break;
    }
    Flush();
    if (c_.tunThreadErrno.load() != 0) return;
  }
}

bool TunToUdp::ReadOne(const Table& t) {
  if (buf_.size() - used_ < kReadSlot) Flush();
  uint8_t* in = cfg_.vnetHdr ? slot_.data() : buf_.data() + used_;
  ssize_t got = sys_.Read(cfg_.tunFd, in, kReadSlot);
  if (got < 0) {
    if (errno == EINTR) return true;
    if (errno == EAGAIN) return false;
    f_.Fail(c_.tunThreadErrno, errno);
    return false;
  }
  if (got == 0) return false;  // drained, with or without a virtio header
  offload::VirtioNetHdr h;
  size_t skip = 0;
  if (cfg_.vnetHdr) {
    if (!offload::ParseVirtioNetHdr(in, static_cast<size_t>(got), &h)) {
      c_.Dropped(kMalformed);
      return true;
    }
    skip = offload::kVirtioNetHdrLen;
  }
  uint8_t* p = in + skip;
  size_t len = static_cast<size_t>(got) - skip;
  TunVerdict v = RouteFromTun(t, p, len);
  if (v.drop >= 0) {
    c_.Dropped(static_cast<Drop>(v.drop), v.route ? v.route->counters.get() : nullptr);
    if (v.drop == kNoRoute && v.icmp) NoRoute(p, len);
    return true;
  }
  offload::SegmentLayout lay{1, len, len};  // a plain TUN's packet is already in place
  if (cfg_.vnetHdr) {
    if (h.gso_type != offload::GSO_NONE) Add(c_.tsoReads);
    offload::Status st = offload::Segment(p, len, h, buf_.data() + used_, buf_.size() - used_, &lay);
    if (st == offload::Status::kNoSpace && used_ > 0) {
      Flush();
      st = offload::Segment(p, len, h, buf_.data(), buf_.size(), &lay);
    }
    if (st != offload::Status::kOk) {
      c_.Dropped(kMalformed, v.route->counters.get());
      return true;
    }
  }
  if (lay.stride > kGsoMaxBytes) {  // no UDP datagram can carry it: what sendmmsg would say, without asking
    c_.lastSendErrno.store(EMSGSIZE, std::memory_order_relaxed);
    c_.Dropped(kSendError, v.route->counters.get(), lay.count);
    return true;
  }
  Queue(v.route, buf_.data() + used_, lay.bytes, lay.stride, lay.count);
  used_ += lay.bytes;
  if (used_ >= kSendAt) Flush();
  return true;
}

void TunToUdp::NoRoute(const uint8_t* p, size_t len) {
  if (!icmp_.Take(sys_.NowNs())) {
    Add(c_.icmpSuppressed);
    return;
  }
  uint8_t icmp[kMaxIcmpError];
  offload::Slice s{icmp, BuildNetUnreachable(p, len, cfg_.ownIp, icmp)};
  if (f_.WriteTun(nullptr, &s, 1) == 0) {
    Add(c_.icmpSent);
  } else {
    c_.Dropped(kTunWriteError);
  }
}

// Queues `count` segments laid out at `data` with `stride` for `rt`: GSO chunks, or one message each.
void TunToUdp::Queue(const Route* rt, uint8_t* data, size_t bytes, size_t stride, size_t count) {
  size_t per = gsoOn_ ? std::max<size_t>(1, std::min(kGsoMaxSegs, kGsoMaxBytes / stride)) : 1;
  for (size_t first = 0; first < count; first += per) {
    if (batch_.full()) SendQueued();  // only the messages; buf_ stays valid until the next read
    size_t segs = std::min(per, count - first);
    size_t off = first * stride;
    size_t len = std::min(segs * stride, bytes - off);
    meta_[batch_.size()] = TxMeta{rt, data + off, len, stride, segs};
    batch_.Add(&rt->dst, data + off, len, segs > 1 ? static_cast<uint16_t>(stride) : 0);
  }
}

// Sends the queued messages; a GSO message the socket refuses goes again as single datagrams.
void TunToUdp::SendQueued() {
  size_t n = batch_.size(), off = 0;
  while (off < n) {
    int s = sys_.Sendmmsg(cfg_.udpFd, batch_.msgs() + off, static_cast<unsigned>(n - off), 0);
    if (s <= 0) {
      if (s < 0 && errno == EINTR) continue;
      int e = s < 0 ? errno : EIO;
      const TxMeta& m = meta_[off];
      if (m.segs > 1 && (e == EIO || e == EINVAL || e == ENOPROTOOPT || e == EOPNOTSUPP)) {
        // EIO: the route's device cannot checksum (GSO needs it); ENOPROTOOPT/EOPNOTSUPP: no
        // UDP_SEGMENT in this kernel. Both stay so: GSO goes off. EINVAL is about this message
        // (e.g. a segment larger than the path MTU): resend it, keep GSO.
        c_.lastGsoErrno.store(e, std::memory_order_relaxed);
        Add(c_.gsoFallbacks);
        if (e != EINVAL) gsoOn_ = false;
        SendSingly(m);
      } else {
        c_.lastSendErrno.store(e, std::memory_order_relaxed);
        c_.Dropped(kSendError, m.route->counters.get(), m.segs);
      }
      off++;
      continue;
    }
    for (size_t i = off; i < off + static_cast<size_t>(s); i++) {
      c_.Sent(meta_[i].route->counters.get(), meta_[i].segs, meta_[i].bytes);
      if (meta_[i].segs > 1) {
        Add(c_.gsoSends);
        Add(c_.gsoSegments, meta_[i].segs);
      }
    }
    off += static_cast<size_t>(s);
  }
  batch_.Clear();
}

// Sends the segments of one message as plain datagrams.
void TunToUdp::SendSingly(const TxMeta& m) {
  PeerCounters* pc = m.route->counters.get();
  for (size_t done = 0; done < m.segs;) {
    size_t n = std::min(m.segs - done, kGsoMaxSegs);
    singles_.Clear();
    for (size_t i = 0; i < n; i++) {
      size_t off = (done + i) * m.stride;
      singles_.Add(&m.route->dst, m.data + off, std::min(m.stride, m.bytes - off), 0);
    }
    size_t off = 0;
    while (off < n) {
      int s = sys_.Sendmmsg(cfg_.udpFd, singles_.msgs() + off, static_cast<unsigned>(n - off), 0);
      if (s <= 0) {
        if (s < 0 && errno == EINTR) continue;
        c_.lastSendErrno.store(s < 0 ? errno : EIO, std::memory_order_relaxed);
        c_.Dropped(kSendError, pc);
        off++;
        continue;
      }
      for (size_t i = off; i < off + static_cast<size_t>(s); i++) c_.Sent(pc, 1, singles_.msgs()[i].msg_hdr.msg_iov->iov_len);
      off += static_cast<size_t>(s);
    }
    done += n;
  }
}

}  // namespace

void Forwarder::RunTunToUdp() { TunToUdp(*this).Run(); }

}  // namespace weft
