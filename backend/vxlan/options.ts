// The VXLAN backend's options and the types it shares with the fallback
// (backend/fallback/), which decides per peer between VXLAN and the udp path.
import type { IpFamily, Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import type { NetlinkHandle, Notification } from '../../netlink/index.js';
import type { Underlay } from '../../host/underlay.js';
import type { PeerPath } from '../peer-paths.js';

/** The netlink operations the VXLAN backend uses (a NetlinkHandle; a fake in unit tests). */
export type VxlanNetlink = Pick<
  NetlinkHandle,
  | 'linkByName' | 'linkByIndex' | 'linkAdd' | 'linkDel' | 'linkSetUp' | 'linkSetMtu' | 'linkSetHwAddr'
  | 'addrList' | 'addrReplace' | 'addrDel'
  | 'routeDump' | 'neighDump' | 'fdbDump' | 'batch' | 'routeGet'
>;

/** Kernel notifications (a NetlinkMonitor): a deletion of ours triggers a full reconcile at once, an underlay route change a new look at each peer's path. */
export interface VxlanMonitor {
  drain(want?: (type: number) => boolean): Promise<Notification[]>;
}

export interface VxlanOptions {
  readonly nl: VxlanNetlink;
  readonly monitor?: VxlanMonitor;
  readonly log: Logger;
  readonly network: Prefix;
  readonly vni: number;
  readonly port: number;
  readonly device: string;
  /** The VTEP MAC for a public address (derived from it, so it changes with the address). */
  readonly macFor: (publicIp: string) => string;
  /** Its v4 address (v6 for family 6) is the VTEP's local address. */
  readonly underlay: Underlay & { readonly v4: string };
  /** 4 (default): the IPv4 device; 6: a dual-stack network's IPv6 device (network is then IPv6Network). */
  readonly family?: IpFamily;
  /** Backend.MTU from the network config; default underlay MTU - 50. */
  readonly mtu?: number;
  /** --route-protocol: carried by every route this backend installs. */
  readonly routeProtocol: number;
  /** Backend.DirectRouting: peers on this host's L2 segment get a direct route instead of VXLAN entries. */
  readonly directRouting?: boolean;
  /** Backend.Fallback: says which peers VXLAN would carry go into the udp path's TUN instead (backend/fallback/). */
  readonly fallback?: FallbackRouting;
}

/** A peer's path, and why; for udp (through the TUN) also the TUN's ifindex. */
export interface PathChoice {
  readonly path: PeerPath;
  readonly reason?: string;
  readonly index?: number;
}

export interface FallbackRouting {
  choose(key: string): PathChoice & { readonly path: 'vxlan' | 'udp' };
}

/** VXLAN over IPv4 adds 50 bytes: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;
/** Over IPv6, 70: the outer header is 40 bytes (flannel subtracts 50 for both; see the README). */
export const VXLAN6_OVERHEAD = 70;
