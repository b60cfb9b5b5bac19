// weftd's V8 heap policy, set once at startup.
//
// V8's young generation (new space) starts at 1 MiB per semi-space and doubles,
// up to 16 MiB, whenever many objects survive a scavenge, as they do while
// thousands of leases arrive at once. It does not shrink back while weftd runs,
// so after one burst weftd kept 32 MiB committed for a new space holding about
// 1 MiB (measured with 10,000 peers: RSS 178-182 MiB, new space 32 MiB). Held at
// its starting size, scavenges come more often but each copies only the
// survivors: with 10,000 peers RSS was 152-155 MiB, and the event-loop delay and
// convergence time no worse (weft bench --paths none --leases 10000).
// --max-semi-space-size would say the same on node's command line, but V8 reads
// it only at startup and weftd is started as `node weftd.js` or through its bin
// script, so the growth factor (which V8 reads at every scavenge) is set here.
import { setFlagsFromString } from 'node:v8';

export const YOUNG_GENERATION_FLAG = '--semi-space-growth-factor=1';

/**
 * Keeps the young generation at its starting size, unless the operator sized
 * it on node's command line or in NODE_OPTIONS (then that choice stands).
 * Returns whether it did.
 */
export function holdYoungGeneration(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if ([...execArgv, nodeOptions].some((a) => /semi[-_]space/.test(a))) return false;
  setFlagsFromString(YOUNG_GENERATION_FLAG);
  return true;
}
