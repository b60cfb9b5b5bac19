// The VXLAN backend's control logic against an in-memory kernel: what it
// creates, what it leaves alone (never flush), what it removes, and how a
// failed kernel operation is counted and retried.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VxlanBackend, type VxlanNetlink } from '../../../../backend/vxlan/backend.js';
import { createLogger } from '../../../../daemon/logger.js';
import { NetlinkError, type Fdb, type Link, type Neigh, type Notification, type Route } from '../../../../netlink/index.js';
import { Prefix } from '../../../../lib/ip.js';
import type { Lease } from '../../../../subnet-manager/lease.js';
import type { LeaseBatch } from '../../../../subnet-manager/lease-table.js';
import { asyncCalls } from '../../helpers/batching-fake.js';

const UNDERLAY = { index: 2, name: 'eth0', v4: '192.0.2.11', mtu: 1500 };
const MAC = '02:11:11:11:11:11';

/** A tiny kernel: links, addresses, main-table routes, neighbours and FDB entries, plus a log of mutations. */
class FakeKernel implements VxlanNetlink {
  links = new Map<number, Link>([[2, { index: 2, name: 'eth0', mtu: 1500, flags: 1, up: true }]]);
  addrs: Array<{ index: number; address: string; prefixLen: number }> = [];
  routes: Route[] = [];
  neighs: Neigh[] = [];
  fdbs: Fdb[] = [];
  ops: string[] = [];
  failNext = new Map<string, number>();
  private nextIndex = 10;
  private readonly a = asyncCalls(this);
  batch: VxlanNetlink['batch'] = (reqs) => this.a.batch(reqs);
  routeDump: VxlanNetlink['routeDump'] = (f) => this.a.routeDump(f);
  neighDump: VxlanNetlink['neighDump'] = (f) => this.a.neighDump(f);
  fdbDump: VxlanNetlink['fdbDump'] = (f) => this.a.fdbDump(f);

  /** errno of the injected failures per op (default ENOBUFS). */
  failErrno = new Map<string, number>();

  private maybeFail(op: string): void {
    const n = this.failNext.get(op) ?? 0;
    if (n > 0) {
      this.failNext.set(op, n - 1);
      throw new NetlinkError(op, this.failErrno.get(op) ?? 105, { detail: 'injected' });
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
  addrList(f?: { index?: number }) {
    return this.addrs.filter((a) => f?.index === undefined || a.index === f.index).map((a) => ({ ...a, family: 4 as const, scope: 0, flags: 0 }));
  }
  addrReplace(a: { index: number; address: string; prefixLen: number }) {
    this.addrs = this.addrs.filter((x) => !(x.index === a.index && x.address === a.address));
    this.addrs.push({ index: a.index, address: a.address, prefixLen: a.prefixLen });
  }
  addrDel(a: { index: number; address: string }) { this.addrs = this.addrs.filter((x) => !(x.index === a.index && x.address === a.address)); }
  routeList(f?: { index?: number }) { return this.routes.filter((r) => f?.index === undefined || r.index === f.index); }
  routeReplace(r: { dst: string; gateway?: string; index?: number; onlink?: boolean }) {
    this.maybeFail('route replace');
    this.ops.push(`route replace ${r.dst}`);
    this.routes = this.routes.filter((x) => x.dst !== r.dst);
    this.routes.push({ family: 4, dst: r.dst, gateway: r.gateway, index: r.index, onlink: !!r.onlink, table: 254, protocol: 3, scope: 0, type: 1, flags: r.onlink ? 4 : 0 });
  }
  routeDel(r: { dst: string }) {
    this.ops.push(`route del ${r.dst}`);
    if (!this.routes.some((x) => x.dst === r.dst)) throw new NetlinkError('route del', 3); // ESRCH
    this.routes = this.routes.filter((x) => x.dst !== r.dst);
  }
  neighList(f?: { index?: number }) {
    this.maybeFail('neigh show');
    return this.neighs.filter((n) => f?.index === undefined || n.index === f.index);
  }
  neighReplace(n: { index: number; ip: string; mac: string }) {
    this.ops.push(`neigh replace ${n.ip}`);
    this.neighs = this.neighs.filter((x) => x.ip !== n.ip);
    this.neighs.push({ index: n.index, family: 4, ip: n.ip, mac: n.mac, state: 0x80, flags: 0, type: 1 });
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
    this.ops.push(`fdb del ${e.mac}`);
    this.fdbs = this.fdbs.filter((x) => x.mac !== e.mac);
  }
}

function lease(n: number, mac = `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`): Lease {
  return {
    subnet: Prefix.parse(`10.244.${n}.0/24`),
    attrs: { publicIP: `192.0.2.${20 + n}`, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } },
    key: `/coreos.com/network/subnets/10.244.${n}.0-24`,
  };
}
const snapshot = (...ls: Lease[]): LeaseBatch => ({ snapshot: true, events: ls.map((lease) => ({ type: 'added' as const, lease })) });

function backend(k: FakeKernel, monitor?: { drain(): Promise<Notification[]> }, macFor: (ip: string) => string = () => MAC) {
  return new VxlanBackend({ nl: k, monitor, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'), vni: 1, port: 8472, device: 'weft.1', macFor, underlay: UNDERLAY });
}

test('creates the VTEP as DESIGN.md says and programs one neighbour, FDB and route entry per peer', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5), lease(7)));
  const dev = k.linkByName('weft.1')!;
  assert.equal([dev.kind, dev.vxlan, dev.mtu, dev.up, dev.mac], ['vxlan', { id: 1, port: 8472, local: '192.0.2.11', linkIndex: 2, learning: false }, 1450, true, MAC]);
  assert.equal(k.addrList({ index: dev.index }).map((a) => `${a.address}/${a.prefixLen}`), ['10.244.3.0/32']);
  assert.equal(k.neighs.map((n) => `${n.ip} ${n.mac}`).sort(), ['10.244.5.0 02:00:00:00:00:05', '10.244.7.0 02:00:00:00:00:07']);
  assert.equal(k.fdbs.map((f) => `${f.mac} ${f.dst}`).sort(), ['02:00:00:00:00:05 192.0.2.25', '02:00:00:00:00:07 192.0.2.27']);
  assert.equal(k.routes.map((r) => `${r.dst} via ${r.gateway} onlink=${r.onlink}`).sort(), ['10.244.5.0/24 via 10.244.5.0 onlink=true', '10.244.7.0/24 via 10.244.7.0 onlink=true']);
  // neighbour, then FDB, then route, per peer
  assert.equal(k.ops.filter((o) => o.includes('10.244.5.0') || o.includes(':05')), ['neigh replace 10.244.5.0', 'fdb replace 02:00:00:00:00:05', 'route replace 10.244.5.0/24']);
  assert.equal(b.stats(), { peersKnown: 2, peersProgrammed: 2, kernelErrors: 0, invalidPeers: 0, deviceRecreated: 0 });
});

test('a restart adopts what the kernel holds: correct entries are not touched, stale ones are removed', async () => {
  const k = new FakeKernel();
  await backend(k).apply(snapshot(lease(5), lease(6), lease(7)));
  k.ops = [];
  // The agent restarts; meanwhile host 6 left for good.
  const b = backend(k);
  await b.apply(snapshot(lease(5), lease(7)));
  assert.equal(k.ops, ['route del 10.244.6.0/24', 'fdb del 02:00:00:00:00:06', 'neigh del 10.244.6.0'], 'no flush, no rewrite: only the stale peer goes');
  assert.is(k.routes.length, 2);
});

test('a peer whose MAC changed gets its old FDB entry removed', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  await b.apply(snapshot(lease(5)));
  await b.apply({ snapshot: false, events: [{ type: 'added', lease: lease(5, '02:00:00:00:aa:05') }] });
  assert.equal(k.fdbs.map((f) => f.mac), ['02:00:00:00:aa:05']);
  assert.equal(k.neighs.map((n) => n.mac), ['02:00:00:00:aa:05']);
});

test('removal goes route, FDB, neighbour', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  await b.apply(snapshot(lease(5)));
  k.ops = [];
  await b.apply({ snapshot: false, events: [{ type: 'removed', lease: lease(5) }] });
  assert.equal(k.ops, ['route del 10.244.5.0/24', 'fdb del 02:00:00:00:00:05', 'neigh del 10.244.5.0']);
  assert.is(b.stats().peersKnown, 0);
});

test('a failed kernel operation is counted, the peer is not programmed, and the next resync retries it', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  k.failNext.set('route replace', 1);
  await b.apply(snapshot(lease(5), lease(7)));
  let s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.kernelErrors], [2, 1, 1]);
  await b.resync(false);
  s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.kernelErrors], [2, 2, 1]);
  assert.is(k.routes.length, 2);
});

test('a device with other parameters is replaced; a deleted device comes back with every peer', async () => {
  const k = new FakeKernel();
  k.linkAdd({ kind: 'vxlan', name: 'weft.1', vni: 9, port: 4789, local: '192.0.2.11', linkIndex: 2, mtu: 1450, mac: MAC });
  k.ops = [];
  const b = backend(k);
  assert.equal(k.ops, ['link del weft.1', 'link add weft.1']);
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5)));
  k.linkDel('weft.1');
  await b.resync(false);
  const dev = k.linkByName('weft.1')!;
  assert.ok(dev.up);
  assert.is(k.routes.filter((r) => r.index === dev.index).length, 1);
  assert.equal(k.addrList({ index: dev.index }).map((a) => a.address), ['10.244.3.0']);
  assert.is(b.stats().deviceRecreated, 1);
});

test('a deleted entry seen by the monitor is restored at the next 1 s check, not the 10 s full resync', async () => {
  const k = new FakeKernel();
  let queued: Notification[] = [];
  const b = backend(k, { drain: async () => queued.splice(0) });
  await b.apply(snapshot(lease(5)));
  const gone = k.neighs[0]!;
  k.neighDel({ ip: gone.ip });
  await b.resync(false);
  assert.is(k.neighs.length, 0, 'without a notification the cheap check does not list');
  queued = [{ kind: 'neigh', action: 'del', neigh: gone }];
  await b.resync(false);
  assert.equal(k.neighs.map((n) => n.ip), ['10.244.5.0']);
});

test('a dump that fails for a transient reason (interrupted three times): the peers are known, the next resync reconciles everything', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  k.failNext.set('neigh show', 1);
  k.failErrno.set('neigh show', 4); // EINTR: what the handle throws after three interrupted attempts
  await b.apply(snapshot(lease(5), lease(7))).then(() => assert.unreachable('apply rethrows for the daemon to log'), (e) => assert.is(e.code, 'EINTR'));
  assert.is(b.stats().peersKnown, 2, 'the peer set is updated before the kernel work');
  await b.resync(false);
  assert.is(k.routes.length, 2);
  assert.is(k.neighs.length, 2);
  assert.is(b.stats().peersProgrammed, 2);
});

test('a lease carrying this host\'s own VTEP MAC or public IP is never programmed', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  const ownMac = { ...lease(5, MAC) };
  const ownIp = { ...lease(6), attrs: { ...lease(6).attrs, publicIP: UNDERLAY.v4 } };
  await b.apply(snapshot(ownMac, ownIp, lease(7)));
  assert.equal(k.routes.map((r) => r.dst), ['10.244.7.0/24']);
  assert.is(b.stats().invalidPeers, 2);
});

test('a MAC that moves from a leaving peer to a new one in the same batch stays in the FDB', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  await b.apply(snapshot(lease(5, '02:00:00:00:55:55')));
  await b.apply({ snapshot: false, events: [{ type: 'added', lease: lease(8, '02:00:00:00:55:55') }, { type: 'removed', lease: lease(5, '02:00:00:00:55:55') }] });
  assert.equal(k.fdbs.map((f) => `${f.mac} ${f.dst}`), ['02:00:00:00:55:55 192.0.2.28']);
  assert.equal(k.routes.map((r) => r.dst), ['10.244.8.0/24']);
});

test('holds(): the peers it programs, and before its first sync the FDB entries the device carried at start', async () => {
  const k = new FakeKernel();
  await backend(k).apply(snapshot(lease(5)));
  const b = backend(k);
  await b.configure(lease(3));
  assert.ok(b.holds(lease(5)), 'from the FDB found at start');
  assert.not.ok(b.holds(lease(5, '02:00:00:00:99:99')), 'another MAC');
  assert.not.ok(b.holds({ ...lease(5), attrs: { ...lease(5).attrs, publicIP: '192.0.2.99' } }), 'another address');
  await b.apply(snapshot(lease(6)));
  assert.ok(b.holds(lease(6)));
});

test('setUnderlay: the device is remade with the new local address and MAC, every peer programmed again', async () => {
  const k = new FakeKernel();
  const b = backend(k, undefined, (ip) => (ip === '192.0.2.11' ? MAC : '02:33:33:33:33:33'));
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5), lease(7)));
  await b.setUnderlay({ ...UNDERLAY, v4: '192.0.2.31' });
  const dev = k.linkByName('weft.1')!;
  assert.equal([dev.vxlan!.local, dev.mac], ['192.0.2.31', '02:33:33:33:33:33']);
  assert.equal(b.leaseData, { VNI: 1, VtepMAC: '02:33:33:33:33:33' });
  assert.is(k.routes.filter((r) => r.index === dev.index).length, 2);
  assert.equal(k.addrList({ index: dev.index }).map((a) => a.address), ['10.244.3.0']);
});

test.run();
