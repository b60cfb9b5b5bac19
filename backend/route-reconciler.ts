// The routes a backend wants per peer, kept in the kernel (flannel's
// RouteNetwork idea, with weft's list/diff/apply instead of a flush):
//   want(key, route)   declare the route of a peer (no kernel call)
//   apply(keys)        ip route replace them (one batch); a failure is remembered and retried
//   drop(keys)         forget them and ip route del them (forget(key): leave that to prune)
//   prune()            list the kernel's routes in scope, delete those no peer wants,
//                      and say which peers' routes are already right
//   reconcile()        prune, then replace every route that is missing or wrong
//   retryFailed()      replace the routes whose last attempt failed
// Every route it installs carries weft's route protocol (--route-protocol,
// `ip route ... proto 87`), and the scope says which kernel routes are the
// backend's to manage: those carrying that protocol inside the overlay
// Network, plus, for the vxlan backend, anything on its own device (what an
// older weft installed there with proto boot is adopted and re-stamped). A
// route someone else installed (another protocol, elsewhere) is never deleted.
// Kernel work is batched and asynchronous (NetlinkHandle.batch, routeDump):
// thousands of peers do not hold the event loop.
import { Slicer } from '../lib/backoff.js';
import { Prefix, type IpFamily } from '../lib/ip.js';
import { RT_TABLE_MAIN, routeRequest, type NetlinkHandle, type Route, type RouteSpec } from '../netlink/index.js';
import type { KernelOp, KernelOps } from './kernel-ops.js';

export type RouteNetlink = Pick<NetlinkHandle, 'routeDump' | 'batch'>;

/**
 * weft's own route protocol number, the default of --route-protocol. Unassigned
 * in linux/rtnetlink.h (RTPROT_* 0-4, 8-18, 42, 99, 186-189, 192) and in
 * iproute2's rt_protos; 87 is "W" in ASCII.
 */
export const DEFAULT_ROUTE_PROTOCOL = 87;

/** Which routes of the main table belong to the backend. */
export interface RouteScope {
  /** weft's route protocol: every route the reconciler installs carries it; routes with it are ours. */
  readonly protocol: number;
  /** Only destinations inside this prefix (the overlay Network): another overlay on this host may share the protocol. */
  readonly within?: Prefix;
  /** Routes through this device are ours whatever their protocol (an older weft's proto boot routes on the VXLAN device). */
  readonly device?: number;
}

export interface DesiredRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly index: number;
  readonly onlink?: boolean;
}

/** True when a kernel route falls in the scope (is the backend's to keep or delete). */
export function inScope(r: Route, s: RouteScope): boolean {
  if (r.table !== RT_TABLE_MAIN) return false; // the kernel's own local-table routes for our address
  if (s.device !== undefined && r.index === s.device) return true;
  if (r.protocol !== s.protocol) return false;
  return s.within === undefined || (r.dst !== 'default' && s.within.containsNet(Prefix.parse(r.dst)));
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

  wanted(key: string): DesiredRoute | undefined {
    return this.desired.get(key);
  }

  /** ip route replace <dst> via <gateway> dev <index> [onlink] proto <protocol>, as a batch item; undefined when key wants no route. */
  replaceOp(key: string): KernelOp | undefined {
    const r = this.desired.get(key);
    return r && { what: 'route replace', subject: key, req: routeRequest('replace', this.toSpec(r)) };
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

  /** Undeclares key's route; returns the request that deletes it from the kernel (ours only; already gone is fine), for a caller that batches it. */
  dropOp(key: string): KernelOp | undefined {
    const r = this.desired.get(key);
    this.desired.delete(key);
    this.failed.delete(key);
    return r && { what: 'route del', subject: key, req: routeRequest('del', this.toSpec(r)), tolerateMissing: true };
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
    const listed = await this.nl.routeDump({ family: this.opts.family, table: RT_TABLE_MAIN });
    const slicer = new Slicer();
    for (const r of listed) {
      if (slicer.due()) await slicer.next();
      if (!inScope(r, scope)) continue;
      const want = byDst.get(r.dst);
      if (want && matches(r, want[1], scope.protocol)) ok.add(want[0]);
      else if (!want) {
        // Deleted as listed (its own protocol), so a route someone re-added meanwhile under another protocol survives.
        const spec: RouteSpec = { dst: r.dst, protocol: r.protocol, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.index !== undefined ? { index: r.index } : {}) };
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

  private toSpec(r: DesiredRoute): RouteSpec {
    return { dst: r.dst, index: r.index, protocol: this.opts.scope().protocol, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.onlink ? { onlink: true } : {}) };
  }
}

/** The kernel's route is the declared one, with weft's protocol (an older weft's proto boot route is not: it gets re-stamped). */
function matches(k: Route, d: DesiredRoute, protocol: number): boolean {
  return k.gateway === d.gateway && (k.index === undefined || k.index === d.index) && k.onlink === !!d.onlink && k.protocol === protocol;
}
