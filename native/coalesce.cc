// Offload packet surgery, receive side: the Coalescer (see offload.h), which
// merges consecutive TCP segments (and, on a TUN with USO, UDP datagrams) of one
// flow into a super-packet for one TUN write.
//
// A merged packet goes to the TUN with F_NEEDS_CSUM (csum_start = the L4 header,
// csum_offset = 16 for TCP, 6 for UDP, the checksum field holding the folded
// pseudo-header sum), not F_DATA_VALID with a full checksum: on a write,
// tun_get_user -> virtio_net_hdr_to_skb honours only F_NEEDS_CSUM, turning it
// into CHECKSUM_PARTIAL with the transport header set, which both local receive
// and re-segmentation on forward (tcp4/6_gso_segment, __udp_gso_segment) take as
// is. F_DATA_VALID is defined for the kernel -> user direction and ignored on
// writes: the GSO skb would stay CHECKSUM_NONE with its transport header guessed
// by the flow dissector, and TCP would then check one checksum over the whole
// super-packet, which no segment's checksum equals. (wireguard-go's TUN GRO does
// the same.)
#include "offload.h"

#include "offload-parse.h"

#include <cstring>

namespace weft {
namespace offload {

using namespace parse;

namespace {

struct Seg {
  int version = 0;
  uint8_t proto = 0;
  size_t ipHdrLen = 0, l4HdrLen = 0, payload = 0;
  uint8_t flags = 0;  // TCP
  uint32_t seq = 0;   // TCP
  bool mergeable = false;
};

// Whether p is a well-formed TCP segment or (udp) UDP datagram, then it belongs to a
// flow, and whether it may be part of a super-packet. l4Verified: its bytes were checked
// on the way in (see Coalescer::Add), so its L4 checksum is not summed again here.
bool ParseSeg(const uint8_t* p, size_t len, bool udp, bool l4Verified, Seg* s) {
  Ip ip;
  if (ParseIp(p, len, &ip) != Status::kOk) return false;
  s->version = ip.version;
  s->proto = ip.proto;
  s->ipHdrLen = ip.hdrLen;
  const uint8_t* t = p + ip.hdrLen;
  // Below kMinGsoSize a segment stays alone: a merged packet must be one Segment() would split.
  bool ipOk = ip.len == len && (ip.version == 6 || (ip.hdrLen == 20 && (Be16(p + 6) & IP_DF)));
  if (ip.proto == kIpprotoTcp) {
    if (TcpHdrLen(p, ip.hdrLen, ip.len, &s->l4HdrLen) != Status::kOk) return false;
    s->payload = ip.len - ip.hdrLen - s->l4HdrLen;
    s->flags = t[13];
    s->seq = Be32(t + 4);
    // An urgent pointer without URG means nothing, but re-segmentation would not keep it
    // (each segment gets the first one's header): such a segment stays alone, unchanged.
    s->mergeable = ipOk && s->payload >= kMinGsoSize && !(s->flags & (TH_SYN | TH_RST | TH_URG)) && Be16(t + 18) == 0;
  } else if (ip.proto == kIpprotoUdp && udp) {
    if (ip.len < ip.hdrLen + 8) return false;
    s->l4HdrLen = 8;
    s->payload = ip.len - ip.hdrLen - 8;
    // The UDP length must be the IP payload's: a shorter one would hide trailing bytes that
    // re-segmentation would turn into payload.
    s->mergeable = ipOk && s->payload >= kMinGsoSize && Be16(t + 4) == ip.len - ip.hdrLen;
  } else {
    return false;
  }
  if (s->mergeable) {
    // The super-packet goes with a partial checksum the kernel trusts: a segment whose bytes
    // nothing has checked yet is verified here, so that merging never launders a corrupt one.
    if (ip.version == 4 && Fold(Sum(p, 20)) != 0xffff) s->mergeable = false;
    uint32_t l4Len = static_cast<uint32_t>(ip.len - ip.hdrLen);
    bool noUdpSum = ip.proto == kIpprotoUdp && ip.version == 4 && Be16(t + 6) == 0;  // IPv4 UDP without a checksum
    if (!l4Verified && !noUdpSum && Fold(Sum(t, l4Len, PseudoHeaderSum(p, ip.version, ip.proto, l4Len))) != 0xffff) s->mergeable = false;
    if (ip.proto == kIpprotoUdp && ip.version == 6 && Be16(t + 6) == 0) s->mergeable = false;  // invalid over IPv6
  }
  return true;
}

bool SameFlow(const uint8_t* a, size_t aIpHdrLen, int aVersion, uint8_t aProto, const uint8_t* b, const Seg& s) {
  if (aVersion != s.version || aProto != s.proto) return false;
  bool addrs = aVersion == 4 ? std::memcmp(a + 12, b + 12, 8) == 0 : std::memcmp(a + 8, b + 8, 32) == 0;
  return addrs && std::memcmp(a + aIpHdrLen, b + s.ipHdrLen, 4) == 0;  // the ports
}

}  // namespace

Coalescer::Coalescer() : Coalescer(Options()) {}
Coalescer::Coalescer(const Options& o) : opt_(o) {
  if (opt_.maxPacketBytes > kMaxIpPacket) opt_.maxPacketBytes = kMaxIpPacket;
  if (opt_.maxOpenFlows == 0) opt_.maxOpenFlows = 1;
  if (opt_.maxSegments == 0) opt_.maxSegments = 1;
}

void Coalescer::Reset() {
  used_ = 0;
  open_.clear();
  finished_ = false;
}

Coalescer::Item& Coalescer::NewItem() {
  if (used_ == items_.size()) items_.emplace_back();
  Item& it = items_[used_++];
  it.hdr = VirtioNetHdr{};
  it.slices.clear();
  it.segs = 1;
  it.payload = 0;
  it.lastFlags = 0;
  it.open = false;
  it.udp = false;
  return it;
}

void Coalescer::Close(size_t k) {
  items_[open_[k]].open = false;
  open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(k));
}

void Coalescer::Add(const uint8_t* p, size_t len, uint32_t tag, bool l4Verified) {
  if (finished_) Reset();
  packetsIn_++;
  Seg s;
  if (ParseSeg(p, len, opt_.udp, l4Verified, &s)) {
    const bool udp = s.proto == kIpprotoUdp;
    for (size_t k = 0; k < open_.size(); k++) {
      Item& it = items_[open_[k]];
      const uint8_t* h = it.first;
      if (!SameFlow(h, it.ipHdrLen, h[0] >> 4, it.udp ? kIpprotoUdp : kIpprotoTcp, p, s)) continue;
      const uint8_t* ht = h + it.ipHdrLen;
      const uint8_t* pt = p + s.ipHdrLen;
      bool ipSame = s.version == 4 ? h[1] == p[1] && h[8] == p[8]                       // TOS, TTL
                                   : std::memcmp(h, p, 4) == 0 && h[7] == p[7];  // class + flow label, hop limit
      bool l4Same = udp || (s.l4HdrLen == it.l4HdrLen && s.seq == it.nextSeq &&
                            !(s.flags & TH_CWR) && (s.flags & ~(TH_PSH | TH_FIN)) == (ht[13] & ~TH_CWR) &&
                            std::memcmp(ht + 8, pt + 8, 5) == 0 &&                   // ACK number, data offset
                            std::memcmp(ht + 14, pt + 14, 2) == 0 &&                 // window
                            std::memcmp(ht + 20, pt + 20, s.l4HdrLen - 20) == 0);    // options
      bool merge = s.mergeable && ipSame && l4Same && s.payload <= it.gsoSize && it.segs < opt_.maxSegments &&
                   it.ipHdrLen + it.l4HdrLen + it.payload + s.payload <= opt_.maxPacketBytes;
      if (merge) {
        it.slices.push_back(Slice{pt + s.l4HdrLen, s.payload});
        it.payload += s.payload;
        it.segs++;
        it.nextSeq += static_cast<uint32_t>(s.payload);
        it.lastFlags = s.flags;
        if (s.payload < it.gsoSize || (s.flags & (TH_PSH | TH_FIN)) || it.segs == opt_.maxSegments) Close(k);
        return;
      }
      Close(k);  // later segments of this flow must not jump ahead of p
      break;
    }
    if (s.mergeable) {
      Item& it = NewItem();
      it.first = p;
      it.firstLen = len;
      it.tag = tag;
      it.udp = udp;
      it.ipHdrLen = s.ipHdrLen;
      it.l4HdrLen = s.l4HdrLen;
      it.gsoSize = s.payload;
      it.payload = s.payload;
      it.nextSeq = s.seq + static_cast<uint32_t>(s.payload);
      it.lastFlags = s.flags;
      it.slices.push_back(Slice{p, len});  // replaced by the rewritten header if others join
      it.slices.push_back(Slice{p + s.ipHdrLen + s.l4HdrLen, s.payload});
      if (!(s.flags & (TH_PSH | TH_FIN)) && opt_.maxSegments > 1 && s.ipHdrLen + s.l4HdrLen + 2 * s.payload <= opt_.maxPacketBytes) {
        if (open_.size() >= opt_.maxOpenFlows) Close(0);
        it.open = true;
        open_.push_back(used_ - 1);
      }
      return;
    }
  }
  Item& it = NewItem();
  it.first = p;
  it.firstLen = len;
  it.tag = tag;
  it.slices.push_back(Slice{p, len});
}

void Coalescer::FinishItem(Item& it) {
  if (it.segs < 2) {
    it.hdr = VirtioNetHdr{};
    it.slices[0] = Slice{it.first, it.firstLen};
    it.bytes = it.firstLen;
    return;
  }
  const int version = it.first[0] >> 4;
  const size_t hl = it.ipHdrLen + it.l4HdrLen;
  const size_t total = hl + it.payload;
  uint8_t* h = it.head;
  std::memcpy(h, it.first, hl);
  if (version == 4) {
    Put16(h + 2, static_cast<uint16_t>(total));
    Put16(h + 10, 0);
    Put16(h + 10, Checksum(h, it.ipHdrLen));
  } else {
    Put16(h + 4, static_cast<uint16_t>(total - 40));
  }
  uint8_t* t = h + it.ipHdrLen;
  const uint32_t l4Len = static_cast<uint32_t>(it.l4HdrLen + it.payload);
  const uint8_t proto = it.udp ? kIpprotoUdp : kIpprotoTcp;
  it.hdr.flags = F_NEEDS_CSUM;
  it.hdr.hdr_len = static_cast<uint16_t>(hl);
  it.hdr.gso_size = static_cast<uint16_t>(it.gsoSize);
  it.hdr.csum_start = static_cast<uint16_t>(it.ipHdrLen);
  if (it.udp) {
    Put16(t + 4, static_cast<uint16_t>(l4Len));
    Put16(t + 6, Fold(PseudoHeaderSum(h, version, proto, l4Len)));
    it.hdr.gso_type = GSO_UDP_L4;
    it.hdr.csum_offset = 6;
  } else {
    t[13] |= it.lastFlags & (TH_PSH | TH_FIN);
    Put16(t + 16, Fold(PseudoHeaderSum(h, version, proto, l4Len)));
    it.hdr.gso_type = static_cast<uint8_t>((version == 4 ? GSO_TCPV4 : GSO_TCPV6) | ((t[13] & TH_CWR) ? GSO_ECN : 0));
    it.hdr.csum_offset = 16;
  }
  it.slices[0] = Slice{h, hl};
  it.bytes = total;
  superPackets_++;
  mergedSegments_ += it.segs;
}

void Coalescer::Finish() {
  if (finished_) return;
  for (size_t i = 0; i < used_; i++) FinishItem(items_[i]);
  open_.clear();
  finished_ = true;
}

CoalescedPacket Coalescer::Output(size_t i) const {
  const Item& it = items_[i];
  return CoalescedPacket{it.hdr, it.slices.data(), it.segs < 2 ? size_t{1} : it.slices.size(), it.bytes, it.tag};
}

std::vector<OutPacket> Coalesce(const std::vector<std::vector<uint8_t>>& in, const Coalescer::Options& o) {
  Coalescer c(o);
  for (const auto& p : in) c.Add(p.data(), p.size());
  c.Finish();
  std::vector<OutPacket> out(c.OutputCount());
  for (size_t i = 0; i < out.size(); i++) {
    CoalescedPacket cp = c.Output(i);
    out[i].hdr = cp.hdr;
    out[i].bytes.reserve(cp.bytes);
    for (size_t k = 0; k < cp.sliceCount; k++) out[i].bytes.insert(out[i].bytes.end(), cp.slices[k].data, cp.slices[k].data + cp.slices[k].len);
  }
  return out;
}

}  // namespace offload
}  // namespace weft
