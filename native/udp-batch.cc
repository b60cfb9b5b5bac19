#include "udp-batch.h"

#include <algorithm>
#include <cstring>
#include <netinet/udp.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace weft {

namespace {
constexpr size_t kSegCmsgSpace = CMSG_SPACE(sizeof(uint16_t));
constexpr size_t kGroCmsgSpace = CMSG_SPACE(sizeof(int));

// Makes `buf` (CMSG_SPACE(n) bytes) m's only control message: SOL_UDP `type` holding n bytes of v.
void PutUdpCmsg(msghdr& m, void* buf, int type, const void* v, size_t n) {
  std::memset(buf, 0, CMSG_SPACE(n));
  m.msg_control = buf;
  m.msg_controllen = CMSG_SPACE(n);
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(n);
  std::memcpy(CMSG_DATA(c), v, n);
}
}  // namespace

void V4Mapped(uint32_t ip, uint8_t out[16]) {
  std::memset(out, 0, 10);
  out[10] = out[11] = 0xff;
  uint32_t be = htonl(ip);
  std::memcpy(out + 12, &be, 4);
}

void AddrKey(const SockAddr& a, uint8_t out[16]) {
  if (a.sa.sa_family == AF_INET6) std::memcpy(out, &a.v6.sin6_addr, 16);
  else V4Mapped(ntohl(a.v4.sin_addr.s_addr), out);
}

SendBatch::SendBatch(size_t msgCapacity, size_t iovCapacity)
    : msgs_(msgCapacity), iov_(iovCapacity), cmsgs_(msgCapacity * kSegCmsgSpace) {}

void SendBatch::Open(const SockAddr* dst) {
  msghdr& m = msgs_[n_].msg_hdr;
  std::memset(&m, 0, sizeof m);
  m.msg_name = const_cast<SockAddr*>(dst);
  m.msg_namelen = SockAddrLen(*dst);
  m.msg_iov = iov_.data() + iovUsed_;
  m.msg_iovlen = 0;
  msgs_[n_].msg_len = 0;
  n_++;
}

void SendBatch::Append(const void* data, size_t len) {
  iov_[iovUsed_++] = {const_cast<void*>(data), len};
  msgs_[n_ - 1].msg_hdr.msg_iovlen++;
}

void SendBatch::SetSegSize(uint16_t segSize) {
  msghdr& m = msgs_[n_ - 1].msg_hdr;
  if (segSize == 0) {
    m.msg_control = nullptr;
    m.msg_controllen = 0;
    return;
  }
  PutUdpCmsg(m, &cmsgs_[(n_ - 1) * kSegCmsgSpace], UDP_SEGMENT, &segSize, sizeof segSize);
}

void SendBatch::Add(const SockAddr* dst, uint8_t* data, size_t len, uint16_t segSize) {
  Open(dst);
  Append(data, len);
  SetSegSize(segSize);
}

RecvBatch::RecvBatch(size_t capacity, size_t slot, bool gro)
    : slot_(slot), cmsgSpace_(gro ? kGroCmsgSpace : 0), bufs_(capacity * slot), cmsgs_(capacity * kGroCmsgSpace),
      msgs_(capacity), iov_(capacity), from_(capacity) {}

void RecvBatch::Prepare() {
  for (size_t i = 0; i < msgs_.size(); i++) {
    iov_[i] = {&bufs_[i * slot_], slot_};
    msghdr& m = msgs_[i].msg_hdr;
    std::memset(&m, 0, sizeof m);
    m.msg_name = &from_[i];
    m.msg_namelen = sizeof from_[i];
    m.msg_iov = &iov_[i];
    m.msg_iovlen = 1;
    if (cmsgSpace_ > 0) {
      m.msg_control = &cmsgs_[i * cmsgSpace_];
      m.msg_controllen = cmsgSpace_;
    }
    msgs_[i].msg_len = 0;
  }
}

size_t RecvBatch::segSize(size_t i) const {
  size_t len = msgs_[i].msg_len;
  const msghdr& m = msgs_[i].msg_hdr;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int g;
      std::memcpy(&g, CMSG_DATA(c), sizeof g);
      if (g > 0) return std::min(len, static_cast<size_t>(g));
    }
  }
  return len;
}

uint16_t UdpSegmentOf(const msghdr& m) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT && c->cmsg_len >= CMSG_LEN(sizeof(uint16_t))) {
      uint16_t s;
      std::memcpy(&s, CMSG_DATA(c), sizeof s);
      return s;
    }
  }
  return 0;
}

bool PutUdpGro(msghdr& m, int size) {
  if (!m.msg_control || m.msg_controllen < kGroCmsgSpace) return false;
  PutUdpCmsg(m, m.msg_control, UDP_GRO, &size, sizeof size);
  return true;
}

}  // namespace weft
