// VXLAN with DirectRouting against an in-memory kernel: a peer on this host's
// segment gets `<subnet> via <PublicIP> dev <underlay>` and no VXLAN entries,
// one behind a gateway the VXLAN entries; an underlay route change moves a
// peer between the two forms with the new one in place before the old goes;
// an older weft's proto boot routes are re-stamped with weft's protocol.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VxlanBackend } from '../../../../backend/vxlan/backend.js';
import { createLogger } from '../../../../daemon/logger.js';
import { Prefix } from '../../../../lib/ip.js';
import type { Notification, Route } from '../../../../netlink/index.js';
import { added, FakeKernel, lease, MAC, snapshot, UNDERLAY } from '../fake-kernel.js';

const NEAR = lease(5); // 192.0.2.25: on the connected segment
const FAR = lease(7, undefined, '198.51.100.27'); // behind the default gateway

function backend(k: FakeKernel, queued: Notification[] = []) {
  return new VxlanBackend({
    nl: k, monitor: { drain: async () => queued.splice(0) }, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'),
    vni: 1, port: 8472, device: 'weft.1', macFor: () => MAC, underlay: UNDERLAY, routeProtocol: 87, directRouting: true,
  });
}

const routes = (k: FakeKernel) => k.routes.map((r) => `${r.dst} via ${r.gateway} dev ${r.index}${r.onlink ? ' onlink' : ''} proto ${r.protocol}`).sort();
const underlayChange: Notification = { kind: 'route', action: 'new', route: { family: 4, dst: '198.51.100.0/24', gateway: '192.0.2.1', index: 2, onlink: false, table: 254, protocol: 3, scope: 0, type: 1, flags: 0 } };

test('same segment: a direct route and no VXLAN entries; behind a gateway: neighbour, FDB and onlink route', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  await b.apply(snapshot(NEAR, FAR));
  const dev = k.linkByName('weft.1')!.index;
  assert.equal(routes(k), [`10.244.5.0/24 via 192.0.2.25 dev 2 proto 87`, `10.244.7.0/24 via 10.244.7.0 dev ${dev} onlink proto 87`]);
  assert.equal(k.neighs.map((n) => n.ip), ['10.244.7.0']);
  assert.equal(k.fdbs.map((f) => f.dst), ['198.51.100.27']);
  const paths = b.stats().paths!.map((p) => `${p.subnet} ${p.path}${p.reason ? `: ${p.reason}` : ''}`).sort();
  assert.equal(paths, ['10.244.5.0/24 direct', '10.244.7.0/24 vxlan: 198.51.100.27 is reached via gateway 192.0.2.1: not on this host\'s L2 segment']);
});

test('an underlay route change moves a peer, new form first: to vxlan (entries, then the route), back to direct (the route, then the entries go)', async () => {
  const k = new FakeKernel();
  const queued: Notification[] = [];
  const b = backend(k, queued);
  await b.apply(snapshot(NEAR));
  k.ops = [];
  // The peer's address is now behind the router.
  k.connected = [Prefix.parse('192.0.2.0/28')];
  await b.resync(false);
  assert.equal(k.ops, [], 'no notification, no look: the cheap check does not route-get every peer');
  queued.push(underlayChange);
  await b.resync(false);
  assert.equal(k.ops, ['neigh replace 10.244.5.0', 'fdb replace 02:00:00:00:00:05', 'route replace 10.244.5.0/24']);
  assert.is(b.stats().paths![0]!.path, 'vxlan');
  k.ops = [];
  k.connected = [Prefix.parse('192.0.2.0/24')];
  queued.push(underlayChange);
  await b.resync(false);
  assert.equal(k.ops, ['route replace 10.244.5.0/24 via 192.0.2.25', 'fdb del 02:00:00:00:00:05', 'neigh del 10.244.5.0']);
  assert.equal([k.neighs.length, k.fdbs.length], [0, 0]);
  assert.equal(b.stats().pathChanges, 2);
});

test('our own route changes (weft\'s protocol) do not trigger a re-evaluation; a full resync always re-evaluates', async () => {
  const k = new FakeKernel();
  const queued: Notification[] = [];
  const b = backend(k, queued);
  await b.apply(snapshot(NEAR));
  k.connected = [];
  const ours: Route = { ...underlayChange.kind === 'route' ? underlayChange.route : ({} as Route), dst: '10.244.5.0/24', protocol: 87 };
  queued.push({ kind: 'route', action: 'new', route: ours });
  k.ops = [];
  await b.resync(false);
  assert.equal(k.ops, []);
  await b.resync(true);
  assert.equal(k.ops.slice(0, 3), ['neigh replace 10.244.5.0', 'fdb replace 02:00:00:00:00:05', 'route replace 10.244.5.0/24']);
});

test('a restart re-evaluates: stale VXLAN entries of a peer now direct go only after its direct route is in place', async () => {
  const k = new FakeKernel();
  k.connected = [];
  await backend(k).apply(snapshot(NEAR)); // was behind a gateway: vxlan entries
  k.connected = [Prefix.parse('192.0.2.0/24')];
  k.ops = [];
  await backend(k).apply(snapshot(NEAR));
  assert.equal(k.ops, ['route replace 10.244.5.0/24 via 192.0.2.25', 'fdb del 02:00:00:00:00:05', 'neigh del 10.244.5.0']);
});

test('upgrade: an older weft\'s proto boot onlink routes are re-stamped in place, a stale one deleted; neighbour and FDB entries are kept', async () => {
  const k = new FakeKernel();
  const other = lease(9, undefined, '198.51.100.29');
  const plain = new VxlanBackend({ nl: k, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'), vni: 1, port: 8472, device: 'weft.1', macFor: () => MAC, underlay: UNDERLAY, routeProtocol: 87 });
  await plain.apply(snapshot(FAR, other));
  for (const r of k.routes) r.protocol = 3; // as the weft before route protocols left them
  k.routes.push({ ...k.routes[0]!, dst: '10.244.8.0/24', gateway: '10.244.8.0' }); // a host that left meanwhile
  k.ops = [];
  await backend(k).apply(snapshot(FAR, other));
  assert.equal(k.ops, ['route del 10.244.8.0/24', 'route replace 10.244.7.0/24', 'route replace 10.244.9.0/24']);
  assert.ok(k.routes.every((r) => r.protocol === 87), routes(k).join('\n'));
});

test.run();
