// The watcher's view of <prefix>/subnets/: validates raw key-values into
// leases, remembers the last good value per key, and turns puts, deletes and
// re-lists into lease events. Pure (no etcd), so it is unit-tested directly.
import type { Logger } from '../lib/log.js';
import type { SubnetSpace } from './allocate.js';
import type { Prefix } from '../lib/ip.js';
import { type Lease, decodeLeaseAttrs, encodeLeaseAttrs, parseLeaseKeySuffix } from './lease.js';

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
  /** etcd lease id, "0" when the key has none (a reservation). */
  readonly leaseId: string;
}

/** Parses a raw KV into a lease or a reason why it is not one. Does not check overlaps. */
export function leaseFromKV(space: SubnetSpace, subnetsPrefix: string, kv: RawKV): Lease | string {
  if (!kv.key.startsWith(subnetsPrefix)) return `key is not under ${subnetsPrefix}`;
  let parsed;
  try { parsed = parseLeaseKeySuffix(kv.key.slice(subnetsPrefix.length)); } catch (e) { return (e as Error).message; }
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
    ...(hasLease ? { leaseId: kv.leaseId } : {}),
  });
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

export class LeaseTable {
  private known = new Map<string, Lease>();

  constructor(
    private readonly space: SubnetSpace,
    private readonly subnetsPrefix: string,
    private readonly logger: Logger,
    private readonly ownSubnet?: Prefix,
    private readonly onInvalid: () => void = () => {},
  ) {}

  get size(): number { return this.known.size; }
  leases(): Lease[] { return [...this.known.values()]; }

  private isOwn(key: string): boolean {
    if (!this.ownSubnet) return false;
    try { return parseLeaseKeySuffix(key.slice(this.subnetsPrefix.length)).subnet.equals(this.ownSubnet); } catch { return false; }
  }

  /** Validates kv against `table` (other keys' leases); returns the lease or null after warning. */
  private accept(kv: RawKV, table: ReadonlyMap<string, Lease>): Lease | null {
    const l = leaseFromKV(this.space, this.subnetsPrefix, kv);
    let reason = typeof l === 'string' ? l : null;
    if (typeof l !== 'string') {
      for (const [k, o] of table) {
        if (k !== kv.key && o.subnet.overlaps(l.subnet)) { reason = `subnet ${l.subnet} overlaps the lease ${k}`; break; }
      }
    }
    if (reason === null) return l as Lease;
    this.onInvalid();
    const had = table.get(kv.key);
    this.logger.warn(had ? 'invalid lease update skipped, keeping its last good value' : 'invalid lease skipped', { key: kv.key, reason });
    return null;
  }

  /** A put from the watch: an 'added' event, or null (own lease, unchanged, or invalid). */
  put(kv: RawKV): LeaseEvent | null {
    if (this.isOwn(kv.key)) return null;
    const l = this.accept(kv, this.known);
    if (!l) return null;
    const old = this.known.get(kv.key);
    this.known.set(kv.key, l);
    if (old && sameLease(old, l)) return null;
    return { type: 'added', lease: l };
  }

  delete(key: string): LeaseEvent | null {
    const old = this.known.get(key);
    if (!old) return null;
    this.known.delete(key);
    return { type: 'removed', lease: old };
  }

  /**
   * Replaces the known set by a fresh listing and returns the differences. A
   * key whose new value is invalid keeps its last good value; older leases
   * win overlaps (sorted by modRevision).
   */
  resync(kvs: readonly RawKV[]): LeaseEvent[] {
    const next = new Map<string, Lease>();
    for (const kv of [...kvs].sort((a, b) => a.modRevision - b.modRevision)) {
      if (this.isOwn(kv.key)) continue;
      const l = this.accept(kv, next);
      if (l) next.set(kv.key, l);
      else {
        const old = this.known.get(kv.key);
        if (old && ![...next.values()].some((o) => o.subnet.overlaps(old.subnet))) next.set(kv.key, old);
      }
    }
    const events = diffLeaseMaps(this.known, next);
    this.known = next;
    return events;
  }
}
