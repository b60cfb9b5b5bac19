// `weft status`: this node (lease, backend device, bridge, MTU) and every
// `weft status`: this node (lease, backend device, bridge, MTU) and every
// peer with its path and reachability and RTT, measured by ICMP echo to the
// peer's bridge gateway over the overlay. The path is read from the kernel,
// not from weftd: the route to the peer's subnet says whether packets go
// direct (via its PublicIP: host-gw, DirectRouting), into the VXLAN device,
// the TUN (udp) or the WireGuard device; a peer without a route whose PublicIP
// is behind a gateway is one host-gw skips. On a WireGuard device also each
// peer's last handshake and bytes, read from the device itself. Exit 0 when
// etcd answered and every peer did.
import { readFileSync } from 'node:fs';
import { readWireguardDevice } from '../backend/wireguard/choose.js';
import { checkEtcdFlags, ENV_PREFIX, ETCD_FLAGS, type EtcdFlags } from '../daemon/etcd-flags.js';
import { HOST_FLAGS } from '../daemon/flags.js';
import type { Command } from '../lib/flags.js';
import { Prefix } from '../lib/ip.js';
import { withSubnetManager } from './etcd.js';
import { probeAll } from './icmp-probe.js';
import { readLeaseConflicts, readLeaseRows, type LeaseRow } from './leases.js';
import type { LeaseConflict } from '../subnet-manager/lease-claims.js';
import { formatEndpoint, NetlinkHandle, RT_TABLE_MAIN, type Link, type Route, type WgDevice } from '../netlink/index.js';
import { nextHop } from '../host/next-hop.js';
import { parseEnvFile } from '../host/subnet-env.js';

export interface StatusOptions {
  etcd: EtcdFlags;
  subnetFile: string;
  bridge: string;
  timeoutMs: number;
}

/** How packets to a peer's subnet leave this host, as the kernel's main table says. */
export type StatusPath = 'direct' | 'vxlan' | 'udp' | 'wireguard' | 'skipped' | 'none' | 'other';

export interface PeerStatus {
  subnet: string;
  publicIp: string;
  backend: string;
  vtepMac: string;
  path: StatusPath;
  /** For skipped, none and other: why, or what the route is. */
  pathReason?: string;
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
  const nl = NetlinkHandle.open();
  let device: NodeStatus['node']['device'] = null;
  let bridge: NodeStatus['node']['bridge'] = null;
  let wg: WgDevice | undefined;
  let wgError: string | undefined;
  let wgIndex: number | undefined;
  try {
    const vtep = nl.addrList({ family: 4 }).find((a) => a.address === own.address(0) && a.prefixLen === 32);
    const dl = vtep && nl.linkByIndex(vtep.index);
    if (dl) device = { name: dl.name, kind: dl.kind ?? null, up: dl.up, mtu: dl.mtu };
    if (dl) wg = await readWireguardDevice(dl).catch((e: Error) => { wgError = e.message; return undefined; });
    if (dl && wg) wgIndex = dl.index;
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
      device,
      wireguard: wg ? { publicKey: wg.publicKey?.toString('base64') ?? null, listenPort: wg.listenPort, peers: wg.peers.length } : null,
      bridge,
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
  const mine = rows.find((r) => r.subnet === own.toString());
  if (mine) {
    status.node.publicIp = mine.publicIp;
    status.node.backend = mine.backend;
    status.node.vtepMac = mine.vtepMac || null;
    status.node.leaseExpiresInSeconds = mine.ttlSeconds;
  }
  const skipped = new Set(status.conflicts.map((c) => c.key));
  const peers = rows.filter((r) => !r.error && r.subnet !== own.toString() && !skipped.has(r.key));
  const pnl = NetlinkHandle.open();
  let paths: PathView[];
  try {
    paths = peerPaths(pnl, peers, status.node.publicIp, wgIndex);
  } finally {
    pnl.close();
  }
  const targets = peers.map((p) => Prefix.parse(p.subnet.split(' ')[0]!).address(1));
  // A skipped peer has no route here: an echo would only leave through the default route.
  const probed = targets.filter((_, i) => paths[i]!.path !== 'skipped');
  const probes = probed.length ? await probeAll(probed, { count: 3, timeoutMs: o.timeoutMs }) : new Map();
  status.peers = peers.map((p, i) => {
    const r = probes.get(targets[i]!) ?? { sent: 0, received: 0, rttsMs: [] };
    const rtt = median(r.rttsMs);
    const w = wg && wireguardPeer(wg, p.subnet.split(' ')[0]!);
    return { subnet: p.subnet, publicIp: p.publicIp, backend: p.backend, vtepMac: p.vtepMac, ...paths[i]!, target: targets[i]!, sent: r.sent, received: r.received, rttMs: rtt, reachable: r.received > 0, ...(w ? { wireguard: w } : {}) };
  });
  if (wgError) status.wireguardError = wgError;
  return status;
}

export interface PathView {
  path: StatusPath;
  pathReason?: string;
}

/**
 * Each peer's path from the kernel's main table: the route to its subnet goes
 * via its PublicIP (direct), into a VXLAN device (vxlan), the WireGuard device
 * (wireguard; wireguard-go's is a TUN, so it is told by its index) or another
 * TUN (udp); no route and a PublicIP behind a gateway is a peer host-gw skips.
 */
export function peerPaths(
  nl: Pick<NetlinkHandle, 'routeList' | 'linkList' | 'addrList' | 'routeGet'>,
  peers: ReadonlyArray<{ subnet: string; publicIp: string }>,
  ownPublicIp: string | null,
  wireguardIndex?: number,
): PathView[] {
  const routes = nl.routeList({ family: 4, table: RT_TABLE_MAIN });
  const links = new Map<number, Link>(nl.linkList().map((l) => [l.index, l]));
  const ownAddr = ownPublicIp === null ? undefined : nl.addrList({ family: 4 }).find((a) => a.address === ownPublicIp);
  const underlay = ownAddr && links.get(ownAddr.index);
  return peers.map((p): PathView => {
    const subnet = p.subnet.split(' ')[0]!;
    const r = routes.find((x) => x.dst === subnet);
    if (r) return routePath(r, p.publicIp, links, wireguardIndex);
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

export function formatStatus(s: NodeStatus): string {
  const n = s.node;
  const lines = [
    `Node      subnet ${n.subnet} of ${n.network}, public IP ${n.publicIp ?? '?'}, backend ${n.backend ?? '?'}${n.vtepMac ? ` (VTEP MAC ${n.vtepMac})` : ''}`,
    `Lease     ${n.leaseExpiresInSeconds === null ? (s.etcd.ok ? 'reservation or not found' : 'unknown (etcd unreachable)') : `expires in ${n.leaseExpiresInSeconds} s`}`,
    `Device    ${n.device ? `${n.device.name} (${n.device.kind ?? 'plain'}), ${n.device.up ? 'up' : 'DOWN'}, MTU ${n.device.mtu}` : n.backend === 'host-gw' ? 'none (host-gw: each peer\'s subnet is routed via its PublicIP)' : `none holds ${n.subnet.replace(/\/\d+$/, '')}/32`}`,
    ...(n.wireguard ? [`WireGuard public key ${n.wireguard.publicKey ?? '(none)'}, port ${n.wireguard.listenPort}, ${n.wireguard.peers} peer${n.wireguard.peers === 1 ? '' : 's'}`] : []),
    ...(s.wireguardError ? [`WireGuard cannot read the device: ${s.wireguardError}`] : []),
    `Bridge    ${n.bridge ? `${n.bridge.name}, ${n.bridge.up ? 'up' : 'DOWN'}, MTU ${n.bridge.mtu}, ${n.bridge.addresses.join(' ') || 'no address'}` : 'missing'}`,
    `MTU       ${n.mtu} (containers)${n.ipMasq ? ', masquerading traffic that leaves the overlay' : ''}`,
    `etcd      ${s.etcd.ok ? `ok (${s.etcd.endpoints.join(',')})` : s.etcd.error}`,
  ];
  if (s.peers.length) {
    const wgCols = s.peers.some((p) => p.wireguard);
    lines.push('', 'PEER SUBNET'.padEnd(20) + 'PUBLIC IP'.padEnd(17) + 'BACKEND'.padEnd(10) + 'PATH'.padEnd(10) + 'PROBE'.padEnd(16) + 'REPLIES  ' + (wgCols ? 'RTT'.padEnd(14) + 'HANDSHAKE'.padEnd(12) + 'RX'.padEnd(12) + 'TX' : 'RTT'));
    for (const p of s.peers) {
      const rtt = p.rttMs !== null ? `${p.rttMs.toFixed(3)} ms` : p.path === 'skipped' ? 'not probed' : 'UNREACHABLE';
      const w = p.wireguard;
      const wgText = !wgCols ? '' : !w ? ' no WireGuard peer' : (w.lastHandshakeSecondsAgo === null ? 'never' : `${w.lastHandshakeSecondsAgo} s ago`).padEnd(12) + bytes(w.rxBytes).padEnd(12) + bytes(w.txBytes);
      lines.push((p.subnet.padEnd(20) + p.publicIp.padEnd(17) + p.backend.padEnd(10) + p.path.padEnd(10) + p.target.padEnd(16) + `${p.received}/${p.sent}`.padEnd(9) + (wgCols ? rtt.padEnd(14) + wgText : rtt)).trimEnd());
    }
    const why = s.peers.filter((p) => p.pathReason);
    if (why.length) lines.push('', ...why.map((p) => `${p.subnet} ${p.path}: ${p.pathReason}`));
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
    about: 'This node\'s lease, device and bridge, and every peer\'s path (direct, vxlan, udp; skipped when host-gw cannot reach it) and reachability (ICMP echo over the overlay).\nExit status 1 when etcd does not answer or a peer does not reply (a skipped peer included).',
    envPrefix: ENV_PREFIX,
    flags: [
      ...ETCD_FLAGS,
      ...HOST_FLAGS.filter((f) => f.name === 'subnet-file' || f.name === 'bridge').map((f) => (f.name === 'subnet-file' ? { ...f, help: 'the subnet file weftd wrote' } : f)),
      { name: 'timeout-ms', kind: 'int', def: 1000, min: 10, max: 60000, env: false, help: 'how long to wait for echo replies' },
      { name: 'json', kind: 'bool', env: false, help: 'print JSON instead of text' },
    ],
  },
  async run(p) {
    checkEtcdFlags(p.values);
    const v = p.values;
    const s = await gatherStatus({ etcd: v as unknown as EtcdFlags, subnetFile: String(v.subnetFile), bridge: String(v.bridge), timeoutMs: Number(v['timeout-ms']) });
    process.stdout.write((v.json === true ? JSON.stringify(s, null, 2) : formatStatus(s)) + '\n');
    return s.etcd.ok && s.peers.every((p) => p.reachable) ? 0 : 1;
  },
};
