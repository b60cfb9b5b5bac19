// Offload packet surgery, transmit side: see offload.h. The receive side (the
// Coalescer) is coalesce.cc; what both read from a packet is offload-parse.h.
#include "offload.h"

#include "offload-parse.h"

#include <algorithm>
#include <cstring>

namespace weft {
namespace offload {

using namespace parse;

namespace {

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

// Whether h may describe a GSO_NONE packet of len bytes whose checksum is to be completed.
Status CheckPartial(const uint8_t* pkt, size_t len, const VirtioNetHdr& h) {
  // The checksum goes into the L4 header, never into the IP header: a packet is routed by
  // its IP header before it is written out, so the field must not move its destination.
  size_t l3 = 0;
  Status st = IpHeaderLen(pkt, len, &l3);
  if (st != Status::kOk) return st;
  if (h.csum_start < l3 || h.csum_start > len || size_t{h.csum_offset} + 2 > len - h.csum_start) return Status::kBadCsumOffsets;
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

// ---- Split ----

Status CompleteChecksum(uint8_t* pkt, size_t len, const VirtioNetHdr& h) {
  if (h.hdr_len > len) return Status::kBadHdrLen;
  if (!(h.flags & F_NEEDS_CSUM)) return Status::kOk;
  Status st = CheckPartial(pkt, len, h);
  if (st != Status::kOk) return st;
  // As the kernel's skb_checksum_help: 0 is sent as 0xffff, which UDP requires and TCP
  // accepts (both are ones'-complement zero).
  uint16_t c = Checksum(pkt + h.csum_start, len - h.csum_start);
  Put16(pkt + h.csum_start + h.csum_offset, c == 0 ? 0xffff : c);
  return Status::kOk;
}

Status PlanSplit(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, SplitPlan* plan) {
  *plan = SplitPlan{};
  if (len < 1) return Status::kTruncated;
  if (h.hdr_len > len) return Status::kBadHdrLen;
  uint8_t type = h.gso_type & static_cast<uint8_t>(~GSO_ECN);
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

  SplitPlan& p = *plan;
  p.hdrLen = l4 + l4HdrLen;
  p.payload = ip.len - p.hdrLen;
  p.mss = h.gso_size;
  p.count = p.payload == 0 ? 1 : (p.payload + p.mss - 1) / p.mss;
  if (p.count > kMaxSegments) {
    *plan = SplitPlan{};
    return Status::kTooManySegments;
  }
  p.version = ip.version;
  p.tcp = tcp;
  p.l4 = l4;
  p.id = ip.version == 4 ? Be16(pkt + 4) : 0;
  p.seq = tcp ? Be32(pkt + l4 + 4) : 0;
  return Status::kOk;
}

void WriteSegmentHeader(const uint8_t* pkt, const SplitPlan& p, size_t i, uint8_t* o) {
  const size_t off = i * p.mss;
  const size_t n = p.PayloadLen(i);
  const bool last = i + 1 == p.count;
  const size_t l4 = p.l4;
  std::memcpy(o, pkt, p.hdrLen);
  if (p.version == 4) {
    Put16(o + 2, static_cast<uint16_t>(p.hdrLen + n));
    Put16(o + 4, static_cast<uint16_t>(p.id + i));
    Put16(o + 10, 0);
    Put16(o + 10, Checksum(o, l4));
  } else {
    Put16(o + 4, static_cast<uint16_t>(p.hdrLen - 40 + n));
  }
  uint8_t* t = o + l4;
  const size_t l4HdrLen = p.hdrLen - l4;  // even (TCP: a multiple of 4; UDP: 8), so the sums concatenate
  const uint32_t l4Len = static_cast<uint32_t>(l4HdrLen + n);
  const uint8_t proto = p.tcp ? kIpprotoTcp : kIpprotoUdp;
  const size_t csumAt = p.tcp ? 16 : 6;
  if (p.tcp) {
    // As the kernel's tcp_gso_segment: CWR stays on the first segment, FIN and PSH on the last.
    Put32(t + 4, static_cast<uint32_t>(p.seq + off));
    if (i > 0) t[13] &= static_cast<uint8_t>(~TH_CWR);
    if (!last) t[13] &= static_cast<uint8_t>(~(TH_FIN | TH_PSH));
  } else {
    Put16(t + 4, static_cast<uint16_t>(l4Len));
  }
  Put16(t + csumAt, 0);
  uint32_t sum = Sum(t, l4HdrLen, PseudoHeaderSum(o, p.version, proto, l4Len));
  uint16_t c = Checksum(pkt + p.hdrLen + off, n, sum);
  Put16(t + csumAt, !p.tcp && c == 0 ? 0xffff : c);
}

Status Segment(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, uint8_t* out, size_t cap, SegmentLayout* layout) {
  *layout = SegmentLayout{};
  if (len < 1) return Status::kTruncated;
  if (h.hdr_len > len) return Status::kBadHdrLen;
  if ((h.gso_type & static_cast<uint8_t>(~GSO_ECN)) == GSO_NONE) {
    if (h.flags & F_NEEDS_CSUM) {
      Status st = CheckPartial(pkt, len, h);
      if (st != Status::kOk) return st;
    }
    *layout = SegmentLayout{1, len, len};
    if (len > cap) return Status::kNoSpace;
    std::memcpy(out, pkt, len);
    return CompleteChecksum(out, len, h);
  }
  SplitPlan p;
  Status st = PlanSplit(pkt, len, h, &p);
  if (st != Status::kOk) return st;
  *layout = SegmentLayout{p.count, p.SegmentLen(0), p.Bytes()};
  if (layout->bytes > cap) return Status::kNoSpace;
  for (size_t i = 0; i < p.count; i++) {
    uint8_t* o = out + i * layout->stride;
    WriteSegmentHeader(pkt, p, i, o);
    std::memcpy(o + p.hdrLen, pkt + p.hdrLen + i * p.mss, p.PayloadLen(i));
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

}  // namespace offload
}  // namespace weft
