#include "forwarder.h"

#include <cerrno>

namespace weft {

Forwarder::Forwarder(const ForwarderConfig& c, Syscalls& sys) : config_(c), sys_(sys) {
  std::atomic_store(&table_, Table::Build({}, nullptr));
}

void Forwarder::Start() {
  tunThread_ = std::thread([this] { RunTunToUdp(); });
  try {
    udpThread_ = std::thread([this] { RunUdpToTun(); });
  } catch (...) {
    Stop();  // the first thread must not run on with nothing able to stop it
    throw;
  }
}

int Forwarder::Stop() {
  if (stopped_) return 0;
  stopped_ = true;
  stopping_.store(true);
  int err = 0;
  if (tunThread_.joinable() || udpThread_.joinable()) {
    uint64_t one = 1;
    ssize_t n;
    do n = sys_.Write(config_.eventFd, &one, sizeof one); while (n < 0 && errno == EINTR);
    if (n < 0) err = errno;
  }
  if (tunThread_.joinable()) tunThread_.join();
  if (udpThread_.joinable()) udpThread_.join();
  return err;
}

void Forwarder::Fail(std::atomic<int>& threadErrno, int err) {
  threadErrno.store(err);
  stopping_.store(true);
}

bool Forwarder::WaitReadable(int fd, std::atomic<int>& threadErrno, bool hangupIsFatal) {
  pollfd pfd[2] = {{fd, POLLIN, 0}, {config_.eventFd, POLLIN, 0}};
  for (;;) {
    int r = sys_.Poll(pfd, 2, -1);
    if (r >= 0) break;
    if (errno != EINTR) {
      Fail(threadErrno, errno);
      return false;
    }
  }
  if (pfd[1].revents) return false;
  if (hangupIsFatal && (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))) {
    Fail(threadErrno, EBADFD);  // e.g. the TUN device was deleted under us
    return false;
  }
  return true;
}

int Forwarder::WriteTun(const offload::VirtioNetHdr* h, const offload::Slice* slices, size_t n) {
  iovec v[kMaxTunIov];
  uint8_t vh[offload::kVirtioNetHdrLen];
  size_t k = 0;
  if (config_.vnetHdr) {
    offload::WriteVirtioNetHdr(h ? *h : offload::VirtioNetHdr{}, vh);
    v[k++] = {vh, sizeof vh};
  }
  if (n > kMaxTunIov - k) return EMSGSIZE;  // never fill beyond the array, whatever the caller merged
  for (size_t s = 0; s < n; s++) v[k++] = {const_cast<uint8_t*>(slices[s].data), slices[s].len};
  ssize_t w;
  do w = sys_.Writev(config_.tunFd, v, static_cast<int>(k)); while (w < 0 && errno == EINTR);
  if (w >= 0) return 0;
  int e = errno;
  counters.lastTunWriteErrno.store(e, std::memory_order_relaxed);
  return e;
}

}  // namespace weft
