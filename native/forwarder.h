// The udp backend's native engine: a userspace forwarder between a TUN device
// and UDP sockets, on dedicated threads (never the libuv pool, never JS per
// packet). It runs `workers` pairs of threads, one pair per TUN queue
// (IFF_MULTI_QUEUE) and UDP socket (one SO_REUSEPORT group), one loop per
// direction:
//   TUN -> UDP (tun-to-udp.cc): drain the TUN queue in batches, longest-prefix
//               match of the inner IPv4 destination -> peer, TTL - 1, sendmmsg. No
//               route -> ICMP net-unreachable, TTL run out -> ICMP time exceeded,
//               back into the TUN (rate-limited; ICMPv6 likewise).
//   UDP -> TUN (udp-to-tun.cc): recvmmsg in batches; write to the TUN only what
//               a known peer sent from inside its subnet to inside ours.
// A flow stays on one worker, so TCP never sees its segments reordered: the
// kernel steers a flow to one TUN queue (tun_automq_select_queue: the queue that
// last wrote that flow) and, with more than one worker, a reuseport BPF program
// (forwarder-binding.cc) hands each datagram to the socket of the worker its
// inner flow hashes to, the same worker for both directions.
// Wire format (flannel udp): the UDP payload is the raw inner IP packet.
// With offloads (TUN opened with IFF_VNET_HDR, see tun.cc enableOffload) each
// loop takes its `vnetHdr` branch, as wireguard-go's tun package does: the wire
// format stays the same, only the system calls carry more per call (TSO reads
// split into UDP_SEGMENT sends; UDP_GRO receives merged into virtio GSO writes).
// The table is owned by TypeScript and handed over whole; each batch takes
// one reference to the current immutable table (std::atomic_load of a
// shared_ptr), so a swap never blocks or tears a lookup in progress.
// All system calls go through a Syscalls, so tests and the fuzzer run these
// very loops on scripted input. No N-API here (forwarder-binding.cc).
#pragma once
#include "counters.h"
#include "offload.h"
#include "rate-limit.h"
#include "syscalls.h"
#include "table.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace weft {

// Segments merged into one TUN write, and so the iovecs of that writev: the virtio
// header, the merged IP+TCP header and one slice per segment.
constexpr size_t kMaxMergedSegments = 64;
constexpr size_t kMaxTunIov = 2 + kMaxMergedSegments;
// Workers (thread pairs) one forwarder may run.
constexpr size_t kMaxWorkers = 64;

struct ForwarderConfig {
  // One TUN queue fd and one UDP socket per worker, owned by the caller; the same number of each.
  std::vector<int> tunFds, udpFds;
  // The socket each worker sends from (its outer source port); empty: its udpFds one.
  std::vector<int> txFds;
  int eventFd = -1;                          // owned by the caller; readable = stop
  uint32_t ownIp = 0;                        // the TUN's address: source of ICMP errors
  bool vnetHdr = false;                      // the TUN has IFF_VNET_HDR (+ enableOffload)
  bool udpGso = false;                       // try UDP_SEGMENT sends (falls back on its own)
  bool udpGro = false;                       // UDP_GRO is on for the sockets
  bool tunUso = false;                       // the TUN takes GSO_UDP_L4 writes: merge UDP datagrams too
  std::vector<Prefix4> ownSubnets;           // this host's subnets: the only inner destinations received
  std::vector<Prefix6> ownSubnets6;          // the same for IPv6 (a dual-stack network)
  bool hasOwnIp6 = false;                    // ownIp6 is set: ICMPv6 errors go into the TUN
  uint8_t ownIp6[16] = {};                   // the TUN's IPv6 address: source of ICMPv6 errors
};

class Forwarder {
 public:
  // Throws std::invalid_argument when the fd lists are empty, differ in length or exceed kMaxWorkers.
  Forwarder(const ForwarderConfig& c, Syscalls& sys);
  ~Forwarder() { Stop(); }
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Starts every worker's two loops on their threads. Throws std::system_error when a thread
  // cannot be made; then nothing runs any more.
  void Start();
  // Wakes every thread through the eventfd and joins them. Idempotent. Returns the errno
  // of a failed wake-up write, else 0.
  int Stop();

  // Worker w's loops, on the calling thread; each returns when the eventfd is readable or its
  // fd failed (errno in counters(w).*ThreadErrno; every other loop then ends too).
  void RunTunToUdp(size_t w = 0);
  void RunUdpToTun(size_t w = 0);

  void SetTable(std::shared_ptr<const Table> t) { std::atomic_store(&table_, std::move(t)); }
  std::shared_ptr<const Table> table() const { return std::atomic_load(&table_); }
  const ForwarderConfig& config() const { return config_; }
  size_t workers() const { return config_.tunFds.size(); }
  int txFd(size_t w) const { return config_.txFds.empty() ? config_.udpFds[w] : config_.txFds[w]; }
  Counters& counters(size_t w) { return counters_[w]; }
  // Every worker's counters summed into t (a fresh Counters).
  void Totals(Counters& t) const;
  Syscalls& sys() { return sys_; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  // A thread's fd failed: record why and make every loop end at its next batch.
  void Fail(std::atomic<int>& threadErrno, int err);
  // Polls {fd, eventfd}: true once fd is readable; false when the loop must end (the eventfd
  // woke it, or poll failed; with hangupIsFatal, also POLLERR/POLLHUP/POLLNVAL on fd).
  bool WaitReadable(int fd, std::atomic<int>& threadErrno, bool hangupIsFatal);

  // Writes one packet to worker w's TUN queue: the virtio header first when the TUN has
  // one (h, or an all-zero one), then the slices. Returns 0, or the errno of the failed
  // write; EMSGSIZE, writing nothing, when the slices do not fit in kMaxTunIov iovecs.
  int WriteTun(size_t w, const offload::VirtioNetHdr* h, const offload::Slice* slices, size_t n);
  // A token for one ICMP error into the TUN: one limit for the host, as Linux's own ICMP
  // rate limit (net.ipv4.icmp_msgs_per_sec 1000, icmp_msgs_burst 50), whatever the workers.
  bool TakeIcmpToken();

 private:
  const ForwarderConfig config_;
  Syscalls& sys_;
  std::unique_ptr<Counters[]> counters_;
  std::shared_ptr<const Table> table_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::vector<std::thread> threads_;
  std::mutex icmpMu_;  // only the ICMP error path (no route, TTL run out) takes it
  TokenBucket icmp_{1000, 50};
};

}  // namespace weft
