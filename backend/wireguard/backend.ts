// WireGuard (flannel's wireguard backend, kernel or userspace): one device,
// one WireGuard peer per remote host, the kernel routing the whole network
// into the device and the peers' allowed IPs picking the host.
//   device weft-wg (WgProvider: kernel or wireguard-go), MTU underlay - 80
//   wg set weft-wg private-key <key file> listen-port 51820
//   ip addr replace <subnet>.0/32 dev weft-wg; ip link set weft-wg up
//   ip route replace <Network> dev weft-wg scope link
//   per peer: wg set weft-wg peer <PublicKey> endpoint <PublicIP>:<Port> allowed-ips <subnet>
//             persistent-keepalive <N|off> preshared-key <PSK|none>
// The device's peers are reconciled with the leases (list, diff, apply) on
// every snapshot and full resync: a peer no lease wants is removed (flannel
// never does, and stale peers pile up). Hosts sharing a public key share one
// WireGuard peer whose allowed IPs are all their subnets.
import type { Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import type { Link, NetlinkHandle, WgDevice, WgEndpoint, WgPeerConfig } from '../../netlink/index.js';
import type { Underlay } from '../../host/underlay.js';
import type { Lease, LeaseBatch } from '../../subnet-manager/index.js';
import type { Backend, BackendStats } from '../backend.js';
import { KernelOps } from '../kernel-ops.js';
import { PeerTable } from '../peer-table.js';
import { RouteReconciler } from '../route-reconciler.js';
import { decodeKey, encodeKey, type WgKeyPair } from './key.js';
import { parseWireguardPeer, type WireguardPeer } from './peer.js';
import type { WgProvider } from './provider.js';

export type WireguardBackendNetlink = Pick<NetlinkHandle, 'linkByIndex' | 'linkSetUp' | 'addrList' | 'addrReplace' | 'addrDel' | 'routeList' | 'routeReplace' | 'routeDel'>;

export interface WireguardOptions {
  readonly nl: WireguardBackendNetlink;
  readonly log: Logger;
  readonly network: Prefix;
  /** Its v4 address is this host's endpoint (the lease's PublicIP). */
  readonly underlay: Underlay & { readonly v4: string };
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

/** One WireGuard peer as this host wants it, or as the device holds it. */
interface PeerState {
  readonly publicKey: Buffer;
  readonly endpoint?: WgEndpoint;
  readonly allowedIps: readonly Prefix[];
  readonly persistentKeepalive: number;
  readonly presharedKey?: Buffer;
}

const ZERO_KEY = Buffer.alloc(32);
const hex = (k: Buffer) => k.toString('hex');

export class WireguardBackend implements Backend {
  readonly type = 'wireguard';
  readonly mtu: number;
  /** flannel's wireguardLeaseAttrs. */
  readonly leaseData: { PublicKey: string; Port: number };
  private readonly table: PeerTable<WireguardPeer>;
  private readonly ops: KernelOps;
  private readonly routes: RouteReconciler;
  private link?: Link;
  private own?: Lease;
  /** What this agent last put on the device, by public key (hex). */
  private applied = new Map<string, PeerState>();
  /** Peers whose last change failed; sent again every second. */
  private readonly dirty = new Set<string>();
  private errors = 0;
  private deviceRecreated = 0;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: WireguardOptions) {
    this.mtu = o.mtu;
    const publicKey = encodeKey(o.key.publicKey);
    this.leaseData = { PublicKey: publicKey, Port: o.listenPort };
    this.ops = new KernelOps(o.log);
    this.routes = new RouteReconciler(o.nl, this.ops, { family: 4, scope: () => ({ index: this.link!.index }) });
    this.table = new PeerTable((l) => parseWireguardPeer(l, { publicIp: o.underlay.v4, publicKey, listenPort: o.listenPort }), o.log);
  }

  /** Device operations run one at a time: the watch and the resync loop both call in, and UAPI calls yield. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  async configure(own: Lease): Promise<void> {
    this.own = own;
    await this.serial(() => this.bringUp());
  }

  /** The device with our key and port, address, link up and the network route. Peers follow with the next reconcile. */
  private async bringUp(): Promise<void> {
    const { provider, key, listenPort, log } = this.o;
    this.link = await provider.up(this.mtu);
    // Adopting a kernel device keeps its peers (reconciled next), so no replace-peers here.
    await provider.set({ privateKey: key.privateKey, listenPort });
    this.applied.clear();
    this.configureAddress();
    log.info('WireGuard device configured', { device: provider.device, impl: provider.impl, publicKey: this.leaseData.PublicKey, listenPort, mtu: this.mtu });
  }

  // ip addr replace <subnet>.0/32 dev weft-wg (others dropped); ip link set up; ip route replace <Network> dev weft-wg
  private configureAddress(): void {
    if (!this.own || !this.link) return;
    const { nl, network } = this.o;
    const index = this.link.index;
    const want = this.own.subnet.address(0);
    for (const a of nl.addrList({ index, family: 4 })) {
      if (a.address !== want || a.prefixLen !== 32) nl.addrDel({ index, address: a.address, prefixLen: a.prefixLen });
    }
    nl.addrReplace({ index, address: want, prefixLen: 32 });
    if (!nl.linkByIndex(index)?.up) nl.linkSetUp(index);
    this.routes.want('network', { dst: network.toString(), index });
    this.routes.reconcile();
  }

  async apply(batch: LeaseBatch): Promise<void> {
    await this.serial(async () => {
      for (const c of this.table.apply(batch)) {
        const p = c.after ?? c.before!;
        this.o.log.info(c.after ? (c.before ? 'peer updated' : 'peer added') : 'peer removed', { subnet: c.subnet, publicIp: p.endpoint.ip, publicKey: p.publicKey });
      }
      if (!this.link) return;
      if (batch.snapshot) await this.reconcile();
      else await this.sync(this.applied, false);
    });
  }

  /** The peers the leases want, by public key; a key published by several leases gets all their subnets. */
  private desired(): Map<string, PeerState> {
    const out = new Map<string, PeerState & { allowedIps: Prefix[] }>();
    const peers = [...this.table.values()].sort((a, b) => (a.subnet.ip < b.subnet.ip ? -1 : a.subnet.ip > b.subnet.ip ? 1 : 0));
    for (const p of peers) {
      const publicKey = decodeKey(p.publicKey)!;
      const have = out.get(hex(publicKey));
      if (have) have.allowedIps.push(p.subnet);
      else {
        out.set(hex(publicKey), {
          publicKey,
          endpoint: p.endpoint,
          allowedIps: [p.subnet],
          persistentKeepalive: this.o.persistentKeepalive,
          ...(this.o.psk ? { presharedKey: this.o.psk } : {}),
        });
      }
    }
    return out;
  }

  /**
   * Why `cur` is not `want`, or undefined when it is. Read from the device,
   * a different endpoint is WireGuard roaming (the peer wrote from elsewhere,
   * e.g. through NAT) and is left alone; only a missing one is repaired.
   */
  private drift(cur: PeerState, want: PeerState, fromDevice: boolean): string | undefined {
    const ips = (p: PeerState) => p.allowedIps.map(String).sort().join(',');
    if (ips(cur) !== ips(want)) return `allowed IPs ${ips(cur) || 'none'}`;
    if (cur.persistentKeepalive !== want.persistentKeepalive) return `keepalive ${cur.persistentKeepalive}`;
    if (!(cur.presharedKey ?? ZERO_KEY).equals(want.presharedKey ?? ZERO_KEY)) return 'preshared key';
    if (!cur.endpoint) return 'no endpoint';
    if (!fromDevice && (cur.endpoint.ip !== want.endpoint!.ip || cur.endpoint.port !== want.endpoint!.port)) return `endpoint ${cur.endpoint.ip}:${cur.endpoint.port}`;
    return undefined;
  }

  /**
   * The changes for one peer. A peer new to the device is sent one keepalive
   * at once (keepalive on, then back to the configured value): the handshake
   * happens now, so a peer that still holds a session with this host's
   * previous device (a restarted agent) switches at once instead of after its
   * own rekey timeout.
   */
  private peerConfigs(w: PeerState, fresh: boolean): WgPeerConfig[] {
    const base: WgPeerConfig = {
      publicKey: w.publicKey,
      presharedKey: w.presharedKey ?? ZERO_KEY,
      endpoint: w.endpoint!,
      persistentKeepalive: w.persistentKeepalive,
      replaceAllowedIps: true,
      allowedIps: w.allowedIps,
    };
    if (!fresh || w.persistentKeepalive > 0) return [base];
    return [{ ...base, persistentKeepalive: 1 }, { publicKey: w.publicKey, persistentKeepalive: 0 }];
  }

  /** Diffs `current` (the device, or what we last set) against the leases and sends the difference. */
  private async sync(current: ReadonlyMap<string, PeerState>, fromDevice: boolean): Promise<void> {
    const want = this.desired();
    const changes: Array<{ key: string; configs: WgPeerConfig[] }> = [];
    for (const [k, cur] of current) {
      if (want.has(k)) continue;
      if (fromDevice) this.o.log.info('removing a WireGuard peer no lease wants', { publicKey: encodeKey(cur.publicKey), allowedIps: cur.allowedIps.map(String) });
      changes.push({ key: k, configs: [{ publicKey: cur.publicKey, remove: true }] });
    }
    for (const [k, w] of want) {
      const cur = current.get(k);
      const why = cur ? this.drift(cur, w, fromDevice) : 'new';
      if (why === undefined && !this.dirty.has(k)) continue;
      if (fromDevice && cur && why) this.o.log.warn('repairing a WireGuard peer', { publicKey: encodeKey(w.publicKey), found: why });
      changes.push({ key: k, configs: this.peerConfigs(w, !cur) });
    }
    if (changes.length === 0) {
      this.applied = want;
      return;
    }
    const failed = await this.send(changes);
    this.dirty.clear();
    const next = new Map(want);
    for (const k of failed) {
      this.dirty.add(k);
      // A removal that failed is tried again; a failed add or change is sent again in full.
      const cur = current.get(k);
      if (cur && !want.has(k)) next.set(k, cur);
    }
    this.applied = next;
  }

  /** All changes in one message; if that fails, one message per peer, so one bad peer does not hold up the rest. Returns the keys that failed. */
  private async send(changes: ReadonlyArray<{ key: string; configs: WgPeerConfig[] }>): Promise<string[]> {
    try {
      await this.o.provider.set({ peers: changes.flatMap((c) => c.configs) });
      return [];
    } catch (e) {
      if (changes.length === 1) {
        this.failure('configuring a WireGuard peer failed; will retry', e, changes[0]!.configs[0]!);
        return [changes[0]!.key];
      }
    }
    const failed: string[] = [];
    for (const c of changes) {
      try {
        await this.o.provider.set({ peers: c.configs });
      } catch (e) {
        this.failure('configuring a WireGuard peer failed; will retry', e, c.configs[0]!);
        failed.push(c.key);
      }
    }
    return failed;
  }

  private failure(msg: string, err: unknown, peer?: WgPeerConfig): void {
    this.errors++;
    this.o.log.error(msg, { device: this.o.provider.device, err, ...(peer ? { publicKey: encodeKey(peer.publicKey) } : {}) });
  }

  /** Reads the device and makes it what the leases say: key, port, every peer. */
  private async reconcile(): Promise<void> {
    const { provider, key, listenPort } = this.o;
    let dev: WgDevice;
    try {
      dev = await provider.get();
      if (!dev.privateKey?.equals(key.privateKey) || dev.listenPort !== listenPort) {
        this.o.log.warn('WireGuard device has another key or port; setting ours', { device: provider.device, listenPort: dev.listenPort });
        await provider.set({ privateKey: key.privateKey, listenPort });
      }
    } catch (e) {
      this.failure('reading the WireGuard device failed; will retry', e);
      return;
    }
    await this.sync(new Map(dev.peers.map((p) => [hex(p.publicKey), p])), true);
  }

  async resync(full: boolean): Promise<void> {
    await this.serial(async () => {
      if (this.closed || !this.own) return;
      const { nl, provider, log } = this.o;
      const link = this.link && nl.linkByIndex(this.link.index);
      if (!provider.alive() || !link || link.name !== provider.device) {
        log.warn('WireGuard device gone; recreating it with all peers', { device: provider.device, impl: provider.impl, deviceFound: !!link, running: provider.alive() });
        try {
          await this.bringUp();
        } catch (e) {
          this.failure('recreating the WireGuard device failed; will retry', e);
          return;
        }
        this.deviceRecreated++;
        await this.reconcile();
        return;
      }
      if (full) {
        try {
          this.configureAddress();
        } catch (e) {
          this.failure('restoring the WireGuard device address or route failed; will retry', e);
        }
        await this.reconcile();
        return;
      }
      if (!link.up) this.ops.attempt('link set up', provider.device, () => nl.linkSetUp(link.index));
      this.routes.retryFailed();
      if (this.dirty.size) await this.sync(this.applied, false);
    });
  }

  stats(): BackendStats {
    let programmed = 0;
    for (const p of this.table.values()) {
      const k = hex(decodeKey(p.publicKey)!);
      if (this.applied.has(k) && !this.dirty.has(k)) programmed++;
    }
    const { provider } = this.o;
    return {
      peersKnown: this.table.size,
      peersProgrammed: programmed,
      kernelErrors: this.ops.errors + this.errors,
      invalidPeers: this.table.invalid,
      deviceRecreated: this.deviceRecreated,
      wireguard: { impl: provider.impl, device: provider.device, publicKey: this.leaseData.PublicKey, listenPort: this.o.listenPort },
    };
  }

  /** Kernel device: left in place with its peers. wireguard-go: stopped, and its device with it. */
  async close(): Promise<void> {
    await this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.o.provider.close();
    });
  }
}
