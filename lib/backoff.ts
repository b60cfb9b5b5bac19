// Waiting: an abortable sleep, capped exponential backoff, and retrying a
// call while its failure is retryable.
import { isRetryable } from './errors.js';
import type { Logger } from './log.js';

/** Resolves after ms, or at once when signal aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Resolves after the event loop has run what is due (timers, I/O): long work awaits it between slices. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Work between two yields to the event loop in weft's long loops (thousands of peers). */
export const SLICE_MS = 5;

/**
 * Cuts a long loop into slices: `if (s.due()) await s.next();` in each
 * iteration lets the event loop run once SLICE_MS of work have passed.
 */
export class Slicer {
  private start = performance.now();
  constructor(private readonly ms = SLICE_MS) {}
  due(): boolean {
    return performance.now() - this.start > this.ms;
  }
  async next(): Promise<void> {
    await yieldToLoop();
    this.start = performance.now();
  }
}

/** Delays that double from min up to max; reset() after a success. */
export class Backoff {
  private current: number;
  constructor(readonly min = 100, readonly max = 5000) {
    this.current = min;
  }
  /** The delay to wait now; the next one is twice as long (capped). */
  next(): number {
    const d = this.current;
    this.current = Math.min(this.current * 2, this.max);
    return d;
  }
  /** The delay next() would return, without advancing. */
  peek(): number {
    return this.current;
  }
  reset(): void {
    this.current = this.min;
  }
}

/** Retries fn while it fails with a retryable error, backing off 200 ms .. 5 s, until it succeeds or signal aborts. */
export async function retrying<T>(what: string, log: Logger, signal: AbortSignal, fn: () => Promise<T>, backoff = new Backoff(200, 5000)): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isRetryable(e) || signal.aborted) throw e;
      const delay = backoff.next();
      log.warn(`${what} failed; retrying`, { attempt, retryInMs: delay, err: e });
      await sleep(delay, signal);
      if (signal.aborted) throw e;
    }
  }
}
