// The bench's outputs from one BenchReport: a markdown summary (stdout and
// latest.md), the JSON itself (latest.json) and a hand-written SVG chart of the
// throughput ratios (throughput.svg), and the ratios and medians they show
// (addRatios, medianFigures). With --ipv6 each path also has its IPv6 figures:
// ping and TCP, as ratios to the same path's IPv4 figures of the same run. No dependencies.
import type { BurstSummary, ControlPlaneResult } from './control-plane.js';
import { type MeasureSettings, type RepFigures, type TcpPingFigures, UDP_LARGE_WINDOW } from './measure.js';
import { POLL_INTERVAL_MS } from './responsiveness.js';
import { formatSpeedProbe, type SpeedProbe } from './speed-probe.js';
import { median, ratio } from './stats.js';

export type MetricKey = Exclude<keyof RepFigures, 'receiverTcpDrops' | 'agentCpuSeconds' | 'machineCpuSeconds' | 'tcpBytes' | 'pingLossPct' | 'udpLargeRcvbufErrors'>;

export interface Metric {
  key: MetricKey;
  label: string;
  unit: string;
  digits: number;
  /** Whether a ratio of this figure means something (a ratio of loss percentages does not). */
  ratio: boolean;
  /** Drawn in the chart (throughput figures). */
  throughput: boolean;
}

/** What the metric labels are made of. */
export type MetricSettings = Pick<MeasureSettings, 'streams' | 'udpLength' | 'udpLargeLength'>;

export function metrics(s: MetricSettings): Metric[] {
  return [
    { key: 'tcp1Gbps', label: 'TCP 1 stream', unit: 'Gbit/s', digits: 2, ratio: true, throughput: true },
    { key: 'tcpNGbps', label: `TCP ${s.streams} streams`, unit: 'Gbit/s', digits: 2, ratio: true, throughput: true },
    { key: 'udpKpps', label: `UDP ${s.udpLength} B delivered`, unit: 'kpps', digits: 0, ratio: true, throughput: true },
    { key: 'udpLossPct', label: `UDP ${s.udpLength} B loss`, unit: '%', digits: 1, ratio: false, throughput: false },
    // Large datagrams: what the path carries in bytes when the sender is not bound by packets per second.
    { key: 'udpLargeGbps', label: `UDP ${s.udpLargeLength} B delivered`, unit: 'Gbit/s', digits: 2, ratio: true, throughput: true },
    { key: 'udpLargeLossPct', label: `UDP ${s.udpLargeLength} B loss`, unit: '%', digits: 1, ratio: false, throughput: false },
    // No ratio either: TCP's retransmits (iperf3's sender count) say whether a path drops or reorders (e.g. a flow split over workers).
    { key: 'tcp1Retransmits', label: 'TCP 1 stream retransmits', unit: 'count', digits: 0, ratio: false, throughput: false },
    { key: 'tcpNRetransmits', label: `TCP ${s.streams} streams retransmits`, unit: 'count', digits: 0, ratio: false, throughput: false },
    { key: 'pingP50Ms', label: 'ping p50', unit: 'ms', digits: 3, ratio: true, throughput: false },
    { key: 'pingP99Ms', label: 'ping p99', unit: 'ms', digits: 3, ratio: true, throughput: false },
    // No ratio: the kernel paths' agents are idle, so their figure is ~0 (/proc counts in 10 ms ticks) and a ratio to it is noise.
    { key: 'agentCpuSecondsPerGB', label: 'agent CPU', unit: 's/GB', digits: 2, ratio: false, throughput: false },
    // All cores, softirq included: the kernel's share of VXLAN shows here, so paths compare on efficiency (lower is better).
    { key: 'machineCpuSecondsPerGB', label: 'machine CPU', unit: 's/GB', digits: 2, ratio: true, throughput: false },
  ];
}

const UDP_KEYS: readonly MetricKey[] = ['udpKpps', 'udpLossPct', 'udpLargeGbps', 'udpLargeLossPct'];

/** What the bench measures over IPv6: everything but UDP (ping and TCP, with their CPU figures). */
export function ipv6Metrics(s: MetricSettings): Metric[] {
  return metrics(s).filter((m) => !UDP_KEYS.includes(m.key));
}

export type Figures = Partial<Record<MetricKey, number | null>>;

/** A path's IPv6 figures in a dual-stack lab, measured in the same lab right after its IPv4 figures in each repetition. */
export interface Ipv6Report {
  status: 'ok' | 'unavailable' | 'failed';
  /** Why there are no (or fewer) IPv6 figures, e.g. the path carries no IPv6. */
  reason?: string;
  endpoints?: string;
  reps: TcpPingFigures[];
  median: Figures;
  /** IPv6 / IPv4 of the same path in the same run. */
  ratioToIpv4: Figures;
  /** IPv6 / kernel VXLAN's IPv6 figure, and / the underlay's IPv6 figure. */
  ratioToVxlan: Figures;
  ratioToUnderlay: Figures;
}

export interface PathReport {
  id: string;
  label: string;
  status: 'ok' | 'unavailable' | 'failed';
  /** Why there are no figures (status unavailable or failed). */
  reason?: string;
  endpoints?: string;
  /** The large-datagram UDP payload length where the path's MTU needs less than settings.udpLargeLength. */
  udpLargeLength?: number;
  reps: RepFigures[];
  median: Figures;
  ratioToVxlan: Figures;
  ratioToUnderlay: Figures;
  /** weft bench --ipv6 only. */
  ipv6?: Ipv6Report;
}

export interface Machine {
  nproc: number;
  cpuModel: string;
  kernel: string;
  memoryGiB: number;
  node: string;
  iperf3: string;
}

/** What one data path's measurement uses, plus the run's repetitions and the control-plane sizes. */
export interface BenchSettings extends MeasureSettings {
  reps: number;
  /** --ipv6: dual-stack labs, every path measured over IPv6 too. */
  ipv6: boolean;
  leases: number;
  puts: number;
  scaleHosts: number;
}

export interface BenchReport {
  tool: 'weft bench';
  version: string;
  command: string;
  quick: boolean;
  startedAt: string;
  durationSeconds: number;
  machine: Machine;
  /** 1-minute load average before and after: other work on the machine makes every figure noisier. */
  loadAverage: { start: number; end: number };
  /** How fast the machine itself was, before and after (speed-probe.ts); absent in reports of older runs. */
  speedProbe?: { start: SpeedProbe; end: SpeedProbe };
  settings: BenchSettings;
  dataPaths: PathReport[];
  controlPlane: ({ status: 'ok' } & ControlPlaneResult) | { status: 'failed' | 'skipped'; reason: string };
}

/** The median of each figure over the repetitions (null where no repetition has it). */
export function medianFigures(reps: ReadonlyArray<Partial<Record<MetricKey, number | undefined>>>, ms: readonly Metric[]): Figures {
  const med: Figures = {};
  for (const m of ms) med[m.key] = median(reps.map((x) => x[m.key])) ?? null;
  return med;
}

/**
 * Every figure divided by the same figure of kernel VXLAN and of the underlay in this run
 * (refs: their path ids), IPv4 by IPv4 and IPv6 by IPv6; and each path's IPv6 figure by its
 * own IPv4 figure. A ratio whose reference was not measured is null.
 */
export function addRatios(reports: PathReport[], s: BenchSettings, refs: { vxlan: string; underlay: string }): void {
  const ref = (id: string) => reports.find((p) => p.id === id && p.status === 'ok');
  const ref6 = (id: string) => reports.find((p) => p.id === id)?.ipv6;
  const [vx, ul] = [ref(refs.vxlan), ref(refs.underlay)];
  const [vx6, ul6] = [ref6(refs.vxlan), ref6(refs.underlay)].map((r) => (r?.status === 'ok' ? r : undefined));
  const r = (v: number | null | undefined, of: Figures | undefined, k: MetricKey) => ratio(v ?? undefined, of?.[k] ?? undefined) ?? null;
  for (const p of reports) {
    if (p.status === 'ok') {
      for (const m of metrics(s).filter((x) => x.ratio)) {
        p.ratioToVxlan[m.key] = r(p.median[m.key], vx?.median, m.key);
        p.ratioToUnderlay[m.key] = r(p.median[m.key], ul?.median, m.key);
      }
    }
    const v6 = p.ipv6;
    if (v6?.status !== 'ok') continue;
    for (const m of ipv6Metrics(s).filter((x) => x.ratio)) {
      v6.ratioToIpv4[m.key] = r(v6.median[m.key], p.status === 'ok' ? p.median : undefined, m.key);
      v6.ratioToVxlan[m.key] = r(v6.median[m.key], vx6?.median, m.key);
      v6.ratioToUnderlay[m.key] = r(v6.median[m.key], ul6?.median, m.key);
    }
  }
}

/** JSON with undefined and non-finite numbers as null, so every figure is a number or null. */
export function toJson(r: BenchReport): string {
  return JSON.stringify(r, (_k, v: unknown) => (v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? null : v), 2) + '\n';
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const num = (v: number | null | undefined, digits: number) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits));
const x = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}×`);

export function toMarkdown(r: BenchReport): string {
  const ms = metrics(r.settings);
  const s = r.settings;
  const out: string[] = [];
  const ipv6 = s.ipv6 === true;
  out.push(`### Data paths${ipv6 ? ', IPv4' : ''} (median of ${s.reps} repetition${s.reps === 1 ? '' : 's'}${r.quick ? ', QUICK smoke run' : ''})`, '');
  out.push(
    `iperf3 -t ${s.seconds} per run, TCP with 1 and ${s.streams} streams, UDP -l ${s.udpLength} and -l ${s.udpLargeLength} -w ${UDP_LARGE_WINDOW} -b ${s.udpBitrate} ` +
      `(${s.udpLargeLength} B: the inner datagram with its IPv4 and UDP headers fits the overlays' MTU, VXLAN's 1450 and udp's 1472, unfragmented; delivered payload bits${largeNote(r)}); ` +
      `ping: ${s.pings} echoes every ${s.pingIntervalMs} ms; agent CPU = utime+stime of the weftd processes (and their wireguard-go) during the TCP runs, per GB received. ` +
      `Overlays: container to container across two hosts.${ipv6 ? ' Dual-stack labs (--ipv6): IPv6 figures below.' : ''}`,
    '',
  );
  out.push(`| data path | ${ms.map((m) => `${m.label} (${m.unit})`).join(' | ')} |`);
  out.push(`| --- | ${ms.map(() => '---:').join(' | ')} |`);
  for (const p of r.dataPaths) {
    if (p.status !== 'ok') {
      out.push(`| ${cell(p.label)} | ${cell(`${p.status}: ${shorten(p.reason ?? '', 140)}`)} | ${ms.slice(1).map(() => '–').join(' | ')} |`);
      continue;
    }
    out.push(`| ${cell(p.label)} | ${ms.map((m) => num(p.median[m.key], m.digits)).join(' | ')} |`);
  }
  const rm = ms.filter((m) => m.ratio);
  out.push('', 'Ratios, as × kernel VXLAN / × underlay of the same run (throughput: higher is better; RTT and machine CPU per GB: lower is better). ' +
    'Agent CPU has no ratio: with kernel VXLAN the agent is idle during transfers (~0 s/GB), which is the point.', '');
  out.push(`| data path | ${rm.map((m) => m.label).join(' | ')} |`);
  out.push(`| --- | ${rm.map(() => '---:').join(' | ')} |`);
  for (const p of r.dataPaths) {
    if (p.status !== 'ok') {
      out.push(`| ${cell(p.label)} | ${p.status} | ${rm.slice(1).map(() => '–').join(' | ')} |`);
      continue;
    }
    out.push(`| ${cell(p.label)} | ${rm.map((m) => `${x(p.ratioToVxlan[m.key])} / ${x(p.ratioToUnderlay[m.key])}`).join(' | ')} |`);
  }
  if (ipv6) out.push('', ...ipv6Markdown(r));
  out.push('', `### Control plane`, '');
  const c = r.controlPlane;
  if (c.status !== 'ok') {
    out.push(`${c.status}: ${shorten(c.reason, 300)}`);
  } else {
    const perHost = perHostSeconds(c.convergeSeconds);
    out.push('| measurement | result |', '| --- | --- |');
    out.push(`| ${c.leases} remote leases put into etcd at once | ${c.putSeconds.toFixed(2)} s to write |`);
    out.push(`| until every host holds all ${c.entriesExpected} kernel entries (neigh + fdb + route: netlink monitor, confirmed by a dump) | ${num(c.convergeSecondsMax, 2)} s (${perHost}) |`);
    const u = c.burstCpu;
    if (u) {
      out.push(`| CPU seconds from the put until each host converged: each weftd user + system; etcd; the bench; the whole machine (all ${r.machine.nproc} CPUs, anything else running included) | ` +
        `${u.agents.map((a) => `${num(a.user, 2)} + ${num(a.system, 2)}`).join(', ')}; etcd ${num(u.etcd, 2)}; bench ${num(u.bench, 2)}; machine ${num(u.machineBusy, 2)} of ${num(r.machine.nproc * u.seconds, 2)} |`);
      if (u.agentsWaiting?.some((w) => w !== undefined && w !== null)) {
        out.push(`| seconds each weftd's main thread (its event loop) was ready to run but waited for a CPU, over the same window (\`/proc/<pid>/schedstat\`) | ${u.agentsWaiting.map((w) => num(w, 2)).join(', ')} |`);
      }
    }
    const z = c.responsiveness;
    if (z) {
      out.push(`| \`/healthz\` answer time while the ${c.leases} peers are programmed (polled every ${POLL_INTERVAL_MS} ms on each host; idle p99 before: ${num(z.healthzIdle.p99Ms, 1)} ms) | ` +
        `p50 ${num(z.healthzBusy.p50Ms, 1)} ms, p99 ${num(z.healthzBusy.p99Ms, 1)} ms, max ${num(z.healthzBusy.maxMs, 1)} ms (${z.healthzBusy.samples} answers${z.healthzBusy.failures ? `, ${z.healthzBusy.failures} not 200` : ''}) |`);
      out.push(`| weftd event-loop delay over the same window (\`weft_nodejs_eventloop_lag_*\` minus its 10 ms tick) | p99 ${z.eventLoopP99Ms.map((v) => num(v, 1)).join(', ')} ms; max ${z.eventLoopMaxMs.map((v) => num(v, 1)).join(', ')} ms |`);
    }
    const later = (b: BurstSummary | undefined, what: string) => {
      if (!b) return;
      out.push(`| ${what} | ${num(b.convergeSecondsMax, 2)} s (${perHostSeconds(b.convergeSeconds)}); weftd CPU ${b.cpu.agents.map((a) => `${num(a.user, 2)} + ${num(a.system, 2)}`).join(', ')}; ` +
        `machine ${num(b.cpu.machineBusy, 2)} of ${num(r.machine.nproc * b.cpu.seconds, 2)}; event-loop delay max ${b.eventLoopMaxMs.map((v) => num(v, 1)).join(', ')} ms |`);
    };
    later(c.removal, `the ${c.leases} leases deleted at once: until no host holds any of their entries; the CPU seconds and event-loop delay as above`);
    later(c.again, `the ${c.leases} leases put again at once, within the 10 s their claims are held for them: until every host holds all ${c.entriesExpected} entries again (the same work as the first burst, which is the agents' first: V8 compiled their per-lease code while it ran)`);
    out.push(`| agent RSS before → after the ${c.leases} peers | ${c.rssBeforeMiB.map((v) => v.toFixed(0)).join(', ')} → ${c.rssAfterMiB.map((v) => v.toFixed(0)).join(', ')} MiB |`);
    out.push(
      `| one new lease: put → route on each of ${c.hosts} hosts (${c.propagation.puts} puts, ${c.propagation.samples} samples) | ` +
        `p50 ${num(c.propagation.p50Ms, 1)} ms, p99 ${num(c.propagation.p99Ms, 1)} ms, max ${num(c.propagation.maxMs, 1)} ms${c.propagation.missing ? `, ${c.propagation.missing} missing` : ''}` +
        `${c.propagation.ackP50Ms !== undefined ? `; etcd acknowledging the put (its commit, which comes before weftd hears of it${c.etcdData ? `; etcd's data on ${c.etcdData}` : ''}): p50 ${num(c.propagation.ackP50Ms, 1)} ms, p99 ${num(c.propagation.ackP99Ms, 1)} ms` : ''} |`,
    );
  }
  const m = r.machine;
  out.push('', `Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ${m.iperf3}. ` +
    `${r.startedAt.slice(0, 10)}, ${r.durationSeconds.toFixed(0)} s, load average ${r.loadAverage.start.toFixed(2)} at the start and ${r.loadAverage.end.toFixed(2)} at the end. ` +
    (r.speedProbe ? `Speed probe (best of 3; compare runs only where it is close): ${formatSpeedProbe(r.speedProbe.start)} at the start, ${formatSpeedProbe(r.speedProbe.end)} at the end. ` : '') +
    `Reproduce: \`${r.command}\``);
  return out.join('\n') + '\n';
}

/** Each host's convergence time, as 'h1 1.40 s, h2 TIMEOUT' (null: how JSON keeps undefined). */
function perHostSeconds(seconds: readonly (number | undefined | null)[]): string {
  return seconds.map((v, i) => `h${i + 1} ${v === undefined || v === null ? 'TIMEOUT' : `${v.toFixed(2)} s`}`).join(', ');
}

/** The IPv6 section: each path's IPv6 figures, then its ratios to its own IPv4 figures and to the IPv6 references. */
function ipv6Markdown(r: BenchReport): string[] {
  const s = r.settings;
  const ms = ipv6Metrics(s);
  const rm = ms.filter((m) => m.ratio);
  const out: string[] = [];
  out.push(`### Data paths, IPv6 (median of ${s.reps} repetition${s.reps === 1 ? '' : 's'}${r.quick ? ', QUICK smoke run' : ''})`, '');
  out.push(
    'The same labs, dual stack (underlay 2001:db8::/64, overlay EnableIPv6 with IPv6Network fd00:10:244::/48); in each repetition, right after the IPv4 figures: ' +
      'ping and iperf3 TCP to the destination\'s IPv6 address, with the same CPU figures (no UDP over IPv6).',
    '',
  );
  const row = (p: PathReport, cells: (v6: Ipv6Report) => string[], width: number) => {
    const v6 = p.ipv6;
    if (v6?.status === 'ok') return `| ${cell(p.label)} | ${cells(v6).join(' | ')} |`;
    const why = v6 ? `${v6.status}: ${shorten(v6.reason ?? '', 140)}` : 'not measured';
    return `| ${cell(p.label)} | ${cell(why)} | ${Array(width - 1).fill('–').join(' | ')} |`;
  };
  out.push(`| data path | ${ms.map((m) => `${m.label} (${m.unit})`).join(' | ')} |`);
  out.push(`| --- | ${ms.map(() => '---:').join(' | ')} |`);
  for (const p of r.dataPaths) out.push(row(p, (v6) => ms.map((m) => num(v6.median[m.key], m.digits)), ms.length));
  out.push('', 'IPv6 as × IPv4 of the same path in the same run (throughput: higher is better; RTT and machine CPU per GB: lower is better).', '');
  out.push(`| data path | ${rm.map((m) => m.label).join(' | ')} |`);
  out.push(`| --- | ${rm.map(() => '---:').join(' | ')} |`);
  for (const p of r.dataPaths) out.push(row(p, (v6) => rm.map((m) => x(v6.ratioToIpv4[m.key])), rm.length));
  out.push('', 'IPv6 as × kernel VXLAN over IPv6 / × underlay over IPv6, of the same run.', '');
  out.push(`| data path | ${rm.map((m) => m.label).join(' | ')} |`);
  out.push(`| --- | ${rm.map(() => '---:').join(' | ')} |`);
  for (const p of r.dataPaths) out.push(row(p, (v6) => rm.map((m) => `${x(v6.ratioToVxlan[m.key])} / ${x(v6.ratioToUnderlay[m.key])}`), rm.length));
  return out;
}

/** The paths whose MTU needed a smaller large datagram, e.g. "; WireGuard, kernel: 1392 B (MTU 1420)". */
function largeNote(r: BenchReport): string {
  const small = r.dataPaths.filter((p) => p.status === 'ok' && p.udpLargeLength !== undefined && p.udpLargeLength < r.settings.udpLargeLength);
  return small.map((p) => `; ${p.label}: -l ${p.udpLargeLength} (MTU ${p.udpLargeLength! + 28})`).join('');
}

function shorten(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

const COLORS = ['#6b7280', '#2563eb', '#16a34a', '#86efac', '#ea580c', '#9333ea', '#0891b2'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Grouped bars: one panel per reference (kernel VXLAN, underlay), one group per throughput figure, one bar per data path;
 * with --ipv6 a third panel, each path's IPv6 TCP throughput as × its own IPv4 figure.
 */
export function toSvg(r: BenchReport): string {
  const ms = metrics(r.settings).filter((m) => m.throughput);
  const paths = r.dataPaths;
  type Value = number | null | undefined;
  const panels: Array<{ title: string; ms: Metric[]; value: (p: PathReport, m: Metric) => Value }> = [
    { title: '× kernel VXLAN', ms, value: (p, m) => p.ratioToVxlan[m.key] },
    { title: '× underlay (host to host)', ms, value: (p, m) => p.ratioToUnderlay[m.key] },
  ];
  if (r.settings.ipv6 === true) {
    panels.push({ title: 'IPv6 × IPv4 of the same path', ms: ipv6Metrics(r.settings).filter((m) => m.throughput), value: (p, m) => (p.ipv6?.status === 'ok' ? p.ipv6.ratioToIpv4[m.key] : undefined) });
  }
  const W = 820;
  const panelH = 256;
  const top = 56;
  const left = 56;
  const right = 16;
  const plotH = 190;
  const legendH = 28;
  const H = top + panels.length * panelH + legendH + 18 * Math.floor(paths.length / 5);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">weft bench: throughput as a ratio of the same run's reference</text>`);
  out.push(`<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(`median of ${r.settings.reps}, iperf3 -t ${r.settings.seconds}; ${r.machine.nproc} CPUs, Linux ${r.machine.kernel}${r.quick ? '; QUICK smoke run' : ''}`)}</text>`);
  for (const [pi, panel] of panels.entries()) {
    const y0 = top + pi * panelH + 20;
    const values = paths.flatMap((p) => panel.ms.map((m) => panel.value(p, m))).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const maxV = Math.max(1.2, ...values.map((v) => v * 1.15));
    const yOf = (v: number) => y0 + plotH - (Math.min(v, maxV) / maxV) * plotH;
    const plotW = W - left - right;
    out.push(`<text x="${left}" y="${y0 - 8}" font-size="13" font-weight="bold">${esc(panel.title)}</text>`);
    // Axis and grid.
    const step = niceStep(maxV);
    for (let v = 0; v <= maxV + 1e-9; v += step) {
      out.push(`<line x1="${left}" x2="${W - right}" y1="${yOf(v).toFixed(1)}" y2="${yOf(v).toFixed(1)}" stroke="#e5e7eb"/>`);
      out.push(`<text x="${left - 6}" y="${(yOf(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v.toFixed(step < 1 ? 1 : 0)}×</text>`);
    }
    out.push(`<line x1="${left}" x2="${W - right}" y1="${yOf(1).toFixed(1)}" y2="${yOf(1).toFixed(1)}" stroke="#111" stroke-dasharray="4 3"/>`);
    const groupW = plotW / panel.ms.length;
    const barW = Math.min(48, (groupW - 24) / Math.max(1, paths.length));
    for (const [gi, m] of panel.ms.entries()) {
      const gx = left + gi * groupW + (groupW - barW * paths.length) / 2;
      out.push(`<text x="${(left + gi * groupW + groupW / 2).toFixed(1)}" y="${y0 + plotH + 18}" text-anchor="middle">${esc(m.label)}</text>`);
      for (const [bi, p] of paths.entries()) {
        const v = panel.value(p, m);
        const bx = gx + bi * barW;
        const cx = (bx + barW / 2).toFixed(1);
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          out.push(`<text x="${cx}" y="${y0 + plotH - 4}" text-anchor="middle" font-size="10" fill="#999">n/a</text>`);
          continue;
        }
        const y = yOf(v);
        out.push(`<rect x="${(bx + 2).toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(y0 + plotH - y).toFixed(1)}" fill="${COLORS[bi % COLORS.length]}"><title>${esc(`${p.label}, ${m.label}: ${v.toFixed(3)}× (${panel.title})`)}</title></rect>`);
        out.push(`<text x="${cx}" y="${(y - 4).toFixed(1)}" text-anchor="middle" font-size="10">${v.toFixed(2)}</text>`);
      }
    }
    out.push(`<line x1="${left}" x2="${W - right}" y1="${y0 + plotH}" y2="${y0 + plotH}" stroke="#111"/>`);
  }
  // Legend.
  let lx = left;
  let ly = top + panels.length * panelH + 6;
  for (const [i, p] of paths.entries()) {
    const text = p.status === 'ok' ? p.label : `${p.label} (${p.status})`;
    if (lx > left && lx + 16 + text.length * 6.5 > W - right) {
      lx = left;
      ly += 18;
    }
    out.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly + 10}">${esc(text)}</text>`);
    lx += 28 + text.length * 6.5;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceStep(max: number): number {
  for (const s of [0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50]) if (max / s <= 6) return s;
  return 100;
}
