// `weft bench --ipv6` once, bounded (--quick --seconds 1 --reps 1, three paths,
// no scale run): dual-stack labs, every path measured over IPv6 beside IPv4. It
// must exit 0, leave no namespace behind, and write IPv6 figures > 0 for each path
// with their ratios (to the same path's IPv4, to kernel VXLAN and the underlay over
// IPv6) consistent with the medians. Nothing here is about speed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { handOnRegistry, leftNamespaces, runBench, type BenchRun } from './run-bench.js';

const PATHS = ['underlay', 'vxlan', 'udp-native'];

let out: string;
let run: BenchRun;
/** The bench lists every namespace it makes here (lab/netns.ts registerNetns). */
let registry: string;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let r: any;

test.before(async () => {
  out = mkdtempSync(join(tmpdir(), 'weft-bench-ipv6-'));
  registry = join(out, 'netns-registry');
  run = await runBench(['--ipv6', '--quick', '--seconds', '1', '--reps', '1', '--paths', PATHS.join(','), '--no-scale', '--out', out], registry, 4 * 60_000);
  if (existsSync(join(out, 'latest.json'))) r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
});

test.after(() => {
  handOnRegistry(registry);
  rmSync(out, { recursive: true, force: true });
});

test('weft bench --ipv6 exits 0 and measured each path over IPv6 in dual-stack labs', () => {
  assert.is(run.code, 0, `exit ${run.code}\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`);
  assert.match(run.stdout, '(IPv4 and IPv6, dual-stack labs)');
  for (const id of PATHS) assert.match(run.stdout, new RegExp(`\\[\\d/3 ${id}\\] rep 1/1 IPv6: TCP 4 streams: `));
  assert.is(r.settings.ipv6, true);
  assert.equal(r.dataPaths.map((p: { id: string }) => p.id), PATHS);
});

test('every path has IPv4 and IPv6 figures > 0, to IPv6 addresses of the lab', () => {
  for (const p of r.dataPaths) {
    assert.is(p.status, 'ok', `${p.id}: ${p.reason}`);
    const v6 = p.ipv6;
    assert.is(v6.status, 'ok', `${p.id} IPv6: ${v6.reason}`);
    assert.is(v6.reps.length, 1);
    for (const k of ['tcp1Gbps', 'tcpNGbps', 'pingP50Ms', 'pingP99Ms', 'machineCpuSecondsPerGB']) {
      assert.ok(v6.median[k] > 0, `${p.id} ipv6.median.${k} = ${v6.median[k]}`);
      assert.ok(p.median[k] > 0, `${p.id} median.${k} = ${p.median[k]}`);
    }
    assert.ok(v6.reps[0].tcpBytes > 0, `${p.id} IPv6 bytes`);
    assert.not.ok('udpKpps' in v6.median || 'udpLargeGbps' in v6.median, 'no UDP over IPv6');
    if (p.id === 'underlay') {
      assert.match(v6.endpoints, /2001:db8::11 -> h2 2001:db8::12$/);
      assert.is(v6.median.agentCpuSecondsPerGB, null, 'no agents on the underlay');
    } else {
      assert.match(v6.endpoints, /^h1c1 fd00:10:244:[0-9a-f:]+ -> h2c1 fd00:10:244:[0-9a-f:]+$/);
      assert.type(v6.median.agentCpuSecondsPerGB, 'number');
    }
  }
});

test('the IPv6 ratios: to the same path\'s IPv4, to kernel VXLAN and the underlay over IPv6', () => {
  const by = (id: string) => r.dataPaths.find((p: { id: string }) => p.id === id);
  const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  for (const p of r.dataPaths) {
    for (const k of ['tcp1Gbps', 'tcpNGbps', 'pingP50Ms', 'machineCpuSecondsPerGB']) {
      near(p.ipv6.ratioToIpv4[k], p.ipv6.median[k] / p.median[k], `${p.id} ${k} IPv6/IPv4`);
      near(p.ipv6.ratioToVxlan[k], p.ipv6.median[k] / by('vxlan').ipv6.median[k], `${p.id} ${k} / VXLAN IPv6`);
      near(p.ipv6.ratioToUnderlay[k], p.ipv6.median[k] / by('underlay').ipv6.median[k], `${p.id} ${k} / underlay IPv6`);
    }
    assert.is(p.ipv6.ratioToIpv4.agentCpuSecondsPerGB, undefined, 'agent CPU has no ratio');
  }
  assert.is(by('vxlan').ipv6.ratioToVxlan.tcp1Gbps, 1);
  assert.is(by('underlay').ipv6.ratioToUnderlay.tcpNGbps, 1);
});

test('latest.md has the IPv6 tables with a row per path; throughput.svg the IPv6 panel', () => {
  const md = readFileSync(join(out, 'latest.md'), 'utf8');
  const v6 = md.slice(md.indexOf('### Data paths, IPv6'));
  assert.ok(md.includes('### Data paths, IPv6'), md);
  for (const p of r.dataPaths) assert.is(v6.split('\n').filter((l) => l.startsWith(`| ${p.label} | `)).length, 3, `${p.id} rows`);
  assert.match(v6, /^\| underlay \(host to host\) \| \d+\.\d\d× \| \d+\.\d\d× \|/m);
  const svg = readFileSync(join(out, 'throughput.svg'), 'utf8');
  assert.match(svg, />IPv6 × IPv4 of the same path</);
  assert.is((svg.match(/<rect [^>]*><title>/g) ?? []).length, 3 * 4 * 2 + 3 * 2, 'bars: 3 paths x 4 figures x 2 panels + 3 paths x 2 IPv6 figures');
});

test('every namespace the bench made is gone', async () => {
  const { made, left } = await leftNamespaces(registry);
  assert.ok(made >= 3 * 3, `the bench registered its namespaces (${made})`);
  assert.equal(left, []);
});

test.run();
