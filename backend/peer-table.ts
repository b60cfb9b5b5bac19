// The set of remote peers a backend should reach, built from lease batches.
// Each backend supplies a parser that turns a lease into its own peer type or
// says why the lease is unusable; the table reports what changed.
import type { Lease, LeaseBatch } from '../subnet-manager/index.js';
import { Slicer } from '../lib/backoff.js';
import { type Logger, logs } from '../lib/log.js';

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

  /** Applies a batch and returns the changes (a snapshot replaces the whole set). Costs O(batch), a snapshot O(peers). */
  apply(batch: LeaseBatch): PeerChange<P>[] {
    const run = this.steps(batch);
    for (;;) {
      const r = run.next();
      if (r.done) return r.value;
    }
  }

  /** apply() for thousands of leases at once: the event loop runs between slices. */
  async applySliced(batch: LeaseBatch): Promise<PeerChange<P>[]> {
    const slicer = new Slicer();
    const run = this.steps(batch);
    for (;;) {
      const r = run.next();
      if (r.done) return r.value;
      if (slicer.due()) await slicer.next();
    }
  }

  /** apply()'s work, a step per lease (the table is consistent between steps only as a whole batch: callers run one at a time). */
  private *steps(batch: LeaseBatch): Generator<void, PeerChange<P>[]> {
    const seen = batch.snapshot ? new Set<string>() : undefined;
    // Per subnet: the peer before this batch (undefined: none), recorded at its first change.
    const before = new Map<string, P | undefined>();
    const set = (subnet: string, p: P | undefined) => {
      if (!before.has(subnet)) before.set(subnet, this.peers.get(subnet));
      if (p) this.peers.set(subnet, p);
      else this.peers.delete(subnet);
    };
    for (const ev of batch.events) {
      yield;
      const subnet = this.keyOf(ev.lease);
      if (ev.type === 'removed') {
        set(subnet, undefined);
        this.rejected.delete(subnet);
        continue;
      }
      seen?.add(subnet);
      const r = this.parse(ev.lease);
      if ('none' in r) {
        set(subnet, undefined);
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
        continue;
      }
      this.rejected.delete(subnet);
      set(subnet, r.peer);
    }
    // A snapshot lists every current lease: a peer it does not mention is gone.
    if (seen) for (const subnet of [...this.peers.keys()]) if (!seen.has(subnet)) set(subnet, undefined);
    // Removals, then changes, then additions: a host that moved to another subnet
    // keeps its MAC, and its old entries must go before the new ones are made.
    const removed: PeerChange<P>[] = [];
    const changed: PeerChange<P>[] = [];
    const added: PeerChange<P>[] = [];
    for (const [subnet, b] of before) {
      const a = this.peers.get(subnet);
      if (!a && b) removed.push({ subnet, before: b });
      else if (a && !b) added.push({ subnet, after: a });
      else if (a && b && !a.equals(b)) changed.push({ subnet, before: b, after: a });
    }
    return [...removed, ...changed, ...added];
  }
}

/** At most this many peer changes are logged one line each; a bigger batch is one summary line (each peer at debug). */
export const LOG_EACH_MAX = 20;

/** Logs peer changes: one line per peer ('peer added', 'peer updated', 'peer removed'), or a summary for a big batch. */
export function logPeerChanges<P>(log: Logger, changes: readonly PeerChange<P>[], fields: (p: P) => Record<string, unknown>): void {
  const small = changes.length <= LOG_EACH_MAX;
  const each = small ? log.info.bind(log) : log.debug.bind(log);
  // A burst's thousands of debug lines are not even built when debug is off.
  const lines = small || logs(log, 'debug');
  const count = { added: 0, updated: 0, removed: 0 };
  for (const c of changes) {
    const kind = c.after ? (c.before ? 'updated' : 'added') : 'removed';
    count[kind]++;
    if (lines) each(`peer ${kind}`, { subnet: c.subnet, ...fields((c.after ?? c.before)!) });
  }
  if (changes.length > LOG_EACH_MAX) log.info('peers changed', { ...count, first: changes.slice(0, 5).map((c) => c.subnet) });
}

/** The peer table's key for a backend of one family: the lease's subnet of that family. */
export function familyKey(family: 4 | 6): (l: Lease) => string {
  return family === 4 ? (l) => l.subnet.toString() : (l) => (l.ipv6Subnet ?? l.subnet).toString();
}
