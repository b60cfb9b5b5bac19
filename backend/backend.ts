// A backend connects this host to its peers. Like flannel's, it has two
// halves: before the lease it says what to publish (e.g. the VTEP MAC); after
// it, it consumes lease batches and keeps the kernel (or its forwarder) in
// step. Each backend is a plug-in (BackendPlugin) that the registry
// (registry.ts, builtin.ts) finds by the network config's Backend.Type.
import type { FlagDef } from '../lib/flags.js';
import type { Prefix } from '../lib/ip.js';
import type { Logger } from '../lib/log.js';
import type { NetlinkHandle } from '../netlink/index.js';
import { requireV4, type Underlay } from '../host/underlay.js';
import type { Lease, LeaseBatch } from '../subnet-manager/index.js';
import type { PeerPathState } from './peer-paths.js';
import type { ForwarderStats } from './udp/engine.js';
import type { WireguardStats } from './wireguard/backend.js';

export interface BackendStats {
  /** peers wanted (valid leases of other hosts) */
  peersKnown: number;
  /** peers whose data-plane entries are all in place */
  peersProgrammed: number;
  /** failed kernel operations since start */
  kernelErrors: number;
  /** leases skipped because their backend data was unusable */
  invalidPeers: number;
  /** times the device had to be recreated */
  deviceRecreated: number;
  /** peers this backend cannot reach at all (a host-gw peer behind a gateway); counted in peersKnown, never programmed */
  peersSkipped?: number;
  /** Each peer's path (direct, vxlan) or why it is skipped; backends that choose per peer report it. */
  paths?: readonly PeerPathState[];
  /** Times a peer moved from one path to another. */
  pathChanges?: number;
  /** VXLAN's fallback: probes sent, answered and lost over all peers, by path. */
  probes?: Record<'vxlan' | 'udp', { sent: number; answered: number; lost: number }>;
  /** The userspace forwarder's counters (udp backend): totals, drops by reason, per peer, offloads. */
  forwarder?: ForwarderStats;
  /** The WireGuard device (wireguard backend): kernel or userspace, its name, public key and port. */
  wireguard?: WireguardStats;
}

export interface Backend {
  readonly type: string;
  /** MTU for the bridge, containers and subnet.env. */
  readonly mtu: number;
  /** BackendData for this host's lease (it may change with setUnderlay). */
  readonly leaseData: unknown;
  /** BackendV6Data for a dual-stack lease (vxlan: the IPv6 device's VNI and MAC); undefined when the backend publishes none. */
  readonly leaseV6Data?: unknown;
  /** Addresses the device for the lease we got (after acquire); again, in place, when the lease moves to another subnet. */
  configure(own: Lease): Promise<void>;
  /**
   * Applies one batch of lease events, in order. The peer set is updated
   * first; if the kernel work then throws, the next resync() repairs it. A
   * KernelError marked retryable is transient; anything else is fatal.
   */
  apply(batch: LeaseBatch): Promise<void>;
  /** Compares the data plane with what it should be and repairs it (same error rules as apply). */
  resync(full: boolean): Promise<void>;
  /** The underlay's address changed: send from the new one (after it, leaseData may differ). Absent: a restart is needed. */
  setUnderlay?(u: Underlay & { readonly v4: string }): Promise<void>;
  /**
   * Whether the data plane already carries this lease as a peer (now, or when
   * this agent started): such a lease wins a conflict with a newer one.
   */
  holds?(lease: Lease): boolean;
  stats(): BackendStats;
  /**
   * Stops background work; leaves kernel state in place so traffic continues (the udp
   * backend: its persistent TUN, address and routes, and the saved state it resumes from).
   */
  close(): Promise<void>;
}

/** What a backend's resume() gets: before etcd, only the flags and the host's state directory. */
export interface ResumeContext {
  /** Values of this backend's weftd flags, by key. */
  readonly flags: Readonly<Record<string, unknown>>;
  /** --state-dir: where a backend keeps what it resumes from. */
  readonly stateDir: string;
  readonly nl: NetlinkHandle;
}

/** A data plane a backend started again from its saved state, before the daemon has its network config. */
export interface Resumed {
  /** The backend type that resumed (create() of that type adopts it through ctx.resumed). */
  readonly type: string;
  /** For the log line that says what runs. */
  readonly summary: Readonly<Record<string, unknown>>;
  /** Stops it, leaving what it runs (device, saved state) for the next weftd: weftd stopped before adopting it. */
  close(): Promise<void>;
  /** The network config named another backend: stop it and remove what it runs. */
  discard(nl: NetlinkHandle): Promise<void>;
}

/** What resume() found: a running data plane, or why there is none (nothing saved: neither). */
export interface ResumeResult {
  readonly resumed?: Resumed;
  readonly skipped?: string;
}

/** What a backend is created with: its parsed config, its weftd flags, the host's handles. */
export interface BackendContext<C> {
  /** The backend's own section of the network config, as its parseConfig returned it. */
  readonly config: C;
  /** Values of the weftd flags this backend contributed (BackendPlugin.flags), by key. */
  readonly flags: Readonly<Record<string, unknown>>;
  readonly nl: NetlinkHandle;
  readonly log: Logger;
  /** The cluster network (Network of the config). */
  readonly network: Prefix;
  /** A dual-stack network's IPv6Network; absent when EnableIPv6 is off (then underlay.v6 is absent too). */
  readonly ipv6Network?: Prefix;
  readonly underlay: Underlay;
  /** --etcd-prefix: tells two overlays on one host apart (e.g. in the VTEP MAC). */
  readonly etcdPrefix: string;
  /** --state-dir: per-host state kept across restarts (host/state-dir.ts); what a backend keeps lives here too. */
  readonly stateDir: string;
  /** --route-protocol: every route the backend installs carries it (ip route ... proto N), so it can tell its own routes from anyone else's. */
  readonly routeProtocol: number;
  /** What this backend's resume() started before etcd answered, for create() to adopt. */
  readonly resumed?: Resumed;
  /** Registers something the daemon closes when it stops (a netlink monitor, say). */
  track<T extends { close(): void }>(x: T): T;
}

/** A backend type: how to read its config, which weftd flags it adds, how to make one. */
export interface BackendPlugin<C = unknown> {
  /** Backend.Type in the network config and BackendType in leases ('vxlan'). */
  readonly type: string;
  /** True when it runs a dual-stack network (EnableIPv6): create() then gets ctx.ipv6Network and the underlay's IPv6 address. */
  readonly dualStack?: boolean;
  /** weftd flags of this backend (e.g. --vxlan-device); their values reach create() as ctx.flags. */
  readonly flags: readonly FlagDef[];
  /** Reads the Backend object of the network config into a frozen config; throws ConfigError naming the field. */
  parseConfig(raw: Readonly<Record<string, unknown>>): C;
  /** Makes the backend (creating or adopting its device); throws ConfigError for what the flags or host make impossible. */
  create(ctx: BackendContext<C>): Backend;
  /**
   * Optional: starts the data plane again from what an earlier weftd saved in --state-dir,
   * before etcd is asked anything, so a restart does not cut traffic. Never throws: what
   * stands in the way is the result's `skipped`.
   */
  resume?(ctx: ResumeContext): ResumeResult;
  /** Optional: removes what this backend keeps across restarts (weftd --cleanup); says what went. */
  cleanup?(ctx: ResumeContext): string[];
}

/** Keeps a plug-in's config type when it is listed with others. */
export function defineBackend<C>(p: BackendPlugin<C>): BackendPlugin<C> {
  return Object.freeze(p);
}

/**
 * The host half of a backend's options: netlink handle, logger, network, and
 * the underlay with the IPv4 address today's data paths send from (`what`
 * names the backend in the error when the underlay has none).
 */
export function hostOptions<C>(ctx: BackendContext<C>, what: string) {
  return { nl: ctx.nl, log: ctx.log, network: ctx.network, routeProtocol: ctx.routeProtocol, underlay: { ...ctx.underlay, v4: requireV4(ctx.underlay, what) } };
}
