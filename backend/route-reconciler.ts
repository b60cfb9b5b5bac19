// The routes a backend wants per peer, kept in the kernel (flannel's
// RouteNetwork idea, with weft's list/diff/apply instead of a flush):
//   want(key, route)   declare the route of a peer (no kernel call)
//   replaceOp(key)     the request that puts it in place, for a caller that batches it
//                      with its own entries; settle(key, ok) records the outcome
//   apply(keys)        ip route replace them (one batch); failures are remembered and retried
//   drop(keys)         forget them and ip route del them (dropOp(key) to batch it;
//                      forget(key): leave that to prune)
//   prune()            dump the kernel's routes in scope, delete those no peer wants,
//                      and say which peers' routes are already right
//   reconcile()        prune, then replace every route that is missing or wrong
//   retryFailed()      replace the routes whose last attempt failed
// The scope says which kernel routes are the backend's to manage: those on its
// device (vxlan), or those carrying weft's route protocol (host-gw), so routes
// someone else installed are never touched. Kernel work is batched and
// asynchronous (NetlinkHandle.batch, routeDump): thousands of peers do not
// hold the event loop.
import { Slicer } from '../lib/backoff.js';
import type { IpFamily } from '../lib/ip.js';
import { RT_TABLE_MAIN, routeRequest, type NetlinkHandle, type Route, type RouteSpec } from '../netlink/index.js';
import type { KernelOp, KernelOps } from './kernel-ops.js';

export type RouteNetlink = Pick<NetlinkHandle, 'routeDump' | 'batch'>;

/** Which routes of the main table belong to the backend. */
export interface RouteScope {
  /** Routes through this interface. */
  readonly index?: number;
  /** Routes with this protocol (RTPROT_*). */
  readonly protocol?: number;
}

export interface DesiredRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly index: number;
  readonly onlink?: boolean;
  readonly protocol?: number;
}

export class RouteReconciler {
  private readonly desired = new Map<string, DesiredRoute>();
  private readonly failed = new Set<string>();

  constructor(
    private readonly nl: RouteNetlink,
    private readonly ops: KernelOps,
    private readonly opts: { readonly family: IpFamily; readonly scope: () => RouteScope },
  ) {}

  want(key: string, route: DesiredRoute): void {
    this.desired.set(key, route);
  }

  /** Undeclares a route without touching the kernel: the next prune() deletes it as stale. */
  forget(key: string): void {
    this.desired.delete(key);
    this.failed.delete(key);
  }

  desiredKeys(): string[] {
    return [...this.desired.keys()];
  }

  /** ip route replace <dst> via <gateway> dev <index> [onlink], as a batch item; undefined when key wants no route. */
  replaceOp(key: string): KernelOp | undefined {
    const r = this.desired.get(key);
    return r && { what: 'route replace', subject: key, req: routeRequest('replace', toSpec(r)) };
  }

  /** Records the outcome of replaceOp(key). */
  settle(key: string, ok: boolean): void {
    if (ok || !this.desired.has(key)) this.failed.delete(key);
    else this.failed.add(key);
  }

  /** Replaces the routes of `keys` (one batch); returns the keys that failed. */
  async apply(keys: Iterable<string>): Promise<Set<string>> {
    const ops: KernelOp[] = [];
    for (const k of keys) {
      const op = this.replaceOp(k);
      if (op) ops.push(op);
    }
    const ok = await this.ops.run(this.nl, ops);
    const failed = new Set<string>();
    ops.forEach((op, i) => {
      this.settle(op.subject, ok[i]!);
      if (!ok[i]) failed.add(op.subject);
    });
    return failed;
  }

  /** Undeclares key's route; returns the request that deletes it from the kernel (already gone is fine), for a caller that batches it. */
  dropOp(key: string): KernelOp | undefined {
    const r = this.desired.get(key);
    this.desired.delete(key);
    this.failed.delete(key);
    return r && { what: 'route del', subject: key, req: routeRequest('del', toSpec(r)), tolerateMissing: true };
  }

  /** Undeclares the routes of `keys` and deletes them from the kernel (one batch). */
  async drop(keys: Iterable<string>): Promise<void> {
    const ops: KernelOp[] = [];
    for (const k of keys) {
      const op = this.dropOp(k);
      if (op) ops.push(op);
    }
    await this.ops.run(this.nl, ops);
  }

  /** Deletes in-scope kernel routes that no key wants; returns the keys whose route is already as declared. */
  async prune(): Promise<Set<string>> {
    const scope = this.opts.scope();
    const byDst = new Map<string, [string, DesiredRoute]>();
    for (const [k, r] of this.desired) byDst.set(r.dst, [k, r]);
    const ok = new Set<string>();
    const stale: KernelOp[] = [];
    const listed = await this.nl.routeDump({ family: this.opts.family, table: RT_TABLE_MAIN, ...(scope.index !== undefined ? { index: scope.index } : {}) });
    const slicer = new Slicer();
    for (const r of listed) {
      if (slicer.due()) await slicer.next();
      if (r.table !== RT_TABLE_MAIN) continue; // the kernel's own local-table routes for our address
      if (scope.protocol !== undefined && r.protocol !== scope.protocol) continue;
      const want = byDst.get(r.dst);
      if (want && matches(r, want[1])) ok.add(want[0]);
      else if (!want) {
        const spec: RouteSpec = { dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.index !== undefined ? { index: r.index } : {}) };
        stale.push({ what: 'route del (stale)', subject: r.dst, req: routeRequest('del', spec), tolerateMissing: true });
      }
    }
    await this.ops.run(this.nl, stale);
    for (const k of ok) this.failed.delete(k);
    return ok;
  }

  /** prune(), then replace every wanted route that is not in place; returns the keys still failing. */
  async reconcile(): Promise<ReadonlySet<string>> {
    const ok = await this.prune();
    await this.apply([...this.desired.keys()].filter((k) => !ok.has(k)));
    return this.failed;
  }

  async retryFailed(): Promise<ReadonlySet<string>> {
    await this.apply([...this.failed]);
    return this.failed;
  }

  get failedKeys(): ReadonlySet<string> {
    return this.failed;
  }
}

function toSpec(r: DesiredRoute): RouteSpec {
  return { dst: r.dst, index: r.index, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.onlink ? { onlink: true } : {}), ...(r.protocol !== undefined ? { protocol: r.protocol } : {}) };
}

function matches(k: Route, d: DesiredRoute): boolean {
  return k.gateway === d.gateway && (k.index === undefined || k.index === d.index);
}
