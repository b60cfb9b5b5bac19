// weftd's life: network config → underlay → backend device → lease →
// device address, bridge, ip_forward, masquerade, subnet.env → peers from the
// watch, kept in step with periodic resyncs. On abort (SIGTERM/SIGINT) it
// returns and leaves kernel state and the lease in place, so a restarted
// agent picks both up without cutting traffic. A data plane resumed from saved
// state before etcd (resume.ts) is handed to the backend it belongs to.
//
// Staying up: kernel and etcd failures that a retry can fix (KernelError and
// etcd errors marked retryable: interrupted dumps, ENOBUFS, timeouts, EBUSY,
// an unreachable etcd) are retried with backoff, and the agent keeps serving
// its peers meanwhile; only what no retry can fix ends it, naming the
// operation and errno. The lease is kept by a LeaseKeeper (put back when its
// key vanishes, moved in place when another host takes the subnet), the
// underlay is watched (a new public IP is followed), and skipped conflicting
// leases are reconsidered by the watch.
import type { Backend, Resumed } from '../backend/backend.js';
import { BACKENDS } from '../backend/builtin.js';
import type { BackendRegistry } from '../backend/registry.js';
import type { ForwardRules } from '../host/forward.js';
import { readStateFile, writeStateFile } from '../host/state-dir.js';
import { readPreviousSubnets } from '../host/subnet-env.js';
import { backendBusy, PeerStateWriter, peerStateFileOf } from './peer-state.js';
import { findUnderlay, requireV4, requireV6, type Underlay } from '../host/underlay.js';
import { Backoff, retrying, sleep } from '../lib/backoff.js';
import { ConfigError, errorCode, isRetryable } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { trace } from '../lib/trace.js';
import { NetlinkHandle, NetlinkMonitor, RTMGRP_IPV4_IFADDR, RTMGRP_LINK } from '../netlink/index.js';
import { SubnetManager, type AcquireRequest, type Lease, type NetworkConfig } from '../subnet-manager/index.js';
import type { LeaseChange, LeaseKeeper } from '../subnet-manager/lease-keeper.js';
import { etcdOptionsFrom } from './etcd-flags.js';
import type { AgentConfig } from './flags.js';
import { HealthServer, type HealthSource } from './health.js';
import { configureHost } from './host-config.js';
import { SystemdNotifier } from './systemd.js';
import { UnderlayWatch } from './underlay-watch.js';

export interface DaemonStatus {
  phase: 'starting' | 'waiting-for-etcd' | 'acquiring' | 'syncing' | 'ready' | 'stopped';
  lease?: Lease;
  network?: NetworkConfig;
  backend?: Backend;
}

/** Longest wait between attempts at a failing resync, host configuration or underlay move. */
const RETRY_MAX_MS = 30_000;

export class Daemon {
  readonly status: DaemonStatus = { phase: 'starting' };
  private readonly systemd: SystemdNotifier;
  /** WEFT-FWD, kept on every full resync (--iptables-forward-rules). */
  private forward?: ForwardRules;
  private keeper?: LeaseKeeper;
  private sm?: SubnetManager;
  private nl?: NetlinkHandle;
  /** Set when the host configuration for the current lease is not (fully) in place: retried by the resync loop. */
  private hostStale = false;
  /** Aborts the current lease watch, so that it starts again with the current own lease. */
  private restartWatch: () => void = () => {};

  constructor(
    private readonly cfg: AgentConfig,
    private readonly log: Logger,
    private readonly backends: BackendRegistry = BACKENDS,
    /** What resumeDataPlane() started before etcd; the matching backend adopts it. */
    private resumed?: Resumed,
  ) {
    this.systemd = new SystemdNotifier(log.child({ component: 'systemd' }));
  }

  /** Moves to a new phase and tells systemd what weftd is doing. */
  private phase(p: DaemonStatus['phase'], text: string): void {
    this.status.phase = p;
    this.systemd.status(text);
  }

  async run(signal: AbortSignal): Promise<void> {
    const { cfg, log } = this;
    const sm = new SubnetManager({
      endpoints: [...cfg.etcdEndpoints],
      prefix: cfg.etcdPrefix,
      ttlSeconds: cfg.subnetLeaseTtlSeconds,
      renewMarginSeconds: Math.round(cfg.subnetLeaseRenewMarginMinutes * 60),
      logger: log,
      etcdOptions: etcdOptionsFrom(cfg),
    });
    this.sm = sm;
    const nl = NetlinkHandle.open();
    this.nl = nl;
    // Up before etcd is: /healthz must say "etcd unreachable" rather than nothing.
    const health = cfg.healthzPort > 0 ? new HealthServer(this.healthSource(sm), log.child({ component: 'health' }), { perPeerPaths: cfg.metricsPeerPaths }) : undefined;
    try {
      await health?.listen(cfg.healthzIp, cfg.healthzPort);
      await this.serve(sm, nl, signal);
    } finally {
      this.systemd.stopping();
      this.status.phase = 'stopped';
      await health?.close();
      await this.status.backend?.close();
      await this.resumed?.close();  // stopped before a backend adopted it: left for the next weftd
      await sm.close().catch((e) => log.warn('closing the etcd client failed', { err: e }));
      for (const c of this.closers.splice(0)) c.close();
      nl.close();
    }
  }

  private async serve(sm: SubnetManager, nl: NetlinkHandle, signal: AbortSignal): Promise<void> {
    const { cfg, log } = this;
    this.phase('waiting-for-etcd', `reading the network config from ${cfg.etcdEndpoints.join(',')}`);
    let network: NetworkConfig;
    try {
      network = await retrying('reading the network config', log, signal, () => sm.getNetworkConfig());
    } catch (e) {
      if (!isRetryable(e) && !signal.aborted && !(e instanceof ConfigError)) throw new ConfigError((e as Error).message);
      throw e;
    }
    this.status.network = network;
    log.info('network config', { network: network.network.toString(), subnetLen: network.subnetLen, backend: network.backend.type });
    // The backend's own config is checked before anything is created: a bad one exits 2 naming the key.
    const { plugin, config } = this.resolveBackend(network, sm.configKey);
    if (network.enableIPv6 && !plugin.dualStack) {
      throw new ConfigError(`${sm.configKey}: EnableIPv6 is not supported by the ${plugin.type} backend of this weftd (dual stack runs on ${this.backends.types().filter((t) => this.backends.get(t)?.dualStack).join(', ')})`);
    }

    const underlay = await retrying('finding the underlay', log, signal, async () => findUnderlay(nl, cfg.iface, cfg.publicIp, () => readStateFile(cfg.stateDir, 'underlay'), cfg.publicIpv6));
    rememberUnderlay(cfg.stateDir, underlay.name, log);
    const publicIp = requireV4(underlay, 'the subnet lease');
    // Dual stack: peers reach this host's IPv6 device at its PublicIPv6; without one the network cannot be joined (exit 2).
    let publicIpv6: string | undefined;
    if (network.enableIPv6) {
      try { publicIpv6 = requireV6(underlay, 'EnableIPv6 (a dual-stack network)'); } catch (e) { throw new ConfigError((e as Error).message); }
    }
    log.info('underlay', { iface: underlay.name, publicIp, ...(underlay.v6 ? { publicIpv6: underlay.v6 } : {}), mtu: underlay.mtu });

    let resumed = this.resumed;
    if (resumed && resumed.type !== plugin.type) {
      log.warn('the network config names another backend: removing the data path resumed from saved state', { resumed: resumed.type, backend: plugin.type });
      await resumed.discard(nl);
      resumed = undefined;
    }
    const takeResumed = (): Resumed => {
      const r = resumed!;
      resumed = undefined;
      return r;
    };
    const backend = await retrying('creating the backend device', log, signal, async () => plugin.create({
      config,
      flags: cfg.backendFlags,
      nl,
      log: log.child({ component: plugin.type }),
      network: network.network,
      ...(network.ipv6Network ? { ipv6Network: network.ipv6Network } : {}),
      underlay: publicIpv6 ? underlay : { ...underlay, v6: undefined },
      etcdPrefix: cfg.etcdPrefix,
      stateDir: cfg.stateDir,
      routeProtocol: cfg.routeProtocol,
      // Offered once: a failed attempt has adopted or closed it.
      ...(resumed ? { resumed: takeResumed() } : {}),
      track: (x) => this.track(x),
    }));
    this.resumed = undefined;  // the backend owns it now (adopted or closed)
    this.status.backend = backend;

    this.phase('acquiring', `acquiring a subnet lease for ${publicIp}`);
    const request = (): AcquireRequest => ({
      publicIP: this.underlay!.underlay.v4!, backendType: backend.type, backendData: backend.leaseData,
      ...(publicIpv6 ? { publicIPv6: publicIpv6 } : {}),
      ...(publicIpv6 && backend.leaseV6Data !== undefined ? { backendV6Data: backend.leaseV6Data } : {}),
    });
    this.underlay = new UnderlayWatch(nl, this.track(NetlinkMonitor.open({ groups: RTMGRP_LINK | RTMGRP_IPV4_IFADDR })), log.child({ component: 'underlay' }), underlay, cfg.publicIp);
    const previous = readPreviousSubnets(cfg.subnetFile);
    const lease = await retrying('acquiring a subnet lease', log, signal, () =>
      sm.acquireLease(network, { ...request(), ...(previous.v4 ? { previousSubnet: previous.v4 } : {}), ...(previous.v6 ? { previousIpv6Subnet: previous.v6 } : {}) }),
    );
    this.status.lease = lease;
    log.info('lease acquired', { subnet: lease.subnet.toString(), ...(lease.ipv6Subnet ? { ipv6Subnet: lease.ipv6Subnet.toString() } : {}), expires: lease.expiration?.toISOString() ?? 'never (reservation)' });

    this.forward = await retrying('configuring the host', log, signal, () => this.configureHost(network, lease, backend));

    // The keeper, the watch and the resync loop run until the signal aborts; a fatal failure of any stops the agent.
    const inner = new AbortController();
    const stop = () => inner.abort();
    signal.addEventListener('abort', stop, { once: true });
    let failure: unknown;
    const fail = (e: unknown) => {
      failure ??= e;
      inner.abort();
    };
    const keeper = sm.keepLease(lease, network, request(), {
      signal: inner.signal,
      onChange: (c) => this.leaseChanged(c, network, backend),
    });
    this.keeper = keeper;
    const keep = keeper.done.catch(fail);

    this.phase('syncing', `lease ${lease.subnet}; programming peers`);
    const watch = this.watchLoop(sm, network, backend, inner.signal).catch(fail);
    const resync = this.resyncLoop(network, backend, inner.signal).catch(fail);
    await Promise.all([keep, watch, resync]);
    signal.removeEventListener('abort', stop);
    if (failure !== undefined && !signal.aborted) throw failure;
  }

  private underlay?: UnderlayWatch;
  /** A new underlay address not followed yet (the last attempt failed). */
  private pendingUnderlay?: Underlay;

  /** The lease watch, started again (a new snapshot) whenever our own lease changes. */
  private async watchLoop(sm: SubnetManager, network: NetworkConfig, backend: Backend, signal: AbortSignal): Promise<void> {
    const { log } = this;
    while (!signal.aborted) {
      const restart = new AbortController();
      this.restartWatch = () => restart.abort();
      const own = this.keeper!.lease;
      await sm.watchLeases(network, {
        signal: AbortSignal.any([signal, restart.signal]),
        own,
        prefer: (l) => backend.holds?.(l) ?? false,
        onBatch: async (b) => {
          try {
            trace('backend.apply', { events: b.events.length, snapshot: b.snapshot });
            await backend.apply(b);
            trace('backend.applied', { events: b.events.length });
          } catch (e) {
            // The backend reconciles everything at its next resync.
            this.transient('applying lease changes to the kernel', e);
          }
          if (this.status.phase !== 'ready') {
            this.status.phase = 'ready';
            const s = backend.stats();
            log.info('ready', { subnet: own.subnet.toString(), peers: s.peersKnown, programmed: s.peersProgrammed });
            // Only now: lease held, device, bridge and subnet file exist, first peer sync applied.
            this.systemd.ready(`ready: subnet ${own.subnet}, ${s.peersProgrammed}/${s.peersKnown} peers programmed`);
          }
        },
      });
    }
  }

  /** A failure a retry can fix is logged and left to the next attempt; anything else is thrown (the agent stops). */
  private transient(what: string, e: unknown, retryInMs?: number): void {
    if (!isRetryable(e)) throw e;
    this.log.warn(`${what} failed; will retry`, { err: e as Error, ...(retryInMs !== undefined ? { retryInMs } : {}) });
  }

  /** What the keeper changed about our lease: the host follows. */
  private async leaseChanged(c: LeaseChange, network: NetworkConfig, backend: Backend): Promise<void> {
    this.status.lease = c.lease;
    if (c.kind === 'restored') return; // same subnet, same value: nothing on the host changes
    if (c.kind === 'moved') {
      this.log.warn('our subnet went to another host; leased a new one and reconfiguring this host in place (containers with an address of the old subnet must be attached again)', {
        from: c.previous.subnet.toString(), to: c.lease.subnet.toString(), reason: c.reason,
      });
      this.hostStale = true;
      await this.reconfigureHost(network, backend);
    }
    // Our own lease is filtered from the watch and its claims are reserved: start it again with the new one.
    this.restartWatch();
  }

  private async reconfigureHost(network: NetworkConfig, backend: Backend): Promise<void> {
    try {
      this.forward = await this.configureHost(network, this.keeper!.lease, backend);
      this.hostStale = false;
    } catch (e) {
      this.transient('configuring the host for the new lease', e);
    }
  }

  /**
   * The device, bridge, subnet file... for `lease`. A device deleted meanwhile (by hand: ENODEV)
   * is created again by the backend's check, and the host configured again (a few times).
   */
  private async configureHost(network: NetworkConfig, lease: Lease, backend: Backend): Promise<ForwardRules | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await configureHost(this.cfg, this.log, this.nl!, network, lease, backend);
      } catch (e) {
        if (errorCode(e) !== 'ENODEV' || attempt >= 3) throw e;
        this.log.warn('a device vanished while configuring the host; creating it again', { attempt, err: e as Error });
        await backend.resync(false);
      }
    }
  }

  /** Registered backend for Backend.Type and its parsed config; a ConfigError names the config key. */
  private resolveBackend(network: NetworkConfig, configKey: string): ReturnType<BackendRegistry['resolve']> {
    try {
      return this.backends.resolve(network.backend);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`${configKey}: ${e.message}`);
      throw e;
    }
  }

  private readonly closers: Array<{ close(): void }> = [];

  /** Remembers something to close when the daemon stops. */
  private track<T extends { close(): void }>(x: T): T {
    this.closers.push(x);
    return x;
  }

  /** Our public IP moved (not given with --public-ip): the backend, then the lease follow it. */
  private async followUnderlay(u: Underlay, backend: Backend): Promise<void> {
    const from = this.underlay!.underlay.v4;
    if (!backend.setUnderlay) {
      this.log.warn('the underlay address changed, but this backend cannot follow it without a restart', { from, to: u.v4, backend: backend.type });
      this.underlay!.moved(u);
      return;
    }
    this.log.warn('the underlay address changed; moving the backend and the lease to it', { from, to: u.v4 });
    await backend.setUnderlay({ ...u, v4: u.v4! });
    this.underlay!.moved(u);
    // Our TCP connections to etcd left from the old address, which is gone: the
    // kernel can send nothing more on them, and grpc's keepalive would see that
    // only after 15 s. Connect anew before the lease is rewritten.
    if (from !== undefined && from !== u.v4) this.sm!.reconnect(`the underlay address changed from ${from} to ${u.v4}`);
    const l = this.keeper!.lease;
    this.keeper!.update({ ...l.attrs, publicIP: u.v4!, backendData: backend.leaseData });
  }

  private healthSource(sm: SubnetManager): HealthSource {
    return {
      phase: () => this.status.phase,
      leaseExpiry: () => this.status.lease?.expiration,
      leaseExpiresInSeconds: () => (this.keeper ? this.keeper.expiresInSeconds() ?? Infinity : undefined),
      leaseRecoveries: () => this.keeper?.recoveries ?? 0,
      subnet: () => this.status.lease?.subnet.toString(),
      backend: () => this.status.backend,
      forwardRules: () => this.forward?.status(),
      etcd: () => sm.stats,
      kernelErrors: () => this.nl?.errors.list() ?? [],
      probeEtcd: async () => {
        try {
          await sm.getNetworkConfig();
        } catch (e) {
          // etcd answered, the config is just not there (or bad): still reachable.
          if (errorCode(e) !== 'ENOCONFIG' && errorCode(e) !== 'EBADCONFIG') throw e;
        }
        return true;
      },
    };
  }

  /**
   * Every second: the underlay, a pending host configuration, cheap backend
   * checks (device present, failed entries retried); every --resync-interval:
   * a full list/diff/apply. A transient failure backs off (up to 30 s).
   */
  private async resyncLoop(network: NetworkConfig, backend: Backend, signal: AbortSignal): Promise<void> {
    let last = Date.now();
    const backoff = new Backoff(1000, RETRY_MAX_MS);
    let wait = 1000;
    while (!signal.aborted) {
      await sleep(wait, signal);
      if (signal.aborted || this.status.phase !== 'ready') continue;
      const full = Date.now() - last >= this.cfg.resyncIntervalSeconds * 1000;
      try {
        const moved = this.underlay!.check();
        if (moved) this.pendingUnderlay = moved;
        if (this.pendingUnderlay) {
          await this.followUnderlay(this.pendingUnderlay, backend);
          this.pendingUnderlay = undefined;
        }
        if (this.hostStale) await this.reconfigureHost(network, backend);
        await backend.resync(full);
        if (full) await this.forward?.keep();
        if (full) last = Date.now();
        await this.writePeerState(backend);
        backoff.reset();
        wait = 1000;
      } catch (e) {
        wait = backoff.next();
        this.transient('keeping the data plane in step', e, wait);
      }
    }
  }

  private peerStateError = '';
  private peerState?: PeerStateWriter;

  /** Each peer's path and why, for weft status, when they changed; a failure is logged once per distinct error, and retried every second. */
  private async writePeerState(backend: Backend): Promise<void> {
    try {
      const s = backend.stats();
      await (this.peerState ??= new PeerStateWriter(peerStateFileOf(this.cfg))).write(s.paths ?? [], backendBusy(s));
      this.peerStateError = '';
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.peerStateError) this.log.error('cannot write the peer state file; weft status will not show why peers take their paths', { file: peerStateFileOf(this.cfg), err: e });
      this.peerStateError = msg;
    }
  }
}

/** The underlay interface, for the next start when there is no default route to find it by (after a link flap). */
function rememberUnderlay(stateDir: string, name: string, log: Logger): void {
  try {
    if (readStateFile(stateDir, 'underlay') !== name) writeStateFile(stateDir, 'underlay', name);
  } catch (e) {
    log.warn('cannot remember the underlay interface in --state-dir', { err: e as Error });
  }
}
