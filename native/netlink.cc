// NETLINK_ROUTE (and other netlink protocol) sockets: open, send, receive.
// Message encoding and decoding is entirely TypeScript (agent/netlink/).
#include "common.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace weft {

namespace {

struct OpenArgs {
  int protocol;
  uint32_t groups;
  int rcvbuf;
};

int DoOpen(void* p) {
  auto* a = static_cast<OpenArgs*>(p);
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, a->protocol);
  if (fd < 0) return -1;
  int one = 1;
  // Extended ACKs give the kernel's own reason text for an error.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  // A large buffer: ACKs of a batch and dump parts queue here. SO_RCVBUFFORCE
  // passes net.core.rmem_max (which SO_RCVBUF is capped at) when we may.
  int rcvbuf = a->rcvbuf > 0 ? a->rcvbuf : 4 * 1024 * 1024;
  if (a->rcvbuf > 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = a->groups;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// open(protocol, groups, netnsPath?, rcvbuf?) -> { fd, portId }
// rcvbuf > 0 sets exactly that SO_RCVBUF (tests make it small to provoke ENOBUFS).
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenArgs a{info[0].As<Napi::Number>().Int32Value(),
             info[1].As<Napi::Number>().Uint32Value(),
             info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0};
  std::string ns = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  int err = 0;
  int fd = InNetns(ns, DoOpen, &a, &err);
  if (fd < 0) ThrowErrno(env, ns.empty() ? "netlink socket" : "netlink socket in " + ns, err);
  sockaddr_nl sa{};
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("portId", Napi::Number::New(env, sa.nl_pid));
  return o;
}

// send(fd, buffer): one datagram to the kernel.
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(fd, buf.Data(), buf.Length(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    ThrowErrno(env, "netlink send", errno);
  }
  return env.Undefined();
}

// attachFilter(fd, program): SO_ATTACH_FILTER with a classic BPF program given
// as its struct sock_filter array (8 bytes each, host byte order), built in
// netlink/monitor-filter.ts. The kernel runs it on every notification before
// queueing it: what it drops costs the socket nothing.
Napi::Value AttachFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto prog = info[1].As<Napi::Buffer<uint8_t>>();
  if (prog.Length() == 0 || prog.Length() % sizeof(sock_filter) != 0 || prog.Length() / sizeof(sock_filter) > BPF_MAXINSNS) {
    throw Napi::TypeError::New(env, "attachFilter: a program of 1.." + std::to_string(BPF_MAXINSNS) + " sock_filter instructions (8 bytes each), got " +
                                        std::to_string(prog.Length()) + " bytes");
  }
  std::vector<sock_filter> insns(prog.Length() / sizeof(sock_filter));
  std::memcpy(insns.data(), prog.Data(), prog.Length());
  sock_fprog fp{static_cast<unsigned short>(insns.size()), insns.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) != 0) ThrowErrno(env, "setsockopt(SO_ATTACH_FILTER)", errno);
  return env.Undefined();
}

// Bytes a datagram is first read into. Peeking with a buffer this large also
// tells the kernel it may build dump parts of up to ~32 KiB (it sizes them by
// the largest receive it has seen, capped at SKB_WITH_OVERHEAD(32768)); a
// zero-length peek kept them at one page (~4 KiB), 8 times as many datagrams.
constexpr size_t kScratch = 64 * 1024;

// recv(fd, timeoutMs) -> Buffer, or null when nothing arrived in time.
// timeoutMs = 0 polls without waiting; -1 waits forever.
// The datagram is peeked into a per-thread scratch buffer (its true size comes
// back with MSG_TRUNC, so a large one is never cut short), then taken off the
// queue by a zero-length read and copied once into the Buffer returned: two
// syscalls and one allocation when data is waiting (was poll, a size peek, a
// read, and two allocations).
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int timeout = info[1].As<Napi::Number>().Int32Value();
  thread_local std::vector<uint8_t> scratch(kScratch);
  ssize_t size;
  for (;;) {
    size = recv(fd, scratch.data(), scratch.size(), MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (size >= 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) ThrowErrno(env, "netlink recv", errno);
    if (timeout == 0) return env.Null();
    pollfd pfd{fd, POLLIN, 0};
    int r;
    do r = poll(&pfd, 1, timeout); while (r < 0 && errno == EINTR);
    if (r < 0) ThrowErrno(env, "netlink poll", errno);
    if (r == 0) return env.Null();
  }
  if (static_cast<size_t>(size) <= scratch.size()) {
    ssize_t n;
    do n = recv(fd, nullptr, 0, MSG_TRUNC | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
    if (n < 0) ThrowErrno(env, "netlink recv", errno);
    return Napi::Buffer<uint8_t>::Copy(env, scratch.data(), static_cast<size_t>(size));
  }
  // Larger than the scratch buffer (a link with many VFs): read it whole into its own Buffer.
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(size));
  ssize_t n;
  do n = recv(fd, out.Data(), out.Length(), MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "netlink recv", errno);
  if (n != size) throw Napi::Error::New(env, "netlink recv: the datagram changed between peek and read");
  return out;
}

// Datagrams recvBatch reads each into its own part of a per-thread buffer of this size,
// each with at least kScratch bytes free (so none is cut short but one over 64 KiB).
constexpr size_t kBatch = 1024 * 1024;

// recvBatch(fd, maxDatagrams) -> { data, datagrams, overruns }: the datagrams queued now,
// without waiting, up to maxDatagrams reads (an overrun counts as one, as in the monitor's
// one-at-a-time reads) and what fits kBatch, one recv each (no peek) and
// their messages concatenated in one Buffer, each datagram starting 4-aligned (its last
// message padded with zero bytes, which parseMessages steps over as nlmsg alignment).
// overruns: ENOBUFS seen (the socket's buffer overflowed: notifications were lost).
// For a reader of thousands of small notifications (the bench's route counting):
// recv returned one Buffer per datagram, after a peek, two syscalls and an allocation each.
Napi::Value RecvBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int64_t max = info[1].As<Napi::Number>().Int64Value();
  thread_local std::vector<uint8_t> buf(kBatch);
  size_t off = 0;
  int64_t count = 0;
  uint32_t overruns = 0;
  while (count + overruns < max && buf.size() - off >= kScratch) {
    ssize_t n = recv(fd, buf.data() + off, kScratch, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        overruns++;
        continue;
      }
      ThrowErrno(env, "netlink recv", errno);
    }
    if (static_cast<size_t>(n) > kScratch) {
      throw Napi::Error::New(env, "netlink recv: a datagram of " + std::to_string(n) + " bytes, larger than the " +
                                      std::to_string(kScratch) + " a batched read takes (read with recv)");
    }
    size_t padded = (static_cast<size_t>(n) + 3) & ~static_cast<size_t>(3);
    std::memset(buf.data() + off + n, 0, padded - static_cast<size_t>(n));
    off += padded;
    count++;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf.data(), off));
  out.Set("datagrams", Napi::Number::New(env, static_cast<double>(count)));
  out.Set("overruns", Napi::Number::New(env, overruns));
  return out;
}

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  Napi::Object nl = Napi::Object::New(env);
  nl.Set("open", Napi::Function::New(env, Open));
  nl.Set("send", Napi::Function::New(env, Send));
  nl.Set("recv", Napi::Function::New(env, Recv));
  nl.Set("recvBatch", Napi::Function::New(env, RecvBatch));
  nl.Set("attachFilter", Napi::Function::New(env, AttachFilter));
  exports.Set("netlink", nl);
}

}  // namespace weft
