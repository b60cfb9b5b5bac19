// How fast this machine is right now, as two fixed pieces of single-threaded work
// timed at the start and at the end of a bench run. On the shared VM the bench
// was built on, the same build's 10,000-lease burst took 1.6-1.8 s in one hour
// and 3.7-3.8 s in another, each agent's CPU seconds doubling with it, while
// /proc/stat showed no steal time: nothing in the kernel's accounting says how
// fast a CPU second was. A probe beside the results does, so that two runs'
// figures are compared knowing whether the machine under them was the same.
import { createHash } from 'node:crypto';

export interface SpeedProbe {
  /** SHA-256 over SHA_BYTES, best of the tries, in ms: the CPU's own speed. */
  sha256Ms: number;
  /** Copying COPY_BYTES between two buffers, best of the tries, in ms: memory bandwidth. */
  copyMs: number;
}

export const SHA_BYTES = 64 << 20;
export const COPY_BYTES = 128 << 20;
const TRIES = 3;

function bestOf(tries: number, work: () => void): number {
  let best = Infinity;
  for (let i = 0; i < tries; i++) {
    const t0 = performance.now();
    work();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** Times both pieces of work (about 0.2 s in all on the bench machine); the best of `tries` runs each, the least disturbed. */
export function speedProbe(tries = TRIES, shaBytes = SHA_BYTES, copyBytes = COPY_BYTES): SpeedProbe {
  if (!Number.isInteger(tries) || tries < 1) throw new RangeError(`speed probe tries must be a positive integer, not ${tries}`);
  const data = Buffer.alloc(shaBytes, 0x5a);
  const sha256Ms = bestOf(tries, () => createHash('sha256').update(data).digest());
  const from = Buffer.alloc(copyBytes, 0xa5);
  const to = Buffer.allocUnsafe(copyBytes);
  const copyMs = bestOf(tries, () => from.copy(to));
  return { sha256Ms, copyMs };
}

/** "SHA-256 of 64 MiB 38 ms, copying 128 MiB 21 ms". */
export function formatSpeedProbe(p: SpeedProbe): string {
  return `SHA-256 of ${SHA_BYTES >> 20} MiB ${p.sha256Ms.toFixed(0)} ms, copying ${COPY_BYTES >> 20} MiB ${p.copyMs.toFixed(0)} ms`;
}
