// exports.forwarder: start / setTable / stats / stop of the native engine
// (forwarder.h). Arguments are checked here; the threads never see N-API.
#include "binding.h"

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <netinet/udp.h>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

namespace weft {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// What a JS handle holds: the sockets the forwarder uses and the forwarder. Members are
// destroyed in reverse order: the threads are joined before their fds close.
struct Handle {
  Handle(int udp, int ev) : udp(udp), ev(ev) {}
  Fd udp, ev;
  std::unique_ptr<Forwarder> fwd;
};

Handle* Unwrap(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a forwarder handle");
  return info[0].As<Napi::External<Handle>>().Data();
}

// Sets a socket buffer size, as root beyond net.core.[rw]mem_max (…BUFFORCE), else as far as allowed.
void SetBuf(int fd, int force, int plain, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) == 0) return;
  setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes);  // capped by the sysctl; never fatal
}

// start({ tunFd, bindIp, port, ownIp, ownSubnets, bufferBytes?, vnetHdr?, udpGso?, udpGro? }) -> handle
// vnetHdr: the TUN was opened with IFF_VNET_HDR and its offloads enabled (tun.enableOffload);
// then UDP_SEGMENT sends (udpGso, default on) and UDP_GRO receives (udpGro, default on) are tried.
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "forwarder.start expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  ForwarderConfig c;
  c.tunFd = IntField(env, o, "tunFd", 0, 1 << 30);
  uint32_t bindIp = ParseIp(env, o.Get("bindIp"), "bindIp");
  int port = IntField(env, o, "port", 1, 65535);
  c.ownIp = ParseIp(env, o.Get("ownIp"), "ownIp");
  c.ownSubnets = ParsePrefixes(env, o.Get("ownSubnets"), "ownSubnets");
  int bufBytes = o.Has("bufferBytes") && o.Get("bufferBytes").IsNumber() ? IntField(env, o, "bufferBytes", 65536, 1 << 30) : 8 << 20;
  c.vnetHdr = BoolField(o, "vnetHdr", false);
  c.udpGso = c.vnetHdr && BoolField(o, "udpGso", true);
  bool wantGro = c.vnetHdr && BoolField(o, "udpGro", true);

  int fl = fcntl(c.tunFd, F_GETFL);
  if (fl < 0) ThrowErrno(env, "fcntl(tunFd F_GETFL)", errno);

  auto h = std::make_unique<Handle>(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (h->udp.get() < 0) ThrowErrno(env, "socket(AF_INET, SOCK_DGRAM)", errno);
  if (h->ev.get() < 0) ThrowErrno(env, "eventfd", errno);
  c.udpFd = h->udp.get();
  c.eventFd = h->ev.get();
  SetBuf(c.udpFd, SO_RCVBUFFORCE, SO_RCVBUF, bufBytes);
  SetBuf(c.udpFd, SO_SNDBUFFORCE, SO_SNDBUF, bufBytes);
  if (wantGro) {
    int one = 1;
    c.udpGro = setsockopt(c.udpFd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;  // absent before Linux 5.0: then none
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(bindIp);
  if (bind(c.udpFd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    ThrowErrno(env, std::string("bind UDP ") + ip + ":" + std::to_string(port), e);
  }
  // The TUN fd changes only once nothing else can fail, and changes back if the threads cannot start.
  if (fcntl(c.tunFd, F_SETFL, fl | O_NONBLOCK) != 0) ThrowErrno(env, "fcntl(tunFd O_NONBLOCK)", errno);
  h->fwd = std::make_unique<Forwarder>(c, LinuxSyscalls());
  try {
    h->fwd->Start();
  } catch (const std::system_error& e) {
    fcntl(c.tunFd, F_SETFL, fl);
    ThrowErrno(env, "starting the forwarder threads", e.code().value());
  }
  // A handle dropped without stop() still stops its threads when collected (or at env teardown).
  auto ext = Napi::External<Handle>::New(env, h.get(), [](Napi::Env, Handle* p) { delete p; });
  h.release();
  return ext;
}

// setTable(handle, [{ subnet: "10.244.3.0", prefixLen: 24, peerIp: "192.0.2.13", port: 8285 }, ...])
Napi::Value SetTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = Unwrap(info);
  if (info.Length() < 2) throw Napi::TypeError::New(env, "setTable expects an array of routes");
  std::vector<RouteSpec> routes = ParseRoutes(env, info[1]);
  Forwarder& f = *h->fwd;
  f.SetTable(Table::Build(routes, f.table().get()));
  return env.Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo& info) { return StatsObject(info.Env(), *Unwrap(info)->fwd); }

// stop(handle): wakes and joins both threads, closes the UDP socket and eventfd. Idempotent.
Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = Unwrap(info);
  int err = h->fwd->Stop();
  h->udp.Reset();
  h->ev.Reset();
  if (err != 0) ThrowErrno(env, "forwarder stop: eventfd write", err);
  return env.Undefined();
}

}  // namespace

Napi::Object StatsObject(Napi::Env env, const Forwarder& f) {
  const Counters& c = f.counters;
  auto n = [&](const Counter& x) { return Napi::Number::New(env, static_cast<double>(Get(x))); };
  auto drops = [&](const Counter* d) {
    Napi::Object o = Napi::Object::New(env);
    for (int i = 0; i < kDropCount; i++) o.Set(kDropNames[i], n(d[i]));
    return o;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("txPackets", n(c.txPackets));
  o.Set("txBytes", n(c.txBytes));
  o.Set("rxPackets", n(c.rxPackets));
  o.Set("rxBytes", n(c.rxBytes));
  o.Set("icmpSent", n(c.icmpSent));
  o.Set("icmpSuppressed", n(c.icmpSuppressed));
  o.Set("drops", drops(c.drops));
  Napi::Object peers = Napi::Object::New(env);
  auto t = f.table();
  for (const Route& r : t->routes()) {
    if (peers.Has(r.peerKey)) continue;
    Napi::Object p = Napi::Object::New(env);
    p.Set("txPackets", n(r.counters->txPackets));
    p.Set("txBytes", n(r.counters->txBytes));
    p.Set("rxPackets", n(r.counters->rxPackets));
    p.Set("rxBytes", n(r.counters->rxBytes));
    p.Set("drops", drops(r.counters->drops));
    peers.Set(r.peerKey, p);
  }
  o.Set("peers", peers);
  Napi::Object e = Napi::Object::New(env);
  e.Set("tunThread", c.tunThreadErrno.load());
  e.Set("udpThread", c.udpThreadErrno.load());
  e.Set("lastSend", c.lastSendErrno.load());
  e.Set("lastTunWrite", c.lastTunWriteErrno.load());
  o.Set("errno", e);
  const ForwarderConfig& cfg = f.config();
  Napi::Object of = Napi::Object::New(env);
  of.Set("vnetHdr", cfg.vnetHdr);
  of.Set("udpGso", cfg.udpGso);
  of.Set("udpGro", cfg.udpGro);
  of.Set("verifyChecksums", true);  // always, since issue 10; kept for the stats' shape
  of.Set("tsoReads", n(c.tsoReads));
  of.Set("gsoSends", n(c.gsoSends));
  of.Set("gsoSegments", n(c.gsoSegments));
  of.Set("gsoFallbacks", n(c.gsoFallbacks));
  of.Set("lastGsoErrno", c.lastGsoErrno.load());
  of.Set("groReceives", n(c.groReceives));
  of.Set("groSegments", n(c.groSegments));
  of.Set("coalescedWrites", n(c.coalescedWrites));
  of.Set("mergedSegments", n(c.mergedSegments));
  of.Set("mergeFallbacks", n(c.mergeFallbacks));
  o.Set("offload", of);
  return o;
}

void InitForwarder(Napi::Env env, Napi::Object exports) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("start", Napi::Function::New(env, Start));
  f.Set("setTable", Napi::Function::New(env, SetTable));
  f.Set("stats", Napi::Function::New(env, Stats));
  f.Set("stop", Napi::Function::New(env, Stop));
  exports.Set("forwarder", f);
}

}  // namespace weft
