// Kernel VXLAN: one device (the VTEP), programmed over netlink with one
// neighbour, one FDB and one route entry per remote host (as flannel does):
//   ip neigh replace <peer subnet>.0 lladdr <peer VtepMAC> dev weft.1 nud permanent
//   bridge fdb replace <peer VtepMAC> dev weft.1 dst <peer PublicIP> self permanent
//   ip route replace <peer subnet> via <peer subnet>.0 dev weft.1 onlink
// The routes are kept by the shared RouteReconciler; the neighbour and FDB
// entries are reconciled here. The kernel is reconciled (list, diff, apply),
// never flushed, so a restarted agent does not interrupt traffic. Per-peer
// entries go in batches (many per sendmsg, the event loop runs between
// chunks); apply, resync and the rest run one at a time.
import type { Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import { Slicer } from '../../lib/backoff.js';
import { Serial } from '../../lib/serial.js';
import {
  fdbRequest, neighDelRequest, neighReplaceRequest, RTM_DELLINK, RTM_DELNEIGH, RTM_DELROUTE,
  type Link, type NetlinkHandle, type Notification,
} from '../../netlink/index.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { type KernelOp, KernelOps } from '../kernel-ops.js';
import { PeerTable, logPeerChanges, type PeerChange } from '../peer-table.js';
import { RouteReconciler } from '../route-reconciler.js';
import { ensureVxlanDevice } from './device.js';
import { leaseVtepMac, parseVxlanPeer, type VxlanPeer } from './peer.js';

/** The netlink operations the VXLAN backend uses (a NetlinkHandle; a fake in unit tests). */
export type VxlanNetlink = Pick<
  NetlinkHandle,
  | 'linkByName' | 'linkByIndex' | 'linkAdd' | 'linkDel' | 'linkSetUp' | 'linkSetMtu' | 'linkSetHwAddr'
  | 'addrList' | 'addrReplace' | 'addrDel'
  | 'routeDump' | 'neighDump' | 'fdbDump' | 'batch'
>;

/** Kernel notifications (a NetlinkMonitor): a deletion on our device triggers a full reconcile at once. */
export interface VxlanMonitor {
  drain(want?: (type: number) => boolean): Promise<Notification[]>;
}

export interface VxlanOptions {
  readonly nl: VxlanNetlink;
  readonly monitor?: VxlanMonitor;
  readonly log: Logger;
  readonly network: Prefix;
  readonly vni: number;
  readonly port: number;
  readonly device: string;
  /** The VTEP MAC for a public address (derived from it, so it changes with the address). */
  readonly macFor: (publicIp: string) => string;
  /** Its v4 address is the VTEP's local address. */
  readonly underlay: Underlay & { readonly v4: string };
  /** Backend.MTU from the network config; default underlay MTU - 50. */
  readonly mtu?: number;
}

/** VXLAN over IPv4 adds 50 bytes: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

const isDeletion = (type: number) => type === RTM_DELROUTE || type === RTM_DELNEIGH || type === RTM_DELLINK;

export class VxlanBackend implements Backend {
  readonly type = 'vxlan';
  readonly mtu: number;
  private readonly table: PeerTable<VxlanPeer>;
  private readonly ops: KernelOps;
  private readonly routes: RouteReconciler;
  private readonly serial = new Serial();
  /** Peers whose entries are not all in place (a failed operation); retried every second. */
  private readonly dirty = new Set<string>();
  /** A reconcile did not finish (a transient kernel error): the next resync does a full one. */
  private needsReconcile = false;
  private underlay: Underlay & { readonly v4: string };
  private mac: string;
  private link!: Link;
  private own?: Lease;
  private deviceRecreated = 0;
  /** MAC -> remote of the FDB entries the device held when this agent started (see holds()). */
  private startFdb?: Map<string, string>;

  constructor(private readonly o: VxlanOptions) {
    this.mtu = o.mtu ?? o.underlay.mtu - VXLAN_OVERHEAD;
    this.underlay = o.underlay;
    this.mac = o.macFor(o.underlay.v4);
    this.ops = new KernelOps(o.log);
    this.routes = new RouteReconciler(o.nl, this.ops, { family: 4, scope: () => ({ index: this.link.index }) });
    this.table = new PeerTable((l) => parseVxlanPeer(l, o.vni, this.underlay, this.mac), o.log);
    this.link = this.ensureDevice();
  }

  get leaseData(): { VNI: number; VtepMAC: string } {
    return { VNI: this.o.vni, VtepMAC: this.mac };
  }

  private ensureDevice(): Link {
    const { o } = this;
    return ensureVxlanDevice(o.nl, o.log, { name: o.device, vni: o.vni, port: o.port, local: this.underlay.v4, underlayIndex: this.underlay.index, mtu: this.mtu, mac: this.mac });
  }

  /** Addresses the device for our lease; called again (in place) when the lease moves to another subnet. */
  configure(own: Lease): Promise<void> {
    return this.serial.run(async () => {
      this.own = own;
      this.configureAddress();
      if (!this.startFdb) {
        this.startFdb = new Map();
        for (const f of await this.o.nl.fdbDump({ index: this.link.index })) if (f.dst) this.startFdb.set(f.mac, f.dst);
      }
    });
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

  /**
   * The underlay's address changed: the device is remade with the new local
   * address (and the MAC derived from it), then every peer is programmed again.
   */
  setUnderlay(u: Underlay & { readonly v4: string }): Promise<void> {
    return this.serial.run(async () => {
      this.underlay = u;
      this.mac = this.o.macFor(u.v4);
      this.link = this.ensureDevice();
      this.configureAddress();
      this.needsReconcile = true;
      await this.reconcile();
    });
  }

  apply(batch: LeaseBatch): Promise<void> {
    return this.serial.run(async () => {
      const changes = this.table.apply(batch);
      logPeerChanges(this.o.log, changes, (p) => ({ publicIp: p.publicIp.v4, vtepMac: p.mac }));
      // Set until the kernel work is done: if it throws, the next resync reconciles everything.
      this.needsReconcile = true;
      if (batch.snapshot) await this.reconcile();
      else await this.applyChanges(changes);
      this.needsReconcile = false;
    });
  }

  /** Every old entry goes before any new one is made: a MAC may move from one peer to another within a batch. */
  private async applyChanges(changes: readonly PeerChange<VxlanPeer>[]): Promise<void> {
    const removals: KernelOp[] = [];
    const ops: KernelOp[] = [];
    const programmed: string[] = [];
    const slicer = new Slicer();
    for (const c of changes) {
      if (slicer.due()) await slicer.next();
      if (c.before && (!c.after || c.after.mac !== c.before.mac)) this.unprogramOps(removals, c.subnet, c.before, !c.after);
      if (c.after) {
        this.programOps(ops, c.subnet, c.after);
        programmed.push(c.subnet);
      } else {
        this.dirty.delete(c.subnet);
      }
    }
    await this.runProgram([...removals, ...ops], programmed);
  }

  /** The peer's route as the reconciler keeps it. */
  private wantRoute(key: string, p: VxlanPeer): void {
    this.routes.want(key, { dst: p.subnet.toString(), gateway: p.vtepIp, index: this.link.index, onlink: true });
  }

  /** Neighbour, then FDB, then route: no packet is routed to the device before the peer's MAC and address are known. */
  private programOps(ops: KernelOp[], key: string, p: VxlanPeer): void {
    const index = this.link.index;
    this.wantRoute(key, p);
    ops.push({ what: 'neigh replace', subject: key, req: neighReplaceRequest({ index, ip: p.vtepIp, mac: p.mac }) });
    ops.push({ what: 'fdb replace', subject: key, req: fdbRequest('replace', { index, mac: p.mac, dst: p.publicIp.v4! }) });
    ops.push(this.routes.replaceOp(key)!);
  }

  /** The reverse order: route, FDB, neighbour (the route and neighbour only when the peer leaves). */
  private unprogramOps(ops: KernelOp[], key: string, p: VxlanPeer, leaving: boolean): void {
    const index = this.link.index;
    if (leaving) {
      const route = this.routes.dropOp(key);
      if (route) ops.push(route);
    }
    ops.push({ what: 'fdb del', subject: key, req: fdbRequest('del', { index, mac: p.mac, dst: p.publicIp.v4! }), tolerateMissing: true });
    if (leaving) ops.push({ what: 'neigh del', subject: key, req: neighDelRequest({ index, ip: p.vtepIp }), tolerateMissing: true });
  }

  /** Runs ops as one batch; each key of `programmed` is clean when all of its entries succeeded. */
  private async runProgram(ops: KernelOp[], programmed: readonly string[]): Promise<void> {
    const ok = await this.ops.run(this.o.nl, ops);
    const failed = new Set<string>();
    const routeOk = new Map<string, boolean>();
    ops.forEach((op, i) => {
      if (!ok[i]) failed.add(op.subject);
      if (op.what === 'route replace') routeOk.set(op.subject, ok[i]!);
    });
    for (const [key, r] of routeOk) this.routes.settle(key, r);
    for (const key of programmed) {
      if (failed.has(key)) this.dirty.add(key);
      else this.dirty.delete(key);
    }
  }

  /** Lists what the kernel holds on the device, removes what no peer wants and adds what is missing. */
  private async reconcile(): Promise<void> {
    const { nl, network } = this.o;
    const index = this.link.index;
    const byVtepIp = new Map<string, [string, VxlanPeer]>();
    const byMac = new Map<string, [string, VxlanPeer]>();
    const slicer = new Slicer();
    for (const [key, p] of this.table.entries()) {
      if (slicer.due()) await slicer.next();
      byVtepIp.set(p.vtepIp, [key, p]);
      byMac.set(p.mac, [key, p]);
      this.wantRoute(key, p);
    }
    for (const key of this.routes.desiredKeys()) if (!this.table.get(key)) this.routes.forget(key);
    const okRoute = await this.routes.prune();
    const okFdb = new Set<string>();
    const okNeigh = new Set<string>();
    const ops: KernelOp[] = [];
    for (const f of await nl.fdbDump({ index })) {
      if (slicer.due()) await slicer.next();
      if (!f.dst) continue; // the kernel's own entries carry no remote
      const hit = byMac.get(f.mac);
      if (hit && hit[1].publicIp.v4 === f.dst) okFdb.add(hit[0]);
      else if (!hit) ops.push({ what: 'fdb del (stale)', subject: f.mac, req: fdbRequest('del', { index, mac: f.mac, dst: f.dst }), tolerateMissing: true });
    }
    for (const n of await nl.neighDump({ index, family: 4 })) {
      if (slicer.due()) await slicer.next();
      const hit = byVtepIp.get(n.ip);
      if (hit && n.mac === hit[1].mac && isPermanent(n.state)) okNeigh.add(hit[0]);
      else if (!hit && network.contains(n.ip)) ops.push({ what: 'neigh del (stale)', subject: n.ip, req: neighDelRequest({ index, ip: n.ip }), tolerateMissing: true });
    }
    const programmed: string[] = [];
    for (const [key, p] of [...this.table.entries()]) {
      if (slicer.due()) await slicer.next();
      if (okRoute.has(key) && okFdb.has(key) && okNeigh.has(key)) continue;
      this.programOps(ops, key, p);
      programmed.push(key);
    }
    this.dirty.clear();
    await this.runProgram(ops, programmed);
  }

  /** True when someone (not only us) removed something from our device since the last look. */
  private async somethingDeleted(): Promise<boolean> {
    const notes = (await this.o.monitor?.drain(isDeletion)) ?? [];
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

  resync(full: boolean): Promise<void> {
    return this.serial.run(async () => {
      // Our own deletions show up here too; the extra reconcile they cause is a no-op.
      if (await this.somethingDeleted()) full = true;
      const current = this.o.nl.linkByIndex(this.link.index);
      if (!current || current.name !== this.o.device || !current.up) {
        this.o.log.warn('VXLAN device missing or down; restoring it with all peers', { device: this.o.device });
        this.link = this.ensureDevice();
        this.deviceRecreated++;
        this.configureAddress();
        full = true;
      }
      if (full || this.needsReconcile) {
        this.needsReconcile = true;
        await this.reconcile();
        this.needsReconcile = false;
        return;
      }
      const ops: KernelOp[] = [];
      const retry: string[] = [];
      for (const key of [...this.dirty]) {
        const p = this.table.get(key);
        if (!p) {
          this.dirty.delete(key);
          continue;
        }
        this.programOps(ops, key, p);
        retry.push(key);
      }
      await this.runProgram(ops, retry);
    });
  }

  /** Whether this lease is a peer we program now, or was one when this agent started (its FDB entry was on the device). */
  holds(lease: Lease): boolean {
    const mac = leaseVtepMac(lease);
    if (!mac) return false;
    const p = this.table.get(lease.subnet.toString());
    if (p) return p.mac === mac && p.publicIp.v4 === lease.attrs.publicIP;
    return this.startFdb?.get(mac) === lease.attrs.publicIP;
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
