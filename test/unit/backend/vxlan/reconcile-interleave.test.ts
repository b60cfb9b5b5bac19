// A full reconcile of the VXLAN backend lets a lease apply go first at its pauses
// (backend/reconcile-run.ts) and never undoes it: the peers, MACs and addresses
// the apply changed are left out of the reconcile's plan, computed before it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VxlanBackend } from '../../../../backend/vxlan/backend.js';
import { createLogger } from '../../../../daemon/logger.js';
import { Prefix } from '../../../../lib/ip.js';
import { added, FakeKernel, lease, MAC, removed, snapshot, UNDERLAY } from '../fake-kernel.js';

const backend = (k: FakeKernel) => new VxlanBackend({
  nl: k, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'), vni: 1, port: 8472, device: 'weft.1', macFor: () => MAC, underlay: UNDERLAY, routeProtocol: 87,
});

/** What the fake kernel holds, one line per entry, sorted. */
function held(k: FakeKernel): string[] {
  return [
    ...k.neighs.map((n) => `neigh ${n.ip} ${n.mac}`),
    ...k.fdbs.map((f) => `fdb ${f.mac} ${f.dst}`),
    ...k.routes.map((r) => `route ${r.dst} via ${r.gateway}`),
  ].sort();
}

/** The entries the leases call for. */
function wanted(ls: ReturnType<typeof lease>[]): string[] {
  return ls.flatMap((l) => {
    const n = l.subnet.toString().split('.')[2];
    const mac = (l.attrs.backendData as { VtepMAC: string }).VtepMAC;
    return [`neigh 10.244.${n}.0 ${mac}`, `fdb ${mac} ${l.attrs.publicIP}`, `route 10.244.${n}.0/24 via 10.244.${n}.0`];
  }).sort();
}

test('an apply queued during a full reconcile runs at its next pause, and the reconcile leaves what it changed alone', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  const peers = Array.from({ length: 221 }, (_, i) => lease(10 + i)); // more than one reconcile batch of repairs
  await b.apply(snapshot(...peers));
  const dev = k.linkByName('weft.1')!;
  // Every entry lost (the reconcile has 221 peers to repair), and a stale leftover of host 9.
  k.neighs = [];
  k.fdbs = [];
  k.routes = [];
  k.neighReplace({ index: dev.index, ip: '10.244.9.0', mac: '02:00:00:00:00:09' });
  k.fdbReplace({ index: dev.index, mac: '02:00:00:00:00:09', dst: '192.0.2.29' });
  // At the reconcile's first batch, a lease change arrives: host 200 has a new MAC, host 210 left, host 9 came back.
  const order: string[] = [];
  let put: Promise<void> | undefined;
  const batch = k.batch;
  k.batch = (reqs) => {
    put ??= b.apply({ snapshot: false, events: [...added(lease(200, '02:00:00:00:aa:c8'), lease(9)).events, ...removed(lease(210)).events] }).then(() => { order.push('apply'); });
    return batch(reqs);
  };
  await b.resync(true).then(() => order.push('reconcile'));
  await put;
  assert.equal(order, ['apply', 'reconcile'], 'the apply did not wait for the reconcile to end');
  const now = [...peers.filter((l) => !['10.244.200.0/24', '10.244.210.0/24'].includes(l.subnet.toString())), lease(200, '02:00:00:00:aa:c8'), lease(9)];
  assert.equal(held(k), wanted(now), 'the kernel holds exactly what the newest leases call for');
  assert.is(b.stats().peersProgrammed, now.length);
  // The next full reconcile finds everything in place.
  k.ops = [];
  await b.resync(true);
  assert.equal(k.ops, []);
});

test('a snapshot applied during a full reconcile supersedes it: the paused one stops', async () => {
  const k = new FakeKernel();
  const b = backend(k);
  const peers = Array.from({ length: 200 }, (_, i) => lease(10 + i));
  await b.apply(snapshot(...peers));
  k.neighs = [];
  k.fdbs = [];
  k.routes = [];
  let snap: Promise<void> | undefined;
  const batch = k.batch;
  k.batch = (reqs) => {
    snap ??= b.apply(snapshot(...peers.slice(0, 150)));
    return batch(reqs);
  };
  await b.resync(true);
  await snap;
  assert.equal(held(k), wanted(peers.slice(0, 150)));
  assert.is(b.stats().peersKnown, 150);
});

test.run();
