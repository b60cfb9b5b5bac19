// The routes a backend wants per peer, kept in the kernel (flannel's
// RouteNetwork idea, with weft's list/diff/apply instead of a flush):
//   want(key, route)   declare the route of a peer (no kernel call)
//   apply(key)         ip route replace it; a failure is remembered and retried
//   drop(key)          forget it and ip route del it (forget(key): leave that to prune)
//   prune()            list the kernel's routes in scope, delete those no peer wants,
//                      and say which peers' routes are already right
//   reconcile()        prune, then replace every route that is missing or wrong
//   retryFailed()      replace the routes whose last attempt failed
// The scope says which kernel routes are the backend's to manage: those on its
// device (vxlan), or later those carrying weft's route protocol (host-gw), so
// routes someone else installed are never touched.
import type { IpFamily } from '../lib/ip.js';
import { RT_TABLE_MAIN, type NetlinkHandle, type Route, type RouteSpec } from '../netlink/index.js';
import type { KernelOps } from './kernel-ops.js';

export type RouteNetlink = Pick<NetlinkHandle, 'routeList' | 'routeReplace' | 'routeDel'>;

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

  /** ip route replace <dst> via <gateway> dev <index> [onlink]. */
  apply(key: string): boolean {
    const r = this.desired.get(key);
    if (!r) return true;
    const ok = this.ops.attempt('route replace', key, () => this.nl.routeReplace(toSpec(r)));
    if (ok) this.failed.delete(key);
    else this.failed.add(key);
    return ok;
  }

  /** ip route del of the declared route (already gone is fine). */
  drop(key: string): void {
    const r = this.desired.get(key);
    this.desired.delete(key);
    this.failed.delete(key);
    if (r) this.ops.attempt('route del', key, () => this.nl.routeDel(toSpec(r)), true);
  }

  /** Deletes in-scope kernel routes that no key wants; returns the keys whose route is already as declared. */
  prune(): Set<string> {
    const scope = this.opts.scope();
    const byDst = new Map<string, [string, DesiredRoute]>();
    for (const [k, r] of this.desired) byDst.set(r.dst, [k, r]);
    const ok = new Set<string>();
    const listed = this.nl.routeList({ family: this.opts.family, table: RT_TABLE_MAIN, ...(scope.index !== undefined ? { index: scope.index } : {}) });
    for (const r of listed) {
      if (r.table !== RT_TABLE_MAIN) continue; // the kernel's own local-table routes for our address
      if (scope.protocol !== undefined && r.protocol !== scope.protocol) continue;
      const want = byDst.get(r.dst);
      if (want && matches(r, want[1])) ok.add(want[0]);
      else if (!want) this.ops.attempt('route del (stale)', r.dst, () => this.nl.routeDel({ dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.index !== undefined ? { index: r.index } : {}) }), true);
    }
    for (const k of ok) this.failed.delete(k);
    return ok;
  }

  /** prune(), then apply() every wanted route that is not in place; returns the keys still failing. */
  reconcile(): ReadonlySet<string> {
    const ok = this.prune();
    for (const k of this.desired.keys()) if (!ok.has(k)) this.apply(k);
    return this.failed;
  }

  retryFailed(): ReadonlySet<string> {
    for (const k of [...this.failed]) this.apply(k);
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
