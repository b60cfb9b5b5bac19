// The UDP batch layer: the message arrays of one sendmmsg (with UDP_SEGMENT
// control messages: the kernel splits a message into datagrams of that size)
// and of one recvmmsg (with room for the UDP_GRO control message that says the
// size of the datagrams a received message holds). No system calls here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <netinet/in.h>
#include <sys/socket.h>
#include <vector>

namespace weft {

// A datagram's far end: IPv4 (an AF_INET socket) or IPv6 (an AF_INET6 socket; an IPv4
// peer then as a v4-mapped ::ffff:a.b.c.d). The family says which member holds it.
union SockAddr {
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
};
inline socklen_t SockAddrLen(const SockAddr& a) { return a.sa.sa_family == AF_INET6 ? sizeof a.v6 : sizeof a.v4; }
// The address as 16 bytes, an IPv4 one v4-mapped (::ffff:a.b.c.d): one key for both families.
void AddrKey(const SockAddr& a, uint8_t out[16]);
// ::ffff:a.b.c.d of a host-order IPv4 address.
void V4Mapped(uint32_t ip, uint8_t out[16]);

// UDP_SEGMENT limits: at most UDP_MAX_SEGMENTS (64 before Linux 6.9) segments, and one
// IPv4 datagram's worth of payload (65535 - 20 - 8) per message.
constexpr size_t kGsoMaxSegs = 64;
constexpr size_t kGsoMaxBytes = 65507;

// The messages of one sendmmsg. Each message is a run of iovecs (scatter-gather: the
// segments' rewritten headers and their payloads where the TUN read left them); only the
// last message takes more iovecs, so every message's iovecs are contiguous.
class SendBatch {
 public:
  SendBatch(size_t msgCapacity, size_t iovCapacity);
  size_t size() const { return n_; }
  bool full() const { return n_ == msgs_.size(); }
  size_t iovFree() const { return iov_.size() - iovUsed_; }
  // Starts a message to dst (the caller checked !full()); dst stays valid until Clear().
  void Open(const SockAddr* dst);
  // Appends len bytes at data to the last message (the caller checked iovFree() > 0).
  void Append(const void* data, size_t len);
  // The last message's UDP_SEGMENT size: the kernel splits it into datagrams of that many
  // bytes. 0 (the default): none.
  void SetSegSize(uint16_t segSize);
  // One message of `len` bytes at `data`, as Open + Append + SetSegSize.
  void Add(const SockAddr* dst, uint8_t* data, size_t len, uint16_t segSize);
  mmsghdr* msgs() { return msgs_.data(); }
  void Clear() { n_ = iovUsed_ = 0; }

 private:
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<uint8_t> cmsgs_;
  size_t n_ = 0, iovUsed_ = 0;
};

class RecvBatch {
 public:
  // `capacity` messages of up to `slot` bytes each; gro: leave room for UDP_GRO.
  RecvBatch(size_t capacity, size_t slot, bool gro);
  size_t capacity() const { return msgs_.size(); }
  // Resets every message header; call before each recvmmsg.
  void Prepare();
  mmsghdr* msgs() { return msgs_.data(); }

  // Message i of the last recvmmsg:
  const uint8_t* data(size_t i) const { return &bufs_[i * slot_]; }
  size_t len(size_t i) const { return msgs_[i].msg_len; }
  bool truncated(size_t i) const { return (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
  // The sender as 16 bytes (AddrKey: an IPv4 one v4-mapped).
  void from(size_t i, uint8_t out[16]) const { AddrKey(from_[i], out); }
  // Size of each datagram in it (UDP_GRO), the whole message when it holds one; >= 1 unless len(i) is 0.
  size_t segSize(size_t i) const;

 private:
  size_t slot_;
  size_t cmsgSpace_;
  std::vector<uint8_t> bufs_;
  std::vector<uint8_t> cmsgs_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<SockAddr> from_;
};

// The UDP_SEGMENT size a message carries, 0 when none (for fakes and tests).
uint16_t UdpSegmentOf(const msghdr& m);
// Puts a UDP_GRO control message saying `size` into m's control buffer, as the kernel
// does on receive; false when it has no room (fakes and tests).
bool PutUdpGro(msghdr& m, int size);

}  // namespace weft
