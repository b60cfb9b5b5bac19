// The watcher's view of <prefix>/subnets/: validates raw key-values into
// leases, remembers the last good value per key, and turns puts, deletes and
// re-lists into lease events. Pure (no etcd), so it is unit-tested directly.
//
// Conflicts (lease-claims.ts): a lease whose subnet overlaps a live lease's,
// or whose PublicIP (same backend) or VtepMAC another live lease holds, is
// skipped with a warning naming both keys; so is one claiming what this
// host's own lease holds. The established lease keeps its claims: the one
// this table accepted first while running, and on a snapshot the one the data
// plane already carries (`prefer`), then the older key. A lease that
// disappears keeps its claims reserved for `graceMs` (its host puts it back
// within a second), so a skipped lease is not promoted in that moment; after
// it, reconsider() accepts skipped leases that no longer conflict.
import type { Logger } from '../lib/log.js';
import type { SubnetSpace } from './allocate.js';
import type { Prefix } from '../lib/ip.js';
import { type LeaseConflict, SubnetIndex, SubnetReservations, establishedFirst, leaseClaims } from './lease-claims.js';
import { type Lease, type LeaseAttrs, decodeLeaseAttrs, encodeLeaseAttrs, parseLeaseKeySuffix } from './lease.js';

export interface LeaseEvent {
  /** 'added' is also used for a changed value: consumers replace by subnet. */
  readonly type: 'added' | 'removed';
  readonly lease: Lease;
}

export interface LeaseBatch {
  /** True for the first batch of a watch: every current valid lease as 'added'. */
  readonly snapshot: boolean;
  readonly events: readonly LeaseEvent[];
}

export interface RawKV {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  /** Revision that created the key (absent: taken as modRevision). */
  readonly createRevision?: number;
  /** etcd lease id, "0" when the key has none (a reservation). */
  readonly leaseId: string;
}

/** The revision that created kv's key (its modRevision when etcd did not say). */
export const createdAt = (kv: RawKV): number => kv.createRevision ?? kv.modRevision;

/** This host's own lease, as the table must know it: filtered out, and what it claims reserved. */
export interface OwnLease {
  readonly key: string;
  readonly subnet: Prefix;
  readonly ipv6Subnet?: Prefix;
  readonly attrs: LeaseAttrs;
}

/** The subnets a key under `subnetsPrefix` names, or why it names none. */
function leaseKeyOf(subnetsPrefix: string, key: string): { subnet: Prefix; ipv6Subnet?: Prefix } | string {
  if (!key.startsWith(subnetsPrefix)) return `key is not under ${subnetsPrefix}`;
  try { return parseLeaseKeySuffix(key.slice(subnetsPrefix.length)); } catch (e) { return (e as Error).message; }
}

/** A lease from its key's subnets (leaseKeyOf) and its value, or why it is none. */
function leaseFromParts(space: SubnetSpace, parsed: { subnet: Prefix; ipv6Subnet?: Prefix }, kv: RawKV): Lease | string {
  if (!space.network.containsNet(parsed.subnet)) return `subnet ${parsed.subnet} is outside Network ${space.network}`;
  let attrs;
  try { attrs = decodeLeaseAttrs(kv.value); } catch (e) { return (e as Error).message; }
  const hasLease = kv.leaseId !== '0' && kv.leaseId !== '';
  return Object.freeze({
    subnet: parsed.subnet,
    ...(parsed.ipv6Subnet ? { ipv6Subnet: parsed.ipv6Subnet } : {}),
    attrs,
    key: kv.key,
    modRevision: kv.modRevision,
    createRevision: createdAt(kv),
    ...(hasLease ? { leaseId: kv.leaseId } : {}),
  });
}

/** Parses a raw KV into a lease or a reason why it is not one. Does not check overlaps. */
export function leaseFromKV(space: SubnetSpace, subnetsPrefix: string, kv: RawKV): Lease | string {
  const parsed = leaseKeyOf(subnetsPrefix, kv.key);
  return typeof parsed === 'string' ? parsed : leaseFromParts(space, parsed, kv);
}

const sameLease = (a: Lease, b: Lease): boolean =>
  a.subnet.equals(b.subnet) && encodeLeaseAttrs(a.attrs) === encodeLeaseAttrs(b.attrs) &&
  String(a.ipv6Subnet ?? '') === String(b.ipv6Subnet ?? '');

/** Events that turn `known` into `next` (both keyed by etcd key). */
export function diffLeaseMaps(known: ReadonlyMap<string, Lease>, next: ReadonlyMap<string, Lease>): LeaseEvent[] {
  const out: LeaseEvent[] = [];
  for (const [k, l] of known) if (!next.has(k)) out.push({ type: 'removed', lease: l });
  for (const [k, l] of next) {
    const old = known.get(k);
    if (!old || !sameLease(old, l)) out.push({ type: 'added', lease: l });
  }
  return out;
}

export interface LeaseTableOptions {
  /** This host's lease. */
  readonly own?: OwnLease;
  /** Each invalid key or value seen. */
  readonly onInvalid?: () => void;
  /** Each lease newly skipped for a conflict. */
  readonly onConflict?: () => void;
  /** Leases the data plane already carries: they win conflicts on a snapshot. */
  readonly prefer?: (l: Lease) => boolean;
  /** How long a vanished lease's claims stay reserved for it (default 10 s). */
  readonly graceMs?: number;
  readonly now?: () => number;
}

export const CLAIM_GRACE_MS = 10_000;

/** Who keeps a lease out, and why. */
type Conflict = { readonly other: string; readonly reason: string };

/** The accepted leases and what they claim. */
class Accepted {
  readonly leases = new Map<string, Lease>();
  readonly subnets = new SubnetIndex();
  /** The IPv6 halves (an index of their own: an IPv6 ::/n and the IPv4 0.0.0.0/n share a number). */
  readonly subnets6 = new SubnetIndex();
  readonly claims = new Map<string, string>();

  /** claims: leaseClaims(l.attrs), which the conflict check has just made. */
  add(l: Lease, claims: readonly string[]): void {
    this.remove(l.key);
    this.leases.set(l.key, l);
    this.subnets.add(l.subnet, l.key);
    if (l.ipv6Subnet) this.subnets6.add(l.ipv6Subnet, l.key);
    for (const c of claims) this.claims.set(c, l.key);
  }

  remove(key: string): Lease | undefined {
    const old = this.leases.get(key);
    if (!old) return undefined;
    this.leases.delete(key);
    this.subnets.remove(old.subnet, key);
    if (old.ipv6Subnet) this.subnets6.remove(old.ipv6Subnet, key);
    for (const c of leaseClaims(old.attrs)) if (this.claims.get(c) === key) this.claims.delete(c);
    return old;
  }
}

export class LeaseTable {
  private acc = new Accepted();
  private skipped = new Map<string, LeaseConflict & { lease: Lease }>();
  /** Claims (and subnets) of leases that just vanished: kept for them until `until`. */
  private readonly reserved = new Map<string, { key: string; until: number }>();
  private readonly reservedSubnets = new SubnetReservations();
  /** The IPv6 halves of those (an index of their own, as Accepted.subnets6). */
  private readonly reservedSubnets6 = new SubnetReservations();
  private readonly ownClaims: ReadonlySet<string>;
  /** A lease left (or a snapshot came) since the last reconsider(): skipped leases may fit now. */
  private released = false;
  /** When the earliest reservation runs out. */
  private nextExpiry = Infinity;
  private readonly graceMs: number;
  private readonly now: () => number;

  constructor(
    private readonly space: SubnetSpace,
    private readonly subnetsPrefix: string,
    private readonly logger: Logger,
    private readonly o: LeaseTableOptions = {},
  ) {
    this.ownClaims = new Set(o.own ? leaseClaims(o.own.attrs) : []);
    this.graceMs = o.graceMs ?? CLAIM_GRACE_MS;
    this.now = o.now ?? Date.now;
  }

  get size(): number { return this.acc.leases.size; }
  leases(): Lease[] { return [...this.acc.leases.values()]; }
  /** The leases skipped now for a conflict, and with whom. */
  conflicts(): LeaseConflict[] { return [...this.skipped.values()].map(({ key, other, reason }) => ({ key, other, reason })); }
  /** How many leases are skipped now for a conflict. */
  get conflicting(): number { return this.skipped.size; }

  /** Why `l` (claiming `claims`) may not be accepted next to the leases of `acc`: the other key and the reason, or null. */
  private conflict(l: Lease, acc: Accepted, claims: readonly string[]): Conflict | null {
    const own = this.o.own;
    // The IPv6 half too: two leases on one IPv6 subnet (a copy, or two hosts that took it at once)
    // would send one host's IPv6 traffic to the other.
    const l6 = l.ipv6Subnet;
    const live = this.liveOverlap(l.key, l.subnet, 'subnet', own?.subnet, acc.subnets) ??
      (l6 && this.liveOverlap(l.key, l6, 'IPv6 subnet', own?.ipv6Subnet, acc.subnets6));
    if (live) return live;
    const now = this.now();
    const held = this.heldOverlap(l.key, l.subnet, 'subnet', this.reservedSubnets, now) ??
      (l6 && this.heldOverlap(l.key, l6, 'IPv6 subnet', this.reservedSubnets6, now));
    if (held) return held;
    for (const c of claims) {
      if (this.ownClaims.has(c) && own) return { other: own.key, reason: `its ${c} is this host's own` };
      const holder = acc.claims.get(c);
      if (holder !== undefined && holder !== l.key) return { other: holder, reason: `its ${c} is held by the lease ${holder}` };
      const r = this.reserved.get(c);
      if (r && r.until > now && r.key !== l.key) return { other: r.key, reason: `its ${c} was held by the lease ${r.key}${this.vanished()}` };
    }
    return null;
  }

  /** `p` (the lease `key`'s subnet or its IPv6 half, named `what`) against this host's own (`mine`), then the live leases' (`index`). */
  private liveOverlap(key: string, p: Prefix, what: string, mine: Prefix | undefined, index: SubnetIndex): Conflict | undefined {
    const own = this.o.own;
    if (own && mine?.overlaps(p)) return { other: own.key, reason: `${what} ${p} overlaps this host's own ${what} ${mine}` };
    const o = index.overlapping(p, key);
    return o === undefined ? undefined : { other: o, reason: `${what} ${p} overlaps the lease ${o}` };
  }

  /** `p` (as in liveOverlap) against the subnets `held` for leases that vanished moments ago. */
  private heldOverlap(key: string, p: Prefix, what: string, held: SubnetReservations, now: number): Conflict | undefined {
    const k = held.overlapping(p, key, now);
    return k === undefined ? undefined : { other: k, reason: `${what} ${p} overlaps the lease ${k}${this.vanished()}` };
  }

  /** The end of a reason naming a lease whose claims are held for it. */
  private vanished(): string {
    return `, which vanished moments ago (held for it ${this.graceMs / 1000} s)`;
  }

  /**
   * Parses kv (its key once): null for this host's own lease (by key, or by a
   * key naming its subnet, whatever the value), else the lease or, when it is
   * invalid, the reason (warned and counted).
   */
  private parse(kv: RawKV): Lease | string | null {
    const parsed = leaseKeyOf(this.subnetsPrefix, kv.key);
    const own = this.o.own;
    if (own && (kv.key === own.key || (typeof parsed !== 'string' && parsed.subnet.equals(own.subnet)))) return null;
    const l = typeof parsed === 'string' ? parsed : leaseFromParts(this.space, parsed, kv);
    if (typeof l !== 'string') return l;
    this.o.onInvalid?.();
    const had = this.acc.leases.has(kv.key);
    this.logger.warn(had ? 'invalid lease update skipped, keeping its last good value' : 'invalid lease skipped', { key: kv.key, reason: l });
    return l;
  }

  private skip(l: Lease, c: Conflict, keepingOld: boolean): void {
    const was = this.skipped.get(l.key);
    this.skipped.set(l.key, { key: l.key, ...c, lease: l });
    if (was && was.other === c.other && was.reason === c.reason) return;
    this.o.onConflict?.();
    this.logger.warn(keepingOld ? 'conflicting lease update skipped, keeping its last good value' : 'conflicting lease skipped', { key: l.key, other: c.other, reason: c.reason });
  }

  /** A put from the watch: an 'added' event, or null (own lease, unchanged, invalid or conflicting). */
  put(kv: RawKV): LeaseEvent | null {
    const l = this.parse(kv);
    if (l === null || typeof l === 'string') return null;
    const old = this.acc.leases.get(kv.key);
    const claims = leaseClaims(l.attrs);
    const c = this.conflict(l, this.acc, claims);
    if (c) {
      this.skip(l, c, old !== undefined);
      return null;
    }
    this.skipped.delete(kv.key);
    this.acc.add(l, claims);
    if (old && sameLease(old, l)) return null;
    // An accepted lease that changed gave up its old claims: a skipped one may fit now.
    if (old) this.released = true;
    return { type: 'added', lease: l };
  }

  delete(key: string): LeaseEvent | null {
    this.skipped.delete(key);
    const old = this.acc.remove(key);
    if (!old) return null;
    const until = this.now() + this.graceMs;
    for (const c of leaseClaims(old.attrs)) this.reserved.set(c, { key, until });
    this.reservedSubnets.hold(key, old.subnet, until);
    if (old.ipv6Subnet) this.reservedSubnets6.hold(key, old.ipv6Subnet, until);
    this.released = true;
    this.nextExpiry = Math.min(this.nextExpiry, until);
    return { type: 'removed', lease: old };
  }

  /**
   * Replaces the known set by a fresh listing and returns the differences. A
   * key whose new value is invalid keeps its last good value; conflicts go to
   * the leases accepted before, then to those `prefer` names, then to the
   * older keys.
   */
  resync(kvs: readonly RawKV[]): LeaseEvent[] {
    const items: { lease: Lease; kv: RawKV }[] = [];
    for (const kv of kvs) {
      const l = this.parse(kv);
      if (l === null) continue;
      const lease = typeof l === 'string' ? this.acc.leases.get(kv.key) : l;
      if (lease) items.push({ lease, kv });
    }
    const incumbent = (l: Lease) => this.acc.leases.has(l.key) || (this.o.prefer?.(l) ?? false);
    const next = new Accepted();
    const skipped = new Map(this.skipped);
    this.skipped = new Map();
    for (const { lease } of establishedFirst(items, incumbent)) {
      const claims = leaseClaims(lease.attrs);
      const c = this.conflict(lease, next, claims);
      if (c) {
        if (skipped.has(lease.key)) this.skipped.set(lease.key, skipped.get(lease.key)!);
        this.skip(lease, c, false);
      } else {
        next.add(lease, claims);
      }
    }
    const events = diffLeaseMaps(this.acc.leases, next.leases);
    this.acc = next;
    this.released = true;
    return events;
  }

  /** Accepts skipped leases that no longer conflict (their rival left, its grace ran out); returns their events. */
  reconsider(): LeaseEvent[] {
    const now = this.now();
    if (this.skipped.size === 0 || (!this.released && now < this.nextExpiry)) return [];
    this.released = false;
    this.nextExpiry = Infinity;
    for (const [c, r] of this.reserved) {
      if (r.until <= now) this.reserved.delete(c);
      else this.nextExpiry = Math.min(this.nextExpiry, r.until);
    }
    this.nextExpiry = Math.min(this.nextExpiry, this.reservedSubnets.expire(now), this.reservedSubnets6.expire(now));
    const events: LeaseEvent[] = [];
    for (const s of establishedFirst([...this.skipped.values()], () => false)) {
      const claims = leaseClaims(s.lease.attrs);
      const c = this.conflict(s.lease, this.acc, claims);
      if (c) {
        // Still kept out, maybe by another lease now: conflicts() names the one that keeps it.
        this.skip(s.lease, c, this.acc.leases.has(s.key));
        continue;
      }
      this.skipped.delete(s.key);
      this.acc.add(s.lease, claims);
      this.logger.info('lease no longer conflicts, accepted', { key: s.key, was: s.reason });
      events.push({ type: 'added', lease: s.lease });
    }
    return events;
  }
}
