// The fd holder: a tiny process that keeps the forwarder's TUN queues and UDP
// sockets open while weftd is down (crashed, killed, restarting), so that the
// kernel queues what arrives instead of dropping it, and the next weftd takes
// the very same files back (pidfd_getfd) and drains them. It is /bin/sleep,
// double-forked (reparented away from weftd, in its own session, stdio on
// /dev/null) with exactly the given fds left open; argv[0] carries a marker the
// TypeScript side finds it by (backend/udp/holder.ts). No policy here.
#include "common.h"
#include "udp-batch.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace weft {

namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

std::vector<int> FdList(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, "fds must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber() || x.As<Napi::Number>().Int32Value() < 0) throw Napi::TypeError::New(env, "fds[" + std::to_string(i) + "] must be an fd");
    out.push_back(x.As<Napi::Number>().Int32Value());
  }
  return out;
}

// spawn(fds, marker) -> pid: /bin/sleep infinity with argv[0] = marker, holding fds (same numbers).
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int> fds = FdList(env, info[0]);
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "spawn expects (fds, marker)");
  std::string marker = info[1].As<Napi::String>().Utf8Value();
  for (int fd : fds) {
    if (fd <= 2) throw Napi::RangeError::New(env, "the holder's stdio is /dev/null: fd " + std::to_string(fd) + " cannot be held");
    if (fcntl(fd, F_GETFD) < 0) ThrowErrno(env, "holder: fd " + std::to_string(fd), errno);
  }
  // Everything the children use is made before fork: after it only async-signal-safe calls.
  char* const argv[] = {marker.data(), const_cast<char*>("infinity"), nullptr};
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) ThrowErrno(env, "holder: pipe2", errno);
  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    ThrowErrno(env, "holder: fork", e);
  }
  if (child == 0) {
    close(p[0]);
    setsid();
    pid_t holder = fork();
    if (holder != 0) {  // the middle child: say who the holder is (or why there is none), then go
      int msg[2] = {holder, holder < 0 ? errno : 0};
      (void)!write(p[1], msg, sizeof msg);
      _exit(0);
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      if (null > 2) close(null);
    }
    for (int fd : fds) fcntl(fd, F_SETFD, 0);  // these survive the exec; everything else is CLOEXEC (Node's and ours)
    execv("/bin/sleep", argv);
    int e = errno;
    (void)!write(p[1], &e, sizeof e);
    _exit(127);
  }
  close(p[1]);
  int msg[2] = {-1, 0}, execErr = 0;
  ssize_t n;
  do n = read(p[0], msg, sizeof msg); while (n < 0 && errno == EINTR);
  ssize_t m;
  do m = read(p[0], &execErr, sizeof execErr); while (m < 0 && errno == EINTR);  // EOF: the exec happened
  close(p[0]);
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof msg || msg[0] < 0) ThrowErrno(env, "holder: fork (second)", n == sizeof msg ? msg[1] : EIO);
  if (m == sizeof execErr) ThrowErrno(env, "holder: exec /bin/sleep", execErr);
  return Napi::Number::New(env, msg[0]);
}

// take(pid, fds) -> fds: copies of the holder's fds in this process (pidfd_getfd; CLOEXEC).
Napi::Value Take(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "take expects (pid, fds)");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  std::vector<int> fds = FdList(env, info[1]);
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) ThrowErrno(env, "holder: pidfd_open(" + std::to_string(pid) + ")", errno);
  std::vector<int> got;
  for (int fd : fds) {
    int g = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
    if (g < 0) {
      int e = errno;
      for (int x : got) close(x);
      close(pidfd);
      ThrowErrno(env, "holder: pidfd_getfd(" + std::to_string(pid) + ", " + std::to_string(fd) + ")", e);
    }
    got.push_back(g);
  }
  close(pidfd);
  Napi::Array out = Napi::Array::New(env, got.size());
  for (size_t i = 0; i < got.size(); i++) out.Set(static_cast<uint32_t>(i), got[i]);
  return out;
}

// end(pid, waitMs) -> whether it is gone: SIGKILL through a pidfd (no pid reuse race), then
// wait until it has exited (its fds are closed by then).
Napi::Value End(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "end expects (pid, waitMs)");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  int waitMs = info[1].As<Napi::Number>().Int32Value();
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, true);
    ThrowErrno(env, "holder: pidfd_open(" + std::to_string(pid) + ")", errno);
  }
  if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) != 0 && errno != ESRCH) {
    int e = errno;
    close(pidfd);
    ThrowErrno(env, "holder: pidfd_send_signal(" + std::to_string(pid) + ", SIGKILL)", e);
  }
  pollfd pfd{pidfd, POLLIN, 0};
  int r;
  do r = poll(&pfd, 1, waitMs); while (r < 0 && errno == EINTR);
  close(pidfd);
  return Napi::Boolean::New(env, r > 0);
}

// tunInfo(fd) -> { name, flags } of a TUN fd (TUNGETIFF); throws for anything else.
Napi::Value TunInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "tunInfo expects (fd)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) != 0) ThrowErrno(env, "ioctl(TUNGETIFF)", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ))));
  o.Set("flags", Napi::Number::New(env, static_cast<uint16_t>(ifr.ifr_flags)));
  return o;
}

// udpInfo(fd) -> { address, port } of a bound IPv4 or IPv6 UDP socket ("::" for one bound to
// both families); throws for anything else.
Napi::Value UdpInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "udpInfo expects (fd)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int type = 0, proto = 0;
  socklen_t tl = sizeof type, pl = sizeof proto;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) ThrowErrno(env, "getsockopt(SO_TYPE)", errno);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) != 0) ThrowErrno(env, "getsockopt(SO_PROTOCOL)", errno);
  SockAddr sa{};
  socklen_t sl = sizeof sa;
  if (getsockname(fd, &sa.sa, &sl) != 0) ThrowErrno(env, "getsockname", errno);
  bool v6 = sa.sa.sa_family == AF_INET6;
  if (type != SOCK_DGRAM || proto != IPPROTO_UDP || (!v6 && sa.sa.sa_family != AF_INET)) ThrowErrno(env, "not a bound IPv4 or IPv6 UDP socket", EINVAL);
  char ip[INET6_ADDRSTRLEN];
  inet_ntop(sa.sa.sa_family, v6 ? static_cast<const void*>(&sa.v6.sin6_addr) : &sa.v4.sin_addr, ip, sizeof ip);
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", Napi::String::New(env, ip));
  o.Set("port", Napi::Number::New(env, ntohs(v6 ? sa.v6.sin6_port : sa.v4.sin_port)));
  return o;
}

}  // namespace

void InitHolder(Napi::Env env, Napi::Object exports) {
  Napi::Object h = Napi::Object::New(env);
  h.Set("spawn", Napi::Function::New(env, Spawn));
  h.Set("take", Napi::Function::New(env, Take));
  h.Set("end", Napi::Function::New(env, End));
  h.Set("tunInfo", Napi::Function::New(env, TunInfo));
  h.Set("udpInfo", Napi::Function::New(env, UdpInfo));
  exports.Set("holder", h);
}

}  // namespace weft
