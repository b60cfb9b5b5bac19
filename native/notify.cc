// systemd's notify protocol: one AF_UNIX datagram to $NOTIFY_SOCKET (a path,
// or "@name" for the abstract namespace). Node's dgram has no unix datagrams.
#include "common.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace weft {

namespace {

// notify(socketPath, message): sends one datagram; throws with errno on failure.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path) {
    throw Napi::Error::New(env, "NOTIFY_SOCKET '" + path + "' is empty or longer than " + std::to_string(sizeof sa.sun_path - 1) + " bytes");
  }
  if (path[0] != '/' && path[0] != '@') {
    throw Napi::Error::New(env, "NOTIFY_SOCKET '" + path + "' must be an absolute path or start with '@'");
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + path.size();
  if (path[0] == '@') {
    sa.sun_path[0] = '\0';  // abstract namespace
  } else {
    len += 1;  // include the terminating NUL for filesystem sockets
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "notify socket", errno);
  ssize_t n;
  do {
    n = sendto(fd, msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) ThrowErrno(env, "notify " + path, err);
  return env.Undefined();
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, Notify));
}

}  // namespace weft
