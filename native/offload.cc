// Offload packet surgery: see offload.h. Byte offsets below are those of the
// IPv4 (RFC 791), IPv6 (RFC 8200), TCP (RFC 9293) and UDP (RFC 768) headers.
#include "offload.h"

#include <algorithm>
#include <cstring>

namespace weft {
namespace offload {

namespace {

constexpr uint8_t kIpprotoTcp = 6;
constexpr uint8_t kIpprotoUdp = 17;
constexpr uint8_t TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_PSH = 0x08, TH_URG = 0x20, TH_CWR = 0x80;
constexpr uint16_t IP_DF = 0x4000, IP_MF_OFFSET = 0x3fff;

struct Ip {
  int version = 0;
  size_t hdrLen = 0;  // = offset of the L4 header (no IPv6 extension headers are accepted)
  size_t len = 0;     // the IP packet's own length, <= the buffer
  uint8_t proto = 0;
};

Status ParseIp(const uint8_t* p, size_t len, Ip* ip) {
  if (len < 1) return Status::kTruncated;
  ip->version = p[0] >> 4;
  if (ip->version == 4) {
    if (len < 20) return Status::kTruncated;
    ip->hdrLen = (p[0] & 0x0fu) * 4u;
    if (ip->hdrLen < 20 || ip->hdrLen > len) return Status::kBadIpHeader;
    ip->len = Be16(p + 2);
    if (ip->len < ip->hdrLen || ip->len > len) return Status::kBadIpLength;
    if (Be16(p + 6) & IP_MF_OFFSET) return Status::kFragment;
    ip->proto = p[9];
    return Status::kOk;
  }
  if (ip->version == 6) {
    if (len < 40) return Status::kTruncated;
    ip->hdrLen = 40;
    ip->len = 40u + Be16(p + 4);
    if (ip->len > len) return Status::kBadIpLength;
    ip->proto = p[6];
    return Status::kOk;
  }
  return Status::kBadIpVersion;
}

// TCP header length at l4 within an IP packet of ipLen bytes, or 0 when malformed.
Status TcpHdrLen(const uint8_t* p, size_t l4, size_t ipLen, size_t* out) {
  if (ipLen < l4 + 20) return Status::kTruncated;
  size_t n = (p[l4 + 12] >> 4) * 4u;
  if (n < 20 || l4 + n > ipLen) return Status::kBadL4Header;
  *out = n;
  return Status::kOk;
}

uint32_t PseudoHeaderSum(const uint8_t* ip, int version, uint8_t proto, uint32_t l4Len) {
  return version == 4 ? PseudoHeaderSumV4(ip + 12, ip + 16, proto, l4Len) : PseudoHeaderSumV6(ip + 8, ip + 24, proto, l4Len);
}

// Completes the checksum of a packet whose field at start + off holds the
// pseudo-header sum, as the kernel's skb_checksum_help does (0 is sent as
// 0xffff, which UDP requires and TCP accepts: both are ones'-complement zero).
void CompletePartial(uint8_t* p, size_t len, size_t start, size_t off) {
  uint16_t c = Checksum(p + start, len - start);
  Put16(p + start + off, c == 0 ? 0xffff : c);
}

// The IP header's length (the first byte of the L4 header) for a checksum offload, or an error.
Status IpHeaderLen(const uint8_t* p, size_t len, size_t* out) {
  if (len < 1) return Status::kTruncated;
  if ((p[0] >> 4) == 6) {
    if (len < 40) return Status::kTruncated;
    *out = 40;
    return Status::kOk;
  }
  if ((p[0] >> 4) != 4) return Status::kBadIpVersion;
  if (len < 20) return Status::kTruncated;
  *out = (p[0] & 0x0fu) * 4u;
  return *out < 20 || *out > len ? Status::kBadIpHeader : Status::kOk;
}

Status SegmentNone(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, uint8_t* out, size_t cap, SegmentLayout* layout) {
  bool partial = h.flags & F_NEEDS_CSUM;
  if (partial) {
    // The checksum goes into the L4 header, never into the IP header: a packet is routed by
    // its IP header before it is written out, so the field must not move its destination.
    size_t l3 = 0;
    Status st = IpHeaderLen(pkt, len, &l3);
    if (st != Status::kOk) return st;
    if (h.csum_start < l3 || h.csum_start > len || size_t{h.csum_offset} + 2 > len - h.csum_start) return Status::kBadCsumOffsets;
  }
  *layout = SegmentLayout{1, len, len};
  if (len > cap) return Status::kNoSpace;
  std::memcpy(out, pkt, len);
  if (partial) CompletePartial(out, len, h.csum_start, h.csum_offset);
  return Status::kOk;
}

}  // namespace

const char* StatusName(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kTruncated: return "truncated";
    case Status::kBadIpVersion: return "bad_ip_version";
    case Status::kBadIpHeader: return "bad_ip_header";
    case Status::kBadIpLength: return "bad_ip_length";
    case Status::kFragment: return "fragment";
    case Status::kUnsupportedProtocol: return "unsupported_protocol";
    case Status::kBadL4Header: return "bad_l4_header";
    case Status::kBadGsoType: return "bad_gso_type";
    case Status::kBadGsoSize: return "bad_gso_size";
    case Status::kTooManySegments: return "too_many_segments";
    case Status::kBadHdrLen: return "bad_hdr_len";
    case Status::kBadCsumOffsets: return "bad_csum_offsets";
    case Status::kNoSpace: return "no_space";
  }
  return "unknown";
}

bool ParseVirtioNetHdr(const uint8_t* p, size_t len, VirtioNetHdr* out) {
  if (len < kVirtioNetHdrLen) return false;
  out->flags = p[0];
  out->gso_type = p[1];
  out->hdr_len = Le16(p + 2);
  out->gso_size = Le16(p + 4);
  out->csum_start = Le16(p + 6);
  out->csum_offset = Le16(p + 8);
  return true;
}

void WriteVirtioNetHdr(const VirtioNetHdr& h, uint8_t* out) {
  out[0] = h.flags;
  out[1] = h.gso_type;
  PutLe16(out + 2, h.hdr_len);
  PutLe16(out + 4, h.gso_size);
  PutLe16(out + 6, h.csum_start);
  PutLe16(out + 8, h.csum_offset);
}

// ---- Segment ----

Status Segment(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, uint8_t* out, size_t cap, SegmentLayout* layout) {
  *layout = SegmentLayout{};
  if (len < 1) return Status::kTruncated;
  if (h.hdr_len > len) return Status::kBadHdrLen;
  uint8_t type = h.gso_type & static_cast<uint8_t>(~GSO_ECN);
  if (type == GSO_NONE) return SegmentNone(pkt, len, h, out, cap, layout);
  if (type != GSO_TCPV4 && type != GSO_TCPV6 && type != GSO_UDP_L4) return Status::kBadGsoType;
  if (h.gso_size < kMinGsoSize) return Status::kBadGsoSize;

  Ip ip;
  Status st = ParseIp(pkt, len, &ip);
  if (st != Status::kOk) return st;
  if ((type == GSO_TCPV4 && ip.version != 4) || (type == GSO_TCPV6 && ip.version != 6)) return Status::kBadIpVersion;
  bool tcp = type != GSO_UDP_L4;
  if (ip.proto != (tcp ? kIpprotoTcp : kIpprotoUdp)) return Status::kUnsupportedProtocol;
  size_t l4 = ip.hdrLen, l4HdrLen = 8;
  if (tcp) {
    st = TcpHdrLen(pkt, l4, ip.len, &l4HdrLen);
    if (st != Status::kOk) return st;
  } else if (ip.len < l4 + 8) {
    return Status::kTruncated;
  }
  if ((h.flags & F_NEEDS_CSUM) && (h.csum_start != l4 || h.csum_offset != (tcp ? 16 : 6))) return Status::kBadCsumOffsets;

  const size_t hdrLen = l4 + l4HdrLen;
  const size_t payload = ip.len - hdrLen;
  const size_t mss = h.gso_size;
  const size_t count = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (count > kMaxSegments) return Status::kTooManySegments;
  *layout = SegmentLayout{count, hdrLen + std::min(mss, payload), count * hdrLen + payload};
  if (layout->bytes > cap) return Status::kNoSpace;

  const uint16_t id = ip.version == 4 ? Be16(pkt + 4) : 0;
  const uint32_t seq = tcp ? Be32(pkt + l4 + 4) : 0;
  for (size_t i = 0, off = 0; i < count; i++, off += mss) {
    const size_t n = std::min(mss, payload - off);
    const bool last = i + 1 == count;
    uint8_t* o = out + i * layout->stride;
    std::memcpy(o, pkt, hdrLen);
    std::memcpy(o + hdrLen, pkt + hdrLen + off, n);
    if (ip.version == 4) {
      Put16(o + 2, static_cast<uint16_t>(hdrLen + n));
      Put16(o + 4, static_cast<uint16_t>(id + i));
      Put16(o + 10, 0);
      Put16(o + 10, Checksum(o, l4));
    } else {
      Put16(o + 4, static_cast<uint16_t>(hdrLen - 40 + n));
    }
    uint8_t* t = o + l4;
    const uint32_t l4Len = static_cast<uint32_t>(l4HdrLen + n);
    if (tcp) {
      // As the kernel's tcp_gso_segment: CWR stays on the first segment, FIN and PSH on the last.
      Put32(t + 4, static_cast<uint32_t>(seq + off));
      if (i > 0) t[13] &= static_cast<uint8_t>(~TH_CWR);
      if (!last) t[13] &= static_cast<uint8_t>(~(TH_FIN | TH_PSH));
      Put16(t + 16, 0);
      Put16(t + 16, Checksum(t, l4Len, PseudoHeaderSum(o, ip.version, kIpprotoTcp, l4Len)));
    } else {
      Put16(t + 4, static_cast<uint16_t>(l4Len));
      Put16(t + 6, 0);
      uint16_t c = Checksum(t, l4Len, PseudoHeaderSum(o, ip.version, kIpprotoUdp, l4Len));
      Put16(t + 6, c == 0 ? 0xffff : c);
    }
  }
  return Status::kOk;
}

Status Segment(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, std::vector<std::vector<uint8_t>>* out) {
  out->clear();
  SegmentLayout layout;
  Status st = Segment(pkt, len, h, nullptr, 0, &layout);
  if (st != Status::kNoSpace) return st;  // an error, or nothing to write
  std::vector<uint8_t> buf(layout.bytes);
  st = Segment(pkt, len, h, buf.data(), buf.size(), &layout);
  if (st != Status::kOk) return st;
  for (size_t i = 0; i < layout.count; i++) {
    size_t start = i * layout.stride;
    size_t end = std::min(start + layout.stride, layout.bytes);
    out->emplace_back(buf.begin() + static_cast<std::ptrdiff_t>(start), buf.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return Status::kOk;
}

// ---- Coalescer ----
//
// A merged packet goes to the TUN with F_NEEDS_CSUM (csum_start = the TCP header,
// csum_offset = 16, the TCP checksum field holding the folded pseudo-header sum),
// not F_DATA_VALID with a full checksum: on a write, tun_get_user ->
// virtio_net_hdr_to_skb honours only F_NEEDS_CSUM, turning it into
// CHECKSUM_PARTIAL with the transport header set, which both local TCP receive
// and re-segmentation on forward (tcp4/6_gso_segment) take as is. F_DATA_VALID
// is defined for the kernel -> user direction and ignored on writes: the GSO skb
// would stay CHECKSUM_NONE with its transport header guessed by the flow
// dissector, and TCP would then check one checksum over the whole super-packet,
// which no segment's checksum equals. (wireguard-go's TUN GRO does the same.)

namespace {

struct TcpSeg {
  int version = 0;
  size_t ipHdrLen = 0, tcpHdrLen = 0, payload = 0;
  uint8_t flags = 0;
  uint32_t seq = 0;
  bool mergeable = false;
};

// Whether p is a well-formed TCP segment (then it belongs to a flow), and
// whether it may be part of a super-packet.
bool ParseTcpSeg(const uint8_t* p, size_t len, TcpSeg* s) {
  Ip ip;
  if (ParseIp(p, len, &ip) != Status::kOk || ip.proto != kIpprotoTcp) return false;
  if (TcpHdrLen(p, ip.hdrLen, ip.len, &s->tcpHdrLen) != Status::kOk) return false;
  s->version = ip.version;
  s->ipHdrLen = ip.hdrLen;
  s->payload = ip.len - ip.hdrLen - s->tcpHdrLen;
  const uint8_t* t = p + ip.hdrLen;
  s->flags = t[13];
  s->seq = Be32(t + 4);
  // Segments below kMinGsoSize stay alone: a merged packet must be one Segment() would split.
  s->mergeable = ip.len == len && s->payload >= kMinGsoSize && !(s->flags & (TH_SYN | TH_RST | TH_URG)) &&
                 (ip.version == 6 || (ip.hdrLen == 20 && (Be16(p + 6) & IP_DF)));
  if (s->mergeable) {
    if (ip.version == 4 && Fold(Sum(p, 20)) != 0xffff) s->mergeable = false;
    uint32_t l4Len = static_cast<uint32_t>(ip.len - ip.hdrLen);
    if (Fold(Sum(t, l4Len, PseudoHeaderSum(p, ip.version, kIpprotoTcp, l4Len))) != 0xffff) s->mergeable = false;
  }
  return true;
}

bool SameFlow(const uint8_t* a, size_t aIpHdrLen, int aVersion, const uint8_t* b, const TcpSeg& s) {
  if (aVersion != s.version) return false;
  bool addrs = aVersion == 4 ? std::memcmp(a + 12, b + 12, 8) == 0 : std::memcmp(a + 8, b + 8, 32) == 0;
  return addrs && std::memcmp(a + aIpHdrLen, b + s.ipHdrLen, 4) == 0;
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
  return it;
}

void Coalescer::Close(size_t k) {
  items_[open_[k]].open = false;
  open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(k));
}

void Coalescer::Add(const uint8_t* p, size_t len, uint32_t tag) {
  if (finished_) Reset();
  packetsIn_++;
  TcpSeg s;
  if (ParseTcpSeg(p, len, &s)) {
    for (size_t k = 0; k < open_.size(); k++) {
      Item& it = items_[open_[k]];
      const uint8_t* h = it.first;
      if (!SameFlow(h, it.ipHdrLen, h[0] >> 4, p, s)) continue;
      const uint8_t* ht = h + it.ipHdrLen;
      const uint8_t* pt = p + s.ipHdrLen;
      bool ipSame = s.version == 4 ? h[1] == p[1] && h[8] == p[8]                       // TOS, TTL
                                   : std::memcmp(h, p, 4) == 0 && h[7] == p[7];  // class + flow label, hop limit
      bool merge = s.mergeable && ipSame && s.tcpHdrLen == it.tcpHdrLen && s.seq == it.nextSeq &&
                   !(s.flags & TH_CWR) && (s.flags & ~(TH_PSH | TH_FIN)) == (ht[13] & ~TH_CWR) &&
                   std::memcmp(ht + 8, pt + 8, 5) == 0 &&                       // ACK number, data offset
                   std::memcmp(ht + 14, pt + 14, 2) == 0 &&                     // window
                   std::memcmp(ht + 20, pt + 20, s.tcpHdrLen - 20) == 0 &&      // options
                   s.payload <= it.gsoSize && it.segs < opt_.maxSegments &&
                   it.ipHdrLen + it.tcpHdrLen + it.payload + s.payload <= opt_.maxPacketBytes;
      if (merge) {
        it.slices.push_back(Slice{pt + s.tcpHdrLen, s.payload});
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
      it.ipHdrLen = s.ipHdrLen;
      it.tcpHdrLen = s.tcpHdrLen;
      it.gsoSize = s.payload;
      it.payload = s.payload;
      it.nextSeq = s.seq + static_cast<uint32_t>(s.payload);
      it.lastFlags = s.flags;
      it.slices.push_back(Slice{p, len});  // replaced by the rewritten header if others join
      it.slices.push_back(Slice{p + s.ipHdrLen + s.tcpHdrLen, s.payload});
      if (!(s.flags & (TH_PSH | TH_FIN)) && opt_.maxSegments > 1 && s.ipHdrLen + s.tcpHdrLen + 2 * s.payload <= opt_.maxPacketBytes) {
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
  const size_t hl = it.ipHdrLen + it.tcpHdrLen;
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
  t[13] |= it.lastFlags & (TH_PSH | TH_FIN);
  const uint32_t l4Len = static_cast<uint32_t>(it.tcpHdrLen + it.payload);
  Put16(t + 16, Fold(PseudoHeaderSum(h, version, kIpprotoTcp, l4Len)));
  it.hdr.flags = F_NEEDS_CSUM;
  it.hdr.gso_type = static_cast<uint8_t>((version == 4 ? GSO_TCPV4 : GSO_TCPV6) | ((t[13] & TH_CWR) ? GSO_ECN : 0));
  it.hdr.hdr_len = static_cast<uint16_t>(hl);
  it.hdr.gso_size = static_cast<uint16_t>(it.gsoSize);
  it.hdr.csum_start = static_cast<uint16_t>(it.ipHdrLen);
  it.hdr.csum_offset = 16;
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
