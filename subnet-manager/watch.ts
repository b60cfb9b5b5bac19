// Watching <prefix>/subnets/: list, deliver a snapshot, then watch from the
// listing's revision + 1. The resume revision is tracked here from the events
// themselves (not from etcd3's watcher, which advances its start revision to
// the response header's revision and can skip events after a reconnect), and
// a fresh etcd watcher is created from it after every disconnect. When that
// revision has been compacted away (etcd cancels the watch), the set is
// re-listed and diffed against the known one. Every second, leases skipped
// for a conflict are looked at again (LeaseTable.reconsider).
import { Backoff, Slicer, sleep } from '../lib/backoff.js';
import { isRetryable } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { Serial } from '../lib/serial.js';
import { trace } from '../lib/trace.js';
import type { NetworkConfig } from './config.js';
import type { Lease } from './lease.js';
import { type LeaseBatch, type LeaseEvent, LeaseTable, type OwnLease } from './lease-table.js';
import type { Registry, SubnetEvent } from './registry.js';

export interface ManagerStats {
  /** Lease keys/values skipped as invalid (each time one is seen). */
  invalidLeases: number;
  /** Re-lists after the watch revision was compacted away. */
  watchResyncs: number;
  /** Watch re-establishment attempts after a lost stream. */
  reconnects: number;
  /** Leases skipped for a conflict (each time one is newly skipped). */
  leaseConflicts: number;
  /** Leases skipped for a conflict right now. */
  conflictingLeases: number;
  /** Last successful exchange with etcd. */
  lastContact?: Date;
}

export interface WatchOptions {
  signal: AbortSignal;
  /** This host's lease: never delivered, and nothing that claims what it holds is. */
  own?: OwnLease;
  /** Leases the data plane already carries (they win conflicts on the first snapshot). */
  prefer?: (l: Lease) => boolean;
  onBatch: (b: LeaseBatch) => void | Promise<void>;
}

/** How often skipped (conflicting) leases are looked at again. */
export const RECONSIDER_MS = 1000;

/** Delays between attempts after a lost stream, a failed listing or repeated cancels. */
export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 5000;

type SessionEnd = { kind: 'aborted' } | { kind: 'canceled'; err: Error } | { kind: 'disconnected'; err: unknown } | { kind: 'failed'; err: unknown };

export async function runLeaseWatch(reg: Registry, cfg: NetworkConfig, opts: WatchOptions, stats: ManagerStats, logger: Logger): Promise<void> {
  const { signal, onBatch } = opts;
  const log = logger.child({ component: 'lease-watch' });
  const table = new LeaseTable(cfg, reg.subnetsPrefix, log, {
    ...(opts.own ? { own: opts.own } : {}),
    ...(opts.prefer ? { prefer: opts.prefer } : {}),
    onInvalid: () => { stats.invalidLeases++; },
    onConflict: () => { stats.leaseConflicts++; },
  });
  const backoff = new Backoff(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
  let rev = 0;
  // Table changes and deliveries, one at a time and in order.
  const serial = new Serial();
  const deliver = async (events: LeaseEvent[], snapshot = false): Promise<void> => {
    stats.conflictingLeases = table.conflicting;
    if (snapshot || events.length > 0) await onBatch({ snapshot, events });
  };

  const relist = async (): Promise<LeaseEvent[] | null> => {
    for (;;) {
      if (signal.aborted) return null;
      try {
        const l = await reg.listSubnets();
        rev = l.revision;
        backoff.reset();
        return table.resync(l.kvs);
      } catch (e) {
        // listSubnets already names the endpoints and says whether it is transient.
        if (!isRetryable(e)) throw e;
        const delay = backoff.next();
        log.warn('listing leases failed, retrying', { err: e, retryInMs: delay });
        await sleep(delay, signal);
      }
    }
  };

  const first = await relist();
  if (first === null) return;
  await deliver(first, true);

  // A failed delivery ends the watch (the caller's error); later ones are not attempted.
  let failure: { err: unknown } | undefined;
  let failSession: ((err: unknown) => void) | undefined;
  const reconsider = setInterval(() => {
    void serial.run(async () => {
      if (failure || signal.aborted) return;
      await deliver(table.reconsider());
    }).catch((err) => {
      failure ??= { err };
      failSession?.(err);
    });
  }, RECONSIDER_MS);
  try {
    await watchLoop();
  } finally {
    clearInterval(reconsider);
  }

  async function watchLoop(): Promise<void> {
    const session = (startRev: number): Promise<SessionEnd> => new Promise((resolve) => {
      let done = false;
      /** Watch responses not taken yet by a delivery run. */
      const queued: { evs: SubnetEvent[]; headerRevision: number }[] = [];
      const finish = (end: SessionEnd, cancel: boolean) => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        if (cancel) w.cancel().catch(() => {});
        // Events already received are still applied, in order, before the next step.
        void serial.run(async () => {}).then(() => resolve(failure ? { kind: 'failed', err: failure.err } : end));
      };
      const onAbort = () => finish({ kind: 'aborted' }, true);
      failSession = (err) => finish({ kind: 'failed', err }, true);
      const w = reg.watchSubnets(startRev, {
        connected: () => {
          backoff.reset();
          log.debug('watching leases', { fromRevision: startRev });
        },
        data: (evs, headerRevision) => {
          // Responses that arrive while an earlier delivery runs are taken together
          // by the next run: a burst (thousands of hosts' puts) becomes a few large
          // batches for the backend, not one small batch per response.
          queued.push({ evs, headerRevision });
          if (queued.length > 1) return;
          void serial.run(async () => {
            const responses = queued.splice(0);
            if ((done && signal.aborted) || failure) return;
            trace('watch.take', { responses: responses.length, events: responses.reduce((n, r) => n + r.evs.length, 0) });
            const events: LeaseEvent[] = [];
            // A response can hold thousands of events: the event loop runs between slices.
            const slicer = new Slicer();
            for (const r of responses) {
              for (const ev of r.evs) {
                const e = ev.type === 'put' ? table.put(ev.kv) : table.delete(ev.key);
                if (e) events.push(e);
                rev = Math.max(rev, ev.type === 'put' ? ev.kv.modRevision : ev.modRevision);
                if (slicer.due()) await slicer.next();
              }
              // An empty response is a progress notification: everything up to the
              // header's revision has been delivered.
              if (r.evs.length === 0) rev = Math.max(rev, r.headerRevision);
            }
            trace('watch.table', { leaseEvents: events.length });
            await deliver(events);
          }).catch((err) => {
            failure ??= { err };
            finish({ kind: 'failed', err }, true);
          });
        },
        disconnected: (err) => finish({ kind: 'disconnected', err }, true),
        // A cancellation by the server; etcd3 has already dropped the watcher.
        // etcd 3.4 signals compaction only by compact_revision with an empty
        // cancel_reason, which etcd3 does not pass on ("Watcher canceled: "), so
        // every server cancel is handled as a compaction: re-list and diff is
        // correct whatever the cause.
        canceled: (err) => finish({ kind: 'canceled', err }, false),
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });

    let lastCanceledAt = -1;
    const cancelBackoff = new Backoff(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    while (!signal.aborted) {
      const end = await session(rev + 1);
      switch (end.kind) {
        case 'aborted':
          return;
        case 'failed':
          throw end.err;
        case 'canceled': {
          stats.watchResyncs++;
          // Back off only if cancels repeat without progress (a cause other than compaction).
          if (rev === lastCanceledAt) await sleep(cancelBackoff.next(), signal);
          else cancelBackoff.reset();
          log.warn('watch canceled by etcd (revision compacted), re-listing leases', { fromRevision: rev + 1, reason: end.err.message });
          const events = await serial.run(() => relist());
          if (events === null) return;
          lastCanceledAt = rev;
          await serial.run(() => deliver(events));
          break;
        }
        case 'disconnected': {
          if (signal.aborted) return;
          stats.reconnects++;
          const delay = backoff.next();
          log.warn('lease watch disconnected, resuming', { err: end.err as Error, fromRevision: rev + 1, retryInMs: delay });
          await sleep(delay, signal);
          break;
        }
      }
    }
  }
}
