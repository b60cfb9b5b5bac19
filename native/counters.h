// The forwarder's counters: what the threads count, per peer and in total,
// read by the N-API binding (and the tests) while the threads run. Relaxed
// atomics: each counter is exact, a snapshot of several is not. Each worker
// has its own Counters (on their own cache lines: the threads of different
// workers never write to one line), summed when read; per-peer counters are
// shared.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft {

enum Drop {
  kNoRoute,
  kTtl,
  kUnknownPeer,
  kSpoofedSource,
  kWrongDestination,
  kMalformed,
  kTunWriteError,
  kSendError,
  kDropCount
};
// The names TypeScript sees (stats().drops, /metrics reason labels); packet.ts DROP_REASONS lists the same.
inline const char* const kDropNames[kDropCount] = {
    "no_route", "ttl", "unknown_peer", "spoofed_source", "wrong_destination", "malformed", "tun_write_error", "send_error"};

using Counter = std::atomic<uint64_t>;
inline void Add(Counter& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
inline uint64_t Get(const Counter& c) { return c.load(std::memory_order_relaxed); }

struct PeerCounters {
  Counter txPackets{0}, txBytes{0}, rxPackets{0}, rxBytes{0};
  // Drops that belong to this peer: ttl / send_error on the way to it; malformed,
  // spoofed_source, wrong_destination and tun_write_error for datagrams from it.
  Counter drops[kDropCount] = {};
};

struct alignas(64) Counters {
  Counter txPackets{0}, txBytes{0}, rxPackets{0}, rxBytes{0};
  // ICMP errors (net unreachable, time exceeded) written into the TUN, and those the rate limit held back.
  Counter icmpSent{0}, icmpSuppressed{0};
  Counter drops[kDropCount] = {};
  // The first error that ended a thread (errno); 0 while healthy. The last errno of a failed send / TUN write.
  std::atomic<int> tunThreadErrno{0}, udpThreadErrno{0}, lastSendErrno{0}, lastTunWriteErrno{0};
  // Offload paths. tsoReads: TUN reads that were GSO super-packets. gsoSends: UDP_SEGMENT
  // messages sent, gsoSegments: datagrams they carried; gsoFallbacks: GSO messages resent
  // as single datagrams (errno in lastGsoErrno). groReceives: received messages holding
  // more than one datagram, groSegments: their datagrams. coalescedWrites: super-packets
  // written to the TUN, mergedSegments: segments in them; mergeFallbacks: super-packets the
  // TUN refused, written again segment by segment.
  Counter tsoReads{0}, gsoSends{0}, gsoSegments{0}, gsoFallbacks{0};
  Counter groReceives{0}, groSegments{0}, coalescedWrites{0}, mergedSegments{0}, mergeFallbacks{0};
  std::atomic<int> lastGsoErrno{0};

  // Adds every counter into t (the first non-zero errno of each kind wins): a sum over workers.
  void AddTo(Counters& t) const {
    static constexpr Counter Counters::*kAll[] = {
        &Counters::txPackets, &Counters::txBytes, &Counters::rxPackets, &Counters::rxBytes, &Counters::icmpSent,
        &Counters::icmpSuppressed, &Counters::tsoReads, &Counters::gsoSends, &Counters::gsoSegments, &Counters::gsoFallbacks,
        &Counters::groReceives, &Counters::groSegments, &Counters::coalescedWrites, &Counters::mergedSegments, &Counters::mergeFallbacks};
    for (Counter Counters::*c : kAll) Add(t.*c, Get(this->*c));
    for (int d = 0; d < kDropCount; d++) Add(t.drops[d], Get(drops[d]));
    static constexpr std::atomic<int> Counters::*kErrnos[] = {&Counters::tunThreadErrno, &Counters::udpThreadErrno, &Counters::lastSendErrno,
                                                                 &Counters::lastTunWriteErrno, &Counters::lastGsoErrno};
    for (std::atomic<int> Counters::*e : kErrnos) if ((t.*e).load() == 0) (t.*e).store((this->*e).load());
  }

  void Dropped(Drop d, PeerCounters* pc = nullptr, uint64_t n = 1) {
    Add(drops[d], n);
    if (pc) Add(pc->drops[d], n);
  }
  void Sent(PeerCounters* pc, uint64_t packets, uint64_t bytes) {
    Add(pc->txPackets, packets);
    Add(pc->txBytes, bytes);
    Add(txPackets, packets);
    Add(txBytes, bytes);
  }
  void Received(PeerCounters* pc, uint64_t packets, uint64_t bytes) {
    Add(pc->rxPackets, packets);
    Add(pc->rxBytes, bytes);
    Add(rxPackets, packets);
    Add(rxBytes, bytes);
  }
};

}  // namespace weft
