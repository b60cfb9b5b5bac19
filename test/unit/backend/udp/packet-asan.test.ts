// packet.property.test.ts again, in a node process that loads the ASan+UBSan build of the addon
// (scripts/build-asan.sh, scripts/asan-env.sh): the C++ receive and send checks and the real
// loops on random and mutated packets, with any out-of-bounds access or undefined behaviour
// ending the process with a sanitizer report. Budget: WEFT_PROPERTY_RUNS / _SECONDS as for the rest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeAsanEnv, sanitizerReport } from '../../../../lab/agent.js';

const file = fileURLToPath(new URL('./packet.property.test.js', import.meta.url));
const loader = fileURLToPath(new URL('../../../../native/index.js', import.meta.url));

test('the packet properties hold on the ASan+UBSan addon, without a sanitizer report', () => {
  const env: NodeJS.ProcessEnv = { ...nativeAsanEnv(), WEFT_PROPERTY_RUNS: process.env.WEFT_PROPERTY_RUNS ?? '300' };
  // The addon a process with this environment maps is the sanitized one.
  const probe = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(loader)}).then((m) => { m.native(); console.log(require('fs').readFileSync('/proc/self/maps', 'utf8').includes('build-asan/weft_native.node')); })`], { env, encoding: 'utf8' });
  assert.is(probe.stdout.trim(), 'true', `the ASan addon is not the one loaded: ${probe.stderr}`);
  const r = spawnSync(process.execPath, ['--enable-source-maps', file], { env, encoding: 'utf8', timeout: Math.max(600, Number(process.env.WEFT_PROPERTY_SECONDS ?? 0) * 8 + 120) * 1000 });
  const out = `${r.stdout}${r.stderr}`;
  const report = sanitizerReport(out);
  assert.not.ok(report, `sanitizer report:\n${report}`);
  for (const line of out.split('\n').filter((l) => l.includes('property '))) console.log(`  [asan]${line.replace(/^\s*•?\s*/, ' ')}`);
  assert.is(r.status, 0, out.slice(-3000));
  assert.match(out, /Passed:\s+7/);
});

test.run();
