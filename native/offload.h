// Packet surgery for the offload fast path (issue #6): the virtio_net_hdr a
// TUN opened with IFF_VNET_HDR puts before every packet, splitting a TSO/USO
// super-packet read from the TUN into MTU-sized packets, and coalescing
// consecutive TCP segments received from the wire into one super-packet to
// write to the TUN. Pure functions over byte buffers: no system calls, no Node
// types, no locks, so the forwarder threads can call them directly.
#pragma once
#include "bytes.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft {
namespace offload {

// virtio_net_hdr (include/uapi/linux/virtio_net.h). The names drop the
// kernel's VIRTIO_NET_HDR_ prefix so they never collide with its macros.
// Values checked against include/uapi/linux/virtio_net.h (GSO_UDP_L4: Linux
// 6.2); that header cannot be included from C++ (a member named `class`).
constexpr uint8_t F_NEEDS_CSUM = 1;  // checksum from csum_start to the end, stored at csum_start + csum_offset
constexpr uint8_t F_DATA_VALID = 2;  // kernel -> user only: the checksum was verified
constexpr uint8_t GSO_NONE = 0;
constexpr uint8_t GSO_TCPV4 = 1;
constexpr uint8_t GSO_UDP = 3;  // UFO (IP fragmentation); never enabled, always rejected
constexpr uint8_t GSO_TCPV6 = 4;
constexpr uint8_t GSO_UDP_L4 = 5;  // USO, Linux >= 6.2
constexpr uint8_t GSO_ECN = 0x80;  // TCP with CWR on the first segment

constexpr size_t kVirtioNetHdrLen = 10;
// The largest IP packet an IPv4 total length (and the TUN's legacy GSO limit) allows.
constexpr size_t kMaxIpPacket = 65535;
// The smallest gso_size split: below it one read would fan out into thousands of
// datagrams. Linux's TCP never sends segments that small unless over 16 option
// bytes meet its floor MSS (net.ipv4.tcp_min_snd_mss, 48).
constexpr size_t kMinGsoSize = 32;
// The most segments one super-packet may split into (kMaxIpPacket / kMinGsoSize).
constexpr size_t kMaxSegments = 2048;

// The 10-byte header, host values. On the wire every 16-bit field is
// little-endian: a TUN uses the host's byte order unless TUNSETVNETLE/BE,
// so the engine sets TUNSETVNETLE and these functions always use LE.
struct VirtioNetHdr {
  uint8_t flags = 0;
  uint8_t gso_type = GSO_NONE;
  uint16_t hdr_len = 0;      // IP + L4 header bytes (no Ethernet on a TUN)
  uint16_t gso_size = 0;     // L4 payload bytes per segment
  uint16_t csum_start = 0;   // offset of the L4 header
  uint16_t csum_offset = 0;  // 16 for TCP, 6 for UDP
};

// False when fewer than kVirtioNetHdrLen bytes are given.
bool ParseVirtioNetHdr(const uint8_t* p, size_t len, VirtioNetHdr* out);
void WriteVirtioNetHdr(const VirtioNetHdr& h, uint8_t* out);  // writes kVirtioNetHdrLen bytes

enum class Status : uint8_t {
  kOk = 0,
  kTruncated,           // shorter than a header the packet must have
  kBadIpVersion,        // neither IPv4 nor IPv6, or not the version gso_type names
  kBadIpHeader,         // IPv4 IHL below 5 or options beyond the buffer
  kBadIpLength,         // IP total/payload length beyond the buffer or below the headers
  kFragment,            // an IPv4 fragment
  kUnsupportedProtocol, // not the L4 protocol gso_type names, or IPv6 extension headers
  kBadL4Header,         // TCP data offset below 5 or beyond the packet
  kBadGsoType,          // unknown gso_type, or UFO
  kBadGsoSize,          // gso_size below kMinGsoSize for a GSO packet
  kTooManySegments,     // more than kMaxSegments segments
  kBadHdrLen,           // hdr_len beyond the packet
  kBadCsumOffsets,      // csum_start/csum_offset outside the packet, or not the L4 checksum field
  kNoSpace,             // the output buffer is too small (SegmentLayout::bytes says how much is needed)
};
// Stable lower-case name ("truncated", "bad_gso_size", ...), used as the JS error code.
const char* StatusName(Status s);

// ---- Transmit: split a super-packet read from the TUN ----

// How a GSO super-packet splits (PlanSplit): `count` segments; segment i is the packet's
// first hdrLen bytes, rewritten by WriteSegmentHeader, followed by the payload bytes
// [i * mss, min((i + 1) * mss, payload)) that start at pkt + hdrLen. Every segment but the
// last is exactly hdrLen + mss bytes long (one UDP_SEGMENT size).
struct SplitPlan {
  size_t count = 0;
  size_t hdrLen = 0;   // IP + L4 header bytes, from the packet itself
  size_t mss = 0;      // L4 payload bytes per segment (gso_size)
  size_t payload = 0;  // L4 payload bytes in all
  // For WriteSegmentHeader.
  int version = 0;
  bool tcp = false;
  size_t l4 = 0;  // offset of the L4 header
  uint16_t id = 0;
  uint32_t seq = 0;

  size_t PayloadLen(size_t i) const { return payload == 0 ? 0 : (i + 1 < count ? mss : payload - i * mss); }
  size_t SegmentLen(size_t i) const { return hdrLen + PayloadLen(i); }
  size_t Bytes() const { return count * hdrLen + payload; }
};

// Checks a GSO super-packet (gso_type TCPV4/TCPV6 with or without ECN, or UDP_L4) and
// plans its split into packets of at most h.gso_size L4 payload bytes. Reads nothing
// beyond pkt[len). hdr_len is only bounds-checked; header lengths come from the packet
// itself (the kernel reports skb_headlen there, not always the header length).
Status PlanSplit(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, SplitPlan* plan);
// Writes segment i's headers (plan.hdrLen bytes) to out:
//   TCP: per segment the IPv4 total length, IP ID (+1 per segment) and header checksum,
//     or the IPv6 payload length; sequence number advanced by the payload offset; CWR only
//     on the first segment, FIN and PSH only on the last (as tcp_gso_segment);
//   UDP: the IP fields as above and the UDP length;
// and the full L4 checksum over these headers and the segment's payload in pkt.
void WriteSegmentHeader(const uint8_t* pkt, const SplitPlan& plan, size_t i, uint8_t* out);
// A GSO_NONE packet with F_NEEDS_CSUM: completes, in place, the checksum whose field at
// csum_start + csum_offset holds the pseudo-header sum (a no-op without the flag). The field
// must lie in the L4 header, never in the IP header (the packet was routed by it); hdr_len
// must not exceed len.
Status CompleteChecksum(uint8_t* pkt, size_t len, const VirtioNetHdr& h);

// The copying form (tests, the fuzz oracle): segments written back to back, segment i at
// out + i * stride, stride bytes long except the last. That is exactly the buffer one
// UDP_SEGMENT send with segment size `stride` turns into `count` datagrams.
struct SegmentLayout {
  size_t count = 0;
  size_t stride = 0;
  size_t bytes = 0;  // total written (or needed, with kNoSpace)
};
// GSO types as PlanSplit + WriteSegmentHeader; GSO_NONE: one packet, copied, its partial
// checksum completed (CompleteChecksum). Never reads pkt[len] or beyond, never writes out[cap].
Status Segment(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, uint8_t* out, size_t cap, SegmentLayout* layout);
// The same, one vector per segment.
Status Segment(const uint8_t* pkt, size_t len, const VirtioNetHdr& h, std::vector<std::vector<uint8_t>>* out);

// ---- Receive: coalesce TCP segments (and UDP datagrams) into super-packets for the TUN ----

struct Slice {
  const uint8_t* data;
  size_t len;
};

// One packet to write to the TUN: the virtio header, then the slices in order
// (for writev). A merged packet's first slice is its rewritten IP+TCP header
// (owned by the Coalescer), the rest point at the payloads of the input
// packets; a single packet is one slice, the input packet unchanged.
struct CoalescedPacket {
  VirtioNetHdr hdr;
  const Slice* slices;
  size_t sliceCount;
  size_t bytes;  // sum of the slice lengths
  uint32_t tag;  // the tag Add() was given with the packet's first segment
};

// Usage per receive batch: Reset(); Add() each packet in arrival order; Finish();
// then write Output(0 .. OutputCount()-1). Input packets must stay valid and
// unchanged until the next Reset() (an Add() after Finish() also starts a new
// batch). Allocations are kept across batches, so a warm Coalescer allocates
// nothing per packet.
//
// Segments merge when they are TCP over IPv4 (IHL 5, DF, not a fragment) or IPv6
// (no extension headers), of the same flow, contiguous in sequence, each carrying at
// least kMinGsoSize payload bytes (so Segment() accepts every merged packet), with the same
// ACK number, window, option bytes, IP TOS/traffic class+flow label and TTL/hop
// limit, flags equal to the first segment's except PSH/FIN on the last one (no
// SYN/RST/URG anywhere, CWR only on the first), all carrying the first segment's
// payload size except a shorter last one, at most maxSegments of them within
// kMaxIpPacket, and with valid IPv4 header and TCP checksums (the super-packet is
// written with a partial checksum that the kernel trusts, so merging an unverified
// segment would launder a corrupt one; the TCP checksum is not summed again when Add()
// is told that the segment's bytes were verified on the way in, l4Verified: a checksum
// over all of them, such as the outer UDP checksum the kernel checked, vouches for it).
// With Options::udp (a TUN that takes GSO_UDP_L4 writes: USO, Linux >= 6.2), datagrams
// of one UDP flow (same addresses and ports) merge the same way into a USO super-packet:
// IPv4 with IHL 5 and DF or IPv6 without extension headers, the UDP length equal to the
// IP payload, a valid UDP checksum (or none, IPv4 only), the same TOS/TTL, each of the
// first one's payload size except a shorter last one (at least kMinGsoSize bytes).
// Everything else passes through alone.
// Order within a flow is kept; different flows may be reordered among themselves.
class Coalescer {
 public:
  struct Options {
    size_t maxPacketBytes = kMaxIpPacket;
    // Flows that may still take segments at once; the oldest is closed beyond it.
    size_t maxOpenFlows = 64;
    // Segments in one super-packet: a merged packet is written as its header and one
    // slice per segment, so this follows from the writer's iovec array.
    size_t maxSegments = 64;
    // Merge UDP datagrams into GSO_UDP_L4 packets too (the TUN accepted TUN_F_USO4/6).
    bool udp = false;
  };

  Coalescer();
  explicit Coalescer(const Options& o);

  void Reset();
  // Turns UDP merging on or off (Options::udp) from the next Add() on.
  void SetUdp(bool on) { opt_.udp = on; }
  // tag: any number the caller wants back with the output packet (e.g. which message it came in).
  // l4Verified: pkt's bytes are known to be as their sender sent them (see the class comment):
  // its L4 checksum is not summed again. The IPv4 header checksum is always checked.
  void Add(const uint8_t* pkt, size_t len, uint32_t tag = 0, bool l4Verified = false);
  void Finish();

  size_t OutputCount() const { return used_; }
  CoalescedPacket Output(size_t i) const;

  // Since construction: packets given to Add, super-packets emitted, and the
  // segments that went into them.
  uint64_t packetsIn() const { return packetsIn_; }
  uint64_t superPackets() const { return superPackets_; }
  uint64_t mergedSegments() const { return mergedSegments_; }

 private:
  struct Item {
    VirtioNetHdr hdr;
    uint8_t head[128];             // rewritten IP + L4 header of a merged packet
    std::vector<Slice> slices;     // slices[0] is the header (merged) or the whole packet (single)
    const uint8_t* first = nullptr;  // the first segment
    size_t firstLen = 0;
    uint32_t tag = 0;
    bool udp = false;
    size_t ipHdrLen = 0, l4HdrLen = 0;
    size_t gsoSize = 0;             // payload bytes of the first segment
    size_t payload = 0;             // payload bytes so far
    size_t segs = 0;
    uint32_t nextSeq = 0;
    uint8_t lastFlags = 0;          // TCP flags of the last segment
    bool open = false;
    size_t bytes = 0;
  };

  Item& NewItem();
  void Close(size_t openIndex);
  void FinishItem(Item& it);

  Options opt_;
  std::vector<Item> items_;
  size_t used_ = 0;
  std::vector<size_t> open_;  // indices into items_ of items that can still take segments, oldest first
  bool finished_ = false;
  uint64_t packetsIn_ = 0, superPackets_ = 0, mergedSegments_ = 0;
};

// Function-level form for tests and slow paths: coalesces `in` (IP packets in
// arrival order) into linear packets, each with its virtio header.
struct OutPacket {
  VirtioNetHdr hdr;
  std::vector<uint8_t> bytes;
};
std::vector<OutPacket> Coalesce(const std::vector<std::vector<uint8_t>>& in, const Coalescer::Options& o = Coalescer::Options());

}  // namespace offload
}  // namespace weft
