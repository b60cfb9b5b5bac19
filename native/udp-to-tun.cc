// The UDP -> TUN loop of one worker (see forwarder.h). One path for both TUN kinds: every
// datagram is checked on its own (ipv4.h CheckDatagram: a known peer, from inside
// its subnet, to inside ours), then
//   plain TUN:  written to the TUN as it came, one write each;
//   vnetHdr:    consecutive segments of one TCP flow (and, on a TUN that takes
//               USO writes, datagrams of one UDP flow) are merged
//               (offload::Coalescer) and written as one super-packet behind a
//               virtio GSO header; everything else behind an all-zero header.
// With UDP_GRO one received message may hold a run of datagrams from one sender.
#include "forwarder.h"
#include "ipv4.h"
#include "udp-batch.h"

#include <cerrno>

namespace weft {

namespace {

constexpr size_t kRxSlot = 65536;  // a datagram, or a GRO message, never exceeds 64 KiB
// Messages per recvmmsg: without GRO, 64 datagrams (one each); with GRO each may be a
// 64 KiB run, and the batch is read again by the TUN writes, so it stays within L2
// (16 x 64 KiB = 1 MiB). It is UDP_GRO that decides, not the TUN kind: with more than
// one worker the sockets have no GRO, and 16 single datagrams per call would cost a
// system call per 16 segments of a TCP stream.
constexpr size_t kRxBatchPlain = 64;
constexpr size_t kRxBatchGro = 16;

offload::Coalescer::Options CoalescerOptions(const ForwarderConfig& c) {
  offload::Coalescer::Options o;
  o.maxSegments = kMaxTunIov - 2;  // written as virtio header + merged header + one slice per segment
  o.udp = c.tunUso;
  return o;
}

class UdpToTun {
 public:
  UdpToTun(Forwarder& f, size_t w)
      : f_(f), w_(w), c_(f.counters(w)), sys_(f.sys()), cfg_(f.config()), udpFd_(cfg_.udpFds[w]),
        batch_(cfg_.udpGro ? kRxBatchGro : kRxBatchPlain, kRxSlot, cfg_.udpGro), peerOf_(batch_.capacity()),
        coal_(CoalescerOptions(cfg_)) {}

  void Run();

 private:
  void Deliver(const Table& t, size_t i);  // message i of the batch
  void Write(const offload::CoalescedPacket& cp, PeerCounters* pc);

  Forwarder& f_;
  const size_t w_;
  Counters& c_;
  Syscalls& sys_;
  const ForwarderConfig& cfg_;
  const int udpFd_;
  RecvBatch batch_;
  std::vector<PeerCounters*> peerOf_;  // the sender of each message, once one of its datagrams passed
  offload::Coalescer coal_;
};

void UdpToTun::Run() {
  // A UDP socket's POLLERR is a queued ICMP error, surfaced (and cleared) by recvmmsg below.
  while (f_.WaitReadable(udpFd_, c_.udpThreadErrno, false)) {
    for (;;) {
      if (f_.stopping()) return;
      batch_.Prepare();
      int n = sys_.Recvmmsg(udpFd_, batch_.msgs(), static_cast<unsigned>(batch_.capacity()), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        // ICMP errors queued on the socket surface here (e.g. ECONNREFUSED); they end nothing.
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
        f_.Fail(c_.udpThreadErrno, errno);
        return;
      }
      std::shared_ptr<const Table> table = f_.table();
      for (size_t i = 0; i < static_cast<size_t>(n); i++) Deliver(*table, i);
      // One coalescer per recvmmsg batch, not per message: segments of one flow merge across
      // all the GRO messages of the batch (which stay untouched until these writes), so a
      // super-packet's size is bounded by the coalescer's caps alone, never by a message.
      if (cfg_.vnetHdr) {
        coal_.Finish();
        for (size_t k = 0; k < coal_.OutputCount(); k++) {
          offload::CoalescedPacket cp = coal_.Output(k);
          Write(cp, peerOf_[cp.tag]);
        }
        coal_.Reset();
      }
      if (static_cast<size_t>(n) < batch_.capacity()) break;
    }
  }
}

void UdpToTun::Deliver(const Table& t, size_t i) {
  const uint8_t* base = batch_.data(i);
  size_t len = batch_.len(i);
  uint8_t src[16];
  batch_.from(i, src);
  peerOf_[i] = nullptr;
  if (batch_.truncated(i) || len == 0) {
    PeerCounters* pc = nullptr;
    int why = CheckDatagram(t, cfg_.ownSubnets, cfg_.ownSubnets6, src, base, 0, &pc);
    c_.Dropped(why == kUnknownPeer ? kUnknownPeer : kMalformed, pc);
    return;
  }
  size_t seg = batch_.segSize(i);
  // A message of several datagrams was put together by the kernel's UDP GRO (or sent as one
  // UDP_SEGMENT message on this host), and either takes only datagrams with a non-zero UDP
  // checksum (udp_gro_receive_segment: "requires non zero csum, for symmetry with GSO";
  // udp_send_skb refuses GSO without one), each verified before it joined (udp4/6_gro_receive).
  // That checksum covers every byte of the inner packet, so the coalescer need not sum the
  // inner TCP/UDP checksum again before it merges. A single datagram may have come with
  // none (IPv4 allows it, and recvmsg cannot say): its inner checksum is still verified.
  // This is about integrity, not security: a sender can forge any checksum it likes.
  const bool verified = seg < len;
  if (verified) {
    Add(c_.groReceives);
    Add(c_.groSegments, (len + seg - 1) / seg);
  }
  // One sender for the whole message; each datagram in it is checked on its own.
  for (size_t off = 0; off < len; off += seg) {
    const uint8_t* p = base + off;
    size_t l = std::min(seg, len - off);
    PeerCounters* pc = nullptr;
    int why = CheckDatagram(t, cfg_.ownSubnets, cfg_.ownSubnets6, src, p, l, &pc);
    if (why >= 0) {
      c_.Dropped(static_cast<Drop>(why), pc);
      continue;
    }
    peerOf_[i] = pc;
    if (cfg_.vnetHdr) {
      coal_.Add(p, l, static_cast<uint32_t>(i), verified);
    } else {
      offload::Slice s{p, l};
      Write(offload::CoalescedPacket{offload::VirtioNetHdr{}, &s, 1, l, 0}, pc);
    }
  }
}

void UdpToTun::Write(const offload::CoalescedPacket& cp, PeerCounters* pc) {
  bool merged = cp.hdr.gso_type != offload::GSO_NONE;
  size_t hl = cp.hdr.hdr_len;
  size_t segs = merged ? cp.sliceCount - 1 : 1;
  size_t bytes = cp.bytes + (segs - 1) * hl;  // the inner packets as they arrived
  int err = f_.WriteTun(w_, &cp.hdr, cp.slices, cp.sliceCount);
  if (err == 0) {
    if (merged) {
      Add(c_.coalescedWrites);
      Add(c_.mergedSegments, segs);
    }
    c_.Received(pc, segs, bytes);
    return;
  }
  if (merged && (err == EINVAL || err == EMSGSIZE)) {
    // The TUN refused the super-packet (or it has more slices than a write takes): write the
    // segments as they came (each one's own headers lie right before its payload in the
    // receive buffer).
    Add(c_.mergeFallbacks);
    // A kernel that offered USO but refuses it on writes: merge no more UDP on this worker.
    if (cp.hdr.gso_type == offload::GSO_UDP_L4) coal_.SetUdp(false);
    for (size_t s = 1; s < cp.sliceCount; s++) {
      offload::Slice one{cp.slices[s].data - hl, hl + cp.slices[s].len};
      if (f_.WriteTun(w_, nullptr, &one, 1) == 0) {
        c_.Received(pc, 1, one.len);
      } else {
        c_.Dropped(kTunWriteError, pc);
      }
    }
    return;
  }
  c_.Dropped(kTunWriteError, pc, segs);
}

}  // namespace

void Forwarder::RunUdpToTun(size_t w) { UdpToTun(*this, w).Run(); }

}  // namespace weft
