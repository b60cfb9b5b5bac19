// The one module that loads the native addon. Everything else imports the
// typed surface from here, never the .node file itself.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeNetlink {
  /**
   * socket(AF_NETLINK, SOCK_RAW, protocol) bound to `groups`, inside netnsPath if given (undefined:
   * this namespace). Receive buffer 4 MiB (SO_RCVBUFFORCE), or exactly rcvbuf bytes when > 0.
   */
  open(protocol: number, groups: number, netnsPath?: string, rcvbuf?: number): { fd: number; portId: number };
  /** One datagram to the kernel. Throws an Error with `code`/`errno` on failure. */
  send(fd: number, message: Buffer): void;
  /** One datagram from the kernel, or null when none arrived within timeoutMs (-1: wait forever). */
  recv(fd: number, timeoutMs: number): Buffer | null;
  /**
   * The datagrams queued now (no waiting), up to maxDatagrams reads (an overrun counts as one) and
   * 1 MiB, their messages concatenated in `data`, each datagram 4-aligned; `overruns`: ENOBUFS seen
   * meanwhile. Throws on a datagram over 64 KiB (it is lost: read such sockets with recv).
   */
  recvBatch(fd: number, maxDatagrams: number): { data: Buffer; datagrams: number; overruns: number };
  /** SO_ATTACH_FILTER: a classic BPF program, its sock_filter array in host byte order (netlink/monitor-filter.ts). */
  attachFilter(fd: number, program: Buffer): void;
}

export interface NativeTun {
  /**
   * Opens /dev/net/tun and attaches (creating if needed) the named device, inside netnsPath if
   * given; with IFF_MULTI_QUEUE each call attaches one more queue. Throws with code/errno.
   */
  open(name: string, flags: number, netnsPath?: string): { fd: number; name: string };
  /** TUNSETPERSIST: the device outlives its fds (with its addresses and routes; carrier off while none is open). */
  setPersist(fd: number, on: boolean): void;
  readonly IFF_TUN: number;
  readonly IFF_NO_PI: number;
  readonly IFF_VNET_HDR: number;
  readonly IFF_MULTI_QUEUE: number;
  /**
   * For a TUN opened with IFF_VNET_HDR: TUNSETVNETHDRSZ 10, TUNSETVNETLE, TUNSETOFFLOAD with
   * CSUM|TSO4|TSO6|TSO_ECN|USO4|USO6 (without USO4|USO6 when uso is false), asking again with
   * fewer bits on EINVAL. Returns the TUN_F_* bits the kernel accepted; throws (code/errno) when none.
   */
  enableOffload(fd: number, uso?: boolean): number;
  readonly TUN_F_CSUM: number;
  readonly TUN_F_TSO4: number;
  readonly TUN_F_TSO6: number;
  readonly TUN_F_TSO_ECN: number;
  readonly TUN_F_USO4: number;
  readonly TUN_F_USO6: number;
}

/** An IPv4 prefix: subnet (dotted, host bits clear) / prefixLen. */
export interface NativePrefix {
  subnet: string;
  prefixLen: number;
}

/**
 * One forwarding entry: the peer at peerIp:port owns subnet/prefixLen. peerIp6: the peer's
 * IPv6 underlay address (datagrams from it are the peer's too); over6: datagrams go to
 * [peerIp6]:port (the forwarder's socket must be IPv6: bindIp "::").
 */
export interface NativeForwarderRoute {
  subnet: string;
  prefixLen: number;
  peerIp: string;
  port: number;
  peerIp6?: string;
  over6?: boolean;
}

export interface NativeForwarderCounters {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

export type NativeDropReason = 'no_route' | 'ttl' | 'unknown_peer' | 'spoofed_source' | 'wrong_destination' | 'malformed' | 'tun_write_error' | 'send_error';

export interface NativeForwarderStats extends NativeForwarderCounters {
  /** ICMP net-unreachable written into the TUN, and those the rate limit (1000/s, burst 50) held back. */
  icmpSent: number;
  icmpSuppressed: number;
  drops: Record<NativeDropReason, number>;
  /** Keyed "peerIp:port"; only peers in the current table; drops: those attributable to the peer. */
  peers: Record<string, NativeForwarderCounters & { drops: Record<NativeDropReason, number> }>;
  /** Per worker (thread pair): the inner packets it sent and received; how evenly the flows spread. */
  workers: Array<{ txPackets: number; rxPackets: number }>;
  /** errno that ended a thread (0 while it runs), and the last errno of a failed send / TUN write. */
  errno: { tunThread: number; udpThread: number; lastSend: number; lastTunWrite: number };
  /** Which offload paths are on and how much each carried (all 0 with vnetHdr off). */
  offload: NativeOffloadStats;
}

export interface NativeOffloadStats {
  vnetHdr: boolean;
  /** UDP_SEGMENT sends tried (they turn off by themselves after EIO/ENOPROTOOPT). */
  udpGso: boolean;
  /** setsockopt(UDP_GRO) succeeded. */
  udpGro: boolean;
  /** UDP datagrams of one flow are merged into USO (GSO_UDP_L4) TUN writes. */
  tunUso: boolean;
  /** forwarder.stats only: with more than one worker, the reuseport program that keeps a flow on one worker is attached. */
  flowSteering?: boolean;
  /** Always true: every received TCP segment's checksums are verified before it is merged (kept for the stats' shape). */
  verifyChecksums: boolean;
  /** TUN reads that were TSO/USO super-packets. */
  tsoReads: number;
  /** UDP_SEGMENT messages sent and the datagrams they carried. */
  gsoSends: number;
  gsoSegments: number;
  /** GSO messages the socket refused, resent as single datagrams; errno of the last. */
  gsoFallbacks: number;
  lastGsoErrno: number;
  /** Received messages holding several datagrams (UDP_GRO) and those datagrams. */
  groReceives: number;
  groSegments: number;
  /** Super-packets written to the TUN with a virtio GSO header, and the segments in them. */
  coalescedWrites: number;
  mergedSegments: number;
  /** Super-packets the TUN refused (EINVAL), written again segment by segment. */
  mergeFallbacks: number;
}

declare const forwarderHandle: unique symbol;
export type NativeForwarderHandle = { readonly [forwarderHandle]: true };

export interface NativeForwarder {
  /**
   * One worker per TUN queue fd: binds a UDP socket per worker to bindIp:port (SO_REUSEPORT;
   * a reuseport BPF program steers by the outer source port), and one more for worker k >= 1
   * to send from, bound to bindIp:port+k, and starts the worker's
   * TUN->UDP and UDP->TUN threads (the fds are set O_NONBLOCK; the caller keeps owning and
   * closes them after stop). ownIp is the ICMP source. Throws with `code`/`errno` when a
   * socket cannot be made.
   */
  start(o: {
    tunFds: readonly number[];
    /** Sockets of an earlier forwarder (taken back from the fd holder), one per TUN fd: adopted as they are, not bound anew. */
    udpFds?: readonly number[];
    /** Send sockets of an earlier forwarder (the fd holder's), one per worker from the second on (bound to port+1, port+2 ...). */
    txFds?: readonly number[];
    /** The table the threads start with (as setTable), so nothing they drain at once is an unknown peer. */
    routes?: readonly NativeForwarderRoute[];
    /** An IPv4 address (an AF_INET socket), or "::": one AF_INET6 socket for both families (IPV6_V6ONLY off). */
    bindIp: string;
    port: number;
    ownIp: string;
    /** The TUN's IPv6 address (a dual-stack network): the source of ICMPv6 errors; absent: none are sent. */
    ownIp6?: string;
    /** This host's subnets (IPv4, and IPv6 in a dual-stack network): a received datagram whose inner destination lies outside them is a wrong_destination drop. */
    ownSubnets: readonly NativePrefix[];
    bufferBytes?: number;
    /** The TUN has IFF_VNET_HDR and tun.enableOffload was called: split TSO reads, GSO sends, GRO receives, coalesced writes. */
    vnetHdr?: boolean;
    /** With vnetHdr: try UDP_SEGMENT (default true) / set UDP_GRO (default true). */
    udpGso?: boolean;
    udpGro?: boolean;
    /** With vnetHdr: the TUN accepted TUN_F_USO4, so UDP datagrams of a flow merge into USO writes (default false). */
    tunUso?: boolean;
  }): NativeForwarderHandle;
  /** Replaces the whole table atomically; per-peer counters carry over for peers that stay. */
  setTable(h: NativeForwarderHandle, routes: readonly NativeForwarderRoute[]): void;
  stats(h: NativeForwarderHandle): NativeForwarderStats;
  /** The workers' UDP receive socket fds (owned by the handle), for the fd holder. */
  udpFds(h: NativeForwarderHandle): number[];
  /** The send sockets of workers 1.. (bound to port+1 ...; owned by the handle), for the fd holder. */
  txFds(h: NativeForwarderHandle): number[];
  /** Wakes and joins every thread, closes the UDP sockets. Idempotent. */
  stop(h: NativeForwarderHandle): void;
}

/**
 * The offload packet surgery (native/offload.h), exposed for unit tests only: the engine calls
 * it in C++ on its own threads. Errors carry a stable `code` ("truncated", "bad_gso_size", ...).
 */
export interface NativeOffload {
  /** Splits an IP packet read from a TUN with IFF_VNET_HDR (vnetHdr: its 10-byte virtio_net_hdr). */
  segment(pkt: Buffer, vnetHdr: Buffer): Buffer[];
  /** Coalesces IP packets (arrival order) into packets to write to the TUN, each with its virtio_net_hdr. */
  coalesce(pkts: readonly Buffer[]): { hdr: Buffer; pkt: Buffer }[];
  /** The Internet checksum of buf (RFC 1071), as stored in a header. */
  checksum(buf: Buffer): number;
}

/** The forwarder's IPv4 rules (native/ipv4.h), for unit vectors only (packet.ts must agree). */
export interface NativeIpv4 {
  /** The drop reason for a datagram from fromIp, or null when it may be written to the TUN. */
  checkDatagram(pkt: Buffer, fromIp: string, routes: readonly NativeForwarderRoute[], ownSubnets: readonly NativePrefix[]): NativeDropReason | null;
  /** The verdict on a packet read from the TUN, and the packet after it (TTL decremented on a send). */
  routeFromTun(pkt: Buffer, routes: readonly NativeForwarderRoute[]): { drop: NativeDropReason | null; peer: string | null; icmp: boolean; pkt: Buffer };
  /**
   * The ICMP error the forwarder writes into the TUN about a packet it dropped for `drop`: net
   * unreachable or time exceeded, from ownIp; for an IPv6 packet ICMPv6 no route to destination or
   * hop limit exceeded, from ownIp6 (empty without it). native/ipv4.h BuildTunError.
   */
  buildTunError(drop: 'no_route' | 'ttl', pkt: Buffer, ownIp: string, ownIp6?: string): Buffer;
  icmpAllowed(pkt: Buffer): boolean;
  decrementTtl(pkt: Buffer): Buffer;
  icmp6Allowed(pkt: Buffer): boolean;
}

/** A datagram a scripted recvmmsg returns: from ip:port, with a UDP_GRO size if gro > 0. */
export interface ScriptedDatagram {
  /** The sender: an IPv4 address, or an IPv6 one (then reported as a sockaddr_in6). */
  from: string;
  port?: number;
  data: Buffer;
  gro?: number;
  truncated?: boolean;
}

/**
 * The real forwarding loops (native/tun-to-udp.cc, udp-to-tun.cc) on scripted system calls
 * (native/scripted-syscalls.h), for tests only: the TUN -> UDP loop reads tunReads (an empty
 * Buffer is a zero-byte read), then the UDP -> TUN loop receives recvBatches (one recvmmsg each).
 */
export interface NativeLoops {
  run(o: {
    vnetHdr?: boolean;
    udpGso?: boolean;
    udpGro?: boolean;
    tunUso?: boolean;
    /** The socket is AF_INET6: every destination a sockaddr_in6 (IPv4 peers v4-mapped). */
    v6Socket?: boolean;
    ownIp: string;
    ownIp6?: string;
    ownSubnets: readonly NativePrefix[];
    routes: readonly NativeForwarderRoute[];
    tunReads?: readonly Buffer[];
    recvBatches?: readonly (readonly ScriptedDatagram[])[];
    /** The clock advances this much per TUN read (rate limits); default 0. */
    nsPerRead?: number;
    /** Fail sendmmsg of UDP_SEGMENT messages / TUN writes of super-packets with this errno. */
    gsoSendErrno?: number;
    mergedWriteErrno?: number;
    /** Fail every TUN write with this errno. */
    tunWriteErrno?: number;
  }): {
    /** Every TUN write, its iovecs concatenated (the virtio header first with vnetHdr). */
    tunWrites: { data: Buffer; iovcnt: number }[];
    /** Every message sent: "ip:port", its UDP_SEGMENT size (0: none) and bytes. */
    sent: { to: string; segSize: number; data: Buffer }[];
    stats: NativeForwarderStats;
  };
}

/**
 * The fd holder (native/holder.cc): /bin/sleep holding the forwarder's fds while weftd is
 * down, so the kernel queues instead of dropping, and the next weftd takes the same files back.
 */
export interface NativeHolder {
  /** Starts /bin/sleep with argv[0] = marker, holding exactly `fds` (same numbers; none of 0-2). Returns its pid. */
  spawn(fds: readonly number[], marker: string): number;
  /** Copies of the holder's fds in this process (pidfd_getfd). Throws with code/errno. */
  take(pid: number, fds: readonly number[]): number[];
  /** SIGKILL through a pidfd, then waits up to waitMs for it to exit: true when gone. */
  end(pid: number, waitMs: number): boolean;
  /** TUNGETIFF of a TUN fd: its device name and IFF_* flags. */
  tunInfo(fd: number): { name: string; flags: number };
  /** The bound address of an IPv4 or IPv6 UDP socket ("::" for the udp backend's dual-stack one); throws for any other fd. */
  udpInfo(fd: number): { address: string; port: number };
}

export interface NativeAddon {
  close(fd: number): void;
  /** One AF_UNIX datagram to a systemd notify socket (a path, or "@name" for the abstract namespace), carrying `fds` (SCM_RIGHTS) if given. */
  sdNotify(socketPath: string, message: string, fds?: readonly number[]): void;
  readonly sdNotifySocket: {
    /** BARRIER=1 (sd_notify_barrier): true once the receiver has handled every earlier message, false after timeoutMs. */
    barrier(socketPath: string, timeoutMs: number): boolean;
    /** An fd systemd passed (LISTEN_FDS) made close-on-exec; throws (EBADF) when it is not open. */
    keep(fd: number): void;
    /** Tests (a fake systemd): a bound AF_UNIX datagram socket. */
    listen(socketPath: string): number;
    /** Tests: one datagram and the fds it carried (CLOEXEC), or null after timeoutMs. */
    recv(fd: number, timeoutMs: number): { message: string; fds: number[]; truncated: boolean } | null;
  };
  readonly netlink: NativeNetlink;
  readonly tun: NativeTun;
  readonly forwarder: NativeForwarder;
  readonly holder: NativeHolder;
  readonly offload: NativeOffload;
  readonly ipv4: NativeIpv4;
  readonly loops: NativeLoops;
}

/** Native errors carry the errno name and number of the failed system call. */
export interface NativeError extends Error {
  code: string;
  errno: number;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as NativeError).errno === 'number';
}

const here = dirname(fileURLToPath(import.meta.url));
// dist/native/index.js -> <root>/build/...; also works from a source checkout.
const candidates = [
  process.env.WEFT_NATIVE_PATH,
  join(here, '..', '..', 'build', 'Release', 'weft_native.node'),
  join(here, '..', '..', 'build', 'Debug', 'weft_native.node'),
  join(here, '..', 'build', 'Release', 'weft_native.node'),
].filter((p): p is string => typeof p === 'string' && p.length > 0);

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      return require(path) as NativeAddon;
    } catch (e) {
      failures.push(`  ${path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    `cannot load the weft native addon; tried:\n${failures.join('\n')}\n` +
      `build it with 'npm run install' (node-gyp rebuild) in the weft checkout`,
  );
}

let addon: NativeAddon | undefined;

/** Loads the addon on first use, so pure modules and unit tests never need it. */
export function native(): NativeAddon {
  addon ??= load();
  return addon;
}
