// Counting a host's kernel entries for the fake leases while weftd programs
// them, cheaply enough not to slow down what is measured: a netlink monitor of
// the IPv4 routes (weftd adds a peer's route after its neighbour and FDB
// entries) says when the host last changed and gives the time series; a full
// dump of the three kinds runs only once the host has been quiet for a moment,
// and confirms it holds every [neighbour, FDB, route] of every wanted lease
// exactly. (Dumping
// 10,000 routes per host every round took up to seconds per round of the same
// CPUs the agents need, and stamped convergence that much late.)
import { Prefix } from '../lib/ip.js';
import {
  AF_INET, KernelError, type NetlinkHandle, NetlinkMonitor, parseMessages, resolveNexthops, RT_TABLE_MAIN, RTA_DST, RTA_TABLE,
  RTM_DELROUTE, RTM_NEWROUTE, RTMGRP_IPV4_ROUTE, RTMSG_LEN, splitBody,
} from '../netlink/index.js';

/** What one fake lease must leave on every host. */
export interface WantedEntry { readonly subnet: string; readonly vtep: string; readonly mac: string; readonly publicIp: string }

/** An IPv4 prefix as one number (address × 64 + length), how the route counting keys subnets. */
export const subnetKey = (address: number, prefixLen: number): number => address * 64 + prefixLen;

/**
 * Calls visit(added, subnetKey) for each IPv4 route notification of the main table in monitor
 * datagrams (one, or several concatenated: NetlinkMonitor.pollRaw), reading only the rtmsg and
 * its RTA_DST/RTA_TABLE attributes (the full decoder built a Route and its texts for each of the
 * 10,000 routes per host of a burst: ~11 µs each in the bench, on the CPUs the agents use).
 * Returns whether they held any IPv4 route notification.
 */
export function mainTableRoutes(d: Buffer, visit: (added: boolean, key: number) => void): boolean {
  let any = false;
  for (const m of parseMessages(d)) {
    if ((m.type !== RTM_NEWROUTE && m.type !== RTM_DELROUTE) || m.data[0] !== AF_INET) continue;
    any = true;
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    const { fixed, attrs } = splitBody(m, RTMSG_LEN);
    const dst = attrs.u32be(RTA_DST);
    if ((attrs.u32(RTA_TABLE) ?? fixed[4]) === RT_TABLE_MAIN && dst !== undefined) visit(m.type === RTM_NEWROUTE, subnetKey(dst, fixed[1]!));
  }
  return any;
}

/** The wanted entries by each key an entry is found by. */
export class WantedEntries {
  readonly size: number;
  readonly bySubnet: ReadonlyMap<string, WantedEntry>;
  /** subnetKey of each wanted subnet (the monitor's route counting). */
  readonly subnetKeys: ReadonlySet<number>;
  readonly byVtep: ReadonlyMap<string, WantedEntry>;
  readonly byMac: ReadonlyMap<string, WantedEntry>;
  constructor(entries: readonly WantedEntry[]) {
    this.size = entries.length;
    this.bySubnet = new Map(entries.map((f) => [f.subnet, f]));
    this.subnetKeys = new Set(entries.map((f) => {
      const p = Prefix.parse(f.subnet, { family: 4 });
      return subnetKey(Number(p.ip), p.prefixLen);
    }));
    this.byVtep = new Map(entries.map((f) => [f.vtep, f]));
    this.byMac = new Map(entries.map((f) => [f.mac, f]));
  }
}

export class HostEntries {
  private readonly mon: NetlinkMonitor;
  /** Wanted subnets (subnetKey) that have a route in the main table (whatever its gateway): the time series. */
  private readonly routes = new Set<number>();
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
    const count = (added: boolean, key: number) => {
      if (!this.want.subnetKeys.has(key)) return;
      if (added) this.routes.add(key);
      else this.routes.delete(key);
    };
    for (;;) {
      const { data, datagrams, overruns } = this.mon.pollRaw(4096);
      this.overruns += overruns;
      if (overruns > 0) changed = true;
      if (mainTableRoutes(data, count)) changed = true;
      if (datagrams === 0 && overruns === 0) break;
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
