// Serial: one task at a time, in order; a long task lets queued work go first at yieldQueue().
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Serial } from '../../../lib/serial.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

test('tasks run one at a time, in order, whether they resolve or reject', async () => {
  const s = new Serial();
  const log: string[] = [];
  const a = s.run(async () => { log.push('a start'); await tick(); log.push('a end'); return 1; });
  const b = s.run(async () => { log.push('b'); throw new Error('b failed'); });
  const c = s.run(async () => { log.push('c'); return 3; });
  assert.is(await a, 1);
  await b.then(() => assert.unreachable('b resolved'), (e: Error) => assert.is(e.message, 'b failed'));
  assert.is(await c, 3);
  assert.equal(log, ['a start', 'a end', 'b', 'c']);
});

test('a task never starts inside run() itself', async () => {
  const s = new Serial();
  let started = false;
  const p = s.run(async () => { started = true; });
  assert.is(started, false);
  await p;
  assert.is(started, true);
});

test('yieldQueue lets the work queued so far run, then the task goes on ahead of later work', async () => {
  const s = new Serial();
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const long = s.run(async () => {
    log.push('long 1');
    await gate;
    await s.yieldQueue();
    log.push('long 2');
    await s.yieldQueue(); // 'later' waits by now: it goes first
    log.push('long 3');
    await s.yieldQueue(); // nothing waits: goes on at once
    log.push('long 4');
  });
  const put1 = s.run(async () => {
    log.push('put 1');
    void s.run(async () => { log.push('later'); }); // queued while long is suspended: after long
  });
  const put2 = s.run(async () => { log.push('put 2'); });
  await tick();
  assert.is(s.contended, true);
  release();
  await Promise.all([long, put1, put2]);
  await tick();
  assert.equal(log, ['long 1', 'put 1', 'put 2', 'long 2', 'later', 'long 3', 'long 4']);
});

test.run();
