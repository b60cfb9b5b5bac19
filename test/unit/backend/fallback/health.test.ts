// The fallback's rule, on scripted probe results: down after N lost in a row,
// vxlan -> udp only when udp answers, back only after backAfterMs of vxlan
// answers (or at once when udp is down too), nothing moves while both fail,
// and a flaky VXLAN (losses, but never N in a row) never moves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decide, PathHealth, type ProbeTuning } from '../../../../backend/fallback/health.js';
import type { ProbePath } from '../../../../backend/fallback/packet.js';

const T: ProbeTuning = { intervalMs: 300, jitter: 0, timeoutMs: 1000, downAfter: 5, backAfterMs: 10_000 };

/** A peer's two paths fed one probe per path every 300 ms; `ok(path, i)` says whether probe i is answered. */
function run(from: ProbePath, steps: number, ok: (path: ProbePath, i: number) => boolean, t0 = 1_000_000) {
  const h = { vxlan: new PathHealth(T.downAfter), udp: new PathHealth(T.downAfter) };
  let cur = from;
  const moves: Array<{ i: number; to: ProbePath; reason?: string }> = [];
  let last = decide(cur, h, t0, T);
  for (let i = 0; i < steps; i++) {
    const now = t0 + i * T.intervalMs;
    for (const p of ['vxlan', 'udp'] as const) {
      h[p].sent++;
      if (ok(p, i)) h[p].answer(now, now + 1, 0.3);
      else h[p].loss(now, now + T.timeoutMs);
    }
    last = decide(cur, h, now, T);
    if (last.path !== cur) moves.push({ i, to: last.path, ...(last.reason ? { reason: last.reason } : {}) });
    cur = last.path;
  }
  return { moves, last, h };
}

test('healthy VXLAN: no move, no reason', () => {
  const r = run('vxlan', 100, () => true);
  assert.equal(r.moves, []);
  assert.equal(r.last, { path: 'vxlan' });
  assert.is(r.h.vxlan.state, 'up');
});

test('VXLAN lost from probe 10 on, udp fine: udp at the 5th loss, with the time the losses began', () => {
  const r = run('vxlan', 40, (p, i) => p === 'udp' || i < 10);
  assert.is(r.moves.length, 1);
  assert.is(r.moves[0]!.i, 14);
  assert.is(r.moves[0]!.to, 'udp');
  assert.match(r.moves[0]!.reason!, /^vxlan probes failing since \d\d:\d\d:\d\d$/);
  assert.is(r.h.vxlan.lost, 30);
});

test('VXLAN back after 10 s of answers, not before; no flapping while it is flaky', () => {
  // lost 10..29, then answered except one loss at 40 (restarts the 10 s)
  const r = run('vxlan', 200, (p, i) => p === 'udp' || i < 10 || (i >= 30 && i !== 40));
  assert.equal(r.moves.map((m) => [m.i, m.to]), [[14, 'udp'], [41 + 34, 'vxlan']]);
  const mid = run('vxlan', 60, (p, i) => p === 'udp' || i < 10 || i >= 30);
  assert.is(mid.last.path, 'udp');
  assert.match(mid.last.reason!, /^vxlan answering again since \d\d:\d\d:\d\d \(back after 10 s of answers\)$/);
});

test('a flaky VXLAN (every 4th probe lost) never moves', () => {
  assert.equal(run('vxlan', 300, (p, i) => p === 'udp' || i % 4 !== 0).moves, []);
});

test('both paths failing: no move, reported unreachable on both; udp answering again moves it', () => {
  const both = run('vxlan', 60, (_p, i) => i < 10);
  assert.equal(both.moves, []);
  assert.match(both.last.reason!, /^unreachable: vxlan probes failing since \d\d:\d\d:\d\d, udp probes failing since \d\d:\d\d:\d\d$/);
  assert.equal([both.h.vxlan.state, both.h.udp.state], ['down', 'down']);
  const udpBack = run('vxlan', 60, (p, i) => i < 10 || (p === 'udp' && i >= 40));
  assert.equal(udpBack.moves.map((m) => [m.i, m.to]), [[40, 'udp']]);
});

test('on udp, both failing: stays on udp; VXLAN answering first takes it back at once', () => {
  const stay = run('udp', 60, () => false);
  assert.equal(stay.moves, []);
  assert.match(stay.last.reason!, /^unreachable:/);
  const back = run('udp', 60, (p, i) => p === 'vxlan' && i >= 20);
  assert.equal(back.moves.map((m) => [m.i, m.to]), [[20, 'vxlan']]);
});

test('udp never answered: VXLAN failing keeps the peer on vxlan and says so', () => {
  const r = run('vxlan', 4, () => false);
  assert.equal(r.moves, []);
  const r2 = run('vxlan', 40, (p, i) => p === 'udp' && i < 2);
  assert.equal(r2.moves, [], 'udp answered once, then failed before VXLAN was down');
});

test.run();
