// weftd's life: network config → underlay → backend device → lease →
// device address, bridge, ip_forward, masquerade, subnet.env → peers from the
// watch, kept in step with periodic resyncs. On abort (SIGTERM/SIGINT) it
// returns and leaves kernel state and the lease in place, so a restarted
// agent picks both up without cutting traffic.
import type { Backend } from '../backend/backend.js';
import { BACKENDS } from '../backend/builtin.js';
import type { BackendRegistry } from '../backend/registry.js';
import { ensureBridge } from '../host/bridge.js';
import { writeCniConf } from '../host/cni-conf.js';
import { ForwardRules, removeForwardRules } from '../host/forward.js';
import { ensureMasquerade, removeMasquerade } from '../host/masquerade.js';
import { readPreviousSubnet, writeSubnetEnv } from '../host/subnet-env.js';
import { peerStateFileOf, writePeerState } from './peer-state.js';
import { ensureSysctl } from '../host/sysctl.js';
import { findUnderlay, requireV4 } from '../host/underlay.js';
import { retrying, sleep } from '../lib/backoff.js';
import { ConfigError, errorCode, isRetryable } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { NetlinkHandle } from '../netlink/index.js';
import { SubnetManager, type Lease, type NetworkConfig } from '../subnet-manager/index.js';
import { etcdOptionsFrom } from './etcd-flags.js';
import type { AgentConfig } from './flags.js';
import { HealthServer, type HealthSource } from './health.js';
import { SystemdNotifier } from './systemd.js';

export interface DaemonStatus {
  phase: 'starting' | 'waiting-for-etcd' | 'acquiring' | 'syncing' | 'ready' | 'stopped';
  lease?: Lease;
  network?: NetworkConfig;
  backend?: Backend;
}

export class Daemon {
  readonly status: DaemonStatus = { phase: 'starting' };
  private readonly systemd: SystemdNotifier;
  /** WEFT-FWD, kept on every full resync (--iptables-forward-rules). */
  private forward?: ForwardRules;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly log: Logger,
    private readonly backends: BackendRegistry = BACKENDS,
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
    const nl = NetlinkHandle.open();
    // Up before etcd is: /healthz must say "etcd unreachable" rather than nothing.
    const health = cfg.healthzPort > 0 ? new HealthServer(this.healthSource(sm), log.child({ component: 'health' })) : undefined;
    try {
      await health?.listen(cfg.healthzIp, cfg.healthzPort);
      await this.serve(sm, nl, signal);
    } finally {
      this.systemd.stopping();
      this.status.phase = 'stopped';
      await health?.close();
      await this.status.backend?.close();
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
    // Accepted for flannel compatibility, not implemented: say so rather than ignore it silently.
    if (network.enableIPv6) log.warn('EnableIPv6 is not supported by weftd yet; only the IPv4 overlay is configured');

    const underlay = findUnderlay(nl, cfg.iface, cfg.publicIp);
    const publicIp = requireV4(underlay, 'the subnet lease');
    log.info('underlay', { iface: underlay.name, publicIp, ...(underlay.v6 ? { publicIpv6: underlay.v6 } : {}), mtu: underlay.mtu });

    const backend = plugin.create({
      config,
      flags: cfg.backendFlags,
      nl,
      log: log.child({ component: plugin.type }),
      network: network.network,
      underlay,
      etcdPrefix: cfg.etcdPrefix,
      routeProtocol: cfg.routeProtocol,
      track: (x) => this.track(x),
    });
    this.status.backend = backend;

    this.phase('acquiring', `acquiring a subnet lease for ${publicIp}`);
    const previousSubnet = readPreviousSubnet(cfg.subnetFile);
    const lease = await retrying('acquiring a subnet lease', log, signal, () =>
      sm.acquireLease(network, {
        publicIP: publicIp,
        backendType: backend.type,
        backendData: backend.leaseData,
        previousSubnet,
      }),
    );
    this.status.lease = lease;
    log.info('lease acquired', { subnet: lease.subnet.toString(), expires: lease.expiration?.toISOString() ?? 'never (reservation)' });

    await this.configureHost(nl, network, lease, backend);

    // Lease renewal and the watch run until the signal aborts; either one failing stops the agent.
    const inner = new AbortController();
    const stop = () => inner.abort();
    signal.addEventListener('abort', stop, { once: true });
    let failure: unknown;
    const fail = (e: unknown) => {
      failure ??= e;
      inner.abort();
    };
    const keep = sm
      .keepLease(lease, {
        signal: inner.signal,
        onChange: (l) => {
          if (!l.subnet.equals(lease.subnet)) {
            fail(new Error(`lease for ${lease.subnet} was lost and re-acquired as ${l.subnet}; restarting to reconfigure`));
            return;
          }
          this.status.lease = l;
          log.info('lease renewed', { subnet: l.subnet.toString(), expires: l.expiration?.toISOString() });
        },
      })
      .catch(fail);

    this.phase('syncing', `lease ${lease.subnet}; programming peers`);
    let first = true;
    const watch = sm
      .watchLeases(network, {
        signal: inner.signal,
        ownSubnet: lease.subnet,
        onBatch: async (b) => {
          await backend.apply(b);
          if (first) {
            first = false;
            this.status.phase = 'ready';
            const s = backend.stats();
            log.info('ready', { subnet: lease.subnet.toString(), peers: s.peersKnown, programmed: s.peersProgrammed });
            // Only now: lease held, device, bridge and subnet file exist, first peer sync applied.
            this.systemd.ready(`ready: subnet ${lease.subnet}, ${s.peersProgrammed}/${s.peersKnown} peers programmed`);
          }
        },
      })
      .catch(fail);

    const resync = this.resyncLoop(backend, inner.signal).catch(fail);
    await Promise.all([keep, watch, resync]);
    signal.removeEventListener('abort', stop);
    if (failure !== undefined && !signal.aborted) throw failure;
  }

  /** The registered backend for Backend.Type and its parsed config; a ConfigError names the config key. */
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

  private async configureHost(nl: NetlinkHandle, network: NetworkConfig, lease: Lease, backend: Backend): Promise<void> {
    const { cfg, log } = this;
    await backend.configure(lease);
    // --bridge none: Docker's docker0 (dockerd --bip from `weft docker-opts`) or the CNI bridge plugin owns the bridge.
    if (cfg.bridge !== 'none') ensureBridge(nl, log, cfg.bridge, lease.subnet, network.network, backend.mtu);
    if (ensureSysctl('net/ipv4/ip_forward', '1')) log.info('enabled net.ipv4.ip_forward');
    if (cfg.iptablesForwardRules) {
      this.forward = ForwardRules.forNetworks([{ cidr: network.network.toString(), family: 4 }], log.child({ component: 'forward' }));
      await this.forward.install();
    } else {
      await removeForwardRules().catch((e) => log.debug('no forward rules to remove', { err: e }));
    }
    if (cfg.ipMasq) {
      await ensureMasquerade(network.network.toString(), lease.subnet.toString());
    } else {
      await removeMasquerade().catch((e) => log.debug('no masquerade rules to remove', { err: e }));
    }
    writeSubnetEnv(cfg.subnetFile, {
      network: network.network.toString(),
      subnet: `${lease.subnet.address(1)}/${lease.subnet.prefixLen}`,
      mtu: backend.mtu,
      ipMasq: cfg.ipMasq,
    });
    if (cfg.cniConf) {
      writeCniConf(cfg.cniConf, {
        ...(cfg.bridge !== 'none' ? { bridge: cfg.bridge } : {}),
        subnet: lease.subnet.toString(),
        gateway: lease.subnet.address(1),
        mtu: backend.mtu,
        ipamDataDir: cfg.cniIpamDataDir,
        plugin: cfg.cniPlugin,
        subnetFile: cfg.subnetFile,
      });
    }
    log.info('host configured', { bridge: cfg.bridge, subnetFile: cfg.subnetFile, mtu: backend.mtu });
  }

  private healthSource(sm: SubnetManager): HealthSource {
    return {
      phase: () => this.status.phase,
      leaseExpiry: () => this.status.lease?.expiration,
      subnet: () => this.status.lease?.subnet.toString(),
      backend: () => this.status.backend,
      forwardRules: () => this.forward?.status(),
      etcd: () => sm.stats,
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

  /** Every second: cheap checks (device present, failed entries retried); every --resync-interval: full list/diff/apply. */
  private async resyncLoop(backend: Backend, signal: AbortSignal): Promise<void> {
    let last = Date.now();
    while (!signal.aborted) {
      await sleep(1000, signal);
      if (signal.aborted || this.status.phase !== 'ready') continue;
      const full = Date.now() - last >= this.cfg.resyncIntervalSeconds * 1000;
      if (full) last = Date.now();
      await backend.resync(full);
      if (full) await this.forward?.keep();
      this.writePeerState(backend);
    }
  }

  private peerStateError = '';

  /** Each peer's path and why, for weft status; a failure is logged once per distinct error, and retried every second. */
  private writePeerState(backend: Backend): void {
    try {
      writePeerState(peerStateFileOf(this.cfg), backend.stats().paths ?? []);
      this.peerStateError = '';
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.peerStateError) this.log.error('cannot write the peer state file; weft status will not show why peers take their paths', { file: peerStateFileOf(this.cfg), err: e });
      this.peerStateError = msg;
    }
  }
}
