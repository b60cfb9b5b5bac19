// The shared route reconciler against an in-memory routing table: desired
// routes per peer, list/diff/apply, stale routes in scope removed and routes
// out of scope never touched, failed replaces remembered and retried.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelOps } from '../../../backend/kernel-ops.js';
import { RouteReconciler, type RouteNetlink } from '../../../backend/route-reconciler.js';
import { nullLogger } from '../../../lib/log.js';
import { NetlinkError, type Route, type RouteSpec } from '../../../netlink/index.js';
import { asyncCalls } from '../helpers/batching-fake.js';

class Routes implements RouteNetlink {
  private readonly a = asyncCalls(this);
  batch: RouteNetlink['batch'] = (reqs) => this.a.batch(reqs);
  routeDump: RouteNetlink['routeDump'] = (f) => this.a.routeDump(f);
  routes: Route[] = [];
  ops: string[] = [];
  failReplace = 0;
  routeList(f: { index?: number } = {}) { return this.routes.filter((r) => f.index === undefined || r.index === f.index); }
  routeReplace(r: RouteSpec) {
    if (this.failReplace > 0) {
      this.failReplace--;
      throw new NetlinkError(`route replace ${r.dst}`, 105); // ENOBUFS
    }
    this.ops.push(`replace ${r.dst} via ${r.gateway} dev ${r.index}`);
    this.routes = this.routes.filter((x) => x.dst !== r.dst);
    this.routes.push(route(r.dst, r.gateway, r.index!, r.protocol ?? 3));
  }
  routeDel(r: RouteSpec) {
    this.ops.push(`del ${r.dst}`);
    if (!this.routes.some((x) => x.dst === r.dst)) throw new NetlinkError('route del', 3); // ESRCH
    this.routes = this.routes.filter((x) => x.dst !== r.dst);
  }
}

function route(dst: string, gateway: string | undefined, index: number, protocol = 3): Route {
  return { family: 4, dst, gateway, index, onlink: true, table: 254, protocol, scope: 0, type: 1, flags: 0 };
}

const want = (n: number, index = 7) => ({ dst: `10.244.${n}.0/24`, gateway: `10.244.${n}.0`, index, onlink: true });

test('reconcile: keeps what is right, replaces what is missing or wrong, deletes stale routes in scope only', async () => {
  const k = new Routes();
  k.routes = [route('10.244.1.0/24', '10.244.1.0', 7), route('10.244.2.0/24', '10.244.9.9', 7), route('10.244.3.0/24', '10.244.3.0', 7), route('10.9.0.0/16', '192.0.2.1', 2)];
  const ops = new KernelOps(nullLogger);
  const r = new RouteReconciler(k, ops, { family: 4, scope: () => ({ index: 7 }) });
  r.want('a', want(1));
  r.want('b', want(2));
  r.want('d', want(4));
  const failed = await r.reconcile();
  assert.equal(k.ops, ['del 10.244.3.0/24', 'replace 10.244.2.0/24 via 10.244.2.0 dev 7', 'replace 10.244.4.0/24 via 10.244.4.0 dev 7']);
  assert.is(failed.size, 0);
  assert.ok(k.routes.some((x) => x.dst === '10.9.0.0/16'), 'a route on another device is not ours');
  k.ops = [];
  await r.reconcile();
  assert.equal(k.ops, [], 'a second pass changes nothing');
});

test('a protocol scope leaves routes of other protocols alone', async () => {
  const k = new Routes();
  k.routes = [route('10.244.5.0/24', '192.0.2.5', 2, 3), route('10.244.6.0/24', '192.0.2.6', 2, 99)];
  const r = new RouteReconciler(k, new KernelOps(nullLogger), { family: 4, scope: () => ({ protocol: 99 }) });
  await r.reconcile();
  assert.equal(k.ops, ['del 10.244.6.0/24']);
});

test('a failed replace is counted, remembered and retried; drop deletes; forget leaves it to prune', async () => {
  const k = new Routes();
  const ops = new KernelOps(nullLogger);
  const r = new RouteReconciler(k, ops, { family: 4, scope: () => ({ index: 7 }) });
  r.want('a', want(1));
  k.failReplace = 1;
  assert.equal([...(await r.apply(['a']))], ['a']);
  assert.equal([...r.failedKeys], ['a']);
  assert.is(ops.errors, 1);
  await r.retryFailed();
  assert.is(r.failedKeys.size, 0);
  assert.is(k.routes.length, 1);
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
  const r = new RouteReconciler(k, ops, { family: 4, scope: () => ({ index: 7 }) });
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

test.run();
