// Kernel VXLAN: one device (the VTEP), programmed over netlink with one neighbour, one FDB
// and one route entry per remote host (as flannel does):
//   ip neigh replace <peer subnet>.0 lladdr <peer VtepMAC> dev weft.1 nud permanent
//   bridge fdb replace <peer VtepMAC> dev weft.1 dst <peer PublicIP> self permanent
//   ip nexthop add id <N> via <peer subnet>.0 dev weft.1 onlink proto 87
//   ip route replace <peer subnet> nhid <N> proto 87
// (IPv4 routes through nexthop objects, see route-reconciler.ts; plain `via` routes for IPv6)
// With DirectRouting, a peer whose PublicIP the kernel reaches on-link through the underlay
// gets a plain route instead, and no VXLAN entries:
//   ip route replace <peer subnet> via <peer PublicIP> dev <underlay> proto 87   (IPv4: nhid <N>)
// re-evaluated when the underlay's routes change and on every full resync; a move between the
// two forms adds the new one before removing the old (the route is replaced in place), so
// traffic never stops. With a fallback (backend/fallback/), a peer whose VXLAN path fails is
// routed into the udp path's TUN instead, its neighbour and FDB entries kept:
//   ip route replace <peer subnet> dev weft-tun proto 87
// The routes are kept by the shared RouteReconciler; the neighbour and FDB entries are
// reconciled here. The kernel is reconciled (list, diff, apply), never flushed, so a restarted
// agent does not interrupt traffic. Per-peer entries go in batches (many per sendmsg, the
// event loop runs between chunks); apply, resync and the rest run one at a time, but a full
// reconcile lets lease applies go first between its slices (../reconcile-run.ts).
// A dual-stack network runs a second instance with family 6 (flannel's flannel-v6.<VNI>, here
// weft-v6.<VNI>): its own device and MAC, local = PublicIPv6, address <v6 subnet>/128, and per
// peer the same three entries from the peer's IPv6 subnet, BackendV6Data and PublicIPv6:
//   ip -6 neigh replace <peer v6 subnet>:: lladdr <V6 VtepMAC> dev weft-v6.1 nud permanent
//   bridge fdb replace <V6 VtepMAC> dev weft-v6.1 dst <PublicIPv6> self permanent
//   ip -6 route replace <peer v6 subnet> via <peer v6 subnet>:: dev weft-v6.1 onlink proto 87
import { Prefix, type IpFamily } from '../../lib/ip.js';
import { Slicer } from '../../lib/backoff.js';
import { Serial } from '../../lib/serial.js';
import { trace } from '../../lib/trace.js';
import {
  fdbRequest, IFA_F_NODAD, neighDelRequest, neighReplaceRequest, RTM_DELLINK, RTM_DELNEIGH, RTM_DELNEXTHOP, RTM_DELROUTE, RTM_NEWROUTE,
  type Link,
} from '../../netlink/index.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { directRoute, lookupNextHop } from '../direct-route.js';
import { type KernelOp, KernelOps } from '../kernel-ops.js';
import { PeerPaths } from '../peer-paths.js';
import { familyKey, PeerTable, logPeerChanges, type PeerChange } from '../peer-table.js';
import { classifyNotifications } from '../route-events.js';
import { RouteReconciler } from '../route-reconciler.js';
import { ReconcileRuns, Superseded, type ReconcileRun } from '../reconcile-run.js';
import { ensureVxlanDevice } from './device.js';
import { diffEntries, listEntries, staleEntryOps, type KernelSnapshot } from './kernel-entries.js';
import { leaseVtepMac, parseVxlanPeer, type VxlanPeer } from './peer.js';
import { type PathChoice, VXLAN6_OVERHEAD, VXLAN_OVERHEAD, type VxlanOptions } from './options.js';

export type { FallbackRouting, PathChoice, VxlanMonitor, VxlanNetlink, VxlanOptions } from './options.js';
export { VXLAN_OVERHEAD, VXLAN6_OVERHEAD } from './options.js';

const LINK_LOCAL = Prefix.parse('fe80::/10');

const isDeletion = (type: number) => type === RTM_DELROUTE || type === RTM_DELNEIGH || type === RTM_DELLINK || type === RTM_DELNEXTHOP;
/** With DirectRouting, route additions matter too: the underlay's routing may have changed. */
const isRouteEvent = (type: number) => isDeletion(type) || type === RTM_NEWROUTE;

type Choice = PathChoice;
/** Peers per batch of a full reconcile's repairs: a lease put waits for one such batch at most (~400 requests). */
const RECONCILE_PEERS = 128;
/** Peers per batch of a lease burst's new peers (~4000 requests; each batch is sent in SLICE_MS chunks). */
const APPLY_PEERS = 1000;
/** A peer whose entries a batch programs, and the path it takes. */
type Programmed = { key: string; p: VxlanPeer; choice: Choice };

export class VxlanBackend implements Backend {
  readonly type = 'vxlan';
  readonly mtu: number;
  private readonly table: PeerTable<VxlanPeer>;
  private readonly ops: KernelOps;
  private readonly routes: RouteReconciler;
  private readonly serial = new Serial();
  /** Full reconciles, which let applies run between their slices (reconcile-run.ts). */
  private readonly runs = new ReconcileRuns(this.serial);
  private readonly paths: PeerPaths;
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

  private readonly family: IpFamily;

  constructor(private readonly o: VxlanOptions) {
    this.family = o.family ?? 4;
    this.mtu = o.mtu ?? o.underlay.mtu - (this.family === 4 ? VXLAN_OVERHEAD : VXLAN6_OVERHEAD);
    this.underlay = o.underlay;
    this.mac = o.macFor(this.local);
    this.ops = new KernelOps(o.log);
    // Ours: routes with weft's protocol in the Network (vxlan and direct forms), and anything on the device (an older weft's proto boot routes).
    this.routes = new RouteReconciler(o.nl, this.ops, { family: this.family, scope: () => ({ protocol: o.routeProtocol, within: o.network, device: this.link.index }) });
    this.table = new PeerTable((l) => parseVxlanPeer(l, o.vni, this.underlay, this.mac, this.family), o.log, familyKey(this.family));
    this.paths = new PeerPaths(o.log);
    this.link = this.ensureDevice();
  }

  /** The VTEP's local underlay address (IPv4, or IPv6 for the IPv6 device). */
  private get local(): string {
    const ip = this.family === 4 ? this.underlay.v4 : this.underlay.v6;
    if (!ip) throw new TypeError('the IPv6 VXLAN device needs the underlay\'s IPv6 address');
    return ip;
  }

  get leaseData(): { VNI: number; VtepMAC: string } {
    return { VNI: this.o.vni, VtepMAC: this.mac };
  }

  private ensureDevice(): Link {
    const { o } = this;
    return ensureVxlanDevice(o.nl, o.log, { name: o.device, vni: o.vni, port: o.port, local: this.local, underlayIndex: this.underlay.index, mtu: this.mtu, mac: this.mac });
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

  /** The underlay's address changed: the device is remade with the new local address (and the MAC derived from it), then every peer is programmed again. */
  setUnderlay(u: Underlay & { readonly v4: string }): Promise<void> {
    return this.serial.run(async () => {
      this.underlay = u;
      this.mac = this.o.macFor(this.family === 4 ? u.v4 : u.v6 ?? this.local);
      this.link = this.ensureDevice();
      this.configureAddress();
      await this.reconcileNow();
    });
  }

  apply(batch: LeaseBatch): Promise<void> {
    return this.serial.run(async () => {
      const changes = await this.table.applySliced(batch);
      logPeerChanges(this.o.log, changes, (p) => ({ publicIp: p.dst, vtepMac: p.mac }));
      if (batch.snapshot) return this.reconcileNow();
      try {
        await this.applyChanges(changes);
      } catch (e) {
        this.needsReconcile = true; // the next resync reconciles everything
        throw e;
      }
    });
  }

  /**
   * Every old entry goes before any new one is made (a MAC may move from one peer to another
   * within a batch): all removals first, then the new peers APPLY_PEERS per batch, their requests
   * made just before they go (10,000 peers' 40,000 requests held at once were copied and promoted
   * by young-generation collections while they waited). A failed removal leaves its peer dirty.
   */
  private async applyChanges(changes: readonly PeerChange<VxlanPeer>[]): Promise<void> {
    const removals: KernelOp[] = [];
    const slicer = new Slicer();
    for (const c of changes) {
      if (slicer.due()) await slicer.next();
      if (c.before) this.runs.touch(c.subnet, c.before.mac, c.before.vtepIp);
      if (c.after) this.runs.touch(c.subnet, c.after.mac, c.after.vtepIp);
      if (c.before && (!c.after || c.after.mac !== c.before.mac)) this.unprogramOps(removals, c.subnet, c.before, !c.after);
      if (!c.after) {
        this.dirty.delete(c.subnet);
        this.paths.delete(c.subnet);
      }
    }
    const unremoved = await this.runProgram(removals, []);
    const ops: KernelOp[] = [];
    const programmed: Programmed[] = [];
    for (const c of changes) {
      if (!c.after) continue;
      if (slicer.due()) await slicer.next();
      const choice = this.choosePath(c.subnet, c.after);
      this.programOps(ops, c.subnet, c.after, choice);
      programmed.push({ key: c.subnet, p: c.after, choice });
      if (programmed.length < APPLY_PEERS) continue;
      await this.runProgram(ops.splice(0), programmed.splice(0), unremoved);
    }
    await this.runProgram(ops, programmed, unremoved);
  }

  /**
   * The path a peer takes now: direct when DirectRouting is on and the kernel
   * reaches its PublicIP on-link through the underlay (flannel's
   * DirectRouting()), else vxlan. When the lookup itself fails, the peer
   * keeps the path it has.
   */
  private choosePath(key: string, p: VxlanPeer): Choice {
    const c = this.chooseDirect(key, p);
    return c.path === 'vxlan' && this.o.fallback ? this.o.fallback.choose(key) : c;
  }

  private chooseDirect(key: string, p: VxlanPeer): Choice {
    if (!this.o.directRouting) return { path: 'vxlan' };
    const hop = lookupNextHop(this.ops, this.o.nl, this.underlay, key, p.dst);
    if (!hop) {
      const cur = this.paths.get(key);
      // (a udp peer is a vxlan one here: the fallback decides between the two)
      return cur && cur.path !== 'skipped' ? { path: cur.path === 'direct' ? 'direct' : 'vxlan', ...(cur.reason ? { reason: cur.reason } : {}) } : { path: 'vxlan', reason: 'route lookup failed' };
    }
    return hop.onLink ? { path: 'direct' } : { path: 'vxlan', reason: hop.reason };
  }

  /** The peer's route in the form of its path, as the reconciler keeps it. */
  private wantRoute(key: string, p: VxlanPeer, c: Choice): void {
    if (c.path === 'direct') this.routes.want(key, directRoute(p.subnet, p.dst, this.underlay));
    else if (c.path === 'udp') this.routes.want(key, { dst: p.subnet.toString(), index: c.index! });
    else this.routes.want(key, { dst: p.subnet.toString(), gateway: p.vtepIp, index: this.link.index, onlink: true });
  }

  /**
   * vxlan: neighbour, then FDB, then route (no packet is routed to the device
   * before the peer's MAC and address are known). direct: the route only; the
   * peer's VXLAN entries go after it is in place (runProgram), so there is no
   * gap either way.
   */
  private programOps(ops: KernelOp[], key: string, p: VxlanPeer, choice: Choice, have = { neigh: false, fdb: false }): void {
    const index = this.link.index;
    // IPv6 out of the fallback's TUN: the kernel refuses an onlink gateway that a route to another
    // device covers ("Nexthop has invalid gateway or device mismatch"), and the peer's TUN route
    // covers its VTEP address, so that route goes first, in the same batch.
    const fromTun = this.family === 6 && choice.path !== 'udp' && this.paths.get(key)?.path === 'udp' ? this.routes.dropOps(key) : [];
    this.wantRoute(key, p, choice);
    if (choice.path !== 'direct') {
      if (!have.neigh) ops.push({ what: 'neigh replace', subject: key, req: neighReplaceRequest({ index, ip: p.vtepIp, mac: p.mac }) });
      if (!have.fdb) ops.push({ what: 'fdb replace', subject: key, req: fdbRequest('replace', { index, mac: p.mac, dst: p.dst }) });
    }
    ops.push(...fromTun, ...this.routes.replaceOps(key));
  }

  /** The peer's VXLAN entries, FDB then neighbour (it moved to a direct route, or left); the FDB entry alone when its MAC changed. */
  private vxlanEntryRemovals(ops: KernelOp[], key: string, p: VxlanPeer, neigh = true): void {
    const index = this.link.index;
    ops.push({ what: 'fdb del', subject: key, req: fdbRequest('del', { index, mac: p.mac, dst: p.dst }), tolerateMissing: true });
    if (neigh) ops.push({ what: 'neigh del', subject: key, req: neighDelRequest({ index, ip: p.vtepIp }), tolerateMissing: true });
  }

  /** The reverse order: route, FDB, neighbour (the route and neighbour only when the peer leaves). */
  private unprogramOps(ops: KernelOp[], key: string, p: VxlanPeer, leaving: boolean): void {
    if (leaving) ops.push(...this.routes.dropOps(key));
    this.vxlanEntryRemovals(ops, key, p, leaving);
  }

  /**
   * Runs ops as one batch; each peer of `programmed` is clean (and on its
   * path) when all of its entries succeeded. A peer that moved to a direct
   * route loses its VXLAN entries once that route is in place.
   */
  private async runProgram(ops: KernelOp[], programmed: readonly Programmed[], failedBefore?: ReadonlySet<string>): Promise<Set<string>> {
    const ok = await this.ops.run(this.o.nl, ops);
    const failed = new Set<string>(failedBefore);
    const routeOk = new Map<string, boolean>();
    ops.forEach((op, i) => {
      if (!ok[i]) failed.add(op.subject);
      if (op.what === 'route replace') routeOk.set(op.subject, ok[i]!);
    });
    for (const [key, r] of routeOk) this.routes.settle(key, r);
    const moved: KernelOp[] = [];
    const slicer = new Slicer();
    for (const { key, p, choice } of programmed) {
      if (slicer.due()) await slicer.next();
      if (failed.has(key)) {
        this.dirty.add(key);
        continue;
      }
      this.dirty.delete(key);
      const was = this.paths.get(key)?.path;
      if (choice.path === 'direct' && (was === 'vxlan' || was === 'udp')) this.vxlanEntryRemovals(moved, key, p);
      this.paths.set(key, p.dst, choice.path, choice.reason);
    }
    await this.ops.run(this.o.nl, moved);
    return failed;
  }

  /** The device's routes, FDB and neighbour entries, as reconcile() compares them. */
  private snapshot(): Promise<KernelSnapshot> {
    return listEntries(this.o.nl, this.routes, this.link.index, this.family);
  }

  /** A full reconcile inside the queue (a snapshot batch, a new underlay): lists the kernel first. */
  private reconcileNow(): Promise<void> {
    return this.runs.during((run) => this.reconcile(run));
  }

  /**
   * Lists what the kernel holds (unless `listed`), removes what no peer wants and adds what is
   * missing, each peer on the path it should take now. Order: stale routes go;
   * missing entries and routes are added; only then do VXLAN entries no peer
   * wants go, so a peer just moved to a direct route kept its entries until
   * that route was in place. Applies run at its pauses (reconcile-run.ts): it
   * leaves alone every peer, MAC and address they changed.
   */
  private async reconcile(run: ReconcileRun, listed?: KernelSnapshot): Promise<void> {
    this.needsReconcile = false; // set again by a failure from here on, this run's or an apply's meanwhile
    try {
      await this.reconcileSteps(run, listed);
    } catch (e) {
      if (e instanceof Superseded) return; // the newer one does the work
      this.needsReconcile = true;
      throw e;
    }
  }

  private async reconcileSteps(run: ReconcileRun, listed?: KernelSnapshot): Promise<void> {
    run.check();
    const { nl, network } = this.o;
    const index = this.link.index;
    const choices = new Map<string, Choice>();
    const byVtepIp = new Map<string, [string, VxlanPeer]>();
    const byMac = new Map<string, [string, VxlanPeer]>();
    for (const [key, p] of [...this.table.entries()]) {
      await run.step();
      if (this.table.get(key) !== p) continue; // changed meanwhile: the apply did it
      const c = this.choosePath(key, p);
      choices.set(key, c);
      this.wantRoute(key, p, c);
      if (c.path === 'direct') continue; // vxlan and udp peers keep their VXLAN entries (udp: the way back is one route replace)
      byVtepIp.set(p.vtepIp, [key, p]);
      byMac.set(p.mac, [key, p]);
    }
    for (const key of this.routes.desiredKeys()) if (!this.table.get(key)) this.routes.forget(key);
    for (const key of this.paths.keys()) if (!this.table.get(key)) this.paths.delete(key);
    // A listing of another device (made anew since) is no use: list again.
    const snap = listed && listed.index === index ? listed : await this.snapshot();
    const okRoute = await this.routes.prune(snap.routes, { slicer: run.slicer, pause: () => run.pause(), mayDelete: (dst) => run.free(dst) });
    const { okFdb, okNeigh, staleFdb, staleNeigh } = await diffEntries(snap, byMac, byVtepIp, network, () => run.step());
    const todo: Array<Programmed & { have: { neigh: boolean; fdb: boolean } }> = [];
    for (const [key, p] of [...this.table.entries()]) {
      await run.step();
      const c = choices.get(key);
      if (!c || !run.free(key)) continue;
      const inPlace = okRoute.has(key) && (c.path === 'direct' || (okFdb.has(key) && okNeigh.has(key)));
      if (inPlace) {
        this.paths.set(key, p.dst, c.path, c.reason);
        continue;
      }
      todo.push({ key, p, choice: c, have: { neigh: okNeigh.has(key), fdb: okFdb.has(key) } });
    }
    for (const key of [...this.dirty]) if (run.free(key)) this.dirty.delete(key);
    await this.programInChunks(run, todo);
    // A peer whose move to a direct route failed keeps its VXLAN entries (its old route still uses them).
    const keep = new Set<string>();
    for (const key of this.dirty) {
      const p = this.table.get(key);
      if (p) keep.add(p.mac).add(p.vtepIp);
    }
    await this.ops.run(nl, staleEntryOps(index, staleFdb, staleNeigh, (s) => !keep.has(s) && run.free(s)));
  }

  /**
   * A reconcile's programming, RECONCILE_PEERS peers per batch with applies let in between; each
   * peer's requests are made just before they go, and a peer an apply changed meanwhile is left to it.
   */
  private async programInChunks(run: ReconcileRun, todo: ReadonlyArray<Programmed & { have: { neigh: boolean; fdb: boolean } }>): Promise<void> {
    for (let i = 0; i < todo.length;) {
      const ops: KernelOp[] = [];
      const programmed: Programmed[] = [];
      for (; i < todo.length && programmed.length < RECONCILE_PEERS; i++) {
        const t = todo[i]!;
        if (!run.free(t.key)) continue;
        this.programOps(ops, t.key, t.p, t.choice, t.have);
        programmed.push(t);
      }
      await this.runProgram(ops, programmed);
      if (i < todo.length) await run.pause();
    }
  }

  /** Each peer's path looked at again now (the fallback decided a move), between other work. */
  refreshPaths(): Promise<void> {
    return this.serial.run(() => this.repath());
  }

  /** Each peer's path looked at again (DirectRouting: the underlay's routes changed; the fallback); movers are moved. */
  private async repath(): Promise<void> {
    const ops: KernelOp[] = [];
    const programmed: Programmed[] = [];
    const slicer = new Slicer();
    for (const [key, p] of [...this.table.entries()]) {
      if (slicer.due()) await slicer.next();
      const c = this.choosePath(key, p);
      const cur = this.paths.get(key);
      if (cur && cur.path === c.path && (c.path !== 'udp' || this.routes.wanted(key)?.index === c.index)) {
        this.paths.set(key, p.dst, c.path, c.reason);
        continue;
      }
      this.runs.touch(key, p.mac, p.vtepIp);
      this.programOps(ops, key, p, c);
      programmed.push({ key, p, choice: c });
    }
    await this.runProgram(ops, programmed);
  }

  /**
   * Every second: repairs what the monitor says was deleted, retries dirty peers; a full
   * reconcile when asked (every resync interval), after a deletion of ours, or after one
   * that did not finish. The full reconcile lists the kernel (10,000 peers: a few hundred ms)
   * without holding the queue, so a lease change applies meanwhile (put → route is not held
   * up); the diff and its batches then run in the queue but let applies go first at every
   * pause (reconcile-run.ts), and leave alone whatever those applies changed since the listing
   * began, so it never undoes a newer apply.
   */
  async resync(full: boolean): Promise<void> {
    const reconcile = await this.serial.run(() => this.check(full));
    if (!reconcile) return;
    trace('vxlan.reconcile', { family: this.family, peers: this.table.size });
    await this.runs.during(async (run) => {
      const listed = await this.snapshot();
      await this.serial.run(() => this.reconcile(run, listed));
    });
    trace('vxlan.reconciled', { family: this.family });
  }

  /** The part of resync() that holds the queue; true when a full reconcile is due. */
  private async check(full: boolean): Promise<boolean> {
    // Our own deletions show up here too; the extra reconcile they cause is a no-op.
    const notes = (await this.o.monitor?.drain(this.o.directRouting ? isRouteEvent : isDeletion)) ?? [];
    const ev = classifyNotifications(notes, { protocol: this.o.routeProtocol, device: this.link.index });
    if (ev.oursDeleted) full = true;
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
      return true;
    }
    if (ev.underlayChanged && this.o.directRouting) await this.repath();
    const ops: KernelOp[] = [];
    const retry: Programmed[] = [];
    for (const key of [...this.dirty]) {
      const p = this.table.get(key);
      if (!p) {
        this.dirty.delete(key);
        continue;
      }
      const choice = this.choosePath(key, p);
      this.runs.touch(key, p.mac, p.vtepIp);
      this.programOps(ops, key, p, choice);
      retry.push({ key, p, choice });
    }
    await this.runProgram(ops, retry);
    return false;
  }

  /** Whether this lease is a peer we program now, or was one when this agent started (its FDB entry was on the device). */
  holds(lease: Lease): boolean {
    const mac = leaseVtepMac(lease);
    if (!mac || this.family === 6) return false; // conflicts are judged on the IPv4 half
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
      paths: this.paths.list(),
      pathChanges: this.paths.changes,
    };
  }

  async close(): Promise<void> {
    // Kernel state stays: a restarted agent adopts it without a gap in traffic.
  }
}
