// One WireGuard device kept in step with the leases: the device itself (from
// its WgProvider: kernel or wireguard-go), its address, the route for the
// whole network through it, and one WireGuard peer per remote host of its
// family. The backend has one per family: weft-wg for IPv4 now; flannel's
// separate mode adds weft-wg-v6 with the peers' IPv6 subnets and endpoints
// (a second WgDevice with family 6, address <v6 subnet>/128, ListenPortV6).
//   wg set weft-wg private-key <key> listen-port 51820
//   ip addr replace <subnet>.0/32 dev weft-wg; ip link set weft-wg up
//   ip route replace <Network> dev weft-wg scope link
//   per peer: wg set weft-wg peer <PublicKey> endpoint <ip:port> allowed-ips <subnet> ...
// The device's peers are reconciled (list, diff, apply) on every snapshot and
// full resync: a peer no lease wants is removed.
import type { IpFamily, Prefix } from '../../lib/ip.js';
import type { Logger } from '../../lib/log.js';
import type { Link, NetlinkHandle, WgDevice, WgEndpoint, WgPeerConfig } from '../../netlink/index.js';
import { KernelOps } from '../kernel-ops.js';
import { RouteReconciler } from '../route-reconciler.js';
import { encodeKey, type WgKeyPair } from './key.js';
import type { WgProvider } from './provider.js';

export type WgDeviceNetlink = Pick<NetlinkHandle, 'linkByIndex' | 'linkSetUp' | 'addrList' | 'addrReplace' | 'addrDel' | 'routeDump' | 'batch'>;

/** What one remote host is to this device: its key, where to send, which subnet it owns. */
export interface PeerView {
  readonly publicKey: Buffer;
  readonly endpoint: WgEndpoint;
  readonly subnet: Prefix;
}

export interface WgDeviceOptions {
  readonly family: IpFamily;
  readonly nl: WgDeviceNetlink;
  readonly log: Logger;
  readonly provider: WgProvider;
  readonly key: WgKeyPair;
  readonly listenPort: number;
  readonly mtu: number;
  /** Seconds, 0 = off (Backend.PersistentKeepaliveInterval). */
  readonly persistentKeepalive: number;
  /** weft's route protocol (--route-protocol): the Network route into the device carries it. */
  readonly routeProtocol: number;
  /** Backend.PSK, 32 bytes. */
  readonly psk?: Buffer;
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
/**
 * How long the side with the higher public key waits for the other side's
 * handshake before starting one itself (a new peer on both ends at once).
 */
export const HANDSHAKE_WAIT_MS = 300;

/** Keepalive on, then off again: WireGuard sends one now, starting a handshake when it has no session. */
const kick = (publicKey: Buffer): WgPeerConfig[] => [
  { publicKey, persistentKeepalive: 1, updateOnly: true },
  { publicKey, persistentKeepalive: 0, updateOnly: true },
];

export class WgDeviceSync {
  private readonly ops: KernelOps;
  private readonly routes: RouteReconciler;
  private link?: Link;
  /** This host's address on the device and the network routed into it (from the lease and the config). */
  private own?: { address: string; prefixLen: number; network: Prefix };
  /** What this agent last put on the device, by public key (hex). */
  private applied = new Map<string, PeerState>();
  /** Peers whose last change failed; sent again every second. */
  private readonly dirty = new Set<string>();
  private errors = 0;
  /** New peers whose handshake the other side starts: when to look whether it came (ms, Date.now()). */
  private readonly handshakeDue = new Map<string, number>();
  deviceRecreated = 0;

  constructor(private readonly o: WgDeviceOptions) {
    this.ops = new KernelOps(o.log);
    this.routes = new RouteReconciler(o.nl, this.ops, { family: o.family, scope: () => ({ protocol: o.routeProtocol, device: this.link!.index, ...(this.own ? { within: this.own.network } : {}) }) });
  }

  get configured(): boolean {
    return this.link !== undefined;
  }

  /** Failed operations since start. */
  get kernelErrors(): number {
    return this.ops.errors + this.errors;
  }

  /** Whether the peer with this key is on the device as wanted. */
  programmed(publicKey: Buffer): boolean {
    const k = hex(publicKey);
    return this.applied.has(k) && !this.dirty.has(k);
  }

  /** The device with our key and port, address, link up and the network route. Peers follow with the next reconcile. */
  async bringUp(own: { address: string; prefixLen: number; network: Prefix }): Promise<void> {
    const { provider, key, listenPort, log } = this.o;
    this.own = own;
    this.link = await provider.up(this.o.mtu);
    // Adopting a kernel device keeps its peers (reconciled next), so no replace-peers here.
    await provider.set({ privateKey: key.privateKey, listenPort });
    this.applied.clear();
    await this.configureAddress();
    log.info('WireGuard device configured', { device: provider.device, impl: provider.impl, publicKey: encodeKey(key.publicKey), listenPort, mtu: this.o.mtu });
  }

  // ip addr replace <address>/<len> dev weft-wg (others of the family dropped); ip link set up; ip route replace <Network> dev weft-wg
  private async configureAddress(): Promise<void> {
    if (!this.own || !this.link) return;
    const { nl, family } = this.o;
    const index = this.link.index;
    const { address, prefixLen, network } = this.own;
    for (const a of nl.addrList({ index, family })) {
      // The kernel's own IPv6 link-local address stays.
      if (family === 6 && a.address.toLowerCase().startsWith('fe80:')) continue;
      if (a.address !== address || a.prefixLen !== prefixLen) nl.addrDel({ index, address: a.address, prefixLen: a.prefixLen });
    }
    nl.addrReplace({ index, address, prefixLen });
    if (!nl.linkByIndex(index)?.up) nl.linkSetUp(index);
    this.routes.want('network', { dst: network.toString(), index });
    await this.routes.reconcile();
  }

  /** The peers the leases want, by public key; a key published by several leases gets all their subnets. */
  private desired(peers: readonly PeerView[]): Map<string, PeerState> {
    const out = new Map<string, PeerState & { allowedIps: Prefix[] }>();
    const sorted = [...peers].sort((a, b) => (a.subnet.ip < b.subnet.ip ? -1 : a.subnet.ip > b.subnet.ip ? 1 : 0));
    for (const p of sorted) {
      const have = out.get(hex(p.publicKey));
      if (have) have.allowedIps.push(p.subnet);
      else {
        out.set(hex(p.publicKey), {
          publicKey: p.publicKey,
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
   * (keepalive on, then back to the configured value): the handshake happens
   * now, so a peer that still holds a session with this host's previous
   * device (a restarted agent) switches at once instead of after its own
   * rekey timeout. Only one end of a pair does that at once, the one with the
   * lower public key: when two hosts learn of each other together (one
   * joins), both initiating crosses the handshakes, each end answers the
   * other's initiation and drops the answer to its own, and neither has a
   * session until WireGuard retries 5 s later. The other end looks again
   * after HANDSHAKE_WAIT_MS and starts one itself if none came
   * (checkHandshakes).
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
    if (Buffer.compare(this.o.key.publicKey, w.publicKey) > 0) {
      this.handshakeDue.set(hex(w.publicKey), Date.now() + HANDSHAKE_WAIT_MS);
      return [base];
    }
    return [base, ...kick(w.publicKey)];
  }

  /** Milliseconds until checkHandshakes has work, or undefined. */
  nextHandshakeCheck(): number | undefined {
    let first: number | undefined;
    for (const t of this.handshakeDue.values()) if (first === undefined || t < first) first = t;
    return first === undefined ? undefined : Math.max(0, first - Date.now());
  }

  /** New peers that are due and still have no handshake with this device are sent one keepalive, which starts it. */
  async checkHandshakes(): Promise<void> {
    const now = Date.now();
    const due: string[] = [];
    for (const [k, t] of this.handshakeDue) if (t <= now) due.push(k);
    if (due.length === 0) return;
    for (const k of due) this.handshakeDue.delete(k);
    let dev: WgDevice;
    try {
      dev = await this.o.provider.get();
    } catch (e) {
      // WireGuard's own retry (5 s) still comes.
      this.failure('reading the WireGuard device for handshakes failed', e);
      return;
    }
    const have = new Map(dev.peers.map((p) => [hex(p.publicKey), p]));
    const changes: Array<{ key: string; configs: WgPeerConfig[] }> = [];
    for (const k of due) {
      const p = have.get(k);
      if (!p || p.lastHandshake || p.persistentKeepalive > 0) continue;
      this.o.log.info('no handshake from a new WireGuard peer yet; starting one', { publicKey: encodeKey(p.publicKey), waitedMs: HANDSHAKE_WAIT_MS });
      changes.push({ key: k, configs: kick(p.publicKey) });
    }
    if (changes.length) await this.send(changes);
  }

  /** Applies the leases' peers: against what the device holds (reconcile) or against what we last set. */
  async sync(peers: readonly PeerView[], fromDevice: boolean): Promise<void> {
    if (!fromDevice) return this.diff(this.applied, peers, false);
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
    await this.diff(new Map(dev.peers.map((p) => [hex(p.publicKey), p])), peers, true);
  }

  /** Diffs `current` against the leases and sends the difference. */
  private async diff(current: ReadonlyMap<string, PeerState>, peers: readonly PeerView[], fromDevice: boolean): Promise<void> {
    const want = this.desired(peers);
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

  /** Every second: the device there (else made again with every peer), failed changes retried; `full`: address, route and peers reconciled. */
  async resync(peers: readonly PeerView[], full: boolean): Promise<void> {
    if (!this.own) return;
    const { nl, provider, log } = this.o;
    const link = this.link && nl.linkByIndex(this.link.index);
    if (!provider.alive() || !link || link.name !== provider.device) {
      log.warn('WireGuard device gone; recreating it with all peers', { device: provider.device, impl: provider.impl, deviceFound: !!link, running: provider.alive() });
      try {
        await this.bringUp(this.own);
      } catch (e) {
        this.failure('recreating the WireGuard device failed; will retry', e);
        return;
      }
      this.deviceRecreated++;
      await this.sync(peers, true);
      return;
    }
    if (full) {
      try {
        await this.configureAddress();
      } catch (e) {
        this.failure('restoring the WireGuard device address or route failed; will retry', e);
      }
      await this.sync(peers, true);
      return;
    }
    if (!link.up) this.ops.attempt('link set up', provider.device, () => nl.linkSetUp(link.index));
    await this.routes.retryFailed();
    if (this.dirty.size) await this.sync(peers, false);
  }

  async close(): Promise<void> {
    await this.o.provider.close();
  }
}
