// Counting a host's kernel entries for the fake leases while weftd programs
// them, cheaply enough not to slow down what is measured: a netlink monitor of
// the IPv4 routes (weftd adds a peer's route after its neighbour and FDB
// entries) says when the host last changed and gives the time series; a full
// dump of the three kinds runs only once the host has been quiet for a moment,
// and confirms it holds every [neighbour, FDB, route] of every wanted lease
// exactly. (Dumping
// 10,000 routes per host every round took up to seconds per round of the same
// CPUs the agents need, and stamped convergence that much late.)
import {
  KernelError, type NetlinkHandle, NetlinkMonitor, resolveNexthops, RTMGRP_IPV4_ROUTE,
} from '../netlink/index.js';

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

export class HostEntries {
  private readonly mon: NetlinkMonitor;
  /** Wanted subnets that have a route in the main table (whatever its gateway): the time series. */
  private readonly routes = new Set<string>();
  /** performance.now() when the monitor last reported a route change (or lost some: an overrun). */
  lastChange = -Infinity;
  /** Times the monitor's buffer overflowed. */
  overruns = 0;

  constructor(private readonly nl: NetlinkHandle, netns: string, private readonly dev: string, private readonly want: WantedEntries) {
    this.mon = NetlinkMonitor.open({ netns, groups: RTMGRP_IPV4_ROUTE });
  }

  /** Takes in everything the monitor queued; returns how many wanted subnets have a route. */
  poll(): number {
    let changed = false;
    for (;;) {
      const notes = this.mon.poll(0, 4096);
      for (const n of notes) {
        changed = true;
        if (n.kind === 'overrun') this.overruns++;
        else if (n.kind === 'route' && n.route.family === 4 && n.route.table === 254 && this.want.bySubnet.has(n.route.dst)) {
          if (n.action === 'new') this.routes.add(n.route.dst);
          else this.routes.delete(n.route.dst);
        }
      }
      if (notes.length === 0) break;
    }
    if (changed) this.lastChange = performance.now();
    return this.routes.size;
  }

  /**
   * [neigh, fdb, route] that match a wanted lease exactly, from fresh dumps (undefined: a listing
   * was interrupted, try later). Asynchronous: the event loop (the monitors' polling) runs meanwhile.
   */
  async dumpCounts(): Promise<[number, number, number] | undefined> {
    try {
      const index = this.nl.linkByName(this.dev)?.index;
      if (index === undefined) return [0, 0, 0];
      const neigh = (await this.nl.neighDump({ index, family: 4 })).filter((n) => n.mac !== undefined && this.want.byVtep.get(n.ip)?.mac === n.mac).length;
      const fdb = (await this.nl.fdbDump({ index })).filter((x) => x.dst !== undefined && this.want.byMac.get(x.mac)?.publicIp === x.dst).length;
      const rs = await this.nl.routeDump({ family: 4 });
      // weftd's routes go through nexthop objects: their gateway and device are the objects'.
      if (rs.some((r) => r.nhid !== undefined)) resolveNexthops(rs, await this.nl.nexthopDump());
      const route = rs.filter((r) => r.index === index && this.want.bySubnet.get(r.dst)?.vtep === r.gateway).length;
      return [neigh, fdb, route];
    } catch (e) {
      // Objects were made while we listed (the kernel flags the listing interrupted).
      if (e instanceof KernelError && e.code === 'EINTR') return undefined;
      throw e;
    }
  }

  close(): void {
    this.mon.close();
  }
}
