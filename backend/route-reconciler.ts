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
// IPv4 routes through a gateway go through kernel nexthop objects, one per
// (gateway, device, onlink), ids kept by NexthopIds (nexthop-ids.ts):
//   ip nexthop add id <N> via <gateway> dev <index> [onlink] proto 87
//   ip route replace <dst> nhid <N> proto 87
// The kernel hashes a plain IPv4 route's fib_info without its gateway, so
// thousands of `via` routes on one device share a bucket and each insert
// costs as many compares as there are routes (8000: 1.8 s); through nexthop
// objects they are hashed by id (8000: 0.2 s). IPv6 routes stay plain: the
// IPv6 table does not have that cost (8000 in 0.8 s, slower as objects).
// A kernel without nexthop objects (EOPNOTSUPP/EINVAL on the first dump)
// gets plain routes, said once in the log; so does a netlink without
// nexthopDump (unit-test fakes). Routes in the plain form (an older weft's,
// flannel's metric-0 ones) are replaced in place by the object form, no gap;
// a nexthop object of weft's that no route uses any more is deleted by the
// next prune(); drop() deletes a peer's route, then its object.
import { Slicer } from '../lib/backoff.js';
import { Prefix, type IpFamily } from '../lib/ip.js';
import { KernelError, nexthopRequest, resolveNexthops, RT_TABLE_MAIN, routeRequest, type NetlinkHandle, type Nexthop, type Route, type RouteSpec } from '../netlink/index.js';
import { NexthopIds, nexthopKey } from './nexthop-ids.js';
import type { KernelOp, KernelOps } from './kernel-ops.js';

/** nexthopDump is optional: without it (unit-test fakes) every route is plain. */
export type RouteNetlink = Pick<NetlinkHandle, 'routeDump' | 'batch'> & Partial<Pick<NetlinkHandle, 'nexthopDump'>>;

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

/** Routes resolved through their objects between two looks at the clock (about 1-2 ms of work). */
const RESOLVE_SLICE = 1000;

/** How prune() cuts its work (a full reconcile that lets lease applies run meanwhile). */
export interface PruneHooks {
  readonly slicer?: Slicer;
  /** Called when a slice is due (default: slicer.next()); other work may change the declared routes meanwhile. */
  readonly pause?: () => Promise<void>;
  /** Whether a stale route (by destination) may still be deleted now: false when newer work owns it. */
  readonly mayDelete?: (dst: string) => boolean;
}

/** The kernel's routes of the family in the main table, and its nexthop objects (undefined: routes are plain), as prune() reads them. */
export interface RouteSnapshot {
  readonly routes: Route[];
  readonly nexthops: Nexthop[] | undefined;
}

export interface RouteReconcilerOptions {
  readonly family: IpFamily;
  readonly scope: () => RouteScope;
  /** IPv4 gateway routes through nexthop objects where the kernel has them (default true). */
  readonly nexthops?: boolean;
}

export class RouteReconciler {
  private readonly desired = new Map<string, DesiredRoute>();
  private readonly failed = new Set<string>();
  /** Declared routes per nexthop key (gateway, device, onlink): an object goes when none uses it. */
  private readonly users = new Map<string, number>();
  /** 'on' once the first dump of nexthop objects worked. */
  private mode: 'unknown' | 'on' | 'off';
  private ids?: NexthopIds;
  /** The object each key's route replace in flight uses, and whether that replace adds it. */
  private readonly inFlight = new Map<string, { id: number; added: boolean }>();

  constructor(
    private readonly nl: RouteNetlink,
    private readonly ops: KernelOps,
    private readonly opts: RouteReconcilerOptions,
  ) {
    this.mode = opts.family === 4 && opts.nexthops !== false && nl.nexthopDump ? 'unknown' : 'off';
  }

  /** Whether routes go through nexthop objects now (after the first prune found the kernel has them). */
  get usesNexthops(): boolean {
    return this.mode === 'on';
  }

  want(key: string, route: DesiredRoute): void {
    this.count(this.desired.get(key), -1);
    this.desired.set(key, route);
    this.count(route, 1);
  }

  /** Undeclares a route without touching the kernel: the next prune() deletes it as stale. */
  forget(key: string): void {
    this.count(this.desired.get(key), -1);
    this.desired.delete(key);
    this.failed.delete(key);
  }

  desiredKeys(): string[] {
    return [...this.desired.keys()];
  }

  wanted(key: string): DesiredRoute | undefined {
    return this.desired.get(key);
  }

  /**
   * The batch items that put key's route in place (none when key wants no route):
   * `ip route replace <dst> nhid <N>`, preceded by `ip nexthop add id <N> ...`
   * when no object holds its gateway yet; or the plain
   * `ip route replace <dst> via <gateway> dev <index> [onlink] proto <protocol>`.
   * The item that settle() takes the outcome of is the last one.
   */
  replaceOps(key: string): KernelOp[] {
    const r = this.desired.get(key);
    if (!r) return [];
    const out: KernelOp[] = [];
    const nhid = this.nexthopFor(key, r, out);
    const spec: RouteSpec = nhid === undefined ? this.toSpec(r) : { dst: r.dst, nhid, protocol: this.opts.scope().protocol };
    out.push({ what: 'route replace', subject: key, req: routeRequest('replace', spec) });
    return out;
  }

  /** The object for r's gateway (added to `out` when there is none yet), or undefined for a plain route. */
  private nexthopFor(key: string, r: DesiredRoute, out: KernelOp[]): number | undefined {
    this.inFlight.delete(key);
    if (!this.ids || !r.gateway) return undefined;
    const nk = keyOf(r);
    let id = this.ids.idOf(nk);
    const added = id === undefined;
    if (id === undefined) {
      id = this.ids.allocate(nk);
      if (id === undefined) return undefined; // the range is full: a plain route
      const spec = { id, gateway: r.gateway, index: r.index, onlink: !!r.onlink, protocol: this.opts.scope().protocol };
      out.push({ what: 'nexthop add', subject: key, req: nexthopRequest('add', spec) });
    }
    this.inFlight.set(key, { id, added });
    return id;
  }

  /** Records the outcome of replaceOps(key) (its route replace). */
  settle(key: string, ok: boolean): void {
    const nh = this.inFlight.get(key);
    this.inFlight.delete(key);
    // The object was refused (someone else's id) or is gone: the next attempt makes one anew.
    if (nh && !ok) this.ids?.forget(nh.id, nh.added);
    if (ok || !this.desired.has(key)) this.failed.delete(key);
    else this.failed.add(key);
  }

  /** Replaces the routes of `keys` (one batch); returns the keys that failed. */
  async apply(keys: Iterable<string>): Promise<Set<string>> {
    const ops: KernelOp[] = [];
    const routeAt: Array<[string, number]> = [];
    for (const k of keys) {
      const list = this.replaceOps(k);
      if (list.length === 0) continue;
      ops.push(...list);
      routeAt.push([k, ops.length - 1]);
    }
    const ok = await this.ops.run(this.nl, ops);
    const failed = new Set<string>();
    for (const [k, i] of routeAt) {
      this.settle(k, ok[i]!);
      if (!ok[i]) failed.add(k);
    }
    return failed;
  }

  /**
   * Undeclares key's route; returns the requests that delete it from the
   * kernel (ours only; already gone is fine), for a caller that batches
   * them: the route, then its nexthop object when no other route uses it.
   */
  dropOps(key: string): KernelOp[] {
    const r = this.desired.get(key);
    this.forget(key);
    if (!r) return [];
    const protocol = this.opts.scope().protocol;
    // With objects, the kernel's route may be in either form: matched by destination and protocol only
    // (a delete naming a gateway or device does not match a route through an object).
    const spec: RouteSpec = this.ids ? { dst: r.dst, protocol } : this.toSpec(r);
    const out: KernelOp[] = [{ what: 'route del', subject: key, req: routeRequest('del', spec), tolerateMissing: true }];
    if (this.ids && r.gateway) {
      const nk = keyOf(r);
      const id = this.ids.idOf(nk);
      if (id !== undefined && !this.users.has(nk)) {
        this.ids.forget(id);
        out.push({ what: 'nexthop del', subject: key, req: nexthopRequest('del', { id }), tolerateMissing: true });
      }
    }
    return out;
  }

  /** Undeclares the routes of `keys` and deletes them from the kernel (one batch). */
  async drop(keys: Iterable<string>): Promise<void> {
    const ops: KernelOp[] = [];
    for (const k of keys) ops.push(...this.dropOps(k));
    await this.ops.run(this.nl, ops);
  }

  /**
   * Lists what prune() compares with. Taken before the work that holds a backend's queue: a newer
   * apply meanwhile is not undone, as prune() compares the listing with what is wanted when it runs
   * (every request it makes is idempotent) and keeps the nexthop objects made since.
   */
  async snapshot(): Promise<RouteSnapshot> {
    const had = this.ids;
    had?.beginLoad();
    const nexthops = await this.listNexthops();
    if (!had) this.ids?.beginLoad(); // the first listing made them
    const routes = await this.nl.routeDump({ family: this.opts.family, table: RT_TABLE_MAIN });
    return { routes, nexthops };
  }

  /**
   * Deletes in-scope kernel routes that no key wants (and objects of ours no route uses); returns the keys whose route is already as declared.
   * With `hooks.pause`, other work may change the declared routes between slices: a stale route is deleted only if
   * `hooks.mayDelete` still says so when the deletions go out, and unused objects are judged then (no pause in between).
   */
  async prune(snap?: RouteSnapshot, hooks: PruneHooks = {}): Promise<Set<string>> {
    const scope = this.opts.scope();
    const { routes: listed, nexthops } = snap ?? (await this.snapshot());
    const slicer = hooks.slicer ?? new Slicer();
    const pause = hooks.pause ?? (() => slicer.next());
    // Each pass over 10,000 routes or peers is cut into slices (each ~10-20 ms in one piece on a busy host).
    const byDst = new Map<string, [string, DesiredRoute]>();
    for (const [k, r] of [...this.desired]) {
      if (slicer.due()) await pause();
      byDst.set(r.dst, [k, r]);
    }
    const ok = new Set<string>();
    let stale: KernelOp[] = [];
    // A route through an object: its gateway and device are the object's (the dump carries them only in compat mode).
    const byId = resolveNexthops([], nexthops ?? []);
    const foreign = new Set<number>();
    for (let i = 0; i < listed.length; i += RESOLVE_SLICE) {
      if (slicer.due()) await pause();
      const part = listed.slice(i, i + RESOLVE_SLICE);
      resolveNexthops(part, byId);
      for (const r of part) if (r.nhid !== undefined && !inScope(r, scope)) foreign.add(r.nhid);
    }
    const ours = this.ids && nexthops ? this.ids.load(nexthops, scope.protocol, this.opts.family, foreign) : new Map<number, Nexthop>();
    // Objects routes outside our scope use are not ours to delete (and count as used).
    const used = new Set<number>(foreign);
    const staleNhid = new Map<string, number>();
    for (const r of listed) {
      if (slicer.due()) await pause();
      if (!inScope(r, scope)) continue;
      const want = byDst.get(r.dst);
      if (!want) {
        // Deleted as listed (its own protocol), so a route someone re-added meanwhile under another protocol survives.
        const spec: RouteSpec = r.nhid !== undefined
          ? { dst: r.dst, protocol: r.protocol, nhid: r.nhid }
          : { dst: r.dst, protocol: r.protocol, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.index !== undefined ? { index: r.index } : {}) };
        stale.push({ what: 'route del (stale)', subject: r.dst, req: routeRequest('del', spec), tolerateMissing: true });
        if (r.nhid !== undefined) staleNhid.set(r.dst, r.nhid);
        continue;
      }
      if (r.nhid !== undefined) used.add(r.nhid);
      if (this.matches(r, want[1], scope.protocol)) ok.add(want[0]);
    }
    if (hooks.mayDelete) {
      // A stale route left alone keeps its object: newer work owns the destination now.
      stale = stale.filter((op) => {
        if (hooks.mayDelete!(op.subject)) return true;
        const id = staleNhid.get(op.subject);
        if (id !== undefined) used.add(id);
        return false;
      });
    }
    if (this.ids) {
      for (const r of this.desired.values()) {
        const id = r.gateway ? this.ids.idOf(keyOf(r)) : undefined;
        if (id !== undefined) used.add(id);
      }
      for (const id of ours.keys()) {
        if (used.has(id)) continue;
        this.ids.forget(id);
        stale.push({ what: 'nexthop del (stale)', subject: `id ${id}`, req: nexthopRequest('del', { id }), tolerateMissing: true });
      }
    }
    await this.ops.run(this.nl, stale);
    for (const k of ok) this.failed.delete(k);
    return ok;
  }

  /** The kernel's nexthop objects, or undefined when routes are plain (the first call finds out whether the kernel has objects). */
  private async listNexthops(): Promise<Nexthop[] | undefined> {
    if (this.mode === 'off' || !this.nl.nexthopDump) return undefined;
    try {
      // Taken as listed even when objects changed meanwhile (the kernel then flags the listing, and
      // this agent's own applies run during it): an object missed is not ours this time (its routes
      // are made anew, never deleted for it), one listed though gone is deleted again (already gone is fine).
      const list = await this.nl.nexthopDump({}, true);
      if (this.mode === 'unknown') {
        this.mode = 'on';
        this.ids = new NexthopIds(this.opts.scope().protocol, this.opts.family, this.opts.scope().within?.toString() ?? '');
      }
      return list;
    } catch (e) {
      if (this.mode !== 'unknown' || !(e instanceof KernelError) || (e.code !== 'EOPNOTSUPP' && e.code !== 'EINVAL')) throw e;
      this.mode = 'off';
      this.ops.log.info('the kernel has no nexthop objects; peer routes are plain `via` routes', { err: e.message });
      return undefined;
    }
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

  private count(r: DesiredRoute | undefined, by: 1 | -1): void {
    if (!r?.gateway) return;
    const nk = keyOf(r);
    const n = (this.users.get(nk) ?? 0) + by;
    if (n > 0) this.users.set(nk, n);
    else this.users.delete(nk);
  }

  /**
   * The kernel's route is the declared one, with weft's protocol (an older weft's proto boot route is not:
   * it gets re-stamped); through the object of its gateway when routes use objects (a plain one is not: it
   * gets replaced by that form).
   */
  private matches(k: Route, d: DesiredRoute, protocol: number): boolean {
    if (k.protocol !== protocol) return false;
    if (this.ids && d.gateway) return k.nhid !== undefined && k.nhid === this.ids.idOf(keyOf(d));
    return k.nhid === undefined && k.gateway === d.gateway && (k.index === undefined || k.index === d.index) && k.onlink === !!d.onlink;
  }

  private toSpec(r: DesiredRoute): RouteSpec {
    return { dst: r.dst, index: r.index, protocol: this.opts.scope().protocol, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.onlink ? { onlink: true } : {}) };
  }
}

/** The nexthop key (gateway, device, onlink) of a declared route through a gateway. */
function keyOf(r: DesiredRoute): string {
  return nexthopKey(r.gateway!, r.index, !!r.onlink);
}
