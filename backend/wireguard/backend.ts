// WireGuard (flannel's wireguard backend, kernel or userspace): the leases'
// WireGuard peers kept on one device per family (device.ts; IPv4's weft-wg
// today), the kernel routing the whole network into the device and the peers'
// allowed IPs picking the host. Hosts sharing a public key share one
// WireGuard peer whose allowed IPs are all their subnets.
import type { Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { PeerTable } from '../peer-table.js';
import { WgDeviceSync, type PeerView, type WgDeviceNetlink } from './device.js';
import { decodeKey, encodeKey, type WgKeyPair } from './key.js';
import { parseWireguardPeer, type WireguardPeer } from './peer.js';
import type { WgProvider } from './provider.js';

export type WireguardBackendNetlink = WgDeviceNetlink;

export interface WireguardOptions {
  readonly nl: WireguardBackendNetlink;
  readonly log: Logger;
  readonly network: Prefix;
  /** weft's route protocol (--route-protocol). */
  readonly routeProtocol: number;
  /** Its v4 address is this host's endpoint (the lease's PublicIP). */
  readonly underlay: Underlay & { readonly v4: string };
  /** The IPv4 device's provider. */
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

/** The IPv4 device's view of a peer (an IPv6 device takes the lease's IPv6 subnet and PublicIPv6). */
const v4View = (p: WireguardPeer): PeerView => ({ publicKey: decodeKey(p.publicKey)!, endpoint: p.endpoint, subnet: p.subnet });

export class WireguardBackend implements Backend {
  readonly type = 'wireguard';
  readonly mtu: number;
  /** flannel's wireguardLeaseAttrs. */
  readonly leaseData: { PublicKey: string; Port: number };
  private readonly table: PeerTable<WireguardPeer>;
  private readonly v4: WgDeviceSync;
  private own?: Lease;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: WireguardOptions) {
    this.mtu = o.mtu;
    const publicKey = encodeKey(o.key.publicKey);
    this.leaseData = { PublicKey: publicKey, Port: o.listenPort };
    this.table = new PeerTable((l) => parseWireguardPeer(l, { publicIp: o.underlay.v4, publicKey, listenPort: o.listenPort }), o.log);
    this.v4 = new WgDeviceSync({
      family: 4, nl: o.nl, log: o.log, provider: o.provider, key: o.key, listenPort: o.listenPort, mtu: o.mtu,
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
    return [...this.table.values()].map(v4View);
  }

  async configure(own: Lease): Promise<void> {
    this.own = own;
    await this.serial(() => this.v4.bringUp({ address: own.subnet.address(0), prefixLen: 32, network: this.o.network }));
  }

  async apply(batch: LeaseBatch): Promise<void> {
    await this.serial(async () => {
      for (const c of this.table.apply(batch)) {
        const p = c.after ?? c.before!;
        this.o.log.info(c.after ? (c.before ? 'peer updated' : 'peer added') : 'peer removed', { subnet: c.subnet, publicIp: p.endpoint.ip, publicKey: p.publicKey });
      }
      if (this.v4.configured) await this.v4.sync(this.peers(), batch.snapshot);
    });
  }

  async resync(full: boolean): Promise<void> {
    await this.serial(async () => {
      if (this.closed || !this.own) return;
      await this.v4.resync(this.peers(), full);
    });
  }

  stats(): BackendStats {
    const { provider } = this.o;
    return {
      peersKnown: this.table.size,
      peersProgrammed: [...this.table.values()].filter((p) => this.v4.programmed(decodeKey(p.publicKey)!)).length,
      kernelErrors: this.v4.kernelErrors,
      invalidPeers: this.table.invalid,
      deviceRecreated: this.v4.deviceRecreated,
      wireguard: { impl: provider.impl, device: provider.device, publicKey: this.leaseData.PublicKey, listenPort: this.o.listenPort },
    };
  }

  /** Kernel device: left in place with its peers. wireguard-go: stopped, and its device with it. */
  async close(): Promise<void> {
    await this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.v4.close();
    });
  }
}
