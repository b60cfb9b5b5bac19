#include "forwarder.h"

#include <cerrno>
#include <pthread.h>
#include <stdexcept>
#include <string>

namespace weft {

Forwarder::Forwarder(const ForwarderConfig& c, Syscalls& sys) : config_(c), sys_(sys) {
  if (c.tunFds.empty() || c.tunFds.size() != c.udpFds.size() || c.tunFds.size() > kMaxWorkers ||
      (!c.txFds.empty() && c.txFds.size() != c.tunFds.size())) {
    throw std::invalid_argument("a forwarder needs 1.." + std::to_string(kMaxWorkers) + " workers, each with one TUN queue and one UDP socket");
  }
  counters_.reset(new Counters[c.tunFds.size()]);
  std::atomic_store(&table_, Table::Build({}, nullptr));
}

void Forwarder::Totals(Counters& t) const {
  for (size_t w = 0; w < workers(); w++) counters_[w].AddTo(t);
}

void Forwarder::Start() {
  try {
    for (size_t w = 0; w < workers(); w++) {
      // Named, so that top -H, perf and /proc/<pid>/task tell the loops apart.
      threads_.emplace_back([this, w] { RunTunToUdp(w); });
      pthread_setname_np(threads_.back().native_handle(), ("weft-tun2udp-" + std::to_string(w)).c_str());
      threads_.emplace_back([this, w] { RunUdpToTun(w); });
      pthread_setname_np(threads_.back().native_handle(), ("weft-udp2tun-" + std::to_string(w)).c_str());
    }
  } catch (...) {
    Stop();  // the threads made so far must not run on with nothing able to stop them
    throw;
  }
}

int Forwarder::Stop() {
  if (stopped_) return 0;
  stopped_ = true;
  stopping_.store(true);
  int err = 0;
  if (!threads_.empty()) {
    // Nothing reads the eventfd: once written it stays readable and wakes every thread.
    uint64_t one = 1;
    ssize_t n;
    do n = sys_.Write(config_.eventFd, &one, sizeof one); while (n < 0 && errno == EINTR);
    if (n < 0) err = errno;
  }
  for (std::thread& t : threads_) if (t.joinable()) t.join();
  return err;
}

bool Forwarder::TakeIcmpToken() {
  std::lock_guard<std::mutex> lock(icmpMu_);
  return icmp_.Take(sys_.NowNs());
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
  if (pfd[1].revents || stopping()) return false;
  if (hangupIsFatal && (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))) {
    Fail(threadErrno, EBADFD);  // e.g. the TUN device was deleted under us
    return false;
  }
  return true;
}

int Forwarder::WriteTun(size_t w, const offload::VirtioNetHdr* h, const offload::Slice* slices, size_t n) {
  iovec v[kMaxTunIov];
  uint8_t vh[offload::kVirtioNetHdrLen];
  size_t k = 0;
  if (config_.vnetHdr) {
    offload::WriteVirtioNetHdr(h ? *h : offload::VirtioNetHdr{}, vh);
    v[k++] = {vh, sizeof vh};
  }
  if (n > kMaxTunIov - k) return EMSGSIZE;  // never fill beyond the array, whatever the caller merged
  for (size_t s = 0; s < n; s++) v[k++] = {const_cast<uint8_t*>(slices[s].data), slices[s].len};
  ssize_t wr;
  do wr = sys_.Writev(config_.tunFds[w], v, static_cast<int>(k)); while (wr < 0 && errno == EINTR);
  if (wr >= 0) return 0;
  int e = errno;
  counters_[w].lastTunWriteErrno.store(e, std::memory_order_relaxed);
  return e;
}

}  // namespace weft
