// The TUN -> UDP loop of one worker (see forwarder.h). One path for both TUN kinds:
// each read lands in the read arena and stays there until it is sent; what is sent
// points into it (scatter-gather), nothing is copied on the way:
//   plain TUN:  each read is one IP packet, sent as it is, one datagram.
//   vnetHdr:    each read is a virtio_net_hdr and an IP packet of up to 64 KiB. A
//               TSO/USO super-packet is split without copying its payload
//               (offload::PlanSplit): each segment is its rewritten headers (in the
//               header arena) and a slice of the payload in the read arena. A plain
//               packet gets its partial checksum completed in place.
// Segments to one peer of one size (the last may be shorter) go out as one
// UDP_SEGMENT (GSO) message, also across reads: the segments of consecutive
// super-packets of a flow, or consecutive small packets of equal size, so a
// 64 KiB read that splits into 47 segments adds no second small message of its
// own. Plain datagrams where the socket refuses GSO.
#include "forwarder.h"
#include "ipv4.h"
#include "udp-batch.h"

#include <algorithm>
#include <cerrno>

namespace weft {

namespace {

// Reads between two looks at the current table, and at most between two sends.
constexpr int kReadsPerBatch = 64;
// One read: the virtio header and a whole IP packet (+1: a read that fills it was truncated).
constexpr size_t kReadSlot = offload::kVirtioNetHdrLen + offload::kMaxIpPacket + 1;
// Reads collect in the arena until a send; sending every ~256 KiB keeps what was just
// read in cache for the kernel's copy.
constexpr size_t kArena = 1024 * 1024;
constexpr size_t kSendAt = 256 * 1024;
// Rewritten segment headers: room for two super-packets of the most segments with the
// longest headers (IPv4 60 + TCP 60), so the worst one always fits after a send.
constexpr size_t kMaxHdr = 120;
constexpr size_t kHdrArena = 2 * offload::kMaxSegments * kMaxHdr;
// iovecs: two per segment (headers, payload), the same two super-packets' worth.
constexpr size_t kIovs = 2 * 2 * offload::kMaxSegments;
constexpr size_t kMaxMsgs = 256;  // messages per sendmmsg
static_assert(kArena >= kSendAt + 2 * kReadSlot, "a read always fits below the send threshold's overshoot");

class TunToUdp {
 public:
  TunToUdp(Forwarder& f, size_t w)
      : f_(f), w_(w), c_(f.counters(w)), sys_(f.sys()), cfg_(f.config()), tunFd_(cfg_.tunFds[w]), udpFd_(f.txFd(w)),
        gsoOn_(cfg_.udpGso), arena_(kArena), hdrs_(cfg_.vnetHdr ? kHdrArena : 0), batch_(kMaxMsgs, kIovs), meta_(kMaxMsgs),
        singles_(kGsoMaxSegs, 0) {}

  void Run();

 private:
  // One message of a send batch: `segs` inner packets of `stride` bytes (the last may be
  // shorter), `bytes` in all, to one peer. `open`: later segments may still join it.
  struct TxMeta {
    const Route* route;
    size_t bytes, stride, segs, maxSegs;
    bool open;
  };

  bool ReadOne(const Table& t);  // false once the TUN is drained (or failed)
  void IcmpError(int drop, const uint8_t* p, size_t len);
  // Queues one inner packet of len bytes for rt, made of 1 or 2 parts.
  void AddSegment(const Route* rt, const iovec* parts, size_t n, size_t len);
  void SendQueued();
  void SendSingly(size_t msg);  // GSO refused: one datagram per segment
  void Flush() {
    SendQueued();
    used_ = hdrUsed_ = 0;
  }

  Forwarder& f_;
  const size_t w_;
  Counters& c_;
  Syscalls& sys_;
  const ForwarderConfig& cfg_;
  const int tunFd_, udpFd_;
  bool gsoOn_;
  std::vector<uint8_t> arena_;
  size_t used_ = 0;  // bytes of arena_ holding queued packets
  std::vector<uint8_t> hdrs_;
  size_t hdrUsed_ = 0;
  SendBatch batch_;
  std::vector<TxMeta> meta_;
  SendBatch singles_;
};

void TunToUdp::Run() {
  while (f_.WaitReadable(tunFd_, c_.tunThreadErrno, true)) {
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
  // Room for the worst read: a whole slot, and the headers and iovecs of the most segments.
  if (arena_.size() - used_ < kReadSlot || hdrs_.size() - hdrUsed_ < hdrs_.size() / 2 || batch_.iovFree() < kIovs / 2) Flush();
  uint8_t* in = arena_.data() + used_;
  ssize_t got = sys_.Read(tunFd_, in, kReadSlot);
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
    if (v.icmp) IcmpError(v.drop, p, len);
    return true;
  }
  PeerCounters* pc = v.route->counters.get();
  if (!cfg_.vnetHdr || (h.gso_type & static_cast<uint8_t>(~offload::GSO_ECN)) == offload::GSO_NONE) {
    if (cfg_.vnetHdr && offload::CompleteChecksum(p, len, h) != offload::Status::kOk) {
      c_.Dropped(kMalformed, pc);
      return true;
    }
    if (len > kGsoMaxBytes) {  // no UDP datagram can carry it: what sendmmsg would say, without asking
      c_.lastSendErrno.store(EMSGSIZE, std::memory_order_relaxed);
      c_.Dropped(kSendError, pc);
      return true;
    }
    iovec part{p, len};
    AddSegment(v.route, &part, 1, len);
  } else {
    Add(c_.tsoReads);
    offload::SplitPlan plan;
    if (offload::PlanSplit(p, len, h, &plan) != offload::Status::kOk) {
      c_.Dropped(kMalformed, pc);
      return true;
    }
    if (plan.SegmentLen(0) > kGsoMaxBytes) {
      c_.lastSendErrno.store(EMSGSIZE, std::memory_order_relaxed);
      c_.Dropped(kSendError, pc, plan.count);
      return true;
    }
    // plan.count <= kMaxSegments and plan.hdrLen <= kMaxHdr: the check above left room.
    for (size_t i = 0; i < plan.count; i++) {
      uint8_t* hdr = hdrs_.data() + hdrUsed_;
      offload::WriteSegmentHeader(p, plan, i, hdr);
      hdrUsed_ += plan.hdrLen;
      size_t n = plan.PayloadLen(i);
      iovec parts[2] = {{hdr, plan.hdrLen}, {p + plan.hdrLen + i * plan.mss, n}};
      AddSegment(v.route, parts, n > 0 ? 2 : 1, plan.hdrLen + n);
    }
  }
  used_ = std::min(arena_.size(), used_ + ((static_cast<size_t>(got) + 63) & ~size_t{63}));  // the next read on its own cache line
  if (used_ >= kSendAt) Flush();
  return true;
}

void TunToUdp::IcmpError(int drop, const uint8_t* p, size_t len) {
  if ((p[0] >> 4) == 6 && !cfg_.hasOwnIp6) return;  // no IPv6 in this network: nothing to answer from
  if (!f_.TakeIcmpToken()) {
    Add(c_.icmpSuppressed);
    return;
  }
  uint8_t icmp[kMaxIcmpError];
  offload::Slice s{icmp, BuildTunError(drop, p, len, cfg_.ownIp, cfg_.ownIp6, icmp)};
  if (f_.WriteTun(w_, nullptr, &s, 1) == 0) {
    Add(c_.icmpSent);
  } else {
    c_.Dropped(kTunWriteError);
  }
}

void TunToUdp::AddSegment(const Route* rt, const iovec* parts, size_t n, size_t len) {
  TxMeta* m = batch_.size() > 0 ? &meta_[batch_.size() - 1] : nullptr;
  // It joins the last message when that goes to the same peer, is still open, takes
  // segments of this size (a shorter one ends it) and has room for it.
  bool join = m && m->open && m->route == rt && len <= m->stride && m->segs < m->maxSegs && m->bytes + len <= kGsoMaxBytes &&
              batch_.iovFree() >= n;
  if (!join) {
    if (batch_.full() || batch_.iovFree() < n) SendQueued();  // only the messages: the arenas stay valid until the next read
    batch_.Open(&rt->dst);
    m = &meta_[batch_.size() - 1];
    size_t maxSegs = gsoOn_ ? std::max<size_t>(1, std::min(kGsoMaxSegs, kGsoMaxBytes / len)) : 1;
    *m = TxMeta{rt, 0, len, 0, maxSegs, true};
  }
  for (size_t i = 0; i < n; i++) batch_.Append(parts[i].iov_base, parts[i].iov_len);
  m->segs++;
  m->bytes += len;
  if (m->segs == 2) batch_.SetSegSize(static_cast<uint16_t>(m->stride));
  if (len < m->stride || m->segs == m->maxSegs) m->open = false;
}

// Sends the queued messages; a GSO message the socket refuses goes again as single datagrams.
void TunToUdp::SendQueued() {
  size_t n = batch_.size(), off = 0;
  while (off < n) {
    int s = sys_.Sendmmsg(udpFd_, batch_.msgs() + off, static_cast<unsigned>(n - off), 0);
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
        SendSingly(off);
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

// Sends the segments of message `msg` as plain datagrams, each its own run of the message's
// iovecs: a segment is made of whole iovecs, `stride` bytes (the last may be shorter).
void TunToUdp::SendSingly(size_t msg) {
  const TxMeta& m = meta_[msg];
  PeerCounters* pc = m.route->counters.get();
  const msghdr& src = batch_.msgs()[msg].msg_hdr;
  size_t k = 0;  // the next iovec of src
  for (size_t done = 0; done < m.segs;) {
    size_t n = std::min(m.segs - done, kGsoMaxSegs);
    singles_.Clear();
    for (size_t i = 0; i < n && k < src.msg_iovlen; i++) {
      singles_.Open(&m.route->dst);
      mmsghdr& one = singles_.msgs()[singles_.size() - 1];
      one.msg_hdr.msg_iov = &src.msg_iov[k];
      size_t bytes = 0;
      while (k < src.msg_iovlen && bytes < m.stride) bytes += src.msg_iov[k++].iov_len, one.msg_hdr.msg_iovlen++;
    }
    size_t count = singles_.size(), off = 0;
    while (off < count) {
      int s = sys_.Sendmmsg(udpFd_, singles_.msgs() + off, static_cast<unsigned>(count - off), 0);
      if (s <= 0) {
        if (s < 0 && errno == EINTR) continue;
        c_.lastSendErrno.store(s < 0 ? errno : EIO, std::memory_order_relaxed);
        c_.Dropped(kSendError, pc);
        off++;
        continue;
      }
      for (size_t i = off; i < off + static_cast<size_t>(s); i++) {
        const msghdr& h = singles_.msgs()[i].msg_hdr;
        size_t bytes = 0;
        for (size_t j = 0; j < h.msg_iovlen; j++) bytes += h.msg_iov[j].iov_len;
        c_.Sent(pc, 1, bytes);
      }
      off += static_cast<size_t>(s);
    }
    done += n;
  }
}

}  // namespace

void Forwarder::RunTunToUdp(size_t w) { TunToUdp(*this, w).Run(); }

}  // namespace weft
