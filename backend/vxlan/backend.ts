// Kernel VXLAN: one device (the VTEP), programmed over netlink with one
// neighbour, one FDB and one route entry per remote host (as flannel does):
//   ip neigh replace <peer subnet>.0 lladdr <peer VtepMAC> dev weft.1 nud permanent
//   bridge fdb replace <peer VtepMAC> dev weft.1 dst <peer PublicIP> self permanent
//   ip route replace <peer subnet> via <peer subnet>.0 dev weft.1 onlink proto 87
// With DirectRouting, a peer whose PublicIP the kernel reaches on-link
// through the underlay gets a plain route instead, and no VXLAN entries:
//   ip route replace <peer subnet> via <peer PublicIP> dev <underlay> proto 87
// re-evaluated when the underlay's routes change and on every full resync; a
// move between the two forms adds the new one before removing the old (the
// route is replaced in place), so traffic never stops.
// The routes are kept by the shared RouteReconciler; the neighbour and FDB
// entries are reconciled here. The kernel is reconciled (list, diff, apply),
// never flushed, so a restarted agent does not interrupt traffic.
// A dual-stack network runs a second instance with family 6 (flannel's
// flannel-v6.<VNI>, here weft-v6.<VNI>): its own device and MAC, local =
// PublicIPv6, address <v6 subnet>/128, and per peer the same three entries
// from the peer's IPv6 subnet, BackendV6Data and PublicIPv6:
//   ip -6 neigh replace <peer v6 subnet>:: lladdr <V6 VtepMAC> dev weft-v6.1 nud permanent
//   bridge fdb replace <V6 VtepMAC> dev weft-v6.1 dst <PublicIPv6> self permanent
//   ip -6 route replace <peer v6 subnet> via <peer v6 subnet>:: dev weft-v6.1 onlink proto 87
import { Prefix, type IpFamily } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import { IFA_F_NODAD, type Fdb, type Link, type Neigh, type NetlinkHandle, type Notification } from '../../netlink/index.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { directRoute, lookupNextHop } from '../direct-route.js';
import { KernelOps } from '../kernel-ops.js';
import { PeerPaths, type PeerPath } from '../peer-paths.js';
import { familyKey, PeerTable, type PeerChange } from '../peer-table.js';
import { classifyNotifications } from '../route-events.js';
import { RouteReconciler } from '../route-reconciler.js';
import { ensureVxlanDevice } from './device.js';
import { parseVxlanPeer, type VxlanPeer } from './peer.js';

/** The netlink operations the VXLAN backend uses (a NetlinkHandle; a fake in unit tests). */
export type VxlanNetlink = Pick<
  NetlinkHandle,
  | 'linkByName' | 'linkByIndex' | 'linkAdd' | 'linkDel' | 'linkSetUp' | 'linkSetMtu' | 'linkSetHwAddr'
  | 'addrList' | 'addrReplace' | 'addrDel'
  | 'routeList' | 'routeReplace' | 'routeDel' | 'routeGet'
  | 'neighList' | 'neighReplace' | 'neighDel'
  | 'fdbList' | 'fdbReplace' | 'fdbDel'
>;

/** Kernel notifications (a NetlinkMonitor): a deletion of ours triggers a full reconcile at once, an underlay route change a new look at each peer's path. */
export interface VxlanMonitor {
  poll(timeoutMs?: number): Notification[];
}

export interface VxlanOptions {
  readonly nl: VxlanNetlink;
  readonly monitor?: VxlanMonitor;
  readonly log: Logger;
  readonly network: Prefix;
  readonly vni: number;
  readonly port: number;
  readonly device: string;
  readonly mac: string;
  /** Its v4 address (v6 for family 6) is the VTEP's local address. */
  readonly underlay: Underlay & { readonly v4: string };
  /** 4 (default): the IPv4 device; 6: a dual-stack network's IPv6 device (network is then IPv6Network). */
  readonly family?: IpFamily;
  /** Backend.MTU from the network config; default underlay MTU - 50. */
  readonly mtu?: number;
  /** --route-protocol: carried by every route this backend installs. */
  readonly routeProtocol: number;
  /** Backend.DirectRouting: peers on this host's L2 segment get a direct route instead of VXLAN entries. */
  readonly directRouting?: boolean;
}

/** VXLAN over IPv4 adds 50 bytes: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;
/** Over IPv6, 70: the outer header is 40 bytes (flannel subtracts 50 for both; see the README). */
export const VXLAN6_OVERHEAD = 70;

const LINK_LOCAL = Prefix.parse('fe80::/10');

export class VxlanBackend implements Backend {
  readonly type = 'vxlan';
  readonly mtu: number;
  readonly leaseData: { VNI: number; VtepMAC: string };
  private readonly table: PeerTable<VxlanPeer>;
  private readonly ops: KernelOps;
  private readonly routes: RouteReconciler;
  private readonly paths: PeerPaths;
  /** Peers whose entries are not all in place (a failed operation); retried every second. */
  private readonly dirty = new Set<string>();
  private link!: Link;
  private own?: Lease;
  private deviceRecreated = 0;
  private readonly family: IpFamily;
  /** The VTEP's local underlay address (IPv4, or IPv6 for the IPv6 device). */
  private readonly local: string;

  constructor(private readonly o: VxlanOptions) {
    this.family = o.family ?? 4;
    const local = this.family === 4 ? o.underlay.v4 : o.underlay.v6;
    if (!local) throw new TypeError('the IPv6 VXLAN device needs the underlay\'s IPv6 address');
    this.local = local;
    this.mtu = o.mtu ?? o.underlay.mtu - (this.family === 4 ? VXLAN_OVERHEAD : VXLAN6_OVERHEAD);
    this.leaseData = { VNI: o.vni, VtepMAC: o.mac };
    this.ops = new KernelOps(o.log);
    // Ours: routes with weft's protocol in the Network (vxlan and direct forms), and anything on the device (an older weft's proto boot routes).
    this.routes = new RouteReconciler(o.nl, this.ops, { family: this.family, scope: () => ({ protocol: o.routeProtocol, within: o.network, device: this.link.index }) });
    this.table = new PeerTable((l) => parseVxlanPeer(l, o.vni, o.underlay, this.family), o.log, familyKey(this.family));
    this.paths = new PeerPaths(o.log);
    this.link = this.ensureDevice();
  }

  private ensureDevice(): Link {
    const { o } = this;
    return ensureVxlanDevice(o.nl, o.log, { name: o.device, vni: o.vni, port: o.port, local: this.local, underlayIndex: o.underlay.index, mtu: this.mtu, mac: o.mac });
  }

  async configure(own: Lease): Promise<void> {
    this.own = own;
    this.configureAddress();
  }

  // ip addr replace <subnet>.0/32 dev weft.1, and drop addresses of an old lease
  // (IPv6: <v6 subnet>::/128 nodad on weft-v6.1; the kernel's link-local address stays, as in flannel)
  private configureAddress(): void {
    const sn = this.family === 4 ? this.own?.subnet : this.own?.ipv6Subnet;
    if (!sn) return;
    const { nl } = this.o;
    const want = sn.address(0);
    const len = this.family === 4 ? 32 : 128;
    for (const a of nl.addrList({ index: this.link.index, family: this.family })) {
      if (this.family === 6 && LINK_LOCAL.contains(a.address)) continue;
      if (a.address !== want || a.prefixLen !== len) nl.addrDel({ index: this.link.index, address: a.address, prefixLen: a.prefixLen });
    }
    nl.addrReplace({ index: this.link.index, address: want, prefixLen: len, ...(this.family === 6 ? { flags: IFA_F_NODAD } : {}) });
  }

  async apply(batch: LeaseBatch): Promise<void> {
    const changes = this.table.apply(batch);
    if (batch.snapshot) {
      for (const c of changes) this.logChange(c);
      this.reconcile();
      return;
    }
    for (const c of changes) this.applyChange(c);
  }

  private logChange(c: PeerChange<VxlanPeer>): void {
    const p = c.after ?? c.before!;
    const what = c.after ? (c.before ? 'peer updated' : 'peer added') : 'peer removed';
    this.o.log.info(what, { subnet: c.subnet, publicIp: p.dst, ...(c.after ? { vtepMac: p.mac } : {}) });
  }

  private applyChange(c: PeerChange<VxlanPeer>): void {
    if (c.before && (!c.after || c.after.mac !== c.before.mac)) {
      this.unprogram(c.subnet, c.before, !c.after);
    }
    if (c.after) {
      if (this.program(c.subnet, c.after, this.choosePath(c.subnet, c.after))) {
        this.dirty.delete(c.subnet);
        this.logChange(c);
      } else {
        this.dirty.add(c.subnet);
      }
    } else {
      this.dirty.delete(c.subnet);
      this.paths.delete(c.subnet);
      this.logChange(c);
    }
  }

  /**
   * The path a peer takes now: direct when DirectRouting is on and the kernel
   * reaches its PublicIP on-link through the underlay (flannel's
   * DirectRouting()), else vxlan. When the lookup itself fails, the peer
   * keeps the path it has.
   */
  private choosePath(key: string, p: VxlanPeer): { path: PeerPath; reason?: string } {
    if (!this.o.directRouting) return { path: 'vxlan' };
    const hop = lookupNextHop(this.ops, this.o.nl, this.o.underlay, key, p.dst);
    if (!hop) {
      const cur = this.paths.get(key);
      return cur && cur.path !== 'skipped' ? { path: cur.path, ...(cur.reason ? { reason: cur.reason } : {}) } : { path: 'vxlan', reason: 'route lookup failed' };
    }
    return hop.onLink ? { path: 'direct' } : { path: 'vxlan', reason: hop.reason };
  }

  /** The peer's route in the form of its path, as the reconciler keeps it. */
  private wantRoute(key: string, p: VxlanPeer, path: PeerPath): void {
    if (path === 'direct') this.routes.want(key, directRoute(p.subnet, p.dst, this.o.underlay));
    else this.routes.want(key, { dst: p.subnet.toString(), gateway: p.vtepIp, index: this.link.index, onlink: true });
  }

  /**
   * vxlan: neighbour, then FDB, then route (no packet is routed to the device
   * before the peer's MAC and address are known). direct: the route, then the
   * peer's VXLAN entries go (the route was replaced in place, so there is no gap
   * either way).
   */
  private program(key: string, p: VxlanPeer, choice: { path: PeerPath; reason?: string }, have = { neigh: false, fdb: false }): boolean {
    const { nl } = this.o;
    const index = this.link.index;
    const was = this.paths.get(key)?.path;
    this.wantRoute(key, p, choice.path);
    let ok: boolean;
    if (choice.path === 'direct') {
      ok = this.routes.apply(key);
      if (ok && was === 'vxlan') this.removeVxlanEntries(key, p);
    } else {
      ok =
        (have.neigh || this.ops.attempt('neigh replace', key, () => nl.neighReplace({ index, ip: p.vtepIp, mac: p.mac }))) &&
        (have.fdb || this.ops.attempt('fdb replace', key, () => nl.fdbReplace({ index, mac: p.mac, dst: p.dst }))) &&
        this.routes.apply(key);
    }
    if (ok) this.paths.set(key, p.dst, choice.path, choice.reason);
    return ok;
  }

  private removeVxlanEntries(key: string, p: VxlanPeer): void {
    const { nl } = this.o;
    const index = this.link.index;
    this.ops.attempt('fdb del', key, () => nl.fdbDel({ index, mac: p.mac, dst: p.dst }), true);
    this.ops.attempt('neigh del', key, () => nl.neighDel({ index, ip: p.vtepIp, mac: p.mac }), true);
  }

  /** The reverse order: route, FDB, neighbour (the route and neighbour only when the peer leaves). */
  private unprogram(key: string, p: VxlanPeer, leaving: boolean): void {
    const { nl } = this.o;
    const index = this.link.index;
    if (leaving) this.routes.drop(key);
    this.ops.attempt('fdb del', key, () => nl.fdbDel({ index, mac: p.mac, dst: p.dst }), true);
    if (leaving) this.ops.attempt('neigh del', key, () => nl.neighDel({ index, ip: p.vtepIp, mac: p.mac }), true);
  }

  /**
   * Lists what the kernel holds, removes what no peer wants and adds what is
   * missing, each peer on the path it should take now. Order: stale routes go;
   * missing entries and routes are added; only then do VXLAN entries no peer
   * wants go, so a peer just moved to a direct route kept its entries until
   * that route was in place.
   */
  private reconcile(): void {
    const { nl, network } = this.o;
    const index = this.link.index;
    const choices = new Map<string, { path: PeerPath; reason?: string }>();
    const byVtepIp = new Map<string, [string, VxlanPeer]>();
    const byMac = new Map<string, [string, VxlanPeer]>();
    for (const [key, p] of this.table.entries()) {
      const c = this.choosePath(key, p);
      choices.set(key, c);
      this.wantRoute(key, p, c.path);
      if (c.path !== 'vxlan') continue;
      byVtepIp.set(p.vtepIp, [key, p]);
      byMac.set(p.mac, [key, p]);
    }
    for (const key of this.routes.desiredKeys()) if (!this.table.get(key)) this.routes.forget(key);
    for (const key of this.paths.keys()) if (!this.table.get(key)) this.paths.delete(key);
    const okRoute = this.routes.prune();
    const okFdb = new Set<string>();
    const okNeigh = new Set<string>();
    const staleFdb: Fdb[] = [];
    const staleNeigh: Neigh[] = [];
    for (const f of nl.fdbList({ index })) {
      if (!f.dst) continue; // the kernel's own entries carry no remote
      const hit = byMac.get(f.mac);
      if (hit && hit[1].dst === f.dst) okFdb.add(hit[0]);
      else if (!hit) staleFdb.push(f);
    }
    for (const n of nl.neighList({ index, family: this.family })) {
      const hit = byVtepIp.get(n.ip);
      if (hit && n.mac === hit[1].mac && isPermanent(n.state)) okNeigh.add(hit[0]);
      else if (!hit && network.contains(n.ip)) staleNeigh.push(n);
    }
    this.dirty.clear();
    for (const [key, p] of this.table.entries()) {
      const c = choices.get(key)!;
      const inPlace = okRoute.has(key) && (c.path === 'direct' || (okFdb.has(key) && okNeigh.has(key)));
      if (inPlace) this.paths.set(key, p.dst, c.path, c.reason);
      else if (!this.program(key, p, c, { neigh: okNeigh.has(key), fdb: okFdb.has(key) })) this.dirty.add(key);
    }
    // A peer whose move to a direct route failed keeps its VXLAN entries (its old route still uses them).
    const keep = new Set<string>();
    for (const key of this.dirty) {
      const p = this.table.get(key);
      if (p) keep.add(p.mac).add(p.vtepIp);
    }
    for (const f of staleFdb) if (!keep.has(f.mac)) this.ops.attempt('fdb del (stale)', f.mac, () => nl.fdbDel({ index, mac: f.mac, dst: f.dst }), true);
    for (const n of staleNeigh) if (!keep.has(n.ip)) this.ops.attempt('neigh del (stale)', n.ip, () => nl.neighDel({ index, ip: n.ip, mac: n.mac ?? '00:00:00:00:00:00' }), true);
  }

  /** DirectRouting: each peer's path looked at again (the underlay's routes changed); movers are moved. */
  private repath(): void {
    for (const [key, p] of this.table.entries()) {
      const c = this.choosePath(key, p);
      const cur = this.paths.get(key);
      if (cur && cur.path === c.path) {
        this.paths.set(key, p.dst, c.path, c.reason);
        continue;
      }
      if (this.program(key, p, c)) this.dirty.delete(key);
      else this.dirty.add(key);
    }
  }

  async resync(full: boolean): Promise<void> {
    // Our own deletions show up here too; the extra reconcile they cause is a no-op.
    const ev = classifyNotifications(this.o.monitor?.poll(0) ?? [], { protocol: this.o.routeProtocol, device: this.link.index });
    if (ev.oursDeleted) full = true;
    const current = this.o.nl.linkByIndex(this.link.index);
    if (!current || current.name !== this.o.device || !current.up) {
      this.o.log.warn('VXLAN device missing or down; restoring it with all peers', { device: this.o.device });
      this.link = this.ensureDevice();
      this.deviceRecreated++;
      this.configureAddress();
      full = true;
    }
    if (full) {
      this.reconcile();
      return;
    }
    if (ev.underlayChanged && this.o.directRouting) this.repath();
    for (const key of [...this.dirty]) {
      const p = this.table.get(key);
      if (!p || this.program(key, p, this.choosePath(key, p))) this.dirty.delete(key);
    }
  }

  stats(): BackendStats {
    return {
      peersKnown: this.table.size,
      peersProgrammed: this.table.size - this.dirty.size,
      kernelErrors: this.ops.errors,
      invalidPeers: this.table.invalid,
      deviceRecreated: this.deviceRecreated,
      paths: this.paths.list(),
      pathChanges: this.paths.changes,
    };
  }

  async close(): Promise<void> {
    // Kernel state stays: a restarted agent adopts it without a gap in traffic.
  }
}

function isPermanent(state: number | undefined): boolean {
  return state !== undefined && (state & 0x80) !== 0; // NUD_PERMANENT
}
