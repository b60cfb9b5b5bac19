// What the udp backend needs from a forwarding engine (native threads or the
// dgram reference): take a whole new table, report counters, stop cleanly.
// Both engines count the same things under the same names.
import type { NativeOffloadStats } from '../../native/index.js';
import type { DropReason, Net4, Net6 } from './packet.js';
import type { ForwardingTable } from './table.js';

export type UdpEngineName = 'native' | 'dgram';

export interface PeerCounters {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

/** Per peer: traffic, and the drops attributable to it (ttl and send_error towards it; malformed, spoofed_source, wrong_destination, tun_write_error from it). */
export interface PeerStats extends PeerCounters {
  drops: Record<DropReason, number>;
}

export interface ForwarderStats extends PeerCounters {
  engine: UdpEngineName;
  /** false once the engine stopped on its own (e.g. the TUN device vanished); the backend then rebuilds it. */
  running: boolean;
  /** Why it stopped, or the last send / TUN write error. */
  error?: string;
  /** ICMP net-unreachable written into the TUN, and those the rate limit held back. */
  icmpSent: number;
  icmpSuppressed: number;
  drops: Record<DropReason, number>;
  /** Keyed "peerIp:port", peers of the current table only. */
  peers: Record<string, PeerStats>;
  /** Native engine: per worker (thread pair), the inner packets it sent and received. */
  workers?: Array<{ txPackets: number; rxPackets: number }>;
  /** Native engine: which offload paths are on and what they carried (see NativeOffloadStats). */
  offload?: OffloadStats;
}

export interface OffloadStats extends NativeOffloadStats {
  /** TUN offloads the kernel accepted ("csum", "tso4", ...); empty without IFF_VNET_HDR. */
  tun: string[];
}

export interface UdpEngineOptions {
  /**
   * The TUN's queue fds (IFF_TUN|IFF_NO_PI|IFF_MULTI_QUEUE); the backend keeps owning them.
   * The native engine runs one worker per fd; the dgram engine uses the first.
   */
  readonly tunFds: readonly number[];
  /** Native engine: UDP sockets of an earlier engine (taken back from the fd holder), one per TUN fd, adopted instead of bound anew. */
  readonly udpFds?: readonly number[];
  /** Native engine: the send sockets of workers 1.. of an earlier engine (port+1 ...), adopted likewise. */
  readonly txFds?: readonly number[];
  /**
   * Native engine only: the TUN also has IFF_VNET_HDR with these TUN_F_* offloads on
   * (tun.enableOffload), so the engine uses the offload paths. 0/absent: plain packets.
   */
  readonly tunOffloads?: number;
  /** Local address and port of the UDP socket (this host's public IP, Backend.Port). */
  readonly bindIp: string;
  readonly port: number;
  /** The TUN's own address, source of ICMP errors. */
  readonly ownIp: string;
  /** This host's subnets: the only inner destinations accepted from peers (else wrong_destination). */
  readonly ownSubnets: readonly Net4[];
  /** A dual-stack network: the TUN's IPv6 address (source of ICMPv6 errors) and this host's IPv6 subnets. */
  readonly ownIp6?: string;
  readonly ownSubnets6?: readonly Net6[];
}

export interface UdpEngine {
  readonly name: UdpEngineName;
  setTable(t: ForwardingTable): void;
  stats(): ForwarderStats;
  /**
   * Stops forwarding and releases the UDP socket(s); the TUN fds stay open. Idempotent.
   * atExit: the process is about to exit, so a reader blocked on the TUN (the dgram engine's)
   * may be left as it is instead of being woken by deleting the device.
   */
  stop(atExit?: boolean): Promise<void>;
}
