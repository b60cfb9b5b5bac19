// The userspace fallback: a TUN device and a forwarder that carries each IP
// packet as the payload of one UDP datagram to the host owning the destination
// subnet (flannel's udp backend on the wire, port 8285).
//   TUN weft-tun (IFF_TUN|IFF_NO_PI, + IFF_VNET_HDR and TSO for the native engine
//   with offloads), MTU underlay - 28, <own subnet>.0/32, up
//   ip route replace <Network> dev weft-tun proto 87   (--route-protocol)
//   forwarding table (remote subnet -> peer PublicIP) handed whole to the engine
// The TUN is not persistent: it lives as long as this process holds its fd, so
// a killed agent's device vanishes and a restarted one makes it anew.
import { isIp, type DualAddress, type Prefix } from '../../lib/ip.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Logger } from '../../lib/log.js';
import { native } from '../../native/index.js';
import type { Link, NetlinkHandle } from '../../netlink/index.js';
import { errnoNumber, Faults, isNotFound, KernelError, toKernelError } from '../../netlink/index.js';
import { ensureSysctl } from '../../host/sysctl.js';
import type { Backend, BackendStats } from '../backend.js';
import { PeerTable } from '../peer-table.js';
import { DgramEngine } from './dgram-engine.js';
import type { UdpEngine, UdpEngineName } from './engine.js';
import { NativeEngine, tunOffloadNames } from './native-engine.js';
import { ForwardingTable } from './table.js';
import type { Underlay } from '../../host/underlay.js';

/** UDP over IPv4 adds 28 bytes: outer IPv4 20 + UDP 8. */
export const UDP_OVERHEAD = 28;

export interface UdpOptions {
  readonly nl: NetlinkHandle;
  readonly log: Logger;
  readonly network: Prefix;
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
  /** Backend.MTU from the network config; default underlay MTU - 28. */
  readonly mtu?: number;
  /** --route-protocol: carried by the Network route into the TUN, like every route weft installs. */
  readonly routeProtocol: number;
}

export class UdpPeer {
  constructor(
    readonly subnet: Prefix,
    /** Where its datagrams go: the lease's PublicIP. */
    readonly publicIp: DualAddress,
  ) {}
  equals(o: UdpPeer): boolean {
    return this.subnet.equals(o.subnet) && this.publicIp.v4 === o.publicIp.v4 && this.publicIp.v6 === o.publicIp.v6;
  }
}

/** Turns a lease into a udp peer (BackendType "udp", which is also what an absent BackendType decodes to), or says why not. */
export function parseUdpPeer(lease: Lease, own: DualAddress): { peer: UdpPeer } | { error: string } {
  const a = lease.attrs;
  if (a.backendType !== 'udp') return { error: `BackendType ${JSON.stringify(a.backendType)} is not "udp"` };
  if (!isIp(a.publicIP, 4)) return { error: `PublicIP ${JSON.stringify(a.publicIP)} is not an IPv4 address` };
  if (a.publicIP === own.v4) return { error: `PublicIP ${a.publicIP} is this host's own address` };
  return { peer: new UdpPeer(lease.subnet, { v4: a.publicIP }) };
}

interface Device {
  readonly fd: number;
  readonly link: Link;
  /** TUN_F_* offloads on (IFF_VNET_HDR); 0 for a plain TUN. */
  readonly offloads: number;
}

export class UdpBackend implements Backend {
  readonly type = 'udp';
  readonly mtu: number;
  /** flannel's udp backend publishes no BackendData. */
  readonly leaseData = null;
  private readonly table: PeerTable<UdpPeer>;
  private dev: Device;
  private engine?: UdpEngine;
  private own?: Lease;
  private kernelErrors = 0;
  private deviceRecreated = 0;
  private closed = false;
  /** The forwarder's local address: o.underlay until setUnderlay. */
  private underlay: Underlay & { readonly v4: string };

  constructor(private readonly o: UdpOptions) {
    this.mtu = o.mtu ?? o.underlay.mtu - UDP_OVERHEAD;
    this.underlay = o.underlay;
    this.table = new PeerTable((l) => parseUdpPeer(l, this.underlay), o.log);
    this.dev = this.openDevice();
  }

  /** ip tuntap add weft-tun mode tun (owned by this fd), mtu, up. */
  private openDevice(): Device {
    const { nl, log, device } = this.o;
    const old = nl.linkByName(device);
    if (old && old.kind !== 'tun') {
      log.warn('replacing a device of another kind that has the TUN device\'s name', { device, kind: old.kind ?? 'none' });
      nl.linkDel(old.index);
    }
    const t = native().tun;
    const vnetHdr = this.o.engine === 'native' && (this.o.offload ?? true);
    let fd: number;
    const op = `tun open ${device}`;
    try {
      const fault = Faults.fromEnv().take(op);
      if (fault) throw new KernelError(op, errnoNumber(fault), { detail: `injected ${fault} (WEFT_FAULTS)` });
      ({ fd } = t.open(device, t.IFF_TUN | t.IFF_NO_PI | (vnetHdr ? t.IFF_VNET_HDR : 0)));
    } catch (e) {
      // Classified like every kernel error (EBUSY, ENOMEM: transient; EPERM, ENOENT: fatal) and counted.
      const err = toKernelError(op, e);
      if (!(err instanceof KernelError)) throw err;
      nl.errors.add(err);
      if (err.code === 'EBUSY') throw new KernelError(op, err.errno, { detail: `TUN device ${device} is held by another process (another weftd?)` });
      throw err;
    }
    try {
      const offloads = vnetHdr ? t.enableOffload(fd) : 0;
      const link = nl.linkByName(device);
      if (!link) throw new Error(`TUN device ${device} vanished right after it was opened`);
      if (link.mtu !== this.mtu) nl.linkSetMtu(link.index, this.mtu);
      // A TUN with an address is a router port; accept_local lets our ICMP errors (source: the TUN's own address) in.
      ensureSysctl(`net/ipv4/conf/${device}/accept_local`, '1');
      nl.linkSetUp(link.index);
      log.info('created TUN device', { device, mtu: this.mtu, engine: this.o.engine, offloads: tunOffloadNames(offloads).join(',') || 'none' });
      return { fd, link, offloads };
    } catch (e) {
      native().close(fd);
      throw e;
    }
  }

  async configure(own: Lease): Promise<void> {
    this.own = own;
    this.configureDevice();
    await this.restartEngine();
  }

  /** The underlay's address changed: the forwarder starts again, bound to the new address. */
  async setUnderlay(u: Underlay & { readonly v4: string }): Promise<void> {
    this.underlay = u;
    if (this.own) await this.restartEngine();
  }

  /** (Re)starts the forwarder for the current lease and underlay (a moved lease has a new own subnet). */
  private async restartEngine(): Promise<void> {
    await this.engine?.stop();
    this.engine = undefined;
    await this.startEngine();
  }

  // ip addr replace <subnet>.0/32 dev weft-tun; ip route replace <Network> dev weft-tun proto 87
  private configureDevice(): void {
    if (!this.own) return;
    const { nl, network } = this.o;
    const index = this.dev.link.index;
    const want = this.own.subnet.address(0);
    for (const a of nl.addrList({ index, family: 4 })) {
      if (a.address !== want || a.prefixLen !== 32) nl.addrDel({ index, address: a.address, prefixLen: a.prefixLen });
    }
    nl.addrReplace({ index, address: want, prefixLen: 32 });
    nl.routeReplace({ dst: network.toString(), index, protocol: this.o.routeProtocol });
  }

  private async startEngine(): Promise<void> {
    const { log, port, engine } = this.o;
    const { underlay } = this;
    const { subnet } = this.own!;
    const opts = { tunFd: this.dev.fd, bindIp: underlay.v4, port, ownIp: subnet.address(0), ownSubnets: [{ net: Number(subnet.ip), prefixLen: subnet.prefixLen }] };
    this.engine =
      engine === 'native'
        ? NativeEngine.start({ ...opts, tunOffloads: this.dev.offloads })
        : await DgramEngine.start({ ...opts, log: log.child({ engine: 'dgram' }), wakeTunReader: () => this.deleteDevice() });
    this.pushTable();
    log.info('forwarder started', { engine, listen: `${underlay.v4}:${port}` });
  }

  /** The whole table, rebuilt from the peers and swapped in at once. */
  private pushTable(): void {
    const routes = [...this.table.values()].map((p) => ({ subnet: p.subnet.toString(), peerIp: p.publicIp.v4!, port: this.o.port }));
    this.engine?.setTable(new ForwardingTable(routes));
  }

  async apply(batch: LeaseBatch): Promise<void> {
    const changes = this.table.apply(batch);
    if (changes.length === 0 && !batch.snapshot) return;
    this.pushTable();
    for (const c of changes) {
      if (c.after) this.o.log.info(c.before ? 'peer updated' : 'peer added', { subnet: c.subnet, publicIp: c.after.publicIp.v4 });
      else this.o.log.info('peer removed', { subnet: c.subnet, publicIp: c.before!.publicIp.v4 });
    }
  }

  async resync(full: boolean): Promise<void> {
    if (this.closed) return;
    const { nl, log, device } = this.o;
    const cur = this.dev.fd < 0 ? undefined : nl.linkByIndex(this.dev.link.index);
    const running = this.engine?.stats().running ?? !this.own;
    if (!cur || cur.name !== device || !running) {
      log.warn('TUN device or forwarder gone; recreating both', { device, deviceFound: !!cur, forwarderRunning: running, error: this.engine?.stats().error });
      await this.engine?.stop();
      this.engine = undefined;
      if (cur) this.deleteDevice();
      this.closeFd();
      // If opening fails (a transient error), the next resync tries again: the fd is already closed.
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
      this.o.nl.linkDel(this.dev.link.index);
    } catch (e) {
      if (!isNotFound(e)) {
        this.kernelErrors++;
        this.o.log.error('deleting the TUN device failed', { device: this.o.device, err: e });
      }
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

  /** Stops the engine (threads joined, UDP socket closed) and closes the TUN fd, which removes the device. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.engine?.stop();
    this.closeFd();
    this.o.log.info('forwarder stopped; TUN device closed', { device: this.o.device });
  }

  private closeFd(): void {
    if (this.dev.fd < 0) return;
    native().close(this.dev.fd);
    this.dev = { ...this.dev, fd: -1 };
  }
}
