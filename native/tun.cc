// TUN devices: open /dev/net/tun and attach (creating if needed) a named
// IFF_TUN device or one more queue of an IFF_MULTI_QUEUE one, optionally inside
// another network namespace; make it persistent (it outlives its fds, with its
// addresses and routes); switch on the virtio_net_hdr offloads of one opened with
// IFF_VNET_HDR.
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
  if (fd < 0) ThrowErrno(env, "attaching TUN '" + name + "' (open /dev/net/tun, TUNSETIFF)", err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("name", Napi::String::New(env, a.name));
  return o;
}

// setPersist(fd, on): TUNSETPERSIST. A persistent TUN stays when its last fd closes (its
// carrier goes off: the kernel drops what is routed to it, nothing is queued or leaks).
Napi::Value SetPersist(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) throw Napi::TypeError::New(env, "setPersist expects (fd, on)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool on = info[1].As<Napi::Boolean>().Value();
  if (ioctl(fd, TUNSETPERSIST, static_cast<unsigned long>(on ? 1 : 0)) != 0) ThrowErrno(env, std::string("ioctl(TUNSETPERSIST, ") + (on ? "1)" : "0)"), errno);
  return env.Undefined();
}

// USO (GSO_UDP_L4 through a TUN) came with Linux 6.2; older uapi headers lack the names.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

// enableOffload(fd, uso = true) -> offload bits the kernel accepted (TUN_F_*).
// For a TUN opened with IFF_VNET_HDR: a 10-byte little-endian virtio_net_hdr on
// every read and write, then TUNSETOFFLOAD with everything the engine can split
// (checksum, TSO4/6 incl. ECN, USO4/6 unless uso is false). The kernel answers
// EINVAL for bits it does not know, so ask again with fewer: what is on is
// detected, not assumed.
Napi::Value EnableOffload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "enableOffload expects a TUN fd");
  if (info.Length() >= 2 && !info[1].IsUndefined() && !info[1].IsBoolean()) throw Napi::TypeError::New(env, "enableOffload: uso must be a boolean");
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool uso = info.Length() < 2 || info[1].IsUndefined() || info[1].As<Napi::Boolean>().Value();
  int sz = 10;
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) != 0) ThrowErrno(env, "ioctl(TUNSETVNETHDRSZ, 10)", errno);
  int le = 1;
  // Without TUNSETVNETLE the header is in host order: only a big-endian host must have it.
  if (ioctl(fd, TUNSETVNETLE, &le) != 0 && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) ThrowErrno(env, "ioctl(TUNSETVNETLE, 1)", errno);
  const unsigned tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  const unsigned tries[] = {tso | TUN_F_USO4 | TUN_F_USO6, tso, TUN_F_CSUM};
  int err = 0;
  for (unsigned bits : tries) {
    if (!uso && (bits & TUN_F_USO4) != 0) continue;
    if (ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(bits)) == 0) return Napi::Number::New(env, bits);
    err = errno;
    if (err != EINVAL) break;
  }
  ThrowErrno(env, "ioctl(TUNSETOFFLOAD)", err);
}

}  // namespace

void InitTun(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("open", Napi::Function::New(env, OpenTun));
  t.Set("enableOffload", Napi::Function::New(env, EnableOffload));
  t.Set("setPersist", Napi::Function::New(env, SetPersist));
  t.Set("IFF_MULTI_QUEUE", IFF_MULTI_QUEUE);
  t.Set("IFF_TUN", IFF_TUN);
  t.Set("IFF_NO_PI", IFF_NO_PI);
  t.Set("IFF_VNET_HDR", IFF_VNET_HDR);
  t.Set("TUN_F_CSUM", TUN_F_CSUM);
  t.Set("TUN_F_TSO4", TUN_F_TSO4);
  t.Set("TUN_F_TSO6", TUN_F_TSO6);
  t.Set("TUN_F_TSO_ECN", TUN_F_TSO_ECN);
  t.Set("TUN_F_USO4", TUN_F_USO4);
  t.Set("TUN_F_USO6", TUN_F_USO6);
  exports.Set("tun", t);
}

}  // namespace weft
