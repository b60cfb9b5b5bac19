// The fuzz driver of the forwarding loops (native/fuzz/forwarder-fuzz.cc: libFuzzer
// with ASan and UBSan, every output checked by an oracle) for a short budget, so
// the suite counts it; `npm run fuzz` runs a long one. Needs clang (scripts/setup.sh).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const SECONDS = Number(process.env.WEFT_FUZZ_SECONDS ?? 30);

test(`fuzzing the real forwarding loops for ${SECONDS} s finds nothing (no oracle violation, no ASan/UBSan report)`, () => {
  const r = spawnSync('bash', ['scripts/fuzz.sh', '--native-only', '--seconds', String(SECONDS)], { cwd: ROOT, encoding: 'utf8', timeout: (SECONDS + 300) * 1000 });
  const out = `${r.stdout}${r.stderr}`;
  const summary = /fuzz: (\d+) cases in \d+ s, exit (\d+), findings (\d+)/.exec(out);
  assert.ok(summary, `no summary line:\n${out.slice(-3000)}`);
  console.log(`  ${summary![0]}`);
  assert.is(r.status, 0, out.slice(-3000));
  assert.is(summary![3], '0');
  assert.ok(Number(summary![1]) > 100, 'it ran cases');
});

test.run();
