// The set of remote peers a backend should reach, built from lease batches.
// Each backend supplies a parser that turns a lease into its own peer type or
// says why the lease is unusable; the table reports what changed.
import type { Lease, LeaseBatch } from '../subnet-manager/index.js';
import type { Logger } from '../lib/log.js';

export interface PeerChange<P> {
  readonly subnet: string;
  readonly before?: P;
  readonly after?: P;
}

/**
 * A lease as a peer, why it cannot be one (warned, counted), or `none`: the
 * lease is fine but has nothing for this table (a dual-stack backend's IPv6
 * half and a peer without an IPv6 subnet, as flannel skips it).
 */
export type PeerParser<P> = (lease: Lease) => { peer: P } | { error: string } | { none: true };

export class PeerTable<P extends { equals(o: P): boolean }> {
  private readonly peers = new Map<string, P>();
  private readonly rejected = new Map<string, string>();
  invalid = 0;

  constructor(
    private readonly parse: PeerParser<P>,
    private readonly log: Logger,
    /** A peer's key: its subnet (a dual-stack backend's IPv6 half: its IPv6 subnet, so each family's paths and metrics have their own). */
    private readonly keyOf: (l: Lease) => string = (l) => l.subnet.toString(),
  ) {}

  get size(): number {
    return this.peers.size;
  }

  values(): IterableIterator<P> {
    return this.peers.values();
  }

  entries(): IterableIterator<[string, P]> {
    return this.peers.entries();
  }

  get(subnet: string): P | undefined {
    return this.peers.get(subnet);
  }

  /** Applies a batch and returns the changes (a snapshot replaces the whole set). */
  apply(batch: LeaseBatch): PeerChange<P>[] {
    const next = batch.snapshot ? new Map<string, P>() : new Map(this.peers);
    for (const ev of batch.events) {
      const subnet = this.keyOf(ev.lease);
      if (ev.type === 'removed') {
        next.delete(subnet);
        this.rejected.delete(subnet);
        continue;
      }
      const r = this.parse(ev.lease);
      if ('none' in r) {
        next.delete(subnet);
        this.rejected.delete(subnet);
        continue;
      }
      if ('error' in r) {
        // A bad lease never takes down a peer we already reach through a good one.
        if (this.rejected.get(subnet) !== r.error) {
          this.invalid++;
          this.log.warn('skipping peer lease', { key: ev.lease.key, subnet, publicIp: ev.lease.attrs.publicIP, reason: r.error });
        }
        this.rejected.set(subnet, r.error);
        if (batch.snapshot && this.peers.has(subnet)) next.set(subnet, this.peers.get(subnet)!);
        continue;
      }
      this.rejected.delete(subnet);
      next.set(subnet, r.peer);
    }
    const changes: PeerChange<P>[] = [];
    for (const [subnet, before] of this.peers) {
      const after = next.get(subnet);
      if (!after) changes.push({ subnet, before });
      else if (!after.equals(before)) changes.push({ subnet, before, after });
    }
    for (const [subnet, after] of next) if (!this.peers.has(subnet)) changes.push({ subnet, after });
    this.peers.clear();
    for (const [k, v] of next) this.peers.set(k, v);
    return changes;
  }
}

/** The peer table's key for a backend of one family: the lease's subnet of that family. */
export function familyKey(family: 4 | 6): (l: Lease) => string {
  return family === 4 ? (l) => l.subnet.toString() : (l) => (l.ipv6Subnet ?? l.subnet).toString();
}
