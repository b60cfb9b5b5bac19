// weftd's life: network config → underlay → backend device → lease →
// device address, bridge, ip_forward, masquerade, subnet.env → peers from the
// watch, kept in step with periodic resyncs. On abort (SIGTERM/SIGINT) it
// returns and leaves kernel state and the lease in place, so a restarted
// agent picks both up without cutting traffic.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SubnetManager, type Lease, type NetworkConfig } from '../subnet-manager/index.js';
import type { Backend } from '../backend/backend.js';
import { VxlanBackend } from '../backend/vxlan/backend.js';
import { parseBackendOffload, UdpBackend } from '../backend/udp/backend.js';
import { ensureBridge } from '../host/bridge.js';
import { writeCniConf } from '../host/cni-conf.js';
import { HealthServer } from './health.js';
import { SystemdNotifier } from './systemd.js';
import type { AgentConfig } from './flags.js';
import type { Logger } from './logger.js';
import { ensureMasquerade, removeMasquerade } from '../host/masquerade.js';
import { NetlinkHandle, NetlinkMonitor } from '../netlink/index.js';
import { readPreviousSubnet, writeSubnetEnv } from '../host/subnet-env.js';
import { ensureSysctl } from '../host/sysctl.js';
import { findUnderlay } from '../host/underlay.js';
import { stableVtepMac } from '../backend/vxlan/vtep-mac.js';

/** A problem with the network config or flags: exit status 2, no retry helps. */
export class FatalConfigError extends Error {
  readonly code = 'EBADCONFIG';
}

export interface DaemonStatus {
  phase: 'starting' | 'waiting-for-etcd' | 'acquiring' | 'syncing' | 'ready' | 'stopped';
  lease?: Lease;
  network?: NetworkConfig;
  backend?: Backend;
}

function isRetryable(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { retryable?: boolean }).retryable === true;
}

/** Retries a retryable etcd operation with capped backoff until it succeeds or the signal aborts. */
async function retrying<T>(what: string, log: Logger, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  let delay = 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isRetryable(e) || signal.aborted) throw e;
      log.warn(`${what} failed; retrying`, { attempt, retryInMs: delay, err: e });
      await sleep(delay, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) throw e;
      delay = Math.min(delay * 2, 5000);
    }
  }
}

export function etcdOptionsFrom(cfg: AgentConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new FatalConfigError(`${flag} ${path}: ${(e as Error).message}`);
    }
  };
  if (cfg.etcdCaFile || cfg.etcdCertFile) {
    o.credentials = {
      rootCertificate: cfg.etcdCaFile ? read('--etcd-cafile', cfg.etcdCaFile) : undefined,
      certChain: cfg.etcdCertFile ? read('--etcd-certfile', cfg.etcdCertFile) : undefined,
      privateKey: cfg.etcdKeyFile ? read('--etcd-keyfile', cfg.etcdKeyFile) : undefined,
    };
  }
  if (cfg.etcdUsername) o.auth = { username: cfg.etcdUsername, password: cfg.etcdPassword };
  return o;
}

export class Daemon {
  readonly status: DaemonStatus = { phase: 'starting' };
  private readonly systemd: SystemdNotifier;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly log: Logger,
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
      logger: log.child({ component: 'subnet' }),
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
      if (!isRetryable(e) && !signal.aborted) throw new FatalConfigError((e as Error).message);
      throw e;
    }
    this.status.network = network;
    log.info('network config', { network: network.network.toString(), subnetLen: network.subnetLen, backend: network.backend.type });
    // Accepted for flannel compatibility, not implemented: say so rather than ignore it silently.
    if (network.backend.type === 'vxlan' && network.backend.directRouting) {
      log.warn('Backend.DirectRouting is not supported by weftd yet; every peer is reached through VXLAN');
    }
    if (network.enableIPv6) log.warn('EnableIPv6 is not supported by weftd yet; only the IPv4 overlay is configured');

    const underlay = findUnderlay(nl, cfg.iface, cfg.publicIp);
    log.info('underlay', { iface: underlay.name, publicIp: underlay.ip, mtu: underlay.mtu });

    const backend = this.createBackend(network, nl, underlay);
    this.status.backend = backend;

    this.phase('acquiring', `acquiring a subnet lease for ${underlay.ip}`);
    const previousSubnet = readPreviousSubnet(cfg.subnetFile);
    const lease = await retrying('acquiring a subnet lease', log, signal, () =>
      sm.acquireLease(network, {
        publicIP: underlay.ip,
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

  private createBackend(network: NetworkConfig, nl: NetlinkHandle, underlay: ReturnType<typeof findUnderlay>): Backend {
    const b = network.backend;
    const backendOffload = (raw: Readonly<Record<string, unknown>>) => {
      const o = parseBackendOffload(raw);
      if ('error' in o) throw new FatalConfigError(o.error);
      return o.offload;
    };
    switch (b.type) {
      case 'vxlan':
        return new VxlanBackend({
          nl,
          monitor: this.track(NetlinkMonitor.open()),
          log: this.log.child({ component: 'vxlan' }),
          network: network.network,
          vni: b.vni,
          port: b.port,
          device: this.cfg.vxlanDevice ?? `weft.${b.vni}`,
          mac: stableVtepMac(underlay.ip, b.vni, this.cfg.etcdPrefix),
          underlay,
          mtu: b.mtu,
        });
      case 'udp':
        return new UdpBackend({
          nl,
          log: this.log.child({ component: 'udp' }),
          network: network.network,
          port: b.port,
          device: this.cfg.tunDevice,
          underlay,
          engine: this.cfg.udpEngine ?? b.engine ?? 'native', // the flag wins over Backend.Engine
          offload: this.cfg.udpOffload ?? backendOffload(b.raw) ?? true, // and over Backend.Offload
          mtu: b.mtu,
        });
      default:
        throw new FatalConfigError(`Backend.Type ${JSON.stringify(b.type)} is not supported by this weftd yet (supported: vxlan, udp)`);
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
    ensureBridge(nl, log, cfg.bridge, lease.subnet, network.network, backend.mtu);
    if (ensureSysctl('net/ipv4/ip_forward', '1')) log.info('enabled net.ipv4.ip_forward');
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
        bridge: cfg.bridge,
        subnet: lease.subnet.toString(),
        gateway: lease.subnet.address(1),
        mtu: backend.mtu,
        ipamDataDir: cfg.cniIpamDataDir,
      });
    }
    log.info('host configured', { bridge: cfg.bridge, subnetFile: cfg.subnetFile, mtu: backend.mtu });
  }

  private healthSource(sm: SubnetManager) {
    return {
      phase: () => this.status.phase,
      leaseExpiry: () => this.status.lease?.expiration,
      subnet: () => this.status.lease?.subnet.toString(),
      backend: () => this.status.backend,
      etcd: () => sm.stats,
      probeEtcd: async () => {
        try {
          await sm.getNetworkConfig();
        } catch (e) {
          // etcd answered, the config is just not there (or bad): still reachable.
          if ((e as { code?: string }).code !== 'ENOCONFIG' && (e as { code?: string }).code !== 'EBADCONFIG') throw e;
        }
        return true;
      },
    };
  }

  /** Every second: cheap checks (device present, failed entries retried); every --resync-interval: full list/diff/apply. */
  private async resyncLoop(backend: Backend, signal: AbortSignal): Promise<void> {
    let last = Date.now();
    while (!signal.aborted) {
      await sleep(1000, undefined, { signal }).catch(() => undefined);
      if (signal.aborted || this.status.phase !== 'ready') continue;
      const full = Date.now() - last >= this.cfg.resyncIntervalSeconds * 1000;
      if (full) last = Date.now();
      await backend.resync(full);
    }
  }
}
