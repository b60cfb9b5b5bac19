// The machine speed probe beside a bench run's results: what it measures, how it
// reads in the report's Machine line, and that a report of an older run (no probe)
// still renders.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toMarkdown, type BenchReport, type BenchSettings } from '../../../bench/report.js';
import { formatSpeedProbe, speedProbe } from '../../../bench/speed-probe.js';

const settings: BenchSettings = {
  reps: 1, ipv6: false, seconds: 1, streams: 4, udpLength: 64, udpBitrate: '0', udpLargeLength: 1400, pings: 100, pingIntervalMs: 2, leases: 100, puts: 10, scaleHosts: 3,
};
const report = (extra: Partial<BenchReport> = {}): BenchReport => ({
  tool: 'weft bench', version: '0', command: 'weft bench', quick: false, startedAt: '2026-11-29T00:00:00Z', durationSeconds: 1,
  machine: { nproc: 2, cpuModel: 'x', kernel: '6', memoryGiB: 1, node: 'v20', iperf3: 'iperf 3' }, loadAverage: { start: 0, end: 0 },
  settings, dataPaths: [], controlPlane: { status: 'skipped', reason: '--no-scale' }, ...extra,
});

test('the probe times both pieces of work: finite, positive, and more work takes longer', () => {
  const small = speedProbe(1, 1 << 20, 1 << 20);
  for (const v of [small.sha256Ms, small.copyMs]) assert.ok(Number.isFinite(v) && v > 0, `${v}`);
  // 64 times the hashing: longer even on a noisy machine (best of 3 against a single small run).
  const big = speedProbe(3, 64 << 20, 1 << 20);
  assert.ok(big.sha256Ms > small.sha256Ms, `${big.sha256Ms} ms for 64 MiB, ${small.sha256Ms} ms for 1 MiB`);
});

test('a bad number of tries is an error naming it', () => {
  assert.throws(() => speedProbe(0), (e: Error) => e instanceof RangeError && /not 0/.test(e.message));
  assert.throws(() => speedProbe(1.5), (e: Error) => /not 1\.5/.test(e.message));
});

test('the Machine line carries the probe at the start and at the end; without one (an older run) it reads as before', () => {
  const probe = { sha256Ms: 38.4, copyMs: 21.2 };
  assert.is(formatSpeedProbe(probe), 'SHA-256 of 64 MiB 38 ms, copying 128 MiB 21 ms');
  const md = toMarkdown(report({ speedProbe: { start: probe, end: { sha256Ms: 77, copyMs: 40 } } }));
  const line = md.split('\n').find((l) => l.startsWith('Machine:'))!;
  assert.match(line, 'Speed probe (best of 3; compare runs only where it is close): SHA-256 of 64 MiB 38 ms, copying 128 MiB 21 ms at the start, SHA-256 of 64 MiB 77 ms, copying 128 MiB 40 ms at the end. Reproduce:');
  const old = toMarkdown(report()).split('\n').find((l) => l.startsWith('Machine:'))!;
  assert.not.match(old, 'Speed probe');
  assert.match(old, 'at the end. Reproduce: `weft bench`');
});

test.run();
