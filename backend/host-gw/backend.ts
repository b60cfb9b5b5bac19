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
import { familyKey, PeerTable, type PeerChange } from '../peer-table.js';
import { Serial } from '../../lib/serial.js';
import { classifyNotifications } from '../route-events.js';
import { RouteReconciler } from '../route-reconciler.js';
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
      const changes = this.table.apply(batch);
      for (const c of changes) this.logChange(c);
      if (batch.snapshot) {
        await this.reconcile();
        return;
      }
      for (const c of changes) {
        if (c.after) await this.serve(c.subnet, c.after);
        else await this.leave(c.subnet);
      }
    });
  }

  private logChange(c: PeerChange<HostGwPeer>): void {
    const p = c.after ?? c.before!;
    this.o.log.info(c.after ? (c.before ? 'peer updated' : 'peer added') : 'peer removed', { subnet: c.subnet, publicIp: p.publicIp });
  }

  private async leave(key: string): Promise<void> {
    await this.routes.drop([key]);
    this.paths.delete(key);
    this.dirty.delete(key);
  }

  /** Looks at the peer's next hop, then installs its route, or removes the one it had (now behind a gateway) and skips it. */
  private async serve(key: string, p: HostGwPeer): Promise<void> {
    const hop = lookupNextHop(this.ops, this.o.nl, this.o.underlay, key, p.publicIp);
    if (!hop) {
      this.dirty.add(key);
      return;
    }
    if (!hop.onLink) {
      await this.routes.drop([key]);
      this.paths.set(key, p.publicIp, 'skipped', hop.reason);
      this.dirty.delete(key);
      return;
    }
    this.routes.want(key, directRoute(p.subnet, p.publicIp, this.o.underlay));
    if ((await this.routes.apply([key])).size === 0) {
      this.paths.set(key, p.publicIp, 'direct');
      this.dirty.delete(key);
    } else {
      this.dirty.add(key);
    }
  }

  /** Every peer decided again; stale routes of ours deleted; missing or wrong ones replaced. */
  private async reconcile(): Promise<void> {
    this.dirty.clear();
    for (const key of this.routes.desiredKeys()) if (!this.table.get(key)) this.routes.forget(key);
    for (const key of this.paths.keys()) if (!this.table.get(key)) this.paths.delete(key);
    for (const [key, p] of this.table.entries()) {
      const hop = lookupNextHop(this.ops, this.o.nl, this.o.underlay, key, p.publicIp);
      if (!hop) this.dirty.add(key); // cannot tell: the route stays as declared, retried next second
      else if (hop.onLink) this.routes.want(key, directRoute(p.subnet, p.publicIp, this.o.underlay));
      else {
        this.routes.forget(key); // pruned below if it had one
        this.paths.set(key, p.publicIp, 'skipped', hop.reason);
      }
    }
    const failed = await this.routes.reconcile();
    for (const [key, p] of this.table.entries()) {
      if (!this.routes.wanted(key) || this.dirty.has(key)) continue;
      if (failed.has(key)) this.dirty.add(key);
      else this.paths.set(key, p.publicIp, 'direct');
    }
  }

  /** The underlay's routes changed: peers whose next hop changed are served anew. */
  private async repath(): Promise<void> {
    for (const [key, p] of this.table.entries()) {
      const hop = lookupNextHop(this.ops, this.o.nl, this.o.underlay, key, p.publicIp);
      if (!hop) {
        this.dirty.add(key);
        continue;
      }
      const served = this.routes.wanted(key) !== undefined;
      if (hop.onLink !== served || (!hop.onLink && this.paths.get(key)?.reason !== hop.reason)) await this.serve(key, p);
    }
  }

  resync(full: boolean): Promise<void> {
    // One at a time with apply: both await the kernel.
    return this.serial.run(async () => {
      const ev = classifyNotifications(this.o.monitor?.poll(0) ?? [], { protocol: this.o.routeProtocol });
      if (full || ev.oursDeleted) {
        await this.reconcile();
        return;
      }
      if (ev.underlayChanged) await this.repath();
      for (const key of [...this.dirty]) {
        const p = this.table.get(key);
        if (p) await this.serve(key, p);
        else this.dirty.delete(key);
      }
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
