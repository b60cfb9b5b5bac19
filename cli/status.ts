// `weft status`: this node (lease, backend device, bridge, MTU) and every
// peer with its path and reachability and RTT, measured by ICMP echo to the
// peer's bridge gateway over the overlay. The path is read from the kernel,
// not from weftd: the route to the peer's subnet says whether packets go
// direct (via its PublicIP: host-gw, DirectRouting), into the VXLAN device,
// the TUN (udp) or the WireGuard device; a peer without a route whose PublicIP
// is behind a gateway is one host-gw skips. On a WireGuard device also each
// peer's last handshake and bytes, read from the device itself. On a
// dual-stack network each peer with an IPv6 subnet has a second row, for
// its IPv6 half (IPv6 subnet, PublicIPv6, the path from the kernel's IPv6
// table, ICMPv6 echo to its IPv6 gateway). Exit 0 when etcd answered and
// every peer did.
import { readFileSync } from 'node:fs';
import { readWireguardDevice } from '../backend/wireguard/choose.js';
import { checkEtcdFlags, ENV_PREFIX, ETCD_FLAGS, type EtcdFlags } from '../daemon/etcd-flags.js';
import { HOST_FLAGS } from '../daemon/flags.js';
import type { Command } from '../lib/flags.js';
import { formatIp, parseIp, Prefix, type IpFamily } from '../lib/ip.js';
import { withSubnetManager } from './etcd.js';
import { probeAll } from './icmp-probe.js';
import { readLeaseConflicts, readLeaseRows, type LeaseRow } from './leases.js';
import type { LeaseConflict } from '../subnet-manager/lease-claims.js';
import { formatEndpoint, NetlinkHandle, RT_TABLE_MAIN, type Link, type Route, type WgDevice } from '../netlink/index.js';
import { nextHop } from '../host/next-hop.js';
import { parseEnvFile } from '../host/subnet-env.js';
import { peerStateFileOf, readPeerState } from '../daemon/peer-state.js';

export interface StatusOptions {
  etcd: EtcdFlags;
  subnetFile: string;
  /** weftd's --peer-state-file (default: beside the subnet file): why each peer takes its path (and the fallback's probes). */
  peerStateFile?: string;
  bridge: string;
  timeoutMs: number;
}

/** How packets to a peer's subnet leave this host, as the kernel's main table says. */
export type StatusPath = 'direct' | 'vxlan' | 'udp' | 'wireguard' | 'skipped' | 'none' | 'other';

export interface PeerStatus {
  /** 4, or 6 for a dual-stack peer's IPv6 half (subnet, publicIp and vtepMac are then its IPv6 subnet, PublicIPv6 and BackendV6Data's MAC). */
  family: IpFamily;
  subnet: string;
  publicIp: string;
  backend: string;
  vtepMac: string;
  path: StatusPath;
  /** For skipped, none and other: why, or what the route is; else weftd's reason, when it gave one. */
  pathReason?: string;
  /** VXLAN's fallback: each path's probes as weftd sees them (state up/down/unknown, since, counts, last RTT). */
  probes?: Record<'vxlan' | 'udp', { state: string; since?: string; sent: number; answered: number; lost: number; lastRttMs?: number }>;
  target: string;
  sent: number;
  received: number;
  rttMs: number | null;
  reachable: boolean;
  /** The WireGuard peer whose allowed IPs hold this subnet (wireguard backend). */
  wireguard?: WireguardPeerStatus;
}

export interface WireguardPeerStatus {
  publicKey: string;
  endpoint: string | null;
  /** Seconds since the last handshake; null: never. */
  lastHandshakeSecondsAgo: number | null;
  rxBytes: number;
  txBytes: number;
}

export interface NodeStatus {
  node: {
    subnet: string;
    network: string;
    mtu: number;
    ipMasq: boolean;
    publicIp: string | null;
    backend: string | null;
    vtepMac: string | null;
    leaseExpiresInSeconds: number | null;
    device: { name: string; kind: string | null; up: boolean; mtu: number } | null;
    /** The device's WireGuard identity, when it is a WireGuard device (kernel, or wireguard-go's TUN). */
    wireguard: { publicKey: string | null; listenPort: number; peers: number } | null;
    bridge: { name: string; up: boolean; mtu: number; addresses: string[] } | null;
    /** A dual-stack node's IPv6 half: subnet.env's FLANNEL_IPV6_*, the lease's PublicIPv6, the device holding <v6 subnet>::/128. */
    ipv6: {
      subnet: string;
      network: string;
      publicIp: string | null;
      device: { name: string; kind: string | null; up: boolean; mtu: number } | null;
      wireguard: { publicKey: string | null; listenPort: number; peers: number } | null;
    } | null;
  };
  etcd: { ok: boolean; endpoints: string[]; error?: string };
  peers: PeerStatus[];
  /** Leases weftd skips for a conflict (not peers: no entries are made for them), each with the key it conflicts with. */
  conflicts: LeaseConflict[];
  /** Why the WireGuard device could not be read, when it could not. */
  wireguardError?: string;
}

function median(xs: readonly number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function gatherStatus(o: StatusOptions): Promise<NodeStatus> {
  let text: string;
  try {
    text = readFileSync(o.subnetFile, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the subnet file ${o.subnetFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): is weftd running on this host? (--subnet-file)`);
  }
  const env = parseEnvFile(text);
  const gwCidr = env.get('FLANNEL_SUBNET');
  if (!gwCidr) throw new Error(`${o.subnetFile} has no FLANNEL_SUBNET line`);
  const own = Prefix.parse(gwCidr, { mask: true, family: 4 });
  const gw6 = env.get('FLANNEL_IPV6_SUBNET');
  const own6 = gw6 ? Prefix.parse(gw6, { mask: true, family: 6 }) : undefined;
  const nl = NetlinkHandle.open();
  let bridge: NodeStatus['node']['bridge'] = null;
  let wgError: string | undefined;
  let dev4: FamilyDevice = {};
  let dev6: FamilyDevice = {};
  try {
    // The backend's device of each family holds <subnet>.0/32 (IPv6: <v6 subnet>::/128); host-gw has none.
    const find = async (family: IpFamily, sn: Prefix): Promise<FamilyDevice> => {
      const at = nl.addrList({ family }).find((a) => a.address === sn.address(0) && a.prefixLen === (family === 4 ? 32 : 128));
      const dl = at && nl.linkByIndex(at.index);
      if (!dl) return {};
      const wg = await readWireguardDevice(dl).catch((e: Error) => { wgError = e.message; return undefined; });
      return { device: { name: dl.name, kind: dl.kind ?? null, up: dl.up, mtu: dl.mtu }, ...(wg ? { wg, wgIndex: dl.index } : {}) };
    };
    dev4 = await find(4, own);
    if (own6) dev6 = await find(6, own6);
    const bl = nl.linkByName(o.bridge);
    if (bl) bridge = { name: bl.name, up: bl.up, mtu: bl.mtu, addresses: nl.addrList({ index: bl.index, family: 4 }).map((a) => `${a.address}/${a.prefixLen}`) };
  } finally {
    nl.close();
  }
  const status: NodeStatus = {
    node: {
      subnet: own.toString(),
      network: env.get('FLANNEL_NETWORK') ?? '',
      mtu: Number(env.get('FLANNEL_MTU') ?? 0),
      ipMasq: env.get('FLANNEL_IPMASQ') === 'true',
      publicIp: null,
      backend: null,
      vtepMac: null,
      leaseExpiresInSeconds: null,
      device: dev4.device ?? null,
      wireguard: wgIdentity(dev4.wg),
      bridge,
      ipv6: own6 ? { subnet: own6.toString(), network: env.get('FLANNEL_IPV6_NETWORK') ?? '', publicIp: null, device: dev6.device ?? null, wireguard: wgIdentity(dev6.wg) } : null,
    },
    etcd: { ok: false, endpoints: [...o.etcd.etcdEndpoints] },
    peers: [],
    conflicts: [],
  };
  let rows: LeaseRow[] = [];
  try {
    rows = await withSubnetManager(o.etcd, async (sm) => {
      const r = await readLeaseRows(sm.registry);
      status.conflicts = await readLeaseConflicts(sm, own.toString());
      return r;
    });
    status.etcd.ok = true;
  } catch (e) {
    status.etcd.error = `cannot reach etcd at ${o.etcd.etcdEndpoints.join(',')}: ${(e as Error).message.split('\n')[0]} (check --etcd-endpoints, or run on a host that reaches etcd)`;
  }
  const v4Of = (r: LeaseRow) => r.subnet.split(' ')[0]!;
  const mine = rows.find((r) => v4Of(r) === own.toString());
  if (mine) {
    if (status.node.ipv6) status.node.ipv6.publicIp = mine.ipv6?.publicIp || null;
    status.node.publicIp = mine.publicIp;
    status.node.backend = mine.backend;
    status.node.vtepMac = mine.vtepMac || null;
    status.node.leaseExpiresInSeconds = mine.ttlSeconds;
  }
  const skipped = new Set(status.conflicts.map((c) => c.key));
  const leases = rows.filter((r) => !r.error && v4Of(r) !== own.toString() && !skipped.has(r.key));
  // One row per peer and family: the IPv4 half, then (a dual-stack node, a peer with an IPv6 subnet) the IPv6 half.
  const halves: Half[] = [
    ...leases.map((r): Half => ({ family: 4, subnet: v4Of(r), publicIp: r.publicIp, backend: r.backend, vtepMac: r.vtepMac })),
    ...(own6 ? leases.flatMap((r): Half[] => (r.ipv6 ? [{ family: 6, subnet: r.ipv6.subnet, publicIp: r.ipv6.publicIp, backend: r.backend, vtepMac: r.ipv6.vtepMac }] : [])) : []),
  ];
  const pnl = NetlinkHandle.open();
  const paths = new Map<Half, PathView>();
  try {
    for (const family of [4, 6] as const) {
      const of = halves.filter((h) => h.family === family);
      const ownIp = family === 4 ? status.node.publicIp : status.node.ipv6?.publicIp ?? null;
      peerPaths(pnl, of, ownIp, (family === 4 ? dev4 : dev6).wgIndex, family).forEach((v, i) => paths.set(of[i]!, v));
    }
  } finally {
    pnl.close();
  }
  const targets = halves.map((p) => Prefix.parse(p.subnet).address(1));
  // A skipped peer has no route here: an echo would only leave through the default route.
  const probed = targets.filter((_, i) => paths.get(halves[i]!)!.path !== 'skipped');
  const probes = probed.length ? await probeAll(probed, { count: 3, timeoutMs: o.timeoutMs }) : new Map();
  const state = readPeerState(peerStateFileOf(o));
  // By subnet: with 10,000 peers, a search of the list per peer was 10^8 comparisons.
  const stateOf = new Map(state?.peers.map((s) => [s.subnet, s]));
  status.peers = halves.map((p, i) => {
    const r = probes.get(targets[i]!) ?? { sent: 0, received: 0, rttsMs: [] };
    const rtt = median(r.rttsMs);
    const wg = (p.family === 4 ? dev4 : dev6).wg;
    const w = wg && wireguardPeer(wg, p.subnet);
    return { ...p, ...withWeftdReason(paths.get(p)!, stateOf.get(p.subnet)), target: targets[i]!, sent: r.sent, received: r.received, rttMs: rtt, reachable: r.received > 0, ...(w ? { wireguard: w } : {}) };
  });
  if (wgError) status.wireguardError = wgError;
  return status;
}

/** The backend's device of one family, and its WireGuard view when it is a WireGuard device. */
interface FamilyDevice {
  device?: NonNullable<NodeStatus['node']['device']>;
  wg?: WgDevice;
  wgIndex?: number;
}

/** One family's half of a peer, before its path and probes. */
type Half = Pick<PeerStatus, 'family' | 'subnet' | 'publicIp' | 'backend' | 'vtepMac'>;

function wgIdentity(wg: WgDevice | undefined): NodeStatus['node']['wireguard'] {
  return wg ? { publicKey: wg.publicKey?.toString('base64') ?? null, listenPort: wg.listenPort, peers: wg.peers.length } : null;
}

export interface PathView {
  path: StatusPath;
  pathReason?: string;
  probes?: PeerStatus['probes'];
}

/** The kernel's path, with weftd's reason and probes when weftd has the peer on that same path. */
function withWeftdReason(v: PathView, s: (Record<string, unknown> & { subnet: string }) | undefined): PathView {
  if (!s || s.path !== v.path || v.pathReason) return v;
  return { ...v, ...(typeof s.reason === 'string' ? { pathReason: s.reason } : {}), ...(s.probes ? { probes: s.probes as PeerStatus['probes'] } : {}) };
}

/**
 * Each peer's path from the kernel's main table (of the family of its
 * subnets): the most specific route holding its subnet (not the default
 * route) goes via its PublicIP (direct), into a VXLAN device (vxlan), the
 * WireGuard device (wireguard, whose one route holds the whole network;
 * wireguard-go's is a TUN, so it is told by its index) or another TUN (udp);
 * no route and a PublicIP behind a gateway is a peer host-gw skips. The
 * IPv6 halves of peers are judged against their PublicIPv6.
 */
export function peerPaths(
  nl: Pick<NetlinkHandle, 'routeList' | 'linkList' | 'addrList' | 'routeGet'>,
  peers: ReadonlyArray<{ subnet: string; publicIp: string }>,
  ownPublicIp: string | null,
  wireguardIndex?: number,
  family: IpFamily = 4,
): PathView[] {
  const routes = nl.routeList({ family, table: RT_TABLE_MAIN }).flatMap((r) => {
    if (r.dst === 'default') return [];
    try {
      const dst = Prefix.parse(r.dst, { mask: true });
      return dst.prefixLen > 0 ? [{ r, dst }] : [];
    } catch {
      return [];
    }
  });
  const links = new Map<number, Link>(nl.linkList().map((l) => [l.index, l]));
  const canon = (ip: string) => { try { return formatIp(parseIp(ip).bytes); } catch { return ip; } };
  const ownAddr = ownPublicIp === null ? undefined : nl.addrList({ family }).find((a) => a.address === canon(ownPublicIp));
  const underlay = ownAddr && links.get(ownAddr.index);
  return peers.map((p): PathView => {
    const subnet = p.subnet.split(' ')[0]!;
    const sn = Prefix.parse(subnet);
    let best: { r: Route; dst: Prefix } | undefined;
    for (const x of routes) if (x.dst.containsNet(sn) && (!best || x.dst.prefixLen > best.dst.prefixLen)) best = x;
    if (best) return routePath(best.r, canon(p.publicIp), links, wireguardIndex);
    if (!p.publicIp) return { path: 'none', pathReason: `no route to ${subnet}, and the lease has no ${family === 4 ? 'PublicIP' : 'PublicIPv6'}` };
    if (underlay) {
      try {
        const hop = nextHop(nl, p.publicIp, underlay);
        if (!hop.onLink) return { path: 'skipped', pathReason: hop.reason };
      } catch (e) {
        return { path: 'none', pathReason: `no route to ${subnet}; looking up ${p.publicIp} failed: ${(e as Error).message}` };
      }
    }
    return { path: 'none', pathReason: `no route to ${subnet} (has weftd programmed it?)` };
  });
}

function routePath(r: Route, publicIp: string, links: ReadonlyMap<number, Link>, wireguardIndex?: number): PathView {
  if (r.gateway === publicIp) return { path: 'direct' };
  const dev = r.index === undefined ? undefined : links.get(r.index);
  if (dev?.kind === 'wireguard' || (dev !== undefined && dev.index === wireguardIndex)) return { path: 'wireguard' };
  if (dev?.kind === 'vxlan') return { path: 'vxlan' };
  if (dev?.kind === 'tun') return { path: 'udp' };
  return { path: 'other', pathReason: `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${dev?.name ?? r.index ?? '?'} proto ${r.protocol}` };
}

/** The device's peer whose allowed IPs hold `subnet`. */
function wireguardPeer(d: WgDevice, subnet: string): WireguardPeerStatus | undefined {
  const sn = Prefix.parse(subnet);
  const p = d.peers.find((x) => x.allowedIps.some((a) => a.containsNet(sn)));
  if (!p) return undefined;
  return {
    publicKey: p.publicKey.toString('base64'),
    endpoint: p.endpoint ? formatEndpoint(p.endpoint) : null,
    lastHandshakeSecondsAgo: p.lastHandshake ? Math.max(0, Math.round((Date.now() - p.lastHandshake.getTime()) / 1000)) : null,
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
  };
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** `vxlan down 3/20, udp up 20/20 0.412 ms`: each path's state, answered/sent and last RTT. */
function probeText(p: NonNullable<PeerStatus['probes']>): string {
  return (['vxlan', 'udp'] as const).map((k) => `${k} ${p[k].state} ${p[k].answered}/${p[k].sent}${p[k].lastRttMs !== undefined && p[k].state === 'up' ? ` ${p[k].lastRttMs!.toFixed(3)} ms` : ''}`).join(', ');
}

export function formatStatus(s: NodeStatus): string {
  const n = s.node;
  const lines = [
    `Node      subnet ${n.subnet} of ${n.network}, public IP ${n.publicIp ?? '?'}, backend ${n.backend ?? '?'}${n.vtepMac ? ` (VTEP MAC ${n.vtepMac})` : ''}`,
    `Lease     ${n.leaseExpiresInSeconds === null ? (s.etcd.ok ? 'reservation or not found' : 'unknown (etcd unreachable)') : `expires in ${n.leaseExpiresInSeconds} s`}`,
    `Device    ${n.device ? `${n.device.name} (${n.device.kind ?? 'plain'}), ${n.device.up ? 'up' : 'DOWN'}, MTU ${n.device.mtu}` : n.backend === 'host-gw' ? 'none (host-gw: each peer\'s subnet is routed via its PublicIP)' : `none holds ${n.subnet.replace(/\/\d+$/, '')}/32`}`,
    ...(n.wireguard ? [`WireGuard public key ${n.wireguard.publicKey ?? '(none)'}, port ${n.wireguard.listenPort}, ${n.wireguard.peers} peer${n.wireguard.peers === 1 ? '' : 's'}`] : []),
    ...(s.wireguardError ? [`WireGuard cannot read the device: ${s.wireguardError}`] : []),
    `Bridge    ${n.bridge ? `${n.bridge.name}, ${n.bridge.up ? 'up' : 'DOWN'}, MTU ${n.bridge.mtu}, ${n.bridge.addresses.join(' ') || 'no address'}` : 'missing'}`,
    ...(n.ipv6 ? [`IPv6      subnet ${n.ipv6.subnet} of ${n.ipv6.network}, public IPv6 ${n.ipv6.publicIp ?? '?'}, device ${n.ipv6.device ? `${n.ipv6.device.name} (${n.ipv6.device.kind ?? 'plain'}), ${n.ipv6.device.up ? 'up' : 'DOWN'}, MTU ${n.ipv6.device.mtu}` : 'none'}`] : []),
    ...(n.ipv6?.wireguard ? [`WireGuard IPv6 device: public key ${n.ipv6.wireguard.publicKey ?? '(none)'}, port ${n.ipv6.wireguard.listenPort}, ${n.ipv6.wireguard.peers} peer${n.ipv6.wireguard.peers === 1 ? '' : 's'}`] : []),
    `MTU       ${n.mtu} (containers)${n.ipMasq ? ', masquerading traffic that leaves the overlay' : ''}`,
    `etcd      ${s.etcd.ok ? `ok (${s.etcd.endpoints.join(',')})` : s.etcd.error}`,
  ];
  if (s.peers.length) {
    const wgCols = s.peers.some((p) => p.wireguard);
    // Columns as wide as their longest value (IPv6 subnets and addresses are longer than IPv4's).
    const width = (title: string, min: number, of: (p: PeerStatus) => string) => Math.max(min, title.length + 1, ...s.peers.map((p) => of(p).length + 1));
    const ws = width('PEER SUBNET', 20, (p) => p.subnet);
    const wi = width('PUBLIC IP', 17, (p) => p.publicIp);
    const wt = width('PROBE', 16, (p) => p.target);
    lines.push('', 'PEER SUBNET'.padEnd(ws) + 'PUBLIC IP'.padEnd(wi) + 'BACKEND'.padEnd(10) + 'PATH'.padEnd(10) + 'PROBE'.padEnd(wt) + 'REPLIES  ' + (wgCols ? 'RTT'.padEnd(14) + 'HANDSHAKE'.padEnd(12) + 'RX'.padEnd(12) + 'TX' : 'RTT'));
    for (const p of s.peers) {
      const rtt = p.rttMs !== null ? `${p.rttMs.toFixed(3)} ms` : p.path === 'skipped' ? 'not probed' : 'UNREACHABLE';
      const w = p.wireguard;
      const wgText = !wgCols ? '' : !w ? ' no WireGuard peer' : (w.lastHandshakeSecondsAgo === null ? 'never' : `${w.lastHandshakeSecondsAgo} s ago`).padEnd(12) + bytes(w.rxBytes).padEnd(12) + bytes(w.txBytes);
      lines.push((p.subnet.padEnd(ws) + (p.publicIp || '-').padEnd(wi) + p.backend.padEnd(10) + p.path.padEnd(10) + p.target.padEnd(wt) + `${p.received}/${p.sent}`.padEnd(9) + (wgCols ? rtt.padEnd(14) + wgText : rtt)).trimEnd());
    }
    const why = s.peers.filter((p) => p.pathReason || p.probes);
    if (why.length) lines.push('', ...why.map((p) => (p.probes ? `${p.subnet} ${p.path}${p.pathReason ? ` (${p.pathReason})` : ''}; probes ${probeText(p.probes)}` : `${p.subnet} ${p.path}: ${p.pathReason}`)));
  } else if (s.etcd.ok) {
    lines.push('', 'No peers.');
  }
  if (s.conflicts.length) {
    lines.push('', `CONFLICTING LEASES (skipped by weftd, no entries made): ${s.conflicts.length}`);
    for (const c of s.conflicts) lines.push(`${c.key} conflicts with ${c.other}: ${c.reason}`);
  }
  return lines.join('\n');
}

export const statusCommand: Command = {
  flags: {
    command: 'weft status',
    about: 'This node\'s lease, device and bridge, and every peer\'s path (direct, vxlan, udp, wireguard; skipped when host-gw cannot reach it) and reachability (ICMP echo over the overlay).\nOn a dual-stack network each peer with an IPv6 subnet also has a row for IPv6: its IPv6 subnet, PublicIPv6, path and ICMPv6 echo.\nExit status 1 when etcd does not answer or a peer does not reply (a skipped peer included).',
    envPrefix: ENV_PREFIX,
    flags: [
      ...ETCD_FLAGS,
      ...HOST_FLAGS.filter((f) => f.name === 'subnet-file' || f.name === 'bridge' || f.name === 'peer-state-file').map((f) => (f.name === 'subnet-file' ? { ...f, help: 'the subnet file weftd wrote' } : f.name === 'peer-state-file' ? { ...f, help: 'the peer state file weftd writes (why each peer takes its path)' } : f)),
      { name: 'timeout-ms', kind: 'int', def: 1000, min: 10, max: 60000, env: false, help: 'how long to wait for echo replies' },
      { name: 'json', kind: 'bool', env: false, help: 'print JSON instead of text' },
    ],
  },
  async run(p) {
    checkEtcdFlags(p.values);
    const v = p.values;
    const s = await gatherStatus({ etcd: v as unknown as EtcdFlags, subnetFile: String(v.subnetFile), ...(typeof v.peerStateFile === 'string' ? { peerStateFile: v.peerStateFile } : {}), bridge: String(v.bridge), timeoutMs: Number(v['timeout-ms']) });
    process.stdout.write((v.json === true ? JSON.stringify(s, null, 2) : formatStatus(s)) + '\n');
    return s.etcd.ok && s.peers.every((p) => p.reachable) ? 0 : 1;
  },
};
