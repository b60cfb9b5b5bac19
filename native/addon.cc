#include "common.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <thread>
#include <unistd.h>

namespace weft {

static const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ENXIO: return "ENXIO";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case EMSGSIZE: return "EMSGSIZE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH";
    case ENOBUFS: return "ENOBUFS";
    case EBADFD: return "EBADFD";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    default: return "EUNKNOWN";
  }
}

void ThrowErrno(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + std::strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  throw e;
}

int InNetns(const std::string& netnsPath, int (*fn)(void*), void* arg, int* err) {
  if (netnsPath.empty()) {
    int r = fn(arg);
    *err = errno;
    return r;
  }
  int result = -1;
  int saved = 0;
  // setns(CLONE_NEWNET) changes only the calling thread, so a throwaway
  // thread keeps the JS thread in its own namespace whatever happens.
  std::thread t([&]() {
    int nsfd = open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) { saved = errno; return; }
    if (setns(nsfd, CLONE_NEWNET) != 0) { saved = errno; close(nsfd); return; }
    close(nsfd);
    result = fn(arg);
    saved = errno;
  });
  t.join();
  *err = saved;
  return result;
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0) ThrowErrno(env, "close(" + std::to_string(fd) + ")", errno);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("close", Napi::Function::New(env, CloseFd));
  InitNetlink(env, exports);
  InitTun(env, exports);
  InitNotify(env, exports);
  InitForwarder(env, exports);
  InitHolder(env, exports);
  InitTesting(env, exports);
  return exports;
}

}  // namespace weft

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return weft::Init(env, exports); }

NODE_API_MODULE(weft_native, InitAddon)
