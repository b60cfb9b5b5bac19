// The large-datagram UDP figure (iperf3 -u -l 1400 -b 0) on paper: the payload length a
// path's MTU allows, the figure's ratios to kernel VXLAN and the underlay of the same run,
// its columns in the markdown tables, its bars in the SVG, and no UDP over IPv6.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { largeUdpLength } from '../../../bench/measure.js';
import { addRatios, ipv6Metrics, metrics, toMarkdown, toSvg, type BenchReport, type BenchSettings, type Figures, type PathReport } from '../../../bench/report.js';

const REFS = { vxlan: 'vxlan', underlay: 'underlay' };
const settings: BenchSettings = {
  reps: 3, ipv6: false, seconds: 5, streams: 4, udpLength: 64, udpBitrate: '0', udpLargeLength: 1400, pings: 1000, pingIntervalMs: 2, leases: 100, puts: 10, scaleHosts: 3,
};

const fig = (tcp1: number, large: number, loss: number): Figures => ({
  tcp1Gbps: tcp1, tcpNGbps: tcp1, udpKpps: 50, udpLossPct: 1, udpLargeGbps: large, udpLargeLossPct: loss,
  tcp1Retransmits: 0, tcpNRetransmits: 0, pingP50Ms: 0.1, pingP99Ms: 0.2, agentCpuSecondsPerGB: null, machineCpuSecondsPerGB: 1,
});
const path = (id: string, median: Figures, extra: Partial<PathReport> = {}): PathReport =>
  ({ id, label: `label ${id}`, status: 'ok', reps: [], median, ratioToVxlan: {}, ratioToUnderlay: {}, ...extra });

function paths(): PathReport[] {
  return [
    path('underlay', fig(20, 8, 0.5)),
    path('vxlan', fig(10, 4, 2)),
    path('udp-native', fig(5, 3, 12.5)),
    path('wireguard-userspace', fig(0.2, 0.5, 70), { udpLargeLength: 1392 }),
    { id: 'wireguard-kernel', label: 'WireGuard, kernel', status: 'unavailable', reason: 'no module', reps: [], median: {}, ratioToVxlan: {}, ratioToUnderlay: {} },
  ];
}

const report = (ps: PathReport[]): BenchReport => ({
  tool: 'weft bench', version: '0', command: 'weft bench', quick: false, startedAt: '2026-11-28T00:00:00Z', durationSeconds: 1,
  machine: { nproc: 2, cpuModel: 'x', kernel: '6', memoryGiB: 1, node: 'v20', iperf3: 'iperf 3' }, loadAverage: { start: 0, end: 0 },
  settings, dataPaths: ps, controlPlane: { status: 'skipped', reason: '--no-scale' },
});

const close = (a: number | null | undefined, b: number, what: string) => assert.ok(typeof a === 'number' && Math.abs(a - b) < 1e-9, `${what}: ${a} != ${b}`);

test('the large datagram fits the path\'s MTU unfragmented: 1400 B on VXLAN (1450) and udp (1472), MTU - 28 below that', () => {
  assert.is(largeUdpLength(1400, 1450), 1400);
  assert.is(largeUdpLength(1400, 1472), 1400);
  assert.is(largeUdpLength(1400, 1428), 1400);
  assert.is(largeUdpLength(1400, 1420), 1392);
  assert.is(largeUdpLength(1400, undefined), 1400, 'the underlay: its 1500');
});

test('large-datagram Gbit/s has ratios to kernel VXLAN and the underlay; its loss has none', () => {
  const ps = paths();
  addRatios(ps, settings, REFS);
  const u = ps.find((p) => p.id === 'udp-native')!;
  close(u.ratioToVxlan.udpLargeGbps, 0.75, 'udp-native / vxlan');
  close(u.ratioToUnderlay.udpLargeGbps, 3 / 8, 'udp-native / underlay');
  close(ps.find((p) => p.id === 'vxlan')!.ratioToVxlan.udpLargeGbps, 1, 'vxlan / vxlan');
  assert.is(u.ratioToVxlan.udpLargeLossPct, undefined);
  assert.equal(ps.find((p) => p.id === 'wireguard-kernel')!.ratioToVxlan, {});
  const m = metrics(settings).find((x) => x.key === 'udpLargeGbps')!;
  assert.equal([m.label, m.unit, m.ratio, m.throughput], ['UDP 1400 B delivered', 'Gbit/s', true, true]);
});

test('markdown: the figure and its loss after the small-packet UDP columns, its ratio column, the size and the MTU it fits stated', () => {
  const ps = paths();
  addRatios(ps, settings, REFS);
  const md = toMarkdown(report(ps));
  assert.match(md, /^\| data path \| TCP 1 stream \(Gbit\/s\) \| TCP 4 streams \(Gbit\/s\) \| UDP 64 B delivered \(kpps\) \| UDP 64 B loss \(%\) \| UDP 1400 B delivered \(Gbit\/s\) \| UDP 1400 B loss \(%\) \|/m);
  assert.match(md, /^\| label udp-native \| 5\.00 \| 5\.00 \| 50 \| 1\.0 \| 3\.00 \| 12\.5 \|/m);
  assert.match(md, /^\| data path \| TCP 1 stream \| TCP 4 streams \| UDP 64 B delivered \| UDP 1400 B delivered \| ping p50 \|/m);
  assert.match(md, /^\| label udp-native \| 0\.50× \/ 0\.25× \| 0\.50× \/ 0\.25× \| 1\.00× \/ 1\.00× \| 0\.75× \/ 0\.38× \|/m);
  assert.match(md, /UDP -l 64 and -l 1400 -b 0 \(1400 B: the inner datagram with its IPv4 and UDP headers fits the overlays' MTU, VXLAN's 1450 and udp's 1472, unfragmented/);
  // A path whose MTU needs a smaller datagram says which it got.
  assert.match(md, /; label wireguard-userspace: -l 1392 \(MTU 1420\)\)/);
  // An unavailable path keeps one cell per column.
  const row = md.split('\n').find((l) => l.startsWith('| WireGuard, kernel | unavailable'))!;
  assert.is(row.split(' | ').length, metrics(settings).length + 1);
});

test('SVG: a group of bars for the large-datagram figure in both panels', () => {
  const ps = paths();
  addRatios(ps, settings, REFS);
  const svg = toSvg(report(ps));
  assert.is((svg.match(/>UDP 1400 B delivered</g) ?? []).length, 2, 'a group label per panel');
  assert.match(svg, /<title>label udp-native, UDP 1400 B delivered: 0\.750× \(× kernel VXLAN\)<\/title>/);
  assert.match(svg, /<title>label udp-native, UDP 1400 B delivered: 0\.375× \(× underlay \(host to host\)\)<\/title>/);
});

test('no UDP figure over IPv6', () => {
  assert.not.ok(ipv6Metrics(settings).some((m) => m.key.startsWith('udp')));
});

test.run();
