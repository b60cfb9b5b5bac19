// weftd's heap policy (daemon/heap.ts): the young generation stays at its
// starting size however much survives, unless the operator sized it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { holdYoungGeneration } from '../../../daemon/heap.js';

const HEAP = fileURLToPath(new URL('../../../daemon/heap.js', import.meta.url));

/** New space (MiB) of a node process that keeps many short- and medium-lived objects, with or without the policy. */
function newSpaceMiB(hold: boolean, nodeArgs: string[] = []): number {
  const script = `
    const { holdYoungGeneration } = await import(${JSON.stringify(HEAP)});
    if (${hold}) holdYoungGeneration();
    const v8 = await import('node:v8');
    const keep = [];
    for (let r = 0; r < 60; r++) { const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: 'x' + i }); keep.push(a); if (keep.length > 10) keep.shift(); }
    const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    process.stdout.write(String(s.space_size / 2 ** 20));`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.is(r.status, 0, r.stderr);
  return Number(r.stdout);
}

test('the young generation stays at its starting size (it grows to 32 MiB without the policy)', () => {
  const held = newSpaceMiB(true);
  const grown = newSpaceMiB(false);
  assert.ok(held <= 4, `new space ${held} MiB with the policy`);
  assert.ok(grown > held, `new space ${grown} MiB without it, ${held} MiB with it`);
});

test('an operator\'s own semi-space setting stands', () => {
  assert.is(holdYoungGeneration(['--max-semi-space-size=8'], ''), false);
  assert.is(holdYoungGeneration([], '--max-semi-space-size=8'), false);
  assert.ok(newSpaceMiB(true, ['--max-semi-space-size=8']) > 4, 'the command line\'s size is used');
});

test.run();
