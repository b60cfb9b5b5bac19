// systemd's notify protocol: one AF_UNIX datagram to $NOTIFY_SOCKET (a path,
// or "@name" for the abstract namespace), optionally carrying fds (SCM_RIGHTS,
// for FDSTORE=1), and BARRIER=1 (sd_notify_barrier: wait until systemd has
// handled everything sent before). Node's dgram has no unix datagrams.
// listen/recv are the receiving side, for tests (a fake systemd).
#include "common.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace weft {

namespace {

socklen_t NotifyAddress(Napi::Env env, const std::string& path, sockaddr_un* sa) {
  *sa = sockaddr_un{};
  sa->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa->sun_path) {
    throw Napi::Error::New(env, "NOTIFY_SOCKET '" + path + "' is empty or longer than " + std::to_string(sizeof sa->sun_path - 1) + " bytes");
  }
  if (path[0] != '/' && path[0] != '@') {
    throw Napi::Error::New(env, "NOTIFY_SOCKET '" + path + "' must be an absolute path or start with '@'");
  }
  std::memcpy(sa->sun_path, path.data(), path.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + path.size();
  if (path[0] == '@') {
    sa->sun_path[0] = '\0';  // abstract namespace
  } else {
    len += 1;  // include the terminating NUL for filesystem sockets
  }
  return len;
}

std::vector<int> Fds(Napi::Env env, const Napi::Value& v) {
  std::vector<int> out;
  if (v.IsUndefined()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(env, "fds must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber() || x.As<Napi::Number>().Int32Value() < 0) throw Napi::TypeError::New(env, "fds[" + std::to_string(i) + "] must be an fd");
    out.push_back(x.As<Napi::Number>().Int32Value());
  }
  if (out.size() > 253) throw Napi::RangeError::New(env, "at most 253 fds in one message");  // SCM_MAX_FD
  return out;
}

// Sends msg (with fds, if any) to path; returns errno (0: sent).
int Send(Napi::Env env, const std::string& path, const std::string& msg, const std::vector<int>& fds) {
  sockaddr_un sa;
  socklen_t len = NotifyAddress(env, path, &sa);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "notify socket", errno);
  iovec iov{const_cast<char*>(msg.data()), msg.size()};
  msghdr mh{};
  mh.msg_name = &sa;
  mh.msg_namelen = len;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  close(fd);
  return err;
}

// notify(socketPath, message[, fds]): sends one datagram (the fds as SCM_RIGHTS); throws with errno on failure.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();
  std::vector<int> fds = Fds(env, info[2]);
  int err = Send(env, path, msg, fds);
  if (err != 0) ThrowErrno(env, "notify " + path, err);
  return env.Undefined();
}

// barrier(socketPath, timeoutMs) -> bool: BARRIER=1 with the write end of a pipe; true once the
// receiver has closed it (it has handled every earlier message), false on timeout.
Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int timeoutMs = info[1].As<Napi::Number>().Int32Value();
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) ThrowErrno(env, "notify barrier: pipe2", errno);
  int err = Send(env, path, "BARRIER=1", {p[1]});
  close(p[1]);
  if (err != 0) {
    close(p[0]);
    ThrowErrno(env, "notify " + path, err);
  }
  pollfd pfd{p[0], POLLIN, 0};
  int r;
  do r = poll(&pfd, 1, timeoutMs); while (r < 0 && errno == EINTR);
  close(p[0]);
  return Napi::Boolean::New(env, r > 0);
}

// keep(fd): an fd systemd passed (LISTEN_FDS) made close-on-exec, as sd_listen_fds does; throws (EBADF) when it is not open.
Napi::Value Keep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) ThrowErrno(env, "LISTEN_FDS: fd " + std::to_string(fd), errno);
  return env.Undefined();
}

// listen(socketPath) -> fd: a bound AF_UNIX datagram socket (tests: a fake systemd).
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un sa;
  socklen_t len = NotifyAddress(env, path, &sa);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "notify listen: socket", errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "notify listen: bind " + path, e);
  }
  return Napi::Number::New(env, fd);
}

// recv(fd, timeoutMs) -> { message, fds } | null on timeout: one datagram and the fds it carried (CLOEXEC).
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int timeoutMs = info[1].As<Napi::Number>().Int32Value();
  pollfd pfd{fd, POLLIN, 0};
  int r;
  do r = poll(&pfd, 1, timeoutMs); while (r < 0 && errno == EINTR);
  if (r < 0) ThrowErrno(env, "notify recv: poll", errno);
  if (r == 0) return env.Null();
  std::vector<char> buf(65536);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * 253));
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control.data();
  mh.msg_controllen = control.size();
  ssize_t n;
  do n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "notify recv", errno);
  Napi::Array fds = Napi::Array::New(env);
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      fds.Set(fds.Length(), got);
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("message", Napi::String::New(env, buf.data(), static_cast<size_t>(n)));
  o.Set("fds", fds);
  o.Set("truncated", Napi::Boolean::New(env, (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0));
  return o;
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, Notify));
  Napi::Object sd = Napi::Object::New(env);
  sd.Set("barrier", Napi::Function::New(env, Barrier));
  sd.Set("keep", Napi::Function::New(env, Keep));
  sd.Set("listen", Napi::Function::New(env, Listen));
  sd.Set("recv", Napi::Function::New(env, Recv));
  exports.Set("sdNotifySocket", sd);
}

}  // namespace weft
