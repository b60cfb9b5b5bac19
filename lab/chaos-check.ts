// The chaos suite's oracle: what etcd holds, and whether each host's kernel (read with
// iproute2, not with weft's own netlink code) and forwarder hold exactly the live leases.
// The lease rules here are written out again on purpose, independent of subnet-manager/:
// a lease is live when its key names an aligned subnet inside the network and its value is
// a JSON object with an IPv4 PublicIP, the network's BackendType and, for vxlan, a unicast
// VtepMAC. Garbage the suite wrote is never live, or is gone again before the checks.
import { forwarderStats, kernelRoutes, logRecords, readSubnetEnv, type LabAgent } from './agent.js';
import type { Lab, LabHost } from './lab.js';

export interface ChaosNetwork {
  readonly name: 'vxlan' | 'udp';
  /** etcd prefix: <prefix>/config, <prefix>/subnets/. */
  readonly prefix: string;
  /** '10.244.0.0/16' */
  readonly network: string;
  readonly hosts: readonly LabHost[];
}

export const VXLAN_DEV = 'weft.1';
export const TUN_DEV = 'weft-tun';
export const UDP_PORT = 8285;

export interface RawLease { key: string; value: string; createRevision: number; modRevision: number; leaseId: string }
export interface LiveLease { key: string; subnet: string; net: number; len: number; publicIp: string; mac?: string }

/** Runs etcdctl inside the etcd host against every member (a stopped member is skipped by its timeouts); retried. */
export async function etcdctl(lab: Lab, args: readonly string[], attempts = 4): Promise<string> {
  let last = '';
  for (let i = 0; i < attempts; i++) {
    const r = await lab.execIn(lab.etcdNs!, 'etcdctl', ['--endpoints', lab.etcd!.labEndpoints.join(','), '--dial-timeout', '1s', '--command-timeout', '2s', ...args], { timeoutMs: 6000 })
      .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message, signal: null }));
    if (r.code === 0) return r.stdout;
    last = (r.stderr || r.stdout).trim();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`etcdctl ${args.join(' ')}: ${last}`);
}

export async function readLeases(lab: Lab, prefix: string): Promise<RawLease[]> {
  const out = JSON.parse(await etcdctl(lab, ['get', '--prefix', `${prefix}/subnets/`, '-w', 'json'])) as {
    kvs?: Array<{ key: string; value?: string; create_revision: number; mod_revision: number; lease?: number }>;
  };
  const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
  return (out.kvs ?? []).map((kv) => ({
    key: b64(kv.key), value: b64(kv.value), createRevision: kv.create_revision, modRevision: kv.mod_revision, leaseId: String(kv.lease ?? 0),
  }));
}

const ip4 = (s: string): number | undefined => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
};
const fmt4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const mask = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

/** The live leases of a network, by the rules above; garbage is left out. */
export function liveLeases(net: ChaosNetwork, raw: readonly RawLease[]): LiveLease[] {
  const [nAddr, nLenS] = net.network.split('/');
  const nNet = ip4(nAddr!)!;
  const nLen = Number(nLenS);
  const out: LiveLease[] = [];
  for (const kv of raw) {
    const m = /^(\d+\.\d+\.\d+\.\d+)-(\d{1,2})$/.exec(kv.key.slice(`${net.prefix}/subnets/`.length));
    if (!m) continue;
    const addr = ip4(m[1]!);
    const len = Number(m[2]);
    if (addr === undefined || len > 32 || len < nLen || ((addr & mask(len)) >>> 0) !== addr || ((addr & mask(nLen)) >>> 0) !== nNet) continue;
    let v: unknown;
    try { v = JSON.parse(kv.value); } catch { continue; }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
    const o = v as Record<string, unknown>;
    if (typeof o.PublicIP !== 'string' || ip4(o.PublicIP) === undefined) continue;
    const bt = o.BackendType ?? 'udp';
    if (bt !== net.name && !(net.name === 'udp' && bt === '')) continue;
    let mac: string | undefined;
    if (net.name === 'vxlan') {
      const d = o.BackendData as Record<string, unknown> | null;
      mac = typeof d?.VtepMAC === 'string' ? d.VtepMAC.toLowerCase() : undefined;
      if (!mac || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) || mac === '00:00:00:00:00:00') continue;
    }
    out.push({ key: kv.key, subnet: `${m[1]}/${len}`, net: addr, len, publicIp: o.PublicIP, ...(mac ? { mac } : {}) });
  }
  return out;
}

/** Conflicts among live leases: overlapping subnets, a VtepMAC or a PublicIP held twice. */
export function leaseConflicts(leases: readonly LiveLease[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < leases.length; i++) {
    for (let j = i + 1; j < leases.length; j++) {
      const a = leases[i]!, b = leases[j]!;
      const len = Math.min(a.len, b.len);
      if (((a.net & mask(len)) >>> 0) === ((b.net & mask(len)) >>> 0)) out.push(`${a.key} and ${b.key} overlap`);
      if (a.mac && a.mac === b.mac) out.push(`${a.key} and ${b.key} share VtepMAC ${a.mac}`);
      if (a.publicIp === b.publicIp) out.push(`${a.key} and ${b.key} share PublicIP ${a.publicIp}`);
    }
  }
  return out;
}

export interface HostVerdict {
  readonly host: string;
  readonly problems: string[];
}

const sorted = (xs: Iterable<string>) => [...xs].sort();
function diff(what: string, want: readonly string[], got: readonly string[]): string[] {
  const w = new Set(want), g = new Set(got);
  const missing = want.filter((x) => !g.has(x));
  const extra = got.filter((x) => !w.has(x));
  return [...missing.map((x) => `${what} missing: ${x}`), ...extra.map((x) => `${what} unexpected: ${x}`)];
}

/** A vxlan host: exactly one neighbour, FDB entry and route on weft.1 per live peer lease (iproute2 as the oracle). */
export async function checkVxlanHost(lab: Lab, h: LabHost, live: readonly LiveLease[]): Promise<string[]> {
  const problems: string[] = [];
  const links = (await lab.ipJson(h.ns, ['-d', 'link', 'show']).catch(() => [])) as Array<{ ifname: string; flags?: string[]; linkinfo?: { info_data?: { local?: string } } }>;
  const dev = links.find((l) => l.ifname === VXLAN_DEV);
  if (!dev) return [`${VXLAN_DEV} does not exist`];
  if (!dev.flags?.includes('UP')) problems.push(`${VXLAN_DEV} is down`);
  if (dev.linkinfo?.info_data?.local !== h.underlayIp) problems.push(`${VXLAN_DEV} local is ${dev.linkinfo?.info_data?.local}, want ${h.underlayIp}`);
  const neigh = (await lab.ipJson(h.ns, ['neigh', 'show', 'dev', VXLAN_DEV])) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  const fdb = (await lab.bridgeJson(h.ns, ['fdb', 'show', 'dev', VXLAN_DEV])) as Array<{ mac: string; dst?: string; flags?: string[]; state?: string }>;
  const route = (await kernelRoutes(lab, h.ns)).filter((r) => r.dev === VXLAN_DEV);
  const peers = live.filter((l) => l.publicIp !== h.underlayIp);
  const vtep = (l: LiveLease) => fmt4(l.net);
  problems.push(
    ...diff('neighbour', sorted(peers.map((p) => `${vtep(p)} ${p.mac} PERMANENT`)), sorted(neigh.map((n) => `${n.dst} ${n.lladdr} ${(n.state ?? []).join(',')}`))),
    ...diff('fdb', sorted(peers.map((p) => `${p.mac} ${p.publicIp} self permanent`)),
      sorted(fdb.filter((f) => f.dst).map((f) => `${f.mac} ${f.dst} ${(f.flags ?? []).join(',')} ${f.state ?? ''}`.trim()))),
    ...diff('route', sorted(peers.map((p) => `${p.subnet} via ${vtep(p)} onlink`)), sorted(route.map((r) => `${r.dst} via ${r.gateway} ${r.flags.join(',')}`))),
  );
  return problems;
}

/** A udp host: the TUN up with <subnet>.0/32 and one route for the whole network; the forwarder's peers = the live peer leases. */
export async function checkUdpHost(lab: Lab, h: LabHost, net: ChaosNetwork, agent: LabAgent, live: readonly LiveLease[]): Promise<string[]> {
  const problems: string[] = [];
  const links = (await lab.ipJson(h.ns, ['link', 'show'])) as Array<{ ifname: string; flags?: string[] }>;
  const dev = links.find((l) => l.ifname === TUN_DEV);
  if (!dev) return [`${TUN_DEV} does not exist`];
  if (!dev.flags?.includes('UP')) problems.push(`${TUN_DEV} is down`);
  const route = (await lab.ipJson(h.ns, ['route', 'show', 'dev', TUN_DEV])) as Array<{ dst: string }>;
  problems.push(...diff('route', [net.network], route.map((r) => r.dst)));
  const own = live.find((l) => l.publicIp === h.underlayIp);
  const addrs = (await lab.ipJson(h.ns, ['-4', 'addr', 'show', 'dev', TUN_DEV])) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
  if (own) problems.push(...diff('address', [`${fmt4(own.net)}/32`], (addrs[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`)));
  // The forwarder's table, as the agent reports it (SIGUSR1 stats), only once this process is ready (before, SIGUSR1 would kill it).
  if (!logRecords(lab, agent).some((r) => r.msg === 'ready')) return [...problems, 'weftd is not ready'];
  const read = await forwarderStats(lab, agent, 2000).then((stats: { peers?: Record<string, unknown> }) => ({ stats }), (e: Error) => ({ failed: e.message }));
  if ('failed' in read) return [...problems, `no forwarder stats: ${read.failed}`];
  const peers = Object.keys(read.stats.peers ?? {});
  problems.push(...diff('forwarder peer', sorted(new Set(live.filter((l) => l.publicIp !== h.underlayIp).map((l) => `${l.publicIp}:${UDP_PORT}`))), sorted(peers)));
  return problems;
}

/** The host's own lease agrees with its subnet.env (the subnet its containers use). */
export function checkOwnLease(h: LabHost, agent: LabAgent, live: readonly LiveLease[]): string[] {
  const mine = live.filter((l) => l.publicIp === h.underlayIp);
  if (mine.length !== 1) return [`${mine.length} live leases carry its PublicIP ${h.underlayIp}: ${mine.map((l) => l.key).join(', ') || 'none'}`];
  let env;
  try { env = readSubnetEnv(agent.subnetFile); } catch (e) { return [`cannot read ${agent.subnetFile}: ${(e as Error).message}`]; }
  return env.subnet === mine[0]!.subnet ? [] : [`subnet.env says ${env.subnet}, its lease ${mine[0]!.key}`];
}
