// Watching <prefix>/subnets/: list, deliver a snapshot, then watch from the
// listing's revision + 1. The resume revision is tracked here from the events
// themselves (not from etcd3's watcher, which advances its start revision to
// the response header's revision and can skip events after a reconnect), and
// a fresh etcd watcher is created from it after every disconnect. When that
// revision has been compacted away (etcd cancels the watch), the set is
// re-listed and diffed against the known one.
import type { Logger } from '../daemon/logger.js';
import type { NetworkConfig } from './config.js';
import type { Prefix } from '../lib/ip.js';
import { type LeaseBatch, type LeaseEvent, LeaseTable } from './lease-table.js';
import type { Registry } from './registry.js';
import { toUnavailable } from './registry.js';

export interface ManagerStats {
  /** Lease keys/values skipped as invalid (each time one is seen). */
  invalidLeases: number;
  /** Re-lists after the watch revision was compacted away. */
  watchResyncs: number;
  /** Watch re-establishment attempts after a lost stream. */
  reconnects: number;
  /** Last successful exchange with etcd. */
  lastContact?: Date;
}

export interface WatchOptions {
  signal: AbortSignal;
  ownSubnet?: Prefix;
  onBatch: (b: LeaseBatch) => void | Promise<void>;
}

export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 5000;

/** Resolves after ms, or at once when signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}

type SessionEnd = { kind: 'aborted' } | { kind: 'canceled'; err: Error } | { kind: 'disconnected'; err: unknown } | { kind: 'failed'; err: unknown };

export async function runLeaseWatch(reg: Registry, cfg: NetworkConfig, opts: WatchOptions, stats: ManagerStats, logger: Logger): Promise<void> {
  const { signal, onBatch } = opts;
  const log = logger.child({ component: 'lease-watch' });
  const table = new LeaseTable(cfg, reg.subnetsPrefix, log, opts.ownSubnet, () => { stats.invalidLeases++; });
  let delay = BACKOFF_MIN_MS;
  let rev = 0;

  const relist = async (): Promise<LeaseEvent[] | null> => {
    for (;;) {
      if (signal.aborted) return null;
      try {
        const l = await reg.listSubnets();
        rev = l.revision;
        delay = BACKOFF_MIN_MS;
        return table.resync(l.kvs);
      } catch (e) {
        const err = toUnavailable(e, []);
        if (!(err as { retryable?: boolean }).retryable) throw err;
        log.warn('listing leases failed, retrying', { err, retryInMs: delay });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
    }
  };

  const first = await relist();
  if (first === null) return;
  await onBatch({ snapshot: true, events: first });

  const session = (startRev: number): Promise<SessionEnd> => new Promise((resolve) => {
    const w = reg.client.watch().prefix(reg.subnetsPrefix).startRevision(String(startRev)).watcher();
    let done = false;
    let chain: Promise<void> = Promise.resolve();
    const finish = (end: SessionEnd, cancel: boolean) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (cancel) w.cancel().catch(() => {});
      // Events already received are still applied, in order, before the next step.
      chain.then(() => resolve(end), (err) => resolve({ kind: 'failed', err }));
    };
    const onAbort = () => finish({ kind: 'aborted' }, true);
    signal.addEventListener('abort', onAbort, { once: true });
    w.on('connected', () => {
      stats.lastContact = new Date();
      delay = BACKOFF_MIN_MS;
      log.debug('watching leases', { fromRevision: startRev });
    });
    w.on('data', (res) => {
      stats.lastContact = new Date();
      chain = chain.then(async () => {
        if (done && (signal.aborted)) return;
        const events: LeaseEvent[] = [];
        for (const ev of res.events) {
          const key = ev.kv.key.toString();
          const e = ev.type === 'Put'
            ? table.put({ key, value: ev.kv.value.toString(), modRevision: Number(ev.kv.mod_revision), leaseId: String(ev.kv.lease ?? '0') })
            : table.delete(key);
          if (e) events.push(e);
          rev = Math.max(rev, Number(ev.kv.mod_revision));
        }
        // An empty response is a progress notification: everything up to the
        // header's revision has been delivered.
        if (res.events.length === 0) rev = Math.max(rev, Number(res.header.revision));
        if (events.length > 0) await onBatch({ snapshot: false, events });
      });
      chain.catch((err) => finish({ kind: 'failed', err }, true));
    });
    w.on('disconnected', (err) => finish({ kind: 'disconnected', err }, true));
    // 'error' is a cancellation by the server; etcd3 has already dropped the
    // watcher. etcd 3.4 signals compaction only by compact_revision with an
    // empty cancel_reason, which etcd3 does not pass on ("Watcher canceled: "),
    // so every server cancel is handled as a compaction: re-list and diff is
    // correct whatever the cause.
    w.on('error', (err: Error) => finish({ kind: 'canceled', err }, false));
  });

  let lastCanceledAt = -1;
  let cancelDelay = BACKOFF_MIN_MS;
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
        if (rev === lastCanceledAt) {
          await sleep(cancelDelay, signal);
          cancelDelay = Math.min(cancelDelay * 2, BACKOFF_MAX_MS);
        } else {
          cancelDelay = BACKOFF_MIN_MS;
        }
        log.warn('watch canceled by etcd (revision compacted), re-listing leases', { fromRevision: rev + 1, reason: end.err.message });
        const events = await relist();
        if (events === null) return;
        lastCanceledAt = rev;
        if (events.length > 0) await onBatch({ snapshot: false, events });
        break;
      }
      case 'disconnected':
        if (signal.aborted) return;
        stats.reconnects++;
        log.warn('lease watch disconnected, resuming', { err: end.err as Error, fromRevision: rev + 1, retryInMs: delay });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
        break;
    }
  }
}
