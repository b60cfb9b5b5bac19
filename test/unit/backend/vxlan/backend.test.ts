// The VXLAN backend's control logic against an in-memory kernel: what it
// creates, what it leaves alone (never flush), what it removes, and how a
// failed kernel operation is counted and retried.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VxlanBackend } from '../../../../backend/vxlan/backend.js';
import { createLogger } from '../../../../daemon/logger.js';
import type { Notification } from '../../../../netlink/index.js';
import { Prefix } from '../../../../lib/ip.js';
import { FakeKernel, lease, MAC, snapshot, UNDERLAY } from '../fake-kernel.js';

function backend(k: FakeKernel, monitor?: { drain(): Promise<Notification[]> }, macFor: (ip: string) => string = () => MAC, directRouting = false) {
  return new VxlanBackend({ nl: k, monitor, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'), vni: 1, port: 8472, device: 'weft.1', macFor, underlay: UNDERLAY, routeProtocol: 87, directRouting });
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
  assert.equal(k.routes.map((r) => r.protocol), [87, 87], 'weft\'s route protocol on every route');
  const { paths, ...rest } = b.stats();
  assert.equal(rest, { peersKnown: 2, peersProgrammed: 2, kernelErrors: 0, invalidPeers: 0, deviceRecreated: 0, pathChanges: 0 });
  assert.equal(paths!.map((p) => `${p.subnet} ${p.path}`).sort(), ['10.244.5.0/24 vxlan', '10.244.7.0/24 vxlan']);
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

test('a burst of 1500 new peers goes in batches of at most 1000 peers, after every removal of the burst; a failed removal leaves its peer dirty', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  // /28 subnets: 1500 peers inside 10.244.0.0/16, keyed and addressed like leases.
  const small = (i: number, mac = `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`) => {
    const subnet = Prefix.parse(`10.244.${100 + (i >> 4)}.${(i & 15) * 16}/28`);
    return { subnet, key: `/coreos.com/network/subnets/${subnet.networkAddress}-28`, attrs: { publicIP: `198.51.100.${1 + (i % 200)}`, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } } };
  };
  await b.apply(snapshot(lease(5, '02:00:00:00:55:55'), lease(6)));
  const batches: number[] = [];
  const send = k.batch;
  k.batch = (reqs) => { batches.push(reqs.length); return send(reqs); };
  k.ops = [];
  // Both FDB removals fail (EBUSY: not "already gone"); the peer table orders host 5's first.
  k.failNext.set('fdb del', 2);
  k.failErrno.set('fdb del', 16);
  // Host 5 leaves and its MAC comes back with the last new peer; host 6 changes its MAC (its old FDB entry cannot be removed).
  const fresh = Array.from({ length: 1500 }, (_, i) => small(i, i === 1499 ? '02:00:00:00:55:55' : undefined));
  await b.apply({ snapshot: false, events: [{ type: 'removed', lease: lease(5, '02:00:00:00:55:55') }, { type: 'added', lease: lease(6, '02:00:00:00:66:66') }, ...fresh.map((l) => ({ type: 'added' as const, lease: l }))] });
  // (The fake kernel has no nexthop objects: three requests per peer.)
  assert.equal(batches, [4, 3 * 1000, 3 * 501], 'the removals (route, FDB, neighbour of host 5; host 6\'s old FDB entry), then 1000 peers (host 6 among them), then 501');
  const firstAdd = k.ops.findIndex((o) => o.startsWith('neigh replace'));
  assert.ok(k.ops.slice(0, firstAdd).every((o) => o.includes(' del ')), k.ops.slice(0, 6).join(', '));
  assert.equal(k.fdbs.filter((f) => f.mac === '02:00:00:00:55:55').map((f) => f.dst), ['198.51.100.100'], 'the moved MAC points at its new peer');
  const s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.kernelErrors], [1501, 1500, 2], 'host 6 is dirty: its old FDB entry is still there');
  await b.resync(false);
  assert.is(b.stats().peersProgrammed, 1501);
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
