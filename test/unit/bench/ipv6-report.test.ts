// weft bench --ipv6 on paper: the ratios each path's IPv6 figures get (to its own
// IPv4 figures, to kernel VXLAN's and the underlay's IPv6 figures of the same run),
// the markdown and SVG that show them, a path without IPv6 shown with its reason,
// and the flag: in --help, in the README, and not a partial flag by itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatHelp, parseFlags } from '../../../lib/flags.js';
import { benchCommand, defaultOut, DEFAULT_OUT, PARTIAL_OUT } from '../../../bench/bench-command.js';
import { addRatios, toMarkdown, toSvg, type BenchReport, type BenchSettings, type Figures, type Ipv6Report, type PathReport } from '../../../bench/report.js';

const REFS = { vxlan: 'vxlan', underlay: 'underlay' };
const settings = (ipv6: boolean): BenchSettings => ({
  reps: 1, ipv6, seconds: 1, streams: 4, udpLength: 64, udpBitrate: '0', udpLargeLength: 1400, pings: 100, pingIntervalMs: 2, leases: 100, puts: 10, scaleHosts: 3,
});

const v4 = (tcp1: number, tcpN: number, p50: number, cpu: number): Figures =>
  ({ tcp1Gbps: tcp1, tcpNGbps: tcpN, udpKpps: 100, udpLossPct: 1, udpLargeGbps: tcp1 / 2, udpLargeLossPct: 2, tcp1Retransmits: 0, tcpNRetransmits: 0, pingP50Ms: p50, pingP99Ms: 2 * p50, agentCpuSecondsPerGB: null, machineCpuSecondsPerGB: cpu });
const v6ok = (tcp1: number, tcpN: number, p50: number, cpu: number): Ipv6Report => ({
  status: 'ok', endpoints: 'a -> b', reps: [], ratioToIpv4: {}, ratioToVxlan: {}, ratioToUnderlay: {},
  median: { tcp1Gbps: tcp1, tcpNGbps: tcpN, tcp1Retransmits: 3, tcpNRetransmits: 4, pingP50Ms: p50, pingP99Ms: 2 * p50, agentCpuSecondsPerGB: 0.5, machineCpuSecondsPerGB: cpu },
});
const path = (id: string, median: Figures, ipv6?: Ipv6Report): PathReport =>
  ({ id, label: `label ${id}`, status: 'ok', reps: [], median, ratioToVxlan: {}, ratioToUnderlay: {}, ...(ipv6 ? { ipv6 } : {}) });

function paths(): PathReport[] {
  return [
    path('underlay', v4(20, 40, 0.01, 1), v6ok(10, 20, 0.02, 2)),
    path('vxlan', v4(10, 20, 0.02, 2), v6ok(8, 16, 0.04, 2.5)),
    path('udp-native', v4(4, 8, 0.2, 4), v6ok(2, 4, 0.3, 8)),
    path('udp-dgram', v4(1, 1, 0.3, 40), { status: 'unavailable', reason: 'weftd wrote no FLANNEL_IPV6_SUBNET | no IPv6', reps: [], median: {}, ratioToIpv4: {}, ratioToVxlan: {}, ratioToUnderlay: {} }),
    { id: 'wireguard-kernel', label: 'WireGuard, kernel', status: 'unavailable', reason: 'no module', reps: [], median: {}, ratioToVxlan: {}, ratioToUnderlay: {},
      ipv6: { status: 'unavailable', reason: 'the path unavailable: no module', reps: [], median: {}, ratioToIpv4: {}, ratioToVxlan: {}, ratioToUnderlay: {} } },
  ];
}

function report(ps: PathReport[], ipv6 = true): BenchReport {
  return {
    tool: 'weft bench', version: '0', command: 'weft bench --ipv6', quick: false, startedAt: '2026-11-28T00:00:00Z', durationSeconds: 1,
    machine: { nproc: 2, cpuModel: 'x', kernel: '6', memoryGiB: 1, node: 'v20', iperf3: 'iperf 3' }, loadAverage: { start: 0, end: 0 },
    settings: settings(ipv6), dataPaths: ps, controlPlane: { status: 'skipped', reason: '--no-scale' },
  };
}

const close = (a: number | null | undefined, b: number, what: string) => assert.ok(typeof a === 'number' && Math.abs(a - b) < 1e-9, `${what}: ${a} != ${b}`);

test('IPv6 figures as ratios to the same path\'s IPv4, and to kernel VXLAN and the underlay over IPv6', () => {
  const ps = paths();
  addRatios(ps, settings(true), REFS);
  const u = ps.find((p) => p.id === 'udp-native')!;
  close(u.ipv6!.ratioToIpv4.tcp1Gbps, 0.5, 'tcp1 v6/v4');
  close(u.ipv6!.ratioToIpv4.tcpNGbps, 0.5, 'tcpN v6/v4');
  close(u.ipv6!.ratioToIpv4.pingP50Ms, 1.5, 'p50 v6/v4');
  close(u.ipv6!.ratioToIpv4.machineCpuSecondsPerGB, 2, 'machine CPU v6/v4');
  close(u.ipv6!.ratioToVxlan.tcp1Gbps, 2 / 8, 'tcp1 / vxlan v6');
  close(u.ipv6!.ratioToUnderlay.tcpNGbps, 4 / 20, 'tcpN / underlay v6');
  // The IPv4 ratios are IPv4 by IPv4, untouched by the IPv6 figures.
  close(u.ratioToVxlan.tcp1Gbps, 0.4, 'tcp1 v4 / vxlan v4');
  close(u.ratioToUnderlay.tcp1Gbps, 0.2, 'tcp1 v4 / underlay v4');
  // No ratio for the figures that have none (agent CPU, retransmits).
  assert.is(u.ipv6!.ratioToIpv4.agentCpuSecondsPerGB, undefined);
  assert.is(u.ipv6!.ratioToIpv4.tcp1Retransmits, undefined);
  // References divide into 1.
  close(ps.find((p) => p.id === 'vxlan')!.ipv6!.ratioToVxlan.tcp1Gbps, 1, 'vxlan / vxlan');
  // A path without IPv6 figures gets no IPv6 ratios.
  assert.equal(ps.find((p) => p.id === 'udp-dgram')!.ipv6!.ratioToIpv4, {});
});

test('a reference without IPv6 figures gives null ratios, never a ratio to the IPv4 reference', () => {
  const ps = paths();
  ps[1]!.ipv6 = { status: 'failed', reason: 'no ping reply', reps: [], median: {}, ratioToIpv4: {}, ratioToVxlan: {}, ratioToUnderlay: {} };
  addRatios(ps, settings(true), REFS);
  const u = ps.find((p) => p.id === 'udp-native')!;
  assert.is(u.ipv6!.ratioToVxlan.tcp1Gbps, null);
  close(u.ipv6!.ratioToUnderlay.tcp1Gbps, 0.2, 'tcp1 / underlay v6');
  close(u.ipv6!.ratioToIpv4.tcp1Gbps, 0.5, 'tcp1 v6/v4');
});

test('markdown: an IPv6 table and its two ratio tables, a row per path, the reason where IPv6 is missing', () => {
  const ps = paths();
  addRatios(ps, settings(true), REFS);
  const md = toMarkdown(report(ps));
  assert.match(md, /^### Data paths, IPv4 \(median of 1 repetition\)$/m);
  assert.match(md, /^### Data paths, IPv6 \(median of 1 repetition\)$/m);
  const v6 = md.slice(md.indexOf('### Data paths, IPv6'), md.indexOf('### Control plane'));
  assert.match(v6, /^\| data path \| TCP 1 stream \(Gbit\/s\) \| TCP 4 streams \(Gbit\/s\) \|/m);
  assert.not.match(v6.split('\n').find((l) => l.startsWith('| data path |'))!, /UDP/, 'no UDP over IPv6');
  assert.match(v6, /^\| label udp-native \| 2\.00 \| 4\.00 \| 3 \| 4 \| 0\.300 \| 0\.600 \| 0\.50 \| 8\.00 \|$/m);
  // × IPv4 of the same path: TCP 1, TCP 4, ping p50, ping p99, machine CPU.
  assert.match(v6, /^\| label udp-native \| 0\.50× \| 0\.50× \| 1\.50× \| 1\.50× \| 2\.00× \|$/m);
  assert.match(v6, /^\| label udp-native \| 0\.25× \/ 0\.20× \| 0\.25× \/ 0\.20× \|/m);
  // Every table has a row for each path; a path without IPv6 says why (pipes escaped).
  for (const p of ps) assert.is(v6.split('\n').filter((l) => l.startsWith(`| ${p.label} |`)).length, 3, p.id);
  assert.match(v6, /^\| label udp-dgram \| unavailable: weftd wrote no FLANNEL_IPV6_SUBNET \\\| no IPv6 \| – \|/m);
  assert.match(v6, /^\| WireGuard, kernel \| unavailable: the path unavailable: no module \|/m);
});

test('markdown and SVG of a run without --ipv6 have no IPv6 part', () => {
  const ps = paths().map(({ ipv6: _, ...p }) => p as PathReport);
  addRatios(ps, settings(false), REFS);
  const md = toMarkdown(report(ps, false));
  assert.match(md, /^### Data paths \(median of 1 repetition\)$/m);
  assert.not.match(md, /IPv6/);
  assert.not.match(toSvg(report(ps, false)), /IPv6/);
});

test('SVG: a third panel with each path\'s IPv6 TCP throughput as × its IPv4', () => {
  const ps = paths();
  addRatios(ps, settings(true), REFS);
  const svg = toSvg(report(ps));
  assert.match(svg, />IPv6 × IPv4 of the same path</);
  const ok4 = ps.filter((p) => p.status === 'ok').length;
  const ok6 = ps.filter((p) => p.ipv6?.status === 'ok').length;
  assert.is((svg.match(/<rect [^>]*><title>/g) ?? []).length, ok4 * 4 * 2 + ok6 * 2);
  assert.match(svg, /<title>label udp-native, TCP 1 stream: 0\.500× \(IPv6 × IPv4 of the same path\)<\/title>/);
  // Taller by one panel than the IPv4-only chart.
  const height = (s: string) => Number(/height="(\d+)"/.exec(s)![1]);
  assert.ok(height(svg) > height(toSvg(report(ps, false))));
});

test('--ipv6: in --help and in the README; alone a full run, with a partial flag a partial one', () => {
  const help = formatHelp(benchCommand.flags);
  assert.match(help, /--ipv6\s+dual-stack labs/);
  assert.match(help, /\[--ipv6\]/);
  const readme = readFileSync(fileURLToPath(new URL('../../../../README.md', import.meta.url)), 'utf8');
  const bench = readme.slice(readme.indexOf('## Benchmarks'), readme.indexOf('## Layout'));
  assert.match(bench, /`weft bench --ipv6`/);
  const out = (...argv: string[]) => defaultOut(parseFlags(benchCommand.flags, argv));
  assert.is(out('--ipv6'), DEFAULT_OUT);
  for (const argv of [['--ipv6', '--quick'], ['--ipv6', '--paths', 'vxlan'], ['--ipv6', '--no-scale'], ['--ipv6', '--reps', '1']]) assert.is(out(...argv), PARTIAL_OUT, argv.join(' '));
  assert.is(parseFlags(benchCommand.flags, ['--ipv6']).values.ipv6, true);
  assert.is(parseFlags(benchCommand.flags, []).values.ipv6, undefined);
});

test.run();
