// Kernel VXLAN: one device (the VTEP), programmed over netlink with one
// neighbour, one FDB and one route entry per remote host (as flannel does):
//   ip neigh replace <peer subnet>.0 lladdr <peer VtepMAC> dev weft.1 nud permanent
//   bridge fdb replace <peer VtepMAC> dev weft.1 dst <peer PublicIP> self permanent
//   ip route replace <peer subnet> via <peer subnet>.0 dev weft.1 onlink
// The routes are kept by the shared RouteReconciler; the neighbour and FDB
// entries are reconciled here. The kernel is reconciled (list, diff, apply),
// never flushed, so a restarted agent does not interrupt traffic.
import type { Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import type { Link, NetlinkHandle, Notification } from '../../netlink/index.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { KernelOps } from '../kernel-ops.js';
import { PeerTable, type PeerChange } from '../peer-table.js';
import { RouteReconciler } from '../route-reconciler.js';
import { ensureVxlanDevice } from './device.js';
import { parseVxlanPeer, type VxlanPeer } from './peer.js';

/** The netlink operations the VXLAN backend uses (a NetlinkHandle; a fake in unit tests). */
export type VxlanNetlink = Pick<
  NetlinkHandle,
  | 'linkByName' | 'linkByIndex' | 'linkAdd' | 'linkDel' | 'linkSetUp' | 'linkSetMtu' | 'linkSetHwAddr'
  | 'addrList' | 'addrReplace' | 'addrDel'
  | 'routeList' | 'routeReplace' | 'routeDel'
  | 'neighList' | 'neighReplace' | 'neighDel'
  | 'fdbList' | 'fdbReplace' | 'fdbDel'
>;

/** Kernel notifications (a NetlinkMonitor): a deletion on our device triggers a full reconcile at once. */
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
  /** Its v4 address is the VTEP's local address. */
  readonly underlay: Underlay & { readonly v4: string };
  /** Backend.MTU from the network config; default underlay MTU - 50. */
  readonly mtu?: number;
}

/** VXLAN over IPv4 adds 50 bytes: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

export class VxlanBackend implements Backend {
  readonly type = 'vxlan';
  readonly mtu: number;
  readonly leaseData: { VNI: number; VtepMAC: string };
  private readonly table: PeerTable<VxlanPeer>;
  private readonly ops: KernelOps;
  private readonly routes: RouteReconciler;
  /** Peers whose entries are not all in place (a failed operation); retried every second. */
  private readonly dirty = new Set<string>();
  private link!: Link;
  private own?: Lease;
  private deviceRecreated = 0;

  constructor(private readonly o: VxlanOptions) {
    this.mtu = o.mtu ?? o.underlay.mtu - VXLAN_OVERHEAD;
    this.leaseData = { VNI: o.vni, VtepMAC: o.mac };
    this.ops = new KernelOps(o.log);
    this.routes = new RouteReconciler(o.nl, this.ops, { family: 4, scope: () => ({ index: this.link.index }) });
    this.table = new PeerTable((l) => parseVxlanPeer(l, o.vni, o.underlay), o.log);
    this.link = this.ensureDevice();
  }

  private ensureDevice(): Link {
    const { o } = this;
    return ensureVxlanDevice(o.nl, o.log, { name: o.device, vni: o.vni, port: o.port, local: o.underlay.v4, underlayIndex: o.underlay.index, mtu: this.mtu, mac: o.mac });
  }

  async configure(own: Lease): Promise<void> {
    this.own = own;
    this.configureAddress();
  }

  // ip addr replace <subnet>.0/32 dev weft.1, and drop addresses of an old lease
  private configureAddress(): void {
    if (!this.own) return;
    const { nl } = this.o;
    const want = this.own.subnet.address(0);
    for (const a of nl.addrList({ index: this.link.index, family: 4 })) {
      if (a.address !== want || a.prefixLen !== 32) nl.addrDel({ index: this.link.index, address: a.address, prefixLen: a.prefixLen });
    }
    nl.addrReplace({ index: this.link.index, address: want, prefixLen: 32 });
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
    this.o.log.info(what, { subnet: c.subnet, publicIp: p.publicIp.v4, ...(c.after ? { vtepMac: p.mac } : {}) });
  }

  private applyChange(c: PeerChange<VxlanPeer>): void {
    if (c.before && (!c.after || c.after.mac !== c.before.mac)) {
      this.unprogram(c.subnet, c.before, !c.after);
    }
    if (c.after) {
      if (this.program(c.subnet, c.after)) {
        this.dirty.delete(c.subnet);
        this.logChange(c);
      } else {
        this.dirty.add(c.subnet);
      }
    } else {
      this.dirty.delete(c.subnet);
      this.logChange(c);
    }
  }

  /** The peer's route as the reconciler keeps it. */
  private wantRoute(key: string, p: VxlanPeer): void {
    this.routes.want(key, { dst: p.subnet.toString(), gateway: p.vtepIp, index: this.link.index, onlink: true });
  }

  /** Neighbour, then FDB, then route: no packet is routed to the device before the peer's MAC and address are known. */
  private program(key: string, p: VxlanPeer): boolean {
    const { nl } = this.o;
    const index = this.link.index;
    this.wantRoute(key, p);
    return (
      this.ops.attempt('neigh replace', key, () => nl.neighReplace({ index, ip: p.vtepIp, mac: p.mac })) &&
      this.ops.attempt('fdb replace', key, () => nl.fdbReplace({ index, mac: p.mac, dst: p.publicIp.v4! })) &&
      this.routes.apply(key)
    );
  }

  /** The reverse order: route, FDB, neighbour (the route and neighbour only when the peer leaves). */
  private unprogram(key: string, p: VxlanPeer, leaving: boolean): void {
    const { nl } = this.o;
    const index = this.link.index;
    if (leaving) this.routes.drop(key);
    this.ops.attempt('fdb del', key, () => nl.fdbDel({ index, mac: p.mac, dst: p.publicIp.v4! }), true);
    if (leaving) this.ops.attempt('neigh del', key, () => nl.neighDel({ index, ip: p.vtepIp, mac: p.mac }), true);
  }

  /** Lists what the kernel holds on the device, removes what no peer wants and adds what is missing. */
  private reconcile(): void {
    const { nl, network } = this.o;
    const index = this.link.index;
    const byVtepIp = new Map<string, [string, VxlanPeer]>();
    const byMac = new Map<string, [string, VxlanPeer]>();
    for (const [key, p] of this.table.entries()) {
      byVtepIp.set(p.vtepIp, [key, p]);
      byMac.set(p.mac, [key, p]);
      this.wantRoute(key, p);
    }
    for (const key of this.routes.desiredKeys()) if (!this.table.get(key)) this.routes.forget(key);
    const okRoute = this.routes.prune();
    const okFdb = new Set<string>();
    const okNeigh = new Set<string>();
    for (const f of nl.fdbList({ index })) {
      if (!f.dst) continue; // the kernel's own entries carry no remote
      const hit = byMac.get(f.mac);
      if (hit && hit[1].publicIp.v4 === f.dst) okFdb.add(hit[0]);
      else if (!hit) this.ops.attempt('fdb del (stale)', f.mac, () => nl.fdbDel({ index, mac: f.mac, dst: f.dst }), true);
    }
    for (const n of nl.neighList({ index, family: 4 })) {
      const hit = byVtepIp.get(n.ip);
      if (hit && n.mac === hit[1].mac && isPermanent(n.state)) okNeigh.add(hit[0]);
      else if (!hit && network.contains(n.ip)) this.ops.attempt('neigh del (stale)', n.ip, () => nl.neighDel({ index, ip: n.ip, mac: n.mac ?? '00:00:00:00:00:00' }), true);
    }
    this.dirty.clear();
    for (const [key, p] of this.table.entries()) {
      if (okRoute.has(key) && okFdb.has(key) && okNeigh.has(key)) continue;
      if (!this.program(key, p)) this.dirty.add(key);
    }
  }

  /** True when someone (not only us) removed something from our device since the last look. */
  private somethingDeleted(): boolean {
    const notes = this.o.monitor?.poll(0) ?? [];
    const index = this.link.index;
    return notes.some(
      (n) =>
        n.kind === 'overrun' ||
        (n.kind === 'route' && n.action === 'del' && n.route.index === index) ||
        (n.kind === 'neigh' && n.action === 'del' && n.neigh.index === index) ||
        (n.kind === 'fdb' && n.action === 'del' && n.fdb.index === index) ||
        (n.kind === 'link' && n.action === 'del' && n.link.index === index),
    );
  }

  async resync(full: boolean): Promise<void> {
    // Our own deletions show up here too; the extra reconcile they cause is a no-op.
    if (this.somethingDeleted()) full = true;
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
    for (const key of [...this.dirty]) {
      const p = this.table.get(key);
      if (!p || this.program(key, p)) this.dirty.delete(key);
    }
  }

  stats(): BackendStats {
    return {
      peersKnown: this.table.size,
      peersProgrammed: this.table.size - this.dirty.size,
      kernelErrors: this.ops.errors,
      invalidPeers: this.table.invalid,
      deviceRecreated: this.deviceRecreated,
    };
  }

  async close(): Promise<void> {
    // Kernel state stays: a restarted agent adopts it without a gap in traffic.
  }
}

function isPermanent(state: number | undefined): boolean {
  return state !== undefined && (state & 0x80) !== 0; // NUD_PERMANENT
}
