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

export type PeerParser<P> = (lease: Lease) => { peer: P } | { error: string };

export class PeerTable<P extends { equals(o: P): boolean }> {
  private readonly peers = new Map<string, P>();
  private readonly rejected = new Map<string, string>();
  invalid = 0;

  constructor(
    private readonly parse: PeerParser<P>,
    private readonly log: Logger,
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
      const subnet = ev.lease.subnet.toString();
      if (ev.type === 'removed') {
        next.delete(subnet);
        this.rejected.delete(subnet);
        continue;
      }
      const r = this.parse(ev.lease);
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
