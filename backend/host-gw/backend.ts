// host-gw: no device, no encapsulation. Every other host is the gateway of its
// own subnet, so each peer is one route on the underlay (as flannel's host-gw):
//   ip nexthop add id <N> via <peer PublicIP> dev <underlay> proto 87
//   ip route replace <peer subnet> nhid <N> proto 87
// (a nexthop object per peer, see route-reconciler.ts; a plain
// `ip route replace <peer subnet> via <peer PublicIP> dev <underlay> proto 87`
// on a kernel without them, and for IPv6). That only works for a peer on
// this host's L2 segment. flannel just tries and retries silently; weft asks the kernel first (`ip route get`): a peer
// behind a gateway is skipped, with a warning naming it, counted (stats,
// /metrics, /readyz) and looked at again whenever the underlay's routes change
// and on every full resync. Stale routes are found by weft's route protocol.
// A dual-stack network runs a second instance with family 6: each peer's IPv6
// subnet via its PublicIPv6 (ip -6 route replace ... via <PublicIPv6> dev <underlay>).
import type { IpFamily, Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import type { NetlinkHandle, Notification } from '../../netlink/index.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { directRoute, lookupNextHop } from '../direct-route.js';
import { KernelOps } from '../kernel-ops.js';
import { PeerPaths } from '../peer-paths.js';
import { familyKey, logPeerChanges, PeerTable } from '../peer-table.js';
import { Slicer } from '../../lib/backoff.js';
import { Serial } from '../../lib/serial.js';
import { classifyNotifications } from '../route-events.js';
import { ReconcileRuns, Superseded, type ReconcileRun } from '../reconcile-run.js';
import { RouteReconciler, type RouteSnapshot } from '../route-reconciler.js';
import { parseHostGwPeer, type HostGwPeer } from './peer.js';

export type HostGwNetlink = Pick<NetlinkHandle, 'routeDump' | 'batch' | 'routeGet'>;

export interface HostGwOptions {
  readonly nl: HostGwNetlink;
  /** Route notifications (a NetlinkMonitor): underlay changes re-evaluate skipped and served peers, deletions of ours repair at once. */
  readonly monitor?: { poll(timeoutMs?: number): Notification[] };
  readonly log: Logger;
  readonly network: Prefix;
  readonly underlay: Underlay & { readonly v4: string };
  /** --route-protocol: carried by every route this backend installs. */
  readonly routeProtocol: number;
  /** 4 (default), or 6 for a dual-stack network's IPv6 routes (network is then IPv6Network). */
  readonly family?: IpFamily;
}

/** Peers per batch of a full reconcile's repairs: a lease put waits for one such batch at most. */
const RECONCILE_PEERS = 128;

export class HostGwBackend implements Backend {
  readonly type = 'host-gw';
  /** No encapsulation: the underlay's MTU, as flannel's host-gw. */
  readonly mtu: number;
  /** flannel's host-gw lease has no BackendData at all (the key is absent). */
  readonly leaseData = undefined;
  private readonly table: PeerTable<HostGwPeer>;
  private readonly ops: KernelOps;
  private readonly routes: RouteReconciler;
  private readonly paths: PeerPaths;
  private readonly serial = new Serial();
  /** Full reconciles, which let applies run between their slices. */
  private readonly runs = new ReconcileRuns(this.serial);
  /** Peers whose route or route lookup failed; retried every second. */
  private readonly dirty = new Set<string>();

  constructor(private readonly o: HostGwOptions) {
    this.mtu = o.underlay.mtu;
    this.ops = new KernelOps(o.log);
    const family = o.family ?? 4;
    this.routes = new RouteReconciler(o.nl, this.ops, { family, scope: () => ({ protocol: o.routeProtocol, within: o.network }) });
    this.table = new PeerTable((l) => parseHostGwPeer(l, o.underlay, family), o.log, familyKey(family));
    this.paths = new PeerPaths(o.log);
  }

  async configure(_own: Lease): Promise<void> {
    // Nothing to address: the bridge holds this host's subnet, the underlay its PublicIP.
  }

  apply(batch: LeaseBatch): Promise<void> {
    return this.serial.run(async () => {
      const changes = await this.table.applySliced(batch);
      logPeerChanges(this.o.log, changes, (p) => ({ publicIp: p.publicIp }));
      if (batch.snapshot) return this.reconcileNow();
      for (const c of changes) this.runs.touch(c.subnet);
      const gone = changes.filter((c) => !c.after).map((c) => c.subnet);
      await this.routes.drop(gone);
      for (const key of gone) {
        this.paths.delete(key);
        this.dirty.delete(key);
      }
      await this.serve(changes.flatMap((c) => (c.after ? [[c.subnet, c.after] as const] : [])));
    });
  }

  /**
   * Looks at each peer's next hop (the event loop runs between slices), then installs the routes
   * of those on the segment (one batch), and removes the routes of those now behind a gateway,
   * which are skipped.
   */
  private async serve(peers: ReadonlyArray<readonly [string, HostGwPeer]>): Promise<void> {
    const slicer = new Slicer();
    const served: string[] = [];
    const skipped: string[] = [];
    for (const [key, p] of peers) {
      if (slicer.due()) await slicer.next();
      this.runs.touch(key);
      const hop = lookupNextHop(this.ops, this.o.nl, this.o.underlay, key, p.publicIp);
      if (!hop) {
        this.dirty.add(key);
      } else if (!hop.onLink) {
        skipped.push(key);
        this.paths.set(key, p.publicIp, 'skipped', hop.reason);
        this.dirty.delete(key);
      } else {
        this.routes.want(key, directRoute(p.subnet, p.publicIp, this.o.underlay));
        served.push(key);
      }
    }
    await this.routes.drop(skipped);
    this.settle(served, await this.routes.apply(served));
  }

  /** Records the outcome of replacing the routes of `keys`. */
  private settle(keys: readonly string[], failed: ReadonlySet<string>): void {
    for (const key of keys) {
      const p = this.table.get(key);
      if (!p) continue;
      if (failed.has(key)) {
        this.dirty.add(key);
      } else {
        this.paths.set(key, p.publicIp, 'direct');
        this.dirty.delete(key);
      }
    }
  }

  /** A full reconcile inside the queue (a snapshot batch): lists the kernel first. */
  private reconcileNow(): Promise<void> {
    return this.runs.during((run) => this.reconcile(run));
  }

  /**
   * Every peer decided again; stale routes of ours deleted; missing or wrong ones replaced. Applies
   * run at its pauses (../reconcile-run.ts): the peers they changed are left to them.
   */
  private async reconcile(run: ReconcileRun, listed?: RouteSnapshot): Promise<void> {
    try {
      await this.reconcileSteps(run, listed);
    } catch (e) {
      if (!(e instanceof Superseded)) throw e; // else the newer one does the work
    }
  }

  private async reconcileSteps(run: ReconcileRun, listed?: RouteSnapshot): Promise<void> {
    run.check();
    for (const key of this.routes.desiredKeys()) if (!this.table.get(key)) this.routes.forget(key);
    for (const key of this.paths.keys()) if (!this.table.get(key)) this.paths.delete(key);
    const unknown = new Set<string>();
    for (const [key, p] of [...this.table.entries()]) {
      await run.step();
      if (this.table.get(key) !== p || !run.free(key)) continue;
      const hop = lookupNextHop(this.ops, this.o.nl, this.o.underlay, key, p.publicIp);
      if (!hop) unknown.add(key); // cannot tell: the route stays as declared, retried next second
      else if (hop.onLink) this.routes.want(key, directRoute(p.subnet, p.publicIp, this.o.underlay));
      else {
        this.routes.forget(key); // pruned below if it had one
        this.paths.set(key, p.publicIp, 'skipped', hop.reason);
      }
    }
    const ok = await this.routes.prune(listed ?? (await this.routes.snapshot()), { slicer: run.slicer, pause: () => run.pause(), mayDelete: (dst) => run.free(dst) });
    for (const key of [...this.dirty]) if (run.free(key)) this.dirty.delete(key);
    for (const key of unknown) if (run.free(key)) this.dirty.add(key);
    const todo: string[] = [];
    for (const key of this.routes.desiredKeys()) {
      await run.step();
      if (!run.free(key)) continue;
      if (!ok.has(key)) todo.push(key);
      else if (!unknown.has(key)) this.settle([key], new Set());
    }
    for (let i = 0; i < todo.length; i += RECONCILE_PEERS) {
      if (i > 0) await run.pause();
      const keys = todo.slice(i, i + RECONCILE_PEERS).filter((k) => run.free(k) && this.routes.wanted(k));
      const failed = await this.routes.apply(keys);
      this.settle(keys.filter((k) => !unknown.has(k) || failed.has(k)), failed);
    }
  }

  /** The underlay's routes changed: peers whose next hop changed are served anew. */
  private async repath(): Promise<void> {
    const slicer = new Slicer();
    const movers: Array<[string, HostGwPeer]> = [];
    for (const [key, p] of [...this.table.entries()]) {
      if (slicer.due()) await slicer.next();
      const hop = lookupNextHop(this.ops, this.o.nl, this.o.underlay, key, p.publicIp);
      if (!hop) {
        this.dirty.add(key);
        continue;
      }
      const served = this.routes.wanted(key) !== undefined;
      if (hop.onLink !== served || (!hop.onLink && this.paths.get(key)?.reason !== hop.reason)) movers.push([key, p]);
    }
    await this.serve(movers);
  }

  /**
   * Every second: repairs at once after a deletion of ours, re-serves peers when the underlay
   * changed, retries failed ones; a full reconcile when asked (every resync interval). That one
   * lists the kernel outside the queue and lets applies run at its pauses, as the VXLAN backend's.
   */
  async resync(full: boolean): Promise<void> {
    const reconcile = await this.serial.run(async () => {
      const ev = classifyNotifications(this.o.monitor?.poll(0) ?? [], { protocol: this.o.routeProtocol });
      if (full || ev.oursDeleted) return true;
      if (ev.underlayChanged) await this.repath();
      const retry: Array<[string, HostGwPeer]> = [];
      for (const key of [...this.dirty]) {
        const p = this.table.get(key);
        if (p) retry.push([key, p]);
        else this.dirty.delete(key);
      }
      await this.serve(retry);
      return false;
    });
    if (!reconcile) return;
    await this.runs.during(async (run) => {
      const listed = await this.routes.snapshot();
      await this.serial.run(() => this.reconcile(run, listed));
    });
  }

  stats(): BackendStats {
    const skipped = this.paths.count('skipped');
    return {
      peersKnown: this.table.size,
      peersProgrammed: this.table.size - this.dirty.size - skipped,
      peersSkipped: skipped,
      kernelErrors: this.ops.errors,
      invalidPeers: this.table.invalid,
      deviceRecreated: 0,
      paths: this.paths.list(),
      pathChanges: this.paths.changes,
    };
  }

  async close(): Promise<void> {
    // Routes stay: a restarted agent adopts them (same protocol) without a gap in traffic.
  }
}
