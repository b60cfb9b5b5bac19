// What the udp backend needs from a forwarding engine (native threads or the
// dgram reference): take a whole new table, report counters, stop cleanly.
// Both engines count the same things under the same names.
import type { NativeOffloadStats } from '../../native/index.js';
import type { DropReason, Net4 } from './packet.js';
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
  /** Native engine: which offload paths are on and what they carried (see NativeOffloadStats). */
  offload?: OffloadStats;
}

export interface OffloadStats extends NativeOffloadStats {
  /** TUN offloads the kernel accepted ("csum", "tso4", ...); empty without IFF_VNET_HDR. */
  tun: string[];
}

export interface UdpEngineOptions {
  /** The TUN device's fd (IFF_TUN|IFF_NO_PI); the backend keeps owning it. */
  readonly tunFd: number;
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
}

export interface UdpEngine {
  readonly name: UdpEngineName;
  setTable(t: ForwardingTable): void;
  stats(): ForwarderStats;
  /** Stops forwarding and releases the UDP socket; the TUN fd stays open. Idempotent. */
  stop(): Promise<void>;
}
