// The shared route reconciler against an in-memory routing table: desired
// routes per peer, list/diff/apply, every route stamped with weft's protocol,
// stale routes in scope removed and routes out of scope never touched, an
// older weft's proto boot routes on the device adopted and re-stamped, failed
// replaces remembered and retried.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelOps } from '../../../backend/kernel-ops.js';
import { inScope, RouteReconciler, type RouteNetlink, type RouteScope } from '../../../backend/route-reconciler.js';
import { Prefix } from '../../../lib/ip.js';
import { nullLogger } from '../../../lib/log.js';
import { NetlinkError, type Route, type RouteSpec } from '../../../netlink/index.js';
import { asyncCalls } from '../helpers/batching-fake.js';

const W = 87;
const BOOT = 3;

class Routes implements RouteNetlink {
  private readonly a = asyncCalls(this);
  batch: RouteNetlink['batch'] = (reqs) => this.a.batch(reqs);
  routeDump: RouteNetlink['routeDump'] = (f) => this.a.routeDump(f);
  routes: Route[] = [];
  ops: string[] = [];
  failReplace = 0;
  routeList() { return this.routes; }
  routeReplace(r: RouteSpec) {
    if (this.failReplace > 0) {
      this.failReplace--;
      throw new NetlinkError(`route replace ${r.dst}`, 105); // ENOBUFS
    }
    this.ops.push(`replace ${r.dst} via ${r.gateway} dev ${r.index} proto ${r.protocol}`);
    this.routes = this.routes.filter((x) => x.dst !== r.dst);
    this.routes.push(route(r.dst, r.gateway, r.index!, r.protocol ?? BOOT, !!r.onlink));
  }
  routeDel(r: RouteSpec) {
    this.ops.push(`del ${r.dst}${r.protocol !== undefined ? ` proto ${r.protocol}` : ''}`);
    // As the kernel: a protocol in the request must match.
    const hit = this.routes.find((x) => x.dst === r.dst && (r.protocol === undefined || r.protocol === 0 || x.protocol === r.protocol));
    if (!hit) throw new NetlinkError('route del', 3); // ESRCH
    this.routes = this.routes.filter((x) => x !== hit);
  }
}

function route(dst: string, gateway: string | undefined, index: number, protocol = W, onlink = true): Route {
  return { family: 4, dst, gateway, index, onlink, table: 254, protocol, scope: 0, type: 1, flags: onlink ? 4 : 0 };
}

const NET = Prefix.parse('10.244.0.0/16');
const want = (n: number, index = 7) => ({ dst: `10.244.${n}.0/24`, gateway: `10.244.${n}.0`, index, onlink: true });
const make = (k: Routes, scope: RouteScope, ops = new KernelOps(nullLogger)) => new RouteReconciler(k, ops, { family: 4, scope: () => scope });

test('reconcile: keeps what is right, replaces what is missing or wrong, deletes stale routes of ours only', async () => {
  const k = new Routes();
  k.routes = [
    route('10.244.1.0/24', '10.244.1.0', 7),
    route('10.244.2.0/24', '10.244.9.9', 7),
    route('10.244.3.0/24', '10.244.3.0', 7), // stale, ours
    route('10.9.0.0/16', '192.0.2.1', 2, W, false), // our protocol, outside the Network: another overlay's
    route('10.244.99.0/24', '192.0.2.99', 2, 4, false), // inside the Network, proto static: someone else's
  ];
  const r = make(k, { protocol: W, within: NET });
  r.want('a', want(1));
  r.want('b', want(2));
  r.want('d', want(4));
  const failed = await r.reconcile();
  assert.equal(k.ops, ['del 10.244.3.0/24 proto 87', 'replace 10.244.2.0/24 via 10.244.2.0 dev 7 proto 87', 'replace 10.244.4.0/24 via 10.244.4.0 dev 7 proto 87']);
  assert.is(failed.size, 0);
  assert.ok(k.routes.some((x) => x.dst === '10.9.0.0/16'), 'another Network\'s route is not ours');
  assert.ok(k.routes.some((x) => x.dst === '10.244.99.0/24'), 'a hand-added route with another protocol stays');
  k.ops = [];
  await r.reconcile();
  assert.equal(k.ops, [], 'a second pass changes nothing');
});

test('upgrade: an older weft\'s proto boot routes on the device are adopted: stale ones deleted, wanted ones re-stamped', async () => {
  const k = new Routes();
  k.routes = [route('10.244.1.0/24', '10.244.1.0', 7, BOOT), route('10.244.3.0/24', '10.244.3.0', 7, BOOT), route('10.244.5.0/24', '192.0.2.5', 2, BOOT, false)];
  const r = make(k, { protocol: W, within: NET, device: 7 });
  r.want('a', want(1));
  await r.reconcile();
  assert.equal(k.ops, ['del 10.244.3.0/24 proto 3', 'replace 10.244.1.0/24 via 10.244.1.0 dev 7 proto 87']);
  assert.equal(k.routes.map((x) => `${x.dst} ${x.protocol}`).sort(), ['10.244.1.0/24 87', '10.244.5.0/24 3'], 'proto boot elsewhere is not ours');
});

test('inScope: main table only; device or protocol; within the Network', () => {
  const s: RouteScope = { protocol: W, within: NET, device: 7 };
  assert.ok(inScope(route('10.244.1.0/24', 'x', 7, BOOT), s));
  assert.ok(inScope(route('10.244.1.0/24', 'x', 2, W), s));
  assert.ok(inScope(route('10.244.0.0/16', undefined, 9, W), s), 'the udp backend\'s Network route');
  assert.not.ok(inScope(route('10.245.1.0/24', 'x', 2, W), s));
  assert.not.ok(inScope({ ...route('default', 'x', 2, W) }, s));
  assert.not.ok(inScope({ ...route('10.244.1.0/24', 'x', 7, W), table: 255 }, s));
  assert.ok(inScope(route('10.245.1.0/24', 'x', 2, W), { protocol: W }), 'no Network: every route with the protocol');
});

test('a failed replace is counted, remembered and retried; drop deletes ours; forget leaves it to prune', async () => {
  const k = new Routes();
  const ops = new KernelOps(nullLogger);
  const r = make(k, { protocol: W, within: NET }, ops);
  r.want('a', want(1));
  k.failReplace = 1;
  assert.equal([...(await r.apply(['a']))], ['a']);
  assert.equal([...r.failedKeys], ['a']);
  assert.is(ops.errors, 1);
  await r.retryFailed();
  assert.is(r.failedKeys.size, 0);
  assert.is(k.routes.length, 1);
  assert.is(k.routes[0]!.protocol, W);
  r.want('b', want(2));
  r.want('c', want(3));
  await r.apply(['b', 'c']);
  await r.drop(['a', 'b']);
  assert.equal(k.routes.map((x) => x.dst), ['10.244.3.0/24']);
  r.want('a', want(1));
  await r.drop(['a']); // already gone: fine, not counted
  assert.is(ops.errors, 1);
  r.forget('c');
  assert.equal(r.desiredKeys(), []);
  assert.equal([...(await r.prune())], []);
  assert.is(k.routes.length, 0, 'prune removed the forgotten route');
});

test('many routes go in one batch; a failure names its route in one summary line per operation and errno', async () => {
  const k = new Routes();
  const lines: string[] = [];
  const { createLogger } = await import('../../../daemon/logger.js');
  const ops = new KernelOps(createLogger('error', {}, (l) => lines.push(l)));
  let batches = 0;
  const inner = k.batch;
  k.batch = (reqs) => { batches++; return inner(reqs); };
  const r = new RouteReconciler(k, ops, { family: 4, scope: () => ({ protocol: W, within: NET }) });
  for (let i = 1; i <= 200; i++) r.want(`p${i}`, want(i));
  k.failReplace = 3;
  const failed = await r.reconcile();
  assert.is(batches, 1, 'no stale route: only the batch of 200 replaces');
  assert.is(failed.size, 3);
  assert.is(lines.length, 1);
  const rec = JSON.parse(lines[0]!);
  assert.equal([rec.op, rec.errno, rec.count, rec.subnets], ['route replace', 'ENOBUFS', 3, ['p1', 'p2', 'p3']]);
  assert.is(k.routes.length, 197);
});

test('drop never deletes a route someone else put there with another protocol', async () => {
  const k = new Routes();
  const r = make(k, { protocol: W, within: NET });
  r.want('a', want(1));
  await r.apply(['a']);
  k.routes = [route('10.244.1.0/24', '192.0.2.50', 2, 4, false)]; // an admin replaced it meanwhile (proto static)
  await r.drop(['a']);
  assert.equal(k.routes.map((x) => x.protocol), [4]);
});

test.run();
