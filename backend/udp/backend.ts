// The userspace fallback: a TUN device and a forwarder that carries each IP
// packet as the payload of one UDP datagram to the host owning the destination
// subnet (flannel's udp backend on the wire, port 8285).
//   TUN weft-tun (tun-device.ts: persistent, multi-queue, + IFF_VNET_HDR and TSO
//   for the native engine with offloads), MTU underlay - 28, <own subnet>.0/32, up
//   ip route replace <Network> dev weft-tun proto 87   (--route-protocol)
//   forwarding table (remote subnet -> peer PublicIP) handed whole to the engine
// Dual stack (EnableIPv6): the same TUN and engine carry IPv6 too:
//   ip -6 addr replace <own v6 subnet>::/128 dev weft-tun nodad
//   ip -6 route replace <IPv6Network> dev weft-tun proto 87
//   table entries <peer v6 subnet> -> the peer
// and the socket is one AF_INET6 socket bound to [::] (IPV6_V6ONLY off; not for
// VXLAN's fallback, whose udp path stays on the IPv4 underlay), so
// datagrams of both underlay families arrive; a sender is its peer by the
// lease's PublicIP or PublicIPv6. Each entry goes to the peer's PublicIP, or
// with Backend.Underlay "ipv6" (over6) to its PublicIPv6 (TUN MTU underlay - 48).
// The TUN is persistent: a stopped or killed weftd leaves it with its address
// and route, so nothing routed to the overlay leaks out of the underlay
// unencapsulated. The native engine's TUN queues and UDP sockets are also kept
// open by an fd holder process (holder.ts): while weftd is down the kernel
// queues what arrives instead of dropping it (without a holder it drops). The
// table is saved in --state-dir (state.ts), so a restarted weftd takes the
// queues and sockets back and forwards again before it has talked to etcd
// (resume.ts). weftd --cleanup ends the holder and removes the device and state.
import { ipNumber, isIp, Prefix, type DualAddress } from '../../lib/ip.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Logger } from '../../lib/log.js';
import type { NetlinkHandle } from '../../netlink/index.js';
import { Faults, IFA_F_NODAD, isNotFound, KernelError, errnoNumber } from '../../netlink/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { PeerTable } from '../peer-table.js';
import { DgramEngine } from './dgram-engine.js';
import type { UdpEngine, UdpEngineName } from './engine.js';
import { NativeEngine, tunOffloadNames } from './native-engine.js';
import { endHolder, holderName, spawnHolder, type Holder } from './holder.js';
import { endHolders, type ResumedUdp } from './resume.js';
import { statePath, writeUdpState, type UdpState } from './state.js';
import { ForwardingTable } from './table.js';
import { closeTun, openTun, type TunDevice } from './tun-device.js';
import type { Underlay } from '../../host/underlay.js';

/** UDP over IPv4 adds 28 bytes: outer IPv4 20 + UDP 8. */
export const UDP_OVERHEAD = 28;
/** UDP over IPv6 adds 48: outer IPv6 40 + UDP 8. */
export const UDP_OVERHEAD6 = 48;

/** The saved state is written at most this often while the table changes. */
const SAVE_DELAY_MS = 1000;

export interface UdpOptions {
  readonly nl: NetlinkHandle;
  readonly log: Logger;
  readonly network: Prefix;
  /** A dual-stack network's IPv6Network: the TUN then carries IPv6 too. */
  readonly ipv6Network?: Prefix;
  readonly port: number;
  readonly device: string;
  /** Its v4 address is the forwarder's local address. */
  readonly underlay: Underlay & { readonly v4: string };
  readonly engine: UdpEngineName;
  /**
   * Native engine: open the TUN with IFF_VNET_HDR and use TSO/GSO/GRO (Backend.Offload,
   * --udp-offload; default true). The dgram engine always gets a plain TUN.
   */
  readonly offload?: boolean;
  /** Native engine: worker thread pairs (TUN queues); default 1. The dgram engine uses one. */
  readonly workers?: number;
  /** Backend.MTU from the network config; default underlay MTU - 28 (- 48 with over6). */
  readonly mtu?: number;
  /** Backend.Underlay "ipv6": datagrams go to the peers' PublicIPv6 (needs dualSocket). */
  readonly over6?: boolean;
  /**
   * One socket on [::] for both underlay families (a dual-stack udp backend: peers may send over
   * either); else one on the PublicIP. VXLAN's fallback keeps the latter: its prober listens on
   * <subnet>.0 at the same port, and its udp path is IPv4 only.
   */
  readonly dualSocket?: boolean;
  /** Where the table is saved for the next weftd (state.ts); none: nothing is saved. */
  readonly stateDir?: string;
  /** The data plane resume() started from the saved state, to adopt when it matches. */
  readonly resumed?: ResumedUdp;
  /** --route-protocol: carried by the Network route into the TUN, like every route weft installs. */
  readonly routeProtocol: number;
  /** false: no Network route into the TUN (VXLAN's fallback routes single peers into it); default true. */
  readonly networkRoute?: boolean;
}

export class UdpPeer {
  constructor(
    readonly subnet: Prefix,
    /** The lease's PublicIP and (a dual-stack network) PublicIPv6: where its datagrams go and come from. */
    readonly publicIp: DualAddress,
    /** Its IPv6 subnet (a dual-stack network), carried over the same PublicIP. */
    readonly subnet6?: Prefix,
  ) {}
  equals(o: UdpPeer): boolean {
    return this.subnet.equals(o.subnet) && this.publicIp.v4 === o.publicIp.v4 && this.publicIp.v6 === o.publicIp.v6 &&
      String(this.subnet6 ?? '') === String(o.subnet6 ?? '');
  }
}

/**
 * Turns a lease into a udp peer (BackendType "udp", which is also what an absent BackendType decodes
 * to), or says why not. In a dual-stack network (ipv6Network) the lease's IPv6 subnet comes along
 * when it lies inside that network (a lease without one is an IPv4-only peer), and so does its
 * PublicIPv6 (datagrams from it are the peer's); over6 (this host sends over the IPv6 underlay)
 * needs that PublicIPv6.
 */
export function parseUdpPeer(lease: Lease, own: DualAddress, ipv6Network?: Prefix, over6 = false): { peer: UdpPeer } | { error: string } {
  const a = lease.attrs;
  if (a.backendType !== 'udp') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "udp"` };
  if (!isIp(a.publicIP, 4)) return { error: `PublicIP ${JSON.stringify(a.publicIP)} is not an IPv4 address` };
  if (a.publicIP === own.v4) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  const sn6 = ipv6Network ? lease.ipv6Subnet : undefined;
  if (sn6 && !(sn6.family === 6 && sn6.prefixLen >= ipv6Network!.prefixLen && ipv6Network!.contains(sn6.ip))) return { error: `IPv6 subnet ${sn6} is not inside IPv6Network ${ipv6Network}` };
  const v6 = ipv6Network && isIp(a.publicIPv6, 6) ? a.publicIPv6 : undefined;
  if (over6 && !v6) {
    return { error: `PublicIPv6 ${JSON.stringify(a.publicIPv6)} is not an IPv6 address, and this host sends over the IPv6 underlay (Backend.Underlay "ipv6")` };
  }
  if (v6 !== undefined && own.v6 !== undefined && ipNumber(v6).n === ipNumber(own.v6).n) return { error: `PublicIPv6 ${v6} is this host's own address` };
  return { peer: new UdpPeer(lease.subnet, { v4: a.publicIP, ...(v6 !== undefined ? { v6 } : {}) }, sn6) };
}

type Routes = UdpState['routes'];

/** fe80::/10: the kernel's own link-local address on the TUN, never ours to remove. */
const LINK_LOCAL = Prefix.parse('fe80::/10');

/** What the engine was started for: its own subnets (ICMP sources, receive check). */
function subnetsKey(v4: string, v6: string | undefined): string {
  return v6 ? `${v4} ${v6}` : v4;
}

/** An address in the network outside this host's subnet: the network route sends it into the TUN. */
export function routedIntoTun(network: Prefix, own: Prefix): string {
  const first = network.ip + 1n;
  const n = first >= own.ip && first <= own.last ? own.last + 1n : first;
  return network.address(n - network.ip);
}

export class UdpBackend implements Backend {
  readonly type = 'udp';
  readonly mtu: number;
  /** flannel's udp backend publishes no BackendData. */
  readonly leaseData = null;
  private readonly table: PeerTable<UdpPeer>;
  private readonly vnetHdr: boolean;
  private readonly workers: number;
  private dev: TunDevice;
  private engine?: UdpEngine;
  /** The fd holder of the native engine's queues and sockets. */
  private holder?: Holder;
  /** The subnet the running engine was started for (its ICMP source and receive check). */
  private engineSubnet?: string;
  private own?: Lease;
  /** What the engine forwards by: the saved table until the first lease snapshot, then the peers'. */
  private routes: Routes = [];
  private saveTimer?: NodeJS.Timeout;
  private kernelErrors = 0;
  private deviceRecreated = 0;
  private closed = false;
  /** The forwarder's local address: o.underlay until setUnderlay. */
  private underlay: Underlay & { readonly v4: string };

  constructor(private readonly o: UdpOptions) {
    this.mtu = o.mtu ?? o.underlay.mtu - (o.over6 ? UDP_OVERHEAD6 : UDP_OVERHEAD);
    this.underlay = o.underlay;
    this.table = new PeerTable((l) => parseUdpPeer(l, this.underlay, o.ipv6Network, o.over6), o.log);
    this.vnetHdr = o.engine === 'native' && (o.offload ?? true);
    this.workers = o.engine === 'native' ? o.workers ?? 1 : 1;
    const r = o.resumed;
    const why = r ? this.cannotAdopt(r) : undefined;
    if (r && why === undefined) {
      this.dev = r.dev;
      this.engine = r.engine;
      this.holder = r.holder;
      this.engineSubnet = subnetsKey(r.state.ownSubnet, r.state.ownSubnet6);
      this.routes = r.state.routes;
      o.log.info('adopted the data path resumed from saved state', { device: o.device, peers: this.routes.length, subnet: r.state.ownSubnet });
    } else {
      if (r) {
        o.log.warn('not adopting the resumed data path: the network config or flags changed; re-creating it', { device: o.device, differs: why });
        r.closeNow(false);
      }
      // A holder left by an earlier weftd holds the queues and the UDP port: it goes first.
      const ended = endHolders(o.device);
      if (ended) o.log.info('ended the fd holder an earlier weftd left', { device: o.device });
      this.dev = this.openDevice();
    }
  }

  /** Why the resumed data path does not fit this backend's settings, or undefined when it does. */
  private cannotAdopt(r: ResumedUdp): string | undefined {
    const s = r.state;
    const o = this.o;
    const diffs = [
      s.device !== o.device && `device ${s.device}`,
      o.engine !== 'native' && `engine ${o.engine}`,
      s.vnetHdr !== this.vnetHdr && `offloads ${this.vnetHdr ? 'on' : 'off'}`,
      r.dev.fds.length !== this.workers && `workers ${this.workers}`,
      s.port !== o.port && `port ${o.port}`,
      s.bindIp !== this.bindIp && `socket address ${this.bindIp}`,
      s.network !== o.network.toString() && `network ${o.network}`,
      (s.network6 ?? '') !== String(o.ipv6Network ?? '') && `IPv6 network ${o.ipv6Network ?? 'none'}`,
      s.mtu !== this.mtu && `MTU ${this.mtu}`,
    ].filter((x): x is string => typeof x === 'string');
    return diffs.length ? `now ${diffs.join(', ')}` : undefined;
  }

  private openDevice(): TunDevice {
    const { nl, log, device } = this.o;
    const old = nl.linkByName(device);
    if (old && old.kind !== 'tun') {
      log.warn('replacing a device of another kind that has the TUN device\'s name', { device, kind: old.kind ?? 'none' });
      nl.linkDel(old.index);
    }
    const op = `tun open ${device}`;
    try {
      const fault = Faults.fromEnv().take(op);
      if (fault) throw new KernelError(op, errnoNumber(fault), { detail: `injected ${fault} (WEFT_FAULTS)` });
      const dev = openTun(nl, log, { name: device, queues: this.workers, vnetHdr: this.vnetHdr, mtu: this.mtu });
      log.info(dev.adopted ? 'attached to the persistent TUN device' : 'created TUN device', {
        device, mtu: this.mtu, engine: this.o.engine, queues: dev.fds.length, offloads: tunOffloadNames(dev.offloads).join(',') || 'none',
      });
      return dev;
    } catch (e) {
      // Classified like every kernel error (EBUSY, ENOMEM: transient; EPERM, ENOENT: fatal) and counted.
      if (e instanceof KernelError) nl.errors.add(e);
      throw e;
    }
  }

  async configure(own: Lease): Promise<void> {
    this.own = own;
    this.configureDevice();
    if (!this.engine || this.engineSubnet !== this.ownSubnetsKey()) await this.restartEngine();
    this.saveSoon(0);
  }

  /** The underlay's address changed: the forwarder starts again, bound to the new address. */
  async setUnderlay(u: Underlay & { readonly v4: string }): Promise<void> {
    this.underlay = u;
    if (this.own) {
      await this.restartEngine();
      this.saveSoon(0);
    }
  }

  /** (Re)starts the forwarder for the current lease and underlay (a moved lease has a new own subnet). */
  private async restartEngine(): Promise<void> {
    await this.engine?.stop();
    this.engine = undefined;
    await this.startEngine();
  }

  /**
   * The socket's address: [::] (both families) on a dual-stack host, so peers sending over
   * either underlay reach it; else this host's PublicIP.
   */
  private get bindIp(): string {
    return this.o.dualSocket ? '::' : this.underlay.v4;
  }

  /** The own IPv6 subnet the TUN carries: a dual-stack network and a lease with one. */
  private get ownSubnet6(): Prefix | undefined {
    return this.o.ipv6Network ? this.own?.ipv6Subnet : undefined;
  }

  private ownSubnetsKey(): string {
    return subnetsKey(this.own!.subnet.toString(), this.ownSubnet6?.toString());
  }

  // ip addr replace <subnet>.0/32 dev weft-tun; ip route replace <Network> dev weft-tun proto 87
  // dual stack: ip -6 addr replace <v6 subnet>::/128 dev weft-tun nodad; ip -6 route replace <IPv6Network> dev weft-tun proto 87
  private configureDevice(): void {
    if (!this.own) return;
    const { nl, network, ipv6Network } = this.o;
    const index = this.dev.index;
    const want = this.own.subnet.address(0);
    for (const a of nl.addrList({ index, family: 4 })) {
      if (a.address !== want || a.prefixLen !== 32) nl.addrDel({ index, address: a.address, prefixLen: a.prefixLen });
    }
    nl.addrReplace({ index, address: want, prefixLen: 32 });
    if (this.o.networkRoute !== false) nl.routeReplace({ dst: network.toString(), index, protocol: this.o.routeProtocol });
    const sn6 = this.ownSubnet6;
    if (!ipv6Network || !sn6) return;
    const want6 = sn6.address(0);
    for (const a of nl.addrList({ index, family: 6 })) {
      if (LINK_LOCAL.contains(a.address)) continue;  // the kernel's own fe80:: stays
      if (a.address !== want6 || a.prefixLen !== 128) nl.addrDel({ index, address: a.address, prefixLen: a.prefixLen });
    }
    nl.addrReplace({ index, address: want6, prefixLen: 128, flags: IFA_F_NODAD });
    if (this.o.networkRoute !== false) nl.routeReplace({ dst: ipv6Network.toString(), index, protocol: this.o.routeProtocol });
  }

  private async startEngine(): Promise<void> {
    const { log, port, engine } = this.o;
    const { subnet } = this.own!;
    this.endHolder();  // it holds the old sockets: the new ones must not share the port with them
    const sn6 = this.ownSubnet6;
    const opts = {
      tunFds: this.dev.fds, bindIp: this.bindIp, port, ownIp: subnet.address(0), ownSubnets: [{ net: Number(subnet.ip), prefixLen: subnet.prefixLen }],
      ...(sn6 ? { ownIp6: sn6.address(0), ownSubnets6: [{ net6: sn6.ip, prefixLen: sn6.prefixLen }] } : {}),
    };
    const table = new ForwardingTable(this.routes);
    this.engine =
      engine === 'native'
        ? NativeEngine.start({ ...opts, tunOffloads: this.dev.offloads }, table)
        : await DgramEngine.start({ ...opts, log: log.child({ engine: 'dgram' }), wakeTunReader: () => this.deleteDevice(), wakeAddress: routedIntoTun(this.o.network, subnet) });
    this.engineSubnet = this.ownSubnetsKey();
    this.engine.setTable(table);
    if (this.engine instanceof NativeEngine) {
      try {
        this.holder = spawnHolder(this.o.device, this.dev.fds, this.engine.udpFds(), this.engine.txFds());
      } catch (e) {
        log.warn('no fd holder: while weftd is down, what arrives is dropped instead of queued', { device: this.o.device, err: e });
      }
    }
    const listen = this.bindIp.includes(':') ? `[${this.bindIp}]:${port}` : `${this.bindIp}:${port}`;
    log.info('forwarder started', { engine, listen, sendsOver: this.o.over6 ? 'ipv6' : 'ipv4', workers: this.dev.fds.length, holder: this.holder && holderName(this.holder) });
  }

  private endHolder(): void {
    if (!this.holder) return;
    try {
      endHolder(this.holder);
    } catch (e) {
      this.o.log.warn('ending the fd holder failed', { holder: holderName(this.holder), err: e });
    }
    this.holder = undefined;
  }

  /** The whole table, rebuilt from the peers and swapped in at once. */
  private pushTable(): void {
    const over6 = this.o.over6 ? { over6: true } : {};
    this.routes = [...this.table.values()].flatMap((p) => {
      const to = { peerIp: p.publicIp.v4!, port: this.o.port, ...(p.publicIp.v6 !== undefined ? { peerIp6: p.publicIp.v6, ...over6 } : {}) };
      return [{ subnet: p.subnet.toString(), ...to }, ...(p.subnet6 ? [{ subnet: p.subnet6.toString(), ...to }] : [])];
    });
    this.engine?.setTable(new ForwardingTable(this.routes));
    this.saveSoon(SAVE_DELAY_MS);
  }

  async apply(batch: LeaseBatch): Promise<void> {
    const changes = this.table.apply(batch);
    if (changes.length === 0 && !batch.snapshot) return;
    this.pushTable();
    for (const c of changes) {
      if (c.after) {
        const a = c.after;
        this.o.log.info(c.before ? 'peer updated' : 'peer added', { subnet: c.subnet, publicIp: a.publicIp.v4, ...(a.publicIp.v6 ? { publicIpv6: a.publicIp.v6 } : {}), ...(a.subnet6 ? { ipv6Subnet: a.subnet6.toString() } : {}) });
      }
      else this.o.log.info('peer removed', { subnet: c.subnet, publicIp: c.before!.publicIp.v4 });
    }
  }

  async resync(full: boolean): Promise<void> {
    if (this.closed) return;
    const { nl, log, device } = this.o;
    const cur = this.dev.fds.length === 0 ? undefined : nl.linkByIndex(this.dev.index);
    const running = this.engine?.stats().running ?? !this.own;
    if (!cur || cur.name !== device || !running) {
      log.warn('TUN device or forwarder gone; recreating both', { device, deviceFound: !!cur, forwarderRunning: running, error: this.engine?.stats().error });
      await this.engine?.stop();
      this.engine = undefined;
      this.endHolder();
      if (cur) this.deleteDevice();
      this.closeTun();
      // If opening fails (a transient error), the next resync tries again: the queues are already closed.
      this.dev = this.openDevice();
      this.deviceRecreated++;
      this.configureDevice();
      await this.startEngine();
      return;
    }
    if (!cur.up) nl.linkSetUp(cur.index);
    if (full) {
      try {
        this.configureDevice();
      } catch (e) {
        this.kernelErrors++;
        log.error('restoring the TUN address or route failed; will retry', { device, err: e });
      }
    }
  }

  /** ip link del weft-tun: the device goes, and a read blocked on its fd returns. */
  private deleteDevice(): void {
    try {
      this.o.nl.linkDel(this.dev.index);
    } catch (e) {
      if (!isNotFound(e)) {
        this.kernelErrors++;
        this.o.log.error('deleting the TUN device failed', { device: this.o.device, err: e });
      }
    }
  }

  /** Saves the state for the next weftd after ms (0: now), once for changes that come together. */
  private saveSoon(ms: number): void {
    if (!this.o.stateDir || !this.own || this.closed) return;
    if (ms === 0) return this.save();
    this.saveTimer ??= setTimeout(() => this.save(), ms).unref();
  }

  private save(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (!this.o.stateDir || !this.own) return;
    const path = statePath(this.o.stateDir, this.o.device);
    try {
      writeUdpState(path, {
        version: 1,
        device: this.o.device,
        engine: this.o.engine,
        vnetHdr: this.vnetHdr,
        mtu: this.mtu,
        bindIp: this.bindIp,
        port: this.o.port,
        ownSubnet: this.own.subnet.toString(),
        network: this.o.network.toString(),
        ...(this.ownSubnet6 ? { ownSubnet6: this.ownSubnet6.toString() } : {}),
        ...(this.o.ipv6Network ? { network6: this.o.ipv6Network.toString() } : {}),
        routes: this.routes,
        savedAt: new Date().toISOString(),
      });
    } catch (e) {
      this.o.log.warn('saving the forwarding table for the next weftd failed; a restart will wait for etcd', { path, err: e });
    }
  }

  stats(): BackendStats {
    const f = this.engine?.stats();
    return {
      peersKnown: this.table.size,
      peersProgrammed: f?.running ? this.table.size : 0,
      kernelErrors: this.kernelErrors,
      invalidPeers: this.table.invalid,
      deviceRecreated: this.deviceRecreated,
      ...(f ? { forwarder: f } : {}),
    };
  }

  /**
   * Saves the state, stops the engine (threads joined, our UDP sockets closed) and closes our
   * TUN queues. The persistent device stays with its address and route, the fd holder with
   * the queues and sockets: the next weftd resumes from them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.save();
    this.closed = true;
    await this.engine?.stop(true);
    this.closeTun();
    this.o.log.info('forwarder stopped; the persistent TUN device stays for the next weftd (weftd --cleanup removes it)', { device: this.o.device, holder: this.holder && holderName(this.holder) });
  }

  /** Closes our queues once (a failed re-open leaves none to close again). */
  private closeTun(): void {
    if (this.dev.fds.length === 0) return;
    closeTun(this.dev);
    this.dev = { ...this.dev, fds: [] };
  }
}
