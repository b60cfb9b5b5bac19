// Timestamps along the lease pipeline, for finding where a burst waits (etcd
// commit → watch response → lease table → backend → kernel). Off unless
// WEFT_TRACE=<file> is in the environment: then trace(what, fields) appends one
// JSON line {t, pid, what, ...fields} to the file, t in wall-clock milliseconds
// with microsecond precision, so lines of several processes (the bench, each
// weftd) sort into one timeline. Off, a call costs one branch.
import { closeSync, openSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

let fd: number | undefined;
const path = process.env.WEFT_TRACE;
if (path) {
  try {
    fd = openSync(path, 'a');
  } catch (e) {
    process.emitWarning(`WEFT_TRACE=${path}: cannot open (${(e as Error).message}); tracing off`);
  }
}

/** Whether trace() writes anything (skip building expensive fields when not). */
export const tracing = fd !== undefined;

/** Wall-clock milliseconds with sub-millisecond precision (comparable across processes). */
export const wallMs = (): number => performance.timeOrigin + performance.now();

// The first line maps this process's monotonic clock (CPU profiles' timestamps, µs) to wall time.
trace('trace.open', { monoUs: Number(process.hrtime.bigint() / 1000n) });

/** Appends {t, pid, what, ...fields}; a field named t, pid or what does not replace the line's own. */
export function trace(what: string, fields: Record<string, unknown> = {}): void {
  if (fd === undefined) return;
  try {
    const head = { t: Number(wallMs().toFixed(3)), pid: process.pid, what };
    writeSync(fd, `${JSON.stringify(Object.assign({ ...head }, fields, head))}\n`);
  } catch {
    closeSync(fd);
    fd = undefined;
  }
}
