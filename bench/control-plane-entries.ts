// Counting a host's kernel entries for the fake leases while weftd programs
// them: [neighbour, FDB, route] on the VXLAN device that match a wanted lease
// exactly. Kept up to date from a netlink monitor (RTM_NEW*/DEL* of neighbours,
// FDB entries, routes and nexthop objects), so a count costs what changed, not
// a dump of 10,000 entries per host each round (at 10,000 peers the dumps took
// the bench seconds per round on the agents' CPUs, and a host's convergence was
// stamped up to seconds late). A dump rebuilds the state at the start and after
// the monitor overran, and confirms a host that the monitor says is complete.
import { KernelError, type NetlinkHandle, NetlinkMonitor, type Notification, resolveNexthops, RTMGRP_IPV4_ROUTE, RTMGRP_NEIGH, RTMGRP_NEXTHOP } from '../netlink/index.js';

/** What one fake lease must leave on every host. */
export interface WantedEntry { readonly subnet: string; readonly vtep: string; readonly mac: string; readonly publicIp: string }

/** The wanted entries by each key an entry is found by. */
export class WantedEntries {
  readonly size: number;
  readonly bySubnet: ReadonlyMap<string, WantedEntry>;
  readonly byVtep: ReadonlyMap<string, WantedEntry>;
  readonly byMac: ReadonlyMap<string, WantedEntry>;
  constructor(entries: readonly WantedEntry[]) {
    this.size = entries.length;
    this.bySubnet = new Map(entries.map((f) => [f.subnet, f]));
    this.byVtep = new Map(entries.map((f) => [f.vtep, f]));
    this.byMac = new Map(entries.map((f) => [f.mac, f]));
  }
}

type Hop = { gateway?: string | undefined; index?: number | undefined };

/** One host's matching entries, from dumps and then from its monitor. */
export class HostEntries {
  private readonly mon: NetlinkMonitor;
  private readonly neigh = new Set<string>();
  private readonly fdb = new Set<string>();
  /** Routes to a wanted subnet on any device: their own gateway and device, or their nexthop object's. */
  private readonly routes = new Map<string, Hop & { nhid?: number | undefined }>();
  private readonly nexthops = new Map<number, Hop>();
  private stale = true;
  /** Times the monitor overran (the state was rebuilt from dumps). */
  overruns = 0;

  constructor(private readonly nl: NetlinkHandle, netns: string, private readonly dev: string, private readonly want: WantedEntries) {
    // Opened before the first dump, so nothing made meanwhile is missed.
    this.mon = NetlinkMonitor.open({ netns, groups: (RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_NEXTHOP) >>> 0 });
  }

  /** Takes in everything the monitor queued; rebuilds from dumps when it overran. Returns [neigh, fdb, route]. */
  poll(): [number, number, number] {
    for (;;) {
      const notes = this.mon.poll(0, 4096);
      for (const n of notes) this.note(n);
      if (notes.length === 0) break;
    }
    if (this.stale) this.rebuild();
    return this.counts();
  }

  private get index(): number | undefined {
    return this.nl.linkByName(this.dev)?.index;
  }

  private devIndex: number | undefined;

  private note(n: Notification): void {
    switch (n.kind) {
      case 'overrun':
        this.overruns++;
        this.stale = true;
        return;
      case 'neigh':
        if (n.neigh.family !== 4) return;
        if (n.action === 'new' && n.neigh.mac !== undefined && this.want.byVtep.get(n.neigh.ip)?.mac === n.neigh.mac) this.neigh.add(`${n.neigh.index} ${n.neigh.ip}`);
        else this.neigh.delete(`${n.neigh.index} ${n.neigh.ip}`);
        return;
      case 'fdb': {
        const key = `${n.fdb.index} ${n.fdb.mac} ${n.fdb.dst}`;
        if (n.action === 'new' && n.fdb.dst !== undefined && this.want.byMac.get(n.fdb.mac)?.publicIp === n.fdb.dst) this.fdb.add(key);
        else this.fdb.delete(key);
        return;
      }
      case 'nexthop':
        if (n.action === 'new') this.nexthops.set(n.nexthop.id, { gateway: n.nexthop.gateway, index: n.nexthop.index });
        else {
          // Deleting an object deletes its routes, without a route notification.
          this.nexthops.delete(n.nexthop.id);
          for (const [dst, r] of this.routes) if (r.nhid === n.nexthop.id) this.routes.delete(dst);
        }
        return;
      case 'route': {
        const r = n.route;
        if (r.family !== 4 || r.table !== 254 || !this.want.bySubnet.has(r.dst)) return;
        if (n.action === 'new') this.routes.set(r.dst, { gateway: r.gateway, index: r.index, nhid: r.nhid });
        else this.routes.delete(r.dst);
        return;
      }
      default:
    }
  }

  private counts(): [number, number, number] {
    const index = this.devIndex;
    const onDev = (key: string) => Number(key.slice(0, key.indexOf(' '))) === index;
    let neigh = 0;
    for (const k of this.neigh) if (onDev(k)) neigh++;
    let fdb = 0;
    for (const k of this.fdb) if (onDev(k)) fdb++;
    let route = 0;
    for (const [dst, r] of this.routes) {
      const hop = r.nhid === undefined ? r : this.nexthops.get(r.nhid);
      if (hop && hop.index === index && this.want.bySubnet.get(dst)?.vtep === hop.gateway) route++;
    }
    return [neigh, fdb, route];
  }

  /** The state from dumps (the monitor's queue is drained first, and what it holds after is applied on top). */
  private rebuild(): void {
    for (;;) {
      try {
        this.rebuildOnce();
        return;
      } catch (e) {
        // Objects were made while we listed (the kernel flags the listing interrupted): list again.
        if (!(e instanceof KernelError && e.code === 'EINTR')) throw e;
      }
    }
  }

  private rebuildOnce(): void {
    this.stale = false;
    this.devIndex = this.index;
    this.neigh.clear();
    this.fdb.clear();
    this.routes.clear();
    this.nexthops.clear();
    if (this.devIndex === undefined) return;
    for (const n of this.nl.neighList({ index: this.devIndex, family: 4 })) this.note({ kind: 'neigh', action: 'new', neigh: n });
    for (const f of this.nl.fdbList({ index: this.devIndex })) this.note({ kind: 'fdb', action: 'new', fdb: f });
    for (const n of this.nl.nexthopList()) this.note({ kind: 'nexthop', action: 'new', nexthop: n });
    for (const r of this.nl.routeList({ family: 4 })) this.note({ kind: 'route', action: 'new', route: r });
  }

  /** The next poll rebuilds the state from dumps. */
  recount(): void {
    this.stale = true;
  }

  /** [neigh, fdb, route] from fresh dumps alone (the independent check of a host the monitor says is complete). */
  dumpCounts(): [number, number, number] {
    for (;;) {
      try {
        return this.dumpCountsOnce();
      } catch (e) {
        if (!(e instanceof KernelError && e.code === 'EINTR')) throw e;
      }
    }
  }

  private dumpCountsOnce(): [number, number, number] {
    const index = this.index;
    if (index === undefined) return [0, 0, 0];
    const neigh = this.nl.neighList({ index, family: 4 }).filter((n) => n.mac !== undefined && this.want.byVtep.get(n.ip)?.mac === n.mac).length;
    const fdb = this.nl.fdbList({ index }).filter((x) => x.dst !== undefined && this.want.byMac.get(x.mac)?.publicIp === x.dst).length;
    const rs = this.nl.routeList({ family: 4 });
    // weftd's routes go through nexthop objects: their gateway and device are the objects'.
    if (rs.some((r) => r.nhid !== undefined)) resolveNexthops(rs, this.nl.nexthopList());
    const route = rs.filter((r) => r.index === index && this.want.bySubnet.get(r.dst)?.vtep === r.gateway).length;
    return [neigh, fdb, route];
  }

  close(): void {
    this.mon.close();
  }
}
