// `weft status`: this node (lease, backend device, bridge, MTU) and every
// peer with its path and reachability and RTT, measured by ICMP echo to the
// peer's bridge gateway over the overlay. The path is read from the kernel,
// not from weftd: the route to the peer's subnet says whether packets go
// direct (via its PublicIP: host-gw, DirectRouting), into the VXLAN device or
// into the TUN (udp); a peer without a route whose PublicIP is behind a
// gateway is one host-gw skips. Exit 0 when etcd answered and every peer did.
import { readFileSync } from 'node:fs';
import { checkEtcdFlags, ENV_PREFIX, ETCD_FLAGS, type EtcdFlags } from '../daemon/etcd-flags.js';
import { HOST_FLAGS } from '../daemon/flags.js';
import type { Command } from '../lib/flags.js';
import { Prefix } from '../lib/ip.js';
import { withSubnetManager } from './etcd.js';
import { probeAll } from './icmp-probe.js';
import { readLeaseRows, type LeaseRow } from './leases.js';
import { NetlinkHandle, RT_TABLE_MAIN, type Link, type Route } from '../netlink/index.js';
import { nextHop } from '../host/next-hop.js';
import { parseEnvFile } from '../host/subnet-env.js';

export interface StatusOptions {
  etcd: EtcdFlags;
  subnetFile: string;
  bridge: string;
  timeoutMs: number;
}

/** How packets to a peer's subnet leave this host, as the kernel's main table says. */
export type StatusPath = 'direct' | 'vxlan' | 'udp' | 'skipped' | 'none' | 'other';

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
    bridge: { name: string; up: boolean; mtu: number; addresses: string[] } | null;
  };
  etcd: { ok: boolean; endpoints: string[]; error?: string };
  peers: PeerStatus[];
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
  try {
    const vtep = nl.addrList({ family: 4 }).find((a) => a.address === own.address(0) && a.prefixLen === 32);
    const dl = vtep && nl.linkByIndex(vtep.index);
    if (dl) device = { name: dl.name, kind: dl.kind ?? null, up: dl.up, mtu: dl.mtu };
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
      bridge,
    },
    etcd: { ok: false, endpoints: [...o.etcd.etcdEndpoints] },
    peers: [],
  };
  let rows: LeaseRow[] = [];
  try {
    rows = await withSubnetManager(o.etcd, (sm) => readLeaseRows(sm.registry));
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
  const peers = rows.filter((r) => !r.error && r.subnet !== own.toString());
  const pnl = NetlinkHandle.open();
  let paths: PathView[];
  try {
    paths = peerPaths(pnl, peers, status.node.publicIp);
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
    return { subnet: p.subnet, publicIp: p.publicIp, backend: p.backend, vtepMac: p.vtepMac, ...paths[i]!, target: targets[i]!, sent: r.sent, received: r.received, rttMs: rtt, reachable: r.received > 0 };
  });
  return status;
}

export interface PathView {
  path: StatusPath;
  pathReason?: string;
}

/**
 * Each peer's path from the kernel's main table: the route to its subnet goes
 * via its PublicIP (direct), into a VXLAN device (vxlan) or a TUN (udp); no
 * route and a PublicIP behind a gateway is a peer host-gw skips.
 */
export function peerPaths(
  nl: Pick<NetlinkHandle, 'routeList' | 'linkList' | 'addrList' | 'routeGet'>,
  peers: ReadonlyArray<{ subnet: string; publicIp: string }>,
  ownPublicIp: string | null,
): PathView[] {
  const routes = nl.routeList({ family: 4, table: RT_TABLE_MAIN });
  const links = new Map<number, Link>(nl.linkList().map((l) => [l.index, l]));
  const ownAddr = ownPublicIp === null ? undefined : nl.addrList({ family: 4 }).find((a) => a.address === ownPublicIp);
  const underlay = ownAddr && links.get(ownAddr.index);
  return peers.map((p): PathView => {
    const subnet = p.subnet.split(' ')[0]!;
    const r = routes.find((x) => x.dst === subnet);
    if (r) return routePath(r, p.publicIp, links);
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

function routePath(r: Route, publicIp: string, links: ReadonlyMap<number, Link>): PathView {
  if (r.gateway === publicIp) return { path: 'direct' };
  const dev = r.index === undefined ? undefined : links.get(r.index);
  if (dev?.kind === 'vxlan') return { path: 'vxlan' };
  if (dev?.kind === 'tun') return { path: 'udp' };
  return { path: 'other', pathReason: `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${dev?.name ?? r.index ?? '?'} proto ${r.protocol}` };
}

export function formatStatus(s: NodeStatus): string {
  const n = s.node;
  const lines = [
    `Node      subnet ${n.subnet} of ${n.network}, public IP ${n.publicIp ?? '?'}, backend ${n.backend ?? '?'}${n.vtepMac ? ` (VTEP MAC ${n.vtepMac})` : ''}`,
    `Lease     ${n.leaseExpiresInSeconds === null ? (s.etcd.ok ? 'reservation or not found' : 'unknown (etcd unreachable)') : `expires in ${n.leaseExpiresInSeconds} s`}`,
    `Device    ${n.device ? `${n.device.name} (${n.device.kind ?? 'plain'}), ${n.device.up ? 'up' : 'DOWN'}, MTU ${n.device.mtu}` : n.backend === 'host-gw' ? 'none (host-gw: each peer\'s subnet is routed via its PublicIP)' : `none holds ${n.subnet.replace(/\/\d+$/, '')}/32`}`,
    `Bridge    ${n.bridge ? `${n.bridge.name}, ${n.bridge.up ? 'up' : 'DOWN'}, MTU ${n.bridge.mtu}, ${n.bridge.addresses.join(' ') || 'no address'}` : 'missing'}`,
    `MTU       ${n.mtu} (containers)${n.ipMasq ? ', masquerading traffic that leaves the overlay' : ''}`,
    `etcd      ${s.etcd.ok ? `ok (${s.etcd.endpoints.join(',')})` : s.etcd.error}`,
  ];
  if (s.peers.length) {
    lines.push('', 'PEER SUBNET'.padEnd(20) + 'PUBLIC IP'.padEnd(17) + 'BACKEND'.padEnd(9) + 'PATH'.padEnd(9) + 'PROBE'.padEnd(16) + 'REPLIES  RTT');
    for (const p of s.peers) {
      const rtt = p.rttMs !== null ? `${p.rttMs.toFixed(3)} ms` : p.path === 'skipped' ? 'not probed' : 'UNREACHABLE';
      lines.push(p.subnet.padEnd(20) + p.publicIp.padEnd(17) + p.backend.padEnd(9) + p.path.padEnd(9) + p.target.padEnd(16) + `${p.received}/${p.sent}`.padEnd(9) + rtt);
    }
    const why = s.peers.filter((p) => p.pathReason);
    if (why.length) lines.push('', ...why.map((p) => `${p.subnet} ${p.path}: ${p.pathReason}`));
  } else if (s.etcd.ok) {
    lines.push('', 'No peers.');
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
