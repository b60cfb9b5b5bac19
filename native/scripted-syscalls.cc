#include "scripted-syscalls.h"

#include "offload.h"
#include "udp-batch.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>

namespace weft {

ssize_t ScriptedSyscalls::Read(int fd, void* buf, size_t n) {
  if (fd != kTunFd) {
    errno = EBADF;
    return -1;
  }
  if (tunReads.empty()) {
    errno = EAGAIN;
    return -1;
  }
  now += nsPerRead;
  std::vector<uint8_t> p = std::move(tunReads.front());
  tunReads.pop_front();
  size_t k = std::min(n, p.size());  // a TUN read truncates silently
  if (k > 0) std::memcpy(buf, p.data(), k);
  return static_cast<ssize_t>(k);
}

ssize_t ScriptedSyscalls::Write(int fd, const void* buf, size_t n) {
  iovec v{const_cast<void*>(buf), n};
  return fd == kEventFd ? static_cast<ssize_t>(n) : Writev(fd, &v, 1);
}

ssize_t ScriptedSyscalls::Writev(int fd, const iovec* iov, int n) {
  if (fd != kTunFd || n < 0) {
    errno = EBADF;
    return -1;
  }
  RecordedWrite w;
  w.iovcnt = n;
  for (int i = 0; i < n; i++) {
    const auto* b = static_cast<const uint8_t*>(iov[i].iov_base);
    w.data.insert(w.data.end(), b, b + iov[i].iov_len);
  }
  if (tunWriteErrno != 0) {
    errno = tunWriteErrno;
    return -1;
  }
  if (mergedWriteErrno != 0 && vnetHdr && w.data.size() >= offload::kVirtioNetHdrLen && w.data[1] != offload::GSO_NONE) {
    errno = mergedWriteErrno;
    return -1;
  }
  ssize_t len = static_cast<ssize_t>(w.data.size());
  tunWrites.push_back(std::move(w));
  return len;
}

int ScriptedSyscalls::Poll(pollfd* fds, nfds_t n, int) {
  for (nfds_t i = 0; i < n; i++) fds[i].revents = 0;
  for (nfds_t i = 0; i < n; i++) {
    bool more = (fds[i].fd == kTunFd && !tunReads.empty()) || (fds[i].fd == kUdpFd && !recvBatches.empty());
    if (more) {
      fds[i].revents = POLLIN;
      return 1;
    }
  }
  for (nfds_t i = 0; i < n; i++) {
    if (fds[i].fd == kEventFd) {
      fds[i].revents = POLLIN;  // the script is over: stop
      return 1;
    }
  }
  errno = EINVAL;
  return -1;
}

int ScriptedSyscalls::Sendmmsg(int fd, mmsghdr* msgs, unsigned n, int) {
  if (fd != kUdpFd) {
    errno = EBADF;
    return -1;
  }
  for (unsigned i = 0; i < n; i++) {
    const msghdr& m = msgs[i].msg_hdr;
    RecordedSend s;
    s.segSize = UdpSegmentOf(m);
    if (s.segSize > 0 && gsoSendErrno != 0) {
      if (i > 0) return static_cast<int>(i);
      errno = gsoSendErrno;
      return -1;
    }
    if (m.msg_name && m.msg_namelen >= sizeof(sockaddr_in) && m.msg_namelen <= sizeof s.to) std::memcpy(&s.to, m.msg_name, m.msg_namelen);
    for (size_t k = 0; k < m.msg_iovlen; k++) {
      const auto* b = static_cast<const uint8_t*>(m.msg_iov[k].iov_base);
      s.data.insert(s.data.end(), b, b + m.msg_iov[k].iov_len);
    }
    msgs[i].msg_len = static_cast<unsigned>(s.data.size());
    sent.push_back(std::move(s));
  }
  return static_cast<int>(n);
}

int ScriptedSyscalls::Recvmmsg(int fd, mmsghdr* msgs, unsigned n, int) {
  if (fd != kUdpFd) {
    errno = EBADF;
    return -1;
  }
  if (recvBatches.empty()) {
    errno = EAGAIN;
    return -1;
  }
  std::vector<ScriptedDatagram>& b = recvBatches.front();
  unsigned k = 0;
  for (; k < n && k < b.size(); k++) {
    const ScriptedDatagram& d = b[k];
    msghdr& m = msgs[k].msg_hdr;
    size_t cap = m.msg_iovlen > 0 ? m.msg_iov[0].iov_len : 0;
    size_t len = std::min(cap, d.data.size());
    if (len > 0) std::memcpy(m.msg_iov[0].iov_base, d.data.data(), len);
    msgs[k].msg_len = static_cast<unsigned>(len);
    m.msg_flags = d.truncated || d.data.size() > cap ? MSG_TRUNC : 0;
    if (d.v6 && m.msg_name && m.msg_namelen >= sizeof(sockaddr_in6)) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      std::memcpy(&a.sin6_addr, d.from6, 16);
      a.sin6_port = htons(d.port);
      std::memcpy(m.msg_name, &a, sizeof a);
      m.msg_namelen = sizeof a;
    } else if (m.msg_name && m.msg_namelen >= sizeof(sockaddr_in)) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(d.from);
      a.sin_port = htons(d.port);
      std::memcpy(m.msg_name, &a, sizeof a);
      m.msg_namelen = sizeof a;
    }
    if (d.gro <= 0 || !PutUdpGro(m, d.gro)) m.msg_controllen = 0;
  }
  if (k == b.size()) {
    recvBatches.pop_front();
  } else {
    b.erase(b.begin(), b.begin() + k);
  }
  return static_cast<int>(k);
}

}  // namespace weft
