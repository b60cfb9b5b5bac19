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
import { readPreviousSubnets, writeSubnetEnv } from '../host/subnet-env.js';
import { ensureSysctl } from '../host/sysctl.js';
import { findUnderlay, requireV4, requireV6 } from '../host/underlay.js';
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
    log.info('network config', {
      network: network.network.toString(), subnetLen: network.subnetLen, backend: network.backend.type,
      ...(network.ipv6Network ? { ipv6Network: network.ipv6Network.toString(), ipv6SubnetLen: network.ipv6SubnetLen } : {}),
    });
    // The backend's own config is checked before anything is created: a bad one exits 2 naming the key.
    const { plugin, config } = this.resolveBackend(network, sm.configKey);
    if (network.enableIPv6 && !plugin.dualStack) {
      throw new ConfigError(`${sm.configKey}: EnableIPv6 is not supported by the ${plugin.type} backend of this weftd (dual stack runs on ${this.backends.types().filter((t) => this.backends.get(t)?.dualStack).join(', ')})`);
    }
    const underlay = findUnderlay(nl, cfg.iface, cfg.publicIp, cfg.publicIpv6);
    const publicIp = requireV4(underlay, 'the subnet lease');
    // Dual stack: peers reach this host's IPv6 device at its PublicIPv6; without one the network cannot be joined (exit 2).
    const publicIpv6 = network.enableIPv6 ? this.configErr(() => requireV6(underlay, 'EnableIPv6 (a dual-stack network)')) : undefined;
    log.info('underlay', { iface: underlay.name, publicIp, ...(underlay.v6 ? { publicIpv6: underlay.v6 } : {}), mtu: underlay.mtu });

    const backend = plugin.create({
      config,
      flags: cfg.backendFlags,
      nl,
      log: log.child({ component: plugin.type }),
      network: network.network,
      ...(network.ipv6Network ? { ipv6Network: network.ipv6Network } : {}),
      underlay: publicIpv6 ? underlay : { ...underlay, v6: undefined },
      etcdPrefix: cfg.etcdPrefix,
      routeProtocol: cfg.routeProtocol,
      track: (x) => this.track(x),
    });
    this.status.backend = backend;

    this.phase('acquiring', `acquiring a subnet lease for ${publicIp}`);
    const previous = readPreviousSubnets(cfg.subnetFile);
    const lease = await retrying('acquiring a subnet lease', log, signal, () =>
      sm.acquireLease(network, {
        publicIP: publicIp,
        ...(publicIpv6 ? { publicIPv6: publicIpv6 } : {}),
        backendType: backend.type,
        backendData: backend.leaseData,
        ...(publicIpv6 && backend.leaseV6Data !== undefined ? { backendV6Data: backend.leaseV6Data } : {}),
        ...(previous.v4 ? { previousSubnet: previous.v4 } : {}),
        ...(previous.v6 ? { previousIpv6Subnet: previous.v6 } : {}),
      }),
    );
    this.status.lease = lease;
    log.info('lease acquired', {
      subnet: lease.subnet.toString(), ...(lease.ipv6Subnet ? { ipv6Subnet: lease.ipv6Subnet.toString() } : {}),
      expires: lease.expiration?.toISOString() ?? 'never (reservation)',
    });

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
          if (!l.subnet.equals(lease.subnet) || String(l.ipv6Subnet ?? '') !== String(lease.ipv6Subnet ?? '')) {
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
    const v6 = network.ipv6Network && lease.ipv6Subnet ? { subnet: lease.ipv6Subnet, network: network.ipv6Network } : undefined;
    // --bridge none: Docker's docker0 (dockerd --bip from `weft docker-opts`) or the CNI bridge plugin owns the bridge.
    if (cfg.bridge !== 'none') ensureBridge(nl, log, cfg.bridge, lease.subnet, network.network, backend.mtu, v6);
    if (ensureSysctl('net/ipv4/ip_forward', '1')) log.info('enabled net.ipv4.ip_forward');
    if (v6 && ensureSysctl('net/ipv6/conf/all/forwarding', '1')) log.info('enabled net.ipv6.conf.all.forwarding');
    if (cfg.iptablesForwardRules) {
      const nets = [{ cidr: network.network.toString(), family: 4 as const }, ...(v6 ? [{ cidr: v6.network.toString(), family: 6 as const }] : [])];
      this.forward = ForwardRules.forNetworks(nets, log.child({ component: 'forward' }));
      await this.forward.install();
    } else {
      await removeForwardRules().catch((e) => log.debug('no forward rules to remove', { err: e }));
      if (v6) await removeForwardRules(6).catch((e) => log.debug('no IPv6 forward rules to remove', { err: e }));
    }
    if (cfg.ipMasq) {
      await ensureMasquerade(network.network.toString(), lease.subnet.toString());
      if (v6) await ensureMasquerade(v6.network.toString(), v6.subnet.toString(), 6);
    } else {
      await removeMasquerade().catch((e) => log.debug('no masquerade rules to remove', { err: e }));
      if (v6) await removeMasquerade(6).catch((e) => log.debug('no IPv6 masquerade rules to remove', { err: e }));
    }
    const gw6 = v6 ? { subnet: v6.subnet.toString(), gateway: v6.subnet.address(1) } : undefined;
    writeSubnetEnv(cfg.subnetFile, {
      network: network.network.toString(),
      subnet: `${lease.subnet.address(1)}/${lease.subnet.prefixLen}`,
      ...(v6 && gw6 ? { ipv6Network: v6.network.toString(), ipv6Subnet: `${gw6.gateway}/${v6.subnet.prefixLen}` } : {}),
      mtu: backend.mtu,
      ipMasq: cfg.ipMasq,
    });
    if (cfg.cniConf) {
      writeCniConf(cfg.cniConf, {
        ...(cfg.bridge !== 'none' ? { bridge: cfg.bridge } : {}),
        subnet: lease.subnet.toString(),
        gateway: lease.subnet.address(1),
        ...(gw6 ? { ipv6: gw6 } : {}),
        mtu: backend.mtu,
        ipamDataDir: cfg.cniIpamDataDir,
        plugin: cfg.cniPlugin,
        subnetFile: cfg.subnetFile,
      });
    }
    log.info('host configured', { bridge: cfg.bridge, subnetFile: cfg.subnetFile, mtu: backend.mtu });
  }

  /** Runs fn; what it throws becomes a ConfigError (exit 2): a host that cannot join the configured network. */
  private configErr<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
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
    }
  }
}
