// WireGuard (flannel's wireguard backend, kernel or userspace): the leases'
// WireGuard peers kept on one device of one family (device.ts), the kernel
// routing the whole network into the device and the peers' allowed IPs
// picking the host. Hosts sharing a public key share one WireGuard peer whose
// allowed IPs are all their subnets. A dual-stack network runs two, as
// flannel's separate mode: weft-wg (IPv4: subnet, PublicIP, BackendData,
// ListenPort) and weft-wg-v6 (family 6: IPv6 subnet, PublicIPv6,
// BackendV6Data, ListenPortV6), with the same key pair, side by side in a
// DualStackBackend.
import { formatIp, parseIp, type IpFamily, type Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { familyKey, PeerTable } from '../peer-table.js';
import { WgDeviceSync, type PeerView, type WgDeviceNetlink } from './device.js';
import { decodeKey, encodeKey, type WgKeyPair } from './key.js';
import { parseWireguardPeer, type WireguardPeer } from './peer.js';
import type { WgProvider } from './provider.js';

export type WireguardBackendNetlink = WgDeviceNetlink;

export interface WireguardOptions {
  readonly nl: WireguardBackendNetlink;
  readonly log: Logger;
  /** Network (family 6: IPv6Network), routed into the device. */
  readonly network: Prefix;
  /** 4 (default): weft-wg; 6: a dual-stack network's IPv6 device. */
  readonly family?: IpFamily;
  /** weft's route protocol (--route-protocol). */
  readonly routeProtocol: number;
  /** Its v4 address is this host's endpoint (the lease's PublicIP; family 6: its v6, the PublicIPv6). */
  readonly underlay: Underlay & { readonly v4: string };
  /** This device's provider. */
  readonly provider: WgProvider;
  readonly key: WgKeyPair;
  readonly listenPort: number;
  /** Seconds, 0 = off (Backend.PersistentKeepaliveInterval). */
  readonly persistentKeepalive: number;
  /** Backend.PSK, 32 bytes. */
  readonly psk?: Buffer;
  /** The device's MTU (underlay MTU - 80). */
  readonly mtu: number;
}

/** What the SIGUSR1 stats line and /metrics say about the device. */
export interface WireguardStats {
  readonly impl: string;
  readonly device: string;
  readonly publicKey: string;
  readonly listenPort: number;
}

/** The device's view of a peer (the IPv6 device's peer already holds the lease's IPv6 subnet and PublicIPv6). */
const view = (p: WireguardPeer): PeerView => ({ publicKey: decodeKey(p.publicKey)!, endpoint: p.endpoint, subnet: p.subnet });

export class WireguardBackend implements Backend {
  readonly type = 'wireguard';
  readonly mtu: number;
  /** flannel's wireguardLeaseAttrs. */
  readonly leaseData: { PublicKey: string; Port: number };
  private readonly table: PeerTable<WireguardPeer>;
  private readonly dev: WgDeviceSync;
  private readonly family: IpFamily;
  private own?: Lease;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();
  private handshakeTimer?: NodeJS.Timeout;

  constructor(private readonly o: WireguardOptions) {
    this.mtu = o.mtu;
    this.family = o.family ?? 4;
    const publicKey = encodeKey(o.key.publicKey);
    this.leaseData = { PublicKey: publicKey, Port: o.listenPort };
    const v6 = o.underlay.v6;
    if (this.family === 6 && !v6) throw new TypeError('the IPv6 WireGuard device needs the underlay\'s IPv6 address');
    const publicIp = this.family === 4 ? o.underlay.v4 : formatIp(parseIp(v6!).bytes);
    this.table = new PeerTable((l) => parseWireguardPeer(l, { publicIp, publicKey, listenPort: o.listenPort }, this.family), o.log, familyKey(this.family));
    this.dev = new WgDeviceSync({
      family: this.family, nl: o.nl, log: o.log, provider: o.provider, key: o.key, listenPort: o.listenPort, mtu: o.mtu,
      persistentKeepalive: o.persistentKeepalive, routeProtocol: o.routeProtocol, ...(o.psk ? { psk: o.psk } : {}),
    });
  }

  /** Device operations run one at a time: the watch and the resync loop both call in, and device calls yield. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private peers(): PeerView[] {
    return [...this.table.values()].map(view);
  }

  async configure(own: Lease): Promise<void> {
    this.own = own;
    // flannel: <subnet>.0/32 on flannel-wg, <v6 subnet>::/128 on flannel-wg-v6
    const sn = this.family === 4 ? own.subnet : own.ipv6Subnet;
    if (!sn) throw new TypeError('the IPv6 WireGuard device configured with a lease without an IPv6 subnet');
    await this.serial(() => this.dev.bringUp({ address: sn.address(0), prefixLen: this.family === 4 ? 32 : 128, network: this.o.network }));
  }

  async apply(batch: LeaseBatch): Promise<void> {
    await this.serial(async () => {
      for (const c of this.table.apply(batch)) {
        const p = c.after ?? c.before!;
        this.o.log.info(c.after ? (c.before ? 'peer updated' : 'peer added') : 'peer removed', { subnet: c.subnet, [this.family === 4 ? 'publicIp' : 'publicIpv6']: p.endpoint.ip, publicKey: p.publicKey });
      }
      if (this.dev.configured) await this.dev.sync(this.peers(), batch.snapshot);
      this.armHandshakeCheck();
    });
  }

  /** A timer for the new peers whose handshake this end waits for (WgDeviceSync.checkHandshakes). */
  private armHandshakeCheck(): void {
    const ms = this.dev.nextHandshakeCheck();
    if (ms === undefined || this.handshakeTimer || this.closed) return;
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = undefined;
      void this.serial(async () => {
        if (this.closed) return;
        await this.dev.checkHandshakes();
        this.armHandshakeCheck();
      }).catch((err) => this.o.log.error('checking WireGuard handshakes failed', { device: this.o.provider.device, err }));
    }, ms);
    this.handshakeTimer.unref();
  }

  async resync(full: boolean): Promise<void> {
    await this.serial(async () => {
      if (this.closed || !this.own) return;
      await this.dev.resync(this.peers(), full);
      this.armHandshakeCheck();
    });
  }

  stats(): BackendStats {
    const { provider } = this.o;
    return {
      peersKnown: this.table.size,
      peersProgrammed: [...this.table.values()].filter((p) => this.dev.programmed(decodeKey(p.publicKey)!)).length,
      kernelErrors: this.dev.kernelErrors,
      invalidPeers: this.table.invalid,
      deviceRecreated: this.dev.deviceRecreated,
      wireguard: { impl: provider.impl, device: provider.device, publicKey: this.leaseData.PublicKey, listenPort: this.o.listenPort },
    };
  }

  /** Kernel device: left in place with its peers. wireguard-go: stopped, and its device with it. */
  async close(): Promise<void> {
    await this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      clearTimeout(this.handshakeTimer);
      await this.dev.close();
    });
  }
}
