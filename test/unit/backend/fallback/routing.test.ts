// The VXLAN backend under a fallback (FallbackRouting), on the in-memory
// kernel: a peer sent to udp gets its route into the TUN and keeps its
// neighbour and FDB entries; a full reconcile keeps it there; back to vxlan
// the route is replaced in place; each move is one warning; a lease's
// Fallback is read as this host can use it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { leaseFallback } from '../../../../backend/fallback/backend.js';
import { VxlanBackend, type FallbackRouting, type PathChoice } from '../../../../backend/vxlan/backend.js';
import { createLogger } from '../../../../daemon/logger.js';
import { Prefix } from '../../../../lib/ip.js';
import { FakeKernel, lease, MAC, snapshot, UNDERLAY } from '../fake-kernel.js';

const TUN_INDEX = 99;

function setup() {
  const k = new FakeKernel();
  k.links.set(TUN_INDEX, { index: TUN_INDEX, name: 'weft-tun', kind: 'tun', mtu: 1450, flags: 1, up: true });
  const onUdp = new Map<string, string>();
  const fallback: FallbackRouting = {
    choose: (key): PathChoice & { path: 'vxlan' | 'udp' } => (onUdp.has(key) ? { path: 'udp', index: TUN_INDEX, reason: onUdp.get(key)! } : { path: 'vxlan' }),
  };
  const lines: string[] = [];
  const b = new VxlanBackend({ nl: k, log: createLogger('info', {}, (l) => lines.push(l)), network: Prefix.parse('10.244.0.0/16'), vni: 1, port: 8472, device: 'weft.1', macFor: () => MAC, underlay: UNDERLAY, routeProtocol: 87, mtu: 1450, fallback });
  const routes = () => k.routes.map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.index}${r.onlink ? ' onlink' : ''}`).sort();
  const moves = () => lines.map((l) => JSON.parse(l)).filter((r) => r.msg === 'peer path changed');
  return { k, b, onUdp, routes, moves };
}

test('to udp: the route goes into the TUN, the VXLAN entries stay; a full reconcile keeps it; back to vxlan in place', async () => {
  const { k, b, onUdp, routes, moves } = setup();
  await b.configure(lease(3));
  await b.apply(snapshot(lease(5), lease(7)));
  const vx = k.linkByName('weft.1')!.index;
  assert.equal(routes(), [`10.244.5.0/24 via 10.244.5.0 dev ${vx} onlink`, `10.244.7.0/24 via 10.244.7.0 dev ${vx} onlink`]);

  onUdp.set('10.244.5.0/24', 'vxlan probes failing since 12:03:04');
  k.ops = [];
  await b.refreshPaths();
  assert.equal(routes(), [`10.244.5.0/24 dev ${TUN_INDEX}`, `10.244.7.0/24 via 10.244.7.0 dev ${vx} onlink`]);
  assert.ok(k.ops.includes('route replace 10.244.5.0/24') && !k.ops.some((o) => o.startsWith('route del') || o.includes(' del ')), `replaced in place, nothing deleted: ${k.ops}`);
  assert.equal(k.neighs.map((n) => n.ip).sort(), ['10.244.5.0', '10.244.7.0'], 'neighbours stay (the way back is one route replace)');
  assert.equal(k.fdbs.map((f) => f.dst).sort(), ['192.0.2.25', '192.0.2.27']);
  assert.equal(k.routes.map((r) => r.protocol), [87, 87]);
  const s = b.stats();
  assert.equal(s.paths!.map((p) => `${p.subnet} ${p.path} ${p.reason ?? ''}`).sort(), ['10.244.5.0/24 udp vxlan probes failing since 12:03:04', '10.244.7.0/24 vxlan ']);
  assert.is(s.pathChanges, 1);
  assert.equal(moves().map((m) => [m.level, m.subnet, m.from, m.path]), [['warn', '10.244.5.0/24', 'vxlan', 'udp']]);

  k.ops = [];
  await b.resync(true);
  assert.equal(k.ops, [], 'a full reconcile leaves the route in the TUN and the entries alone');
  await b.apply(snapshot(lease(5), lease(7)));
  assert.equal(k.ops, []);

  onUdp.delete('10.244.5.0/24');
  await b.refreshPaths();
  assert.equal(routes(), [`10.244.5.0/24 via 10.244.5.0 dev ${vx} onlink`, `10.244.7.0/24 via 10.244.7.0 dev ${vx} onlink`]);
  assert.equal(moves().map((m) => [m.level, m.from, m.path]), [['warn', 'vxlan', 'udp'], ['warn', 'udp', 'vxlan']]);
  assert.is(b.stats().pathChanges, 2);
});

test('a lease\'s Fallback: usable with this host\'s port; otherwise always vxlan, with why', () => {
  const withData = (d: unknown) => ({ ...lease(5), attrs: { ...lease(5).attrs, backendData: d } });
  assert.equal(leaseFallback(withData({ VNI: 1, VtepMAC: '02:00:00:00:00:05', Fallback: { Type: 'udp', Port: 8285 } }), 8285), { port: 8285 });
  assert.match((leaseFallback(lease(5), 8285) as { none: string }).none, /^no fallback in its lease \(flannel, or a weft without Backend\.Fallback\)/);
  assert.match((leaseFallback(withData({ VtepMAC: '02:00:00:00:00:05', Fallback: { Type: 'udp', Port: 9000 } }), 8285) as { none: string }).none, /Fallback\.Port 9000 differs from this host's 8285/);
  assert.match((leaseFallback(withData({ VtepMAC: '02:00:00:00:00:05', Fallback: 'udp' }), 8285) as { none: string }).none, /unusable Fallback "udp"/);
  assert.match((leaseFallback(withData({ VtepMAC: '02:00:00:00:00:05', Fallback: { Type: 'ipip', Port: 1 } }), 8285) as { none: string }).none, /unusable Fallback/);
});

test.run();
