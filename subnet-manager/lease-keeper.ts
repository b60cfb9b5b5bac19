// Keeping this host's lease: one etcd lease kept alive (etcd's keepalive, not
// a new grant per renewal, so nothing is left behind), and the key itself
// watched, so that whatever happens to it is seen within milliseconds:
//   deleted (etcdctl del, a restored backup, its etcd lease expired while
//     etcd was unreachable)                      -> put back: same subnet, same
//     value, create-if-absent; one warning naming the key ('restored')
//   changed (garbage, no etcd lease, our own IP with other attributes)
//                                                -> our value put back ('restored')
//   now another host's (its PublicIP)            -> that host holds the subnet:
//     a new subnet is leased and the caller reconfigures in place ('moved')
//   deleted, and meanwhile another host leased an overlapping subnet under
//     another key (the IPv4 or the IPv6 half)    -> put back, seen, given up:
//     'moved' as above
//   update(req) (our public IP changed)          -> value rewritten ('updated')
// etcd outages are retried with capped backoff; an outage longer than the TTL
// is logged once as an error (the key is gone for everyone until etcd answers
// again, then it is put back).
import { Backoff, sleep } from '../lib/backoff.js';
import { isRetryable } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { decodeLeaseAttrs, encodeLeaseAttrs, type Lease, type LeaseAttrs } from './lease.js';
import { createdAt, type RawKV } from './lease-table.js';
import type { Registry, SubnetWatchHandlers } from './registry.js';
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS } from './watch.js';

export interface LeaseChange {
  /** restored: the key was put back; moved: a new subnet (another host holds the old one); updated: our value changed. */
  readonly kind: 'restored' | 'moved' | 'updated';
  readonly lease: Lease;
  readonly previous: Lease;
  /** What happened, for the log: "the key was deleted", "it now holds 192.0.2.99's lease". */
  readonly reason: string;
}

export interface KeeperOptions {
  readonly signal: AbortSignal;
  /** Called (and awaited) after every change; the keeper goes on when it returns. */
  readonly onChange?: (c: LeaseChange) => void | Promise<void>;
}

export interface KeeperDeps {
  readonly reg: Registry;
  readonly log: Logger;
  readonly ttlSeconds: number;
  /** Renew at the latest this long before expiry (ms). */
  readonly marginMs: number;
  /** The key of a lease created before `revision` whose subnet (IPv4 or IPv6) overlaps l's, if any. */
  readonly earlierOverlap: (l: Lease, revision: number) => Promise<string | undefined>;
  /** Leases a new subnet for `attrs`, attaching etcd lease `leaseId` if given (kept on failure). */
  readonly acquire: (attrs: LeaseAttrs, leaseId: string | undefined) => Promise<Lease>;
}

type Wait = { timer?: NodeJS.Timeout; wake?: () => void };

export class LeaseKeeper {
  /** Resolves when the signal aborts; rejects on a failure no retry can fix. */
  readonly done: Promise<void>;
  /** Times the key was put back or re-leased (weft_lease_recoveries_total). */
  recoveries = 0;
  private cur: Lease;
  private attrs: LeaseAttrs;
  private value: string;
  /** Our etcd lease; undefined for a reservation or after etcd forgot it. */
  private leaseId: string | undefined;
  private reservation: boolean;
  /** When the etcd lease runs out unless kept alive (local clock, ms). */
  private expiresAt: number | undefined;
  private expiredLogged = false;
  /** Public IPs this host leased with: a value carrying one of them is ours (changed), not another host's. */
  private readonly ourIps = new Set<string>();
  private checkDue = true;
  /** update() was called and its value is not written yet. */
  private updatePending = false;
  /** Why the etcd lease is gone, when keepalive found it gone. */
  private lostBecause: string | undefined;
  /** The key was put back and has not been checked against keys created meanwhile (giveWayIfOverlapping). */
  private overlapCheckDue = false;
  private nextKeepAlive = 0;
  private readonly w: Wait = {};
  private readonly stop: AbortSignal;

  constructor(private readonly d: KeeperDeps, lease: Lease, opts: KeeperOptions) {
    this.cur = lease;
    this.attrs = lease.attrs;
    this.value = encodeLeaseAttrs(lease.attrs);
    this.ourIps.add(lease.attrs.publicIP);
    this.leaseId = lease.leaseId;
    this.reservation = lease.leaseId === undefined;
    this.expiresAt = lease.expiration?.getTime();
    this.stop = opts.signal;
    this.done = this.run(opts);
  }

  get lease(): Lease { return this.cur; }

  /** Seconds until the lease expires unless renewed (negative once it has); undefined for a reservation. */
  expiresInSeconds(): number | undefined {
    return this.reservation || this.expiresAt === undefined ? undefined : (this.expiresAt - Date.now()) / 1000;
  }

  /** New attributes for our lease (e.g. a new public IP); written at once. */
  update(attrs: LeaseAttrs): void {
    this.attrs = attrs;
    this.value = encodeLeaseAttrs(attrs);
    this.ourIps.add(attrs.publicIP);
    this.updatePending = true;
    this.wakeCheck();
  }

  private wakeCheck(): void {
    this.checkDue = true;
    this.w.wake?.();
  }

  private keepAliveEveryMs(): number {
    const ttl = this.d.ttlSeconds * 1000;
    return Math.max(500, Math.min(ttl / 3, ttl - this.d.marginMs));
  }

  private async run(opts: KeeperOptions): Promise<void> {
    const backoff = new Backoff(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    const watch = this.watchKey();
    this.nextKeepAlive = Date.now() + this.keepAliveEveryMs();
    let retryAt = 0;
    try {
      while (!this.stop.aborted) {
        const due = Math.max(retryAt, this.checkDue ? 0 : this.reservation ? Infinity : this.nextKeepAlive);
        await this.sleepUntil(due);
        if (this.stop.aborted) break;
        try {
          if (!this.checkDue && !this.reservation && Date.now() >= this.nextKeepAlive) await this.keepAlive();
          if (this.checkDue) {
            this.checkDue = false;
            const c = await this.check();
            if (c) {
              if (c.kind === 'moved') watch.restart();
              await opts.onChange?.(c);
            }
          }
          backoff.reset();
          retryAt = 0;
        } catch (e) {
          if (!isRetryable(e)) throw e;
          const delay = backoff.next();
          retryAt = Date.now() + delay;
          this.logExpiry();
          this.d.log.warn('keeping the subnet lease failed, retrying', { key: this.cur.key, err: e as Error, retryInMs: delay });
        }
      }
    } finally {
      watch.close();
    }
  }

  private sleepUntil(t: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.w.timer) clearTimeout(this.w.timer);
        this.w.timer = undefined;
        this.w.wake = undefined;
        this.stop.removeEventListener('abort', done);
        resolve();
      };
      this.w.wake = done;
      this.stop.addEventListener('abort', done, { once: true });
      if (t !== Infinity) this.w.timer = setTimeout(done, Math.max(0, Math.min(t - Date.now(), 2 ** 31 - 1)));
    });
  }

  /** Once, when the lease has run out while etcd could not be reached. */
  private logExpiry(): void {
    const left = this.expiresInSeconds();
    if (left === undefined || left > 0 || this.expiredLogged) return;
    this.expiredLogged = true;
    this.d.log.error('subnet lease expired: etcd was unreachable for longer than its TTL; other hosts drop this host until etcd answers again, then it is put back', {
      key: this.cur.key, ttlSeconds: this.d.ttlSeconds,
    });
  }

  private async keepAlive(): Promise<void> {
    const sent = Date.now();
    const ttl = await this.d.reg.keepAlive(this.leaseId!);
    if (ttl > 0) {
      this.expiresAt = sent + ttl * 1000;
      this.expiredLogged = false;
      this.nextKeepAlive = sent + this.keepAliveEveryMs();
      this.d.log.debug('lease kept alive', { key: this.cur.key, ttlSeconds: ttl });
      return;
    }
    // etcd no longer knows it: it expired (or was revoked), and our key went with it.
    this.logExpiry();
    this.leaseId = undefined;
    this.lostBecause = `its etcd lease ${this.cur.leaseId} expired`;
    this.checkDue = true;
  }

  /** Looks at the key and repairs it; returns what changed, or undefined when it was right. */
  private async check(): Promise<LeaseChange | undefined> {
    const previous = this.cur;
    for (let attempt = 0; attempt < 16; attempt++) {
      if (!this.reservation && this.leaseId === undefined) {
        this.leaseId = await this.d.reg.grant(this.d.ttlSeconds);
        this.expiresAt = Date.now() + this.d.ttlSeconds * 1000;
        this.nextKeepAlive = Date.now() + this.keepAliveEveryMs();
      }
      const id = this.leaseId ?? '0';
      const { kv } = await this.d.reg.getKey(this.cur.key);
      if (kv && kv.value === this.value && kv.leaseId === id) return this.giveWayIfOverlapping(previous, createdAt(kv), id);
      const theirs = kv && this.otherHost(kv);
      if (theirs) {
        this.d.log.warn('another host now holds our subnet; leasing a new one and reconfiguring in place', { key: this.cur.key, holder: theirs });
        const next = await this.d.acquire(this.attrs, this.leaseId);
        this.adopt(next);
        this.recoveries++;
        return { kind: 'moved', lease: next, previous, reason: `its key now holds the lease of ${theirs}` };
      }
      const r = kv === null
        ? await this.d.reg.createIfAbsent(this.cur.key, this.value, id)
        : await this.d.reg.putIf(this.cur.key, 'Mod', kv.modRevision, this.value, id);
      if (!r.ok) continue; // changed again meanwhile: look again
      if (kv === null && !this.reservation) {
        this.overlapCheckDue = true;
        const moved = await this.giveWayIfOverlapping(previous, r.revision, id);
        if (moved) return moved;
      }
      const ourOwnUpdate = this.updatePending && kv !== null && this.ownValue(kv) && kv.leaseId === id;
      this.updatePending = false;
      this.cur = Object.freeze({
        ...this.cur, attrs: this.attrs, modRevision: r.revision,
        ...(kv === null ? { createRevision: r.revision } : {}),
        ...(this.leaseId ? { leaseId: this.leaseId, expiration: new Date(this.expiresAt ?? Date.now() + this.d.ttlSeconds * 1000) } : {}),
      });
      if (ourOwnUpdate) {
        this.d.log.info('lease updated', { key: this.cur.key, publicIP: this.attrs.publicIP });
        return { kind: 'updated', lease: this.cur, previous, reason: 'its attributes changed' };
      }
      const reason = kv === null ? (this.lostBecause ?? 'the key was deleted') : `its value was changed to ${JSON.stringify(kv.value.slice(0, 120))}${kv.leaseId !== id ? ` with etcd lease ${kv.leaseId}` : ''}`;
      this.lostBecause = undefined;
      this.recoveries++;
      this.d.log.warn(kv === null ? 'our lease key vanished from etcd; put it back' : 'our lease was changed under us; put it back', { key: this.cur.key, subnet: this.cur.subnet.toString(), reason });
      return { kind: 'restored', lease: this.cur, previous, reason };
    }
    throw new Error(`lease ${this.cur.key} kept changing while it was being repaired (16 attempts)`);
  }

  /**
   * After a put-back (overlapCheckDue; our key created at `revision`): while the key was gone
   * another host may have leased an overlapping subnet under another key (the same IPv4 subnet
   * with another IPv6 one, or the other way round). The older key keeps it, as every lease table
   * decides: ours is deleted and a new subnet leased ('moved'). Until this check has run (etcd
   * may fail in the middle), every look at the key runs it again.
   */
  private async giveWayIfOverlapping(previous: Lease, revision: number, id: string): Promise<LeaseChange | undefined> {
    if (!this.overlapCheckDue) return undefined;
    const rival = await this.d.earlierOverlap(this.cur, revision);
    if (rival === undefined) {
      this.overlapCheckDue = false;
      return undefined;
    }
    this.d.log.warn('while our lease key was gone another host leased an overlapping subnet; leasing a new one and reconfiguring in place', { key: this.cur.key, rival });
    await this.d.reg.deleteIfLease(this.cur.key, id);
    const next = await this.d.acquire(this.attrs, this.leaseId);
    this.adopt(next);
    this.overlapCheckDue = false;
    this.lostBecause = undefined;
    this.recoveries++;
    return { kind: 'moved', lease: next, previous, reason: `while it was gone ${rival} leased an overlapping subnet` };
  }

  /** The PublicIP of another host when kv is its valid lease, else undefined. */
  private otherHost(kv: RawKV): string | undefined {
    try {
      const a = decodeLeaseAttrs(kv.value);
      return this.ourIps.has(a.publicIP) ? undefined : a.publicIP;
    } catch {
      return undefined; // garbage: ours to repair
    }
  }

  private ownValue(kv: RawKV): boolean {
    try {
      return this.ourIps.has(decodeLeaseAttrs(kv.value).publicIP);
    } catch {
      return false;
    }
  }

  private adopt(l: Lease): void {
    this.cur = l;
    this.leaseId = l.leaseId;
    this.reservation = l.leaseId === undefined;
    this.expiresAt = l.expiration?.getTime();
  }

  /** A watch of our key: any change we did not make, and every (re)connect, makes the loop look at it. */
  private watchKey(): { restart(): void; close(): void } {
    let closed = false;
    let cur: { cancel(): Promise<void> } | undefined;
    let session = 0;
    const backoff = new Backoff(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    const start = () => {
      if (closed || this.stop.aborted) return;
      const key = this.cur.key;
      const mine = ++session;
      const live = () => mine === session && !closed;
      const h: SubnetWatchHandlers = {
        connected: () => {
          if (!live()) return;
          backoff.reset();
          this.wakeCheck();
        },
        data: (events) => {
          if (!live()) return;
          for (const ev of events) {
            if (ev.type === 'put' && ev.kv.value === this.value && ev.kv.leaseId === (this.leaseId ?? '0')) continue;
            this.wakeCheck();
          }
        },
        disconnected: () => again(),
        canceled: () => again(),
      };
      const again = () => {
        if (!live()) return;
        session++;
        void cur?.cancel().catch(() => {});
        cur = undefined;
        void sleep(backoff.next(), this.stop).then(start);
      };
      cur = this.d.reg.watchKey(key, undefined, h);
    };
    start();
    return {
      restart: () => {
        session++;
        void cur?.cancel().catch(() => {});
        start();
      },
      close: () => {
        closed = true;
        void cur?.cancel().catch(() => {});
      },
    };
  }
}
