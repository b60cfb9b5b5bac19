// The object model: what the kernel holds (decoded from dumps and
// notifications) and what we ask it to create (specs).
import type { IpFamily } from '../lib/ip.js';

export interface VxlanInfo {
  id: number;
  /** UDP destination port (IFLA_VXLAN_PORT, host order here). */
  port: number;
  local?: string;
  group?: string;
  linkIndex?: number;
  learning: boolean;
  gbp?: boolean;
  ttl?: number;
  srcPortMin?: number;
  srcPortMax?: number;
}

export interface TunInfo {
  type: 'tun' | 'tap';
  pi: boolean;
  vnetHdr: boolean;
  persist: boolean;
  multiQueue: boolean;
  /** Queues attached now (IFLA_TUN_NUM_QUEUES): open fds; 0 for a persistent TUN nobody holds. */
  numQueues?: number;
  owner?: number;
  group?: number;
}

export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'vxlan', 'bridge', 'veth', 'tun', 'dummy', ...; undefined for plain devices. */
  kind?: string;
  mtu: number;
  flags: number;
  up: boolean;
  operState?: number;
  mac?: string;
  masterIndex?: number;
  /** IFLA_LINK: the lower device (veth peer, vxlan underlay is in vxlan.linkIndex). */
  linkIndex?: number;
  /** IFLA_LINK_NETNSID: linkIndex lives in another namespace. */
  linkNetnsId?: number;
  vxlan?: VxlanInfo;
  tun?: TunInfo;
}

interface LinkSpecBase {
  name: string;
  mtu?: number;
  mac?: string;
}
export interface VxlanLinkSpec extends LinkSpecBase {
  kind: 'vxlan';
  vni: number;
  port: number;
  local?: string;
  linkIndex?: number;
  /** Default false: `nolearning`, the FDB is programmed by the agent. */
  learning?: boolean;
  gbp?: boolean;
  ttl?: number;
}
export interface BridgeLinkSpec extends LinkSpecBase {
  kind: 'bridge';
}
export interface VethLinkSpec extends LinkSpecBase {
  kind: 'veth';
  peerName: string;
  /** Create the peer directly inside another namespace (an open fd of /run/netns/X). */
  peerNetnsFd?: number;
  /** Same, by path or bare name (/run/netns/<name>); opened and closed around the request. */
  peerNetns?: string;
}
export interface DummyLinkSpec extends LinkSpecBase {
  kind: 'dummy';
}
/** The kernel's WireGuard device; keys and peers are set over generic netlink (wireguard.ts). */
export interface WireguardLinkSpec extends LinkSpecBase {
  kind: 'wireguard';
}
export type LinkSpec = VxlanLinkSpec | BridgeLinkSpec | VethLinkSpec | DummyLinkSpec | WireguardLinkSpec;

export interface Addr {
  index: number;
  family: IpFamily;
  address: string;
  prefixLen: number;
  scope: number;
  /** IFA_F_* (from IFA_FLAGS when present, which carries the bits above 0xff). */
  flags: number;
  broadcast?: string;
  /** Point-to-point peer, when IFA_ADDRESS differs from IFA_LOCAL. */
  peer?: string;
  label?: string;
}

export interface AddrSpec {
  index: number;
  address: string;
  prefixLen: number;
  broadcast?: string;
  label?: string;
  scope?: number;
  /** IFA_FLAGS (e.g. IFA_F_NODAD: an IPv6 address usable at once, no duplicate address detection). */
  flags?: number;
}

export interface Route {
  family: IpFamily;
  /** "10.244.3.0/24", or "default". */
  dst: string;
  gateway?: string;
  index?: number;
  onlink: boolean;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
  metric?: number;
  src?: string;
  mtu?: number;
  /** The route's nexthop object (RTA_NH_ID); its gateway and device then come from the object (the kernel adds them to the dump only with net.ipv4.nexthop_compat_mode=1). */
  nhid?: number;
}

export interface RouteSpec {
  dst: string;
  gateway?: string;
  index?: number;
  onlink?: boolean;
  /** Default RT_TABLE_MAIN. */
  table?: number;
  /** Default: RT_SCOPE_LINK without a gateway, else RT_SCOPE_UNIVERSE (as iproute2). */
  scope?: number;
  /** Default RTPROT_BOOT (as iproute2). */
  protocol?: number;
  /** Default RTN_UNICAST. */
  type?: number;
  metric?: number;
  src?: string;
  mtu?: number;
  /** Through nexthop object N (`nhid N`), instead of gateway, index and onlink. */
  nhid?: number;
}

/** A kernel nexthop object (`ip nexthop`), one gateway on one device. */
export interface Nexthop {
  id: number;
  family: IpFamily;
  gateway?: string;
  index?: number;
  onlink: boolean;
  protocol: number;
  scope: number;
  flags: number;
  /** A group of other nexthops (NHA_GROUP) or a blackhole: not one weft makes. */
  group: boolean;
  blackhole: boolean;
}

export interface NexthopSpec {
  id: number;
  gateway?: string;
  index?: number;
  onlink?: boolean;
  /** Default RTPROT_BOOT (as iproute2). */
  protocol?: number;
  /** Family of a nexthop without gateway; else the gateway's. */
  family?: IpFamily;
}

export interface Neigh {
  index: number;
  family: IpFamily;
  ip: string;
  mac?: string;
  state: number;
  flags: number;
  type: number;
}

export interface NeighSpec {
  index: number;
  ip: string;
  mac: string;
  /** Default NUD_PERMANENT. */
  state?: number;
}

export interface Fdb {
  index: number;
  mac: string;
  /** Remote VTEP (NDA_DST). */
  dst?: string;
  state: number;
  flags: number;
  self: boolean;
  master: boolean;
  masterIndex?: number;
  vlan?: number;
  port?: number;
  vni?: number;
}

export interface FdbSpec {
  index: number;
  mac: string;
  /** Remote VTEP IP (NDA_DST). */
  dst?: string;
  /** NTF_SELF: the entry belongs to the device's own table (vxlan). Default true. */
  self?: boolean;
  /** NTF_MASTER: the entry belongs to the bridge the device is enslaved to. Default false. */
  master?: boolean;
  /** Default NUD_PERMANENT (flannel); iproute2's `bridge fdb` sends NUD_PERMANENT|NUD_NOARP. */
  state?: number;
  port?: number;
  vni?: number;
  vlan?: number;
}
