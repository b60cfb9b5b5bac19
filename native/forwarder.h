// The udp backend's native engine: a userspace forwarder between a TUN device
// and a UDP socket, on two dedicated threads (never the libuv pool, never JS
// per packet), one loop per direction:
//   TUN -> UDP (tun-to-udp.cc): drain the TUN in batches, longest-prefix match
//               of the inner IPv4 destination -> peer, TTL - 1, sendmmsg. No
//               route -> ICMP net-unreachable back into the TUN (rate-limited).
//   UDP -> TUN (udp-to-tun.cc): recvmmsg in batches; write to the TUN only what
//               a known peer sent from inside its subnet to inside ours.
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
#include "syscalls.h"
#include "table.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace weft {

// Segments merged into one TUN write, and so the iovecs of that writev: the virtio
// header, the merged IP+TCP header and one slice per segment.
constexpr size_t kMaxMergedSegments = 64;
constexpr size_t kMaxTunIov = 2 + kMaxMergedSegments;

struct ForwarderConfig {
  int tunFd = -1, udpFd = -1, eventFd = -1;  // owned by the caller
  uint32_t ownIp = 0;                        // the TUN's address: source of ICMP errors
  bool vnetHdr = false;                      // the TUN has IFF_VNET_HDR (+ enableOffload)
  bool udpGso = false;                       // try UDP_SEGMENT sends (falls back on its own)
  bool udpGro = false;                       // UDP_GRO is on for the socket
  std::vector<Prefix4> ownSubnets;           // this host's subnets: the only inner destinations received
};

class Forwarder {
 public:
  Forwarder(const ForwarderConfig& c, Syscalls& sys);
  ~Forwarder() { Stop(); }
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Starts both loops on their threads. Throws std::system_error when a thread cannot be
  // made; then nothing runs any more.
  void Start();
  // Wakes both threads through the eventfd and joins them. Idempotent. Returns the errno
  // of a failed wake-up write, else 0.
  int Stop();

  // The loops, on the calling thread; each returns when the eventfd is readable or its
  // fd failed (errno in counters.*ThreadErrno).
  void RunTunToUdp();
  void RunUdpToTun();

  void SetTable(std::shared_ptr<const Table> t) { std::atomic_store(&table_, std::move(t)); }
  std::shared_ptr<const Table> table() const { return std::atomic_load(&table_); }
  const ForwarderConfig& config() const { return config_; }
  Syscalls& sys() { return sys_; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  // A thread's fd failed: record why and make the other loop end too at its next batch.
  void Fail(std::atomic<int>& threadErrno, int err);
  // Polls {fd, eventfd}: true once fd is readable; false when the loop must end (the eventfd
  // woke it, or poll failed; with hangupIsFatal, also POLLERR/POLLHUP/POLLNVAL on fd).
  bool WaitReadable(int fd, std::atomic<int>& threadErrno, bool hangupIsFatal);

  // Writes one packet to the TUN: the virtio header first when the TUN has one (h, or an
  // all-zero one), then the slices. Returns 0, or the errno of the failed write;
  // EMSGSIZE, writing nothing, when the slices do not fit in kMaxTunIov iovecs.
  int WriteTun(const offload::VirtioNetHdr* h, const offload::Slice* slices, size_t n);

  Counters counters;

 private:
  const ForwarderConfig config_;
  Syscalls& sys_;
  std::shared_ptr<const Table> table_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::thread tunThread_, udpThread_;
};

}  // namespace weft
