// host-gw's full reconcile lets a lease apply go first at its pauses and never undoes it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HostGwBackend } from '../../../../backend/host-gw/backend.js';
import { createLogger } from '../../../../daemon/logger.js';
import { Prefix } from '../../../../lib/ip.js';
import { added, FakeKernel, hostGwLease, removed, snapshot, UNDERLAY } from '../fake-kernel.js';

const routes = (k: FakeKernel) => k.routes.map((r) => `${r.dst} via ${r.gateway}`).sort();
const wanted = (ls: ReturnType<typeof hostGwLease>[]) => ls.map((l) => `${l.subnet.toString()} via ${l.attrs.publicIP}`).sort();

test('an apply queued during a full reconcile runs at its next pause; the reconcile leaves its peers alone', async () => {
  const k = new FakeKernel();
  const b = new HostGwBackend({ nl: k, log: createLogger('silent'), network: Prefix.parse('10.244.0.0/16'), underlay: UNDERLAY, routeProtocol: 87 });
  const peers = Array.from({ length: 221 }, (_, i) => hostGwLease(10 + i));
  await b.apply(snapshot(...peers));
  k.routes = []; // every route lost: more than one batch of repairs (128 peers per batch)
  k.routes.push({ family: 4, dst: '10.244.9.0/24', gateway: '192.0.2.29', index: 2, protocol: 87, table: 254, scope: 0, type: 1, flags: 0 } as never);
  const order: string[] = [];
  let put: Promise<void> | undefined;
  const batch = k.batch;
  k.batch = (reqs) => {
    // At the reconcile's first batch (its stale route 10.244.9.0/24): host 9 comes back, host 200 moves, host 210 leaves.
    put ??= b.apply({ snapshot: false, events: [...added(hostGwLease(9), hostGwLease(200, '192.0.2.9')).events, ...removed(hostGwLease(210)).events] }).then(() => { order.push('apply'); });
    return batch(reqs);
  };
  await b.resync(true).then(() => order.push('reconcile'));
  await put;
  const now = [...peers.filter((l) => !['10.244.200.0/24', '10.244.210.0/24'].includes(l.subnet.toString())), hostGwLease(200, '192.0.2.9'), hostGwLease(9)];
  assert.equal(routes(k), wanted(now));
  assert.is(b.stats().peersProgrammed, now.length);
  assert.equal(order, ['apply', 'reconcile'], 'the apply did not wait for the reconcile to end');
});

test.run();
