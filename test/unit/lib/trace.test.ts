// WEFT_TRACE's lines, written by a child process that has the variable set
// (trace.ts reads it once, when it is loaded): the first line maps the clocks,
// and a field cannot replace a line's own t, pid or what.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const traceModule = new URL('../../../lib/trace.js', import.meta.url).href;

/** The lines a child writes calling trace(what, fields) once. */
function traced(what: string, fields: Record<string, unknown>): Record<string, unknown>[] {
  const dir = mkdtempSync(join(tmpdir(), 'weft-trace-'));
  try {
    const file = join(dir, 'trace.jsonl');
    const script = `const { trace } = await import(${JSON.stringify(traceModule)}); trace(${JSON.stringify(what)}, ${JSON.stringify(fields)});`;
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, WEFT_TRACE: file }, stdio: ['ignore', 'ignore', 'pipe'] });
    return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the first line is trace.open with the monotonic clock; then one line per call, t, pid and what first', () => {
  const [open, line, ...rest] = traced('watch.data', { events: 3 });
  assert.equal(rest, []);
  assert.is(open!.what, 'trace.open');
  assert.type(open!.monoUs, 'number');
  assert.equal(Object.keys(line!), ['t', 'pid', 'what', 'events']);
  assert.is(line!.what, 'watch.data');
  assert.is(line!.pid, open!.pid);
  assert.ok((line!.t as number) >= (open!.t as number));
});

test('a field named what, t or pid does not replace the line\'s own (the bench names a burst "put")', () => {
  const [open, line] = traced('bench.burst', { what: 'put', t: 1, pid: 2, ops: 4000 });
  assert.is(line!.what, 'bench.burst');
  assert.is(line!.pid, open!.pid);
  assert.ok((line!.t as number) > 1e12, `t ${line!.t}`);
  assert.is(line!.ops, 4000);
});

test.run();
