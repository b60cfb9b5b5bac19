// The default backend: a kernel VXLAN VTEP, programmed over netlink with one
// neighbour, one FDB and one route entry per remote host (as flannel does):
//   ip neigh replace <peer subnet>.0 lladdr <peer VtepMAC> dev weft.1 nud permanent
//   bridge fdb replace <peer VtepMAC> dev weft.1 dst <peer PublicIP> self permanent
//   ip route replace <peer subnet> via <peer subnet>.0 dev weft.1 onlink
// The kernel is reconciled (list, diff, apply), never flushed, so a restarted
// agent does not interrupt traffic.
import type { Prefix } from '../../lib/ip.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Logger } from '../../daemon/logger.js';
import { RT_TABLE_MAIN } from '../../netlink/constants.js';
import { isNotFound, type Link, type NetlinkHandle, type Notification } from '../../netlink/index.js';
import { validVtepMac } from './vtep-mac.js';
import type { Backend, BackendStats } from '../backend.js';
import { PeerTable, type PeerChange } from '../peer-table.js';

export interface Underlay {
  readonly index: number;
  readonly name: string;
  readonly ip: string;
  readonly mtu: number;
}

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
  readonly underlay: Underlay;
  /** Backend.MTU from the network config; default underlay MTU - 50. */
  readonly mtu?: number;
}

/** VXLAN over IPv4 adds 50 bytes: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

export class VxlanPeer {
  constructor(
    readonly subnet: Prefix,
    readonly vtepIp: string, // <subnet>.0, the peer's VTEP address
    readonly mac: string,
    readonly publicIp: string,
  ) {}
  equals(o: VxlanPeer): boolean {
    return this.subnet.equals(o.subnet) && this.mac === o.mac && this.publicIp === o.publicIp;
  }
}

/** Turns a lease into a VXLAN peer, or says why it cannot be one. */
export function parseVxlanPeer(lease: Lease, vni: number, ownPublicIp: string): { peer: VxlanPeer } | { error: string } {
  const a = lease.attrs;
  if (a.backendType !== 'vxlan') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "vxlan"` };
  const data = a.backendData;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { error: `BackendData must be an object with VtepMAC, got ${JSON.stringify(data)}` };
  }
  const d = data as Record<string, unknown>;
  if (!validVtepMac(d.VtepMAC)) return { error: `VtepMAC ${JSON.stringify(d.VtepMAC)} is not a unicast MAC address` };
  if (d.VNI !== undefined && d.VNI !== vni) return { error: `VNI ${JSON.stringify(d.VNI)} differs from this network's VNI ${vni}` };
  if (a.publicIP === ownPublicIp) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  return { peer: new VxlanPeer(lease.subnet, lease.subnet.address(0), d.VtepMAC.toLowerCase(), a.publicIP) };
}

export class VxlanBackend implements Backend {
  readonly type = 'vxlan';
  readonly mtu: number;
  readonly leaseData: { VNI: number; VtepMAC: string };
  private readonly table: PeerTable<VxlanPeer>;
  private readonly dirty = new Set<string>();
  private link!: Link;
  private own?: Lease;
  private kernelErrors = 0;
  private deviceRecreated = 0;

  constructor(private readonly o: VxlanOptions) {
    this.mtu = o.mtu ?? o.underlay.mtu - VXLAN_OVERHEAD;
    this.leaseData = { VNI: o.vni, VtepMAC: o.mac };
    this.table = new PeerTable((l) => parseVxlanPeer(l, o.vni, o.underlay.ip), o.log);
    this.link = this.ensureDevice();
  }

  /** Creates the VTEP, or adopts an existing one whose parameters match. */
  private ensureDevice(): Link {
    const { nl, log } = this.o;
    let link = nl.linkByName(this.o.device);
    if (link) {
      const v = link.vxlan;
      const why =
        link.kind !== 'vxlan' ? `kind ${link.kind ?? 'none'}` :
        !v ? 'no VXLAN attributes' :
        v.id !== this.o.vni ? `VNI ${v.id}` :
        v.port !== this.o.port ? `port ${v.port}` :
        v.local !== this.o.underlay.ip ? `local ${v.local ?? 'unset'}` :
        v.linkIndex !== this.o.underlay.index ? `underlay index ${v.linkIndex ?? 'unset'}` :
        v.learning ? 'learning on' : undefined;
      if (why) {
        log.warn('replacing VXLAN device with different parameters', { device: this.o.device, found: why });
        nl.linkDel(link.index); // ip link del weft.1
        link = undefined;
      }
    }
    if (!link) {
      // ip link add weft.1 type vxlan id 1 local 192.0.2.11 dev eth0 dstport 8472 nolearning
      link = nl.linkAdd({
        kind: 'vxlan',
        name: this.o.device,
        vni: this.o.vni,
        port: this.o.port,
        local: this.o.underlay.ip,
        linkIndex: this.o.underlay.index,
        learning: false,
        mtu: this.mtu,
        mac: this.o.mac,
      });
      log.info('created VXLAN device', { device: this.o.device, vni: this.o.vni, mac: this.o.mac, mtu: this.mtu });
    } else {
      if (link.mac !== this.o.mac) nl.linkSetHwAddr(link.index, this.o.mac);
      if (link.mtu !== this.mtu) nl.linkSetMtu(link.index, this.mtu);
    }
    if (!link.up) nl.linkSetUp(link.index); // ip link set weft.1 up
    return link;
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
      for (const c of changes) {
        const p = c.after ?? c.before!;
        this.o.log.info(c.after ? (c.before ? 'peer updated' : 'peer added') : 'peer removed', { subnet: c.subnet, publicIp: p.publicIp, vtepMac: p.mac });
      }
      this.reconcile();
      return;
    }
    for (const c of changes) this.applyChange(c);
  }

  private applyChange(c: PeerChange<VxlanPeer>): void {
    const { log } = this.o;
    if (c.before && (!c.after || c.after.mac !== c.before.mac)) {
      this.unprogram(c.before, !c.after);
    }
    if (c.after) {
      if (this.program(c.after)) {
        this.dirty.delete(c.subnet);
        log.info(c.before ? 'peer updated' : 'peer added', { subnet: c.subnet, publicIp: c.after.publicIp, vtepMac: c.after.mac });
      } else {
        this.dirty.add(c.subnet);
      }
    } else {
      this.dirty.delete(c.subnet);
      log.info('peer removed', { subnet: c.subnet, publicIp: c.before!.publicIp });
    }
  }

  /** Runs one kernel operation; a failure is counted, logged with its op and errno, and returned as false. */
  private attempt(what: string, subnet: string, fn: () => void, tolerateMissing = false): boolean {
    try {
      fn();
      return true;
    } catch (e) {
      if (tolerateMissing && isNotFound(e)) return true;
      this.kernelErrors++;
      this.o.log.error('kernel operation failed; will retry', { op: what, subnet, err: e });
      return false;
    }
  }

  private program(p: VxlanPeer): boolean {
    const { nl } = this.o;
    const index = this.link.index;
    const s = p.subnet.toString();
    return (
      this.attempt('neigh replace', s, () => nl.neighReplace({ index, ip: p.vtepIp, mac: p.mac })) &&
      this.attempt('fdb replace', s, () => nl.fdbReplace({ index, mac: p.mac, dst: p.publicIp })) &&
      this.attempt('route replace', s, () => nl.routeReplace({ dst: s, gateway: p.vtepIp, index, onlink: true }))
    );
  }

  private unprogram(p: VxlanPeer, withRoute: boolean): void {
    const { nl } = this.o;
    const index = this.link.index;
    const s = p.subnet.toString();
    if (withRoute) this.attempt('route del', s, () => nl.routeDel({ dst: s, gateway: p.vtepIp, index, onlink: true }), true);
    this.attempt('fdb del', s, () => nl.fdbDel({ index, mac: p.mac, dst: p.publicIp }), true);
    if (withRoute) this.attempt('neigh del', s, () => nl.neighDel({ index, ip: p.vtepIp, mac: p.mac }), true);
  }

  /** Lists what the kernel holds on the device, removes what no peer wants and adds what is missing. */
  private reconcile(): void {
    const { nl, network } = this.o;
    const index = this.link.index;
    const byVtepIp = new Map<string, VxlanPeer>();
    const byMac = new Map<string, VxlanPeer>();
    const byDst = new Map<string, VxlanPeer>();
    for (const p of this.table.values()) {
      byVtepIp.set(p.vtepIp, p);
      byMac.set(p.mac, p);
      byDst.set(p.subnet.toString(), p);
    }
    const okRoute = new Set<string>();
    const okFdb = new Set<string>();
    const okNeigh = new Set<string>();
    for (const r of nl.routeList({ index, family: 4, table: RT_TABLE_MAIN })) {
      if (r.table !== RT_TABLE_MAIN) continue; // the kernel's own local-table routes for our address
      const p = byDst.get(r.dst);
      if (p && r.gateway === p.vtepIp) okRoute.add(r.dst);
      else if (!p) this.attempt('route del (stale)', r.dst, () => nl.routeDel({ dst: r.dst, gateway: r.gateway, index }), true);
    }
    for (const f of nl.fdbList({ index })) {
      if (!f.dst) continue; // the kernel's own entries carry no remote
      const p = byMac.get(f.mac);
      if (p && p.publicIp === f.dst) okFdb.add(p.subnet.toString());
      else if (!p) this.attempt('fdb del (stale)', f.mac, () => nl.fdbDel({ index, mac: f.mac, dst: f.dst }), true);
    }
    for (const n of nl.neighList({ index, family: 4 })) {
      const p = byVtepIp.get(n.ip);
      if (p && n.mac === p.mac && isPermanent(n.state)) okNeigh.add(p.subnet.toString());
      else if (!p && network.contains(n.ip)) this.attempt('neigh del (stale)', n.ip, () => nl.neighDel({ index, ip: n.ip, mac: n.mac ?? '00:00:00:00:00:00' }), true);
    }
    this.dirty.clear();
    for (const [s, p] of this.table.entries()) {
      if (okRoute.has(s) && okFdb.has(s) && okNeigh.has(s)) continue;
      if (!this.program(p)) this.dirty.add(s);
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
    for (const s of [...this.dirty]) {
      const p = this.table.get(s);
      if (!p || this.program(p)) this.dirty.delete(s);
    }
  }

  stats(): BackendStats {
    return {
      peersKnown: this.table.size,
      peersProgrammed: this.table.size - this.dirty.size,
      kernelErrors: this.kernelErrors,
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
