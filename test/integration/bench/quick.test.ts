// `weft bench --quick` once, as CI runs it, so the bench never rots: it must
// finish, leave no namespace behind, and write well-formed outputs. Nothing
// here is about speed: every figure only has to be a number (or a reason).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { handOnRegistry, leftNamespaces, runBench, type BenchRun } from './run-bench.js';
import { DATA_PATHS } from '../../../bench/data-paths.js';
import { scaleEtcdDataRoot } from '../../../bench/control-plane.js';

const FIGURES = ['tcp1Gbps', 'tcpNGbps', 'udpKpps', 'udpLossPct', 'udpLargeGbps', 'udpLargeLossPct', 'pingP50Ms', 'pingP99Ms'];

let out: string;
let run: BenchRun;
/** The bench lists every namespace it makes here (lab/netns.ts registerNetns); other runs' labs are not ours to judge. */
let registry: string;

test.before(async () => {
  out = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  registry = join(out, 'netns-registry');
  run = await runBench(['--quick', '--out', out], registry, 5 * 60_000);
});

test.after(() => {
  handOnRegistry(registry);
  rmSync(out, { recursive: true, force: true });
});

test('weft bench --quick exits 0, printed progress and wrote latest.json, latest.md, throughput.svg', () => {
  assert.is(run.code, 0, `exit ${run.code}\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`);
  for (const p of DATA_PATHS) assert.match(run.stdout, ` ${p.id}] `);
  assert.match(run.stdout, '[control plane]');
  for (const f of ['latest.json', 'latest.md', 'throughput.svg']) assert.ok(existsSync(join(out, f)), `${f} written`);
});

test('the JSON has every data path, each with numeric figures or a reason, and the references are measured', () => {
  const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
  assert.is(r.tool, 'weft bench');
  assert.is(r.quick, true);
  assert.type(r.machine.nproc, 'number');
  assert.type(r.machine.kernel, 'string');
  assert.equal(r.dataPaths.map((p: { id: string }) => p.id), DATA_PATHS.map((p) => p.id));
  for (const p of r.dataPaths) {
    if (p.status === 'ok') {
      assert.is(p.reps.length, r.settings.reps, `${p.id} reps`);
      for (const k of FIGURES) assert.ok(typeof p.median[k] === 'number' && Number.isFinite(p.median[k]), `${p.id} median.${k} = ${p.median[k]}`);
      for (const k of ['tcp1Gbps', 'tcpNGbps', 'udpKpps', 'udpLargeGbps']) {
        assert.type(p.ratioToVxlan[k], 'number', `${p.id} ratioToVxlan.${k}`);
        assert.type(p.ratioToUnderlay[k], 'number', `${p.id} ratioToUnderlay.${k}`);
      }
      if (p.id === 'underlay') assert.is(p.median.agentCpuSecondsPerGB, null, 'no agents on the underlay');
      else assert.type(p.median.agentCpuSecondsPerGB, 'number', `${p.id} agent CPU`);
      assert.type(p.median.machineCpuSecondsPerGB, 'number', `${p.id} machine CPU`);
    } else {
      assert.ok(['unavailable', 'failed'].includes(p.status), `${p.id} status ${p.status}`);
      assert.type(p.reason, 'string');
      assert.ok(p.reason.length > 0, `${p.id} has a reason`);
    }
  }
  // The references every ratio divides by must exist; the udp modes may be unavailable on a build without them.
  for (const id of ['underlay', 'vxlan']) {
    const p = r.dataPaths.find((x: { id: string }) => x.id === id);
    assert.is(p.status, 'ok', `${id}: ${p.reason}`);
  }
  const c = r.controlPlane;
  assert.is(c.status, 'ok', c.reason);
  assert.is(c.leases, 100);
  assert.is(c.entriesExpected, 300);
  assert.is(c.convergeSeconds.length, 3);
  for (const v of c.convergeSeconds) assert.type(v, 'number');
  for (const v of [...c.rssBeforeMiB, ...c.rssAfterMiB]) assert.ok(v > 0, `RSS ${v}`);
  // CPU seconds of the burst: each agent's user and system time, read from /proc.
  assert.is(c.burstCpu.agents.length, 3);
  for (const a of c.burstCpu.agents) assert.ok(a.user + a.system > 0 && a.system >= 0, `agent CPU ${JSON.stringify(a)}`);
  assert.ok(c.burstCpu.machineBusy > 0 && c.burstCpu.seconds > 0);
  // The same leases deleted at once, then put again: every host converged both times.
  for (const b of [c.removal, c.again]) {
    assert.is(b.convergeSeconds.length, 3);
    for (const v of b.convergeSeconds) assert.type(v, 'number');
    // Measured for every agent (NaN: its host never converged). /proc counts CPU time in 10 ms ticks,
    // and one agent's part of deleting 100 leases can be under one: 0 is a measurement here.
    assert.ok(b.cpu.agents.every((a: { user: number; system: number }) => Number.isFinite(a.user) && Number.isFinite(a.system) && a.user >= 0 && a.system >= 0), JSON.stringify(b.cpu));
    assert.ok(b.cpu.machineBusy > 0 && b.cpu.seconds > 0, JSON.stringify(b.cpu));
    assert.is(b.eventLoopMaxMs.length, 3);
  }
  assert.is(c.propagation.samples + c.propagation.missing, c.propagation.puts * 3);
  assert.type(c.propagation.p50Ms, 'number');
  // Where etcd kept its data: the tmpfs where /dev/shm is one with room, else the lab's directory.
  assert.is(c.etcdData, scaleEtcdDataRoot() ? 'tmpfs' : 'disk');
  // etcd's acknowledgement of each put, beside it.
  assert.ok(c.propagation.ackP50Ms > 0 && c.propagation.ackP99Ms >= c.propagation.ackP50Ms, JSON.stringify(c.propagation));
  // The time series of routes per host ends with every host holding all of them.
  assert.ok(c.series.length >= 2, `series of ${c.series.length}`);
  assert.equal(c.series.at(-1).routes, [100, 100, 100]);
  assert.equal(c.series.map((s: { t: number }) => s.t), [...c.series.map((s: { t: number }) => s.t)].sort((a, b) => a - b), 'in time order');
  const svg = readFileSync(join(out, 'control-plane.svg'), 'utf8');
  assert.is((svg.match(/<polyline /g) ?? []).length, 3, 'a line per host');
});

test('the markdown has a table row per data path and the control-plane rows', () => {
  const md = readFileSync(join(out, 'latest.md'), 'utf8');
  assert.match(md, /^\| data path \| TCP 1 stream \(Gbit\/s\) \|/m);
  for (const p of DATA_PATHS) assert.match(md, new RegExp(`^\\| ${p.label.replace(/[()]/g, '\\$&')} \\| \\S`, 'm'));
  assert.match(md, /^\| 100 remote leases put into etcd at once \|/m);
  assert.match(md, /^\| the 100 leases deleted at once: until no host holds any of their entries.* \| [0-9.]+ s \(h1 [0-9.]+ s, h2 [0-9.]+ s, h3 [0-9.]+ s\); weftd CPU /m);
  assert.match(md, /^\| the 100 leases put again at once, within the 10 s their claims are held for them: until every host holds all 300 entries again .* \| [0-9.]+ s \(h1 /m);
  assert.match(md, /^\| one new lease: put → route on each of 3 hosts.*; etcd acknowledging the put \(its commit, which comes before weftd hears of it; etcd's data on (tmpfs|disk)\): p50 [0-9.]+ ms, p99 [0-9.]+ ms \|$/m);
  assert.match(md, /Machine: \d+ CPUs/);
  assert.ok(run.stdout.includes(md.trim().split('\n')[0]!), 'the table is on stdout too');
});

test('the SVG is one well-formed <svg> document with a bar per measured throughput figure', () => {
  const svg = readFileSync(join(out, 'throughput.svg'), 'utf8');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>/);
  assert.match(svg.trim(), /<\/svg>$/);
  // Tags balance (every element is either self-closing or closed) and no raw '&' or '<' sits in text.
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (m[3]) continue;
    if (m[1]) assert.is(stack.pop(), m[2], `closing </${m[2]}>`);
    else stack.push(m[2]!);
  }
  assert.equal(stack, []);
  assert.not.match(svg.replace(/<[^>]*>/g, ''), /[<]|&(?!amp;|lt;|gt;|quot;)/);
  const ok = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')).dataPaths.filter((p: { status: string }) => p.status === 'ok').length;
  assert.is((svg.match(/<rect [^>]*><title>/g) ?? []).length, ok * 4 * 2, 'bars: ok paths × 4 figures × 2 panels');
});

test('every namespace the bench made is gone', async () => {
  const { made, left } = await leftNamespaces(registry);
  assert.ok(made >= 5 * 4, `the bench registered its namespaces (${made})`);
  assert.equal(left, []);
});

test.run();
