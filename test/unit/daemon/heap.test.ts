// weftd's heap policy (daemon/heap.ts): the young generation grows to 8 MiB
// semi-spaces and no further, the old one stays near what is live, unless the
// operator sized them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { applyHeapPolicy, HEAP_FLAGS, YOUNG_SEMI_SPACE_MIB } from '../../../daemon/heap.js';

const HEAP = fileURLToPath(new URL('../../../daemon/heap.js', import.meta.url));

/**
 * Heap spaces (MiB) of a node process that keeps 400,000 objects and makes 4,000,000 short-lived
 * ones, with or without the policy, the event loop turning between rounds as in weftd (the policy
 * looks at the young generation after each collection, from the event loop).
 */
function spaces(policy: boolean, nodeArgs: string[] = []): { young: number } {
  const script = `
    const { applyHeapPolicy } = await import(${JSON.stringify(HEAP)});
    if (${policy}) applyHeapPolicy();
    const v8 = await import('node:v8');
    const live = [];
    let n = 0;
    for (let r = 0; r < 200; r++) {
      for (let i = 0; i < 2000; i++) live.push({ i, s: 'k' + i });
      const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: 'x' + i }); n += a.length;
      await new Promise((ok) => setImmediate(ok));
    }
    const s = Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, x.space_size / 2 ** 20]));
    process.stdout.write(JSON.stringify({ young: s.new_space, n, live: live.length }));`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { young: number };
}

test('with the policy the young generation grows to semi-spaces of 8 MiB and no further; without it, to V8\'s 16 MiB', () => {
  assert.is(spaces(true).young, 2 * YOUNG_SEMI_SPACE_MIB, 'with the policy');
  assert.is(spaces(false).young, 32, 'V8\'s default');
});

test('an operator\'s own sizes stand, each for its part of the heap', () => {
  const young = `young generation held at ${YOUNG_SEMI_SPACE_MIB} MiB semi-spaces`;
  assert.equal(applyHeapPolicy([], ''), [...HEAP_FLAGS.map((h) => h.flag), young]);
  assert.equal(applyHeapPolicy(['--max-semi-space-size=4'], ''), ['--heap-growing-percent=100']);
  assert.equal(applyHeapPolicy([], '--max-old-space-size=512'), [young]);
  assert.equal(applyHeapPolicy(['--max-semi-space-size=4', '--max-old-space-size=512'], ''), []);
  assert.is(spaces(true, ['--max-semi-space-size=4']).young, 8, 'the command line\'s semi-space size is used');
});

test.run();
