// VXLAN with a per-peer fallback to the udp path (Backend.Fallback): this host
// runs both the VXLAN device (VxlanBackend) and the udp forwarder's TUN
// (UdpBackend, without its Network route), and publishes the fallback in its
// lease:
//   "BackendData": {"VNI": 1, "VtepMAC": "...", "Fallback": {"Type": "udp", "Port": 8285}}
// (flannel reads VNI and VtepMAC and ignores the rest). Peers whose lease
// carries the same fallback are probed over both paths (prober.ts) and routed
// by health.ts's rule: normally over VXLAN; into the TUN while VXLAN fails and
// udp answers. Their VXLAN entries stay either way (the way back is one route replace, no gap),
// and the udp forwarder knows every such peer, so a pair whose two hosts have
// not decided alike yet still talks. Peers without it (flannel, an older weft)
// are always reached over VXLAN. Both devices carry the overlay MTU, the
// smaller of the two paths', so a move never needs a new MTU.
// Dual stack (EnableIPv6): the udp path carries the peer's IPv6 subnet too (the
// TUN's IPv6 half, over the IPv4 underlay), and the IPv6 VXLAN device
// (weft-v6.<VNI>, its own VxlanBackend) asks v6Routing where a peer goes: the
// same path as its IPv4 half, decided by the same probes (one pair of hosts,
// one verdict; the probes run over IPv4).
import type { Lease, LeaseBatch, LeaseEvent } from '../../subnet-manager/index.js';
import { nullLogger, type Logger } from '../../lib/log.js';
import type { NetlinkHandle } from '../../netlink/index.js';
import { ensureSysctl } from '../../host/sysctl.js';
import type { Underlay } from '../../host/underlay.js';
import type { Backend, BackendStats } from '../backend.js';
import { PeerTable } from '../peer-table.js';
import { UdpBackend, type UdpOptions } from '../udp/backend.js';
import { VxlanBackend, type FallbackRouting, type PathChoice, type VxlanOptions } from '../vxlan/backend.js';
import { parseVxlanPeer } from '../vxlan/peer.js';
import { decide, DEFAULT_TUNING, type ProbeTuning } from './health.js';
import type { ProbePath } from './packet.js';
import { PathProber, type ProbePeer } from './prober.js';

export interface FallbackOptions {
  readonly vxlan: Omit<VxlanOptions, 'fallback' | 'mtu'>;
  readonly udp: Omit<UdpOptions, 'networkRoute' | 'mtu'>;
  /** Backend.MTU; default the smaller of the two paths' (underlay MTU - 50). */
  readonly mtu?: number;
  readonly tuning?: ProbeTuning;
  readonly log: Logger;
}

/** A peer as the fallback sees it: its VXLAN identity, and its fallback port or why it has none. */
class FallbackPeer {
  constructor(
    readonly probe: ProbePeer,
    readonly noFallback?: string,
    /** Its IPv6 subnet (a dual-stack network): the IPv6 VXLAN half's key for it. */
    readonly subnet6?: string,
  ) {}
  equals(o: FallbackPeer): boolean {
    const a = this.probe;
    const b = o.probe;
    return a.publicIp === b.publicIp && a.mac === b.mac && a.udpPort === b.udpPort && this.noFallback === o.noFallback && this.subnet6 === o.subnet6;
  }
}

/** The lease's Fallback, as this host can use it: its port, or why not. */
export function leaseFallback(lease: Lease, ownPort: number): { port: number } | { none: string } {
  const d = lease.attrs.backendData as Record<string, unknown> | null;
  const f = d?.Fallback as Record<string, unknown> | undefined;
  if (f === undefined || f === null) return { none: 'no fallback in its lease (flannel, or a weft without Backend.Fallback): always vxlan' };
  if (typeof f !== 'object' || f.Type !== 'udp' || !Number.isInteger(f.Port)) return { none: `unusable Fallback ${JSON.stringify(f)} in its lease: always vxlan` };
  if (f.Port !== ownPort) return { none: `its Fallback.Port ${String(f.Port)} differs from this host's ${ownPort}: always vxlan` };
  return { port: f.Port as number };
}

export class FallbackBackend implements Backend, FallbackRouting {
  readonly type = 'vxlan';
  readonly mtu: number;
  private readonly vxlan: VxlanBackend;
  private readonly udp: UdpBackend;
  private readonly table: PeerTable<FallbackPeer>;
  private readonly prober: PathProber;
  private readonly tuning: ProbeTuning;
  private readonly nl: Pick<NetlinkHandle, 'linkByName'>;
  /** The path each fallback peer is on (absent: vxlan) and why. */
  private readonly decided = new Map<string, { path: ProbePath; reason?: string }>();
  private tunIndex?: number;
  private deviceError = '';
  /** Dual stack: the IPv6 VXLAN half (attachV6), and its peers' keys (IPv6 subnets) -> their IPv4 keys. */
  private v6?: VxlanBackend;
  private v4KeyOf6 = new Map<string, string>();
  /** FallbackRouting for the IPv6 VXLAN half: a peer's IPv6 subnet takes the path its IPv4 half is on. */
  readonly v6Routing: FallbackRouting = {
    choose: (key6) => {
      const k = this.v4KeyOf6.get(key6);
      return k ? this.choose(k) : { path: 'vxlan' };
    },
  };

  constructor(private readonly o: FallbackOptions) {
    this.tuning = o.tuning ?? DEFAULT_TUNING;
    this.mtu = o.mtu ?? o.vxlan.underlay.mtu - 50;
    this.nl = o.vxlan.nl;
    this.vxlan = new VxlanBackend({ ...o.vxlan, mtu: this.mtu, fallback: this });
    this.udp = new UdpBackend({ ...o.udp, mtu: this.mtu, networkRoute: false });
    // Bad leases are the VXLAN backend's to report.
    this.table = new PeerTable((l) => this.parsePeer(l), nullLogger);
    this.prober = new PathProber({
      log: o.log,
      publicIp: o.vxlan.underlay.v4,
      vni: o.vxlan.vni,
      vxlanPort: o.vxlan.port,
      ownMac: () => this.vxlan.leaseData.VtepMAC,
      port: o.udp.port,
      mtu: this.mtu,
      tuning: this.tuning,
      onRound: () => this.decideAll(),
    });
  }

  /** VXLAN's BackendData, and the fallback (flannel reads VNI and VtepMAC, and ignores the rest). */
  get leaseData(): Record<string, unknown> {
    return { ...this.vxlan.leaseData, Fallback: { Type: 'udp', Port: this.o.udp.port } };
  }

  /** The underlay's address changed: both data paths and the prober follow it. */
  async setUnderlay(u: Underlay & { readonly v4: string }): Promise<void> {
    await this.vxlan.setUnderlay(u);
    await this.udp.setUnderlay(u);
    await this.prober.setPublicIp(u.v4);
  }

  holds(lease: Lease): boolean {
    return this.vxlan.holds(lease);
  }

  private parsePeer(l: Lease): { peer: FallbackPeer } | { error: string } {
    const v = parseVxlanPeer(l, this.o.vxlan.vni, this.o.vxlan.underlay);
    if ('error' in v) return v;
    if (!('peer' in v)) return { error: 'the lease has no IPv4 part' }; // (family 4 always has one)
    const f = leaseFallback(l, this.o.udp.port);
    const probe = { key: l.subnet.toString(), publicIp: v.peer.publicIp.v4!, vtepIp: v.peer.vtepIp, mac: v.peer.mac, udpPort: 'port' in f ? f.port : 0 };
    const sn6 = this.o.udp.ipv6Network ? l.ipv6Subnet?.toString() : undefined;
    return { peer: new FallbackPeer(probe, 'none' in f ? f.none : undefined, sn6) };
  }

  /** FallbackRouting: the VXLAN backend asks where a peer it would send over VXLAN goes. */
  choose(key: string): PathChoice & { path: 'vxlan' | 'udp' } {
    const p = this.table.get(key);
    if (p?.noFallback) return { path: 'vxlan', reason: p.noFallback };
    const d = this.decided.get(key);
    if (d?.path === 'udp' && this.tunIndex !== undefined) return { path: 'udp', index: this.tunIndex, ...(d.reason ? { reason: d.reason } : {}) };
    return { path: 'vxlan', ...(d?.reason ? { reason: d.reason } : {}) };
  }

  /** Runs the rule for every probed peer; moves the ones whose path changed (and refreshes every reason). */
  private decideAll(): void {
    const now = Date.now();
    let moved = false;
    let reasons = false;
    for (const [key, p] of this.table.entries()) {
      if (p.noFallback) continue;
      const h = this.prober.health(key);
      if (!h) continue;
      const cur = this.decided.get(key);
      const d = decide(cur?.path ?? 'vxlan', h, now, this.tuning);
      if (d.path !== (cur?.path ?? 'vxlan')) moved = true;
      else if (d.reason !== cur?.reason) reasons = true;
      this.decided.set(key, d);
    }
    if (moved || reasons) void this.refreshAllPaths().catch((e) => this.o.log.error('moving peers between paths failed; the next resync repairs it', { err: e }));
  }

  /** The dual-stack network's IPv6 VXLAN half, whose peers follow their IPv4 halves' paths (v6Routing). */
  attachV6(v6: VxlanBackend): void {
    this.v6 = v6;
  }

  private async refreshAllPaths(): Promise<void> {
    await this.vxlan.refreshPaths();
    await this.v6?.refreshPaths();
  }

  async configure(own: Lease): Promise<void> {
    await this.vxlan.configure(own);
    await this.udp.configure(own);
    this.refreshDevices();
    await this.prober.start(own.subnet.address(0));
    this.o.log.info('fallback on: VXLAN, and the udp path for peers whose VXLAN probes fail', { tun: this.o.udp.device, port: this.o.udp.port, mtu: this.mtu });
  }

  /**
   * The TUN's index (it is made anew when lost), and loose reverse-path
   * filtering on both devices: a peer may send over one path while this host
   * routes it over the other (rp_filter takes the larger of all and the device).
   */
  private refreshDevices(): void {
    this.tunIndex = this.nl.linkByName(this.o.udp.device)?.index;
    for (const dev of [this.o.vxlan.device, this.o.udp.device]) ensureSysctl(`net/ipv4/conf/${dev}/rp_filter`, '2');
  }

  async apply(batch: LeaseBatch): Promise<void> {
    this.table.apply(batch);
    this.v4KeyOf6 = new Map([...this.table.entries()].filter(([, p]) => p.subnet6).map(([k, p]) => [p.subnet6!, k]));
    // The forwarder knows every fallback peer first, so a route into the TUN always finds its peer.
    await this.udp.apply(this.udpBatch(batch));
    await this.vxlan.apply(batch);
    for (const key of [...this.decided.keys()]) if (!this.table.get(key) || this.table.get(key)!.noFallback) this.decided.delete(key);
    this.prober.setPeers([...this.table.values()].filter((p) => !p.noFallback).map((p) => p.probe));
  }

  /** The batch as the udp backend reads it: fallback peers as udp leases, the others removed. */
  private udpBatch(batch: LeaseBatch): LeaseBatch {
    const events: LeaseEvent[] = [];
    for (const ev of batch.events) {
      const p = this.table.get(ev.lease.subnet.toString());
      const usable = ev.type === 'added' && p !== undefined && !p.noFallback;
      if (usable) events.push({ type: 'added', lease: { ...ev.lease, attrs: { ...ev.lease.attrs, backendType: 'udp' } } });
      else if (!batch.snapshot) events.push({ type: 'removed', lease: ev.lease });
    }
    return { snapshot: batch.snapshot, events };
  }

  async resync(full: boolean): Promise<void> {
    // The udp backend first: a TUN it had to make anew takes its routes with it, which the VXLAN backend then sees and restores.
    await this.udp.resync(full);
    const before = this.tunIndex;
    try {
      this.refreshDevices();
      this.deviceError = '';
    } catch (e) {
      // Retried every second; logged once per distinct error.
      if ((e as Error).message !== this.deviceError) this.o.log.error('checking the fallback devices failed; will retry', { err: e });
      this.deviceError = (e as Error).message;
    }
    if (this.tunIndex !== before) await this.refreshAllPaths();
    await this.vxlan.resync(full);
  }

  stats(): BackendStats {
    const v = this.vxlan.stats();
    const u = this.udp.stats();
    const paths = v.paths?.map((s) => {
      const h = this.prober.health(s.subnet);
      return h ? { ...s, probes: { vxlan: h.vxlan.view(), udp: h.udp.view() } } : s;
    });
    return {
      ...v,
      kernelErrors: v.kernelErrors + u.kernelErrors,
      deviceRecreated: v.deviceRecreated + u.deviceRecreated,
      ...(paths ? { paths } : {}),
      ...(u.forwarder ? { forwarder: u.forwarder } : {}),
      probes: this.prober.totals(),
    };
  }

  async close(): Promise<void> {
    this.prober.close();
    await this.udp.close();
    await this.vxlan.close();
  }
}
