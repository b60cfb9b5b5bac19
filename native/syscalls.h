// The system calls the forwarding loops make, behind one small interface, so
// that the unit tests (scripted-syscalls.h through the test-only binding) and
// the fuzz driver (fuzz/forwarder-fuzz.cc) run the real loops on faked input.
// Each call has the system call's contract: -1 with errno on failure.
#pragma once
#include <cstddef>
#include <cstdint>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace weft {

class Syscalls {
 public:
  virtual ~Syscalls() = default;
  virtual ssize_t Read(int fd, void* buf, size_t n) = 0;
  virtual ssize_t Write(int fd, const void* buf, size_t n) = 0;
  virtual ssize_t Writev(int fd, const iovec* iov, int n) = 0;
  virtual int Poll(pollfd* fds, nfds_t n, int timeoutMs) = 0;
  virtual int Sendmmsg(int fd, mmsghdr* msgs, unsigned n, int flags) = 0;
  virtual int Recvmmsg(int fd, mmsghdr* msgs, unsigned n, int flags) = 0;
  // CLOCK_MONOTONIC in nanoseconds (rate limits).
  virtual uint64_t NowNs() = 0;
};

// The kernel's.
Syscalls& LinuxSyscalls();

}  // namespace weft
