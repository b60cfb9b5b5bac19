// weftd's heap policy (daemon/heap.ts): the young generation stays at its
// starting size, the old one near what is live, unless the operator sized them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { applyHeapPolicy, HEAP_FLAGS } from '../../../daemon/heap.js';

const HEAP = fileURLToPath(new URL('../../../daemon/heap.js', import.meta.url));

/** Heap spaces (MiB) of a node process that keeps 200,000 objects and makes 2,000,000 short-lived ones, with or without the policy. */
function spaces(policy: boolean, nodeArgs: string[] = []): { old: number; young: number } {
  const script = `
    const { applyHeapPolicy } = await import(${JSON.stringify(HEAP)});
    if (${policy}) applyHeapPolicy();
    const v8 = await import('node:v8');
    const live = []; for (let i = 0; i < 200000; i++) live.push({ i, s: 'k' + i });
    let n = 0;
    for (let r = 0; r < 100; r++) { const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: 'x' + i }); n += a.length; }
    const s = Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, x.space_size / 2 ** 20]));
    process.stdout.write(JSON.stringify({ old: s.old_space, young: s.new_space, n, live: live.length }));`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { old: number; young: number };
}

test('with the policy the young generation stays at its starting size and the heap well below what V8 keeps by default', () => {
  const held = spaces(true);
  const dflt = spaces(false);
  assert.ok(held.young <= 4, `new space ${held.young} MiB with the policy`);
  assert.ok(dflt.young > held.young, `new space ${dflt.young} MiB without it, ${held.young} MiB with it`);
  assert.ok(held.old + held.young < 0.75 * (dflt.old + dflt.young), `heap ${held.old + held.young} MiB with the policy, ${dflt.old + dflt.young} MiB without`);
});

test('an operator\'s own sizes stand, each for its part of the heap', () => {
  assert.equal(applyHeapPolicy([], ''), HEAP_FLAGS.map((h) => h.flag));
  assert.equal(applyHeapPolicy(['--max-semi-space-size=8'], ''), ['--heap-growing-percent=50']);
  assert.equal(applyHeapPolicy([], '--max-old-space-size=512'), ['--semi-space-growth-factor=1']);
  assert.equal(applyHeapPolicy(['--max-semi-space-size=8', '--max-old-space-size=512'], ''), []);
  assert.ok(spaces(true, ['--max-semi-space-size=8']).young > 4, 'the command line\'s semi-space size is used');
});

test.run();
