// TUN devices: open /dev/net/tun and attach (creating if needed) a named
// IFF_TUN device, optionally inside another network namespace.
#include "common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace weft {

namespace {

struct TunArgs {
  char name[IFNAMSIZ];
  short flags;
};

int DoOpenTun(void* p) {
  auto* a = static_cast<TunArgs*>(p);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", a->name);
  ifr.ifr_flags = a->flags;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  std::snprintf(a->name, IFNAMSIZ, "%s", ifr.ifr_name);
  return fd;
}

// openTun(name, flags, netnsPath?) -> { fd, name }
Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TunArgs a{};
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.size() >= IFNAMSIZ) {
    throw Napi::Error::New(env, "TUN name '" + name + "' is longer than 15 bytes");
  }
  std::strncpy(a.name, name.c_str(), IFNAMSIZ - 1);
  a.flags = static_cast<short>(info[1].As<Napi::Number>().Int32Value());
  std::string ns = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  int err = 0;
  int fd = InNetns(ns, DoOpenTun, &a, &err);
  if (fd < 0) ThrowErrno(env, "open TUN '" + name + "'", err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("name", Napi::String::New(env, a.name));
  return o;
}

}  // namespace

void InitTun(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("open", Napi::Function::New(env, OpenTun));
  t.Set("IFF_TUN", IFF_TUN);
  t.Set("IFF_NO_PI", IFF_NO_PI);
  t.Set("IFF_VNET_HDR", IFF_VNET_HDR);
  exports.Set("tun", t);
}

}  // namespace weft
