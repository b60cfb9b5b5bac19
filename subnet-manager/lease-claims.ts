// What a live lease holds that no other live lease may hold too: its subnet
// (no overlap with another), its PublicIP for its backend, and its VTEP MAC.
// Two leases claiming the same thing are a conflict: one of them is a copy,
// a leftover or garbage, and programming both would send one host's traffic
// to the other. Pure (no etcd), shared by the watcher (lease-table.ts) and
// `weft status`.
import type { Prefix } from '../lib/ip.js';
import type { Lease, LeaseAttrs } from './lease.js';

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * The claims of a lease's value, as they read in messages: "PublicIP 192.0.2.11 (vxlan)", "VtepMAC 02:..".
 * Joined, not template literals: the table keeps them as long as the lease, and V8 keeps a
 * template's result as a tree of its parts (formatIpNumber in lib/ip.ts).
 */
export function leaseClaims(a: LeaseAttrs): string[] {
  const out = [['PublicIP ', a.publicIP, ' (', a.backendType, ')'].join('')];
  const d = a.backendData as { VtepMAC?: unknown } | null;
  const mac = typeof d === 'object' && d !== null && typeof d.VtepMAC === 'string' ? d.VtepMAC.toLowerCase() : undefined;
  if (mac && MAC_RE.test(mac)) out.push(['VtepMAC', mac].join(' '));
  return out;
}

/** A lease kept out of the data plane because another one holds what it claims. */
export interface LeaseConflict {
  /** The skipped lease's key. */
  readonly key: string;
  /** The key of the lease that keeps it (this host's own, or the established one). */
  readonly other: string;
  readonly reason: string;
}

/**
 * Subnets of leases by prefix length, for overlap checks that do not grow with the number of
 * leases. Live leases never share a subnet; reservations (SubnetReservations) may: two keys
 * naming one IPv4 subnet ("10.244.3.0-24" and "10.244.3.0-24&fd00::-64") that both vanished.
 */
export class SubnetIndex {
  /** Per prefix length, network address → its key, or its keys when several hold it. */
  private readonly byLen = new Map<number, Map<bigint, string | string[]>>();

  add(p: Prefix, key: string): void {
    let m = this.byLen.get(p.prefixLen);
    if (!m) this.byLen.set(p.prefixLen, (m = new Map()));
    const v = m.get(p.ip);
    if (v === undefined || v === key) m.set(p.ip, key);
    else if (typeof v === 'string') m.set(p.ip, [v, key]);
    else if (!v.includes(key)) v.push(key);
  }

  remove(p: Prefix, key: string): void {
    const m = this.byLen.get(p.prefixLen);
    const v = m?.get(p.ip);
    if (v === undefined) return;
    if (v === key) m!.delete(p.ip);
    else if (typeof v !== 'string') {
      const rest = v.filter((k) => k !== key);
      m!.set(p.ip, rest.length === 1 ? rest[0]! : rest);
    }
  }

  /** A key (other than `except`) whose subnet overlaps p, or undefined. */
  overlapping(p: Prefix, except?: string): string | undefined {
    for (const [len, m] of this.byLen) {
      if (m.size === 0) continue;
      if (len <= p.prefixLen) {
        // A shorter (or equal) prefix overlaps p only by containing it.
        const k = other(m.get(p.networkOf(len)), except);
        if (k !== undefined) return k;
        continue;
      }
      // Longer prefixes inside p: look at whichever is fewer, the entries or p's sub-prefixes.
      const inside = 1n << BigInt(len - p.prefixLen);
      if (BigInt(m.size) <= inside) {
        for (const [ip, v] of m) {
          const k = other(v, except);
          if (k !== undefined && p.contains(ip)) return k;
        }
      } else {
        const step = 1n << BigInt(p.bits - len);
        for (let i = 0n; i < inside; i++) {
          const k = other(m.get(p.ip + i * step), except);
          if (k !== undefined) return k;
        }
      }
    }
    return undefined;
  }
}

/** The key of an index entry other than `except`. */
function other(v: string | string[] | undefined, except: string | undefined): string | undefined {
  if (v === undefined || typeof v === 'string') return v === except ? undefined : v;
  return v.find((k) => k !== except);
}

/**
 * The subnets of leases that vanished, each held for its key until a time (LeaseTable's grace):
 * overlap checks through a SubnetIndex, so that a put costs the same with 10,000 subnets held as
 * with none (after 10,000 leases vanished at once, each of their puts back scanned every held
 * subnet: 10,000 leases took 5.4 CPU-s instead of 1). Held in the order of their times, which is
 * the order they were held in (one grace for all), so those whose time is up go from the front.
 */
export class SubnetReservations {
  private readonly held = new Map<string, { readonly subnet: Prefix; readonly until: number }>();
  private readonly index = new SubnetIndex();
  /** When the first of `held` runs out (Infinity: none held): until then overlapping() lets none go from the front. */
  private frontUntil = Infinity;

  get size(): number { return this.held.size; }

  /** Holds key's subnet until `until` (a later hold of the key replaces the earlier). */
  hold(key: string, subnet: Prefix, until: number): void {
    this.release(key);
    this.held.set(key, { subnet, until });
    this.index.add(subnet, key);
    if (this.held.size === 1) this.frontUntil = until;
  }

  release(key: string): void {
    const r = this.held.get(key);
    if (!r) return;
    this.held.delete(key);
    this.index.remove(r.subnet, key);
  }

  /** A key (other than `except`) holding a subnet that overlaps p at `now`, or undefined. */
  overlapping(p: Prefix, except: string, now: number): string | undefined {
    if (this.held.size === 0) return undefined;
    // The first held runs out first (unless the clock went back): nothing to let go before then.
    if (now >= this.frontUntil) {
      for (const [k, r] of this.held) {
        if (r.until > now) break;
        this.release(k);
      }
      this.frontUntil = this.held.values().next().value?.until ?? Infinity;
    }
    for (;;) {
      const k = this.index.overlapping(p, except);
      if (k === undefined) return undefined;
      // Out of order only if the clock went back: then it is let go here.
      if (this.held.get(k)!.until > now) return k;
      this.release(k);
    }
  }

  /** Lets go of every subnet whose time is up; returns when the earliest of the rest runs out (Infinity: none). */
  expire(now: number): number {
    let next = Infinity;
    for (const [k, r] of this.held) {
      if (r.until <= now) this.release(k);
      else next = Math.min(next, r.until);
    }
    return next;
  }
}

/**
 * Who decides a conflict: leases the data plane already carries first (they
 * are established here), then the older etcd key (lower create revision).
 */
export function establishedFirst<T extends { lease: Lease }>(items: T[], prefer: (l: Lease) => boolean): T[] {
  const rev = (l: Lease) => l.createRevision ?? l.modRevision ?? 0;
  return items
    .map((x) => ({ x, p: prefer(x.lease) ? 0 : 1, r: rev(x.lease) }))
    .sort((a, b) => a.p - b.p || a.r - b.r || (a.x.lease.key < b.x.lease.key ? -1 : a.x.lease.key > b.x.lease.key ? 1 : 0))
    .map((y) => y.x);
}
