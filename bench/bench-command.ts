// `weft bench`: every data path of DATA_PATHS measured in one run, each in a
// fresh lab (built, measured, removed), then the control-plane scale run in a
// 3-host lab; the figures go to stdout (markdown), latest.json, latest.md and
// throughput.svg. It measures and reports; it asserts nothing about speed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, type Command, type FlagSet, type ParsedFlags } from '../lib/flags.js';
import { withLab } from '../lab/lab.js';
import { controlPlaneSvg } from './control-plane-chart.js';
import { MAX_LEASES, MAX_PUTS, runControlPlane } from './control-plane.js';
import { DATA_PATHS, PathUnavailableError, REFERENCE_PATHS, type DataPath } from './data-paths.js';
import { checkReachable, measureOnce, type MeasureSettings, type RepFigures } from './measure.js';
import { metrics, toJson, toMarkdown, toSvg, type BenchReport, type BenchSettings, type Figures, type Machine, type PathReport } from './report.js';
import { median, ratio } from './stats.js';

/** The tracked results the README shows: written only by a full run with the defaults. */
export const DEFAULT_OUT = fileURLToPath(new URL('../../bench/results/', import.meta.url));
/** Where a quick or partial run writes unless --out says otherwise (untracked: .gitignore). */
export const PARTIAL_OUT = fileURLToPath(new URL('../../bench/results/partial/', import.meta.url));
/** Flags that make a run quick or partial: with any of them the tracked full-run results stay untouched. */
const PARTIAL_FLAGS = ['quick', 'reps', 'seconds', 'paths', 'leases', 'puts', 'no-scale'] as const;

const FLAGS: FlagSet = {
  command: 'weft bench',
  usage: 'weft bench [--quick] [--reps N] [--seconds N] [--paths ID,...] [--leases N] [--puts N] [--no-scale] [--out DIR]',
  positional: true,
  flags: [
    { name: 'quick', kind: 'bool', help: 'short smoke run: 1 rep, iperf3 -t 1, 100 pings, 100 leases, 10 puts' },
    { name: 'reps', kind: 'int', min: 1, max: 20, help: 'repetitions per data path; the median is reported (default 3, quick 1)' },
    { name: 'seconds', kind: 'int', min: 1, max: 5, help: 'iperf3 -t of each run (default 5, quick 1)' },
    { name: 'paths', kind: 'string', help: `data paths to measure, or none (default all: ${DATA_PATHS.map((p) => p.id).join(',')})` },
    { name: 'leases', kind: 'int', min: 1, max: MAX_LEASES, help: 'remote leases written at once in the scale run (default 1000, quick 100)' },
    { name: 'puts', kind: 'int', min: 1, max: MAX_PUTS, help: 'single lease puts timed to their routes (default 50, quick 10)' },
    { name: 'no-scale', kind: 'bool', help: 'skip the control-plane scale run' },
    { name: 'out', kind: 'string', help: `directory for latest.json, latest.md, throughput.svg and control-plane.svg (default ${DEFAULT_OUT} for a full run with the defaults, ${PARTIAL_OUT} when any other flag above makes it quick or partial)` },
  ],
  footer: 'Needs root, iperf3, etcd-server, iproute2, iputils-ping and containernetworking-plugins; the wireguard-userspace path wireguard-go (scripts/setup.sh --wireguard), else it is reported unavailable.',
};

export const benchCommand: Command = { flags: FLAGS, run: (p) => runBench(p, p.argv) };

const REQUIRED: ReadonlyArray<[string, string]> = [
  ['/usr/bin/iperf3', 'apt-get install iperf3'],
  ['/usr/bin/etcd', 'apt-get install etcd-server'],
  ['/usr/sbin/ip', 'apt-get install iproute2'],
  ['/usr/bin/ping', 'apt-get install iputils-ping'],
  ['/usr/lib/cni/bridge', 'apt-get install containernetworking-plugins'],
  ['/usr/lib/cni/host-local', 'apt-get install containernetworking-plugins'],
];

async function runBench(a: ParsedFlags, argv: readonly string[]): Promise<number> {
  if (a.positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(a.positional[0])}; usage: ${FLAGS.usage}`);
  const missing = REQUIRED.filter(([p]) => !existsSync(p));
  if (process.getuid?.() !== 0 || missing.length) {
    process.stderr.write('weft bench cannot start; missing:\n' +
      (process.getuid?.() !== 0 ? '  root privileges (network namespaces, netlink): run it as root\n' : '') +
      missing.map(([p, how]) => `  ${p}: ${how}\n`).join(''));
    return 1;
  }
  const quick = a.values.quick === true;
  const v = (k: string, full: number, q: number) => (a.values[k] === undefined ? (quick ? q : full) : Number(a.values[k]));
  const settings: BenchSettings = {
    reps: v('reps', 3, 1),
    seconds: v('seconds', 5, 1),
    streams: 4,
    udpLength: 64,
    udpBitrate: '0',
    pings: quick ? 100 : 1000,
    pingIntervalMs: 2,
    leases: v('leases', 1000, 100),
    puts: v('puts', 50, 10),
    scaleHosts: 3,
  };
  const paths = selectPaths(a.values.paths as string | undefined);
  const outDir = resolve(String(a.values.out ?? defaultOut(a)));
  mkdirSync(outDir, { recursive: true });

  const started = Date.now();
  const machine = describeMachine();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
  say(`weft bench${quick ? ' --quick' : ''}: ${paths.length} data paths x ${settings.reps} reps, iperf3 -t ${settings.seconds}; ` +
    `${machine.nproc} CPUs (${machine.cpuModel}), Linux ${machine.kernel}`);
  const loadStart = loadavg()[0]!;
  if (loadStart > machine.nproc / 2) {
    say(`note: load average ${loadStart.toFixed(2)} on ${machine.nproc} CPUs: other work is running here, the figures will be noisy`);
  }

  const reports: PathReport[] = [];
  for (const [i, path] of paths.entries()) {
    const tag = `[${i + 1}/${paths.length} ${path.id}]`;
    const step = (what: string) => say(`${elapsed()} ${tag} ${what}`);
    reports.push(await benchPath(path, settings, step));
  }
  addRatios(reports, settings);

  let controlPlane: BenchReport['controlPlane'];
  if (a.values['no-scale'] === true) {
    controlPlane = { status: 'skipped', reason: '--no-scale' };
  } else {
    const step = (what: string) => say(`${elapsed()} [control plane] ${what}`);
    step(`building a ${settings.scaleHosts}-host lab; ${settings.leases} leases at once, then ${settings.puts} single puts`);
    try {
      const r = await withLab({ hosts: settings.scaleHosts }, (lab) =>
        runControlPlane(lab, { hosts: settings.scaleHosts, leases: settings.leases, puts: settings.puts, timeoutMs: quick ? 60_000 : 180_000 }, step));
      controlPlane = { status: 'ok', ...r };
    } catch (e) {
      step(`failed: ${(e as Error).message}`);
      controlPlane = { status: 'failed', reason: (e as Error).message };
    }
  }

  const report: BenchReport = {
    tool: 'weft bench',
    version: packageVersion(),
    command: ['weft bench', ...argv].join(' '),
    quick,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    machine,
    loadAverage: { start: loadStart, end: loadavg()[0]! },
    settings,
    dataPaths: reports,
    controlPlane,
  };
  const md = toMarkdown(report);
  writeFileSync(join(outDir, 'latest.json'), toJson(report));
  writeFileSync(join(outDir, 'latest.md'), md);
  writeFileSync(join(outDir, 'throughput.svg'), toSvg(report));
  const charts = ['throughput.svg'];
  if (controlPlane.status === 'ok') {
    writeFileSync(join(outDir, 'control-plane.svg'), controlPlaneSvg(controlPlane));
    charts.push('control-plane.svg');
  }
  say(`\n${md}\nWrote ${join(outDir, 'latest.json')}, latest.md and ${charts.join(' and ')} (${elapsed().trim()}).`);
  return 0;
}

/** The tracked results for a full run with the defaults; elsewhere for a quick or partial one, so it never replaces what the README shows. */
export function defaultOut(a: ParsedFlags): string {
  return PARTIAL_FLAGS.some((k) => a.values[k] !== undefined && a.values[k] !== false) ? PARTIAL_OUT : DEFAULT_OUT;
}

/** One data path: a fresh lab, its setup, a reachability check, the repetitions; never throws. */
async function benchPath(path: DataPath, s: BenchSettings, step: (what: string) => void): Promise<PathReport> {
  const base = { id: path.id, label: path.label, reps: [] as RepFigures[], median: {}, ratioToVxlan: {}, ratioToUnderlay: {} };
  const ms: MeasureSettings = {
    seconds: s.seconds, streams: s.streams, udpLength: s.udpLength, udpBitrate: s.udpBitrate, pings: s.pings, pingIntervalMs: s.pingIntervalMs,
  };
  step(`${path.label}: building the lab`);
  // Kept when a later repetition fails: the JSON shows what was measured before.
  const reps: RepFigures[] = [];
  try {
    return await withLab(path.lab, async (lab) => {
      const ep = await path.setup(lab);
      step(`ready: ${ep.describe}`);
      await checkReachable(ep);
      for (let r = 1; r <= s.reps; r++) reps.push(await measureOnce(lab, ep, ms, (what) => step(`rep ${r}/${s.reps}: ${what}`)));
      step('removing the lab');
      const med: Figures = {};
      for (const m of metrics(s)) med[m.key] = median(reps.map((x) => x[m.key])) ?? null;
      return { ...base, status: 'ok' as const, endpoints: ep.describe, reps, median: med };
    });
  } catch (e) {
    const unavailable = e instanceof PathUnavailableError;
    const reason = (e as Error).message;
    step(`${unavailable ? 'unavailable' : 'FAILED'}: ${reason.split('\n')[0]}`);
    return { ...base, status: unavailable ? 'unavailable' : 'failed', reason, reps };
  }
}

/** Every figure divided by the same figure of kernel VXLAN and of the underlay in this run. */
function addRatios(reports: PathReport[], s: BenchSettings): void {
  const ref = (id: string) => reports.find((p) => p.id === id && p.status === 'ok');
  const vx = ref(REFERENCE_PATHS.vxlan);
  const ul = ref(REFERENCE_PATHS.underlay);
  for (const p of reports) {
    if (p.status !== 'ok') continue;
    for (const m of metrics(s).filter((x) => x.ratio)) {
      const val = p.median[m.key] ?? undefined;
      p.ratioToVxlan[m.key] = ratio(val, vx?.median[m.key] ?? undefined) ?? null;
      p.ratioToUnderlay[m.key] = ratio(val, ul?.median[m.key] ?? undefined) ?? null;
    }
  }
}

function selectPaths(list: string | undefined): DataPath[] {
  if (list === undefined) return [...DATA_PATHS];
  if (list === 'none') return [];
  const ids = list.split(',').map((x) => x.trim()).filter(Boolean);
  const out: DataPath[] = [];
  for (const id of ids) {
    const p = DATA_PATHS.find((x) => x.id === id);
    if (!p) throw new UsageError(`invalid --paths ${JSON.stringify(list)}: no data path ${JSON.stringify(id)} (known: ${DATA_PATHS.map((x) => x.id).join(', ')})`);
    out.push(p);
  }
  return out;
}

function describeMachine(): Machine {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch { /* not Linux procfs */ }
  let iperf3 = 'iperf3';
  try {
    iperf3 = execFileSync('iperf3', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.replace(/\s*\(.*$/, '').trim();
  } catch { /* preflight checked it exists */ }
  return { nproc: availableParallelism(), cpuModel, kernel: release(), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, iperf3 };
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
