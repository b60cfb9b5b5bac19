// Two L2 segments joined by a router (Lab topology 'two-segments'): what
// host-gw cannot cross and what VXLAN DirectRouting must tell apart.
//   segment a: bridge ul0, 192.0.2.0/24     router 192.0.2.1
//   segment b: bridge ul1, 198.51.100.0/24  router 198.51.100.1
// moveHost() moves a host to the other segment the way a routed fabric moves
// a machine that keeps its address (see there).
import { execIn, ip } from './netns.js';
import type { Lab, LabHost } from './lab.js';

export type Segment = 'a' | 'b';
export const SEGMENTS: readonly Segment[] = ['a', 'b'];
const PREFIX: Record<Segment, string> = { a: '192.0.2', b: '198.51.100' };

/** Address n of a segment: segmentIp('b', 12) is 198.51.100.12. */
export const segmentIp = (s: Segment, n: number): string => `${PREFIX[s]}.${n}`;

/** A namespace's port on a segment: its veth `dev` inside ns, `port` on the segment's bridge. */
export interface UnderlayMember {
  readonly ns: string;
  readonly role: string;
  segment: Segment;
  readonly ip: string;
  readonly port: string;
  readonly dev: string;
}

/** The router: eth0 on segment a, eth1 on segment b, forwarding between them. */
export async function addRouter(lab: Lab, ns: string): Promise<{ ns: string; ips: Record<Segment, string> }> {
  const ips = { a: segmentIp('a', 1), b: segmentIp('b', 1) };
  await lab.plugIntoUnderlay(ns, 'rt-a', ips.a, false, 'a', 'eth0');
  await lab.plugIntoUnderlay(ns, 'rt-b', ips.b, false, 'b', 'eth1');
  const r = await execIn(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  if (r.code !== 0) throw new Error(`router ${ns}: sysctl net.ipv4.ip_forward=1: ${r.stderr.trim()}`);
  return { ns, ips };
}

/**
 * Moves a host from its home segment to the other one, keeping its PublicIP:
 * its port moves to the other bridge, it gets that segment's address
 * (<prefix>.<10+i>/24) and its default route through the router there, its
 * PublicIP stays as a /32 (what its peers know it by), and /32 host routes
 * tell everyone else where it is now: on-link from its new segment, via the
 * router from its old one (as a routed fabric announces a moved machine). On
 * the agents' side these are underlay route changes, nothing else.
 */
export async function moveHost(lab: Lab, h: LabHost, to: Segment): Promise<void> {
  const me = lab.underlayMembers.find((m) => m.ns === h.ns);
  if (!me) throw new Error(`${h.name} is not on a segment`);
  if (me.segment === to) throw new Error(`${h.name} is already on segment ${to}`);
  if (!lab.router) throw new Error(`lab ${lab.id} has one segment; moveHost needs topology 'two-segments'`);
  const router = lab.underlayMembers.filter((m) => m.ns === lab.router!.ns);
  const routerDev = (s: Segment) => router.find((m) => m.segment === s)!.dev;
  await ip(lab.ulNs, ['link', 'set', me.port, 'master', to === 'a' ? 'ul0' : 'ul1']);
  await ip(h.ns, ['addr', 'add', `${segmentIp(to, 10 + h.index)}/24`, 'dev', me.dev]);
  await ip(h.ns, ['addr', 'add', `${h.underlayIp}/32`, 'dev', me.dev]);
  await ip(h.ns, ['addr', 'del', `${h.underlayIp}/24`, 'dev', me.dev]);
  await ip(h.ns, ['route', 'replace', 'default', 'via', lab.router.ips[to], 'dev', me.dev]);
  await ip(lab.router.ns, ['route', 'replace', `${h.underlayIp}/32`, 'dev', routerDev(to)]);
  for (const m of lab.underlayMembers) {
    if (m.ns === h.ns || m.ns === lab.router.ns) continue;
    const via = m.segment === to ? [] : ['via', lab.router.ips[m.segment]];
    await ip(m.ns, ['route', 'replace', `${h.underlayIp}/32`, ...via, 'dev', m.dev]);
  }
  me.segment = to;
  h.segment = to;
}
