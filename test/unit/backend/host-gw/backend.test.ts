// The host-gw backend against an in-memory kernel: one route per peer via its
// PublicIP with weft's protocol, the underlay's MTU, no BackendData; a peer
// behind a gateway skipped (named, counted) while the others are served, and
// served once the underlay changes; stale routes of ours removed on start,
// anyone else's left alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostGwBackend } from '../../../../backend/host-gw/backend.js';
import { parseHostGwPeer } from '../../../../backend/host-gw/peer.js';
import { createLogger } from '../../../../daemon/logger.js';
import { Prefix } from '../../../../lib/ip.js';
import type { Notification } from '../../../../netlink/index.js';
import { added, FakeKernel, hostGwLease, lease, removed, snapshot, UNDERLAY } from '../fake-kernel.js';

function backend(k: FakeKernel, queued: Notification[] = [], lines: string[] = []) {
  return new HostGwBackend({ nl: k, monitor: { poll: () => queued.splice(0) }, log: createLogger('info', {}, (l) => lines.push(l)), network: Prefix.parse('10.244.0.0/16'), underlay: UNDERLAY, routeProtocol: 87 });
}
const routes = (k: FakeKernel) => k.routes.map((r) => `${r.dst} via ${r.gateway} dev ${r.index} proto ${r.protocol}`).sort();
const FAR = hostGwLease(7, '198.51.100.27');
const underlayChange: Notification = { kind: 'route', action: 'new', route: { family: 4, dst: '198.51.100.27/32', index: 2, onlink: false, table: 254, protocol: 4, scope: 253, type: 1, flags: 0 } };

test('a route per peer via its PublicIP on the underlay, weft\'s protocol; MTU = underlay; no BackendData', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  assert.is(b.mtu, 1500);
  assert.is(b.leaseData, undefined);
  await b.apply(snapshot(hostGwLease(5), hostGwLease(6)));
  assert.equal(routes(k), ['10.244.5.0/24 via 192.0.2.25 dev 2 proto 87', '10.244.6.0/24 via 192.0.2.26 dev 2 proto 87']);
  assert.equal(b.stats(), { peersKnown: 2, peersProgrammed: 2, peersSkipped: 0, kernelErrors: 0, invalidPeers: 0, deviceRecreated: 0, paths: b.stats().paths, pathChanges: 0 });
  await b.apply(removed(hostGwLease(5)));
  assert.equal(routes(k), ['10.244.6.0/24 via 192.0.2.26 dev 2 proto 87']);
});

test('a peer behind a gateway is skipped with a warning naming it, counted, and the others are served', async () => {
  const k = new FakeKernel();
  const lines: string[] = [];
  const b = backend(k, [], lines);
  await b.apply(snapshot(hostGwLease(5), FAR));
  assert.equal(routes(k), ['10.244.5.0/24 via 192.0.2.25 dev 2 proto 87']);
  const s = b.stats();
  assert.equal([s.peersKnown, s.peersProgrammed, s.peersSkipped], [2, 1, 1]);
  const skip = s.paths!.find((p) => p.path === 'skipped')!;
  assert.equal([skip.subnet, skip.publicIp, skip.reason], ['10.244.7.0/24', '198.51.100.27', '198.51.100.27 is reached via gateway 192.0.2.1: not on this host\'s L2 segment']);
  const warn = lines.map((l) => JSON.parse(l)).find((r) => r.msg === 'peer skipped: this backend cannot reach it');
  assert.ok(warn, lines.join('\n'));
  assert.equal([warn.subnet, warn.publicIp], ['10.244.7.0/24', '198.51.100.27']);
  await b.resync(false);
  await b.resync(true);
  assert.is(lines.filter((l) => l.includes('peer skipped')).length, 1, 'warned once, not every resync');
});

test('the underlay changes: a skipped peer is served (and skipped again, its route removed)', async () => {
  const k = new FakeKernel();
  const queued: Notification[] = [];
  const b = backend(k, queued);
  await b.apply(snapshot(FAR));
  assert.equal(routes(k), []);
  k.connected.push(Prefix.parse('198.51.100.27/32'));
  queued.push(underlayChange);
  await b.resync(false);
  assert.equal(routes(k), ['10.244.7.0/24 via 198.51.100.27 dev 2 proto 87']);
  assert.equal([b.stats().peersSkipped, b.stats().peersProgrammed], [0, 1]);
  k.connected.pop();
  queued.push({ ...underlayChange, action: 'del' });
  await b.resync(false);
  assert.equal(routes(k), []);
  assert.equal(b.stats().pathChanges, 2);
});

test('start: stale routes of ours go, another protocol\'s route and another Network\'s stay; a deleted route of ours is back at the next check', async () => {
  const k = new FakeKernel();
  const mk = (dst: string, gateway: string, protocol: number) => ({ family: 4 as const, dst, gateway, index: 2, onlink: false, table: 254, protocol, scope: 0, type: 1, flags: 0 });
  k.routes = [mk('10.244.9.0/24', '192.0.2.29', 87), mk('10.244.10.0/24', '192.0.2.30', 4), mk('10.99.0.0/16', '192.0.2.31', 87)];
  const queued: Notification[] = [];
  const b = backend(k, queued);
  await b.apply(snapshot(hostGwLease(5)));
  assert.equal(routes(k), ['10.244.10.0/24 via 192.0.2.30 dev 2 proto 4', '10.244.5.0/24 via 192.0.2.25 dev 2 proto 87', '10.99.0.0/16 via 192.0.2.31 dev 2 proto 87']);
  const mine = k.routes.find((r) => r.dst === '10.244.5.0/24')!;
  k.routeDel({ dst: mine.dst, protocol: 87 });
  queued.push({ kind: 'route', action: 'del', route: mine });
  await b.resync(false);
  assert.ok(routes(k).includes('10.244.5.0/24 via 192.0.2.25 dev 2 proto 87'));
});

test('a failed route lookup is counted and retried; the peer is not called skipped', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  const get = k.routeGet.bind(k);
  let fail = 1;
  k.routeGet = (ip: string) => {
    if (fail-- > 0) throw Object.assign(new (class extends Error {})('route get: No buffer space available (ENOBUFS)'), { code: 'ENOBUFS' });
    return get(ip);
  };
  await b.apply(added(hostGwLease(5)));
  assert.equal([b.stats().peersProgrammed, b.stats().peersSkipped, b.stats().kernelErrors], [0, 0, 1]);
  await b.resync(false);
  assert.equal([b.stats().peersProgrammed, b.stats().kernelErrors], [1, 1]);
});

test('leases: BackendType must be host-gw (a vxlan lease is not a host-gw peer); PublicIP must be usable', () => {
  assert.ok('peer' in parseHostGwPeer(hostGwLease(5), UNDERLAY));
  assert.match((parseHostGwPeer(lease(5), UNDERLAY) as { error: string }).error, /BackendType "vxlan" is not "host-gw"/);
  assert.match((parseHostGwPeer(hostGwLease(5, '0.0.0.0'), UNDERLAY) as { error: string }).error, /PublicIP "0\.0\.0\.0" is not a usable/);
  assert.match((parseHostGwPeer(hostGwLease(5, UNDERLAY.v4), UNDERLAY) as { error: string }).error, /this host's own address/);
});

test.run();
