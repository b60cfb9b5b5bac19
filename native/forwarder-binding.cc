// exports.forwarder: start / setTable / stats / stop of the native engine
// (forwarder.h). Arguments are checked here; the threads never see N-API.
#include "binding.h"

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <linux/filter.h>
#include <memory>
#include <netinet/udp.h>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

namespace weft {

namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
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
  std::vector<Fd> udp;
  std::vector<Fd> tx;  // worker k's send socket (bound to port + k) at k - 1
  Fd ev;
  bool flowSteering = false;  // the reuseport BPF program is attached (more than one worker)
  bool v6Socket = false;      // AF_INET6 sockets (bindIp an IPv6 address, "::": both families)
  std::unique_ptr<Forwarder> fwd;
  void CloseFds() {
    udp.clear();
    tx.clear();
    ev.Reset();
  }
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

// The reuseport program that keeps a flow on one worker: it runs on each datagram, or on
// each run the kernel's UDP_GRO merged (one outer source, so one socket for all of it), and
// returns the index of the socket (in bind order) whose worker takes it: the OUTER UDP
// source port minus Backend.Port, modulo the workers. Worker k of a sender sends from port
// Backend.Port + k (TxSocket), so its datagrams land on worker k mod n here, whose replies
// go out from that worker's port and land on the same worker index back there (the kernel
// sends an inner flow to the TUN queue that last wrote it). So within a round trip both ends
// carry a flow on the same worker index, below both hosts' worker counts, and it stays there:
// it never alternates between workers, as a hash of the outer 4-tuple could make it do. A
// peer that sends everything from Backend.Port (flannel, the dgram engine, one worker) lands
// on worker 0 whole. The port is read relative to the outer network header (SKF_NET_OFF; the
// data starts at the UDP payload): at IHL * 4 for IPv4, at 40 for IPv6 (no extension headers
// are looked at: such datagrams go to a fixed worker all the same). A load beyond the packet
// ends the program with 0: worker 0. Classic BPF, which jumps only forward.
std::vector<sock_filter> FlowSteeringProgram(unsigned workers, uint16_t port) {
  const uint32_t net = static_cast<uint32_t>(SKF_NET_OFF);
  return {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, net),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 3, 0),       // IPv6: to the load at 40
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, net),           // X = IHL * 4
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, net),            // A = source port
      BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, net + 40),
      BPF_STMT(BPF_ALU | BPF_SUB | BPF_K, port),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xffff),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, workers),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
}

// A UDP socket of sa's family with SO_REUSEPORT (and, for AF_INET6, IPV6_V6ONLY off), not bound yet.
Fd ReusePortSocket(Napi::Env env, const SockAddr& sa) {
  bool v6 = sa.sa.sa_family == AF_INET6;
  Fd fd(socket(sa.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) ThrowErrno(env, v6 ? "socket(AF_INET6, SOCK_DGRAM)" : "socket(AF_INET, SOCK_DGRAM)", errno);
  int one = 1, zero = 0;
  if (v6 && setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) ThrowErrno(env, "setsockopt(IPV6_V6ONLY 0)", errno);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ThrowErrno(env, "setsockopt(SO_REUSEPORT)", errno);
  return fd;
}

// socket(AF_INET or AF_INET6, SOCK_DGRAM) with SO_REUSEPORT, its buffers and UDP_GRO, bound
// to sa. AF_INET6 with IPV6_V6ONLY off: bound to "::", IPv4 datagrams arrive too (from
// v4-mapped ::ffff:a.b.c.d), and IPv4 peers are sent to at their v4-mapped address.
Fd BoundSocket(Napi::Env env, const SockAddr& sa, int bufBytes, bool gro, bool* groOn) {
  Fd fd = ReusePortSocket(env, sa);
  int one = 1;
  SetBuf(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF, bufBytes);
  SetBuf(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF, bufBytes);
  // Absent before Linux 5.0: then no GRO at all (every socket of a forwarder alike).
  if (gro) *groOn = setsockopt(fd.get(), SOL_UDP, UDP_GRO, &one, sizeof one) == 0 && *groOn;
  if (bind(fd.get(), &sa.sa, SockAddrLen(sa)) != 0) {
    int e = errno;
    ThrowErrno(env, "bind UDP " + FormatSockAddr(sa), e);
  }
  return fd;
}

// The socket worker k (k >= 1) sends from: bindIp, port Backend.Port + k, so that the
// receivers' FlowSteeringProgram keeps its flows on one worker and their UDP_GRO can merge
// its runs apart from the other workers'. It takes nothing in: a filter drops every datagram
// sent to it. SO_REUSEPORT: an fd holder may still keep the previous forwarder's one bound.
Fd TxSocket(Napi::Env env, const SockAddr& sa, int bufBytes, size_t worker) {
  Fd fd = ReusePortSocket(env, sa);
  sock_filter dropAll = BPF_STMT(BPF_RET | BPF_K, 0);
  sock_fprog fp{1, &dropAll};
  if (setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) != 0) ThrowErrno(env, "setsockopt(SO_ATTACH_FILTER)", errno);
  SetBuf(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF, bufBytes);
  if (bind(fd.get(), &sa.sa, SockAddrLen(sa)) != 0) {
    int e = errno;
    ThrowErrno(env, "bind UDP " + FormatSockAddr(sa) + " (the source port of worker " + std::to_string(worker) + ": Backend.Port + " + std::to_string(worker) + ")", e);
  }
  return fd;
}

// Takes over a socket of an earlier forwarder: checks that it is a UDP socket of bindIp's family.
void CheckAdopted(Napi::Env env, int fd, const SockAddr& sa) {
  int type = 0;
  socklen_t tl = sizeof type;
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) ThrowErrno(env, "adopting UDP socket " + std::to_string(fd), fd < 0 ? EBADF : errno);
  SockAddr bound{};
  socklen_t bl = sizeof bound;
  if (getsockname(fd, &bound.sa, &bl) != 0) ThrowErrno(env, "adopting UDP socket " + std::to_string(fd), errno);
  if (type != SOCK_DGRAM || bound.sa.sa_family != sa.sa.sa_family) ThrowErrno(env, "adopting UDP socket " + std::to_string(fd) + ": not a UDP socket of bindIp's address family", EAFNOSUPPORT);
}

std::vector<int> FdArray(const Napi::Value& v) {
  std::vector<int> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).IsNumber() ? a.Get(i).As<Napi::Number>().Int32Value() : -1);
  return out;
}

// start({ tunFds, udpFds?, txFds?, routes?, bindIp (IPv4, or IPv6: "::" for both families), port, ownIp, ownIp6?, ownSubnets (IPv4 and IPv6), bufferBytes?, vnetHdr?, udpGso?, udpGro?, tunUso? }) -> handle
// One worker per TUN queue fd, each with its own UDP socket bound to bindIp:port (one
// SO_REUSEPORT group, steered by FlowSteeringProgram when there are several); worker 0
// sends from it, worker k >= 1 from a socket of its own bound to bindIp:port+k (TxSocket).
// udpFds, txFds: the sockets of an earlier forwarder, taken back from the fd holder (one per
// TUN fd; one per worker from 1 on), adopted as they are (bound, their options set) instead.
// vnetHdr: the TUN was opened with IFF_VNET_HDR and its offloads enabled (tun.enableOffload);
// then UDP_SEGMENT sends (udpGso, default on) and UDP_GRO receives (udpGro, default on) are
// tried, and tunUso merges UDP datagrams into USO writes: default off, as only a TUN that
// accepted TUN_F_USO4 takes them (NativeEngine sets it from the bits enableOffload returned).
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "forwarder.start expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  ForwarderConfig c;
  if (!o.Get("tunFds").IsArray()) throw Napi::TypeError::New(env, "tunFds must be an array of TUN queue fds");
  Napi::Array fds = o.Get("tunFds").As<Napi::Array>();
  if (fds.Length() < 1 || fds.Length() > kMaxWorkers) throw Napi::RangeError::New(env, "tunFds must hold 1.." + std::to_string(kMaxWorkers) + " fds, got " + std::to_string(fds.Length()));
  for (uint32_t i = 0; i < fds.Length(); i++) {
    Napi::Value v = fds.Get(i);
    if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) throw Napi::TypeError::New(env, "tunFds[" + std::to_string(i) + "] must be an fd");
    c.tunFds.push_back(v.As<Napi::Number>().Int32Value());
  }
  SockAddr sa{};
  if (o.Get("bindIp").IsString() && o.Get("bindIp").As<Napi::String>().Utf8Value().find(':') != std::string::npos) {
    sa.v6.sin6_family = AF_INET6;
    ParseIp6(env, o.Get("bindIp"), "bindIp", reinterpret_cast<uint8_t*>(&sa.v6.sin6_addr));
  } else {
    sa.v4.sin_family = AF_INET;
    sa.v4.sin_addr.s_addr = htonl(ParseIp(env, o.Get("bindIp"), "bindIp"));
  }
  int port = IntField(env, o, "port", 1, 65535);
  size_t workers = c.tunFds.size();
  if (static_cast<size_t>(port) + workers - 1 > 65535) throw Napi::RangeError::New(env, "port " + std::to_string(port) + " + " + std::to_string(workers - 1) + " workers' source ports exceed 65535");
  c.ownIp = ParseIp(env, o.Get("ownIp"), "ownIp");
  c.ownSubnets = ParsePrefixes(env, o.Get("ownSubnets"), "ownSubnets", &c.ownSubnets6);
  if (o.Has("ownIp6") && !o.Get("ownIp6").IsUndefined()) {
    ParseIp6(env, o.Get("ownIp6"), "ownIp6", c.ownIp6);
    c.hasOwnIp6 = true;
  }
  int bufBytes = o.Has("bufferBytes") && o.Get("bufferBytes").IsNumber() ? IntField(env, o, "bufferBytes", 65536, 1 << 30) : 8 << 20;
  c.vnetHdr = BoolField(o, "vnetHdr", false);
  c.udpGso = c.vnetHdr && BoolField(o, "udpGso", true);
  c.tunUso = c.vnetHdr && BoolField(o, "tunUso", false);
  // UDP_GRO with any number of workers: the kernel merges only datagrams of one outer source
  // port, that is of one sending worker, and FlowSteeringProgram steers by that port.
  bool wantGro = c.vnetHdr && BoolField(o, "udpGro", true);

  std::vector<int> flags;
  for (int fd : c.tunFds) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) ThrowErrno(env, "fcntl(tunFd " + std::to_string(fd) + " F_GETFL)", errno);
    flags.push_back(fl);
  }
  auto h = std::make_unique<Handle>();
  h->ev = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (h->ev.get() < 0) ThrowErrno(env, "eventfd", errno);
  auto setPort = [&](int p) { (sa.sa.sa_family == AF_INET6 ? sa.v6.sin6_port : sa.v4.sin_port) = htons(static_cast<uint16_t>(p)); };
  setPort(port);
  h->v6Socket = sa.sa.sa_family == AF_INET6;
  c.udpGro = wantGro;
  if (o.Get("udpFds").IsArray()) {
    std::vector<int> given = FdArray(o.Get("udpFds"));
    if (given.size() != workers) throw Napi::RangeError::New(env, "udpFds must hold one socket per TUN fd");
    for (int fd : given) {
      CheckAdopted(env, fd, sa);
      h->udp.push_back(Fd(fd));  // the handle owns it from here
      int one = 1;
      // An earlier forwarder of several workers may have had it off: on now, as for new sockets.
      if (wantGro) c.udpGro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0 && c.udpGro;
      c.udpFds.push_back(fd);
    }
  }
  for (size_t i = c.udpFds.size(); i < workers; i++) {
    h->udp.push_back(BoundSocket(env, sa, bufBytes, wantGro, &c.udpGro));
    c.udpFds.push_back(h->udp.back().get());
  }
  if (o.Get("txFds").IsArray()) {
    std::vector<int> given = FdArray(o.Get("txFds"));
    if (given.size() != workers - 1) throw Napi::RangeError::New(env, "txFds must hold one socket per worker after the first");
    for (int fd : given) {
      CheckAdopted(env, fd, sa);
      h->tx.push_back(Fd(fd));
    }
  }
  for (size_t k = h->tx.size() + 1; k < workers; k++) {
    setPort(port + static_cast<int>(k));
    h->tx.push_back(TxSocket(env, sa, bufBytes, k));
  }
  c.txFds.push_back(c.udpFds[0]);
  for (const Fd& fd : h->tx) c.txFds.push_back(fd.get());
  if (workers > 1) {
    // (Re)attached also to adopted sockets: an earlier forwarder may have run another program.
    std::vector<sock_filter> prog = FlowSteeringProgram(static_cast<unsigned>(workers), static_cast<uint16_t>(port));
    sock_fprog fp{static_cast<unsigned short>(prog.size()), prog.data()};
    // Without it the kernel hashes the outer addresses and ports: no reordering either, but a
    // flow's two directions may then pick workers that do not match, and the flow moves on.
    h->flowSteering = setsockopt(c.udpFds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof fp) == 0;
  }
  c.eventFd = h->ev.get();
  // The TUN fds change only once nothing else can fail, and change back if the threads cannot start.
  for (size_t i = 0; i < c.tunFds.size(); i++) {
    if (fcntl(c.tunFds[i], F_SETFL, flags[i] | O_NONBLOCK) != 0) ThrowErrno(env, "fcntl(tunFd O_NONBLOCK)", errno);
  }
  h->fwd = std::make_unique<Forwarder>(c, LinuxSyscalls());
  // The first table before the first datagram: what waits in adopted sockets is drained at once.
  if (o.Get("routes").IsArray()) h->fwd->SetTable(BuildTable(env, ParseRoutes(env, o.Get("routes")), nullptr, h->v6Socket));
  try {
    h->fwd->Start();
  } catch (const std::system_error& e) {
    for (size_t i = 0; i < c.tunFds.size(); i++) fcntl(c.tunFds[i], F_SETFL, flags[i]);
    ThrowErrno(env, "starting the forwarder threads", e.code().value());
  }
  // A handle dropped without stop() still stops its threads when collected (or at env teardown).
  auto ext = Napi::External<Handle>::New(env, h.get(), [](Napi::Env, Handle* p) { delete p; });
  h.release();
  return ext;
}

// setTable(handle, [{ subnet: "10.244.3.0", prefixLen: 24, peerIp: "192.0.2.13", port: 8285, peerIp6?, over6? }, ...])
Napi::Value SetTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = Unwrap(info);
  if (info.Length() < 2) throw Napi::TypeError::New(env, "setTable expects an array of routes");
  std::vector<RouteSpec> routes = ParseRoutes(env, info[1]);
  Forwarder& f = *h->fwd;
  f.SetTable(BuildTable(env, routes, f.table().get(), h->v6Socket));
  return env.Undefined();
}

Napi::Array FdsOf(Napi::Env env, const std::vector<Fd>& fds) {
  Napi::Array out = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) out.Set(static_cast<uint32_t>(i), fds[i].get());
  return out;
}

// udpFds(handle) -> the workers' receive socket fds; txFds(handle) -> the send sockets of
// workers 1.. (for the fd holder).
Napi::Value UdpFds(const Napi::CallbackInfo& info) { return FdsOf(info.Env(), Unwrap(info)->udp); }
Napi::Value TxFds(const Napi::CallbackInfo& info) { return FdsOf(info.Env(), Unwrap(info)->tx); }

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Handle* h = Unwrap(info);
  Napi::Object o = StatsObject(info.Env(), *h->fwd);
  o.Get("offload").As<Napi::Object>().Set("flowSteering", h->flowSteering);
  return o;
}

// stop(handle): wakes and joins both threads, closes the UDP socket and eventfd. Idempotent.
Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = Unwrap(info);
  int err = h->fwd->Stop();
  h->CloseFds();
  if (err != 0) ThrowErrno(env, "forwarder stop: eventfd write", err);
  return env.Undefined();
}

}  // namespace

Napi::Object StatsObject(Napi::Env env, Forwarder& f) {
  Counters c;
  f.Totals(c);
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
  // Per worker: what its two loops carried (how evenly flows spread).
  Napi::Array workers = Napi::Array::New(env, f.workers());
  for (size_t w = 0; w < f.workers(); w++) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("txPackets", n(f.counters(w).txPackets));
    x.Set("rxPackets", n(f.counters(w).rxPackets));
    workers.Set(static_cast<uint32_t>(w), x);
  }
  o.Set("workers", workers);
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
  of.Set("tunUso", cfg.tunUso);
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
  f.Set("udpFds", Napi::Function::New(env, UdpFds));
  f.Set("txFds", Napi::Function::New(env, TxFds));
  f.Set("stop", Napi::Function::New(env, Stop));
  exports.Set("forwarder", f);
}

}  // namespace weft
