#include "syscalls.h"

#include <ctime>
#include <unistd.h>

namespace weft {

namespace {

class Linux final : public Syscalls {
 public:
  ssize_t Read(int fd, void* buf, size_t n) override { return read(fd, buf, n); }
  ssize_t Write(int fd, const void* buf, size_t n) override { return write(fd, buf, n); }
  ssize_t Writev(int fd, const iovec* iov, int n) override { return writev(fd, iov, n); }
  int Poll(pollfd* fds, nfds_t n, int timeoutMs) override { return poll(fds, n, timeoutMs); }
  int Sendmmsg(int fd, mmsghdr* msgs, unsigned n, int flags) override { return sendmmsg(fd, msgs, n, flags); }
  int Recvmmsg(int fd, mmsghdr* msgs, unsigned n, int flags) override { return recvmmsg(fd, msgs, n, flags, nullptr); }
  uint64_t NowNs() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
  }
};

}  // namespace

Syscalls& LinuxSyscalls() {
  static Linux sys;
  return sys;
}

}  // namespace weft
