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

/** Subnets of live leases by prefix length, for overlap checks that do not grow with the number of leases. */
export class SubnetIndex {
  private readonly byLen = new Map<number, Map<bigint, string>>();

  add(p: Prefix, key: string): void {
    let m = this.byLen.get(p.prefixLen);
    if (!m) this.byLen.set(p.prefixLen, (m = new Map()));
    m.set(p.ip, key);
  }

  remove(p: Prefix, key: string): void {
    const m = this.byLen.get(p.prefixLen);
    if (m?.get(p.ip) === key) m.delete(p.ip);
  }

  /** A key (other than `except`) whose subnet overlaps p, or undefined. */
  overlapping(p: Prefix, except?: string): string | undefined {
    for (const [len, m] of this.byLen) {
      if (m.size === 0) continue;
      if (len <= p.prefixLen) {
        // A shorter (or equal) prefix overlaps p only by containing it.
        const k = m.get(p.networkOf(len));
        if (k !== undefined && k !== except) return k;
        continue;
      }
      // Longer prefixes inside p: look at whichever is fewer, the entries or p's sub-prefixes.
      const inside = 1n << BigInt(len - p.prefixLen);
      if (BigInt(m.size) <= inside) {
        for (const [ip, k] of m) if (k !== except && p.contains(ip)) return k;
      } else {
        const step = 1n << BigInt(p.bits - len);
        for (let i = 0n; i < inside; i++) {
          const k = m.get(p.ip + i * step);
          if (k !== undefined && k !== except) return k;
        }
      }
    }
    return undefined;
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
