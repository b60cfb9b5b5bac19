// fast-check properties as uvu tests, with one budget for the whole suite:
//   CI (default)              WEFT_PROPERTY_RUNS runs per property (default 1000; each file takes seconds)
//   npm run fuzz              WEFT_PROPERTY_SECONDS per property, as many runs as fit
//   a failure                 prints fast-check's seed and path; WEFT_PROPERTY_SEED=<seed> replays it
// Each property logs its figures ("N runs in S s"), which `npm run fuzz` sums up.
import fc from 'fast-check';
import { test } from 'uvu';

export { fc };

const seconds = Number(process.env.WEFT_PROPERTY_SECONDS ?? 0);
const runs = Number(process.env.WEFT_PROPERTY_RUNS ?? 1000);
const seed = process.env.WEFT_PROPERTY_SEED === undefined ? undefined : Number(process.env.WEFT_PROPERTY_SEED);

/** fast-check parameters for this run's budget; `scale` shrinks the default run count of slow properties. */
export function budget(scale = 1): fc.Parameters<unknown> {
  return {
    ...(seconds > 0
      ? { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false }
      : { numRuns: Math.max(1, Math.round(runs * scale)) }),
    ...(seed !== undefined && Number.isFinite(seed) ? { seed } : {}),
  };
}

/** A uvu test that checks the property and logs `property <name>: <runs> runs in <s> s (seed <seed>)`. */
export function property<Ts extends [unknown, ...unknown[]]>(name: string, p: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>, scale = 1): void {
  test(name, async () => {
    const start = performance.now();
    const details = await fc.check(p as fc.IAsyncProperty<Ts>, budget(scale) as fc.Parameters<Ts>);
    const s = ((performance.now() - start) / 1000).toFixed(1);
    console.log(`  property ${name}: ${details.numRuns} runs in ${s} s (seed ${details.seed})${details.failed ? ' FAILED' : ''}`);
    if (details.failed) {
      const e = details.errorInstance as Error | undefined;
      const report = (fc.defaultReportMessage(details) ?? `property failed (seed ${details.seed})`).slice(0, 4000);
      throw new Error(`${report}\nGot ${e?.stack?.split('\n').slice(0, 4).join('\n') ?? String(e)}`);
    }
  });
}

/** Runs fn; returns undefined, or the error when it is one of `allowed` (anything else is rethrown, failing the property). */
export function onlyThrows(allowed: ReadonlyArray<abstract new (...a: never[]) => Error>, fn: () => unknown): Error | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return e as Error;
    throw e;
  }
}
