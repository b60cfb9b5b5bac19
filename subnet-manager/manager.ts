// SubnetManager: acquire, renew and release this host's subnet lease and
// watch everyone else's, against etcd in flannel's layout.
import type { Logger } from '../lib/log.js';
import { type SubnetSpace, chooseFreeSubnet, chooseFreeSubnetV6, isAllocatable, isFree, outOfSubnets } from './allocate.js';
import { type NetworkConfig, ipv6Space, parseNetworkConfig } from './config.js';
import { AbortedError, ConfigError, ConfigMissingError, LeaseError } from './errors.js';
import { sleep } from '../lib/backoff.js';
import { errorKind } from '../lib/errors.js';
import { Prefix, isIp } from '../lib/ip.js';
import { type Lease, type LeaseAttrs, decodeLeaseAttrs, encodeLeaseAttrs, leaseKeySuffix, parseLeaseKeySuffix } from './lease.js';
import { createdAt, type LeaseBatch, type OwnLease, type RawKV } from './lease-table.js';
import { Registry } from './registry.js';
import { type KeeperOptions, LeaseKeeper } from './lease-keeper.js';
import { type ManagerStats, runLeaseWatch } from './watch.js';

export interface SubnetManagerOptions {
  endpoints: string[];
  /** Default '/coreos.com/network'. */
  prefix?: string;
  /** etcd lease TTL of our subnet; default 86400 (flannel). */
  ttlSeconds?: number;
  /** Renew this long before expiry; default 3600 (flannel). Capped at 2/3 of the TTL. */
  renewMarginSeconds?: number;
  logger: Logger;
  /** Passed through to new Etcd3({...}) (credentials, auth, grpcOptions, ...). */
  etcdOptions?: Record<string, unknown>;
  /** One attempt per etcd request (see RegistryOptions.failFast). */
  failFast?: boolean;
}

export interface AcquireRequest {
  publicIP: string;
  publicIPv6?: string | null;
  backendType: string;
  backendData: unknown;
  /** BackendV6Data of a dual-stack lease (vxlan: the IPv6 device's VNI and VTEP MAC). */
  backendV6Data?: unknown;
  /** Subnet from the previous run's subnet file; reused if free. */
  previousSubnet?: Prefix;
  /** IPv6 subnet from the previous run's subnet file (FLANNEL_IPV6_SUBNET); reused with previousSubnet if both are free. */
  previousIpv6Subnet?: Prefix;
  /** An etcd lease to attach the key to (the caller's; not revoked if acquiring fails). Default: a new one. */
  leaseId?: string;
}

/** Conflicting creates exhausted the retries (many hosts racing); retryable. */
export class AcquireConflictError extends errorKind('ECONFLICT', true) {}

const MAX_ACQUIRE_ATTEMPTS = 16;

export class SubnetManager {
  readonly stats: ManagerStats = { invalidLeases: 0, watchResyncs: 0, reconnects: 0, leaseConflicts: 0, conflictingLeases: 0 };
  private readonly reg: Registry;
  private readonly log: Logger;
  private readonly ttl: number;
  private readonly margin: number;
  private readonly closer = new AbortController();

  constructor(opts: SubnetManagerOptions) {
    this.log = opts.logger.child({ component: 'subnet-manager' });
    this.ttl = opts.ttlSeconds ?? 86400;
    if (!Number.isInteger(this.ttl) || this.ttl < 1) throw new TypeError(`ttlSeconds must be a positive integer, got ${opts.ttlSeconds}`);
    this.margin = opts.renewMarginSeconds ?? 3600;
    if (!(this.margin >= 0)) throw new TypeError(`renewMarginSeconds must be >= 0, got ${opts.renewMarginSeconds}`);
    this.reg = new Registry({
      endpoints: opts.endpoints,
      prefix: opts.prefix ?? '/coreos.com/network',
      ...(opts.etcdOptions ? { etcdOptions: opts.etcdOptions } : {}),
      ...(opts.failFast ? { failFast: true } : {}),
      onContact: () => { this.stats.lastContact = new Date(); },
    });
  }

  /** Reads and parses <prefix>/config. */
  async getNetworkConfig(): Promise<NetworkConfig> {
    const text = await this.reg.getConfig();
    if (text === null) throw new ConfigMissingError(`network config not found: etcd key ${this.reg.configKey} does not exist`);
    try {
      return parseNetworkConfig(text);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`${this.reg.configKey}: ${e.message}`);
      throw e;
    }
  }

  /**
   * Leases a subnet: (1) the lease already holding our PublicIP (value
   * refreshed, fresh TTL; a reservation is kept without TTL; of several, the
   * one in previousSubnet, else the oldest), (2) previousSubnet if free, (3) a
   * random free subnet. Creates are `if version(key)==0` txns.
   */
  async acquireLease(cfg: NetworkConfig, req: AcquireRequest): Promise<Lease> {
    this.checkOpen();
    if (!isIp(req.publicIP, 4)) { throw new LeaseError(`publicIP ${JSON.stringify(req.publicIP)} is not a valid IPv4 address`); }
    if (req.publicIPv6 != null) {
      if (!isIp(req.publicIPv6, 6)) { throw new LeaseError(`publicIPv6 ${JSON.stringify(req.publicIPv6)} is not a valid IPv6 address`); }
    }
    const space6 = ipv6Space(cfg);
    const attrs: LeaseAttrs = Object.freeze({
      publicIP: req.publicIP, publicIPv6: req.publicIPv6 ?? null, backendType: req.backendType, backendData: req.backendData,
      ...(req.backendV6Data !== undefined ? { backendV6Data: req.backendV6Data } : {}),
    });
    // flannel's isIPv6SubnetConfigCompat: with IPv6 on, the lease's IPv6 subnet must be one of the space's; with it off, there must be none.
    const v6Fits = (sn6: Prefix | undefined): boolean => (space6 ? !!sn6 && isAllocatable(space6, sn6) : !sn6);
    const value = encodeLeaseAttrs(attrs);
    const given = req.leaseId;
    let leaseId: string | null = given ?? null;
    try {
      for (let attempt = 0; attempt < MAX_ACQUIRE_ATTEMPTS; attempt++) {
        const { kvs } = await this.reg.listSubnets();
        const taken: Prefix[] = [];
        const taken6: Prefix[] = [];
        let mine: { kv: RawKV; subnet: Prefix; ipv6Subnet?: Prefix } | null = null;
        const better = (kv: RawKV, sn: Prefix) => !mine ||
          (req.previousSubnet !== undefined && sn.equals(req.previousSubnet) && !mine.subnet.equals(req.previousSubnet)) ||
          (!(req.previousSubnet !== undefined && mine.subnet.equals(req.previousSubnet)) && createdAt(kv) < createdAt(mine.kv));
        for (const kv of kvs) {
          const [sn, sn6] = this.takenSubnets(kv.key);
          if (sn) taken.push(sn);
          if (sn6) taken6.push(sn6);
          try {
            const a = decodeLeaseAttrs(kv.value);
            if (a.publicIP !== req.publicIP) continue;
            const k = parseLeaseKeySuffix(kv.key.slice(this.reg.subnetsPrefix.length));
            if (better(kv, k.subnet)) mine = { kv, ...k };
          } catch { /* not ours or unreadable; already counted as taken */ }
        }

        if (mine) {
          const isReservation = mine.kv.leaseId === '0';
          const v4Fits = isReservation ? cfg.network.containsNet(mine.subnet) : isAllocatable(cfg, mine.subnet);
          const fits = v4Fits && (isReservation && space6 ? !!mine.ipv6Subnet && space6.network.containsNet(mine.ipv6Subnet) : v6Fits(mine.ipv6Subnet));
          // Two hosts on one subnet (an IPv6 half taken twice before weft checked for it, a copy):
          // the older key keeps it, as every watcher's lease table decides; ours is given up.
          const rival = isReservation ? undefined : this.earlierOverlapIn(kvs, mine.kv.key, mine.subnet, mine.ipv6Subnet, createdAt(mine.kv));
          if (rival !== undefined) {
            this.log.warn('our old lease overlaps a lease created before it, releasing it', { key: mine.kv.key, rival });
            await this.reg.deleteIfLease(mine.kv.key, mine.kv.leaseId);
            continue;
          }
          if (fits) {
            if (isReservation) {
              // flannel: a reservation is used as-is, value refreshed, never given a TTL.
              const r = await this.reg.putIf(mine.kv.key, 'Lease', 0, value, '0');
              if (!r.ok) continue;
              return this.made(mine.kv.key, mine.subnet, mine.ipv6Subnet, attrs, undefined, r.revision, mine.kv.createRevision);
            }
            leaseId ??= await this.reg.grant(this.ttl);
            const r = await this.reg.putIf(mine.kv.key, 'Mod', mine.kv.modRevision, value, leaseId);
            if (!r.ok) continue;
            if (mine.kv.leaseId !== leaseId) this.reg.revoke(mine.kv.leaseId).catch(() => {}); // the old lease now holds no key
            const l = this.made(mine.kv.key, mine.subnet, mine.ipv6Subnet, attrs, leaseId, r.revision, mine.kv.createRevision);
            leaseId = null;
            this.log.info('reusing the subnet leased to our public IP', { subnet: String(l.subnet), publicIP: req.publicIP });
            return l;
          }
          // Left over from a different Network/SubnetLen: give it up, as flannel
          // does. A reservation that no longer fits is left to the operator.
          if (!isReservation) {
            this.log.warn('our old lease does not fit the network config, releasing it', { key: mine.kv.key });
            await this.reg.deleteIfLease(mine.kv.key, mine.kv.leaseId);
            continue;
          }
        }

        let sn: Prefix | null = null;
        let sn6: Prefix | undefined;
        // The previous pair, when both halves are free (flannel checks only the IPv4 half; a taken IPv6 one would collide).
        if (req.previousSubnet && isFree(cfg, req.previousSubnet, taken) &&
            (!space6 || (req.previousIpv6Subnet && isFree(space6, req.previousIpv6Subnet, taken6)))) {
          sn = req.previousSubnet;
          if (space6) sn6 = req.previousIpv6Subnet;
        }
        sn ??= chooseFreeSubnet(cfg, taken);
        if (!sn) throw outOfSubnets(cfg);
        if (space6 && !sn6) {
          // flannel: chosen on its own, at random among the first 100 free from IPv6SubnetMin (not from the IPv4 index).
          sn6 = chooseFreeSubnetV6(space6, taken6) ?? undefined;
          if (!sn6) throw outOfSubnets(space6);
        }
        const key = this.reg.subnetsPrefix + leaseKeySuffix(sn, sn6);
        leaseId ??= await this.reg.grant(this.ttl);
        const r = await this.reg.createIfAbsent(key, value, leaseId);
        if (!r.ok) {
          this.log.debug('subnet taken concurrently, choosing again', { key });
          continue;
        }
        // A key names both halves, so two hosts that chose the same IPv6 subnet (a random one of the
        // first 100 free, as flannel) with different IPv4 ones both create theirs. Whichever was
        // created later sees the other now, gives its key up and chooses again.
        const rival = await this.earlierOverlap(key, sn, sn6, r.revision);
        if (rival !== undefined) {
          this.log.info('another host leased an overlapping subnet first, choosing again', { key, rival });
          await this.reg.deleteIfLease(key, leaseId);
          continue;
        }
        const l = this.made(key, sn, sn6, attrs, leaseId, r.revision, r.revision);
        leaseId = null;
        this.log.info('leased subnet', { subnet: String(sn), ...(sn6 ? { ipv6Subnet: String(sn6) } : {}), publicIP: req.publicIP });
        return l;
      }
      throw new AcquireConflictError(`could not lease a subnet: ${MAX_ACQUIRE_ATTEMPTS} attempts lost races to other hosts`);
    } finally {
      if (leaseId !== null && leaseId !== given) this.reg.revoke(leaseId).catch(() => {});
    }
  }

  /**
   * Keeps `lease` (acquired with `req` in `cfg`) alive and in place until the
   * signal aborts: one etcd lease kept alive, the key watched and put back when
   * it vanishes or changes, a new subnet leased when another host took ours
   * (see LeaseKeeper). Returns the keeper (its `done` settles at the end).
   */
  keepLease(lease: Lease, cfg: NetworkConfig, req: AcquireRequest, opts: KeeperOptions): LeaseKeeper {
    this.checkOpen();
    const signal = AbortSignal.any([opts.signal, this.closer.signal]);
    return new LeaseKeeper({
      reg: this.reg,
      log: this.log,
      ttlSeconds: this.ttl,
      marginMs: Math.min(this.margin, (this.ttl * 2) / 3) * 1000,
      earlierOverlap: (l, revision) => this.earlierOverlap(l.key, l.subnet, l.ipv6Subnet, revision),
      acquire: (attrs, leaseId) => this.acquireLease(cfg, { ...req, publicIP: attrs.publicIP, publicIPv6: attrs.publicIPv6, backendType: attrs.backendType, backendData: attrs.backendData, previousSubnet: undefined, ...(leaseId ? { leaseId } : {}) }),
    }, lease, { ...opts, signal });
  }

  /** Deletes the key and revokes its etcd lease. A reservation is left alone. */
  async releaseLease(lease: Lease): Promise<void> {
    if (!lease.leaseId) {
      this.log.info('not releasing a reservation', { key: lease.key });
      return;
    }
    await this.reg.deleteIfLease(lease.key, lease.leaseId);
    await this.reg.revoke(lease.leaseId);
  }

  /** Snapshot, then changes, of everyone's leases; resolves when signal aborts. */
  watchLeases(cfg: NetworkConfig, opts: { signal: AbortSignal; own?: OwnLease; prefer?: (l: Lease) => boolean; onBatch: (b: LeaseBatch) => void | Promise<void> }): Promise<void> {
    this.checkOpen();
    const signal = AbortSignal.any([opts.signal, this.closer.signal]);
    return runLeaseWatch(this.reg, cfg, { ...opts, signal }, this.stats, this.log);
  }

  /**
   * Drops the etcd connections and connects anew (the watches resume on the new
   * one): after our source address was removed, the old ones are dead without
   * TCP knowing it (see Registry.reconnect).
   */
  reconnect(reason: string): void {
    this.checkOpen();
    this.log.info('reconnecting to etcd', { reason });
    this.reg.reconnect(reason);
  }

  async close(): Promise<void> {
    if (this.closer.signal.aborted) return;
    this.closer.abort();
    await sleep(0);
    this.reg.close();
  }

  /** The registry (same client): raw listings for `weft leases`/`status`, and tests. */
  get registry(): Registry { return this.reg; }

  /** <prefix>/config, for messages. */
  get configKey(): string { return this.reg.configKey; }

  private checkOpen(): void {
    if (this.closer.signal.aborted) throw new AbortedError('SubnetManager is closed');
  }

  /** The key of a lease created before `revision` whose IPv4 or IPv6 subnet overlaps ours, if any (the registry listed now). */
  private async earlierOverlap(key: string, sn: Prefix, sn6: Prefix | undefined, revision: number): Promise<string | undefined> {
    return this.earlierOverlapIn((await this.reg.listSubnets()).kvs, key, sn, sn6, revision);
  }

  /** earlierOverlap in a listing. */
  private earlierOverlapIn(kvs: readonly RawKV[], key: string, sn: Prefix, sn6: Prefix | undefined, revision: number): string | undefined {
    for (const kv of kvs) {
      if (kv.key === key || createdAt(kv) >= revision) continue;
      const [o, o6] = this.takenSubnets(kv.key);
      if ((o && o.overlaps(sn)) || (o6 && sn6 && o6.overlaps(sn6))) return kv.key;
    }
    return undefined;
  }

  /** Any key whose IPv4 (IPv6) part parses counts as taken, masked if misaligned, whatever the other part holds. */
  private takenSubnets(key: string): [Prefix | null, Prefix | null] {
    const [v4, v6] = key.slice(this.reg.subnetsPrefix.length).split('&');
    let sn: Prefix | null = null;
    let sn6: Prefix | null = null;
    try { sn = parseLeaseKeySuffix(v4!, { mask: true }).subnet; } catch { /* not a subnet key */ }
    if (v6 !== undefined) {
      try { sn6 = parseLeaseKeySuffix(`0.0.0.0-0&${v6}`, { mask: true }).ipv6Subnet ?? null; } catch { /* no usable IPv6 part */ }
    }
    return [sn, sn6];
  }

  private made(key: string, subnet: Prefix, ipv6Subnet: Prefix | undefined,
    attrs: LeaseAttrs, leaseId: string | undefined, revision: number, createRevision: number | undefined): Lease {
    return Object.freeze({
      subnet, ...(ipv6Subnet ? { ipv6Subnet } : {}), attrs, key,
      ...(leaseId ? { leaseId, expiration: new Date(Date.now() + this.ttl * 1000) } : {}),
      modRevision: revision,
      ...(createRevision !== undefined ? { createRevision } : {}),
    });
  }
}

export type { SubnetSpace };
