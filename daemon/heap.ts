// weftd's V8 heap policy, set once at startup (weft bench --paths none --leases
// 10000, the agents' RSS and /metrics heap spaces right after all 10,000 peers
// are programmed; a heap snapshot then holds about 37 MiB of live objects).
//
// - The young generation (new space) starts at 1 MiB (two semi-spaces of half a
//   MiB) and doubles whenever many objects survive a scavenge, as they do while
//   thousands of leases arrive at once, up to V8's 16 MiB semi-spaces (32 MiB);
//   it does not shrink back while weftd stays busy. weftd lets it double up to
//   semi-spaces of 8 MiB, then holds it there (YOUNG_SEMI_SPACE_MIB): V8 reads
//   its maximum only at startup, but its growth factor at every collection, so
//   the factor is set to 1 by the first look after the collection that reached
//   8 MiB (a look from the event loop: one more doubling, to V8's 16 MiB, could
//   slip in only if 8 MiB survived between two turns of it). Held at its starting
//   size instead, a 10,000-lease burst took about 100 scavenges instead of 20
//   (each copies what survives, and the peers' new objects do): one weftd alone
//   (bench --scale-hosts 1, 3 rounds of each build alternated) converged after
//   0.77-0.88 s instead of 0.71-0.81 s, on 0.84-0.98 user CPU-s instead of
//   0.76-0.89, with 3-7 MiB less RSS.
// - The old generation is collected once it grows past V8's limit, by default
//   up to 4x what was live after the last full collection: weftd's old space
//   was 67-75 MiB for 30-40 MiB of live objects. A limit twice the live size
//   (more frequent, mostly concurrent, full collections of a heap of tens of
//   MiB) keeps it near what weftd holds. 50 % above the live size, as before,
//   cost more CPU in a burst for little RSS: 3 agents on 2 CPUs, rounds of each
//   alternated (bench --paths none), 4000 leases took 0.33-0.36 CPU-s per agent
//   instead of 0.36-0.37 (every host done after 0.59-0.60 s instead of
//   0.61-0.63), and with 10,000, RSS after was 108-116 MiB instead of 107-112.
// With the old generation's limit and the young one held at its starting size,
// RSS with 10,000 peers was 110-117 MiB instead of 178-182 MiB (the young
// generation held alone: 152-155 MiB); with the young one let grow to 8 MiB,
// 113-121 MiB.
// Each is left to the operator who sized that part of the heap on node's
// command line or in NODE_OPTIONS (--max-semi-space-size, --max-old-space-size).
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** The semi-space size (MiB) weftd lets the young generation grow to. */
export const YOUNG_SEMI_SPACE_MIB = 8;

export const HEAP_FLAGS: readonly { readonly flag: string; readonly operatorSets: RegExp }[] = [
  { flag: '--heap-growing-percent=100', operatorSets: /heap[-_]growing|max[-_]old[-_]space|max[-_]heap[-_]size/ },
];
const SEMI_SPACE = /semi[-_]space/;

/** The young generation's size now (both semi-spaces), in MiB. */
function youngGenerationMiB(): number {
  return (getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2 ** 20;
}

/**
 * Applies HEAP_FLAGS and holds the young generation at YOUNG_SEMI_SPACE_MIB, each unless the
 * operator sized that part of the heap on node's command line or in NODE_OPTIONS (then that
 * choice stands). Returns the flags it set, and 'young generation held at N MiB' when it holds it.
 */
export function applyHeapPolicy(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...execArgv, nodeOptions].join(' ');
  const set = HEAP_FLAGS.filter((h) => !h.operatorSets.test(given)).map((h) => h.flag);
  for (const f of set) setFlagsFromString(f);
  if (SEMI_SPACE.test(given)) return set;
  holdYoungGeneration(2 * YOUNG_SEMI_SPACE_MIB);
  return [...set, `young generation held at ${YOUNG_SEMI_SPACE_MIB} MiB semi-spaces`];
}

/** Stops the young generation's growth after the collection that takes it to `mib` (both semi-spaces) or more. */
function holdYoungGeneration(mib: number): void {
  const hold = (): boolean => {
    if (youngGenerationMiB() < mib) return false;
    setFlagsFromString('--semi-space-growth-factor=1');
    return true;
  };
  if (hold()) return;
  const obs = new PerformanceObserver(() => {
    if (hold()) obs.disconnect();
  });
  obs.observe({ entryTypes: ['gc'] });
}
