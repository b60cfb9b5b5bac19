// weftd's V8 heap policy, set once at startup (weft bench --paths none --leases
// 10000, the agents' RSS and /metrics heap spaces right after all 10,000 peers
// are programmed; a heap snapshot then holds about 37 MiB of live objects).
//
// - The young generation (new space) starts at 1 MiB per semi-space and
//   doubles, up to 16 MiB, whenever many objects survive a scavenge, as they do
//   while thousands of leases arrive at once; it does not shrink back while
//   weftd runs. After one burst weftd kept 32 MiB committed for a new space
//   holding about 1 MiB. Held at its starting size, scavenges come more often
//   but each copies only the survivors.
// - The old generation is collected once it grows past V8's limit, by default
//   up to 4x what was live after the last full collection: weftd's old space
//   was 67-75 MiB for 30-40 MiB of live objects. A limit 50 % above the live
//   size (more frequent, mostly concurrent, full collections of a heap of tens
//   of MiB) keeps it near what weftd holds.
// With both, RSS with 10,000 peers was 110-117 MiB instead of 178-182 MiB (young
// generation held alone: 152-155 MiB; with a 20 % limit 106-107 MiB, a few MiB
// less for more frequent full collections), convergence no slower and the
// event-loop delay in the same range, on the same machine.
// --max-semi-space-size would say the first on node's command line, but V8
// reads it only at startup and weftd is started as `node weftd.js` or through
// its bin script; both flags here are ones V8 reads at every collection.
import { setFlagsFromString } from 'node:v8';

export const HEAP_FLAGS: readonly { readonly flag: string; readonly operatorSets: RegExp }[] = [
  { flag: '--semi-space-growth-factor=1', operatorSets: /semi[-_]space/ },
  { flag: '--heap-growing-percent=50', operatorSets: /heap[-_]growing|max[-_]old[-_]space|max[-_]heap[-_]size/ },
];

/**
 * Applies HEAP_FLAGS, each unless the operator sized that part of the heap on
 * node's command line or in NODE_OPTIONS (then that choice stands). Returns
 * the flags it set.
 */
export function applyHeapPolicy(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...execArgv, nodeOptions].join(' ');
  const set = HEAP_FLAGS.filter((h) => !h.operatorSets.test(given)).map((h) => h.flag);
  for (const f of set) setFlagsFromString(f);
  return set;
}
