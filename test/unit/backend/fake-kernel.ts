// An in-memory kernel for the backends' unit tests: links, addresses,
// main-table routes (with their protocol), neighbours and FDB entries, a
// route lookup (`ip route get`) over a connected prefix, and a log of
// mutations in the order they happened.
import { NetlinkError, type Fdb, type Link, type Neigh, type Route } from '../../../netlink/index.js';
import { Prefix } from '../../../lib/ip.js';
import type { VxlanNetlink } from '../../../backend/vxlan/backend.js';
import type { Lease } from '../../../subnet-manager/lease.js';
import type { LeaseBatch } from '../../../subnet-manager/lease-table.js';
import { asyncCalls } from '../helpers/batching-fake.js';

export const UNDERLAY = { index: 2, name: 'eth0', v4: '192.0.2.11', mtu: 1500 };
export const UNDERLAY_DUAL = { ...UNDERLAY, v6: '2001:db8::11' };
export const MAC = '02:11:11:11:11:11';

/** Host n's vxlan lease: 10.244.<n>.0/24, PublicIP 192.0.2.<20+n> (on the fake's connected segment) unless given. */
export function lease(n: number, mac = `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`, publicIP = `192.0.2.${20 + n}`): Lease {
  return {
    subnet: Prefix.parse(`10.244.${n}.0/24`),
    attrs: { publicIP, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } },
    key: `/coreos.com/network/subnets/10.244.${n}.0-24`,
  };
}

/** Host n's host-gw lease, as flannel writes it (no BackendData). */
export function hostGwLease(n: number, publicIP = `192.0.2.${20 + n}`): Lease {
  return { subnet: Prefix.parse(`10.244.${n}.0/24`), attrs: { publicIP, publicIPv6: null, backendType: 'host-gw', backendData: null }, key: `/coreos.com/network/subnets/10.244.${n}.0-24` };
}

export const added = (...ls: Lease[]): LeaseBatch => ({ snapshot: false, events: ls.map((lease) => ({ type: 'added' as const, lease })) });
export const removed = (...ls: Lease[]): LeaseBatch => ({ snapshot: false, events: ls.map((lease) => ({ type: 'removed' as const, lease })) });
export const snapshot = (...ls: Lease[]): LeaseBatch => ({ snapshot: true, events: ls.map((lease) => ({ type: 'added' as const, lease })) });

const fam = (s: string): 4 | 6 => (s.includes(':') ? 6 : 4);

/** Host n's dual-stack vxlan lease: also fd00:0:0:<n>::/64 (hex n), PublicIPv6 2001:db8::<20+n>, BackendV6Data with its own MAC. */
export function dualLease(n: number, v6 = true): Lease {
  const l = lease(n);
  const hex = n.toString(16);
  if (!v6) return l;
  return {
    ...l,
    ipv6Subnet: Prefix.parse(`fd00:0:0:${hex}::/64`),
    attrs: { ...l.attrs, publicIPv6: `2001:db8::${(20 + n).toString(16)}`, backendV6Data: { VNI: 1, VtepMAC: `06:00:00:00:00:${n.toString(16).padStart(2, '0')}` } },
    key: `${l.key}&fd00:0:0:${hex}::-64`,
  };
}

/** A tiny kernel: links, addresses, main-table routes, neighbours and FDB entries, plus a log of mutations. */
export class FakeKernel implements VxlanNetlink {
  links = new Map<number, Link>([[2, { index: 2, name: 'eth0', mtu: 1500, flags: 1, up: true }]]);
  addrs: Array<{ index: number; address: string; prefixLen: number }> = [];
  routes: Route[] = [];
  neighs: Neigh[] = [];
  fdbs: Fdb[] = [];
  ops: string[] = [];
  failNext = new Map<string, number>();
  /** errno of the injected failures per op (default ENOBUFS). */
  failErrno = new Map<string, number>();
  private nextIndex = 10;
  // The asynchronous calls (batch, dumps) over the synchronous ones below.
  private readonly a = asyncCalls(this);
  batch: VxlanNetlink['batch'] = (reqs) => this.a.batch(reqs);
  routeDump: VxlanNetlink['routeDump'] = (f) => this.a.routeDump(f);
  neighDump: VxlanNetlink['neighDump'] = (f) => this.a.neighDump(f);
  fdbDump: VxlanNetlink['fdbDump'] = (f) => this.a.fdbDump(f);

  private maybeFail(op: string): void {
    const n = this.failNext.get(op) ?? 0;
    if (n > 0) {
      this.failNext.set(op, n - 1);
      throw new NetlinkError(op, this.failErrno.get(op) ?? 105, { detail: 'injected' }); // default ENOBUFS
    }
  }
  linkByName(name: string) { return [...this.links.values()].find((l) => l.name === name); }
  linkByIndex(i: number) { return this.links.get(i); }
  linkAdd(spec: Parameters<VxlanNetlink['linkAdd']>[0]): Link {
    this.ops.push(`link add ${spec.name}`);
    const s = spec as { kind: 'vxlan'; name: string; vni: number; port: number; local?: string; linkIndex?: number; learning?: boolean; mtu?: number; mac?: string };
    const l: Link = { index: this.nextIndex++, name: s.name, kind: s.kind, mtu: s.mtu ?? 1500, flags: 0, up: false, mac: s.mac, vxlan: { id: s.vni, port: s.port, local: s.local, linkIndex: s.linkIndex, learning: !!s.learning } };
    this.links.set(l.index, l);
    return l;
  }
  linkDel(x: string | number) {
    const l = typeof x === 'number' ? this.links.get(x) : this.linkByName(x);
    this.ops.push(`link del ${l?.name}`);
    if (!l) return;
    this.links.delete(l.index);
    this.routes = this.routes.filter((r) => r.index !== l.index);
    this.neighs = this.neighs.filter((n) => n.index !== l.index);
    this.fdbs = this.fdbs.filter((f) => f.index !== l.index);
  }
  linkSetUp(i: number) { this.links.get(i)!.up = true; }
  linkSetMtu(i: number, mtu: number) { this.links.get(i)!.mtu = mtu; }
  linkSetHwAddr(i: number, mac: string) { this.links.get(i)!.mac = mac; }
  addrList(f?: { index?: number; family?: 4 | 6 }) {
    return this.addrs.filter((a) => (f?.index === undefined || a.index === f.index) && (f?.family === undefined || fam(a.address) === f.family))
      .map((a) => ({ ...a, family: fam(a.address), scope: 0, flags: 0 }));
  }
  addrReplace(a: { index: number; address: string; prefixLen: number }) {
    this.addrs = this.addrs.filter((x) => !(x.index === a.index && x.address === a.address));
    this.addrs.push({ index: a.index, address: a.address, prefixLen: a.prefixLen });
  }
  addrDel(a: { index: number; address: string }) { this.addrs = this.addrs.filter((x) => !(x.index === a.index && x.address === a.address)); }
  routeList(f?: { index?: number; family?: 4 | 6 }) { return this.routes.filter((r) => (f?.index === undefined || r.index === f.index) && (f?.family === undefined || r.family === f.family)); }
  routeReplace(r: { dst: string; gateway?: string; index?: number; onlink?: boolean; protocol?: number }) {
    this.maybeFail('route replace');
    this.ops.push(`route replace ${r.dst}${r.gateway && !r.onlink ? ` via ${r.gateway}` : ''}`);
    this.routes = this.routes.filter((x) => x.dst !== r.dst);
    this.routes.push({ family: fam(r.dst), dst: r.dst, gateway: r.gateway, index: r.index, onlink: !!r.onlink, table: 254, protocol: r.protocol ?? 3, scope: 0, type: 1, flags: r.onlink ? 4 : 0 });
  }
  /** The underlay's connected prefix (on-link through eth0); everything else goes via 192.0.2.1. */
  connected = [Prefix.parse('192.0.2.0/24'), Prefix.parse('2001:db8::/64')];
  routeGet(ip: string): Route[] {
    const onLink = this.connected.some((p) => p.contains(ip));
    const f = fam(ip);
    return [{ family: f, dst: `${ip}/${f === 4 ? 32 : 128}`, index: 2, onlink: false, table: 254, protocol: 2, scope: 0, type: 1, flags: 0, ...(onLink ? {} : { gateway: f === 4 ? '192.0.2.1' : '2001:db8::1' }) }];
  }
  routeDel(r: { dst: string; protocol?: number }) {
    this.ops.push(`route del ${r.dst}`);
    // As the kernel: a protocol in the request must match.
    const hit = this.routes.find((x) => x.dst === r.dst && (!r.protocol || x.protocol === r.protocol));
    if (!hit) throw new NetlinkError('route del', 3); // ESRCH
    this.routes = this.routes.filter((x) => x !== hit);
  }
  neighList(f?: { index?: number; family?: 4 | 6 }) {
    this.maybeFail('neigh show');
    return this.neighs.filter((n) => (f?.index === undefined || n.index === f.index) && (f?.family === undefined || n.family === f.family));
  }
  neighReplace(n: { index: number; ip: string; mac: string }) {
    this.ops.push(`neigh replace ${n.ip}`);
    this.neighs = this.neighs.filter((x) => x.ip !== n.ip);
    this.neighs.push({ index: n.index, family: fam(n.ip), ip: n.ip, mac: n.mac, state: 0x80, flags: 0, type: 1 });
  }
  neighDel(n: { ip: string }) {
    this.ops.push(`neigh del ${n.ip}`);
    this.neighs = this.neighs.filter((x) => x.ip !== n.ip);
  }
  fdbList(f?: { index?: number }) { return this.fdbs.filter((x) => f?.index === undefined || x.index === f.index); }
  fdbReplace(e: { index: number; mac: string; dst?: string }) {
    this.ops.push(`fdb replace ${e.mac}`);
    this.fdbs = this.fdbs.filter((x) => x.mac !== e.mac);
    this.fdbs.push({ index: e.index, mac: e.mac, dst: e.dst, state: 0x80, flags: 2, self: true, master: false });
  }
  fdbDel(e: { mac: string }) {
    this.maybeFail('fdb del');
    this.ops.push(`fdb del ${e.mac}`);
    this.fdbs = this.fdbs.filter((x) => x.mac !== e.mac);
  }
}

