// A Syscalls that plays a script instead of touching the kernel, for the unit
// tests (through the test-only binding) and the fuzz driver: each TUN read
// returns the next scripted packet (an empty one is a zero-byte read), each
// recvmmsg the next scripted batch, then EAGAIN; poll reports the data fd
// readable while its script lasts, else the eventfd, which ends the loop.
// Every TUN write and every message sent is recorded. One loop at a time.
#pragma once
#include "syscalls.h"
#include "udp-batch.h"

#include <cstdint>
#include <deque>
#include <netinet/in.h>
#include <vector>

namespace weft {

struct ScriptedDatagram {
  uint32_t from = 0;   // host order
  bool v6 = false;     // from an IPv6 sender: from6 (network order), reported as a sockaddr_in6
  uint8_t from6[16] = {};
  uint16_t port = 8285;
  std::vector<uint8_t> data;
  int gro = 0;          // UDP_GRO size to report (0: no control message)
  bool truncated = false;
};

struct RecordedWrite {
  std::vector<uint8_t> data;  // the iovecs concatenated
  int iovcnt = 0;
};

struct RecordedSend {
  SockAddr to{};
  uint16_t segSize = 0;  // UDP_SEGMENT, 0 when none
  std::vector<uint8_t> data;
};

class ScriptedSyscalls : public Syscalls {
 public:
  static constexpr int kTunFd = 100, kUdpFd = 101, kEventFd = 102;

  std::deque<std::vector<uint8_t>> tunReads;
  std::deque<std::vector<ScriptedDatagram>> recvBatches;
  uint64_t now = 0;         // NowNs()
  uint64_t nsPerRead = 0;   // the clock advances by this much on every TUN read
  int gsoSendErrno = 0;     // fail sendmmsg of a UDP_SEGMENT message with this
  int mergedWriteErrno = 0; // fail a TUN write of a super-packet (virtio GSO header) with this
  int tunWriteErrno = 0;    // fail every TUN write with this
  bool vnetHdr = false;     // TUN writes start with a virtio header (for mergedWriteErrno)

  std::vector<RecordedWrite> tunWrites;
  std::vector<RecordedSend> sent;

  ssize_t Read(int fd, void* buf, size_t n) override;
  ssize_t Write(int fd, const void* buf, size_t n) override;
  ssize_t Writev(int fd, const iovec* iov, int n) override;
  int Poll(pollfd* fds, nfds_t n, int timeoutMs) override;
  int Sendmmsg(int fd, mmsghdr* msgs, unsigned n, int flags) override;
  int Recvmmsg(int fd, mmsghdr* msgs, unsigned n, int flags) override;
  uint64_t NowNs() override { return now; }
};

}  // namespace weft
